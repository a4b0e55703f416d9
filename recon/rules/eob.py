"""Plan a paper EOB posted by hand: per invoice, the manual adjudication and the amounts due it leaves.

A paper EOB says, per invoice, what the payer allowed, paid, adjusted (CO-45 ...) and
left to the patient (deductible PR-1, coinsurance PR-2, co-pay PR-3). recon records it
as the same kind of adjudication an 835 posting keeps per payer, so the amounts due
follow one rule (:func:`client_due`, the pure form of
:func:`recon.remit.match.derive_dues_sql`): Client Amt Due is the patient
responsibility of the last payer in the client's chain that adjudicated the invoice;
while a later policy has not adjudicated yet it is Ins Amt Due from that next payer.

Pure: the caller reads the ledger and passes what this needs; the plan the form
previews is the one :meth:`recon.services.Recon.record_payment` records.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from recon.errors import PaymentRefused
from recon.model import EobEntry
from recon.money import ZERO, fmt

DEFAULT_ADJUSTMENT = "CO-45"
ADJUSTMENT_CODES: tuple[tuple[str, str], ...] = (
    ("CO-45", "charge exceeds fee schedule / contracted amount"),
    ("CO-253", "sequestration"),
    ("CO-97", "included in another service (bundled)"),
    ("CO-59", "multiple or concurrent procedure rules"),
    ("CO-94", "processed in excess of charges"),
    ("CO-131", "claim-specific negotiated discount"),
    ("OA-23", "impact of prior payer adjudication"),
    ("PI-45", "charge exceeds fee schedule (payer initiated)"),
)
"""The payer adjustment codes a paper EOB may carry here (the form's list; ``recon pay`` accepts the same)."""

PR_KINDS: tuple[tuple[str, str], ...] = (("deductible", "PR-1"), ("coinsurance", "PR-2"), ("copay", "PR-3"))
"""Patient responsibility by kind, and the CARC each is recorded under."""

FORWARDED = ("19", "20", "21")  # CLP02 "processed and forwarded" (ERA posting uses this one too)
NEW_POSTING = -1
"""Where a manual adjudication not yet recorded sorts among the standing ones: after every
earlier manual one (their ids are far below zero), before any 835 claim posting (above zero)."""

_CODE = re.compile(r"^(CO|OA|PI|CR)-[A-Z0-9]{1,3}$")


@dataclass(frozen=True, slots=True)
class Adjudicated:
    """A standing adjudication of one invoice by one claim posting (lines summed)."""

    invoice_id: str
    claim_posting_id: int
    payer_id: str
    priority: int
    status: str
    patient_resp: Decimal


@dataclass(frozen=True, slots=True)
class EobInvoice:
    """An invoice as it stands: its fee (the charge) and its amounts due now."""

    invoice_id: str
    fee: Decimal
    client_amt_due: Decimal
    ins_amt_due: Decimal


@dataclass(frozen=True, slots=True)
class EobLine:
    """One invoice's manual adjudication and the amounts due it leaves (what the preview shows)."""

    invoice_id: str
    charge: Decimal
    paid: Decimal
    allowed: Decimal | None
    adjustments: tuple[tuple[str, Decimal, bool], ...]  # (code, amount, written off as Ins Adjusted)
    patient: tuple[tuple[str, Decimal], ...]  # (PR-1/2/3, amount), non-zero only
    client_amt_due_before: Decimal
    client_amt_due: Decimal
    ins_amt_due: Decimal

    @property
    def patient_resp(self) -> Decimal:
        return sum((a for _, a in self.patient), ZERO)

    @property
    def written_off(self) -> Decimal:
        return sum((a for _, a, w in self.adjustments if w), ZERO)

    @property
    def other_adj(self) -> Decimal:
        return sum((a for _, a, w in self.adjustments if not w), ZERO)

    def describe(self) -> str:
        """One line for the preview and ``recon pay``."""
        adj = ", ".join(f"{c} {fmt(a)}{' written off' if w else ''}" for c, a, w in self.adjustments)
        pr = ", ".join(f"{c} {fmt(a)}" for c, a in self.patient)
        parts = [f"paid {fmt(self.paid)}"]
        if self.allowed is not None:
            parts.insert(0, f"allowed {fmt(self.allowed)}")
        if adj:
            parts.append(adj)
        if pr:
            parts.append(pr)
        return (
            f"{self.invoice_id}: {'; '.join(parts)} → Client Amt Due {fmt(self.client_amt_due)} "
            f"(was {fmt(self.client_amt_due_before)}), Ins Amt Due {fmt(self.ins_amt_due)}"
        )


@dataclass(frozen=True, slots=True)
class EobPlan:
    """The manual adjudication a payment's paper EOB records: one payer, at its priority for the client."""

    payer_id: str
    priority: int
    status: str
    lines: tuple[EobLine, ...]


def client_due(
    adjudications: Iterable[Adjudicated], ranks: Mapping[str, int], billed_priorities: Iterable[int] = ()
) -> Decimal | None:
    """Client Amt Due as the standing ``adjudications`` of one invoice say, or None when none stands.

    ``ranks``: the client's payers and their rank (primary 1, secondary 2, tertiary 3);
    ``billed_priorities``: the priorities at which an analyst billed the client the part
    waiting on a next payer. Same rule as :func:`recon.remit.match.derive_dues_sql`.
    """
    standing = [a for a in adjudications if a.priority > 0]
    if not standing:
        return None
    last = max(standing, key=lambda a: (a.priority, a.claim_posting_id))
    done = {a.payer_id for a in standing}
    later = any(rank > last.priority and payer not in done for payer, rank in ranks.items())
    billed = any(p >= last.priority for p in billed_priorities)
    waiting = (last.status in FORWARDED or later) and not billed
    return ZERO if waiting else last.patient_resp


def plan_eob(
    entries: Sequence[EobEntry],
    *,
    payer_id: str,
    priority: int,
    invoices: Mapping[str, EobInvoice],
    paid: Mapping[str, Decimal],
    standing: Mapping[str, Sequence[Adjudicated]],
    ranks: Mapping[str, int],
    billed: Mapping[str, Sequence[int]],
    write_off: frozenset[str],
) -> EobPlan | None:
    """Check each invoice's EOB details and derive the amounts due they leave; None without details.

    ``paid``: what this payment puts on each invoice (its allocation plan); ``priority``:
    the payer's rank among the client's policies. Refuses (:class:`PaymentRefused`, naming
    the invoice and the numbers) an unknown or repeated invoice, a code not on the list,
    a negative amount, paid + adjustments + patient responsibility above the fee, and an
    allowed amount that is not paid + patient responsibility.
    """
    if not entries:
        return None
    known = {c for c, _ in ADJUSTMENT_CODES}
    seen: set[str] = set()
    lines: list[EobLine] = []
    status = str(priority) if priority in (1, 2, 3) else "1"
    for entry in entries:
        inv = invoices.get(entry.invoice_id)
        if inv is None:
            raise PaymentRefused(f"EOB: invoice {entry.invoice_id} is not one of this client's invoices")
        if entry.invoice_id in seen:
            raise PaymentRefused(f"EOB: invoice {entry.invoice_id} is given twice")
        seen.add(entry.invoice_id)
        adjustments: list[tuple[str, Decimal, bool]] = []
        for code, amount in entry.adjustments:
            if code.startswith("PR-"):
                raise PaymentRefused(
                    f"EOB: invoice {entry.invoice_id}: {code} is patient responsibility; "
                    "enter it as deductible, coinsurance or co-pay"
                )
            if not _CODE.match(code) or code not in known:
                raise PaymentRefused(
                    f"EOB: invoice {entry.invoice_id}: adjustment code {code!r} is not one of "
                    f"{', '.join(sorted(known))}"
                )
            if any(code == c for c, _, _ in adjustments):
                raise PaymentRefused(f"EOB: invoice {entry.invoice_id}: adjustment {code} is given twice")
            adjustments.append((code, amount, code in write_off))
        patient = tuple((carc, getattr(entry, kind)) for kind, carc in PR_KINDS if getattr(entry, kind) != ZERO)
        kinds = [(f"{kind} ({carc})", getattr(entry, kind)) for kind, carc in PR_KINDS]
        amounts = [("allowed", entry.allowed), *((c, a) for c, a, _ in adjustments), *kinds]
        for label, amount in amounts:
            if amount is not None and amount < ZERO:
                raise PaymentRefused(
                    f"EOB: invoice {entry.invoice_id}: {label} must not be negative (got {fmt(amount)})"
                )
        got = paid.get(entry.invoice_id, ZERO)
        pr = entry.patient_resp
        adjusted = entry.adjusted
        if got + adjusted + pr > inv.fee:
            raise PaymentRefused(
                f"EOB: invoice {entry.invoice_id}: paid {fmt(got)} + adjustments {fmt(adjusted)} + patient "
                f"responsibility {fmt(pr)} = {fmt(got + adjusted + pr)} is more than its fee {fmt(inv.fee)}"
            )
        if entry.allowed is not None and entry.allowed != got + pr:
            raise PaymentRefused(
                f"EOB: invoice {entry.invoice_id}: allowed {fmt(entry.allowed)} is not paid {fmt(got)} + patient "
                f"responsibility {fmt(pr)} = {fmt(got + pr)} (difference {fmt(entry.allowed - got - pr)})"
            )
        new = Adjudicated(entry.invoice_id, NEW_POSTING, payer_id, priority, status, pr)
        after = client_due([*standing.get(entry.invoice_id, ()), new], ranks, billed.get(entry.invoice_id, ()))
        due = ZERO if after is None else after
        lines.append(
            EobLine(
                invoice_id=entry.invoice_id,
                charge=inv.fee,
                paid=got,
                allowed=entry.allowed,
                adjustments=tuple(adjustments),
                patient=patient,
                client_amt_due_before=inv.client_amt_due,
                client_amt_due=due,
                ins_amt_due=inv.fee - due,
            )
        )
    return EobPlan(payer_id, priority, status, tuple(lines))
