"""The card-processor interface the ledger talks to, whatever the practice uses.

The ledger charges an insurer's card through a :class:`Processor` without knowing
whether Stripe or Vantage (an Authorize.Net gateway) sits behind it. Two rules shape
the interface:

* **Only a token crosses it.** The card number and CVC go from the browser straight
  to the processor's tokenizer; ``charge`` receives the resulting token (a Stripe
  ``pm_...`` id, or Accept.js opaque data) and never a card number.
* **A charge happens once.** The ledger creates and stores an idempotency key before
  calling ``charge``. If the call's outcome is unknown (timeout, crash), the ledger
  calls ``find_charge`` with the same key and recon payment id before charging again:
  processors and their test peers do not all honour idempotency keys (localstripe
  ignores them), so recon's own lookup is the guarantee. :func:`charge_once` is that
  protocol in one call.

Amounts are ``Decimal`` here; each processor converts to its wire format exactly.
A decline is a normal result (``status == "declined"``), not an exception: the
ledger records the attempt with the processor's reason. Exceptions are for a
processor that refused the request or could not be reached.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, Protocol, runtime_checkable

from recon.errors import ProcessorError
from recon.money import CENT

ChargeStatus = Literal["succeeded", "declined", "error"]
ProcessorName = Literal["stripe", "vantage"]

# Metadata key every processor stores recon's payment id under, so that a retry can
# find the earlier charge in the processor's own records.
RECON_PAYMENT_ID = "recon_payment_id"


@dataclass(frozen=True)
class ChargeResult:
    """What the ledger records about one charge attempt (never card data beyond last 4).

    ``status`` is ``succeeded`` (money taken), ``declined`` (the issuer or gateway
    said no; ``reason`` is its words) or ``error`` (the processor could not complete
    it, e.g. a card needing authentication the staff cannot give; no money taken).
    """

    status: ChargeStatus
    processor: ProcessorName
    processor_ref: str | None
    amount: Decimal
    brand: str | None = None
    last4: str | None = None
    decline_code: str | None = None
    reason: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


@dataclass(frozen=True)
class RefundResult:
    """A refund (or, for a same-day Vantage charge, a void) of a charged payment."""

    status: Literal["succeeded", "pending"]
    processor: ProcessorName
    processor_ref: str
    charge_ref: str
    amount: Decimal
    reason: str | None = None


class OutcomeUnknown(ProcessorError):
    """The request may have reached the processor but no answer came back.

    The ledger must keep the attempt (and its idempotency key) open: a charge is
    resolved with :meth:`Processor.find_charge` before any new charge, a refund by
    calling ``refund`` again with the same key.
    """


@runtime_checkable
class Processor(Protocol):
    """A practice's card processor, as the ledger sees it."""

    name: ProcessorName

    def charge(
        self,
        *,
        token: str,
        amount: Decimal,
        idempotency_key: str,
        recon_payment_id: str,
        metadata: dict[str, str],
        description: str,
    ) -> ChargeResult:
        """Charge ``amount`` to the tokenized card; a decline is a result, not an error.

        Raises :class:`OutcomeUnknown` when the answer was lost, and
        :class:`~recon.errors.ProcessorError` when the processor refused the request.
        """
        ...

    def find_charge(self, idempotency_key: str, recon_payment_id: str) -> ChargeResult | None:
        """The earlier charge made for this recon payment, or None if there was none."""
        ...

    def refund(self, processor_ref: str, amount: Decimal, idempotency_key: str) -> RefundResult:
        """Give back ``amount`` of a succeeded charge; retrying with the same key is safe."""
        ...

    def browser_config(self) -> dict[str, Any]:
        """Public settings the browser card form needs (no secret ever appears here)."""
        ...


def to_cents(amount: Decimal) -> int:
    """Exact Decimal → integer cents; refuses fractions of a cent and non-positive amounts."""
    if not isinstance(amount, Decimal):
        raise TypeError(f"money must be Decimal, got {type(amount).__name__}")
    if amount != amount.quantize(CENT):
        raise ProcessorError(f"Amount {amount} has fractions of a cent and cannot be charged.")
    if amount <= 0:
        raise ProcessorError(f"Amount {amount} must be above 0.00 to charge or refund a card.")
    return int(amount.quantize(CENT) * 100)


def from_cents(cents: int) -> Decimal:
    """Integer cents → two-place Decimal."""
    return (Decimal(cents) / 100).quantize(CENT)


def charge_once(
    processor: Processor,
    *,
    retry: bool,
    token: str,
    amount: Decimal,
    idempotency_key: str,
    recon_payment_id: str,
    metadata: dict[str, str],
    description: str,
) -> ChargeResult:
    """Charge, or, when ``retry`` says an earlier attempt's outcome is unknown, recover it.

    A retry first asks the processor for a charge made under this recon payment id;
    only when there is none is the card charged (with the same idempotency key).
    A declined earlier attempt is returned as is: charging again is a new attempt
    with a new key, which the analyst starts, not a silent retry.
    """
    if retry:
        earlier = processor.find_charge(idempotency_key, recon_payment_id)
        if earlier is not None:
            return earlier
    return processor.charge(
        token=token,
        amount=amount,
        idempotency_key=idempotency_key,
        recon_payment_id=recon_payment_id,
        metadata=metadata,
        description=description,
    )
