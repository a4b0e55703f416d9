"""Credit balances are shown apart from A/R, and worked from the worklist (refund, apply)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from recon import reports
from recon.errors import InvalidAmount, NotFound, PaymentRefused, PermissionDenied
from recon.model import InvoicePick, PaymentMethod, PaymentRequest
from recon.remit.post import post_remittances
from recon.remit.worklist import apply_overpayment, refund_overpayment
from recon.services import Recon
from recon.store import queries
from tests.conftest import Run, read_csv
from tests.era.edi import claim, st, write_835

D = Decimal
I1 = "overpayment:I1"


@pytest.fixture
def db(any_db: Path | str) -> Path | str:
    """These tests run on both engines (a DuckDB file, a PostgreSQL database)."""
    return any_db


def post(recon: Recon, path: Path) -> None:
    report = post_remittances(recon, [path], "ana")
    assert report.ok, [f.summary() for f in report.files]


@pytest.fixture
def recon(db: Path, tmp_path: Path) -> Iterator[Recon]:
    """C1's I1 (fee 150): Aetna pays 100 (CO-45 30, PR-2 20), then Blue Cross as secondary pays 40
    (OA-23 110) where 20 was left: I1 is overpaid by 20. Then a manual Aetna lump sum of 1000 pays
    I2, I3 and I8 (300) and leaves 700 unapplied."""
    primary = claim(
        "I1",
        "1",
        "150",
        "100",
        "20",
        lines=[("HC:90837", "150", "100", "20260105", [["CO", "45", "30"], ["PR", "2", "20"]])],
    )
    secondary = claim("I1", "2", "150", "40", lines=[("HC:90837", "150", "40", "20260105", [["OA", "23", "110"]])])
    with Recon.open(db) as r:
        post(r, write_835(tmp_path / "aetna.835", [st("0001", amount="100", trace="T1", claims=[primary])]))
        post(
            r,
            write_835(
                tmp_path / "bcbs.835",
                [st("0001", amount="40", trace="B1", payer=("Blue Cross", "00570"), claims=[secondary])],
            ),
        )
        r.record_payment(
            PaymentRequest("C1", "AET", PaymentMethod.INSURANCE_CHECK, amount=D("1000.00"), payment_number="CHK-9"),
            "ana",
        )
        yield r  # fmt: skip


def ledger(recon: Recon) -> dict[str, tuple[Decimal, Decimal]]:
    """invoice -> (Ins Amt Paid, Balance)."""
    return {r[0]: (r[7], r[9]) for r in recon.execute(queries.ledger_sql()).fetchall()}


def lump_payment(recon: Recon) -> str:
    return recon.one("SELECT payment_id FROM payments WHERE payment_number = 'CHK-9'")[0]


def test_aging_buckets_only_what_is_owed_and_the_credits_are_listed_apart(recon: Recon) -> None:
    assert ledger(recon)["I1"] == (D("140.00"), D("-20.00"))
    aging = reports.ar_aging(recon)
    # Aetna's I2, I3, I8 are paid by the lump sum and I1's −20 is not netted into a bucket: no Aetna row
    assert "AET" not in set(aging["payer_id"].dropna())
    assert all(aging["total"] > 0)
    credits = reports.credit_balances(recon)
    rows = {r.exception_id: r for r in credits.itertuples()}
    lump = lump_payment(recon)
    assert set(rows) == {I1, f"overpayment:payment:{lump}"}
    i1 = rows[I1]
    assert (i1.source, i1.invoice_id, i1.responsibility, i1.due, i1.paid, i1.credit) == (
        "invoice", "I1", "insurance", D("120.00"), D("140.00"), D("20.00"))  # fmt: skip
    assert i1.payer_id == "AET, BCBS" and "(ERA trace T1)" in i1.payments and "BCBS 40.00 (ERA trace B1)" in i1.payments
    unapplied = rows[f"overpayment:payment:{lump}"]
    assert (unapplied.source, unapplied.payer_id, unapplied.paid, unapplied.credit) == (
        "unapplied", "AET", D("1000.00"), D("700.00"))  # fmt: skip
    assert unapplied.credit == recon.client("C1").unapplied_credit
    # every open amount is in the aging or in the credit balances, nothing is lost
    invoice_credits = sum((c for s, c in zip(credits["source"], credits["credit"], strict=True) if s == "invoice"),
                          D("0"))  # fmt: skip
    assert sum(aging["total"], D("0")) - invoice_credits == sum(r[1] for r in ledger(recon).values())
    # the worklist lists both, open
    work = {r.exception_id: r for r in recon.frame(reports.overpayment_worklist_sql()).itertuples()}
    assert {k: (w.kind, w.status, w.amount) for k, w in work.items()} == {
        I1: ("overpayment", "open", D("20.00")),
        f"overpayment:payment:{lump}": ("overpayment", "open", D("700.00")),
    }


def test_refund_is_a_negative_payment_to_the_payer(recon: Recon) -> None:
    with pytest.raises(PaymentRefused, match="AET, BCBS; name the payer"):
        refund_overpayment(recon, I1, "ana", "secondary overpaid")
    with pytest.raises(PermissionDenied):
        refund_overpayment(recon, I1, "ben", "secondary overpaid", payer="BCBS")
    with pytest.raises(PaymentRefused, match=r"more than the credit of 20\.00"):
        refund_overpayment(recon, I1, "ana", "secondary overpaid", payer="BCBS", amount=D("20.01"))
    with pytest.raises(InvalidAmount, match="two decimal"):
        refund_overpayment(recon, I1, "ana", "secondary overpaid", payer="BCBS", amount="1.005")
    with pytest.raises(PaymentRefused, match="reason"):
        refund_overpayment(recon, I1, "ana", " ", payer="BCBS")
    before = recon.one("SELECT count(*) FROM payments")[0]
    rid = refund_overpayment(recon, I1, "ana", "secondary overpaid", payer="Blue Cross")
    assert recon.one("SELECT count(*) FROM payments")[0] == before + 1
    row = recon.one("SELECT amount, payer_id, user_id, reason, reverses FROM payments WHERE payment_id = ?", [rid])
    assert row == (D("-20.00"), "BCBS", "ana", "secondary overpaid", None)
    assert ledger(recon)["I1"] == (D("120.00"), D("0.00"))
    assert I1 not in set(reports.credit_balances(recon)["exception_id"])
    work = {r.exception_id: r for r in recon.frame(reports.overpayment_worklist_sql()).itertuples()}
    assert (work[I1].status, work[I1].amount, work[I1].resolved_by, work[I1].resolution) == (
        "refunded", D("20.00"), "ana", "secondary overpaid")  # fmt: skip
    audit = json.loads(recon.one("SELECT detail FROM audit_log WHERE action = 'refund_overpayment'")[0])
    assert audit["refund_payment_id"] == rid and audit["from_payments"] == {"PAY-000002": "20.00"}
    with pytest.raises(PaymentRefused, match="no credit stands there any more"):
        refund_overpayment(recon, I1, "ana", "again", payer="BCBS")


def test_refund_of_unapplied_credit_lowers_the_clients_credit(recon: Recon) -> None:
    lump = lump_payment(recon)
    refund_overpayment(recon, f"overpayment:payment:{lump}", "ana", "paid twice by Aetna", amount=D("200.00"))
    assert recon.client("C1").unapplied_credit == D("500.00")
    row = reports.credit_balances(recon, "C1").set_index("exception_id").loc[f"overpayment:payment:{lump}"]
    assert (row["due"], row["paid"], row["credit"]) == (D("500.00"), D("1000.00"), D("500.00"))


def test_apply_moves_the_credit_to_an_open_invoice_of_the_same_payer(recon: Recon) -> None:
    lump = f"overpayment:payment:{lump_payment(recon)}"
    # Aetna's unapplied money does not pay I4, billed to Blue Cross; Aetna's invoices are all paid
    with pytest.raises(PaymentRefused, match="billed to BCBS"):
        apply_overpayment(recon, lump, "I4", "ana", "move")
    with pytest.raises(PaymentRefused, match="no open Ins Amt Due"):
        apply_overpayment(recon, lump, "I8", "ana", "move")
    with pytest.raises(PaymentRefused, match="no open Ins Amt Due"):
        apply_overpayment(recon, I1, "I2", "ana", "move")
    with pytest.raises(PaymentRefused, match="not one of client C1's invoices"):
        apply_overpayment(recon, I1, "I6", "ana", "move")
    with pytest.raises(PaymentRefused, match="itself"):
        apply_overpayment(recon, I1, "I1", "ana", "move")
    with pytest.raises(PermissionDenied):
        apply_overpayment(recon, I1, "I4", "ben", "move")
    # the 20 over on I1 is Blue Cross's money: it goes to I4 (billed to Blue Cross, open 95)
    moved = apply_overpayment(recon, I1, "I4", "ana", "BCBS owes I4")
    assert moved == [("PAY-000002", D("20.00"))]
    paid = ledger(recon)
    assert paid["I1"] == (D("120.00"), D("0.00")) and paid["I4"] == (D("20.00"), D("80.00"))
    actions = recon.execute("SELECT action, source_payment_id, payer_id, amount, target_invoice_id, user_id, reason "
                            "FROM credit_actions").fetchall()  # fmt: skip
    assert actions == [("apply", "PAY-000002", "BCBS", D("20.00"), "I4", "ana", "BCBS owes I4")]


def test_apply_refuses_to_take_an_invoice_below_zero(db: Path) -> None:
    with Recon.open(db) as recon:
        receipt = recon.record_payment(
            PaymentRequest(
                "C1", "AET", PaymentMethod.INSURANCE, amount=D("200.00"), picks=(InvoicePick("I2", D("30")),)
            ),
            "ana",
        )
        credit = f"overpayment:payment:{receipt.payment_id}"
        with pytest.raises(PaymentRefused, match=r"would take it below zero: its open Ins Amt Due is 130\.00"):
            apply_overpayment(recon, credit, "I1", "ana", "move", amount=D("130.01"))
        assert apply_overpayment(recon, credit, "I1", "ana", "Aetna meant I1 too") == [
            (receipt.payment_id, D("130.00"))
        ]
        assert ledger(recon)["I1"] == (D("130.00"), D("20.00"))
        assert recon.client("C1").unapplied_credit == D("40.00")
        with pytest.raises(NotFound):
            apply_overpayment(recon, "overpayment:NOPE", "I1", "ana", "move")


def test_cli_lists_works_and_exports_credit_balances(
    recon: Recon, db: Path, tmp_path: Path, cli: Callable[..., Run]
) -> None:
    recon.close()
    run = cli("credits", "C1", "--db", db, "--format", "csv")
    assert run.code == 0, run.err
    rows = {r["exception_id"]: r for r in read_csv(run.out)}
    assert rows[I1]["credit"] == "20.00" and rows[I1]["payer_id"] == "AET, BCBS"
    assert "overpayment" in cli("credits", "--db", db).out.splitlines()[2]
    listed = {r["exception_id"]: r for r in read_csv(cli("exceptions", "--db", db, "--format", "csv").out)}
    assert listed[I1]["kind"] == "overpayment" and listed[I1]["status"] == "open"
    bad = cli("overpayment", I1, "refund", "--db", db, "--user", "ana", "--reason", "x")
    assert bad.code == 1 and "name the payer" in bad.err and len(bad.err.strip().splitlines()) == 1
    bad = cli("overpayment", I1, "apply", "--db", db, "--user", "ana", "--reason", "x")
    assert bad.code == 1 and "--to INVOICE" in bad.err
    bad = cli("overpayment", I1, "apply", "--to", "I4", "--amount", "96", "--db", db, "--user", "ana", "--reason", "x")
    assert bad.code == 1 and "more than the credit" in bad.err
    ok = cli("overpayment", I1, "refund", "--payer", "BCBS", "--db", db, "--user", "ana", "--reason", "overpaid")
    assert ok.code == 0 and "Refunded 20.00 of overpayment:I1 to BCBS" in ok.out
    assert I1 not in {r["exception_id"] for r in read_csv(cli("credits", "--db", db, "--format", "csv").out)}
    listed = {r["exception_id"]: r for r in read_csv(cli("exceptions", "--db", db, "--format", "csv").out)}
    assert listed[I1]["status"] == "refunded"
    assert I1 not in {r["exception_id"] for r in read_csv(cli("exceptions", "--open", "--db", db, "--format",
                                                              "csv").out)}  # fmt: skip
    out = tmp_path / "export"
    assert cli("export", "--out", out, "--db", db).code == 0
    exported = read_csv((out / "credit_balances.csv").read_text())
    assert [r["source"] for r in exported] == ["unapplied"] and exported[0]["credit"] == "700.00"
