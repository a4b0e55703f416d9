"""Stripe (Ensora Payments with Stripe): charge a card token with a PaymentIntent.

The browser's Stripe Elements form turns the card into a PaymentMethod id
(``pm_...``); the kernel creates and confirms a PaymentIntent for it in one call.
The card is keyed by staff on the insurer's behalf (card not present), so MOTO is
requested where the account is approved for it; otherwise a card that needs the
cardholder to authenticate ends as an error the analyst can act on.

Idempotency: the key goes to Stripe as the request's Idempotency-Key *and* into the
PaymentIntent's metadata next to ``recon_payment_id``, because a retry must find the
earlier PaymentIntent even where the key is not honoured (localstripe ignores it,
and Stripe forgets keys after 24 hours). The same holds for refunds.
"""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

import stripe

from recon.errors import ProcessorError
from recon.processors.base import (
    RECON_PAYMENT_ID,
    ChargeResult,
    OutcomeUnknown,
    RefundResult,
    from_cents,
    to_cents,
)
from recon.processors.settings import StripeSettings

IDEMPOTENCY_KEY = "recon_idempotency_key"
FORM_FIELDS = ("Card Number", "Expiration", "CVC", "Country", "Zip")
# How many recent PaymentIntents a retry scans when search cannot find the earlier one.
SCAN_LIMIT = 1000


class StripeProcessor:
    """The Stripe side of :class:`recon.processors.base.Processor`."""

    name = "stripe"

    def __init__(
        self, settings: StripeSettings, *, http_client: stripe.HTTPClient | None = None
    ) -> None:
        self._settings = settings
        kwargs: dict[str, Any] = {}
        if settings.api_base:
            kwargs["base_addresses"] = {"api": settings.api_base.rstrip("/")}
        self._client = stripe.StripeClient(
            settings.secret_key.reveal(),
            # Retries are recon's decision (with find_charge first), never the SDK's.
            max_network_retries=0,
            http_client=http_client or stripe.RequestsClient(timeout=settings.timeout),
            **kwargs,
        )

    def __repr__(self) -> str:
        return f"StripeProcessor(api_base={self._settings.api_base!r}, moto={self._settings.moto})"

    # -- charge -------------------------------------------------------------------
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
        if not token.startswith("pm_"):
            raise ProcessorError("The Stripe card form did not return a payment method id.")
        params: dict[str, Any] = {
            "amount": to_cents(amount),
            "currency": "usd",
            "payment_method": token,
            "payment_method_types": ["card"],
            "confirm": True,
            # Stripe shows metadata in the Dashboard; localstripe refuses ``description``
            # on a PaymentIntent, so it travels as metadata too.
            "metadata": {
                **metadata,
                "description": description[:500],
                RECON_PAYMENT_ID: recon_payment_id,
                IDEMPOTENCY_KEY: idempotency_key,
            },
            "expand": ["payment_method"],
        }
        if self._settings.moto:
            params["payment_method_options"] = {"card": {"moto": True}}
        try:
            intent = self._client.v1.payment_intents.create(
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
        except stripe.CardError as exc:
            return self._declined(exc, amount, token)
        except (stripe.APIConnectionError, stripe.APIError) as exc:
            raise OutcomeUnknown(
                "No answer from Stripe about this charge; it may or may not have gone "
                "through. Retry it: recon checks Stripe before charging again."
            ) from exc
        except stripe.StripeError as exc:
            raise ProcessorError(f"Stripe refused the charge: {_message(exc)}") from exc
        return self._result(intent)

    def _declined(self, exc: stripe.CardError, amount: Decimal, token: str) -> ChargeResult:
        err = exc.error
        intent = getattr(err, "payment_intent", None) if err is not None else None
        ref = _id(intent) or self._intent_of_charge(getattr(err, "charge", None))
        code = (getattr(err, "decline_code", None) if err is not None else None) or exc.code
        brand, last4 = self._card_of(token)
        return ChargeResult(
            status="declined",
            processor="stripe",
            processor_ref=ref,
            amount=amount,
            brand=brand,
            last4=last4,
            decline_code=code,
            reason=_message(exc),
        )

    def _intent_of_charge(self, charge_id: str | None) -> str | None:
        """The PaymentIntent behind a declined charge (Stripe names it in the error;
        localstripe names only the charge), so a decline's reference is always a pi_."""
        if not charge_id:
            return None
        try:
            charge = self._client.v1.charges.retrieve(charge_id)
        except stripe.StripeError:
            return charge_id
        return _id(_get(charge, "payment_intent")) or charge_id

    def _card_of(self, payment_method: Any) -> tuple[str | None, str | None]:
        """Brand and last 4 of a PaymentMethod (an id is fetched, an object is read)."""
        if isinstance(payment_method, str):
            try:
                payment_method = self._client.v1.payment_methods.retrieve(payment_method)
            except stripe.StripeError:
                return None, None
        card = _get(payment_method, "card")
        return _get(card, "brand"), _get(card, "last4")

    def _result(self, intent: Any) -> ChargeResult:
        status = intent["status"]
        amount = from_cents(int(intent["amount"]))
        brand, last4 = self._card_of(_get(intent, "payment_method"))
        base = {"processor": "stripe", "processor_ref": intent["id"], "amount": amount}
        if status == "succeeded":
            return ChargeResult(status="succeeded", brand=brand, last4=last4, **base)
        if status == "processing":
            raise OutcomeUnknown(
                f"Stripe is still processing PaymentIntent {intent['id']}; retry shortly."
            )
        if status == "requires_payment_method":
            error = _get(intent, "last_payment_error") or {}
            return ChargeResult(
                status="declined",
                brand=brand,
                last4=last4,
                decline_code=_get(error, "decline_code") or _get(error, "code"),
                reason=_get(error, "message") or "The card was declined.",
                **base,
            )
        if status == "requires_action":
            self._cancel(intent["id"])
            return ChargeResult(
                status="error",
                brand=brand,
                last4=last4,
                decline_code="authentication_required",
                reason=(
                    "The card's bank asks the cardholder to authenticate, which cannot be "
                    "done for a card keyed in by staff. Ask the insurer for another card."
                ),
                **base,
            )
        return ChargeResult(
            status="error",
            brand=brand,
            last4=last4,
            reason=f"Stripe left the payment in status {status!r}; no money was taken.",
            **base,
        )

    def _cancel(self, intent_id: str) -> None:
        # Best effort: it cannot be charged without authentication either way.
        with contextlib.suppress(stripe.StripeError):
            self._client.v1.payment_intents.cancel(intent_id)

    # -- retry lookup ---------------------------------------------------------------
    def find_charge(self, idempotency_key: str, recon_payment_id: str) -> ChargeResult | None:
        matches = self._search(recon_payment_id) or self._scan(recon_payment_id)
        mine = [
            pi for pi in matches if _get(_get(pi, "metadata"), IDEMPOTENCY_KEY) == idempotency_key
        ]
        if not mine:
            return None
        # Several intents under one key can only come from a peer that ignores keys;
        # a succeeded one is the truth the ledger must record.
        mine.sort(key=lambda pi: pi["status"] != "succeeded")
        return self._result(mine[0])

    def _search(self, recon_payment_id: str) -> list[Any]:
        """Search API (exact but eventually consistent; missing on some peers)."""
        escaped = recon_payment_id.replace("\\", "\\\\").replace("'", "\\'")
        try:
            found = self._client.v1.payment_intents.search(
                params={"query": f"metadata['{RECON_PAYMENT_ID}']:'{escaped}'", "limit": 100}
            )
        except stripe.InvalidRequestError:
            return []
        except (stripe.APIConnectionError, stripe.APIError) as exc:
            raise OutcomeUnknown("Stripe could not be reached to check an earlier charge.") from exc
        return list(found.data)

    def _scan(self, recon_payment_id: str) -> list[Any]:
        """Recent PaymentIntents filtered by recon's metadata (newest first on Stripe)."""
        try:
            page = self._client.v1.payment_intents.list(params={"limit": 100})
            found = []
            for n, intent in enumerate(page.auto_paging_iter()):
                if n >= SCAN_LIMIT:
                    break
                if _get(_get(intent, "metadata"), RECON_PAYMENT_ID) == recon_payment_id:
                    found.append(intent)
            return found
        except stripe.StripeError as exc:
            raise OutcomeUnknown("Stripe could not be reached to check an earlier charge.") from exc

    # -- refund ------------------------------------------------------------------------
    def refund(self, processor_ref: str, amount: Decimal, idempotency_key: str) -> RefundResult:
        cents = to_cents(amount)
        try:
            intent = self._client.v1.payment_intents.retrieve(processor_ref)
            refunds = list(
                self._client.v1.refunds.list(
                    params={"payment_intent": processor_ref, "limit": 100}
                ).auto_paging_iter()
            )
        except stripe.InvalidRequestError as exc:
            raise ProcessorError(f"Stripe has no payment {processor_ref}: {_message(exc)}") from exc
        except stripe.StripeError as exc:
            raise OutcomeUnknown("Stripe could not be reached to refund the payment.") from exc
        for earlier in refunds:
            if _get(_get(earlier, "metadata"), IDEMPOTENCY_KEY) == idempotency_key:
                return _refund_result(earlier, processor_ref)
        if intent["status"] != "succeeded":
            raise ProcessorError(
                f"Payment {processor_ref} was not charged, so it cannot be refunded."
            )
        # Checked here because not every peer caps refunds at the amount charged.
        refunded = sum(int(r["amount"]) for r in refunds if _get(r, "status") != "failed")
        if cents > int(intent["amount"]) - refunded:
            left = from_cents(int(intent["amount"]) - refunded)
            raise ProcessorError(f"Cannot refund {amount}: only {left} of {processor_ref} is left.")
        try:
            refund = self._client.v1.refunds.create(
                params={
                    "payment_intent": processor_ref,
                    "amount": cents,
                    "metadata": {IDEMPOTENCY_KEY: idempotency_key},
                },
                options={"idempotency_key": idempotency_key},
            )
        except (stripe.APIConnectionError, stripe.APIError) as exc:
            raise OutcomeUnknown(
                "No answer from Stripe about this refund; retry it with the same key."
            ) from exc
        except stripe.StripeError as exc:
            raise ProcessorError(f"Stripe refused the refund: {_message(exc)}") from exc
        return _refund_result(refund, processor_ref)

    def create_setup_intent(self) -> str:
        """A SetupIntent's client secret, for a Stripe.js that can only confirm card setups.

        Stripe.js turns the card into a PaymentMethod with ``createPaymentMethod``;
        localstripe's stand-in cannot (it is a stub there) but confirms a SetupIntent,
        whose PaymentMethod the kernel then charges. The secret only lets the browser
        attach a card to this intent; no card data passes through the kernel.
        """
        try:
            intent = self._client.v1.setup_intents.create(
                params={"payment_method_types": ["card"], "usage": "on_session"}
            )
        except stripe.StripeError as exc:
            raise ProcessorError(
                f"Stripe could not prepare the card form: {_message(exc)}"
            ) from exc
        return str(intent["client_secret"])

    def browser_config(self) -> dict[str, Any]:
        return {
            "processor": "stripe",
            "publishable_key": self._settings.publishable_key,
            "script_url": self._settings.js_url,
            "fields": list(FORM_FIELDS),
            "submit_label": "Submit",
        }


def _refund_result(refund: Any, charge_ref: str) -> RefundResult:
    status = _get(refund, "status")
    if status not in ("succeeded", "pending"):
        raise ProcessorError(f"Stripe refund {refund['id']} ended as {status!r}.")
    return RefundResult(
        status=status,
        processor="stripe",
        processor_ref=refund["id"],
        charge_ref=charge_ref,
        amount=from_cents(int(refund["amount"])),
    )


def _get(obj: Any, key: str) -> Any:
    """A field of a StripeObject or dict, or None (peers omit fields Stripe always sends).

    StripeObjects are not dicts in stripe>=15 (no ``.get``), but they index like one.
    """
    if obj is None or isinstance(obj, str):
        return None
    try:
        return obj[key]
    except (KeyError, TypeError, IndexError):
        return None


def _id(obj: Any) -> str | None:
    return obj if isinstance(obj, str) else _get(obj, "id")


def _message(exc: stripe.StripeError) -> str:
    return str(exc.user_message or exc.code or "no reason given")
