"""The Vantage (Authorize.Net) adapter against the loopback Authorize.Net test double.

Cards are tokenized here the way the stand-in Accept.js does it in the browser (a
``securePaymentContainerRequest`` to the double); the adapter only sees the token.
"""

from __future__ import annotations

import urllib.request
import uuid
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest

from recon.errors import ProcessorError
from recon.processors.base import OutcomeUnknown, Processor, charge_once
from recon.processors.settings import VantageSettings
from recon.processors.vantage import VantageProcessor, short_ref
from tests.peers import authnet_server
from tests.processors.conftest import post_json

VISA = "4111111111111111"
MASTERCARD = "5424000000000015"


def tokenize(settings: VantageSettings, number: str = VISA, zip_code: str = "10001") -> str:
    answer = post_json(
        settings.api_url,
        {
            "securePaymentContainerRequest": {
                "merchantAuthentication": {
                    "name": settings.api_login_id,
                    "clientKey": settings.client_key,
                },
                "data": {
                    "type": "TOKEN",
                    "id": uuid.uuid4().hex,
                    "token": {
                        "cardNumber": number,
                        "expirationDate": "1234",
                        "cardCode": "123",
                        "zip": zip_code,
                        "fullName": "Pat Payer",
                    },
                },
            }
        },
    )
    assert answer["messages"]["resultCode"] == "Ok", answer
    assert answer["opaqueData"]["dataDescriptor"] == "COMMON.ACCEPT.INAPP.PAYMENT"
    return str(answer["opaqueData"]["dataValue"])


def gateway(settings: VantageSettings, request: str, body: dict[str, Any]) -> dict[str, Any]:
    auth = {"name": settings.api_login_id, "transactionKey": settings.transaction_key.reveal()}
    return post_json(settings.api_url, {request: {"merchantAuthentication": auth, **body}})


def unsettled(settings: VantageSettings) -> list[dict[str, Any]]:
    answer = gateway(settings, "getUnsettledTransactionListRequest", {})
    return list(answer.get("transactions") or [])


def settle(settings: VantageSettings) -> None:
    base = settings.api_url.rsplit("/xml/", 1)[0]
    urllib.request.urlopen(
        urllib.request.Request(base + "/_test/settle", data=b"", method="POST"), timeout=5
    ).close()


def charge_args(token: str, amount: str = "125.40", payment_id: str | None = None) -> Any:
    payment_id = payment_id or f"pay-{uuid.uuid4().hex[:8]}"
    return {
        "token": token,
        "amount": Decimal(amount),
        "idempotency_key": f"charge-{payment_id}-attempt-1",
        "recon_payment_id": payment_id,
        "metadata": {"client": "C-1001", "invoices": "INV-7,INV-9", "payer": "Aetna"},
        "description": "Insurance Credit/Debit Card payment",
    }


def lossy(processor_settings: VantageSettings, lose: int = 1) -> tuple[VantageProcessor, list[int]]:
    """A processor whose first ``lose`` createTransaction answers are lost after sending."""
    plain = VantageProcessor(processor_settings)
    sent: list[int] = []

    def transport(body: bytes) -> bytes:
        answer = plain._post(body)
        if b"createTransactionRequest" in body and len(sent) < lose:
            sent.append(1)
            raise TimeoutError("timed out (simulated: answer lost after sending)")
        return answer

    return VantageProcessor(processor_settings, transport=transport), sent


def test_is_a_processor(vantage_processor: VantageProcessor) -> None:
    assert isinstance(vantage_processor, Processor)


def test_approved_charge(
    vantage_processor: VantageProcessor, vantage_settings: VantageSettings
) -> None:
    args = charge_args(tokenize(vantage_settings, MASTERCARD))
    result = vantage_processor.charge(**args)

    assert result.status == "succeeded"
    assert (result.processor, result.brand, result.last4) == ("vantage", "mastercard", "0015")
    assert result.amount == Decimal("125.40")
    (item,) = unsettled(vantage_settings)
    assert item["transId"] == result.processor_ref
    assert item["invoiceNumber"] == short_ref(args["recon_payment_id"])
    assert item["transactionStatus"] == "capturedPendingSettlement"
    detail = gateway(vantage_settings, "getTransactionDetailsRequest", {"transId": item["transId"]})
    assert detail["transaction"]["authAmount"] == 125.4  # the wire's number; recon reads Decimal


def test_declined_by_zip_trigger(
    vantage_processor: VantageProcessor, vantage_settings: VantageSettings
) -> None:
    result = vantage_processor.charge(**charge_args(tokenize(vantage_settings, zip_code="46282")))
    assert result.status == "declined"
    assert result.reason == "This transaction has been declined."
    assert result.decline_code == "2"
    assert [t["transactionStatus"] for t in unsettled(vantage_settings)] == ["declined"]


def test_held_for_review_is_outcome_unknown(
    vantage_processor: VantageProcessor, vantage_settings: VantageSettings
) -> None:
    token = tokenize(vantage_settings, authnet_server.ERROR_CARD)
    with pytest.raises(OutcomeUnknown, match="held for review"):
        vantage_processor.charge(**charge_args(token, amount="252.00"))


def test_duplicate_window_returns_the_original(
    vantage_processor: VantageProcessor, vantage_settings: VantageSettings
) -> None:
    args = charge_args(tokenize(vantage_settings))
    first = vantage_processor.charge(**args)
    # A second submission of the same card, amount and invoice: the gateway says 11.
    raw = gateway(
        vantage_settings,
        "createTransactionRequest",
        {
            "transactionRequest": {
                "transactionType": "authCaptureTransaction",
                "amount": "125.40",
                "payment": {
                    "opaqueData": {
                        "dataDescriptor": "COMMON.ACCEPT.INAPP.PAYMENT",
                        "dataValue": args["token"],
                    }
                },
                "order": {"invoiceNumber": short_ref(args["recon_payment_id"])},
            }
        },
    )
    assert raw["transactionResponse"]["errors"][0]["errorCode"] == "11"
    # The adapter, sending the same again, gets the original back instead of an error.
    again = vantage_processor.charge(**{**args, "idempotency_key": "analyst-clicked-twice"})
    assert again == first
    assert len(unsettled(vantage_settings)) == 1


def test_retry_after_lost_answer_finds_the_earlier_transaction(
    vantage_settings: VantageSettings,
) -> None:
    # No duplicate window: recon's own lookup alone must prevent the second charge.
    processor, sent = lossy(replace(vantage_settings, duplicate_window=0))
    args = charge_args(tokenize(vantage_settings))

    with pytest.raises(OutcomeUnknown):
        processor.charge(**args)
    assert sent == [1] and len(unsettled(vantage_settings)) == 1  # it went through

    result = charge_once(processor, retry=True, **args)

    assert result.status == "succeeded" and result.last4 == "1111"
    (item,) = unsettled(vantage_settings)
    assert result.processor_ref == item["transId"]


def test_blind_recharge_is_stopped_by_the_duplicate_window(
    vantage_settings: VantageSettings,
) -> None:
    processor, _ = lossy(vantage_settings)
    args = charge_args(tokenize(vantage_settings))
    with pytest.raises(OutcomeUnknown):
        processor.charge(**args)
    result = processor.charge(**args)  # no find_charge first: the gateway's window holds
    assert result.status == "succeeded"
    assert len(unsettled(vantage_settings)) == 1


def test_find_charge_none_when_nothing_was_sent(
    vantage_processor: VantageProcessor, vantage_settings: VantageSettings
) -> None:
    args = charge_args(tokenize(vantage_settings))
    assert vantage_processor.find_charge(args["idempotency_key"], args["recon_payment_id"]) is None
    assert charge_once(vantage_processor, retry=True, **args).status == "succeeded"


def test_void_before_settlement_and_its_retry(
    vantage_processor: VantageProcessor, vantage_settings: VantageSettings
) -> None:
    charged = vantage_processor.charge(**charge_args(tokenize(vantage_settings)))
    ref = str(charged.processor_ref)
    with pytest.raises(ProcessorError, match="voided in full"):
        vantage_processor.refund(ref, Decimal("10.00"), "refund-1")

    voided = vantage_processor.refund(ref, Decimal("125.40"), "refund-1")
    again = vantage_processor.refund(ref, Decimal("125.40"), "refund-1")

    assert voided.status == "succeeded" and voided.reason == "voided before settlement"
    assert again == voided
    assert [t["transactionStatus"] for t in unsettled(vantage_settings)] == ["voided"]


def test_refund_after_settlement_and_its_retry(
    vantage_processor: VantageProcessor, vantage_settings: VantageSettings
) -> None:
    charged = vantage_processor.charge(**charge_args(tokenize(vantage_settings)))
    ref = str(charged.processor_ref)
    settle(vantage_settings)

    refund = vantage_processor.refund(ref, Decimal("25.40"), "refund-1")
    again = vantage_processor.refund(ref, Decimal("25.40"), "refund-1")

    assert refund.amount == Decimal("25.40") and refund.charge_ref == ref
    assert again.processor_ref == refund.processor_ref
    (item,) = unsettled(vantage_settings)
    assert item["transactionStatus"] == "refundPendingSettlement"
    with pytest.raises(ProcessorError, match="exceed original debit amount"):
        vantage_processor.refund(ref, Decimal("100.01"), "refund-2")


def test_declined_charge_cannot_be_refunded(
    vantage_processor: VantageProcessor, vantage_settings: VantageSettings
) -> None:
    declined = vantage_processor.charge(**charge_args(tokenize(vantage_settings, zip_code="46282")))
    with pytest.raises(ProcessorError, match="declined"):
        vantage_processor.refund(str(declined.processor_ref), Decimal("1.00"), "refund-1")


def test_spent_token_is_refused(
    vantage_processor: VantageProcessor, vantage_settings: VantageSettings
) -> None:
    token = tokenize(vantage_settings)
    vantage_processor.charge(**charge_args(token))
    with pytest.raises(ProcessorError, match="Invalid OTS Token"):
        vantage_processor.charge(**charge_args(token, amount="9.99"))


def test_wrong_transaction_key_is_a_clear_error(vantage_settings: VantageSettings) -> None:
    from recon.processors.settings import Secret

    wrong = VantageSettings(
        api_login_id=vantage_settings.api_login_id,
        transaction_key=Secret("not-the-key"),
        client_key=vantage_settings.client_key,
        api_url=vantage_settings.api_url,
    )
    with pytest.raises(ProcessorError, match="User authentication failed"):
        VantageProcessor(wrong).charge(**charge_args("token"))


def test_unreachable_gateway_is_outcome_unknown(vantage_settings: VantageSettings) -> None:
    dead = VantageSettings(
        api_login_id="x",
        transaction_key=vantage_settings.transaction_key,
        client_key="y",
        api_url="http://127.0.0.1:9/xml/v1/request.api",
        timeout=2,
    )
    with pytest.raises(OutcomeUnknown):
        VantageProcessor(dead).charge(**charge_args("token"))


def test_accept_js_stand_in_is_served(vantage_processor: VantageProcessor) -> None:
    config = vantage_processor.browser_config()
    with urllib.request.urlopen(config["script_url"], timeout=5) as resp:
        script = resp.read().decode()
    assert "dispatchData" in script and "securePaymentContainerRequest" in script
    assert config["fields"] == [
        "Name on Card",
        "Card Number",
        "Expiration Date",
        "Billing Zip Code",
    ]
    assert config["submit_label"] == "Save"
    assert "transaction" not in " ".join(config)


def test_short_ref_never_truncates_into_a_collision() -> None:
    long_a, long_b = "x" * 30 + "a", "x" * 30 + "b"
    assert short_ref("PAY-0001") == "PAY-0001"
    assert len(short_ref(long_a)) == 20 and short_ref(long_a) != short_ref(long_b)
