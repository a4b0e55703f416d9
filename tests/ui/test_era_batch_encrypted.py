"""With an encrypted ledger (RECON_DB_KEY) the ERA batch widget keeps uploads in memory.

The uploaded 835s and deposit file hold PHI: no regular file of the temp folder may
hold their text while they are previewed and posted (the folder holds only links of
the uploads' names to in-memory files). Without a key they are written as before.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from recon.cli import main
from recon.services import Recon
from recon.ui.era_batch import era_batch
from tests.conftest import write_practice
from tests.deposits.era_files import AETNA_MARCH, BCBS_MARCH, write_835
from tests.ui.test_era_batch import DEPOSITS, upload_value

KEY = "correct horse battery staple"


def plain_hits(folder: Path, needles: tuple[bytes, ...]) -> list[str]:
    """Regular files (links not followed) under ``folder`` holding any of ``needles``."""
    found = []
    for root, _dirs, names in os.walk(folder):
        for name in names:
            path = Path(root) / name
            if path.is_symlink() or not path.is_file():
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue
            if any(n in data for n in needles):
                found.append(str(path))
    return found


@pytest.fixture(params=[True, False], ids=["encrypted", "plain"])
def batch(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """A ledger (encrypted or not) with its own temp folder, and the uploads' bytes."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    if request.param:
        monkeypatch.setenv("RECON_DB_KEY", KEY)
    else:
        monkeypatch.delenv("RECON_DB_KEY", raising=False)
    db = tmp_path / "ledger" / "recon.duckdb"
    assert main(["load", str(write_practice(tmp_path / "practice")), "--db", str(db)]) == 0
    files = {
        "aetna.835": write_835(tmp_path / "a.835", AETNA_MARCH, 1).read_bytes(),
        "bcbs.835": write_835(tmp_path / "b.835", BCBS_MARCH, 2).read_bytes(),
    }
    for name in ("a.835", "b.835"):
        (tmp_path / name).unlink()  # only the uploads' bytes remain
    with Recon.open(db) as recon:
        yield {"encrypted": request.param, "temp": temp, "recon": recon, "files": files}


def test_uploads_reach_no_disk_in_plain_text_when_encrypted(batch: dict) -> None:
    recon, temp = batch["recon"], batch["temp"]
    view = era_batch(recon, "ana")
    view.upload.value = upload_value(*batch["files"].items())
    view.deposit_upload.value = upload_value(("bank.csv", DEPOSITS))
    needles = (b"CLP*", b"AET-TRACE-1")
    view.preview_button.click()
    assert "2 dry run" in view.message.value, view.message.value
    view.post_button.click()
    assert "Posted batch: 2 file(s): 2 posted; deposits: 3 new" in view.message.value, view.message.value
    assert recon.one("SELECT count(*) FROM remittances")[0] == 2
    assert 'data-file="aetna.835"' in view.preview_html.value  # shown by the upload's own name
    hits = plain_hits(temp, needles)
    if batch["encrypted"]:
        assert hits == []
    else:
        assert hits  # written as before: the test can see an upload in plain text
    view.close()
