"""A posting is all or nothing in the ledger file, even when its process is killed mid-way.

DuckDB can recover rows of a bulk append that never committed (its pull request
25931); recon marks a posting before it starts and, on the next open, removes any
row no committed remittance reaches (:mod:`recon.store.integrity`). The kill tests
run ``recon era`` as a real process and ``kill -9`` it at random moments.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recon.cli import main
from recon.remit.generate import generate_835
from recon.services import Recon
from recon.store import integrity

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = 6000  # about 1.7 MB of 835: a posting of a few seconds
KILLS = 5
KILL_BUDGET = 20.0  # seconds for all the kill tries together


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RECON_DB", "RECON_DB_KEY", "RECON_DB_WAIT")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _big_practice(db: Path, n: int) -> list[tuple[object, ...]]:
    """``n`` invoices of C1 (primary AET) that the generated claims pay."""
    with Recon.open(db) as recon:
        recon.execute(
            "INSERT INTO invoices SELECT 'G' || i, 'C1', DATE '2024-01-01' + CAST(i % 60 AS INTEGER), '90834', 1, "
            f"120.00, NULL, 0, 120.00, 'GC' || i FROM range({int(n)}) t(i)"
        )
        return recon.execute(
            "SELECT invoice_id, service_date, service_code, fee FROM invoices WHERE invoice_id LIKE 'G%' "
            "ORDER BY invoice_id"
        ).fetchall()


def _era(db: Path, *files: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "recon.cli", "era", *map(str, files), "--db", str(db), "--user", "ana"],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _check(db: Path, traces: int) -> int:
    """Reopen (which removes crash debris) and check: every row reachable, sums right, the posting whole or absent."""
    with Recon.open(db) as recon:
        assert integrity.problems(recon.con) == []
        assert recon.one(f"SELECT count(*) FROM meta WHERE key = '{integrity.MARKER}'")[0] == 0
        posted = recon.one("SELECT count(*) FROM remittances")[0]
        assert posted in (0, traces), f"{posted} of the file's {traces} remittances are in the ledger"
        if posted == 0:
            for table in (
                "payments",
                "allocations",
                "adjustments",
                "due_changes",
                "remit_claims",
                "remit_lines",
                "remit_cas",
                "remit_entries",
                "exceptions",
                "remit_plb",
            ):
                assert recon.one(f"SELECT count(*) FROM {table} WHERE {_posted(table)}")[0] == 0, table
        return int(posted)


def _posted(table: str) -> str:
    """Rows a posting writes (a practice's own rows are not of it)."""
    if table in ("payments", "adjustments", "due_changes"):
        return "remittance_id IS NOT NULL"
    if table == "allocations":
        return "payment_id IN (SELECT payment_id FROM payments WHERE remittance_id IS NOT NULL)"
    return "TRUE"


@pytest.mark.slow
def test_kill_9_during_postings_leaves_each_posting_whole_or_absent(db: Path, tmp_path: Path) -> None:
    invoices = _big_practice(db, CLAIMS)
    gen = generate_835(
        tmp_path / "big.835", n_claims=CLAIMS, seed=5, payer_id="60054", invoices=invoices, transactions=3
    )
    pristine = tmp_path / "pristine.duckdb"
    shutil.copyfile(db, pristine)
    rng = random.Random(9)
    kills = 0
    deadline = time.monotonic() + KILL_BUDGET
    while kills < KILLS and time.monotonic() < deadline:
        proc = _era(db, gen.path)
        try:
            proc.wait(timeout=rng.uniform(0.4, 5.0))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        if _check(db, len(gen.trace_numbers)) and kills < KILLS:  # it finished first: start afresh
            shutil.copyfile(pristine, db)
    assert kills >= 1
    # the rerun posts the file exactly once, whatever the kills left
    assert main(["era", str(gen.path), "--db", str(db), "--user", "ana"]) == 0
    assert main(["era", str(gen.path), "--db", str(db), "--user", "ana"]) == 0
    assert _check(db, len(gen.trace_numbers)) == len(gen.trace_numbers)
    with Recon.open(db) as recon:
        assert recon.one("SELECT sum(amount) FROM remittances")[0] == gen.total_paid


def _crash_debris(db: Path, name: str) -> None:
    """What a killed posting can leave: its marker, and rows the engine recovered without their transaction."""
    with Recon.open(db) as recon:
        con = recon.con
        marker = integrity.posting_marked(con, f"posting {name}")
        marker.__enter__()  # the process dies before the posting ends: the marker stays
        base = con.execute("SELECT coalesce(max(claim_posting_id), 0) FROM remit_claims").fetchone()[0]
        con.execute(
            f"""INSERT INTO remit_entries SELECT {base} + 1 + i // 3, 'allocation', 900000 + i FROM range(3000) t(i);
            INSERT INTO allocations VALUES (900001, 'PAY-999999', 'I1', 'C1', 'insurance', 10.00, now()::TIMESTAMP);
            INSERT INTO remit_claims VALUES ({base} + 1, 'REM-999999', 1, 'I1', '1', 150, 10, 0, NULL, 'DOE, JANE',
                                              0, 'posted', 0, NULL);
            INSERT INTO remit_cas VALUES ({base} + 1, 0, 'CO', '45', 140.00);"""
        )


def test_debris_of_a_cut_short_posting_is_removed_and_reported_at_the_next_open(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    invoices = _big_practice(db, 40)
    done = generate_835(tmp_path / "done.835", n_claims=40, seed=3, payer_id="60054", invoices=invoices)
    assert main(["era", str(done.path), "--db", str(db), "--user", "ana"]) == 0
    with Recon.open(db) as recon:
        before = {
            t: recon.one(f"SELECT count(*) FROM {t}")[0]
            for t in ("remittances", "payments", "remit_claims", "remit_entries", "allocations")
        }
    _crash_debris(db, "cut.835")
    capsys.readouterr()
    with Recon.open(db) as recon:
        err = capsys.readouterr().err
        assert "never completed" in err and "posting cut.835" in err and "remit_entries 3000" in err
        assert integrity.problems(recon.con) == []
        after = {t: recon.one(f"SELECT count(*) FROM {t}")[0] for t in before}
        assert after == before  # the committed posting is whole; only the debris went
        row = recon.one("SELECT user_id, detail FROM audit_log WHERE action = 'remove_crash_debris'")
        assert row is not None and row[0] == integrity.SYSTEM_USER
        detail = json.loads(row[1])
        assert detail["posting"] == "posting cut.835"
        assert detail["removed"] == {"allocations": 1, "remit_cas": 1, "remit_claims": 1, "remit_entries": 3000}
    with Recon.open(db):  # reported once: the marker went with the debris
        assert "never completed" not in capsys.readouterr().err


def test_debris_left_before_this_version_is_removed_when_the_schema_is_upgraded(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An earlier recon set no marker: the first open by this one looks for unreachable rows once."""
    with Recon.open(db) as recon:
        recon.execute("INSERT INTO remit_entries SELECT 77 + i // 3, 'adjustment', 800000 + i FROM range(300) t(i)")
        recon.execute("UPDATE meta SET value = 'an earlier schema' WHERE key = 'schema'")
    capsys.readouterr()
    with Recon.open(db) as recon:
        assert "remit_entries 300" in capsys.readouterr().err
        assert recon.one("SELECT count(*) FROM remit_entries")[0] == 0
        assert integrity.problems(recon.con) == []


def test_a_half_recovered_posting_is_taken_out_whole(db: Path, tmp_path: Path) -> None:
    """A remittance row recovered without all of its claims: the posting is removed, and a rerun posts it."""
    invoices = _big_practice(db, 30)
    gen = generate_835(tmp_path / "half.835", n_claims=30, seed=4, payer_id="60054", invoices=invoices, transactions=2)
    assert main(["era", str(gen.path), "--db", str(db), "--user", "ana"]) == 0
    with Recon.open(db) as recon:  # as if the engine had recovered only part of it, the marker standing
        state = json.dumps({"what": "posting half.835", "last_remittance": 0})
        recon.execute("INSERT INTO meta VALUES (?, ?)", [integrity.MARKER, state])
        cpid = recon.one("SELECT max(claim_posting_id) FROM remit_claims")[0]
        recon.execute(f"DELETE FROM remit_claims WHERE claim_posting_id = {int(cpid)}")
    with Recon.open(db) as recon:
        assert recon.one("SELECT count(*) FROM remittances")[0] == 0
        assert recon.one("SELECT count(*) FROM payments WHERE remittance_id IS NOT NULL")[0] == 0
        assert recon.one("SELECT count(*) FROM remit_entries")[0] == 0
        assert integrity.problems(recon.con) == []
    assert main(["era", str(gen.path), "--db", str(db), "--user", "ana"]) == 0
    with Recon.open(db) as recon:
        assert recon.one("SELECT count(*) FROM remittances")[0] == 2
        assert recon.one("SELECT sum(amount) FROM remittances")[0] == gen.total_paid
        assert integrity.problems(recon.con) == []


def _children(pid: int) -> dict[int, str]:
    """Live child processes of ``pid`` (from /proc) -> their command line."""
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found[int(entry)] = Path(f"/proc/{entry}/cmdline").read_text().replace("\0", " ")
        except (OSError, IndexError, ValueError):
            continue
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to list a process's children")
def test_the_batch_reader_dies_with_its_parent(db: Path, tmp_path: Path) -> None:
    invoices = _big_practice(db, 3000)
    files = [
        generate_835(tmp_path / f"f{k}.835", n_claims=3000, seed=20 + k, payer_id="60054", invoices=invoices).path
        for k in range(3)
    ]
    proc = _era(db, *files)
    try:
        children: dict[int, str] = {}
        deadline = time.monotonic() + 120
        while not any("spawn_main" in c for c in children.values()):
            assert proc.poll() is None and time.monotonic() < deadline, "the batch never started its reader"
            time.sleep(0.02)
            children = _children(proc.pid)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = {pid: cmd for pid, cmd in children.items() if _alive(pid)}
    for pid in left:  # do not leave them behind for the next test
        os.kill(pid, signal.SIGKILL)
    assert left == {}, f"outlived their parent: {left}"


def test_a_posting_killed_after_its_commit_is_kept_whole(db: Path, tmp_path: Path) -> None:
    """Killed between its commit and the marker's removal: everything it posted adds up, so all of it stays."""
    invoices = _big_practice(db, 60)
    gen = generate_835(tmp_path / "kept.835", n_claims=60, seed=8, payer_id="60054", invoices=invoices, transactions=2)
    assert main(["era", str(gen.path), "--db", str(db), "--user", "ana"]) == 0
    with Recon.open(db) as recon:
        before = {t: recon.one(f"SELECT count(*) FROM {t}")[0] for t in ("remittances", "payments", "remit_entries")}
        state = json.dumps({"what": "posting kept.835", "last_remittance": 0})
        recon.execute("INSERT INTO meta VALUES (?, ?)", [integrity.MARKER, state])
    with Recon.open(db) as recon:
        assert {t: recon.one(f"SELECT count(*) FROM {t}")[0] for t in before} == before
        assert recon.one(f"SELECT count(*) FROM meta WHERE key = '{integrity.MARKER}'")[0] == 0
        assert integrity.problems(recon.con) == []
