"""The Insurance Payment form driven from Python: what the analyst does, what the ledger holds.

C1 of the inline practice (tests/conftest.py), open Ins Amt Due, oldest first:
I1 130.00 (AET), I2 100.00 (AET), I3 100.00 (AET), I4 95.00 (BCBS), I8 100.00 (AET);
I5 has no Ins Amt Due, so it is not a row of the form.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from recon.model import PaymentMethod
from recon.services import Recon
from recon.ui import ChargeRequest, InsurancePaymentForm
from recon.ui.payment import CHARGE, CLIENT_PAYMENT, INVALID, RECORD, SAVE

Form = Callable[..., InsurancePaymentForm]


def ins_paid(recon: Recon, client_id: str = "C1") -> dict[str, Decimal]:
    return {r.invoice_id: r.ins_amt_paid for r in recon.ledger_rows(client_id)}


def payment_count(recon: Recon) -> int:
    return len(recon.payments())


def fill(form: InsurancePaymentForm, method: PaymentMethod = PaymentMethod.INSURANCE_CHECK,
         number: str = "CHK-1", notes: str = "") -> None:  # fmt: skip
    form.method.value = method
    form.payment_number.value = number
    form.notes.value = notes


def test_rows_are_the_open_invoices_oldest_first(make_form: Form) -> None:
    form = make_form()
    assert form.open_invoice_ids == ["I1", "I2", "I3", "I4", "I8"]
    assert form.rendered_rows == 5
    assert form.insurance.value == "AET"  # the primary policy
    assert [label for label, _ in form.insurance.options] == ["Aetna", "Blue Cross"]
    assert [label for label, _ in form.method.options] == [
        "Insurance", "Insurance Check", "Insurance EFT/ACH",
    ]  # fmt: skip
    assert form.method.value is None  # the analyst chooses


def test_ticking_fills_payment_and_total(make_form: Form) -> None:
    form = make_form()
    form.tick("I1").value = True
    assert form.payment_field("I1").value == "130.00"
    assert form.total.value == "130.00"
    form.tick("I2").value = True
    assert form.total.value == "230.00"
    form.tick("I1").value = False
    assert form.payment_field("I1").value == ""
    assert form.total.value == "100.00"
    form.tick("I2").value = False
    assert form.total.value == ""


def test_typed_payment_is_partial_and_recorded_as_typed(recon: Recon, make_form: Form) -> None:
    form = make_form()
    form.tick("I1").value = True
    form.tick("I2").value = True
    form.payment_field("I3").value = "40.50"
    assert form.total.value == "270.50"
    # changing a ticked row's amount makes it partial: the box unticks, the amount stays
    form.payment_field("I2").value = "60.00"
    assert form.tick("I2").value is False
    assert form.total.value == "230.50"
    fill(form, notes="EOB 3/14")
    form.record_button.click()
    assert "Recorded payment" in form.message.value
    paid = ins_paid(recon)
    assert paid["I1"] == Decimal("130.00")
    assert paid["I2"] == Decimal("60.00")
    assert paid["I3"] == Decimal("40.50")
    pay = recon.payments("C1").iloc[0]
    assert (pay["amount"], pay["method"], pay["payment_number"], pay["notes"], pay["user_id"]) == (
        Decimal("230.50"), "insurance-check", "CHK-1", "EOB 3/14", "ana",
    )  # fmt: skip


def test_lump_sum_preview_equals_the_recorded_plan(recon: Recon, make_form: Form) -> None:
    form = make_form()
    form.total.value = "300.00"
    plan = form.refresh_preview()
    assert plan is not None
    # oldest first over Aetna's open invoices; I4 is Blue Cross, so it is skipped
    assert [(a.invoice_id, a.amount) for a in plan.allocations] == [
        ("I1", Decimal("130.00")), ("I2", Decimal("100.00")), ("I3", Decimal("70.00")),
    ]  # fmt: skip
    assert "oldest service first" in form.preview.value
    assert "I3" in form.preview.value and "70.00" in form.preview.value
    fill(form, PaymentMethod.INSURANCE_EFT_ACH, "EFT-1")
    form.record_button.click()
    receipt = form.last_receipt
    assert receipt is not None
    assert receipt.allocations == tuple((a.invoice_id, a.amount) for a in plan.allocations)
    assert receipt.unapplied == plan.unapplied == Decimal("0.00")
    assert ins_paid(recon)["I3"] == Decimal("70.00")


def test_lump_sum_leftover_is_previewed_and_bannered_as_unapplied_credit(recon: Recon, make_form: Form) -> None:
    form = make_form()
    form.total.value = "500.00"  # Aetna's open total is 430.00
    assert "70.00 will not be applied" in form.preview.value
    fill(form)
    form.record_button.click()
    assert "Unapplied credit: 70.00" in form.credit_banner.value
    assert recon.client("C1").unapplied_credit == Decimal("70.00")


def test_record_payment_refreshes_the_form_and_rests_the_button(make_form: Form) -> None:
    form = make_form()
    key = form.key
    form.tick("I1").value = True
    fill(form)
    form.record_button.click()
    assert form.open_invoice_ids == ["I2", "I3", "I4", "I8"]  # I1 is paid
    assert form.total.value == "" and form.payment_number.value == ""
    assert form.method.value is PaymentMethod.INSURANCE_CHECK  # kept for the next payment
    assert form.key != key
    assert form.record_button.disabled
    form.total.value = "10.00"  # any edit re-arms it
    assert not form.record_button.disabled


def test_double_click_records_once(recon: Recon, make_form: Form) -> None:
    form = make_form()
    form.tick("I1").value = True
    fill(form)
    form.record_button.click()
    form.record_button.click()
    assert payment_count(recon) == 1
    assert ins_paid(recon)["I1"] == Decimal("130.00")
    assert "Recorded payment" in form.message.value


def test_a_repeated_submit_with_the_form_key_replays(recon: Recon, make_form: Form) -> None:
    """The first submit landed but its answer was lost: the same key records nothing new."""
    form = make_form()
    form.tick("I1").value = True
    fill(form)
    first = recon.record_payment(form.request(), "ana")
    form.record_button.click()
    assert payment_count(recon) == 1
    assert f"Payment {first.payment_id} was already recorded" in form.message.value


def test_user_without_billing_is_refused_and_nothing_is_written(recon: Recon, make_form: Form) -> None:
    form = make_form(user="ben")
    form.tick("I1").value = True
    fill(form)
    form.record_button.click()
    assert "does not have the Billing permission" in form.message.value
    assert "recon-msg-error" in form.message.value
    assert payment_count(recon) == 0
    assert not form.record_button.disabled  # they can switch user and retry
    form.user_picker.value = "ana"
    form.record_button.click()
    assert payment_count(recon) == 1


def test_no_user_chosen_asks_for_one(recon: Recon, make_form: Form) -> None:
    form = make_form(user=None)
    form.tick("I1").value = True
    fill(form)
    form.record_button.click()
    assert "Choose who you are" in form.message.value
    assert payment_count(recon) == 0


def test_recon_user_env_preselects_the_user(recon: Recon, make_form: Form, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECON_USER", "ben")
    assert make_form(user=None).user_picker.value == "ben"


def invalid_fields(form: InsurancePaymentForm) -> list[str]:
    """Which fields carry the recon-invalid mark: total, insurance, or the invoice ids of Payment fields."""
    fields = {"total": form.total, "insurance": form.insurance}
    fields.update({inv: form.payment_field(inv) for inv in form.open_invoice_ids})
    return [name for name, f in fields.items() if INVALID in f._dom_classes]


def test_payment_above_open_due_is_shown_once_marked_and_cannot_be_recorded(recon: Recon, make_form: Form) -> None:
    form = make_form()
    fill(form)
    form.payment_field("I2").value = "100.01"
    assert "Payment 100.01 on invoice I2 is more than its open Ins Amt Due of 100.00" in form.preview.value
    assert "Traceback" not in form.preview.value
    assert form.record_button.disabled
    assert invalid_fields(form) == ["I2"]
    form.record_button.click()  # a click on the disabled button (as the browser would not send) does nothing
    assert form.message.value == ""  # the error shows once, in the preview
    assert payment_count(recon) == 0
    form.payment_field("I2").value = "100.00"  # fixed: the mark goes, the button comes back
    assert invalid_fields(form) == [] and not form.record_button.disabled
    form.record_button.click()
    assert payment_count(recon) == 1


@pytest.mark.parametrize(
    ("total", "expected"),
    [("12.345", "at most two decimal places"), ("ten", "Total Amount: ten is not valid"),
     ("0", "must be more than 0.00")],
)  # fmt: skip
def test_bad_total_amount_is_one_readable_line(recon: Recon, make_form: Form, total: str, expected: str) -> None:
    form = make_form()
    fill(form)
    form.total.value = total
    assert expected in form.preview.value and "\n" not in form.preview.value
    assert form.record_button.disabled and invalid_fields(form) == ["total"]
    form.record_button.click()
    assert form.message.value == ""
    assert payment_count(recon) == 0


def test_a_bad_payment_empties_the_total_instead_of_keeping_the_old_sum(make_form: Form) -> None:
    form = make_form()
    form.payment_field("I2").value = "12.34"
    assert form.total.value == "12.34"
    form.payment_field("I2").value = "12.345"
    assert form.total.value == ""  # was: 12.34, a total nobody entered
    assert "Payment on invoice I2: 12.345 is not valid; expected at most two decimal places" in form.preview.value
    assert form.record_button.disabled and invalid_fields(form) == ["I2"]
    form.payment_field("I2").value = "12.35"
    assert form.total.value == "12.35" and invalid_fields(form) == [] and not form.record_button.disabled


def test_an_empty_form_cannot_be_recorded(make_form: Form) -> None:
    form = make_form()
    fill(form)
    assert "Enter a Total Amount" in form.preview.value
    assert form.record_button.disabled
    form.tick("I1").value = True
    assert not form.record_button.disabled


def test_the_mark_follows_the_invoice_across_pages(recon: Recon, make_form: Form) -> None:
    form = make_form(page_size=2)  # I1 I2 | I3 I4 | I8
    form.payment_field("I4").value = "95.01"
    assert invalid_fields(form) == ["I4"]
    form.pager.go(0)
    form.pager.go(1)  # the rows are rebuilt: the new widget of I4 is marked again
    assert INVALID in form.payment_field("I4")._dom_classes


def test_preview_follows_every_keystroke_and_tick_with_one_plan_each(
    recon: Recon, make_form: Form, monkeypatch: pytest.MonkeyPatch
) -> None:
    form = make_form()
    assert all(f.continuous_update for f in (form.total, form.payment_number, form.notes, form.payment_field("I1")))
    plans: list[Any] = []
    real = recon.plan_payment

    def counted(request: Any) -> Any:
        plans.append(request)
        return real(request)

    monkeypatch.setattr(recon, "plan_payment", counted)
    for typed in ("1", "12", "12.5", "12.50"):  # what the browser sends, keystroke by keystroke
        form.payment_field("I3").value = typed
        assert f"applied <b>{Decimal(typed):.2f}</b>" in form.preview.value  # at once: no debounce
    assert len(plans) == 4  # one plan per change
    form.tick("I1").value = True
    assert len(plans) == 5 and "130.00" in form.preview.value


def test_missing_method_is_asked_for(recon: Recon, make_form: Form) -> None:
    form = make_form()
    form.tick("I1").value = True
    form.record_button.click()
    assert "Choose a Payment Method" in form.message.value
    assert payment_count(recon) == 0


def test_duplicate_payment_number_is_warned(recon: Recon, make_form: Form) -> None:
    form = make_form()
    form.tick("I1").value = True
    fill(form, number="CHK-77")
    form.record_button.click()
    assert form.warnings.value == ""
    form.tick("I2").value = True
    form.payment_number.value = "CHK-77"
    form.record_button.click()
    assert payment_count(recon) == 2
    assert "Payment Number CHK-77 was already used by AET" in form.warnings.value
    assert "PAY-" in form.warnings.value


def test_unexpected_error_is_one_line_logged_and_records_nothing(
    recon: Recon, make_form: Form, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    form = make_form()
    form.tick("I1").value = True
    fill(form)

    def boom(*_a: Any, **_k: Any) -> Any:
        raise RuntimeError("disk on fire\nsecond line")

    monkeypatch.setattr(recon, "record_payment", boom)
    with caplog.at_level(logging.ERROR, logger="recon.ui"):
        form.record_button.click()
    assert "Something went wrong: RuntimeError: disk on fire; nothing was recorded" in (form.message.value)
    assert "second line" not in form.message.value
    assert "disk on fire" in caplog.text
    assert not form.record_button.disabled


def test_client_payment_is_not_offered_yet(make_form: Form) -> None:
    form = make_form()
    form.kind.value = CLIENT_PAYMENT
    assert "Client Payment is not available yet" in form.message.value
    assert form.body.layout.display == "none"


def test_form_starts_with_the_insurance_payment_choice(recon: Recon) -> None:
    form = InsurancePaymentForm(recon, "C1", "ana", enrolled=False)
    assert form.kind.value is None
    assert form.body.layout.display == "none"


def test_self_pay_client_cannot_take_an_insurance_payment(recon: Recon, make_form: Form) -> None:
    form = make_form(client_id="C3")
    assert "has no insurance providers" in form.message.value
    form.total.value = "10.00"
    fill(form)
    assert "Choose the Insurance" in form.preview.value
    assert form.record_button.disabled and invalid_fields(form) == ["insurance"]
    form.record_button.click()
    assert payment_count(recon) == 0


def test_card_method_only_when_enrolled(make_form: Form) -> None:
    assert PaymentMethod.INSURANCE_CARD not in [v for _, v in make_form().method.options]
    form = make_form(enrolled=True)
    assert "Insurance Credit/Debit Card" in [label for label, _ in form.method.options]


def test_enrollment_defaults_to_the_practice_settings(recon: Recon) -> None:
    form = InsurancePaymentForm(recon, "C1", "ana")  # RECON_PROCESSOR unset: not enrolled
    assert PaymentMethod.INSURANCE_CARD not in [v for _, v in form.method.options]


def test_card_method_becomes_charge_payment_method_and_calls_on_charge(recon: Recon, make_form: Form) -> None:
    seen: list[ChargeRequest] = []
    form = make_form(enrolled=True, on_charge=seen.append)
    form.tick("I1").value = True
    fill(form, PaymentMethod.INSURANCE_CARD)
    assert form.record_button.description == CHARGE
    assert "recon-charge-payment-method" in form.record_button._dom_classes
    form.record_button.click()
    assert len(seen) == 1
    charge = seen[0]
    assert charge.request.method is PaymentMethod.INSURANCE_CARD
    assert charge.request.idempotency_key == form.key
    assert [(a.invoice_id, a.amount) for a in charge.plan.allocations] == [("I1", Decimal("130.00"))]
    assert form.record_button.disabled  # busy until the card form answers
    charge.failed("Your card was declined")
    assert "Your card was declined" in form.message.value
    assert not form.record_button.disabled
    assert payment_count(recon) == 0
    form.method.value = PaymentMethod.INSURANCE_CHECK
    assert form.record_button.description == RECORD


def test_card_charge_done_confirms_and_refreshes(recon: Recon, make_form: Form) -> None:
    from recon.model import CardDetails

    def charge(c: ChargeRequest) -> None:
        card = CardDetails("stripe", "pi_test_1", "visa", "4242")
        c.done(c.recon.record_payment(c.request, c.user_id, expected_plan=c.plan, card=card))

    recorded: list[Any] = []
    form = make_form(enrolled=True, on_charge=charge, on_recorded=recorded.append)
    form.tick("I1").value = True
    fill(form, PaymentMethod.INSURANCE_CARD)
    form.record_button.click()
    assert "Recorded payment" in form.message.value
    assert len(recorded) == 1
    assert "I1" not in form.open_invoice_ids


def test_card_without_billing_is_refused_before_charging(make_form: Form) -> None:
    seen: list[ChargeRequest] = []
    form = make_form(user="ben", enrolled=True, on_charge=seen.append)
    form.tick("I1").value = True
    fill(form, PaymentMethod.INSURANCE_CARD)
    form.record_button.click()
    assert seen == []
    assert "Billing permission" in form.message.value


def test_card_without_a_card_form_says_so(make_form: Form, monkeypatch: pytest.MonkeyPatch) -> None:
    import recon.ui.payment as payment

    # no on_charge and no processor card form in this checkout
    monkeypatch.setattr(payment, "_default_card_form", lambda: None, raising=False)
    form = make_form(enrolled=True)
    form.tick("I1").value = True
    fill(form, PaymentMethod.INSURANCE_CARD)
    form.record_button.click()
    assert "card form" in form.message.value and "nothing was charged" in form.message.value


def test_ledger_changed_since_preview_is_refused_then_replanned(recon: Recon, make_form: Form) -> None:
    form = make_form()
    form.total.value = "100.00"
    fill(form)
    other = make_form()  # a second form pays I1 meanwhile
    other.tick("I1").value = True
    fill(other, number="CHK-2")
    other.record_button.click()
    form.record_button.click()
    assert "The ledger changed since this payment was previewed" in form.message.value
    assert payment_count(recon) == 1
    form.record_button.click()  # the preview now shows the new plan; recording it works
    assert payment_count(recon) == 2
    assert ins_paid(recon)["I2"] == Decimal("100.00")


VANTAGE_ENV = {
    "RECON_PROCESSOR": "vantage",
    "RECON_VANTAGE_API_LOGIN_ID": "login",
    "RECON_VANTAGE_TRANSACTION_KEY": "transaction-key",
    "RECON_VANTAGE_CLIENT_KEY": "client-key",
}


def test_vantage_practice_saves_as_the_seed_says(recon: Recon, monkeypatch: pytest.MonkeyPatch) -> None:
    """The seed's Vantage steps end with Save: to record, and again before the card fields."""
    monkeypatch.setenv("RECON_CONFIG", "")
    for name, value in VANTAGE_ENV.items():
        monkeypatch.setenv(name, value)
    seen: list[ChargeRequest] = []
    form = InsurancePaymentForm(recon, "C1", "ana", on_charge=seen.append)  # processor from the settings
    form.kind.value = "Insurance Payment"
    assert form.processor == "vantage" and form.enrolled
    assert form.record_button.description == SAVE
    form.tick("I1").value = True
    fill(form, PaymentMethod.INSURANCE_CARD)
    assert form.record_button.description == SAVE
    assert "recon-charge-payment-method" in form.record_button._dom_classes
    form.record_button.click()
    assert len(seen) == 1  # Save went on to the card fields
    seen[0].failed("cancelled")
    form.method.value = PaymentMethod.INSURANCE_CHECK
    assert form.record_button.description == SAVE
    assert "recon-charge-payment-method" not in form.record_button._dom_classes
    form.record_button.click()
    assert "Recorded payment" in form.message.value
    assert payment_count(recon) == 1


@pytest.mark.parametrize(("processor", "labels"), [("stripe", (RECORD, CHARGE)), ("vantage", (SAVE, SAVE))])
def test_button_label_per_processor(make_form: Form, processor: str, labels: tuple[str, str]) -> None:
    form = make_form(enrolled=True, processor=processor)
    assert form.record_button.description == labels[0]
    form.method.value = PaymentMethod.INSURANCE_CARD
    assert form.record_button.description == labels[1]
    form.method.value = PaymentMethod.INSURANCE_EFT_ACH
    assert form.record_button.description == labels[0]


def test_not_enrolled_reads_record_payment(make_form: Form) -> None:
    assert make_form().record_button.description == RECORD


def test_an_invoice_owed_by_another_payer_needs_a_confirmation_the_analyst_sees(
    recon: Recon, make_form: Form
) -> None:
    """I4 is billed to Blue Cross (C1's secondary); the form's Insurance is Aetna (primary)."""
    form = make_form()
    fill(form)
    confirm = form.confirm_other_payer
    assert confirm.layout.display == "none"
    form.payment_field("I4").value = "40.00"
    assert "its open Ins Amt Due is owed by BCBS, not AET" in form.preview.value
    assert confirm.layout.display != "none" and form.record_button.disabled
    assert invalid_fields(form) == ["I4"]
    confirm.value = True
    assert "(confirmed by the analyst)" in form.preview.value and not form.record_button.disabled
    form.record_button.click()
    assert ins_paid(recon)["I4"] == Decimal("40.00") and payment_count(recon) == 1
    assert confirm.value is False and confirm.layout.display == "none"  # the next payment asks again


def test_the_preview_says_whose_part_a_secondary_meets(make_form: Form) -> None:
    form = make_form()
    form.insurance.value = "BCBS"
    form.payment_field("I1").value = "25.00"
    assert "the part due from BCBS, after AET (coordination of benefits)" in form.preview.value
    assert form.confirm_other_payer.layout.display == "none"
