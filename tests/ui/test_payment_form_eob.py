"""The Insurance Payment form's EOB details (issue 10): the preview shows the Client Amt Due a paper
EOB leaves, Record Payment records that plan, bad details disable it and mark the panel.

C2 (BCBS only): I6 fee 200.00, Client Amt Due 30.00, Ins Amt Due 170.00.
C1 (AET primary, BCBS secondary): I1 fee 150.00, Client Amt Due 20.00, Ins Amt Due 130.00.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from recon.model import PaymentMethod
from recon.services import Recon
from recon.ui import InsurancePaymentForm
from recon.ui.payment import INVALID

Form = Callable[..., InsurancePaymentForm]
D = Decimal


def ledger_row(recon: Recon, client: str, invoice: str) -> tuple[Decimal, ...]:
    (r,) = [r for r in recon.ledger_rows(client) if r.invoice_id == invoice]
    return (r.client_amt_due, r.ins_amt_due, r.ins_amt_paid, r.ins_adjusted, r.balance)


def eob_form(make_form: Form) -> InsurancePaymentForm:
    form = make_form("C2")
    form.method.value = PaymentMethod.INSURANCE_CHECK
    form.payment_field("I6").value = "120.00"
    fields = form.eob_for("I6")
    fields["allowed"].value = "160.00"
    fields["code"].value = "CO-45"
    fields["adjustment"].value = "40.00"
    fields["deductible"].value = "30.00"
    fields["coinsurance"].value = "10.00"
    return form


def test_preview_shows_the_client_amt_due_and_recording_keeps_it(make_form: Form, recon: Recon) -> None:
    form = eob_form(make_form)
    assert form.invalid is None, form.preview.value
    assert "recon-eob-preview" in form.preview.value
    assert "40.00 (was 30.00)" in form.preview.value  # Client Amt Due after the EOB
    assert "CO-45 40.00" in form.preview.value and "PR-1 30.00, PR-2 10.00" in form.preview.value
    assert not form.record_button.disabled
    form.record_button.click()
    assert form.last_receipt is not None, form.message.value
    assert ledger_row(recon, "C2", "I6") == (D("40.00"), D("160.00"), D("120.00"), D("40.00"), D("40.00"))
    # the form is fresh for the next payment: no EOB details left behind
    assert form.eob_fields["allowed"].value == "" and "recon-eob-preview" not in form.preview.value


def test_primary_eob_with_a_secondary_waiting_previews_client_amt_due_zero(make_form: Form, recon: Recon) -> None:
    form = make_form("C1")
    form.method.value = PaymentMethod.INSURANCE_CHECK
    form.payment_field("I1").value = "100.00"
    fields = form.eob_for("I1")
    fields["adjustment"].value = "30.00"  # CO-45 by default
    fields["deductible"].value = "20.00"
    assert "0.00 (was 20.00)" in form.preview.value, form.preview.value
    form.record_button.click()
    assert ledger_row(recon, "C1", "I1") == (D("0.00"), D("150.00"), D("100.00"), D("30.00"), D("20.00"))


def test_details_that_do_not_add_up_disable_record_and_mark_the_panel(make_form: Form, recon: Recon) -> None:
    form = eob_form(make_form)
    form.eob_fields["allowed"].value = "150.00"
    assert "difference -10.00" in form.preview.value
    assert form.record_button.disabled
    assert INVALID in form.eob_panel._dom_classes
    form.eob_fields["allowed"].value = "160.00"
    form.eob_fields["adjustment"].value = "45.00"
    assert "is more than its fee 200.00" in form.preview.value and form.record_button.disabled
    form.eob_fields["adjustment"].value = "40.005"
    assert "at most two decimal places" in form.preview.value and form.record_button.disabled
    form.eob_fields["adjustment"].value = "40.00"
    assert form.invalid is None and not form.record_button.disabled
    assert INVALID not in form.eob_panel._dom_classes
    assert len(recon.payments()) == 0


def test_eob_details_follow_the_invoice_chosen_and_only_count_when_shown(make_form: Form) -> None:
    form = eob_form(make_form)
    assert list(form.eob_invoice.options) == ["I6"]
    form.eob_toggle.value = False  # hidden details are not recorded
    assert "recon-eob-preview" not in form.preview.value
    assert form.request().eob == ()
    form.eob_toggle.value = True
    (entry,) = form.request().eob
    assert (entry.allowed, entry.adjustments, entry.deductible, entry.coinsurance, entry.copay) == (
        D("160.00"), (("CO-45", D("40.00")),), D("30.00"), D("10.00"), D("0.00"),
    )  # fmt: skip
