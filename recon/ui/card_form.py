"""The processor's card form, in the browser: the card goes to the processor, not to Python.

Why an anywidget: the card number and CVC must never reach the kernel, the
notebook or the widget state (PCI SAQ-A). The form's JavaScript
(``card_form.js``) loads the processor's own tokenizer in the page — Stripe.js
(Stripe Elements) for Ensora Payments with Stripe, Accept.js for Vantage's
Authorize.Net gateway — and sends the card straight to it. What comes back to
the kernel is a custom message holding only the token (a ``pm_...`` id, or
Accept.js ``opaqueData.dataValue``); custom messages are not widget state, so not
even the token is saved with the notebook. The kernel then calls
:func:`recon.cards.charge_card_payment` and shows the outcome in the form.

The traitlets hold only public things: the processor's ``browser_config`` (a
publishable key, a script address, the seed's field labels), the amount, and the
outcome text.

``card_charge_handler()`` is what the Accept Payment form calls when the analyst
clicks Charge Payment Method: it opens this form under the payment form for the
planned total.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from recon.cards import CardDeclined, charge_card_payment
from recon.errors import ReconError
from recon.model import PaymentReceipt, PaymentRequest
from recon.money import fmt
from recon.processors.base import Processor
from recon.rules.allocation import Plan

log = logging.getLogger(__name__)

# A token is an id or opaque base64-ish text; anything else (a card number typed into
# the wrong place, markup) is refused without being echoed or logged.
_TOKEN = re.compile(r"[A-Za-z0-9_.+/=:-]{8,8192}")
_DIGIT_RUN = re.compile(r"\d{12,}")


class CardForm(anywidget.AnyWidget):
    """One charge: the processor's card fields, Submit/Save, and the outcome line.

    ``status`` is ``ready`` (waiting for the card), ``charging``, ``succeeded``,
    ``declined`` or ``error``; ``message`` says what happened in the analyst's words.
    """

    _esm = Path(__file__).with_name("card_form.js")

    config = traitlets.Dict().tag(sync=True)
    amount = traitlets.Unicode("").tag(sync=True)
    heading = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("ready").tag(sync=True)
    message = traitlets.Unicode("").tag(sync=True)
    payment_id = traitlets.Unicode("").tag(sync=True)

    def __init__(
        self,
        recon: Any,
        request: PaymentRequest,
        user_id: str,
        *,
        plan: Plan | None = None,
        processor: Processor | None = None,
        on_done: Callable[[PaymentReceipt], None] | None = None,
        on_failed: Callable[[str], None] | None = None,
        on_cancel: Callable[[], None] | None = None,
    ) -> None:
        if processor is None:
            from recon.cards import default_processor

            processor = default_processor()
        if processor is None:
            raise ReconError("This practice is not enrolled in payment processing; there is no card form")
        plan = plan if plan is not None else recon.plan_payment(request)
        client = recon.client(request.client_id)
        super().__init__(
            config=processor.browser_config(),
            amount=fmt(plan.total),
            heading=f"Charge {fmt(plan.total)} to the insurer's card — {client.name}",
        )
        self.recon = recon
        self.request = request
        self.user_id = user_id
        self.plan = plan
        self.processor = processor
        self.on_done = on_done
        self.on_failed = on_failed
        self.on_cancel = on_cancel
        self.receipt: PaymentReceipt | None = None
        self.add_class("recon-card-form-widget")
        self.on_msg(self._on_message)

    # -- messages from the browser ------------------------------------------------------
    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        kind = content.get("type")
        if kind == "token":
            self.charge(content.get("token"))
        elif kind == "setup_intent":
            self._send_setup_intent(content.get("id"))
        elif kind == "tokenize_error":
            # The tokenizer refused the card in the browser: nothing reached the processor.
            self._show("error", f"The card was not accepted: {_clean(content.get('message'))}")
        elif kind == "cancel":
            self._show("error", "Card payment cancelled; nothing was charged")
            if self.on_cancel is not None:
                self.on_cancel()

    def _send_setup_intent(self, request_id: Any) -> None:
        create = getattr(self.processor, "create_setup_intent", None)
        if create is None:
            self.send({"type": "setup_intent", "id": request_id, "error": "not supported"})
            return
        try:
            secret = create()
        except ReconError as exc:
            self.send({"type": "setup_intent", "id": request_id, "error": str(exc)})
            return
        self.send({"type": "setup_intent", "id": request_id, "client_secret": secret})

    # -- the charge ---------------------------------------------------------------------
    def charge(self, token: Any) -> PaymentReceipt | None:
        """Charge the token and record the payment; show the outcome (never raises).

        Called with what the browser's tokenizer returned; also callable from code.
        """
        if not isinstance(token, str) or not _TOKEN.fullmatch(token) or _DIGIT_RUN.search(token):
            self._show("error", "The card form did not return a processor token; nothing charged")
            return None
        self._show("charging", f"Charging {self.amount}…")
        try:
            receipt = charge_card_payment(
                self.recon,
                self.request,
                self.user_id,
                token=token,
                processor=self.processor,
                expected_plan=self.plan,
            )
        except CardDeclined as exc:
            self._fail("declined", str(exc))
            return None
        except ReconError as exc:
            self._fail("error", str(exc))
            return None
        except Exception as exc:  # a bug: one line for the analyst, details in the log
            log.error("recon.ui.card_form: charge failed", exc_info=exc)
            self._fail("error", f"Something went wrong: {type(exc).__name__}; see the log")
            return None
        self.receipt = receipt
        self.payment_id = receipt.payment_id
        brand = (receipt.extra.get("brand") or "card").title()
        last4 = receipt.extra.get("last4") or "????"
        text = (
            f"Charged {fmt(receipt.amount)} to {brand} ending {last4}; recorded payment {receipt.payment_id}"
            if not receipt.replayed
            else f"Already charged and recorded as payment {receipt.payment_id}"
        )
        self._show("succeeded", text)
        if self.on_done is not None:
            self.on_done(receipt)
        return receipt

    def _fail(self, status: str, text: str) -> None:
        self._show(status, text)
        if self.on_failed is not None:
            self.on_failed(text)

    def _show(self, status: str, text: str) -> None:
        self.message = text
        self.status = status


def _clean(text: Any) -> str:
    """A browser-side error, shortened, with any long digit run (a card number) masked."""
    return _DIGIT_RUN.sub("[digits removed]", str(text or "no reason given"))[:300]


def card_charge_handler(processor: Processor | None = None) -> Callable[[Any], None]:
    """The Accept Payment form's ``on_charge``: open the card form under the payment form.

    The payment form stays busy (its button disabled) while the card form is open;
    success records and refreshes it, a decline or error shows the reason in both.
    """

    def open_card_form(charge: Any) -> None:
        form = charge.form
        old = getattr(form, "card_form", None)
        if old is not None:
            old.close()

        def remove() -> None:
            form.children = tuple(c for c in form.children if c is not card)
            form.set_busy(False)

        try:
            card = CardForm(
                charge.recon,
                charge.request,
                charge.user_id,
                plan=charge.plan,
                processor=processor,
                on_done=charge.done,
                on_failed=charge.failed,
                on_cancel=remove,
            )
        except ReconError as exc:  # not enrolled, settings broken, processor unreachable
            text = str(exc)
            charge.failed(text if "nothing was charged" in text else f"{text}; nothing was charged")
            return
        form.card_form = card
        form.children = (*(c for c in form.children if not isinstance(c, CardForm)), card)

    return open_card_form
