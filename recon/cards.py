"""Card payments through the practice's processor (Insurance Credit/Debit Card).

The card itself never reaches Python: the browser-side form (:mod:`recon.ui.card_form`)
tokenizes it with the processor, and only the token arrives here. This module turns
that token into a recorded payment, or into a visible attempt that says why not.

Why an attempt row, committed before the processor is called: a charge is the one
step recon cannot roll back. The row carries the idempotency key the call uses, so
whatever happens next — a decline, a timeout, the kernel dying mid-call — the
attempt is on the ledger and a retry of the same request reuses the key and asks
the processor for the earlier charge (:func:`recon.processors.base.charge_once`)
instead of charging twice. This holds even against peers that ignore idempotency
keys (localstripe), because the lookup is recon's own.

Order of a charge: Billing permission (before anything else), the plan the form
previewed, the attempt row (committed), the processor call, then the payment and
the attempt's ``succeeded`` in ONE transaction. If recording fails after money was
taken, the charge is refunded at once and the analyst is told; if even the refund
fails the attempt is marked ``unrecorded`` and the error says so — money is never
charged and unrecorded silently.

Order of a void of a card payment: permission and the ledger's own refusals first
(so nothing is refunded that cannot then be reversed), a refund row with its key
(committed), the processor's refund, then the reversing entry
(``recon.void_payment``). A crash between refund and reversal leaves a
``succeeded`` refund row; running the void again records the reversal without a
second refund.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from recon.errors import IdempotencyConflict, NotFound, PaymentRefused, ProcessorError
from recon.model import CardDetails, PaymentMethod, PaymentReceipt, PaymentRequest
from recon.money import ZERO, fmt
from recon.processors.base import ChargeResult, OutcomeUnknown, Processor, charge_once
from recon.rules.allocation import Plan
from recon.rules.permissions import require_billing

OPEN = ("pending", "unknown")  # outcome not known: a retry must look before charging


class CardDeclined(ProcessorError):
    """The processor declined the card; ``reason`` is its words, nothing was recorded."""

    def __init__(self, reason: str, *, attempt_id: str, decline_code: str | None = None) -> None:
        super().__init__(
            f"The card was declined: {reason} (attempt {attempt_id}; no money was recorded)",
            decline_code=decline_code,
        )
        self.reason = reason
        self.attempt_id = attempt_id


class ChargeOutcomeUnknown(ProcessorError):
    """No answer about the charge; the attempt stays open and a retry will look first."""

    def __init__(self, message: str, *, attempt_id: str) -> None:
        super().__init__(message)
        self.attempt_id = attempt_id


class ChargedNotRecorded(ProcessorError):
    """The card was charged but the payment could not be recorded (refunded, or not)."""

    def __init__(self, message: str, *, attempt_id: str, refunded: bool) -> None:
        super().__init__(message)
        self.attempt_id = attempt_id
        self.refunded = refunded


@dataclass(frozen=True)
class Attempt:
    """One row of ``card_attempts`` (what the ledger knows of a charge attempt)."""

    attempt_id: str
    payment_id: str
    idempotency_key: str
    request_key: str | None
    request_hash: str
    client_id: str
    payer_id: str
    amount: Decimal
    processor: str
    status: str
    processor_ref: str | None
    card_brand: str | None
    card_last4: str | None
    decline_code: str | None
    reason: str | None
    refund_key: str | None
    refund_ref: str | None
    user_id: str


_ATTEMPT_COLUMNS = ", ".join(Attempt.__dataclass_fields__)


def default_processor() -> Processor | None:
    """The practice's processor from its payment settings (None: not enrolled)."""
    from recon.processors.settings import load_settings, make_processor

    return make_processor(load_settings())


def _require_processor(processor: Processor | None) -> Processor:
    if processor is None:
        processor = default_processor()
    if processor is None:
        raise PaymentRefused("This practice is not enrolled in payment processing; card payments are not available")
    return processor


def attempts(recon: Any, *, client_id: str | None = None) -> list[Attempt]:
    """Card attempts, newest first (for the form, the CLI and tests)."""
    where, params = ("WHERE client_id = ?", [client_id]) if client_id else ("", [])
    rows = recon.execute(
        f"SELECT {_ATTEMPT_COLUMNS} FROM card_attempts {where} ORDER BY created_at DESC",
        params,
    ).fetchall()
    return [Attempt(*r) for r in rows]


def attempt(recon: Any, attempt_id: str) -> Attempt:
    row = recon.execute(f"SELECT {_ATTEMPT_COLUMNS} FROM card_attempts WHERE attempt_id = ?", [attempt_id]).fetchone()
    if row is None:
        raise NotFound(f"No card attempt {attempt_id!r} in this ledger")
    return Attempt(*row)


def _earlier_attempt(recon: Any, request_key: str) -> Attempt | None:
    row = recon.execute(
        f"SELECT {_ATTEMPT_COLUMNS} FROM card_attempts WHERE request_key = ? ORDER BY created_at DESC LIMIT 1",
        [request_key],
    ).fetchone()
    return Attempt(*row) if row else None


def _update(recon: Any, attempt_id: str, **values: Any) -> None:
    from recon.services import now

    cols = ", ".join(f"{k} = ?" for k in values)
    recon.execute(
        f"UPDATE card_attempts SET {cols}, updated_at = ? WHERE attempt_id = ?",
        [*values.values(), now(), attempt_id],
    )


def _update_committed(recon: Any, attempt_id: str, action: str, user_id: str, **values: Any) -> None:
    """Change an attempt and audit it in a transaction of its own (it must outlive errors)."""
    with recon.transaction():
        _update(recon, attempt_id, **values)
        recon.audit(user_id, action, "card_attempt", attempt_id, values)


def charge_card_payment(
    recon: Any,
    request: PaymentRequest,
    user_id: str,
    *,
    token: str | None,
    processor: Processor | None = None,
    expected_plan: Plan | None = None,
    retry_attempt: str | None = None,
) -> PaymentReceipt:
    """Charge ``token`` for the planned total and record the payment (see the module doc).

    ``expected_plan`` is the allocation the form previewed: if the ledger moved since,
    nothing is charged. ``request.idempotency_key`` (the form's key) or
    ``retry_attempt`` makes this a retry: an earlier attempt whose outcome is unknown
    is resolved with the processor before any new charge, one that succeeded is
    replayed, and a declined one is followed by a fresh attempt (a new card).
    """
    user = recon.user(user_id)
    require_billing(user, "charge a card")
    if request.method is not PaymentMethod.INSURANCE_CARD:
        raise PaymentRefused(f"Payment Method {request.method.label} is recorded, not charged; use Record Payment")
    from recon.services import _request_hash

    request_hash = _request_hash(request)
    earlier: Attempt | None = None
    if retry_attempt is not None:
        earlier = attempt(recon, retry_attempt)
        if earlier.request_hash != request_hash or earlier.client_id != request.client_id:
            raise IdempotencyConflict(f"Attempt {retry_attempt} was for a different payment; nothing was charged")
    elif request.idempotency_key:
        replay = _recorded(recon, request)
        if replay is not None:
            return replay  # the same form submitted again: already charged and recorded
        earlier = _earlier_attempt(recon, request.idempotency_key)
        if earlier is not None and earlier.request_hash != request_hash:
            raise IdempotencyConflict(
                f"Key {request.idempotency_key!r} was already used for card attempt "
                f"{earlier.attempt_id} with different details; nothing was charged"
            )
    if earlier is not None and earlier.status == "succeeded":
        replay = _recorded(recon, request, payment_id=earlier.payment_id)
        if replay is not None:
            return replay
    processor = _require_processor(processor)
    plan = recon.plan_payment(request)
    if expected_plan is not None and plan != expected_plan:
        raise PaymentRefused(
            "The ledger changed since this payment was previewed; review the preview and "
            "charge again (nothing was charged)"
        )
    if plan.total <= ZERO:
        raise PaymentRefused("Nothing to charge: the Total Amount is 0.00")
    if earlier is not None and earlier.status == "unrecorded":
        _refund_unrecorded(recon, processor, earlier, user.user_id, "a retry found it unrecorded")
    if earlier is not None and earlier.processor != processor.name:
        raise PaymentRefused(
            f"Attempt {earlier.attempt_id} went through {earlier.processor}, but the practice "
            f"now uses {processor.name}; resolve it in {earlier.processor} first"
        )
    retry = earlier is not None and earlier.status in OPEN
    if retry:
        assert earlier is not None
        current = earlier
        recon.audit(user.user_id, "card_retry", "card_attempt", current.attempt_id, {})
    else:
        if not token:
            raise PaymentRefused(
                "No card token: the processor's card form (or --payment-method-token) must tokenize the card first"
            )
        current = _start_attempt(recon, request, request_hash, plan, processor, user.user_id)

    client = recon.client(request.client_id)
    metadata = {
        "client": client.client_id,
        "invoices": ",".join(a.invoice_id for a in plan.allocations)[:450],
        "payer": current.payer_id,
        "recon_attempt": current.attempt_id,
    }
    try:
        if retry and not token:
            found = processor.find_charge(current.idempotency_key, current.payment_id)
            if found is None:
                raise PaymentRefused(
                    f"Attempt {current.attempt_id} never reached {processor.name}: nothing was "
                    "charged. Charge again with the card form (a new card token)."
                )
            result = found
        else:
            assert token is not None
            result = charge_once(
                processor,
                retry=retry,
                token=token,
                amount=plan.total,
                idempotency_key=current.idempotency_key,
                recon_payment_id=current.payment_id,
                metadata=metadata,
                description=f"Insurance Credit/Debit Card payment {current.payment_id} "
                f"from {current.payer_id} for client {client.client_id}",
            )
    except OutcomeUnknown as exc:
        _update_committed(
            recon, current.attempt_id, "card_charge_unknown", user.user_id,
            status="unknown", reason=str(exc),
        )  # fmt: skip
        raise ChargeOutcomeUnknown(
            f"{exc} (attempt {current.attempt_id} is kept open; retrying the same payment checks first)",
            attempt_id=current.attempt_id,
        ) from exc
    except PaymentRefused:
        raise
    except ProcessorError as exc:
        # On a retry the earlier charge may exist although this call failed: keep it open.
        status = "unknown" if retry else "error"
        _update_committed(
            recon, current.attempt_id, f"card_charge_{status}", user.user_id,
            status=status, reason=str(exc),
        )  # fmt: skip
        raise
    except BaseException:
        # A bug or an interrupt mid-call: the charge may have happened. Keep it open.
        try:
            _update_committed(
                recon, current.attempt_id, "card_charge_unknown", user.user_id,
                status="unknown", reason="interrupted during the processor call",
            )  # fmt: skip
        finally:
            raise

    if not result.succeeded:
        _update_committed(
            recon, current.attempt_id, f"card_charge_{result.status}", user.user_id,
            status=result.status, processor_ref=result.processor_ref,
            card_brand=result.brand, card_last4=result.last4,
            decline_code=result.decline_code, reason=result.reason or "no reason given",
        )  # fmt: skip
        reason = result.reason or "no reason given"
        if result.status == "declined":
            raise CardDeclined(reason, attempt_id=current.attempt_id, decline_code=result.decline_code)
        raise ProcessorError(
            f"The card was not charged: {reason} (attempt {current.attempt_id}; no money was recorded)",
            decline_code=result.decline_code,
        )
    return _record(recon, request, user.user_id, plan, current, result, processor)


def _start_attempt(
    recon: Any,
    request: PaymentRequest,
    request_hash: str,
    plan: Plan,
    processor: Processor,
    user_id: str,
) -> Attempt:
    """Reserve the payment id and store the attempt with its key, committed, before the call."""
    from recon.services import now

    client = recon.client(request.client_id)
    payer_id = recon.resolve_payer(client, request.payer).payer_id
    payment_id = recon.next_payment_id()
    attempt_id = f"CA-{uuid.uuid4().hex[:16]}"
    # Globally unique (ledgers share a processor account; payment ids repeat across them).
    key = f"recon-{payment_id}-{uuid.uuid4().hex}"
    stamp = now()
    with recon.transaction():
        recon.execute(
            f"INSERT INTO card_attempts ({_ATTEMPT_COLUMNS}, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', NULL, NULL, NULL, NULL, NULL, "
            "NULL, NULL, ?, ?, ?)",
            [
                attempt_id, payment_id, key, request.idempotency_key, request_hash,
                client.client_id, payer_id, plan.total, processor.name, user_id, stamp, stamp,
            ],
        )  # fmt: skip
        recon.audit(
            user_id, "card_attempt_started", "card_attempt", attempt_id,
            {"payment_id": payment_id, "amount": fmt(plan.total), "processor": processor.name,
             "client_id": client.client_id, "payer_id": payer_id, "idempotency_key": key},
        )  # fmt: skip
    return attempt(recon, attempt_id)


def _recorded(recon: Any, request: PaymentRequest, payment_id: str | None = None) -> PaymentReceipt | None:
    """The receipt of a card payment already recorded for this request, if there is one.

    A replay returns the first receipt (``replayed=True``) and charges nothing; the
    same key with different details is refused by the ledger's own replay check.
    """
    from recon.services import _request_hash

    key = request.idempotency_key
    if key and recon.execute("SELECT 1 FROM payments WHERE idempotency_key = ?", [key]).fetchone():
        replay: PaymentReceipt | None = recon._replay(key, _request_hash(request))
        return replay
    if payment_id and recon.execute("SELECT 1 FROM payments WHERE payment_id = ?", [payment_id]).fetchone():
        raise PaymentRefused(f"This card payment was already recorded as {payment_id}")
    return None


def _record(
    recon: Any,
    request: PaymentRequest,
    user_id: str,
    plan: Plan,
    current: Attempt,
    result: ChargeResult,
    processor: Processor,
) -> PaymentReceipt:
    """Payment + allocations + attempt ``succeeded`` in one transaction; refund if that fails."""
    card = CardDetails(
        processor=result.processor,
        processor_ref=str(result.processor_ref),
        brand=result.brand,
        last4=result.last4,
    )

    def mark_succeeded(payment_id: str) -> None:
        values = {
            "status": "succeeded", "processor_ref": result.processor_ref,
            "card_brand": result.brand, "card_last4": result.last4, "reason": None,
        }  # fmt: skip
        _update(recon, current.attempt_id, **values)
        recon.audit(
            user_id, "card_charge_succeeded", "card_attempt", current.attempt_id,
            {**values, "payment_id": payment_id},
        )  # fmt: skip

    try:
        if result.amount != plan.total:
            raise PaymentRefused(f"{processor.name} charged {fmt(result.amount)} but the payment is {fmt(plan.total)}")
        if not result.processor_ref:
            raise PaymentRefused(f"{processor.name} returned no reference for the charge")
        receipt: PaymentReceipt = recon.record_payment(
            request,
            user_id,
            expected_plan=plan,
            card=card,
            payment_id=current.payment_id,
            in_transaction=mark_succeeded,
        )
    except Exception as exc:
        _update_committed(
            recon, current.attempt_id, "card_charged_not_recorded", user_id,
            status="unrecorded", processor_ref=result.processor_ref, card_brand=result.brand,
            card_last4=result.last4, reason=f"charged but not recorded: {exc}",
        )  # fmt: skip
        refreshed = attempt(recon, current.attempt_id)
        _refund_unrecorded(recon, processor, refreshed, user_id, str(exc))
        raise AssertionError("unreachable") from exc  # _refund_unrecorded always raises
    return PaymentReceipt(
        payment_id=receipt.payment_id,
        amount=receipt.amount,
        applied=receipt.applied,
        unapplied=receipt.unapplied,
        allocations=receipt.allocations,
        warnings=receipt.warnings,
        replayed=receipt.replayed,
        extra={
            "attempt_id": current.attempt_id,
            "processor": card.processor,
            "processor_ref": card.processor_ref,
            "brand": card.brand or "",
            "last4": card.last4 or "",
        },
    )


def _refund_unrecorded(recon: Any, processor: Processor, charged: Attempt, user_id: str, why: str) -> None:
    """Give back a charge the ledger could not record; always raises ChargedNotRecorded."""
    key = charged.refund_key or f"{charged.idempotency_key}-refund"
    if charged.refund_key is None:
        _update_committed(recon, charged.attempt_id, "card_refund_started", user_id, refund_key=key)
    ref = charged.processor_ref or "?"
    try:
        refund = processor.refund(str(charged.processor_ref), charged.amount, key)
    except ProcessorError as exc:
        raise ChargedNotRecorded(
            f"The card was charged ({processor.name} {ref}, {fmt(charged.amount)}) but the "
            f"payment could not be recorded: {why}. The automatic refund FAILED: {exc}. "
            f"Attempt {charged.attempt_id} is marked unrecorded; retry the payment to refund "
            "it again, or refund it in the processor's dashboard.",
            attempt_id=charged.attempt_id,
            refunded=False,
        ) from exc
    _update_committed(
        recon, charged.attempt_id, "card_refunded_not_recorded", user_id,
        status="refunded", refund_ref=refund.processor_ref,
    )  # fmt: skip
    raise ChargedNotRecorded(
        f"The card was charged ({processor.name} {ref}) but the payment could not be "
        f"recorded: {why}. The charge of {fmt(charged.amount)} was refunded "
        f"({refund.processor_ref}); nothing was recorded (attempt {charged.attempt_id}).",
        attempt_id=charged.attempt_id,
        refunded=True,
    )


# ------------------------------------------------------------------------------ voids
def void_any_payment(
    recon: Any,
    payment_id: str,
    user_id: str,
    reason: str,
    *,
    processor: Processor | None = None,
) -> str:
    """Void a payment; a card payment is refunded through its processor first.

    Returns the id of the reversing entry.
    """
    user = recon.user(user_id)
    require_billing(user, "void a payment")
    if not reason or not reason.strip():
        raise PaymentRefused("A void needs a reason")
    row = recon.execute(
        "SELECT payment_id, processor, processor_ref, amount, reverses, remittance_id "
        "FROM payments WHERE payment_id = ?",
        [payment_id],
    ).fetchone()
    if row is None:
        raise NotFound(f"No payment {payment_id!r} in this ledger")
    if row[1] is None:
        return str(recon.void_payment(payment_id, user.user_id, reason))
    # The ledger's refusals first: never refund what cannot then be reversed.
    if row[4] is not None:
        raise PaymentRefused(f"{payment_id} is itself a reversing entry (of {row[4]}); it cannot be voided")
    done = recon.execute("SELECT payment_id FROM payments WHERE reverses = ?", [payment_id]).fetchone()
    if done:
        raise PaymentRefused(f"{payment_id} is already voided (by {done[0]})")
    processor = _require_processor(processor)
    if processor.name != row[1]:
        raise PaymentRefused(
            f"{payment_id} was charged through {row[1]}, but the practice now uses "
            f"{processor.name}; refund it in {row[1]}, then void it as a non-card correction"
        )
    refund_id, key, status = _refund_row(recon, payment_id, row[1], row[2], row[3], user.user_id)
    if status != "succeeded":
        _refund(recon, processor, refund_id, key, row[2], row[3], user.user_id)
    try:
        reversal = str(recon.void_payment(payment_id, user.user_id, reason))
    except Exception as exc:
        raise ProcessorError(
            f"{payment_id} was refunded through {processor.name} but its reversing entry could "
            f"not be recorded: {exc}. Run the void again: it records the reversal without a "
            "second refund."
        ) from exc
    with recon.transaction():
        recon.execute("UPDATE card_refunds SET reversal_id = ? WHERE refund_id = ?", [reversal, refund_id])
    return reversal


def _refund_row(
    recon: Any, payment_id: str, processor: str, charge_ref: str, amount: Decimal, user_id: str
) -> tuple[str, str, str]:
    """The open refund of this payment (retry: same key), or a new one committed first."""
    from recon.services import now

    row = recon.execute(
        "SELECT refund_id, idempotency_key, status FROM card_refunds "
        "WHERE payment_id = ? AND status IN ('pending', 'unknown', 'succeeded') "
        "ORDER BY created_at DESC LIMIT 1",
        [payment_id],
    ).fetchone()
    if row is not None:
        recon.audit(user_id, "card_refund_retry", "card_refund", row[0], {"status": row[2]})
        return str(row[0]), str(row[1]), str(row[2])
    refund_id = f"CR-{uuid.uuid4().hex[:16]}"
    key = f"recon-refund-{payment_id}-{uuid.uuid4().hex}"
    stamp = now()
    with recon.transaction():
        recon.execute(
            "INSERT INTO card_refunds VALUES (?, ?, ?, ?, ?, ?, 'pending', NULL, NULL, NULL, ?, ?, ?)",
            [refund_id, payment_id, key, processor, charge_ref, amount, user_id, stamp, stamp],
        )
        recon.audit(
            user_id, "card_refund_started", "card_refund", refund_id,
            {"payment_id": payment_id, "amount": fmt(amount), "idempotency_key": key},
        )  # fmt: skip
    return refund_id, key, "pending"


def _refund(
    recon: Any,
    processor: Processor,
    refund_id: str,
    key: str,
    charge_ref: str,
    amount: Decimal,
    user_id: str,
) -> None:
    from recon.services import now

    def mark(action: str, **values: Any) -> None:
        cols = ", ".join(f"{k} = ?" for k in values)
        with recon.transaction():
            recon.execute(
                f"UPDATE card_refunds SET {cols}, updated_at = ? WHERE refund_id = ?",
                [*values.values(), now(), refund_id],
            )
            recon.audit(user_id, action, "card_refund", refund_id, values)

    try:
        refund = processor.refund(charge_ref, amount, key)
    except OutcomeUnknown as exc:
        mark("card_refund_unknown", status="unknown", reason=str(exc))
        raise ProcessorError(f"{exc} Nothing was voided; run the void again (it reuses the same refund key).") from exc
    except ProcessorError as exc:
        mark("card_refund_error", status="error", reason=str(exc))
        raise ProcessorError(f"{exc} Nothing was voided.") from exc
    mark(
        "card_refund_succeeded",
        status="succeeded",
        processor_ref=refund.processor_ref,
        reason=json.dumps({"status": refund.status, "note": refund.reason}),
    )
