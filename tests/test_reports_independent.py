"""A/R aging, credit balances and unapplied credit checked against an independent computation.

A ledger where manual payments and 835 postings meet (a manual payment and then an
ERA for the same service, a secondary paying more than was left, reversals, a void,
a refund and an apply of a credit) is built through the CLI; the test then reads the
raw tables (invoices, due_changes, allocations, adjustments, payments, credit_actions)
and computes in plain Python what each report must say, without recon's SQL.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from recon import reports
from recon.cli import main
from recon.services import Recon
from tests.conftest import PRACTICE, Run, read_csv, write_practice
from tests.era.edi import claim, st, write_835

D = Decimal
ZERO = D("0.00")
AS_OF = date(2026, 3, 10)
INVOICES = [
    *PRACTICE["invoices.csv"],
    ("I9", "C2", "2026-02-03", "90834", "1", "100.00", "", "", "", "CLM-20"),
    ("I10", "C2", "2026-02-10", "90837", "1", "150.00", "", "", "", "CLM-20"),
    ("I11", "C2", "2025-11-20", "90834", "1", "120.00", "", "", "", ""),
]


def line(code: str, charge: str, paid: str, when: str, *cas: list[str]) -> tuple[str, str, str, str, list[list[str]]]:
    return (f"HC:{code}", charge, paid, when, list(cas))


@pytest.fixture
def ledger_db(tmp_path: Path, cli: Callable[..., Run], ledger_target: Path | str) -> Path | str:
    db = ledger_target  # both engines
    assert main(["load", str(write_practice(tmp_path / "p", {**PRACTICE, "invoices.csv": INVOICES})), "--db",
                 str(db)]) == 0  # fmt: skip

    def ok(*args: str) -> Run:
        run = cli(*args, "--db", db)
        assert run.code == 0, run.err
        return run

    def pay(client: str, payer: str, *args: str) -> Run:
        return ok("pay", client, "--user", "ana", "--payer", payer, "--method", "insurance-check", *args)

    # manual first: Aetna pays I1 by hand; a partial on I3; Blue Cross a lump sum for C2 (oldest first)
    pay("C1", "AET", "--invoice", "I1", "--payment-number", "CHK-1", "--date", "2026-02-01")
    pay("C1", "AET", "--invoice", "I3=40", "--payment-number", "CHK-2")
    pay("C2", "BCBS", "--amount", "150", "--payment-number", "CHK-3")  # I11 (oldest) 120, I6 30
    voided = pay("C1", "AET", "--amount", "75", "--payment-number", "CHK-4")  # I2 75, then voided
    ok("void", voided.out.split()[2].rstrip(":"), "--user", "ana", "--reason", "keyed twice")
    pay("C1", "AET", "--amount", "900", "--payment-number", "CHK-5")  # I2 100, I3 60, I8 100; 640 unapplied
    # then the 835s: Aetna pays I1 (already paid by hand) and I2; Blue Cross as secondary overpays I1;
    # Blue Cross pays C2's two-line claim and I6, reverses I6 and pays it again
    aetna = [
        claim("I1", "1", "150", "100", "20", lines=[line("90837", "150", "100", "20260105", ["CO", "45", "30"],
                                                         ["PR", "2", "20"])]),
        claim("I2", "1", "120", "100", "20", lines=[line("90834", "120", "100", "20260112", ["PR", "3", "20"])]),
    ]  # fmt: skip
    ok("era", write_835(tmp_path / "aetna.835", [st("0001", amount="200", trace="E1", claims=aetna)]), "--user", "ana")
    bcbs = [
        claim("I1", "2", "150", "40", lines=[line("90837", "150", "40", "20260105", ["OA", "23", "110"])]),
        claim("CLM-20", "1", "250", "190", "10", lines=[
            line("90834", "100", "70", "20260203", ["CO", "45", "20"], ["PR", "3", "10"]),
            line("90837", "150", "120", "20260210", ["CO", "45", "30"])]),
        claim("I6", "1", "200", "150", cas=[["CO", "45", "50"]]),
    ]  # fmt: skip
    blue = ("Blue Cross", "00570")
    ok("era", write_835(tmp_path / "bcbs.835", [st("0001", amount="380", trace="B1", payer=blue, claims=bcbs)]),
       "--user", "ana")  # fmt: skip
    again = [claim("I6", "22", "-200", "-150", cas=[["CO", "45", "-50"]]),
             claim("I6", "1", "200", "160", cas=[["CO", "45", "40"]])]  # fmt: skip
    ok("era", write_835(tmp_path / "bcbs2.835", [st("0001", amount="10", trace="B2", payer=blue, paid_on="20260305",
                                                    claims=again)]), "--user", "ana")  # fmt: skip
    # work one credit balance: the unapplied Aetna money partly refunded
    with Recon.open(db) as recon:
        credits = reports.credit_balances(recon)
        unapplied = credits[(credits["source"] == "unapplied") & (credits["client_id"] == "C1")]
        credit_id = unapplied["exception_id"].iloc[0]
    ok("overpayment", credit_id, "refund", "--amount", "40", "--user", "ana", "--reason", "Aetna sent too much")
    return db


# ----------------------------------------------------------------- the independent side
def raw(recon: Recon, sql: str) -> list[tuple[Any, ...]]:
    return recon.execute(sql).fetchall()


def independent(recon: Recon) -> dict[str, Any]:
    """Every invoice's open amounts, the aging, the credits and the unapplied credit, from the raw tables."""
    inv = {
        r[0]: {"client": r[1], "payer": r[2], "date": r[3], "client_due": r[4], "ins_due": r[5],
               "client_paid": ZERO, "ins_paid": ZERO, "adjusted": ZERO}
        for r in raw(recon, "SELECT invoice_id, client_id, payer_id, service_date, client_amt_due, ins_amt_due "
                            "FROM invoices")
    }  # fmt: skip
    for invoice_id, dc, di in raw(recon, "SELECT invoice_id, client_amt_due_delta, ins_amt_due_delta FROM due_changes"):
        inv[invoice_id]["client_due"] += dc
        inv[invoice_id]["ins_due"] += di
    per_payment_invoice: dict[tuple[str, str, str], Decimal] = defaultdict(lambda: ZERO)
    applied: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for payment_id, invoice_id, kind, amount in raw(recon, "SELECT payment_id, invoice_id, kind, amount "
                                                           "FROM allocations"):  # fmt: skip
        inv[invoice_id]["client_paid" if kind == "client" else "ins_paid"] += amount
        per_payment_invoice[(invoice_id, kind, payment_id)] += amount
        applied[payment_id] += amount
    for invoice_id, amount in raw(recon, "SELECT invoice_id, amount FROM adjustments WHERE written_off"):
        inv[invoice_id]["adjusted"] += amount
    payments = {
        r[0]: {"client": r[1], "payer": r[2], "amount": r[3], "reverses": r[4]}
        for r in raw(recon, "SELECT payment_id, client_id, payer_id, amount, reverses FROM payments")
    }
    voided = {p["reverses"] for p in payments.values() if p["reverses"]}
    out_of_play = voided | {pid for pid, p in payments.items() if p["reverses"]}

    aging: dict[tuple[str, str | None], list[Any]] = {}
    credits: dict[str, tuple[Decimal, set[str]]] = {}
    balance = ZERO
    for invoice_id, i in inv.items():
        ins_open = i["ins_due"] - i["ins_paid"] - i["adjusted"]
        client_open = i["client_due"] - i["client_paid"]
        balance += ins_open + client_open
        for side, key, amount in (("insurance", i["payer"], ins_open), ("client", None, client_open)):
            if amount < ZERO:
                payers = {payments[pid]["payer"] for (iid, kind, pid), net in per_payment_invoice.items()
                          if iid == invoice_id and kind == side and net > 0 and pid not in out_of_play}  # fmt: skip
                credits[f"overpayment:{invoice_id}" + (":client" if side == "client" else "")] = (-amount, payers)
            if amount > ZERO and i["date"] <= AS_OF:
                age = (AS_OF - i["date"]).days
                bucket = 0 if age <= 30 else 1 if age <= 60 else 2 if age <= 90 else 3
                row = aging.setdefault((side, key), [ZERO, ZERO, ZERO, ZERO, ZERO, 0])
                row[bucket] += amount
                row[4] += amount
                row[5] += 1
    refunds = {r[0]: r[1] for r in raw(recon, "SELECT refund_payment_id, source_payment_id FROM credit_actions "
                                              "WHERE action = 'refund' AND invoice_id IS NULL")}  # fmt: skip
    refunded: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for refund_id, source in refunds.items():
        if refund_id not in out_of_play:
            refunded[source] -= payments[refund_id]["amount"]
    client_credit: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for pid, p in payments.items():
        left = p["amount"] - applied[pid]
        client_credit[p["client"]] += left
        if pid not in out_of_play and pid not in refunds and p["amount"] > 0 and left - refunded[pid] > 0:
            credits[f"overpayment:payment:{pid}"] = (left - refunded[pid], {p["payer"]})
    return {"aging": aging, "credits": credits, "client_credit": dict(client_credit), "balance": balance}


def test_reports_match_an_independent_computation(ledger_db: Path, cli: Callable[..., Run]) -> None:
    with Recon.open(ledger_db) as recon:
        expected = independent(recon)
        aging = {
            (r.responsibility, None if r.responsibility == "client" else r.payer_id): [
                r.days_0_30, r.days_31_60, r.days_61_90, r.days_over_90, r.total, r.invoices]
            for r in reports.ar_aging(recon, AS_OF).itertuples()
        }  # fmt: skip
        assert aging == expected["aging"]
        credits = {r.exception_id: (r.credit, set(r.payer_id.split(", "))) for r in
                   reports.credit_balances(recon).itertuples()}  # fmt: skip
        assert credits == expected["credits"]
        # the ledger meets: what A/R ages, less the credits on invoices, is every balance
        on_invoices = sum((c for k, (c, _) in expected["credits"].items() if ":payment:" not in k), ZERO)
        assert sum((row[4] for row in aging.values()), ZERO) - on_invoices == expected["balance"]
        for client_id in ("C1", "C2", "C3"):
            assert recon.client(client_id).unapplied_credit == expected["client_credit"].get(client_id, ZERO)
        by_client = reports.unapplied_credit_by_client(recon)
        assert dict(zip(by_client["client_id"], by_client["unapplied"], strict=True)) == {
            c: v for c, v in expected["client_credit"].items() if v
        }
        flagged = {r[0] for r in raw(recon, "SELECT invoice_id FROM exception_status "
                                            "WHERE kind = 'overpayment' AND status = 'open'")}  # fmt: skip
    # this ledger has both kinds of credit, so the comparison above compared something
    assert any(":payment:" in k for k in expected["credits"])
    assert any(":payment:" not in k for k in expected["credits"])
    # the CLI's credit report and worklist say the same
    listed = {r["exception_id"]: D(r["credit"]) for r in read_csv(cli("credits", "--db", ledger_db, "--format",
                                                                       "csv").out)}  # fmt: skip
    assert listed == {k: c for k, (c, _) in expected["credits"].items()}
    work = [r for r in read_csv(cli("exceptions", "--open", "--db", ledger_db, "--format", "csv").out)
            if r["kind"] == "overpayment"]  # fmt: skip
    wanted = {k: c for k, (c, _) in expected["credits"].items() if k.split(":")[1] not in flagged}
    assert {r["exception_id"]: D(r["amount"]) for r in work if r["exception_id"] in wanted} == wanted
