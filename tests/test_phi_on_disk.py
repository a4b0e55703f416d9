"""With an encrypted ledger no PHI is written in plain text anywhere, and a crash's staging does not linger.

The 835's patient names reach the ledger (encrypted) but never the temp folder or the
ledger's folder in plain text, while posting (a batch with its reader process too)
or after a kill; staging folders of a recon that no longer runs are removed at the
next start.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from recon.cli import main
from recon.remit.generate import generate_835
from recon.remit.stage import private_session
from recon.services import Recon
from tests.conftest import write_practice
from tests.era.conftest import ERA_PRACTICE
from tests.era.test_post_pipeline import test_pipelined_batch_equals_one_call_per_file as _batch_equals_per_file

ROOT = Path(__file__).resolve().parents[1]
KEY = "correct horse battery staple"
NAME = b"ZEPHYRINA"  # a patient's last name, put into the generated files
CLAIMS = 2500


def _hits(folder: Path) -> list[str]:
    """Files under ``folder`` whose bytes hold the patient name (files vanishing meanwhile are skipped)."""
    found = []
    for path in folder.rglob("*"):
        try:
            if path.is_file() and NAME in path.read_bytes():
                found.append(str(path))
        except OSError:
            continue
    return found


@pytest.fixture
def private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """An encrypted ledger with invoices the files pay, a temp folder of its own, and two 835s naming NAME."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    monkeypatch.setenv("RECON_DB_KEY", KEY)
    monkeypatch.delenv("RECON_DB", raising=False)
    folder = tmp_path / "ledger"
    db = folder / "recon.duckdb"
    assert main(["load", str(write_practice(tmp_path / "practice")), "--db", str(db)]) == 0
    with Recon.open(db) as recon:
        recon.execute(
            "INSERT INTO invoices SELECT 'G' || i, 'C1', DATE '2024-01-01' + CAST(i % 60 AS INTEGER), '90834', 1, "
            f"120.00, NULL, 0, 120.00, 'GC' || i FROM range({CLAIMS}) t(i)"
        )
        invoices = recon.execute(
            "SELECT invoice_id, service_date, service_code, fee FROM invoices WHERE invoice_id LIKE 'G%' "
            "ORDER BY invoice_id"
        ).fetchall()
    files = {}
    for k in (1, 2):
        gen = generate_835(
            tmp_path / f"era{k}.835",
            n_claims=CLAIMS,
            seed=40 + k,
            payer_id="60054",
            invoices=invoices[(k - 1) * CLAIMS // 2 :],
        )
        text = gen.path.read_bytes()
        gen.path.write_bytes(text.replace(b"*GARCIA*", b"*" + NAME + b"*").replace(b"*SMITH*", b"*" + NAME + b"*"))
        files[f"era{k}"] = gen.path
    assert NAME in files["era1"].read_bytes()
    return {"temp": temp, "folder": folder, "db": db, **files}


def _env(temp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RECON_DB", "RECON_DB_WAIT")}
    env.update(PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""), TMPDIR=str(temp), RECON_DB_KEY=KEY)
    return env


def _watch(proc: subprocess.Popen[bytes], folders: list[Path], kill_after: float | None = None) -> list[str]:
    """Scan ``folders`` for the name until ``proc`` ends (``kill -9`` after ``kill_after`` seconds), then once more."""
    hits: set[str] = set()
    deadline = None if kill_after is None else time.monotonic() + kill_after
    while proc.poll() is None:
        for folder in folders:
            hits.update(_hits(folder))
        if deadline is not None and time.monotonic() >= deadline:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    for folder in folders:
        hits.update(_hits(folder))
    return sorted(hits)


def _era(private: dict[str, Path]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recon.cli",
            "era",
            str(private["era1"]),
            str(private["era2"]),
            "--db",
            str(private["db"]),
            "--user",
            "ana",
        ],
        cwd=ROOT,
        env=_env(private["temp"]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_an_encrypted_posting_writes_no_patient_name_in_plain_text_even_when_killed(
    private: dict[str, Path], tmp_path: Path
) -> None:
    temp, folder, db = private["temp"], private["folder"], private["db"]
    pristine = tmp_path / "pristine.duckdb"
    shutil.copyfile(db, pristine)
    started = time.monotonic()
    proc = _era(private)  # a batch: its reader process stages the next file meanwhile
    hits = _watch(proc, [temp, folder])
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr.read() if proc.stderr else ""
    assert hits == []
    with Recon.open(db, key=KEY) as recon:  # the names are in the ledger, encrypted
        assert recon.one("SELECT count(*) FROM remit_claims WHERE patient_name LIKE ?", [f"%{NAME.decode()}%"])[0] > 0
    assert main(["era", str(private["era1"]), "--db", str(db), "--user", "ana"]) == 0  # in process
    assert _hits(temp) == [] and _hits(folder) == []
    for part in (0.4, 0.75):  # killed while reading or staging, then while posting
        shutil.copyfile(pristine, db)
        assert _watch(_era(private), [temp, folder], kill_after=took * part) == []
    assert main(["remittances", "--db", str(db)]) == 0  # the next start, whatever was left
    assert _hits(temp) == [] and _hits(folder) == []


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_staging_left_by_a_killed_recon_is_removed_at_the_next_start(tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    dead = _dead_pid()
    left = [temp / f"recon-stage-{dead}-abc", temp / f"recon-prepare-{dead}-def", temp / f"recon-era-{dead}-jkl"]
    running = temp / f"recon-stage-{os.getpid()}-ghi"  # a posting still at work: left alone
    other = temp / "unrelated-folder"
    upload = temp / "recon-era-mno"  # an upload folder of a notebook opened before this version: left alone
    for path in [*left, running, other, upload]:
        path.mkdir()
        (path / "1_s_claim.txt").write_bytes(b"1\x1f1\x1f1\x1fCLM\x1f1\x1f10\x1f10\x1f0\x1fP\x1f" + NAME + b"\x1f0\n")
    env = {k: v for k, v in os.environ.items() if k not in ("RECON_DB", "RECON_DB_KEY", "RECON_DB_WAIT")}
    env.update(PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""), TMPDIR=str(temp))
    done = subprocess.run(
        [sys.executable, "-m", "recon.cli", "remittances", "--db", str(tmp_path / "l.duckdb")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert [p.exists() for p in left] == [False, False, False]
    assert running.exists() and other.exists() and upload.exists()


def test_an_encrypted_batch_posts_exactly_as_one_call_per_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The staged text travels in memory from the reader process and loads from in-memory files: the same ledger."""
    monkeypatch.setenv("RECON_DB_KEY", KEY)
    era_db = tmp_path / "era.duckdb"
    assert main(["load", str(write_practice(tmp_path / "era_practice", ERA_PRACTICE)), "--db", str(era_db)]) == 0
    with Recon.open(era_db) as recon:
        assert private_session(recon.con)
    _batch_equals_per_file(era_db, tmp_path, monkeypatch)
