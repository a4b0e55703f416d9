"""Several analysts, one ledger file: a second writer waits for the ledger instead of being refused.

DuckDB lets one process write a file at a time. recon holds the file only while a
command works, and a command that finds it busy waits (``RECON_DB_WAIT``, 15 s by
default), says once what it waits for, then refuses clearly with nothing changed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from recon.errors import LedgerError
from recon.services import Recon

ROOT = Path(__file__).resolve().parents[1]

WRITER = """
import sys
from recon.cli import main

db, worker = sys.argv[1], sys.argv[2]
for i in range(25):
    code = main(["pay", "C2", "--db", db, "--user", "ana", "--payer", "BCBS", "--method", "insurance-check",
                 "--amount", "1.00", "--payment-number", f"CHK-{worker}-{i}", "--key", f"w{worker}-{i}"])
    if code != 0:
        sys.exit(f"worker {worker} payment {i}: exit {code}")
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RECON_DB", "RECON_DB_KEY", "RECON_DB_WAIT")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def _payments(db: Path) -> int:
    with Recon.open(db) as recon:
        return recon.one("SELECT count(*) FROM payments")[0]


@pytest.mark.slow
def test_four_writers_record_all_hundred_payments(db: Path) -> None:
    before = _payments(db)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(db), str(k)],
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(4)
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    for p, err in zip(procs, errors, strict=True):
        assert p.returncode == 0, err
        assert "open in another program" not in err, err
    with Recon.open(db) as recon:
        assert recon.one("SELECT count(*) FROM payments")[0] == before + 100
        keys = {
            r[0]
            for r in recon.execute("SELECT idempotency_key FROM payments WHERE idempotency_key LIKE 'w%'").fetchall()
        }
        assert keys == {f"w{k}-{i}" for k in range(4) for i in range(25)}
        assert recon.one("SELECT count(*) FROM audit_log WHERE action = 'record_payment'")[0] >= 100


API_WRITER = """
import sys
from recon.model import PaymentMethod, PaymentRequest
from recon.money import parse_amount
from recon.services import Recon

db, worker = sys.argv[1], sys.argv[2]
with Recon.open(db, hold=True) as recon:  # one Recon for all 25: it lets the ledger go when others wait
    for i in range(25):
        recon.record_payment(PaymentRequest("C2", "BCBS", PaymentMethod.parse("insurance-check"),
                                            parse_amount("2.00", "amount"), idempotency_key=f"api{worker}-{i}"),
                             "ana")
"""


@pytest.mark.slow
def test_four_long_lived_recons_take_turns(db: Path) -> None:
    before = _payments(db)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", API_WRITER, str(db), str(k)],
            cwd=ROOT,
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(4)
    ]
    errors = [p.communicate(timeout=300)[1] for p in procs]
    for p, err in zip(procs, errors, strict=True):
        assert p.returncode == 0, err
    assert _payments(db) == before + 100
    assert not list(db.parent.glob(db.name + ".wait-*"))  # each waiter took its sign away


def _pay(db: Path, wait: str, key: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "recon.cli",
            "pay",
            "C2",
            "--db",
            str(db),
            "--user",
            "ana",
            "--payer",
            "BCBS",
            "--method",
            "insurance-check",
            "--amount",
            "5.00",
            "--key",
            key,
        ],
        cwd=ROOT,
        env=_env(RECON_DB_WAIT=wait),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_writer_waits_while_the_ledger_is_busy_then_records(db: Path) -> None:
    holder = Recon.open(db, hold=True)
    try:
        proc = _pay(db, "120", "waited")
        assert proc.stderr is not None
        said = proc.stderr.readline()  # blocks until the writer says it waits: the ledger is still held
        assert "in use by another program" in said and "waiting up to 120 s" in said, said
    finally:
        holder.close()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, said + err
    assert "Recorded payment" in out
    assert said.count("waiting") == 1 and "waiting" not in err  # said once
    with Recon.open(db) as recon:
        assert recon.one("SELECT count(*) FROM payments WHERE idempotency_key = 'waited'")[0] == 1


def test_a_writer_refuses_clearly_after_the_wait_with_nothing_written(db: Path) -> None:
    before = _payments(db)
    holder = Recon.open(db, hold=True)
    try:
        proc = _pay(db, "0.5", "refused")
        out, err = proc.communicate(timeout=120)
    finally:
        holder.close()
    assert proc.returncode == 1, out + err
    assert "waiting up to 0.5 s" in err
    assert "is open in another program" in err and "close it and retry" in err and "nothing was changed" in err
    assert "Traceback" not in err
    assert _payments(db) == before


def test_a_bad_wait_setting_is_named(db: Path) -> None:
    holder = Recon.open(db, hold=True)
    try:
        _out, err = _pay(db, "soon", "bad-wait").communicate(timeout=120)
    finally:
        holder.close()
    assert "RECON_DB_WAIT" in err and "'soon'" in err and "Traceback" not in err


HOLDER = """
import sys
from recon.errors import LedgerError
from recon.services import Recon

with Recon.open(sys.argv[1], hold=True):
    print("holding", flush=True)
    sys.stdin.readline()
"""


def test_recon_open_waits_as_asked_then_refuses(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db)],
        cwd=ROOT,
        env=_env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with pytest.raises(LedgerError, match=r"stayed busy for 0\.3 s; nothing was changed: close it and retry"):
            Recon.open(db, wait=0.3)
        assert capsys.readouterr().err.count("waiting up to 0.3 s") == 1
    finally:
        holder.communicate("\n", timeout=120)
    with Recon.open(db, wait=0) as recon:  # free again: no wait needed
        assert recon.one("SELECT count(*) FROM users")[0] > 0
