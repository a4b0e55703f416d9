"""The Insurance Payment rules, driven through the CLI and read back as CSV."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from tests.conftest import Run, read_csv


@pytest.fixture
def db(any_db: Path | str) -> Path | str:
    """These tests run on both engines (a DuckDB file, a PostgreSQL database)."""
    return any_db


def ledger(cli: Callable[..., Run], db: Path, client: str = "C1") -> dict[str, dict[str, str]]:
    run = cli("ledger", client, "--db", db, "--format", "csv")
    assert run.code == 0, run.err
    return {r["invoice_id"]: r for r in read_csv(run.out)}


def payments(cli: Callable[..., Run], db: Path, client: str = "C1") -> list[dict[str, str]]:
    run = cli("payments", client, "--db", db, "--format", "csv")
    assert run.code == 0, run.err
    return read_csv(run.out)


def pay(cli: Callable[..., Run], db: Path, *args: str, client: str = "C1", payer: str = "AET") -> Run:
    return cli("pay", client, "--db", db, "--user", "ana", "--payer", payer, "--method", "insurance-check", *args)


def test_defaults_from_copay_and_policy(cli: Callable[..., Run], db: Path) -> None:
    rows = ledger(cli, db)
    assert (rows["I1"]["client_amt_due"], rows["I1"]["ins_amt_due"]) == ("20.00", "130.00")
    assert (rows["I4"]["client_amt_due"], rows["I4"]["ins_amt_due"]) == ("5.00", "95.00")  # BCBS policy co-pay
    assert (rows["I5"]["client_amt_due"], rows["I5"]["ins_amt_due"]) == ("10.00", "0.00")  # co-pay capped at fee
    assert (rows["I8"]["client_amt_due"], rows["I8"]["ins_amt_due"]) == ("50.00", "100.00")  # explicit
    assert ledger(cli, db, "C3")["I7"]["client_amt_due"] == "120.00"  # self-pay owes the fee
    assert ledger(cli, db, "C2")["I6"]["ins_amt_due"] == "170.00"
    assert set(rows["I1"]) >= {
        "invoice_id",
        "service_date",
        "service_code",
        "fee",
        "client_amt_due",
        "client_amt_paid",
        "ins_amt_due",
        "ins_amt_paid",
        "ins_adjusted",
        "balance",
    }


def test_ticked_invoices_total_is_their_sum(cli: Callable[..., Run], db: Path) -> None:
    run = pay(cli, db, "--invoice", "I1", "--invoice", "I2", "--payment-number", "CHK1")
    assert run.code == 0, run.err
    rows = ledger(cli, db)
    assert rows["I1"]["ins_amt_paid"] == "130.00" and rows["I2"]["ins_amt_paid"] == "100.00"
    assert rows["I1"]["balance"] == "20.00"
    (p,) = payments(cli, db)
    assert (p["amount"], p["applied"], p["unapplied"], p["status"]) == ("230.00", "230.00", "0.00", "recorded")
    assert (p["method"], p["payer_id"], p["payment_number"], p["user_id"]) == ("insurance-check", "AET", "CHK1", "ana")


def test_partial_payment_and_payer_by_name(cli: Callable[..., Run], db: Path) -> None:
    assert pay(cli, db, "--invoice", "I2=40.5", payer="Aetna").code == 0
    assert ledger(cli, db)["I2"]["ins_amt_paid"] == "40.50"
    assert ledger(cli, db)["I2"]["balance"] == "79.50"


def test_lump_sum_oldest_first_skips_paid_and_keeps_unapplied(cli: Callable[..., Run], db: Path) -> None:
    assert pay(cli, db, "--invoice", "I2").code == 0  # I2 paid in full first
    run = pay(cli, db, "--amount", "300.00")
    assert run.code == 0, run.err
    rows = ledger(cli, db)
    # AET invoices with open due, oldest first: I1 130, (I2 paid), I3 100, I8 100; I4 is BCBS
    assert rows["I1"]["ins_amt_paid"] == "130.00"
    assert rows["I3"]["ins_amt_paid"] == "100.00"
    assert rows["I8"]["ins_amt_paid"] == "70.00"
    assert rows["I4"]["ins_amt_paid"] == "0.00"
    assert payments(cli, db)[-1]["unapplied"] == "0.00"
    run = pay(cli, db, "--amount", "50.00")
    assert "Unapplied credit on this payment: 20.00" in run.out
    last = payments(cli, db)[-1]
    assert (last["applied"], last["unapplied"]) == ("30.00", "20.00")


def test_amount_above_invoice_sum_is_unapplied_not_spread(cli: Callable[..., Run], db: Path) -> None:
    assert pay(cli, db, "--amount", "150.00", "--invoice", "I2=60").code == 0
    rows = ledger(cli, db)
    assert rows["I2"]["ins_amt_paid"] == "60.00" and rows["I1"]["ins_amt_paid"] == "0.00"
    assert payments(cli, db)[0]["unapplied"] == "90.00"


@pytest.mark.parametrize(
    ("args", "user", "message"),
    [
        (("--invoice", "I1"), "ben", "Billing permission"),
        (("--invoice", "I6"), "ana", "not one of this client's invoices"),
        (("--amount", "0"), "ana", "more than 0.00"),
        (("--amount", "-5"), "ana", "more than 0.00"),
        (("--amount", "10.005"), "ana", "two decimal places"),
        (("--invoice", "I1=1.001"), "ana", "two decimal places"),
        (("--invoice", "I5"), "ana", "no open Ins Amt Due"),
        (("--invoice", "I1=130.01"), "ana", "more than its open Ins Amt Due of 130.00"),
        (("--amount", "100", "--invoice", "I1"), "ana", "less than the invoice Payments"),
        (("--invoice", "I1", "--invoice", "I1"), "ana", "given twice"),
    ],
)
def test_refusals_write_nothing(
    cli: Callable[..., Run], db: Path, args: tuple[str, ...], user: str, message: str
) -> None:
    run = cli("pay", "C1", "--db", db, "--user", user, "--payer", "AET", "--method", "insurance", *args)
    assert run.code != 0
    assert message in run.err
    assert "Traceback" not in run.err and len(run.err.strip().splitlines()) == 1
    assert payments(cli, db) == []
    assert ledger(cli, db)["I1"]["ins_amt_paid"] == "0.00"


def test_payer_not_on_client_refused(cli: Callable[..., Run], db: Path) -> None:
    run = pay(cli, db, "--invoice", "I1", payer="UHC")
    assert run.code == 1 and "not one of Avery Chen's insurance providers" in run.err
    run = pay(cli, db, "--invoice", "I1", payer="NOPE")
    assert run.code == 1 and "No insurance provider 'NOPE'" in run.err
    assert payments(cli, db) == []


@pytest.mark.parametrize("engine", ["duckdb"])  # reads the ledger file itself
def test_whose_responsibility_a_ticked_invoice_meets(cli: Callable[..., Run], db: Path) -> None:
    """C1: AET primary, BCBS secondary. I1 is billed to AET, I4 to BCBS."""
    # the secondary on the primary's invoice meets the part due from it, and says so
    run = pay(cli, db, "--invoice", "I1=50", payer="BCBS")
    assert run.code == 0, run.err
    assert "I1: meets the part due from BCBS, after AET (coordination of benefits)" in run.out
    # the primary on the secondary's invoice is refused, nothing written...
    run = pay(cli, db, "--invoice", "I4=40", payer="AET")
    assert run.code == 1 and "Invoice I4: its open Ins Amt Due is owed by BCBS, not AET" in run.err
    assert ledger(cli, db)["I4"]["ins_amt_paid"] == "0.00" and len(payments(cli, db)) == 1
    # ...unless the analyst confirms it; the audit keeps that they did
    run = pay(cli, db, "--invoice", "I4=40", "--confirm-other-payer", payer="AET")
    assert run.code == 0, run.err
    assert "I4: meets an invoice whose Ins Amt Due is owed by BCBS, not AET (confirmed by the analyst)" in run.out
    assert ledger(cli, db)["I4"]["ins_amt_paid"] == "40.00"
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        (detail,) = con.execute(
            "SELECT detail FROM audit_log WHERE action = 'record_payment' ORDER BY audit_id DESC LIMIT 1"
        ).fetchone()
    finally:
        con.close()
    assert '"confirmed_other_payer": true' in detail


def test_unknown_user_and_client(cli: Callable[..., Run], db: Path) -> None:
    run = cli("pay", "C1", "--db", db, "--user", "zed", "--payer", "AET", "--method", "insurance", "--amount", "5")
    assert run.code == 1 and "No user 'zed'" in run.err
    run = cli("pay", "C99", "--db", db, "--user", "ana", "--payer", "AET", "--method", "insurance", "--amount", "5")
    assert run.code == 1 and "No client 'C99'" in run.err
    run = cli("pay", "C1", "--db", db, "--user", "ana", "--payer", "AET", "--method", "cash", "--amount", "5")
    assert run.code == 1 and "Payment Method" in run.err


def test_method_refusal_lists_the_card_only_when_enrolled(
    cli: Callable[..., Run], db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ("pay", "C1", "--db", db, "--user", "ana", "--payer", "AET", "--method", "cash", "--amount", "5")
    monkeypatch.setenv("RECON_CONFIG", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text('processor = "none"\n')
    monkeypatch.delenv("RECON_PROCESSOR", raising=False)
    run = cli(*args)
    assert run.code == 1
    assert "expected one of insurance, insurance-check, insurance-eft-ach" in run.err
    assert "insurance-card" not in run.err
    monkeypatch.setenv("RECON_PROCESSOR", "stripe")
    monkeypatch.setenv("RECON_STRIPE_SECRET_KEY", "sk_test_123456789")
    monkeypatch.setenv("RECON_STRIPE_PUBLISHABLE_KEY", "pk_test_123456789")
    run = cli(*args)
    assert run.code == 1 and "insurance-eft-ach, insurance-card" in run.err
    assert payments(cli, db) == []


def test_clients_search_without_match_says_so(cli: Callable[..., Run], db: Path) -> None:
    run = cli("clients", "smith", "--db", db)
    assert run.code == 0 and run.out == "No client matches 'smith'\n"
    assert "Chen" in cli("clients", "chen", "--db", db).out
    assert cli("clients", "smith", "--db", db, "--format", "json").out.strip() == "[]"


def test_notes_show_in_the_payments_views(cli: Callable[..., Run], db: Path) -> None:
    long = "called Aetna; rep Jo said the check covers January " * 2
    assert pay(cli, db, "--invoice", "I1", "--notes", long).code == 0
    assert pay(cli, db, "--invoice", "I2", "--notes", "line one\nline two").code == 0
    table = cli("payments", "C1", "--db", db).out.splitlines()
    assert table[0].split()[-1] == "notes"
    assert table[2].endswith("called Aetna; rep Jo said the check cov…")
    assert table[3].endswith("line one line two") and len(table) == 4
    rows = payments(cli, db)
    assert [r["notes"] for r in rows] == [long, "line one\nline two"]


def test_duplicate_payment_number_warns_and_records(cli: Callable[..., Run], db: Path) -> None:
    first = pay(cli, db, "--invoice", "I1", "--payment-number", "CHK77")
    second = pay(cli, db, "--invoice", "I2", "--payment-number", "CHK77")
    assert first.err == ""
    assert second.code == 0
    assert "Payment Number CHK77 was already used by AET" in second.err and "PAY-000001" in second.err
    assert len(payments(cli, db)) == 2
    # the same number from another payer is not a duplicate
    assert pay(cli, db, "--invoice", "I4", "--payment-number", "CHK77", payer="BCBS").err == ""


def test_idempotency_key(cli: Callable[..., Run], db: Path) -> None:
    first = pay(cli, db, "--invoice", "I1", "--key", "k-1")
    again = pay(cli, db, "--invoice", "I1", "--key", "k-1")
    assert again.code == 0 and again.out == "Already recorded as payment PAY-000001; nothing new was recorded\n"
    assert again.err == ""  # one message, not that and a warning saying the same
    assert len(payments(cli, db)) == 1
    assert ledger(cli, db)["I1"]["ins_amt_paid"] == "130.00"
    other = pay(cli, db, "--invoice", "I2", "--key", "k-1")
    assert other.code == 1 and "different details" in other.err
    assert len(payments(cli, db)) == 1
    dated = pay(cli, db, "--invoice", "I2", "--key", "k-2", "--date", "2026-03-01")
    assert dated.code == 0
    assert pay(cli, db, "--invoice", "I2", "--key", "k-2", "--date", "2026-03-02").code == 1
    assert first.code == 0


def test_void_reverses_and_keeps_original(cli: Callable[..., Run], db: Path) -> None:
    assert pay(cli, db, "--invoice", "I1", "--amount", "200").code == 0
    assert cli("void", "PAY-000001", "--db", db, "--user", "ben", "--reason", "x").code == 1
    run = cli("void", "PAY-000001", "--db", db, "--user", "ana", "--reason", "posted to wrong client")
    assert run.code == 0, run.err
    rows = payments(cli, db)
    assert [(r["payment_id"], r["status"], r["amount"], r["unapplied"]) for r in rows] == [
        ("PAY-000001", "voided", "200.00", "70.00"),
        ("PAY-000002", "reversal", "-200.00", "-70.00"),
    ]
    assert ledger(cli, db)["I1"]["ins_amt_paid"] == "0.00"
    again = cli("void", "PAY-000001", "--db", db, "--user", "ana", "--reason", "again")
    assert again.code == 1 and "already voided" in again.err


def test_cents_add_up(cli: Callable[..., Run], db: Path) -> None:
    for _ in range(3):
        assert pay(cli, db, "--invoice", "I2=33.33").code == 0
    row = ledger(cli, db)["I2"]
    assert row["ins_amt_paid"] == "99.99"
    assert Decimal(row["balance"]) == Decimal("120.00") - Decimal("99.99")


def test_json_and_table_formats(cli: Callable[..., Run], db: Path) -> None:
    import json

    pay(cli, db, "--invoice", "I1")
    data = json.loads(cli("ledger", "C1", "--db", db, "--format", "json").out)
    assert data[0]["ins_amt_paid"] == "130.00"
    table = cli("ledger", "C1", "--db", db).out
    assert "ins_amt_paid" in table.splitlines()[0] and "130.00" in table
