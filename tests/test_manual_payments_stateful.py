"""Manual insurance payments against a reference model (hypothesis stateful test).

The model below is written from the Insurance Payment rules (README, ``recon pay``)
in plain Python Decimals: it never calls recon's allocation planner. Hypothesis
drives ticks, partial payments, lump sums, voids, replays with the same key and
every refusal through the library API (:class:`recon.services.Recon`); after each
step every invoice's Ins Amt Paid and Balance, each client's unapplied credit and
the number of payment entries must equal the model's.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from recon.cli import main
from recon.errors import IdempotencyConflict, PaymentRefused, PermissionDenied, ReconError
from recon.model import InvoicePick, PaymentMethod, PaymentRequest
from recon.services import Recon
from recon.store import queries
from tests.conftest import write_practice

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
CLIENTS = ("C1", "C2", "C3")
PAYERS = ("AET", "BCBS", "UHC")


def cents(n: int) -> Decimal:
    return (Decimal(n) * CENT).quantize(CENT)


class Refused(Exception):
    """The model's word for "recon must refuse this and write nothing"."""

    def __init__(self, kind: type[ReconError] = PaymentRefused) -> None:
        super().__init__(kind.__name__)
        self.kind = kind


@dataclass
class Invoice:
    client_id: str
    payer_id: str | None
    service_date: object
    client_due: Decimal
    ins_due: Decimal
    ins_paid: Decimal = ZERO

    @property
    def ins_open(self) -> Decimal:
        return self.ins_due - self.ins_paid


@dataclass
class Payment:
    client_id: str
    amount: Decimal
    allocations: dict[str, Decimal]
    voided: bool = False


@dataclass
class Model:
    """The ledger as the rules say it must be, from the invoices as loaded."""

    invoices: dict[str, Invoice]
    policies: dict[str, set[str]]
    payments: dict[str, Payment] = field(default_factory=dict)
    keys: dict[str, tuple[PaymentRequest, str]] = field(default_factory=dict)
    entries: int = 0  # payment rows, reversing entries included

    def unapplied(self, client_id: str) -> Decimal:
        return sum(
            (p.amount - sum(p.allocations.values(), ZERO) for p in self.payments.values()
             if p.client_id == client_id and not p.voided),
            ZERO,
        )  # fmt: skip

    def plan(self, request: PaymentRequest) -> tuple[Decimal, dict[str, Decimal]]:
        """(total, allocations) for a payment the rules accept; :class:`Refused` otherwise."""
        if request.payer not in self.policies[request.client_id]:
            raise Refused()
        amount = request.amount
        if amount is not None and amount <= ZERO:
            raise Refused()
        mine = {i: inv for i, inv in self.invoices.items() if inv.client_id == request.client_id}
        if not request.picks:
            assert amount is not None
            left, allocations = amount, {}
            open_ones = sorted(
                (i for i, inv in mine.items() if inv.payer_id == request.payer and inv.ins_open > ZERO),
                key=lambda i: (mine[i].service_date, i),
            )
            for invoice_id in open_ones:
                if left <= ZERO:
                    break
                part = min(left, mine[invoice_id].ins_open)
                allocations[invoice_id] = part
                left -= part
            return amount, allocations
        allocations = {}
        for pick in request.picks:
            inv = mine.get(pick.invoice_id)
            if inv is None or pick.invoice_id in allocations:
                raise Refused()
            if pick.amount is None:
                if inv.ins_open <= ZERO:
                    raise Refused()
                allocations[pick.invoice_id] = inv.ins_open
            elif pick.amount <= ZERO or pick.amount > inv.ins_open:
                raise Refused()
            else:
                allocations[pick.invoice_id] = pick.amount
        picked = sum(allocations.values(), ZERO)
        if amount is not None and amount < picked:
            raise Refused()
        return (picked if amount is None else amount), allocations

    def record(self, request: PaymentRequest, user: str) -> str | None:
        """The payment id a replay must name (None: a new payment); raises :class:`Refused`."""
        if user != "ana":
            raise Refused(PermissionDenied)
        key = request.idempotency_key
        if key is not None and key in self.keys:
            earlier, payment_id = self.keys[key]
            if earlier != request:
                raise Refused(IdempotencyConflict)
            return payment_id
        self.plan(request)
        return None

    def commit(self, request: PaymentRequest, payment_id: str) -> None:
        total, allocations = self.plan(request)
        for invoice_id, amount in allocations.items():
            self.invoices[invoice_id].ins_paid += amount
        self.payments[payment_id] = Payment(request.client_id, total, allocations)
        self.entries += 1
        if request.idempotency_key is not None:
            self.keys[request.idempotency_key] = (request, payment_id)

    def void(self, payment_id: str) -> None:
        payment = self.payments[payment_id]
        for invoice_id, amount in payment.allocations.items():
            self.invoices[invoice_id].ins_paid -= amount
        payment.voided = True
        self.entries += 1


_TEMPLATE: dict[str, Path] = {}


def template_ledger() -> Path:
    """The practice of tests/conftest.py loaded once per session; each example copies it."""
    if "path" not in _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="recon-stateful-template-"))
        path = folder / "ledger.duckdb"
        assert main(["load", str(write_practice(folder / "practice")), "--db", str(path)]) == 0
        _TEMPLATE["path"] = path
    return _TEMPLATE["path"]


class ManualPayments(RuleBasedStateMachine):
    """Random sequences of Accept Payment → Insurance Payment and voids, checked step by step."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="recon-stateful-"))
        path = self.folder / "ledger.duckdb"
        shutil.copy(template_ledger(), path)
        self.recon = Recon.open(path)
        invoices = {
            r[0]: Invoice(r[1], r[2], r[3], r[4], r[5])
            for r in self.recon.execute(
                "SELECT invoice_id, client_id, payer_id, service_date, client_amt_due, ins_amt_due FROM invoices"
            ).fetchall()
        }
        policies = {c: set() for c in CLIENTS}
        for client_id, payer_id in self.recon.execute("SELECT client_id, payer_id FROM client_insurance").fetchall():
            policies[client_id].add(payer_id)
        self.model = Model(invoices, policies)
        self.key_numbers = itertools.count(1)

    def teardown(self) -> None:
        self.recon.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    # ------------------------------------------------------------- helpers
    def invoices_of(self, client_id: str, payer: str | None = None) -> list[str]:
        return sorted(
            i for i, inv in self.model.invoices.items()
            if inv.client_id == client_id and (payer is None or inv.payer_id == payer)
        )  # fmt: skip

    def submit(self, request: PaymentRequest, user: str = "ana") -> None:
        """Send ``request`` to recon and to the model; both must agree on the outcome."""
        try:
            replay_of = self.model.record(request, user)
        except Refused as refusal:
            with pytest.raises(refusal.kind):
                self.recon.record_payment(request, user)
            return
        receipt = self.recon.record_payment(request, user)
        if replay_of is not None:
            assert receipt.replayed and receipt.payment_id == replay_of
            return
        assert not receipt.replayed
        total, allocations = self.model.plan(request)
        assert receipt.amount == total
        assert dict(receipt.allocations) == allocations
        self.model.commit(request, receipt.payment_id)

    def new_key(self, data: st.DataObject) -> str | None:
        return data.draw(st.one_of(st.none(), st.builds(lambda: f"key-{next(self.key_numbers)}")), label="key")

    def client_and_payer(self, data: st.DataObject) -> tuple[str, str]:
        client = data.draw(st.sampled_from(("C1", "C1", "C2")), label="client")
        payer = data.draw(st.sampled_from(sorted(self.model.policies[client])), label="payer")
        return client, payer

    # --------------------------------------------------------------- rules
    @rule(data=st.data())
    def tick(self, data: st.DataObject) -> None:
        """Tick invoices of the payer (a paid one is refused), with or without a Total Amount."""
        client, payer = self.client_and_payer(data)
        ids = data.draw(st.lists(st.sampled_from(self.invoices_of(client, payer)), min_size=1, max_size=3,
                                 unique=True), label="ticked")  # fmt: skip
        amount = data.draw(st.one_of(st.none(), st.integers(1, 60000).map(cents)), label="total")
        picks = tuple(InvoicePick(i) for i in ids)
        self.submit(PaymentRequest(client, payer, PaymentMethod.INSURANCE_CHECK, amount=amount, picks=picks,
                                   idempotency_key=self.new_key(data)))  # fmt: skip

    @rule(data=st.data())
    def partial(self, data: st.DataObject) -> None:
        """Typed Payments (some above the open due, or ≤ 0), a Total above or below their sum."""
        client, payer = self.client_and_payer(data)
        ids = data.draw(st.lists(st.sampled_from(self.invoices_of(client, payer)), min_size=1, max_size=3,
                                 unique=True), label="invoices")  # fmt: skip
        picks = tuple(InvoicePick(i, cents(data.draw(st.integers(-500, 20000), label=f"payment {i}"))) for i in ids)
        amount = data.draw(st.one_of(st.none(), st.integers(-100, 60000).map(cents)), label="total")
        self.submit(PaymentRequest(client, payer, PaymentMethod.INSURANCE_CHECK, amount=amount, picks=picks,
                                   idempotency_key=self.new_key(data)))  # fmt: skip

    @rule(data=st.data(), n=st.integers(-1000, 60000))
    def lump_sum(self, data: st.DataObject, n: int) -> None:
        """A Total Amount alone: oldest service first over the payer's open invoices, the rest unapplied."""
        client, payer = self.client_and_payer(data)
        self.submit(PaymentRequest(client, payer, PaymentMethod.INSURANCE_EFT_ACH, amount=cents(n),
                                   idempotency_key=self.new_key(data)))  # fmt: skip

    @rule(data=st.data())
    def refused_request(self, data: st.DataObject) -> None:
        """No Billing permission, a payer not on the client, another client's invoice, a payment twice."""
        case = data.draw(st.sampled_from(("no_billing", "payer", "other_client", "twice", "nothing_open")))
        if case == "no_billing":
            client, payer = self.client_and_payer(data)
            self.submit(PaymentRequest(client, payer, PaymentMethod.INSURANCE, amount=Decimal("10.00")), user="ben")
        elif case == "payer":
            client = data.draw(st.sampled_from(CLIENTS))
            payer = data.draw(st.sampled_from([p for p in PAYERS if p not in self.model.policies[client]]))
            self.submit(PaymentRequest(client, payer, PaymentMethod.INSURANCE, amount=Decimal("10.00")))
        elif case == "other_client":
            self.submit(PaymentRequest("C1", "BCBS", PaymentMethod.INSURANCE, picks=(InvoicePick("I6"),)))
        elif case == "twice":
            self.submit(PaymentRequest("C1", "AET", PaymentMethod.INSURANCE,
                                       picks=(InvoicePick("I2", Decimal("1.00")), InvoicePick("I2"))))  # fmt: skip
        else:  # I5's Ins Amt Due is 0.00: nothing is ever open on it
            self.submit(PaymentRequest("C1", "AET", PaymentMethod.INSURANCE, picks=(InvoicePick("I5"),)))

    @precondition(lambda self: bool(self.model.keys))
    @rule(data=st.data())
    def replay(self, data: st.DataObject) -> None:
        """The same key again: the same content names the same payment, other content is refused."""
        key = data.draw(st.sampled_from(sorted(self.model.keys)), label="replayed key")
        request = self.model.keys[key][0]
        if data.draw(st.booleans(), label="changed"):
            request = PaymentRequest(request.client_id, request.payer, request.method, amount=request.amount,
                                     picks=request.picks, notes="changed", idempotency_key=key)  # fmt: skip
        self.submit(request)

    @precondition(lambda self: bool(self.model.payments))
    @rule(data=st.data())
    def void(self, data: st.DataObject) -> None:
        """Void a payment by a reversing entry; voiding it again, or without Billing, is refused."""
        payment_id = data.draw(st.sampled_from(sorted(self.model.payments)), label="payment")
        user = data.draw(st.sampled_from(("ana", "ana", "ben")), label="user")
        if user != "ana" or self.model.payments[payment_id].voided:
            with pytest.raises(PermissionDenied if user != "ana" else PaymentRefused):
                self.recon.void_payment(payment_id, user, "keyed on the wrong client")
            return
        self.recon.void_payment(payment_id, user, "keyed on the wrong client")
        self.model.void(payment_id)

    # ---------------------------------------------------------- invariants
    @invariant()
    def ledger_matches_model(self) -> None:
        rows = {r[0]: r for r in self.recon.execute(
            f"SELECT invoice_id, ins_amt_paid, balance FROM ({queries.ledger_sql()})").fetchall()}  # fmt: skip
        assert set(rows) == set(self.model.invoices)
        for invoice_id, inv in self.model.invoices.items():
            _, paid, balance = rows[invoice_id]
            assert paid == inv.ins_paid, invoice_id
            assert balance == inv.client_due + inv.ins_due - inv.ins_paid, invoice_id
            assert inv.ins_paid >= ZERO and inv.ins_open >= ZERO, invoice_id  # manual payments never overpay
        credit = dict(self.recon.execute(f"SELECT client_id, sum(unapplied) FROM ({queries.payments_sql()}) GROUP BY 1"
                                         ).fetchall())  # fmt: skip
        for client_id in CLIENTS:
            assert credit.get(client_id, ZERO) == self.model.unapplied(client_id), client_id
        assert self.recon.one("SELECT count(*) FROM payments")[0] == self.model.entries
        if self.model.payments:  # the Client Details figure is the same sum
            client_id = next(iter(self.model.payments.values())).client_id
            assert self.recon.client(client_id).unapplied_credit == self.model.unapplied(client_id)


ManualPayments.TestCase.settings = settings(
    max_examples=30,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
test_manual_payments_match_the_model = ManualPayments.TestCase
