"""The card form's kernel side, without a browser: what arrives, what is kept, what is shown.

The browser tests prove the whole path; these pin the kernel's rules quickly:
only a token-shaped message charges, the widget state holds nothing card-like,
a decline shows the processor's words, and the Accept Payment form is wired to it.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from recon.cards import attempts
from recon.model import InvoicePick, PaymentMethod, PaymentRequest
from recon.ui.card_form import CardForm, card_charge_handler
from recon.ui.payment import InsurancePaymentForm
from tests.cards.conftest import Peer


def request() -> PaymentRequest:
    return PaymentRequest("C1", "AET", PaymentMethod.INSURANCE_CARD, picks=(InvoicePick("I1"),), idempotency_key="k1")


def form(recon: Any, peer: Peer, **kw: Any) -> CardForm:
    return CardForm(recon, request(), "ana", processor=peer.processor(), **kw)


def test_token_message_charges_and_shows_brand_and_last4(recon: Any, peer: Peer) -> None:
    done: list[Any] = []
    card = form(recon, peer, on_done=done.append)
    assert card.amount == "130.00" and card.config["processor"] == peer.name

    card._on_message(card, {"type": "token", "token": peer.token()}, [])

    assert card.status == "succeeded"
    assert card.message == (
        f"Charged 130.00 to Visa ending {peer.card_number[-4:]}; recorded payment {card.payment_id}"
    )
    assert done and done[0].payment_id == card.payment_id
    state = json.dumps(card.get_state(), default=str)
    assert peer.card_number not in state and "pm_" not in state


def test_decline_shows_the_processor_reason(recon: Any, peer: Peer) -> None:
    failed: list[str] = []
    card = form(recon, peer, on_failed=failed.append)
    card._on_message(card, {"type": "token", "token": peer.token(declined=True)}, [])
    assert card.status == "declined"
    assert card.message.startswith("The card was declined: ")
    assert failed == [card.message]
    assert [a.status for a in attempts(recon)] == ["declined"]


@pytest.mark.parametrize("bad", ["4242424242424242", "<b>x</b>", "", None, 42])
def test_anything_but_a_token_charges_nothing(recon: Any, peer: Peer, bad: Any) -> None:
    card = form(recon, peer)
    card._on_message(card, {"type": "token", "token": bad}, [])
    assert card.status == "error" and "did not return a processor token" in card.message
    assert "4242424242424242" not in card.message
    assert attempts(recon) == []


def test_a_tokenizer_error_is_shown_with_digits_masked(recon: Any, peer: Peer) -> None:
    card = form(recon, peer)
    card._on_message(card, {"type": "tokenize_error", "message": "bad 4111111111111111"}, [])
    assert card.status == "error" and "4111111111111111" not in card.message
    assert "[digits removed]" in card.message


def test_setup_intent_request_is_answered_with_a_client_secret(recon: Any, stripe_settings: Any) -> None:
    peer = Peer("stripe", stripe_settings, "4242424242424242")
    card = form(recon, peer)
    sent: list[dict[str, Any]] = []
    card.send = sent.append  # type: ignore[method-assign]
    card._on_message(card, {"type": "setup_intent", "id": "r1"}, [])
    (answer,) = sent
    assert answer["id"] == "r1" and answer["client_secret"].startswith("seti_")


def test_charge_payment_method_opens_the_card_form(recon: Any, peer: Peer) -> None:
    payment = InsurancePaymentForm(recon, "C1", "ana", enrolled=True, on_charge=card_charge_handler(peer.processor()))
    payment.kind.value = "Insurance Payment"
    payment.tick("I1").value = True
    payment.method.value = PaymentMethod.INSURANCE_CARD
    payment.record_button.click()

    (card,) = [c for c in payment.children if isinstance(c, CardForm)]
    assert card.amount == "130.00" and payment.record_button.disabled
    card.charge(peer.token())
    assert "Recorded payment" in payment.message.value
    ledger = {r.invoice_id: r for r in recon.ledger_rows("C1")}
    assert ledger["I1"].ins_amt_paid == Decimal("130.00")
