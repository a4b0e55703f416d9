"""A batch posted through the reader-process pipeline equals the same files posted one call per file."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest

from recon.remit import post
from recon.remit.post import FileOutcome, post_remittances
from recon.services import Recon
from tests.era.conftest import assert_invariant, ledger
from tests.era.edi import claim, st, write_835
from tests.era.test_post import file_a, file_b, file_c

PER_INVOICE = {
    "payments": "SELECT client_id, coalesce(remittance_id, ''), sum(amount) FROM payments GROUP BY ALL",
    "allocations": "SELECT invoice_id, sum(amount) FROM allocations GROUP BY ALL",
    "adjustments": "SELECT invoice_id, sum(amount) FROM adjustments GROUP BY ALL",
    "due_changes": "SELECT invoice_id, sum(client_amt_due_delta), sum(ins_amt_due_delta) FROM due_changes "
                   "GROUP BY ALL",
    "exceptions": "SELECT kind, claim_id, coalesce(invoice_id, ''), remittance_id, sum(amount), sum(held_amount) "
                  "FROM exceptions GROUP BY ALL",
    "remittances": "SELECT remittance_id, trace_number, amount, plb_amount, unmatched_amount, file_name "
                   "FROM remittances",
}


def _batch(folder: Path) -> list[Path]:
    bad = write_835(folder / "bad.835", [st("0001", amount="100", trace="T9", claims=[
        claim("I2", "1", "120", "100", lines=[("HC:90834", "120", "100", "20260112", [["CO", "45", "10"]])])])])
    # file_c's T300 again (already posted by then) next to a new trace: only some new, read in process
    again = [
        claim("I1", "22", "-150", "-100", lines=[("HC:90837", "-150", "-100", "20260105",
                                                  [["CO", "45", "-30"], ["PR", "1", "-20"]])]),
        claim("I1", "1", "150", "110", "10", lines=[("HC:90837", "150", "110", "20260105",
                                                     [["CO", "45", "30"], ["PR", "1", "10"]])]),
    ]
    mixed = write_835(folder / "mixed.835", [
        st("0001", amount="10", trace="T300", paid_on="20260315", claims=again),
        st("0002", amount="50", trace="T400", claims=[claim("I7", "1", "120", "50", cas=[["CO", "45", "70"]])])])
    return [file_a(folder), file_b(folder), bad, file_a(folder, "resent.835"), file_c(folder), mixed]


def _state(recon: Recon) -> dict[str, Any]:
    got: dict[str, Any] = {"ledger": ledger(recon)}
    for name, sql in PER_INVOICE.items():
        got[name] = sorted(tuple(str(v) for v in row) for row in recon.execute(sql).fetchall())
    return got


def _view(out: FileOutcome) -> tuple[Any, ...]:
    return (out.file, out.status, out.payer_id, out.trace_number, out.amount, out.plb_amount, out.claims_posted,
            out.claims_denied, out.claims_unmatched, out.claims_reversed, out.unmatched_amount, out.message,
            out.problems, out.warnings, out.remittance_ids, out.claims)


@pytest.mark.parametrize("engine", ["duckdb"])  # compares or copies the ledger file itself
def test_pipelined_batch_equals_one_call_per_file(era_db: Path, tmp_path: Path, monkeypatch: Any) -> None:
    files = _batch(tmp_path)
    scratch = tmp_path / "scratch"  # where the staged text goes (the folders are made by this process)
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    paths: dict[str, list[str]] = {"prepared": [], "in_process": []}
    for name, key in (("_stage_prepared", "prepared"), ("_read_and_stage", "in_process")):
        real = getattr(post, name)
        monkeypatch.setattr(post, name, lambda *a, _real=real, _key=key: (paths[_key].append(a[2]), _real(*a))[1])
    one_by_one = tmp_path / "one_by_one.duckdb"
    shutil.copy(era_db, one_by_one)
    seen: list[tuple[int, int]] = []
    with Recon.open(era_db) as recon:
        batch = post_remittances(recon, files, "ana", progress=lambda done, total, name: seen.append((done, total)))
        piped = _state(recon)
        assert_invariant(recon)
    with Recon.open(one_by_one) as recon:
        single = [post_remittances(recon, [f], "ana").files[0] for f in files]
        sequential = _state(recon)
    statuses = [o.status for o in batch.files]
    assert statuses == ["posted", "posted", "rejected", "already_posted", "posted", "posted"]
    assert "nothing of bad.835 was posted" in batch.files[2].message and batch.files[2].problems
    assert [_view(o) for o in batch.files] == [_view(o) for o in single]
    assert piped == sequential
    assert piped["remittances"] and piped["allocations"] and piped["exceptions"]
    assert seen == [(k, len(files)) for k in range(1, len(files) + 1)]
    # the reader process prepared every file but the bad one; the bad one and the partly new one
    # were read here (mixed.835's chunks number both transactions, the first already posted)
    assert paths["prepared"] == ["aetna_0301.835", "bcbs.835", "resent.835", "aetna_0315.835", "mixed.835"]
    assert paths["in_process"] == ["bad.835", "mixed.835"] + [f.name for f in files]
    assert not os.listdir(scratch)  # the staged text of every file was removed


def test_pipelined_dry_run_writes_nothing(era_db: Path, tmp_path: Path) -> None:
    files = [file_a(tmp_path), file_b(tmp_path)]
    with Recon.open(era_db) as recon:
        before = _state(recon)
        report = post_remittances(recon, files, "ana", dry_run=True)
        assert [o.status for o in report.files] == ["dry_run", "dry_run"]
        assert report.files[0].claims_posted == 4
        assert _state(recon) == before
