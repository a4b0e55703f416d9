"""Issue 11: one client's ledger, policies and credit are read by short statements of their own.

``Recon.ledger_rows`` reads the client's invoices and entries apart and sums them in
Python (the ledger query's joins, groupings and sort cost more than the reads on a
10M-invoice ledger); ``Recon.client`` reads the client, their policies and the payers
in one statement without joins, found by an index on ``client_insurance(client_id)``.
These tests hold the derived figures to :func:`recon.store.queries.ledger_sql` and
:func:`recon.store.queries.payments_sql`, on both engines, for every kind of entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from recon.errors import NotFound
from recon.model import InvoicePick, LedgerRow, PaymentMethod, PaymentRequest
from recon.services import Recon
from recon.store import db as store_db
from recon.store import queries

STAMP = datetime(2026, 3, 1, 12, 0, 0)


@pytest.fixture
def recon(any_db: Path | str) -> Iterator[Recon]:
    with Recon.open(any_db) as r:
        yield r


def _entries(recon: Recon) -> None:
    """Payments, a void, due changes, client and insurance allocations, adjustments written off and not."""
    pay = recon.record_payment(
        PaymentRequest(
            "C1", "AET", PaymentMethod.INSURANCE, amount=Decimal("80.00"), picks=(InvoicePick("I1", Decimal("80.00")),)
        ),
        "ana",
    )
    recon.record_payment(
        PaymentRequest(
            "C1", "AET", PaymentMethod.INSURANCE, amount=Decimal("45.50"), picks=(InvoicePick("I2", Decimal("45.50")),)
        ),
        "ana",
    )
    recon.void_payment(pay.payment_id, "ana", "entered twice")
    recon.record_payment(PaymentRequest("C2", "BCBS", PaymentMethod.INSURANCE, amount=Decimal("500.00")), "ana")
    with recon.transaction():
        recon.execute(
            "INSERT INTO payments (payment_id, kind, client_id, payer_id, method, amount, received_on, user_id, "
            "created_at) VALUES ('PAY-C1', 'client', 'C1', NULL, 'insurance', 30.00, ?, 'ana', ?)",
            [date(2026, 3, 1), STAMP],
        )
        for invoice, client, kind, amount in (
            ("I2", "C1", "client", "20.00"),
            ("I3", "C1", "client", "10.00"),
            ("I6", "C1", "client", "1.00"),  # names another client's invoice: on neither ledger
        ):
            recon.execute(
                "INSERT INTO allocations VALUES (nextval('entry_seq'), 'PAY-C1', ?, ?, ?, ?, ?)",
                [invoice, client, kind, Decimal(amount), STAMP],
            )
        for invoice, client, c_delta, i_delta in (
            ("I1", "C1", "15.00", "-15.00"),
            ("I1", "C1", "-5.00", "5.00"),
            ("I4", "C1", "0.00", "-12.34"),
            ("I6", "C2", "40.00", "-40.00"),
        ):
            recon.execute(
                "INSERT INTO due_changes VALUES (nextval('entry_seq'), ?, ?, ?, ?, NULL, NULL, 'ana', ?, 'test')",
                [invoice, client, Decimal(c_delta), Decimal(i_delta), STAMP],
            )
        for invoice, client, amount, written_off in (
            ("I1", "C1", "7.25", True),
            ("I1", "C1", "3.00", False),
            ("I3", "C1", "11.11", True),
            ("I6", "C2", "2.00", True),
        ):
            recon.execute(
                "INSERT INTO adjustments VALUES (nextval('entry_seq'), ?, ?, NULL, NULL, 'CO', '45', ?, ?, NULL, "
                "'ana', ?, NULL)",
                [invoice, client, Decimal(amount), written_off, STAMP],
            )


def _ledger_by_query(recon: Recon, client_id: str) -> list[LedgerRow]:
    return [
        LedgerRow(
            invoice_id=r[0],
            service_date=r[1],
            service_code=r[2],
            fee=r[3],
            client_amt_due=r[4],
            client_amt_paid=r[5],
            ins_amt_due=r[6],
            ins_amt_paid=r[7],
            ins_adjusted=r[8],
            balance=r[9],
            payer_id=r[11],
            claim_id=r[12],
        )
        for r in recon._rows(queries.ledger_sql("client_id = $1"), [client_id])
    ]


def test_a_clients_ledger_rows_are_the_ledger_querys_for_every_kind_of_entry(recon: Recon) -> None:
    _entries(recon)
    for client_id in ("C1", "C2", "C3"):
        rows = recon.ledger_rows(client_id)
        assert rows == _ledger_by_query(recon, client_id)
        for row in rows:  # two-place amounts, as the query's DECIMAL(18,2) columns show them
            for amount in (row.client_amt_due, row.client_amt_paid, row.ins_amt_paid, row.ins_adjusted, row.balance):
                assert amount.as_tuple().exponent == -2, (row.invoice_id, amount)
    c1 = {r.invoice_id: r for r in recon.ledger_rows("C1")}
    assert c1["I1"].ins_adjusted == Decimal("7.25")  # the adjustment not written off is not Ins Adjusted
    assert c1["I2"].client_amt_paid == Decimal("20.00")
    assert c1["I4"].ins_amt_due == c1["I4"].fee - c1["I4"].client_amt_due - Decimal("12.34")
    assert recon.ledger_rows("NOBODY") == []


def test_planning_reads_the_same_open_amounts_and_next_payers_as_the_queries(recon: Recon) -> None:
    _entries(recon)
    with recon.transaction():
        for cpid, invoice, payer, priority in (
            (101, "I1", "AET", 1),  # waits on BCBS, the secondary
            (102, "I2", "AET", 1),  # reversed by 103: waits on no one else
            (104, "I3", "AET", 1),
            (105, "I3", "BCBS", 2),  # the last policy adjudicated: no one follows
            (106, "I5", "AET", 0),  # priority 0 is not a payer's adjudication
        ):
            recon.execute(
                "INSERT INTO adjudications VALUES (?, 1, ?, 'C1', 'R1', ?, ?, '1', NULL, 10.00, 5.00, 0.00, 0.00, "
                "0.00, ?)",
                [cpid, invoice, payer, priority, STAMP],
            )
        recon.execute("INSERT INTO adjudication_reversals VALUES (102, 103, ?)", [STAMP])
    ledger = _ledger_by_query(recon, "C1")
    due_from = dict(recon._rows(queries.due_from_sql(), ["C1"]))
    assert due_from == {"I1": "BCBS"}
    open_invoices = recon.open_invoices("C1")
    assert [o.invoice_id for o in open_invoices] == [r.invoice_id for r in ledger]
    for o, r in zip(open_invoices, ledger, strict=True):
        assert (o.service_date, o.payer_id) == (r.service_date, r.payer_id)
        assert o.ins_open == r.ins_amt_due - r.ins_amt_paid - r.ins_adjusted
        assert o.due_from == due_from.get(o.invoice_id)
    assert recon.open_invoices("C3")[0].due_from is None


def test_a_clients_policies_and_credit_are_as_the_payments_query_derives_them(recon: Recon) -> None:
    _entries(recon)
    for client_id in ("C1", "C2", "C3"):
        client = recon.client(client_id)
        unapplied = [r[7] for r in recon._rows(queries.payments_sql("client_id = $1"), [client_id])]
        assert client.unapplied_credit == sum(unapplied, Decimal("0.00"))
        assert client.unapplied_credit.as_tuple().exponent == -2
    c1 = recon.client("C1")
    assert (c1.first_name, c1.last_name, c1.date_of_birth, c1.copay) == (
        "Avery",
        "Chen",
        date(1980, 2, 3),
        Decimal("20.00"),
    )
    assert [(p.payer_id, p.payer_name, p.member_id, p.priority, p.copay) for p in c1.policies] == [
        ("AET", "Aetna", "M100", "primary", None),
        ("BCBS", "Blue Cross", "M101", "secondary", Decimal("5.00")),
    ]
    # C1's client payment of 30.00 has 31.00 applied (1.00 of it on C2's I6)
    assert recon.client("C1").unapplied_credit == Decimal("-1.00")
    assert recon.client("C2").unapplied_credit == Decimal("330.00")  # 500.00 on I6: fee 200.00, co-pay 30.00
    assert recon.client("C3").policies == ()
    with pytest.raises(NotFound, match="No client 'C9'"):
        recon.client("C9")


def test_the_clients_policies_are_found_by_an_index(recon: Recon) -> None:
    """Without it every read of a client's policies scanned the whole table (see 45_client_policies_index.sql)."""
    pg = store_db.postgres_of(recon.con)
    if pg is None:
        found = recon.one(
            "SELECT expressions FROM duckdb_indexes() WHERE table_name = 'client_insurance' "
            "AND index_name = 'client_insurance_client'"
        )
        assert found is not None and "client_id" in str(found[0])
    else:
        found = pg.side.execute(
            "SELECT indexdef FROM pg_indexes "
            "WHERE tablename = 'client_insurance' AND indexname = 'client_insurance_client'"
        ).fetchone()
        assert found is not None and "(client_id)" in found[0]
