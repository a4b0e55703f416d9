"""The one API that notebooks, widgets and the CLI all call.

:class:`Recon` owns a ledger connection. Every change of money goes through here:
it checks the user's Billing permission, plans with the pure rules, checks
idempotency, then writes payment, allocations and audit in one transaction.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from recon.errors import IdempotencyConflict, NotFound, PaymentRefused
from recon.model import (
    CardDetails,
    Client,
    LedgerRow,
    Payer,
    PaymentMethod,
    PaymentReceipt,
    PaymentRequest,
    Policy,
    User,
)
from recon.money import ZERO, fmt
from recon.output import Rows
from recon.rules.allocation import OpenInvoice, Plan, plan_insurance_payment
from recon.rules.eob import Adjudicated, EobInvoice, EobPlan, plan_eob
from recon.rules.permissions import parse_permissions, require_billing
from recon.store import db, queries
from recon.store.sql import bind


def now() -> datetime:
    """Naive UTC timestamp for entries (DuckDB TIMESTAMP has no zone)."""
    return datetime.now(UTC).replace(tzinfo=None)


class Recon:
    """A practice's ledger, opened for reading and for recording payments."""

    def __init__(
        self, path: db.Target, key: str | None = None, *, hold: bool | None = None, wait: float | None = None
    ) -> None:
        self.path = path
        self.hold = not _in_kernel() if hold is None else hold
        self._key = key
        self._wait = wait
        self._session = db.session(key, postgres=isinstance(path, str))
        self._attached = False
        self._depth = 0
        self._release_scheduled = False
        self._attach()

    # ----------------------------------------------------------------- opening
    @classmethod
    def open(
        cls,
        db_path: str | os.PathLike[str] | None = None,
        key: str | None = None,
        *,
        hold: bool | None = None,
        wait: float | None = None,
    ) -> Recon:
        """Open the ledger (``RECON_DB`` or ``data/recon.duckdb``; ``RECON_DB_KEY`` encrypts).

        In a notebook kernel (``hold`` None there, or False) the file is let go whenever
        the kernel goes idle, so the CLI or another notebook can use the same ledger in
        between; elsewhere it is held until :meth:`close`. A ledger another program is
        using is waited for up to ``wait`` seconds (default ``RECON_DB_WAIT``, else 15).
        """
        path = db.target(db_path) if db_path is not None else db.default_db_path()
        if key is None:
            key = os.environ.get("RECON_DB_KEY") or None
        return cls(path, key, hold=hold, wait=wait)

    @property
    def name(self) -> str:
        """The ledger as recon shows it: the file, or the server URI with its password masked."""
        return db.describe(self.path)

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The session with the ledger attached (re-attached on demand after a release)."""
        if not self._attached:
            self._attach()
        if not self.hold and not self._release_scheduled:
            self._schedule_release()
        return self._session

    def _attach(self) -> None:
        db.attach(self._session, self.path, self._key, wait=self._wait)
        self._attached = True
        self._committed = 0  # transactions since the ledger was (re)taken

    def _schedule_release(self) -> None:
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no event loop (scripts, tests): release() is called explicitly
        self._release_scheduled = True
        loop.call_soon(self._release_when_idle)

    def _release_when_idle(self) -> None:
        self._release_scheduled = False
        self.release()

    def release(self) -> None:
        """Let go of the ledger file until the next use (not inside a transaction).

        A server ledger stays attached: it has no file lock to free, and others write
        to it meanwhile anyway (each transaction takes the write lock, :mod:`recon.store.pg`).
        """
        if self._attached and self._depth == 0 and isinstance(self.path, Path):
            self._detach()

    def _detach(self) -> None:
        db.detach(self._session)
        self._attached = False

    def close(self) -> None:
        self._depth = 0
        if self._attached:
            self._detach()
        self._session.close()

    def __enter__(self) -> Recon:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ plumbing
    def execute(self, sql: str, params: Sequence[Any] = ()) -> duckdb.DuckDBPyConnection:
        """Run one statement with ``params`` bound as literals (see :mod:`recon.store.sql`)."""
        return self.con.execute(bind(sql, params))

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        return self.execute(sql, params).fetchone()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.execute(sql, params).fetchall()

    def rows(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        """A result for printing (no pandas/Arrow import: the CLI stays quick)."""
        return Rows.of(self.execute(sql, params))

    def arrow(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run ``sql`` and keep DECIMAL columns exact (Arrow decimal128)."""
        result = self.execute(sql, params)
        return result.to_arrow_table() if hasattr(result, "to_arrow_table") else result.fetch_arrow_table()

    def frame(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """A pandas DataFrame whose money columns stay exact (``pd.ArrowDtype`` decimal)."""
        import pandas as pd

        return self.arrow(sql, params).to_pandas(types_mapper=pd.ArrowDtype)

    def audit(self, user_id: str, action: str, entity: str, entity_id: str | None, detail: dict[str, Any]) -> None:
        """Append one audit entry (call inside the transaction that made the change)."""
        self.execute(
            "INSERT INTO audit_log VALUES (nextval('entry_seq'), ?, ?, ?, ?, ?, ?)",
            [now(), user_id, action, entity, entity_id, json.dumps(detail, default=str, sort_keys=True)],
        )

    @contextlib.contextmanager
    def transaction(self, client: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """All or nothing; the ledger stays attached until the outermost one ends.

        ``client``: the transaction changes only that client's ledger (a payment), so
        on a server ledger it runs beside other clients' payments (:mod:`recon.store.pg`).

        Before an outermost one, a ledger another program waits for is let go and taken
        again (after it, waiting in turn) once this Recon made a transaction with it: a
        long-lived Recon does not keep others out, and each turn gets something done.
        """
        if (
            self._depth == 0
            and self._attached
            and self._committed
            and isinstance(self.path, Path)
            and db.others_waiting(self.path)
        ):
            self.release()
        con = self.con
        self._depth += 1
        try:
            with db.transaction(con, client):
                yield con
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._committed += 1

    # --------------------------------------------------------- reference data
    def user(self, user_id: str) -> User:
        row = self.execute("SELECT user_id, name, permissions FROM users WHERE user_id = ?", [user_id]).fetchone()
        if row is None:
            raise NotFound(
                f"No user {user_id!r} in this ledger: an unknown user can do nothing here "
                "(users come from users.csv, loaded by an admin)"
            )
        return User(row[0], row[1], parse_permissions(row[2]))

    def users(self) -> list[User]:
        return [self.user(r[0]) for r in self._rows("SELECT user_id FROM users ORDER BY user_id")]

    def payer(self, payer_id: str) -> Payer:
        row = self.execute(
            "SELECT payer_id, name, payer_identifier FROM insurance_providers WHERE payer_id = ?",
            [payer_id],
        ).fetchone()
        if row is None:
            raise NotFound(f"No insurance provider {payer_id!r} in this ledger")
        return Payer(*row)

    def client(self, client_id: str) -> Client:
        """The client with their policies (primary first) and unapplied credit."""
        client = self._client(client_id)
        credit = self.one(queries.client_credit_sql(), [client_id])
        return dataclasses.replace(client, unapplied_credit=credit[0] if credit else ZERO)

    def _client(self, client_id: str) -> Client:
        """The client and their policies, primary first (their credit left at zero: planning and
        recording a payment do not use it), read in one statement."""
        row: tuple[Any, ...] | None = None
        policies: list[tuple[Any, ...]] = []
        payers: dict[str, str] = {}
        for part, a, b, c, born, copay in self._rows(queries.client_sql(), [client_id]):
            if part == queries.CLIENT_PART:
                row = (client_id, a, b, born, copay)
            elif part == queries.POLICY_PART:
                policies.append((a, b, c, copay))
            else:
                payers[a] = b
        if row is None:
            raise NotFound(f"No client {client_id!r} in this ledger")
        order = {"primary": 1, "secondary": 2}
        policies.sort(key=lambda p: (order.get(p[2], 3), p[0]))
        return Client(
            *row,
            policies=tuple(
                Policy(payer_id, payers[payer_id], member_id, priority, copay)
                for payer_id, member_id, priority, copay in policies
                if payer_id in payers
            ),
        )

    def clients(self, search: str | None = None) -> Any:
        """Clients as a DataFrame; ``search`` matches id or name, case-insensitively."""
        where, params = "TRUE", []
        if search and search.strip():
            where = (
                "(client_id ILIKE ? OR first_name || ' ' || last_name ILIKE ? "
                "OR last_name || ', ' || first_name ILIKE ?)"
            )
            like = f"%{search.strip()}%"
            params = [like, like, like]
        return self.frame(
            f"""SELECT c.client_id, c.first_name, c.last_name, c.date_of_birth, c.copay,
                       (SELECT string_agg(p.name, '; ' ORDER BY ci.priority)
                        FROM client_insurance ci JOIN insurance_providers p USING (payer_id)
                        WHERE ci.client_id = c.client_id) AS insurance
                FROM clients c WHERE {where} ORDER BY c.last_name, c.first_name, c.client_id""",
            params,
        )

    def resolve_payer(self, client: Client, payer: str) -> Policy:
        """The client's policy with ``payer`` (payer id or exact name), or a refusal."""
        wanted = payer.strip()
        for policy in client.policies:
            if wanted in (policy.payer_id, policy.payer_name):
                return policy
        known = self._rows("SELECT payer_id FROM insurance_providers WHERE payer_id = ? OR name = ?", [wanted, wanted])
        names = ", ".join(f"{p.payer_name} ({p.payer_id})" for p in client.policies) or "none"
        if not known:
            raise PaymentRefused(f"No insurance provider {wanted!r} in this ledger; this client's are: {names}")
        raise PaymentRefused(f"{wanted} is not one of {client.name}'s insurance providers; this client's are: {names}")

    # ----------------------------------------------------------------- ledger
    def ledger_rows(self, client_id: str) -> list[LedgerRow]:
        """The client's Client Ledger, every amount as :func:`queries.ledger_sql` derives it, in its order.

        Read as two statements, the client's invoices and the client's entries, and summed
        here (exact Decimals): on the 10M-invoice ledger of bench/bench_scale.py the ledger
        query's three groupings, joins and sort cost more than the two reads themselves.
        """
        invoices = self._rows(queries.client_invoices_sql(), [client_id])
        sums = self._client_moves(client_id) if invoices else {}
        rows = []
        for invoice_id, service_date, service_code, fee, client_due, ins_due, payer_id, claim_id in invoices:
            c_delta, i_delta, c_paid, i_paid, adjusted = sums.get(invoice_id, _NO_MOVES)
            client_amt_due, ins_amt_due = client_due + c_delta, ins_due + i_delta
            rows.append(
                LedgerRow(
                    invoice_id=invoice_id,
                    service_date=service_date,
                    service_code=service_code,
                    fee=fee,
                    client_amt_due=client_amt_due,
                    client_amt_paid=c_paid,
                    ins_amt_due=ins_amt_due,
                    ins_amt_paid=i_paid,
                    ins_adjusted=adjusted,
                    balance=client_amt_due - c_paid + ins_amt_due - i_paid - adjusted,
                    payer_id=payer_id,
                    claim_id=claim_id,
                )
            )
        rows.sort(key=lambda r: (r.service_date, r.invoice_id))
        return rows

    def ledger(self, client_id: str | None = None) -> Any:
        """The Client Ledger (all invoices when ``client_id`` is None) as an exact DataFrame."""
        if client_id is None:
            return self.frame(queries.ledger_sql())
        self.client(client_id)
        return self.frame(queries.ledger_sql("client_id = $1"), [client_id])

    def payments(self, client_id: str | None = None) -> Any:
        if client_id is None:
            return self.frame(queries.payments_sql())
        self.client(client_id)
        return self.frame(queries.payments_sql("client_id = $1"), [client_id])

    def open_invoices(self, client_id: str) -> list[OpenInvoice]:
        """Every invoice of the client with its open Ins Amt Due and the payer it is owed by."""
        return self._open_invoices(self._client(client_id))

    def _open_invoices(self, client: Client) -> list[OpenInvoice]:
        """What :meth:`_plan` plans on, in the ledger's order: each invoice's open Ins Amt Due as
        :meth:`ledger_rows` derives it, and the payer it now waits on as :func:`queries.due_from_sql`
        finds it (the next of the client's policies after the last standing adjudication), read
        without that query's joins and groupings (~3 ms of a plan on the 10M-invoice ledger).
        """
        cid = client.client_id
        invoices = self._rows(queries.client_open_sql(), [cid])
        if not invoices:
            return []
        sums = self._client_moves(cid)
        last: dict[str, int] = dict(self._rows(queries.client_adjudicated_sql(), [cid]))
        due_from: dict[str, str] = {}
        if last:
            ranked = sorted((_due_rank(p.priority), p.payer_id) for p in client.policies)
            for invoice_id, priority in last.items():
                following = [payer for rank, payer in ranked if rank > priority]
                if following:
                    due_from[invoice_id] = following[0]
        rows = [
            OpenInvoice(
                invoice_id, service_date, payer_id, _ins_open(ins_due, sums.get(invoice_id)), due_from.get(invoice_id)
            )
            for invoice_id, service_date, payer_id, ins_due in invoices
        ]
        rows.sort(key=lambda r: (r.service_date, r.invoice_id))
        return rows

    def _client_moves(self, client_id: str) -> dict[str, tuple[Decimal, ...]]:
        """Per invoice of the client with entries: the sums of :func:`queries.client_moves_sql`."""
        return {r[0]: tuple(r[1:]) for r in self._rows(queries.client_moves_sql(), [client_id])}

    def _plan(self, client: Client, policy: Policy, request: PaymentRequest) -> Plan:
        return plan_insurance_payment(
            self._open_invoices(client),
            policy.payer_id,
            amount=request.amount,
            picks=request.picks,
            chain=[p.payer_id for p in client.policies],
            confirm_other_payer=request.confirm_other_payer,
        )

    def _plan_eob(self, client: Client, policy: Policy, request: PaymentRequest, plan: Plan) -> EobPlan | None:
        """The manual adjudication the request's paper EOB details make (None without any), see recon.rules.eob."""
        if not request.eob:
            return None
        from recon.remit.post import write_off_codes

        cid = client.client_id
        invoices = {
            r.invoice_id: EobInvoice(r.invoice_id, r.fee, r.client_amt_due, r.ins_amt_due)
            for r in self.ledger_rows(cid)
        }
        standing: dict[str, list[Adjudicated]] = {}
        for r in self._rows(
            """SELECT invoice_id, claim_posting_id, any_value(payer_id), any_value(priority), any_value(status),
                      sum(patient_resp)
               FROM adjudications
               WHERE client_id = ? AND priority > 0
                 AND claim_posting_id NOT IN (SELECT original FROM adjudication_reversals)
               GROUP BY 1, 2 ORDER BY 1, 2""",
            [cid],
        ):
            standing.setdefault(r[0], []).append(Adjudicated(*r))
        billed: dict[str, list[int]] = {}
        for inv, prio in self._rows(
            "SELECT b.invoice_id, b.priority FROM billing_decisions b JOIN invoices i USING (invoice_id) "
            "WHERE i.client_id = ?",
            [cid],
        ):
            billed.setdefault(inv, []).append(prio)
        ranks = {p.payer_id: _rank(p.priority) for p in client.policies}
        return plan_eob(
            request.eob,
            payer_id=policy.payer_id,
            priority=_rank(policy.priority),
            invoices=invoices,
            paid={a.invoice_id: a.amount for a in plan.allocations},
            standing=standing,
            ranks=ranks,
            billed=billed,
            write_off=write_off_codes(),
        )

    def _write_eob(self, eob: EobPlan, pid: str, client_id: str, user_id: str, stamp: datetime) -> None:
        """Record a paper EOB as manual adjudications (see 30_manual_adjudications.sql): one per invoice,
        its adjustments (CO in the auto write-off set count as Ins Adjusted; PR by kind), and the amounts
        due derived from the standing adjudications exactly as an 835 posting derives them."""
        from recon.remit.match import MANUAL_REASON, derive_dues

        for line in eob.lines:
            cpid = self.execute(f"SELECT nextval('entry_seq') - {MANUAL_ID_OFFSET}").fetchone()[0]
            self.execute(
                """INSERT INTO adjudications (claim_posting_id, line_no, invoice_id, client_id, remittance_id,
                       payer_id, priority, status, payer_control, charge, paid, patient_resp, written_off,
                       other_adj, created_at)
                   VALUES (?, 0, ?, ?, NULL, ?, ?, ?, NULL, ?, ?, ?, ?, ?, ?)""",
                [
                    cpid,
                    line.invoice_id,
                    client_id,
                    eob.payer_id,
                    eob.priority,
                    eob.status,
                    line.charge,
                    line.paid,
                    line.patient_resp,
                    line.written_off,
                    line.other_adj,
                    stamp,
                ],
            )
            kinds = dict(line.patient)
            self.execute(
                "INSERT INTO manual_adjudications VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    cpid,
                    pid,
                    line.invoice_id,
                    line.allowed,
                    kinds.get("PR-1", ZERO),
                    kinds.get("PR-2", ZERO),
                    kinds.get("PR-3", ZERO),
                    ";".join(f"{c}={fmt(a)}" for c, a, _ in line.adjustments) or None,
                    user_id,
                    stamp,
                ],
            )
            cas = [(c, a, w) for c, a, w in line.adjustments] + [(c, a, False) for c, a in line.patient]
            for code, amount, written_off in cas:
                if amount == ZERO:
                    continue
                group, reason = code.split("-", 1)
                self.execute(
                    "INSERT INTO adjustments VALUES (nextval('entry_seq'), ?, ?, ?, NULL, ?, ?, ?, ?, NULL, ?, ?, ?)",
                    [line.invoice_id, client_id, pid, group, reason, amount, written_off, user_id, stamp, EOB_NOTE],
                )
        derive_dues(
            self.con,
            [(line.invoice_id, None) for line in eob.lines],
            user_id=user_id,
            stamp=stamp,
            reason=f"{MANUAL_REASON} {pid}",
        )
        for line in eob.lines:  # the preview is what was recorded, or nothing is
            row = self.execute(
                f"SELECT client_amt_due FROM ({queries.ledger_sql('client_id = $1')}) WHERE invoice_id = $2",
                [client_id, line.invoice_id],
            ).fetchone()
            if row is None or row[0] != line.client_amt_due:
                raise PaymentRefused(
                    f"EOB: invoice {line.invoice_id}: the ledger would show Client Amt Due "
                    f"{fmt(row[0] if row else None)}, not the {fmt(line.client_amt_due)} previewed; "
                    "nothing was recorded"
                )

    # --------------------------------------------------------------- payments
    def plan_eob(self, request: PaymentRequest, plan: Plan | None = None) -> EobPlan | None:
        """The manual adjudication Record Payment would record now with the request's EOB details."""
        client = self._client(request.client_id)
        policy = self.resolve_payer(client, request.payer)
        return self._plan_eob(client, policy, request, plan or self._plan(client, policy, request))

    def plan_payment(self, request: PaymentRequest) -> Plan:
        """The allocation Record Payment would make now (what the form previews)."""
        client = self._client(request.client_id)
        policy = self.resolve_payer(client, request.payer)
        return self._plan(client, policy, request)

    def record_payment(
        self,
        request: PaymentRequest,
        user_id: str,
        *,
        expected_plan: Plan | None = None,
        expected_eob: EobPlan | None = None,
        card: CardDetails | None = None,
        payment_id: str | None = None,
        in_transaction: Callable[[str], None] | None = None,
    ) -> PaymentReceipt:
        """Record an insurance payment: Billing permission, plan, idempotency, one transaction.

        ``expected_plan`` is what the analyst saw previewed: if the ledger changed since,
        the payment is refused rather than recorded differently from the preview
        (``expected_eob`` likewise for the request's paper EOB details, recorded as a
        manual adjudication in the same transaction: :meth:`_write_eob`).
        ``in_transaction(payment_id)`` runs inside the same transaction after the payment
        is written, so a caller's own bookkeeping (the card attempt that charged it)
        commits or rolls back together with the payment.
        """
        user = self.user(user_id)
        require_billing(user, "record a payment")
        if request.method is PaymentMethod.INSURANCE_CARD and card is None:
            raise PaymentRefused(
                "Insurance Credit/Debit Card payments are charged through the practice's processor "
                "(Charge Payment Method), not recorded by hand"
            )
        request_hash = _request_hash(request)
        with self.transaction(client=request.client_id):
            if request.idempotency_key:
                replay = self._replay(request.idempotency_key, request_hash)
                if replay is not None:
                    return replay
            client = self._client(request.client_id)
            policy = self.resolve_payer(client, request.payer)
            plan = self._plan(client, policy, request)
            if expected_plan is not None and plan != expected_plan:
                raise PaymentRefused(
                    "The ledger changed since this payment was previewed; review the preview and record again"
                )
            eob = self._plan_eob(client, policy, request, plan)
            if expected_eob is not None and eob != expected_eob:
                raise PaymentRefused(
                    "The ledger changed since this payment's EOB was previewed; review the preview and record again"
                )
            warnings = self._payment_number_warnings(policy.payer_id, request.payment_number)
            pid = payment_id or self.next_payment_id()
            received_on = request.received_on or date.today()
            stamp = now()
            self.execute(
                """INSERT INTO payments (payment_id, kind, client_id, payer_id, method, amount, received_on,
                       payment_number, notes, user_id, created_at, idempotency_key, request_hash,
                       processor, processor_ref, card_brand, card_last4)
                   VALUES (?, 'insurance', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                [
                    pid,
                    client.client_id,
                    policy.payer_id,
                    request.method.value,
                    plan.total,
                    received_on,
                    request.payment_number,
                    request.notes,
                    user.user_id,
                    stamp,
                    request.idempotency_key,
                    request_hash,
                    card.processor if card else None,
                    card.processor_ref if card else None,
                    card.brand if card else None,
                    card.last4 if card else None,
                ],
            )
            if plan.allocations:
                self.execute(
                    "INSERT INTO allocations VALUES "
                    + ", ".join("(nextval('entry_seq'), ?, ?, ?, 'insurance', ?, ?)" for _ in plan.allocations),
                    [v for a in plan.allocations for v in (pid, a.invoice_id, client.client_id, a.amount, stamp)],
                )
            if eob is not None:
                self._write_eob(eob, pid, client.client_id, user.user_id, stamp)
            self.audit(
                user.user_id,
                "record_payment",
                "payment",
                pid,
                {
                    "client_id": client.client_id,
                    "payer_id": policy.payer_id,
                    "method": request.method.value,
                    "amount": fmt(plan.total),
                    "allocations": {a.invoice_id: fmt(a.amount) for a in plan.allocations},
                    "meets": {a.invoice_id: a.meets for a in plan.allocations},
                    "confirmed_other_payer": request.confirm_other_payer,
                    "unapplied": fmt(plan.unapplied),
                    "payment_number": request.payment_number,
                    "idempotency_key": request.idempotency_key,
                    **({"eob": _eob_audit(eob)} if eob is not None else {}),
                },
            )
            if in_transaction is not None:
                in_transaction(pid)
        return PaymentReceipt(
            payment_id=pid,
            amount=plan.total,
            applied=plan.applied,
            unapplied=plan.unapplied,
            allocations=tuple((a.invoice_id, a.amount) for a in plan.allocations),
            warnings=tuple(warnings),
            meets=tuple((a.invoice_id, a.meets) for a in plan.allocations),
            eob=tuple(line.describe() for line in eob.lines) if eob is not None else (),
        )

    def next_payment_id(self) -> str:
        row = self.execute("SELECT nextval('payment_seq')").fetchone()
        return f"PAY-{row[0]:06d}" if row else "PAY-000000"

    def _replay(self, key: str, request_hash: str) -> PaymentReceipt | None:
        row = self.execute("SELECT payment_id, request_hash FROM payments WHERE idempotency_key = ?", [key]).fetchone()
        if row is None:
            return None
        if row[1] != request_hash:
            raise IdempotencyConflict(
                f"Key {key!r} was already used for payment {row[0]} with different details; "
                "nothing was recorded (use a new key for a new payment)"
            )
        pay = self.execute(
            f"SELECT payment_id, amount, applied, unapplied FROM ({queries.payments_sql('payment_id = $1')})",
            [row[0]],
        ).fetchone()
        allocs = self._rows(
            "SELECT invoice_id, amount FROM allocations WHERE payment_id = ? ORDER BY allocation_id", [row[0]]
        )
        return PaymentReceipt(
            payment_id=pay[0],
            amount=pay[1],
            applied=pay[2],
            unapplied=pay[3],
            allocations=tuple((a[0], a[1]) for a in allocs),
            replayed=True,
            warnings=(f"Key {key!r} was already recorded as payment {pay[0]}; nothing new was recorded",),
        )

    def _payment_number_warnings(self, payer_id: str, payment_number: str | None) -> list[str]:
        if not payment_number:
            return []
        earlier = self._rows(
            """SELECT payment_id, client_id, received_on, amount FROM payments
               WHERE payer_id = ? AND payment_number = ? AND reverses IS NULL ORDER BY created_at""",
            [payer_id, payment_number],
        )
        if not earlier:
            return []
        where = "; ".join(f"{r[0]} (client {r[1]}, {r[2]}, {fmt(r[3])})" for r in earlier)
        return [f"Payment Number {payment_number} was already used by {payer_id}: {where}"]

    def void_payment(self, payment_id: str, user_id: str, reason: str) -> str:
        """Void a payment by a reversing entry (payment and allocations negated); returns its id."""
        user = self.user(user_id)
        require_billing(user, "void a payment")
        if not reason or not reason.strip():
            raise PaymentRefused("A void needs a reason")
        with self.transaction():
            row = self.execute(
                "SELECT payment_id, client_id, reverses, remittance_id FROM payments WHERE payment_id = ?",
                [payment_id],
            ).fetchone()
            if row is None:
                raise NotFound(f"No payment {payment_id!r} in this ledger")
            if row[2] is not None:
                raise PaymentRefused(f"{payment_id} is itself a reversing entry (of {row[2]}); it cannot be voided")
            if row[3] is not None:
                raise PaymentRefused(
                    f"{payment_id} was posted from remittance {row[3]}; "
                    "the payer corrects it with a reversal in a later 835"
                )
            done = self.execute("SELECT payment_id FROM payments WHERE reverses = ?", [payment_id]).fetchone()
            if done:
                raise PaymentRefused(f"{payment_id} is already voided (by {done[0]})")
            rid = self.next_payment_id()
            stamp = now()
            self.execute(
                """INSERT INTO payments (payment_id, kind, client_id, payer_id, method, amount, received_on,
                       payment_number, notes, user_id, created_at, processor, processor_ref, card_brand,
                       card_last4, reverses, reason)
                   SELECT ?, kind, client_id, payer_id, method, -amount, ?, payment_number, notes, ?, ?,
                          processor, processor_ref, card_brand, card_last4, payment_id, ?
                   FROM payments WHERE payment_id = ?""",
                [rid, date.today(), user.user_id, stamp, reason.strip(), payment_id],
            )
            self.execute(
                """INSERT INTO allocations
                   SELECT nextval('entry_seq'), ?, invoice_id, client_id, kind, -amount, ?
                   FROM allocations WHERE payment_id = ? ORDER BY allocation_id""",
                [rid, stamp, payment_id],
            )
            undone = self._void_eob(payment_id, rid, row[1], user.user_id, stamp)
            detail: dict[str, Any] = {"reversal": rid, "reason": reason.strip()}
            if undone:
                detail["manual_adjudications_reversed"] = undone
            self.audit(user.user_id, "void_payment", "payment", payment_id, detail)
        return rid

    def _void_eob(self, payment_id: str, rid: str, client_id: str, user_id: str, stamp: datetime) -> list[str]:
        """Undo the manual adjudication a voided payment recorded: a reversing row for each (it stops
        standing), its adjustments negated, the amounts due derived again. Returns the invoices."""
        from recon.remit.match import MANUAL_REASON, derive_dues

        manual = self._rows(
            """SELECT claim_posting_id, invoice_id FROM manual_adjudications WHERE payment_id = ?
                 AND claim_posting_id NOT IN (SELECT original FROM adjudication_reversals)
               ORDER BY claim_posting_id""",
            [payment_id],
        )
        if not manual:
            return []
        for cpid, _ in manual:
            self.execute(
                f"INSERT INTO adjudication_reversals VALUES (?, nextval('entry_seq') - {MANUAL_ID_OFFSET}, ?)",
                [cpid, stamp],
            )
        self.execute(
            """INSERT INTO adjustments
               SELECT nextval('entry_seq'), invoice_id, client_id, ?, remittance_id, group_code, reason_code, -amount,
                      written_off, adjustment_id, ?, ?, note
               FROM adjustments WHERE payment_id = ? AND note = ? AND reverses IS NULL ORDER BY adjustment_id""",
            [rid, user_id, stamp, payment_id, EOB_NOTE],
        )
        invoices = sorted({inv for _, inv in manual})
        derive_dues(
            self.con,
            [(inv, None) for inv in invoices],
            user_id=user_id,
            stamp=stamp,
            reason=f"{MANUAL_REASON} voided with {payment_id}",
        )
        return invoices

    # ---------------------------------------------------------------- bulk I/O
    def load_practice(self, source: str | os.PathLike[str], user_id: str | None = None) -> Any:
        """Load clients, payers, policies, invoices and users from a CSV folder or an .xlsx.

        ``user_id`` must hold the admin permission, except on the first load into a
        ledger without users (which creates the first admin; see :mod:`recon.practice`).
        """
        from recon.practice import load_practice

        return load_practice(self, Path(source), user_id or None)

    def export(self, out: str | os.PathLike[str], fmt_name: str | None = None) -> list[Path]:
        from recon.export import export_ledger

        return export_ledger(self, Path(out), fmt_name)

    def tables_for_export(self) -> Iterator[tuple[str, Any]]:
        """Every table an export carries, as exact Arrow tables."""
        yield "invoices", self.arrow(queries.ledger_sql())
        yield "payments", self.arrow(queries.payments_sql())
        for name, order in (
            ("allocations", "allocation_id"),
            ("adjustments", "adjustment_id"),
            ("due_changes", "change_id"),
            ("audit_log", "audit_id"),
        ):
            yield name, self.arrow(f"SELECT * FROM {name} ORDER BY {order}")
        from recon.remit.reconcile import export_tables  # the ERA and bank side

        yield from export_tables(self)


MANUAL_ID_OFFSET = 2**62
"""A manual adjudication's claim_posting_id is ``entry_seq - 2**62``: negative, so never an 835's."""
EOB_NOTE = "paper EOB"
"""The note on the adjustments a paper EOB wrote (what a void of its payment negates)."""


_RANKS = {"primary": 1, "secondary": 2, "tertiary": 3}
_NO_MOVES = (ZERO,) * 5


def _rank(priority: str) -> int:
    """A policy's rank in the client's chain, as recon.remit.match.RANK_SQL ranks it."""
    return _RANKS.get(priority.strip().lower(), 9)


def _due_rank(priority: str) -> int:
    """A policy's place in the chain as :func:`recon.store.queries.due_from_sql` ranks it (no strip)."""
    return _RANKS.get(priority.lower(), 9)


def _ins_open(ins_due: Decimal, moves: tuple[Decimal, ...] | None) -> Decimal:
    """Ins Amt Due as billed, moved by due changes, less Ins Amt Paid and Ins Adjusted."""
    if moves is None:
        return ins_due
    _c_delta, i_delta, _c_paid, i_paid, adjusted = moves
    return ins_due + i_delta - i_paid - adjusted


def _eob_audit(eob: EobPlan) -> dict[str, Any]:
    return {
        "priority": eob.priority,
        "lines": {
            line.invoice_id: {
                "allowed": fmt(line.allowed) if line.allowed is not None else None,
                "paid": fmt(line.paid),
                "adjustments": {c: fmt(a) for c, a, _ in line.adjustments},
                "patient": {c: fmt(a) for c, a in line.patient},
                "client_amt_due": fmt(line.client_amt_due),
                "ins_amt_due": fmt(line.ins_amt_due),
            }
            for line in eob.lines
        },
    }


def _in_kernel() -> bool:
    """True inside a Jupyter kernel (where an idle kernel should not hold the ledger)."""
    import sys

    if "ipykernel" not in sys.modules:
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _request_hash(request: PaymentRequest) -> str:
    """The content of a request as the caller gave it (a replay without a date is the same)."""
    content = {
        "client_id": request.client_id,
        "payer": request.payer,
        "method": request.method.value,
        "amount": fmt(request.amount) if request.amount is not None else None,
        "picks": [[p.invoice_id, fmt(p.amount) if p.amount is not None else None] for p in request.picks],
        "payment_number": request.payment_number or None,
        "notes": request.notes or None,
        "received_on": request.received_on.isoformat() if request.received_on else None,
    }
    if request.confirm_other_payer:  # only when set, so earlier keys keep their hashes
        content["confirm_other_payer"] = True
    if request.eob:
        content["eob"] = [
            [
                e.invoice_id,
                fmt(e.allowed) if e.allowed is not None else None,
                [[c, fmt(a)] for c, a in e.adjustments],
                fmt(e.deductible),
                fmt(e.coinsurance),
                fmt(e.copay),
            ]
            for e in request.eob
        ]
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()
