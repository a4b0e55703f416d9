"""The Stripe processor against localstripe (the real stripe SDK over loopback HTTP).

Test cards are turned into PaymentMethods through localstripe's API here, in the
tests only: in the product the browser's Stripe.js does that and Python sees a
``pm_...`` id. localstripe ignores idempotency keys, so the retry test proves that
recon's own lookup (metadata ``recon_payment_id``) is what prevents a second charge.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
import stripe

from recon.errors import ProcessorError
from recon.processors.base import OutcomeUnknown, Processor, charge_once
from recon.processors.settings import StripeSettings
from recon.processors.stripe import StripeProcessor

VISA = "4242424242424242"
DECLINED_AT_CHARGE = "4000000000000341"


def admin(settings: StripeSettings) -> stripe.StripeClient:
    """A plain SDK client on the same peer, to create test cards and inspect results."""
    return stripe.StripeClient(
        settings.secret_key.reveal(),
        base_addresses={"api": str(settings.api_base)},
        max_network_retries=0,
    )


def payment_method(settings: StripeSettings, number: str) -> str:
    pm = admin(settings).v1.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
        }
    )
    return str(pm.id)


def intents_for(settings: StripeSettings, recon_payment_id: str) -> list[Any]:
    listed = admin(settings).v1.payment_intents.list(params={"limit": 100})
    return [
        pi
        for pi in listed.auto_paging_iter()
        if pi.metadata.to_dict().get("recon_payment_id") == recon_payment_id
    ]


def charge_args(token: str, amount: str = "125.40", payment_id: str | None = None) -> Any:
    payment_id = payment_id or f"pay-{uuid.uuid4().hex[:8]}"
    return {
        "token": token,
        "amount": Decimal(amount),
        "idempotency_key": f"charge-{payment_id}-1",
        "recon_payment_id": payment_id,
        "metadata": {"client": "C-1001", "invoices": "INV-7,INV-9", "payer": "Aetna"},
        "description": "Insurance Credit/Debit Card payment",
    }


class LostResponse(stripe.RequestsClient):
    """Sends the request for real, then loses the answer (a timeout after sending)."""

    def __init__(self, lose: int = 1) -> None:
        super().__init__(timeout=10)
        self.lose = lose
        self.sent = 0

    def request(self, method: str, url: str, headers: Any, post_data: Any = None) -> Any:
        answer = super().request(method, url, headers, post_data)
        if method == "post" and url.endswith("/v1/payment_intents") and self.lose > 0:
            self.lose -= 1
            self.sent += 1
            raise stripe.APIConnectionError("Request timed out (simulated: answer lost)")
        return answer


def test_is_a_processor(stripe_processor: StripeProcessor) -> None:
    assert isinstance(stripe_processor, Processor)


def test_successful_charge(
    stripe_processor: StripeProcessor, stripe_settings: StripeSettings
) -> None:
    args = charge_args(payment_method(stripe_settings, VISA))
    result = stripe_processor.charge(**args)

    assert result.status == "succeeded"
    assert (result.processor, result.amount, result.last4) == ("stripe", Decimal("125.40"), "4242")
    assert result.brand == "visa"
    intent = admin(stripe_settings).v1.payment_intents.retrieve(str(result.processor_ref))
    assert intent.amount == 12540 and intent.currency == "usd"
    assert intent.status == "succeeded"
    assert intent.metadata["recon_payment_id"] == args["recon_payment_id"]
    assert intent.metadata["invoices"] == "INV-7,INV-9"
    assert intent.metadata["payer"] == "Aetna"


def test_cents_are_exact(
    stripe_processor: StripeProcessor, stripe_settings: StripeSettings
) -> None:
    result = stripe_processor.charge(
        **charge_args(payment_method(stripe_settings, VISA), amount="0.29")
    )
    intent = admin(stripe_settings).v1.payment_intents.retrieve(str(result.processor_ref))
    assert intent.amount == 29  # float(0.29) * 100 would be 28.999999999999996


def test_charge_time_decline_returns_reason_and_takes_no_money(
    stripe_processor: StripeProcessor, stripe_settings: StripeSettings
) -> None:
    args = charge_args(payment_method(stripe_settings, DECLINED_AT_CHARGE))
    result = stripe_processor.charge(**args)

    assert result.status == "declined"
    assert result.reason == "Your card was declined."
    assert result.decline_code == "card_declined"
    assert result.last4 == "0341"
    (intent,) = intents_for(stripe_settings, args["recon_payment_id"])
    assert intent.status == "requires_payment_method"
    charges = admin(stripe_settings).v1.charges.list(params={"limit": 100})
    assert not [c for c in charges.auto_paging_iter() if c.paid]


def test_retry_after_lost_answer_charges_once(stripe_settings: StripeSettings) -> None:
    lossy = LostResponse(lose=1)
    processor = StripeProcessor(stripe_settings, http_client=lossy)
    args = charge_args(payment_method(stripe_settings, VISA))

    with pytest.raises(OutcomeUnknown):
        processor.charge(**args)
    assert lossy.sent == 1
    assert len(intents_for(stripe_settings, args["recon_payment_id"])) == 1  # it did go through

    result = charge_once(processor, retry=True, **args)

    assert result.status == "succeeded"
    (intent,) = intents_for(stripe_settings, args["recon_payment_id"])
    assert result.processor_ref == intent.id
    charges = admin(stripe_settings).v1.charges.list(params={"limit": 100})
    assert len([c for c in charges.auto_paging_iter() if c.paid]) == 1


def test_retry_without_earlier_charge_charges(
    stripe_processor: StripeProcessor, stripe_settings: StripeSettings
) -> None:
    args = charge_args(payment_method(stripe_settings, VISA))
    assert stripe_processor.find_charge(args["idempotency_key"], args["recon_payment_id"]) is None
    result = charge_once(stripe_processor, retry=True, **args)
    assert result.status == "succeeded"
    assert len(intents_for(stripe_settings, args["recon_payment_id"])) == 1


def test_find_charge_matches_the_attempt_key(
    stripe_processor: StripeProcessor, stripe_settings: StripeSettings
) -> None:
    args = charge_args(payment_method(stripe_settings, DECLINED_AT_CHARGE))
    stripe_processor.charge(**args)
    found = stripe_processor.find_charge(args["idempotency_key"], args["recon_payment_id"])
    assert found is not None and found.status == "declined"
    assert stripe_processor.find_charge("another-attempt", args["recon_payment_id"]) is None


def test_refund_and_its_retry(
    stripe_processor: StripeProcessor, stripe_settings: StripeSettings
) -> None:
    charged = stripe_processor.charge(**charge_args(payment_method(stripe_settings, VISA)))
    ref = str(charged.processor_ref)

    refund = stripe_processor.refund(ref, Decimal("25.40"), "refund-1")
    again = stripe_processor.refund(ref, Decimal("25.40"), "refund-1")

    assert refund.status == "succeeded" and refund.amount == Decimal("25.40")
    assert again.processor_ref == refund.processor_ref
    refunds = admin(stripe_settings).v1.refunds.list(params={"payment_intent": ref})
    assert [r.amount for r in refunds.data] == [2540]


def test_refund_above_what_is_left_is_refused(
    stripe_processor: StripeProcessor, stripe_settings: StripeSettings
) -> None:
    charged = stripe_processor.charge(**charge_args(payment_method(stripe_settings, VISA)))
    ref = str(charged.processor_ref)
    stripe_processor.refund(ref, Decimal("100.00"), "refund-a")
    with pytest.raises(ProcessorError, match=r"only 25\.40"):
        stripe_processor.refund(ref, Decimal("30.00"), "refund-b")


def test_declined_charge_cannot_be_refunded(
    stripe_processor: StripeProcessor, stripe_settings: StripeSettings
) -> None:
    args = charge_args(payment_method(stripe_settings, DECLINED_AT_CHARGE))
    declined = stripe_processor.charge(**args)
    (intent,) = intents_for(stripe_settings, args["recon_payment_id"])
    assert declined.processor_ref == intent.id
    with pytest.raises(ProcessorError, match="was not charged"):
        stripe_processor.refund(intent.id, Decimal("1.00"), "refund-x")


def test_unreachable_stripe_is_outcome_unknown(stripe_settings: StripeSettings) -> None:
    dead = StripeSettings(
        secret_key=stripe_settings.secret_key,
        publishable_key=stripe_settings.publishable_key,
        api_base="http://127.0.0.1:9",
        timeout=2,
    )
    with pytest.raises(OutcomeUnknown):
        StripeProcessor(dead).charge(**charge_args("pm_anything"))


def test_token_must_be_a_payment_method(stripe_processor: StripeProcessor) -> None:
    with pytest.raises(ProcessorError, match="payment method id"):
        stripe_processor.charge(**charge_args(VISA))


def test_browser_config_is_public_only(
    stripe_processor: StripeProcessor, stripe_settings: StripeSettings
) -> None:
    config = stripe_processor.browser_config()
    assert config["publishable_key"].startswith("pk_")
    assert config["script_url"].endswith("/js.stripe.com/v3/")
    assert config["fields"] == ["Card Number", "Expiration", "CVC", "Country", "Zip"]
    assert stripe_settings.secret_key.reveal() not in repr(config)
