"""Frozen records for the things a billing analyst talks about.

Amounts are ``Decimal`` (built by :mod:`recon.money`), dates are ``datetime.date``.
These are plain values: they carry no database handle and no behaviour beyond
small derived properties.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from enum import StrEnum

BILLING = "billing"


class PaymentMethod(StrEnum):
    """Payment Method drop-down values; ``.label`` is what the form shows."""

    INSURANCE = "insurance"
    INSURANCE_CHECK = "insurance-check"
    INSURANCE_EFT_ACH = "insurance-eft-ach"
    INSURANCE_CARD = "insurance-card"

    @property
    def label(self) -> str:
        return _METHOD_LABELS[self]

    @classmethod
    def parse(cls, text: str) -> PaymentMethod:
        """Accept the CLI value (``insurance-check``) or the form label (``Insurance Check``)."""
        wanted = text.strip().lower()
        for method in cls:
            if wanted in (method.value, method.label.lower()):
                return method
        choices = ", ".join(m.value for m in cls)
        from recon.errors import InputError

        raise InputError(f"Payment Method: {text!r} is not one of {choices}")


_METHOD_LABELS = {
    PaymentMethod.INSURANCE: "Insurance",
    PaymentMethod.INSURANCE_CHECK: "Insurance Check",
    PaymentMethod.INSURANCE_EFT_ACH: "Insurance EFT/ACH",
    PaymentMethod.INSURANCE_CARD: "Insurance Credit/Debit Card",
}


@dataclass(frozen=True, slots=True)
class User:
    user_id: str
    name: str
    permissions: frozenset[str]

    @property
    def has_billing(self) -> bool:
        return BILLING in self.permissions


@dataclass(frozen=True, slots=True)
class Payer:
    """An insurance provider; ``payer_identifier`` is the id an 835 carries."""

    payer_id: str
    name: str
    payer_identifier: str | None


@dataclass(frozen=True, slots=True)
class Policy:
    """One of a client's insurance policies."""

    payer_id: str
    payer_name: str
    member_id: str | None
    priority: str
    copay: Decimal | None


@dataclass(frozen=True, slots=True)
class Client:
    client_id: str
    first_name: str
    last_name: str
    date_of_birth: date | None
    copay: Decimal
    policies: tuple[Policy, ...] = ()
    unapplied_credit: Decimal = Decimal("0.00")

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One invoice on the Client Ledger, every amount derived from the entries."""

    invoice_id: str
    service_date: date
    service_code: str
    payer_id: str | None
    claim_id: str
    fee: Decimal
    client_amt_due: Decimal
    client_amt_paid: Decimal
    ins_amt_due: Decimal
    ins_amt_paid: Decimal
    ins_adjusted: Decimal
    balance: Decimal

    @property
    def ins_open(self) -> Decimal:
        """What the insurer still owes on this invoice (Ins Amt Due less paid and adjusted)."""
        return self.ins_amt_due - self.ins_amt_paid - self.ins_adjusted


def _exact(value: object, field: str) -> Decimal | None:
    """``value`` as two-place money, refusing floats, non-finite values and a third decimal.

    The CLI and the form already refuse these, but a library caller (a notebook, a
    script) builds requests directly: ``Decimal("100.005")`` must not be recorded as
    100.01, nor a Payment of ``0.004`` as 0.00.
    """
    if value is None:
        return None
    if not isinstance(value, Decimal | int) or isinstance(value, bool):
        from recon.errors import InvalidAmount

        raise InvalidAmount(field, repr(value), "an exact Decimal amount such as Decimal('12.30') (not a float)")
    from recon.money import parse_amount

    return parse_amount(value, field)


@dataclass(frozen=True, slots=True)
class InvoicePick:
    """A ticked invoice (``amount`` None: pay its open Ins Amt Due) or a typed partial Payment."""

    invoice_id: str
    amount: Decimal | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", _exact(self.amount, f"Payment on invoice {self.invoice_id}"))


@dataclass(frozen=True, slots=True)
class EobEntry:
    """What a paper EOB says about one invoice, typed by the analyst (a manual adjudication).

    ``allowed`` (optional) is the payer's allowed amount: it must equal paid + patient
    responsibility. ``adjustments`` are the payer's (code, amount) adjustments, e.g.
    ``(("CO-45", Decimal("20.00")),)``; patient responsibility comes by kind: deductible
    (PR-1), coinsurance (PR-2) and co-pay (PR-3). See :mod:`recon.rules.eob`.
    """

    invoice_id: str
    allowed: Decimal | None = None
    adjustments: tuple[tuple[str, Decimal], ...] = ()
    deductible: Decimal = Decimal("0.00")
    coinsurance: Decimal = Decimal("0.00")
    copay: Decimal = Decimal("0.00")

    def __post_init__(self) -> None:
        """Exact two-place money in every field (a refusal names the invoice and the field)."""
        inv = self.invoice_id
        object.__setattr__(self, "allowed", _exact(self.allowed, f"Allowed on invoice {inv}"))
        for name, label in (("deductible", "Deductible"), ("coinsurance", "Coinsurance"), ("copay", "Co-pay")):
            value = _exact(getattr(self, name), f"{label} on invoice {inv}")
            object.__setattr__(self, name, Decimal("0.00") if value is None else value)
        adjustments = []
        for code, amount in self.adjustments:
            norm = str(code).strip().upper().replace(" ", "")
            value = _exact(amount, f"{norm} adjustment on invoice {inv}")
            adjustments.append((norm, Decimal("0.00") if value is None else value))
        object.__setattr__(self, "adjustments", tuple(adjustments))

    @property
    def patient_resp(self) -> Decimal:
        return self.deductible + self.coinsurance + self.copay

    @property
    def adjusted(self) -> Decimal:
        return sum((a for _, a in self.adjustments), Decimal("0.00"))


@dataclass(frozen=True, slots=True)
class PaymentRequest:
    """What the analyst entered on the Insurance Payment form (or the CLI), as given."""

    client_id: str
    payer: str
    method: PaymentMethod
    amount: Decimal | None = None
    picks: tuple[InvoicePick, ...] = ()
    payment_number: str | None = None
    notes: str | None = None
    received_on: date | None = None
    idempotency_key: str | None = None
    # The analyst saw that a ticked invoice's Ins Amt Due is owed by another payer and
    # confirmed that this payer paid it (see recon.rules.allocation.responsibility).
    confirm_other_payer: bool = False
    # A paper EOB's per-invoice details, recorded as a manual adjudication (recon.rules.eob).
    eob: tuple[EobEntry, ...] = ()

    def __post_init__(self) -> None:
        """Refuse amounts that are not exact two-place money, naming the field (see :func:`_exact`)."""
        object.__setattr__(self, "amount", _exact(self.amount, "Total Amount"))
        picks = tuple(self.picks)
        for pick in picks:
            if not isinstance(pick, InvoicePick):
                from recon.errors import InputError

                raise InputError(f"Invoice picks: {pick!r} is not an InvoicePick(invoice_id, amount)")
        object.__setattr__(self, "picks", picks)
        eob = tuple(self.eob)
        for entry in eob:
            if not isinstance(entry, EobEntry):
                from recon.errors import InputError

                raise InputError(f"EOB details: {entry!r} is not an EobEntry(invoice_id, ...)")
        object.__setattr__(self, "eob", eob)


@dataclass(frozen=True, slots=True)
class CardDetails:
    """What a processor tells us of a charged card: never the number or CVC."""

    processor: str
    processor_ref: str
    brand: str | None
    last4: str | None


@dataclass(frozen=True, slots=True)
class PaymentReceipt:
    """The outcome of Record Payment."""

    payment_id: str
    amount: Decimal
    applied: Decimal
    unapplied: Decimal
    allocations: tuple[tuple[str, Decimal], ...]
    warnings: tuple[str, ...] = ()
    replayed: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    meets: tuple[tuple[str, str], ...] = ()  # per invoice: whose responsibility the money meets
    eob: tuple[str, ...] = ()  # per invoice of a paper EOB: the manual adjudication and the dues it left
