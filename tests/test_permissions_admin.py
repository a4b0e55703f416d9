"""Issue 9 §2: the admin permission, the first admin, and unknown users refused everywhere.

The escalation reproduced: a user without Billing loaded a users.csv that made a new
user with Billing, who then recorded and voided payments. Loading now needs Admin,
except the first load into a ledger without users, which creates the first admin and
says so; every command, in the CLI and in the library, refuses an unknown user.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from recon.errors import NotFound, PermissionDenied
from recon.model import InvoicePick, PaymentMethod, PaymentRequest
from recon.services import Recon
from tests.conftest import PRACTICE, Run, write_practice
from tests.era.edi import claim, st, write_835

ADMIN_PRACTICE = {**PRACTICE, "users.csv": [*PRACTICE["users.csv"], ("lee", "Lee Admin", "admin")]}
MALLORY = {"users.csv": [("user_id", "name", "permissions"), ("mal", "Mallory", "billing;admin")]}


def _count(db: Path, sql: str) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute(sql).fetchone()
        return int(row[0]) if row else 0
    finally:
        con.close()


@pytest.fixture
def admin_db(tmp_path: Path, cli: Callable[..., Run]) -> Path:
    db = tmp_path / "admin.duckdb"
    run = cli("load", write_practice(tmp_path / "practice", ADMIN_PRACTICE), "--db", db)
    assert run.code == 0, run.err
    return db


def test_first_load_creates_the_first_admin_and_says_so(cli: Callable[..., Run], tmp_path: Path) -> None:
    db = tmp_path / "new.duckdb"
    run = cli("load", write_practice(tmp_path / "p", ADMIN_PRACTICE), "--db", db)
    assert run.code == 0, run.err
    assert "First load into an empty ledger: created its first admin(s): lee" in run.out
    assert _count(db, "SELECT count(*) FROM audit_log WHERE action = 'load_practice' AND detail LIKE '%first_admins%'")
    # the same files again, by the admin: nothing new, and no word of a first admin
    again = cli("load", tmp_path / "p", "--db", db, "--user", "lee")
    assert again.code == 0 and "first admin" not in again.out and "invoices: 0 added, 8 unchanged" in again.out


def test_old_users_file_without_admin_still_loads_and_says_no_admin(cli: Callable[..., Run], tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    run = cli("load", write_practice(tmp_path / "p"), "--db", db)  # users.csv as before: no admin anywhere
    assert run.code == 0, run.err
    assert "no user has the admin permission" in run.out
    assert _count(db, "SELECT count(*) FROM users") == 2
    later = cli("load", tmp_path / "p", "--db", db, "--user", "ana")
    assert later.code == 1 and "does not have the admin permission" in later.err


def test_only_a_load_into_an_empty_ledger_creates_the_first_admin(cli: Callable[..., Run], tmp_path: Path) -> None:
    db = tmp_path / "l.duckdb"
    no_users = {k: v for k, v in PRACTICE.items() if k != "users.csv"}
    first = cli("load", write_practice(tmp_path / "p", no_users), "--db", db)
    assert first.code == 0 and "it had no users.csv, so this ledger takes no further load" in first.out
    later = cli("load", write_practice(tmp_path / "mal", MALLORY), "--db", db)
    assert later.code == 1 and "holds a practice but no users, so no admin can load into it" in later.err
    assert _count(db, "SELECT count(*) FROM users") == 0


def test_first_load_by_a_user_it_does_not_create_is_refused(cli: Callable[..., Run], tmp_path: Path) -> None:
    db = tmp_path / "l.duckdb"
    run = cli("load", write_practice(tmp_path / "p", ADMIN_PRACTICE), "--db", db, "--user", "zed")
    assert run.code == 1 and "No user 'zed'" in run.err and "Traceback" not in run.err
    assert _count(db, "SELECT count(*) FROM users") == 0 and _count(db, "SELECT count(*) FROM invoices") == 0


@pytest.mark.parametrize(
    ("user", "message"),
    [
        (None, "needs --user: an admin of this ledger"),
        ("zed", "No user 'zed' in this ledger"),
        ("ben", "Ben Front Desk (ben) does not have the admin permission"),
        ("ana", "Ana Analyst (ana) does not have the admin permission"),
    ],
)
def test_escalation_through_load_is_refused(
    cli: Callable[..., Run],
    admin_db: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    user: str | None,
    message: str,
) -> None:
    monkeypatch.delenv("RECON_USER", raising=False)
    folder = write_practice(tmp_path / "mal", MALLORY)
    run = cli("load", folder, "--db", admin_db, *(("--user", user) if user else ()))
    assert run.code == 1 and message in run.err, run.err
    assert _count(admin_db, "SELECT count(*) FROM users WHERE user_id = 'mal'") == 0
    # and so the would-be user can do nothing with money
    pay = cli("pay", "C1", "--db", admin_db, "--user", "mal", "--payer", "AET", "--method", "insurance", "--amount", 5)
    assert pay.code == 1 and "No user 'mal'" in pay.err
    assert _count(admin_db, "SELECT count(*) FROM payments") == 0


def test_an_admin_adds_a_user_who_then_records(cli: Callable[..., Run], admin_db: Path, tmp_path: Path) -> None:
    folder = write_practice(tmp_path / "new_user", MALLORY)
    run = cli("load", folder, "--db", admin_db, "--user", "lee")
    assert run.code == 0 and "users: 1 added" in run.out
    pay = cli("pay", "C1", "--db", admin_db, "--user", "mal", "--payer", "AET", "--method", "insurance", "--amount", 5)
    assert pay.code == 0, pay.err


def test_library_load_needs_an_admin(admin_db: Path, tmp_path: Path) -> None:
    folder = write_practice(tmp_path / "mal", MALLORY)
    with Recon.open(admin_db) as recon:
        with pytest.raises(PermissionDenied, match="admin permission"):
            recon.load_practice(folder, "ana")
        with pytest.raises(NotFound, match="No user 'zed'"):
            recon.load_practice(folder, "zed")
        with pytest.raises(PermissionDenied, match="needs --user"):
            recon.load_practice(folder)
        assert recon.one("SELECT count(*) FROM users") == (3,)
        recon.load_practice(folder, "lee")
        assert recon.user("mal").has_billing


def _era_file(tmp_path: Path) -> Path:
    return write_835(
        tmp_path / "a.835", [st("0001", amount="130", trace="T1", claims=[claim("I1", "1", "150", "130")])]
    )


def test_every_command_refuses_an_unknown_user(cli: Callable[..., Run], admin_db: Path, tmp_path: Path) -> None:
    before = admin_db.read_bytes()
    era = _era_file(tmp_path)
    deposits = tmp_path / "dep.csv"
    deposits.write_text("deposit_id,deposit_date,amount,trace_number,description\nD1,2026-03-02,130.00,T1,x\n")
    commands = [
        ("pay", "C1", "--user", "zed", "--payer", "AET", "--method", "insurance", "--amount", "5"),
        ("void", "PAY-000001", "--user", "zed", "--reason", "x"),
        ("era", era, "--user", "zed"),
        ("era", era, "--user", "zed", "--dry-run"),
        ("deposits", "--load", deposits, "--user", "zed"),
        ("deposits", "--load", deposits, "--user", "zed", "--dry-run"),
        ("load", tmp_path, "--user", "zed"),
    ]
    for args in commands:
        run = cli(*args, "--db", admin_db)
        assert run.code == 1, (args, run.out, run.err)
        assert "No user 'zed'" in run.err and "Traceback" not in run.err, (args, run.err)
    for table in ("payments", "remittances", "deposits", "audit_log"):
        assert _count(admin_db, f"SELECT count(*) FROM {table}") == (0 if table != "audit_log" else 1), table
    del before


def test_library_refuses_an_unknown_user(admin_db: Path, tmp_path: Path) -> None:
    from recon.remit.deposits import load_deposits
    from recon.remit.post import post_remittances

    request = PaymentRequest("C1", "AET", PaymentMethod.INSURANCE, picks=(InvoicePick("I1", Decimal("10")),))
    deposits = tmp_path / "dep.csv"
    deposits.write_text("deposit_id,deposit_date,amount,trace_number,description\nD1,2026-03-02,130.00,T1,x\n")
    with Recon.open(admin_db) as recon:
        with pytest.raises(NotFound, match="No user 'zed'"):
            recon.record_payment(request, "zed")
        pid = recon.record_payment(request, "ana").payment_id
        with pytest.raises(NotFound, match="No user 'zed'"):
            recon.void_payment(pid, "zed", "wrong client")
        for dry_run in (False, True):
            with pytest.raises(NotFound, match="No user 'zed'"):
                post_remittances(recon, [_era_file(tmp_path)], "zed", dry_run=dry_run)
            with pytest.raises(NotFound, match="No user 'zed'"):
                load_deposits(recon, deposits, "zed", dry_run=dry_run)
        assert recon.one("SELECT count(*) FROM payments") == (1,)
        assert recon.one("SELECT count(*) FROM remittances") == (0,)


def test_worklist_actions_refuse_an_unknown_user(cli: Callable[..., Run], admin_db: Path, tmp_path: Path) -> None:
    from recon.remit.worklist import mark_denial, match_claim

    nope = claim("NOPE-1", "1", "80", "60", cas=[["CO", "45", "20"]])
    unmatched = write_835(tmp_path / "u.835", [st("0001", amount="60", trace="T7", claims=[nope])])
    assert cli("era", unmatched, "--db", admin_db, "--user", "ana").code == 0
    with Recon.open(admin_db) as recon:
        row = recon.one("SELECT exception_id FROM exceptions LIMIT 1")
        assert row is not None
        with pytest.raises(NotFound, match="No user 'zed'"):
            match_claim(recon, row[0], "I1", "zed")
        with pytest.raises(NotFound, match="No user 'zed'"):
            mark_denial(recon, row[0], "write_off", "small balance", "zed")
