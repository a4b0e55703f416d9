"""``recon migrate``: a DuckDB ledger onto an empty PostgreSQL database and back, proven equal; and the URI's password.

Run against a real server (tests/pgserver.py). The source ledger has lived: an 835
posted (payments, adjustments, exceptions), a manual payment, a void and a deposit
file, so every kind of row is copied.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from recon.services import Recon
from tests import pgserver
from tests.conftest import Run
from tests.era.test_post import file_a

pytestmark = pytest.mark.parametrize("engine", ["postgresql"])


def _lived(cli: Callable[..., Run], db: Path, tmp_path: Path) -> None:
    assert cli("era", file_a(tmp_path), "--db", db, "--user", "ana").code == 0
    for number in ("CHK-1", "CHK-2"):
        run = cli("pay", "C2", "--db", db, "--user", "ana", "--payer", "BCBS", "--method", "insurance-check",
                  "--invoice", "I6=40", "--payment-number", number)  # fmt: skip
        assert run.code == 0, run.err
    run = cli("void", "PAY-000003", "--db", db, "--user", "ana", "--reason", "entered twice")
    assert run.code == 0, run.err


def _state(target: Path | str) -> tuple[object, ...]:
    with Recon.open(target) as recon:
        ledger = [tuple(r) for r in recon.execute("SELECT * FROM invoices ORDER BY invoice_id").fetchall()]
        rows = [(r.invoice_id, r.ins_amt_paid, r.client_amt_due, r.ins_adjusted, r.balance)
                for c in ("C1", "C2", "C3") for r in recon.ledger_rows(c)]  # fmt: skip
        payments = recon.execute("SELECT payment_id, amount, reverses FROM payments ORDER BY payment_id").fetchall()
        exceptions = recon.execute("SELECT exception_id, kind, status FROM exception_status ORDER BY 1").fetchall()
        return ledger, rows, payments, exceptions


def test_a_duckdb_ledger_goes_to_postgresql_and_back_equal(
    cli: Callable[..., Run], db: Path, ledger_target: str, tmp_path: Path
) -> None:
    _lived(cli, db, tmp_path)
    run = cli("migrate", "--db", db, "--to", ledger_target, "--user", "ana")
    assert run.code == 0, run.err
    assert "every money column's sum is the same in both" in run.out
    assert "every Ledger amount and balance the same" in run.out
    assert _state(ledger_target) == _state(db)

    # the server ledger goes on numbering where the file stopped
    run = cli("pay", "C2", "--db", ledger_target, "--user", "ana", "--payer", "BCBS", "--method", "insurance-check",
              "--amount", "10", "--payment-number", "CHK-9")  # fmt: skip
    assert run.code == 0, run.err
    with Recon.open(db) as recon:  # numbers are never reused (a file's sequence may leave a gap)
        last = recon.one("SELECT max(payment_id) FROM payments")[0]
    new = re.search(r"Recorded payment (PAY-\d+):", run.out)
    assert new and new.group(1) > last, (new, last)

    back = tmp_path / "back.duckdb"
    run = cli("migrate", "--db", ledger_target, "--to", back, "--user", "ana")
    assert run.code == 0, run.err
    assert _state(back) == _state(ledger_target)


def test_a_target_that_is_not_empty_is_refused(cli: Callable[..., Run], db: Path, ledger_target: str) -> None:
    assert cli("migrate", "--db", db, "--to", ledger_target, "--user", "ana").code == 0
    run = cli("migrate", "--db", db, "--to", ledger_target, "--user", "ana")
    assert run.code == 1
    assert "is not empty" in run.err and "Traceback" not in run.err
    with Recon.open(ledger_target) as recon:  # nothing was copied twice
        assert recon.one("SELECT count(*) FROM invoices")[0] == 8


def test_migrate_needs_billing(cli: Callable[..., Run], db: Path, ledger_target: str) -> None:
    run = cli("migrate", "--db", db, "--to", ledger_target, "--user", "ben")
    assert run.code == 1 and "Billing" in run.err


def test_the_password_is_never_shown(cli: Callable[..., Run], pg_server: str, engine: str) -> None:
    wrong = re.sub(r"://[^@/]*@", "://ana:S3cret-pw@", pgserver.with_database(pg_server, "no_such_database"), count=1)
    run = cli("ledger", "C1", "--db", wrong)
    assert run.code == 1
    assert "S3cret-pw" not in run.err + run.out
    assert "ana:***@" in run.err
    assert "Traceback" not in run.err


def test_sslmode_is_passed_to_the_server(cli: Callable[..., Run], ledger_target: str) -> None:
    """libpq reads sslmode from the URI as given: a value it does not know is its refusal, disable connects.

    (The test server listens on a Unix socket, where libpq uses no SSL whatever the mode.)
    """
    sep = "&" if "?" in ledger_target else "?"
    run = cli("clients", "--db", f"{ledger_target}{sep}sslmode=bogus")
    assert run.code == 1 and 'invalid sslmode value: "bogus"' in run.err, run.err
    run = cli("clients", "--db", f"{ledger_target}{sep}sslmode=disable")
    assert run.code == 0, run.err
