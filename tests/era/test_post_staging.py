"""How posting stages claims (delimited text loaded by DuckDB): exact for any value, no pandas import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from recon.remit.post import post_remittances
from tests.era.conftest import assert_invariant, ledger
from tests.era.edi import claim, st, write_835
from tests.era.test_post import file_a


def test_values_that_would_break_the_staged_text_are_posted_exactly(recon, tmp_path):
    """A value holding the delimiter, a line break or the null marker still arrives exactly."""
    odd = claim("I2", "1", "120", "120", lines=[("HC:90834", "120", "120", "20260112", [])])
    odd[1] = ["NM1", "QC", "1", "O\x1fNEIL", "JO\nANN", "", "", "", "MI", "M1"]
    odd[0][7] = "PCN\x1e2"
    path = write_835(tmp_path / "odd.835", [st("0001", amount="120", trace="T700", claims=[odd])])
    out = post_remittances(recon, [path], "ana").files[0]
    assert (out.status, out.claims_posted) == ("posted", 1), out.message
    assert recon.one("SELECT patient_name, payer_control FROM remit_claims") == ("O\x1fNEIL, JO\nANN", "PCN\x1e2")
    assert ledger(recon)["I2"] == ("0.00", "0.00", "120.00", "120.00", "0.00", "0.00")
    assert_invariant(recon)


def test_posting_does_not_import_pandas(era_db, tmp_path):
    """`recon era` must not pay pandas' import (~0.5 s): staging hands DuckDB no Python objects."""
    path = file_a(tmp_path)
    code = ("import sys\nfrom recon.services import Recon\nfrom recon.remit.post import post_remittances\n"
            f"with Recon.open({str(era_db)!r}) as r:\n"
            f"    out = post_remittances(r, [{str(path)!r}], 'ana').files[0]\n"
            "print(out.status, 'pandas' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.stdout.split() == ["posted", "False"], done.stdout + done.stderr
