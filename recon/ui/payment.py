"""Accept Payment → Insurance Payment: the seed's form, field by field.

The form holds no money rule. What it sends is a :class:`PaymentRequest` built
from the fields as typed (amounts through :func:`recon.money.parse_amount`); the
allocation it previews is ``recon.plan_payment`` of that request, and the same
plan is handed to ``recon.record_payment(..., expected_plan=plan)``, so what the
analyst saw is what is recorded, or nothing is (the library refuses when the
ledger moved in between).

Double clicks: the button is disabled while recording and stays disabled after a
payment until the form is edited again; the request also carries a per-form
idempotency key (a new uuid each time the form opens or resets), so a repeated
submit of the same payment replays the first instead of recording twice.

Invalid input: the preview re-plans on every keystroke and tick (one plan per change,
no debounce); while a field holds something that cannot be recorded, its one-line
reason shows once, in the preview, the field is marked (CSS class ``recon-invalid``)
and Record Payment is disabled. A refusal at the click (permission, a ledger that
moved) shows in the message line instead.

The button follows the seed per processor: Ensora Payments with Stripe (and a practice
not enrolled) reads Record Payment, and Charge Payment Method for Insurance
Credit/Debit Card; a Vantage practice reads **Save** for both ("Click the Save button",
to record, and again before the card fields).

Card payments: when the practice is enrolled in payment processing the method
Insurance Credit/Debit Card is offered; choosing it turns Record Payment into
Charge Payment Method (Save for Vantage), which calls ``on_charge`` with a :class:`ChargeRequest`.
The card form (another part of recon) charges through the processor, records
with ``recon.record_payment(..., card=...)`` and then calls ``done(receipt)`` or
``failed(message)``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ipywidgets as w

from recon.errors import InputError, OtherPayersInvoice, PaymentRefused, ReconError
from recon.model import EobEntry, InvoicePick, PaymentMethod, PaymentReceipt, PaymentRequest
from recon.money import ZERO, fmt, parse_amount, total
from recon.rules.allocation import Plan
from recon.rules.eob import ADJUSTMENT_CODES, DEFAULT_ADJUSTMENT, EobPlan
from recon.rules.permissions import require_billing
from recon.ui.common import (
    CSS,
    STYLE,
    Pager,
    UserPicker,
    esc,
    html_table,
    message_html,
    practice_processor,
    shown_error,
)

INSURANCE_PAYMENT = "Insurance Payment"
CLIENT_PAYMENT = "Client Payment"
RECORD = "Record Payment"
CHARGE = "Charge Payment Method"
SAVE = "Save"
"""Vantage's one label, to record and to go on to the card fields (the seed's Vantage steps)."""
INVALID = "recon-invalid"
"""CSS class of the field whose value the preview refuses."""
RECORDED_METHODS = (
    PaymentMethod.INSURANCE,
    PaymentMethod.INSURANCE_CHECK,
    PaymentMethod.INSURANCE_EFT_ACH,
)

# Widths shared by the invoice header and each row, so the columns line up.
_COLUMNS = (
    ("Date", "90px", False),
    ("Service", "64px", False),
    ("Billed To", "150px", False),
    ("Ins Amt Due", "90px", True),
    ("Ins Amt Paid", "90px", True),
    ("Ins Adjusted", "90px", True),
    ("Open", "90px", True),
)
_PREVIEW_ROWS = 12
_EOB_FIELDS = (
    ("allowed", "Allowed"),
    ("adjustment", "Adjustment"),
    ("deductible", "Deductible"),
    ("coinsurance", "Coinsurance"),
    ("copay", "Co-pay"),
)


@dataclass
class ChargeRequest:
    """What the card form needs to charge and record: the request, the previewed plan, who.

    ``request.idempotency_key`` is the form's key: a processor charge keyed on it
    is not repeated by a double click either.
    """

    recon: Any
    request: PaymentRequest
    plan: Plan
    user_id: str
    form: InsurancePaymentForm

    def done(self, receipt: PaymentReceipt) -> None:
        """The card was charged and recorded: confirm, refresh the ledger, reset the form."""
        self.form.recorded(receipt)

    def failed(self, message: str) -> None:
        """The charge did not happen: show ``message`` (one line) and let the analyst retry."""
        self.form.show_error(message)
        self.form.set_busy(False)


ChargeHandler = Callable[[ChargeRequest], None]


class InsurancePaymentForm(w.VBox):
    """The Insurance Payment form for one client (see the module docstring)."""

    page_size = 25

    def __init__(
        self,
        recon: Any,
        client_id: str,
        user: UserPicker | str | None = None,
        *,
        on_recorded: Callable[[PaymentReceipt], None] | None = None,
        on_charge: ChargeHandler | None = None,
        enrolled: bool | None = None,
        on_cancel: Callable[[], None] | None = None,
        page_size: int | None = None,
        processor: str | None = None,
    ) -> None:
        self.recon = recon
        self.client = recon.client(client_id)
        self.client_id = self.client.client_id
        self.on_recorded = on_recorded
        self.on_charge = on_charge
        self.on_cancel = on_cancel
        self.last_receipt: PaymentReceipt | None = None
        self.key = uuid.uuid4().hex
        self._busy = False
        self._syncing = False
        self._total_auto = False
        self._open: list[Any] = []
        self._entries: dict[str, str] = {}
        self._ticked: set[str] = set()
        self._row_widgets: dict[str, tuple[w.Checkbox, w.Text]] = {}
        self._previewed: tuple[tuple[Any, ...], Plan, EobPlan | None] | None = None
        self._eob: dict[str, dict[str, str]] = {}  # per invoice: the EOB details as typed
        self._eob_loading = False
        self._rested = False
        self.invalid: str | None = None
        self._marked: str | None = None  # "total", "insurance" or "invoice:<id>"
        notes: list[str] = []
        if enrolled is None or processor is None:
            configured, why = practice_processor()
            if enrolled is None:
                enrolled = configured != "none"
                if why:
                    notes.append(why)
            if processor is None:
                processor = configured if configured != "none" or not enrolled else "stripe"
        self.enrolled = enrolled
        self.processor = processor

        own_picker = not isinstance(user, UserPicker)
        self.user_picker = UserPicker(recon, user) if own_picker else user  # type: ignore[arg-type]
        assert isinstance(self.user_picker, UserPicker)

        self.kind = w.RadioButtons(options=[INSURANCE_PAYMENT, CLIENT_PAYMENT], value=None)
        self.kind.add_class("recon-payment-kind")
        self.total = w.Text(
            description="Total Amount",
            placeholder="0.00",
            style=STYLE,
            layout=w.Layout(width="300px"),
            continuous_update=True,
        )
        self.total.add_class("recon-total-amount")
        self.invoice_header = w.HTML(CSS + _FORM_CSS + _row_header())
        self.invoice_rows = w.VBox()
        self.invoice_rows.add_class("recon-invoice-rows")
        self.pager = Pager("recon-invoices", page_size or self.page_size, self._render_rows, "Open invoices")
        self.selection = w.HTML()
        self.selection.add_class("recon-selection")
        self.preview = w.HTML()
        self.preview.add_class("recon-preview")
        # Shown only when a ticked invoice is owed by another payer: recording there is
        # the analyst's explicit decision, never a silent default.
        self.confirm_other_payer = w.Checkbox(
            value=False,
            description="Yes, this insurer paid invoices owed by another payer: record it there",
            indent=False,
            layout=w.Layout(display="none", width="auto"),
        )
        self.confirm_other_payer.add_class("recon-confirm-other-payer")
        # A paper EOB's details for the invoices being paid (one invoice at a time, compact):
        # recorded as a manual adjudication; the preview shows the Client Amt Due it leaves.
        self.eob_toggle = w.Checkbox(
            value=False,
            description="EOB details (allowed, adjustment, patient responsibility)",
            indent=False,
            layout=w.Layout(width="auto"),
        )
        self.eob_toggle.add_class("recon-eob-toggle")
        self.eob_invoice = w.Dropdown(options=[], description="EOB for", style=STYLE, layout=w.Layout(width="260px"))
        self.eob_invoice.add_class("recon-eob-invoice")
        self.eob_code = w.Dropdown(
            options=[(f"{c} {why}", c) for c, why in ADJUSTMENT_CODES],
            value=DEFAULT_ADJUSTMENT,
            layout=w.Layout(width="300px"),
        )
        self.eob_code.add_class("recon-eob-code")
        self.eob_fields: dict[str, w.Text] = {}
        for name, label in _EOB_FIELDS:
            box = w.Text(
                placeholder="0.00",
                description=label,
                continuous_update=True,
                style={"description_width": "initial"},
                layout=w.Layout(width="150px"),
            )
            box.add_class(f"recon-eob-{name}")
            box.observe(lambda _c: self._on_eob_field(), "value")
            self.eob_fields[name] = box
        f = self.eob_fields
        self.eob_panel = w.VBox(
            [
                w.HBox([self.eob_invoice, f["allowed"]]),
                w.HBox([self.eob_code, f["adjustment"]]),
                w.HBox([f["deductible"], f["coinsurance"], f["copay"]]),
            ],
            layout=w.Layout(display="none"),
        )
        self.eob_panel.add_class("recon-eob-panel")
        self.eob_toggle.observe(self._on_eob_toggle, "value")
        self.eob_invoice.observe(lambda _c: self._show_eob(), "value")
        self.eob_code.observe(lambda _c: self._on_eob_field(), "value")
        methods = [*RECORDED_METHODS, *((PaymentMethod.INSURANCE_CARD,) if enrolled else ())]
        self.method = w.Dropdown(
            options=[(m.label, m) for m in methods],
            value=None,
            description="Payment Method",
            style=STYLE,
            layout=w.Layout(width="420px"),
        )
        self.method.add_class("recon-payment-method")
        self.insurance = w.Dropdown(
            options=[(p.payer_name, p.payer_id) for p in self.client.policies],
            value=self.client.policies[0].payer_id if self.client.policies else None,
            description="Insurance",
            style=STYLE,
            layout=w.Layout(width="420px"),
        )
        self.insurance.add_class("recon-insurance")
        self.payment_number = w.Text(
            description="Payment Number",
            placeholder="check or trace number",
            style=STYLE,
            layout=w.Layout(width="420px"),
            continuous_update=True,
        )
        self.payment_number.add_class("recon-payment-number")
        self.notes = w.Textarea(
            description="Notes", style=STYLE, layout=w.Layout(width="480px"), continuous_update=True
        )
        self.notes.add_class("recon-notes")
        self.record_button = w.Button(
            description=self._button_label(card=False),
            button_style="primary",
            icon="check",
            layout=w.Layout(width="auto", min_width="160px"),
        )
        self.record_button.add_class("recon-record-payment")
        self.cancel_button = w.Button(description="Cancel")
        self.cancel_button.add_class("recon-cancel-payment")
        self.message = w.HTML()
        self.message.add_class("recon-message")
        self.warnings = w.HTML()
        self.warnings.add_class("recon-warnings")
        self.credit_banner = w.HTML()
        self.credit_banner.add_class("recon-credit-banner")
        self.note = w.HTML("".join(message_html("info", n) for n in notes))
        self.note.add_class("recon-form-note")

        self.body = w.VBox(
            [
                self.total,
                self.invoice_header,
                self.invoice_rows,
                self.pager,
                self.selection,
                self.eob_toggle,
                self.eob_panel,
                self.preview,
                self.confirm_other_payer,
                self.method,
                self.insurance,
                self.payment_number,
                self.notes,
                w.HBox([self.record_button, self.cancel_button]),
            ]
        )
        self.body.layout.display = "none"
        head = [w.HTML(f"<h4>Accept Payment — {esc(self.client.name)} ({esc(self.client_id)})</h4>")]
        if own_picker:
            head.append(self.user_picker)
        super().__init__(
            [
                *head,
                self.kind,
                self.body,
                self.message,
                self.warnings,
                self.credit_banner,
                self.note,
            ]
        )
        self.add_class("recon-payment-form")

        self.kind.observe(self._on_kind, "value")
        self.total.observe(self._on_total, "value")
        self.method.observe(self._on_method, "value")
        self.insurance.observe(lambda _c: self._edited(preview=True), "value")
        self.confirm_other_payer.observe(lambda _c: self._edited(preview=True), "value")
        self.payment_number.observe(lambda _c: self._edited(), "value")
        self.notes.observe(lambda _c: self._edited(), "value")
        self.user_picker.observe(lambda _c: self._edited(), "value")
        self.record_button.on_click(self._on_record)
        self.cancel_button.on_click(lambda _b: self.cancel())
        self._load_invoices()

    # ------------------------------------------------------------ invoice rows
    def _load_invoices(self) -> None:
        """Open invoices (Ins Amt Due not yet paid or adjusted), oldest service first."""
        self._open = [r for r in self.recon.ledger_rows(self.client_id) if r.ins_open > ZERO]
        by_id = {r.invoice_id for r in self._open}
        self._entries = {k: v for k, v in self._entries.items() if k in by_id}
        self._ticked &= by_id
        self.pager.set_count(len(self._open))
        self._render_rows()
        self._selection()

    @property
    def open_invoice_ids(self) -> list[str]:
        return [r.invoice_id for r in self._open]

    @property
    def rendered_rows(self) -> int:
        """Invoice rows that exist as widgets now (one page at most)."""
        return len(self._row_widgets)

    def show_invoice(self, invoice_id: str) -> None:
        """Move the rows to the page holding ``invoice_id`` (for code and tests)."""
        index = self.open_invoice_ids.index(invoice_id)
        self.pager.go(self.pager.page_of(index))

    def tick(self, invoice_id: str) -> w.Checkbox:
        """The checkbox of ``invoice_id``, its page shown first."""
        self.show_invoice(invoice_id)
        return self._row_widgets[invoice_id][0]

    def payment_field(self, invoice_id: str) -> w.Text:
        """The Payment field of ``invoice_id``, its page shown first."""
        self.show_invoice(invoice_id)
        return self._row_widgets[invoice_id][1]

    def _render_rows(self) -> None:
        for box in self.invoice_rows.children:
            for child in box.children:  # type: ignore[attr-defined]
                child.close()
            box.close()
        self._row_widgets = {}
        rows = []
        payer_names = {p.payer_id: p.payer_name for p in self.client.policies}
        for r in self._open[self.pager.window()]:
            # the invoice id is the checkbox's label: "select Invoice Checkboxes"
            tick = w.Checkbox(
                value=r.invoice_id in self._ticked,
                description=r.invoice_id,
                indent=False,
                layout=w.Layout(width="112px"),
            )
            tick.add_class("recon-tick")
            tick.add_class(f"recon-tick-{r.invoice_id}")
            pay = w.Text(
                value=self._entries.get(r.invoice_id, ""),
                placeholder="0.00",
                layout=w.Layout(width="110px"),
                continuous_update=True,
            )
            pay.add_class("recon-pay")
            pay.add_class(f"recon-pay-{r.invoice_id}")
            tick.observe(lambda c, inv=r: self._on_tick(inv, c["new"]), "value")
            pay.observe(lambda c, inv=r: self._on_pay(inv, c["new"]), "value")
            values = (
                r.service_date.isoformat(),
                r.service_code,
                payer_names.get(r.payer_id, r.payer_id or ""),
                fmt(r.ins_amt_due),
                fmt(r.ins_amt_paid),
                fmt(r.ins_adjusted),
                fmt(r.ins_open),
            )
            cells = w.HTML("".join(_cell(v, width, num) for v, (_h, width, num) in zip(values, _COLUMNS, strict=True)))
            row = w.HBox([tick, cells, pay], layout=w.Layout(align_items="center"))
            row.add_class("recon-invoice-row")
            rows.append(row)
            self._row_widgets[r.invoice_id] = (tick, pay)
        self.invoice_rows.children = rows
        self._mark_invalid()

    def _on_tick(self, inv: Any, ticked: bool) -> None:
        """Ticking fills Payment with the open Ins Amt Due; unticking clears it."""
        if self._syncing:
            return
        if ticked:
            self._ticked.add(inv.invoice_id)
            self._entries[inv.invoice_id] = fmt(inv.ins_open)
        else:
            self._ticked.discard(inv.invoice_id)
            self._entries.pop(inv.invoice_id, None)
        self._set_quietly(self._row_widgets[inv.invoice_id][1], self._entries.get(inv.invoice_id, ""))
        self._picks_changed()

    def _on_pay(self, inv: Any, text: str) -> None:
        """A typed Payment is a partial payment; a ticked row whose amount changes is unticked."""
        if self._syncing:
            return
        if text.strip():
            self._entries[inv.invoice_id] = text.strip()
        else:
            self._entries.pop(inv.invoice_id, None)
        if inv.invoice_id in self._ticked and text.strip() != fmt(inv.ins_open):
            self._ticked.discard(inv.invoice_id)
            self._set_quietly(self._row_widgets[inv.invoice_id][0], False)
        self._picks_changed()

    def _picks_changed(self) -> None:
        """Total Amount follows the invoice Payments (their sum), as the seed says.

        A Payment that is not an amount (``12.345``) empties Total Amount: the old sum
        would be a total nobody entered. The preview names the bad field.
        """
        if self._entries:
            try:
                amounts = [parse_amount(t, f"Payment on invoice {i}") for i, t in self._entries.items()]
            except ReconError:
                amounts = None
            self._set_quietly(self.total, fmt(total(amounts)) if amounts is not None else "")
            self._total_auto = True
        elif self._total_auto:
            self._set_quietly(self.total, "")
            self._total_auto = False
        self._selection()
        self._edited(preview=True)

    def _selection(self) -> None:
        self._eob_options()
        partial = len(self._entries) - len(self._ticked)
        self.selection.value = (
            f"<small>{len(self._ticked)} ticked, {partial} partial Payment(s) · "
            f"{len(self._open):,} open invoices</small>"
        )

    def _set_quietly(self, widget: w.ValueWidget, value: Any) -> None:
        self._syncing = True
        try:
            widget.value = value
        finally:
            self._syncing = False

    # ------------------------------------------------------------ EOB details
    def _on_eob_toggle(self, change: dict[str, Any]) -> None:
        self.eob_panel.layout.display = None if change["new"] else "none"
        self._eob_options()
        self._edited(preview=True)

    def _eob_options(self) -> None:
        """The EOB can be given for each invoice with a Payment (ticked or typed), in the rows' order."""
        ids = [r.invoice_id for r in self._open if r.invoice_id in self._entries]
        if list(self.eob_invoice.options) != ids:
            current = self.eob_invoice.value
            self._eob_loading = True
            try:
                self.eob_invoice.options = ids
                self.eob_invoice.value = current if current in ids else (ids[0] if ids else None)
            finally:
                self._eob_loading = False
            self._show_eob()

    def _show_eob(self) -> None:
        """Fill the fields with what was typed for the chosen invoice (empty for a new one)."""
        typed = self._eob.get(self.eob_invoice.value or "", {})
        self._eob_loading = True
        try:
            for name, box in self.eob_fields.items():
                box.value = typed.get(name, "")
            self.eob_code.value = typed.get("code", DEFAULT_ADJUSTMENT)
        finally:
            self._eob_loading = False

    def _on_eob_field(self) -> None:
        if self._eob_loading or self.eob_invoice.value is None:
            return
        typed = {name: box.value.strip() for name, box in self.eob_fields.items() if box.value.strip()}
        if typed:
            typed["code"] = self.eob_code.value
            self._eob[self.eob_invoice.value] = typed
        else:
            self._eob.pop(self.eob_invoice.value, None)
        self._edited(preview=True)

    def eob_for(self, invoice_id: str) -> dict[str, w.ValueWidget]:
        """The EOB fields showing ``invoice_id`` (opened and chosen first; for code and tests)."""
        self.eob_toggle.value = True
        self.eob_invoice.value = invoice_id
        return {**self.eob_fields, "code": self.eob_code}

    def _eob_entries(self) -> tuple[EobEntry, ...]:
        """The EOB details typed for invoices that still have a Payment (parsed, not judged)."""
        if not self.eob_toggle.value:
            return ()
        entries = []
        for r in self._open:
            typed = self._eob.get(r.invoice_id)
            if typed is None or r.invoice_id not in self._entries:
                continue
            inv = r.invoice_id

            def amount(name: str, label: str, typed: dict[str, str] = typed, inv: str = inv) -> Any:
                text = typed.get(name)
                return parse_amount(text, f"EOB {label} on invoice {inv}") if text else None

            adjustment = amount("adjustment", "Adjustment")
            entries.append(
                EobEntry(
                    inv,
                    allowed=amount("allowed", "Allowed"),
                    adjustments=((typed["code"], adjustment),) if adjustment is not None else (),
                    deductible=amount("deductible", "Deductible") or ZERO,
                    coinsurance=amount("coinsurance", "Coinsurance") or ZERO,
                    copay=amount("copay", "Co-pay") or ZERO,
                )
            )
        return tuple(entries)

    def _eob_html(self, eob: EobPlan) -> str:
        table = html_table(
            ["Invoice", "Allowed", "Paid", "Adjustment", "Patient resp.", "Client Amt Due", "Ins Amt Due"],
            [
                (
                    line.invoice_id,
                    fmt(line.allowed) if line.allowed is not None else "",
                    line.paid,
                    ", ".join(f"{c} {fmt(a)}" for c, a, _ in line.adjustments),
                    ", ".join(f"{c} {fmt(a)}" for c, a in line.patient),
                    f"{fmt(line.client_amt_due)} (was {fmt(line.client_amt_due_before)})",
                    line.ins_amt_due,
                )
                for line in eob.lines
            ],
            numeric=[False, True, True, False, False, True, True],
        )
        return (
            f'<div class="recon-eob-preview"><b>EOB — manual adjudication at priority {eob.priority}</b>{table}</div>'
        )

    # ------------------------------------------------------------ other fields
    def _on_kind(self, change: dict[str, Any]) -> None:
        if change["new"] == INSURANCE_PAYMENT:
            self.body.layout.display = None
            if not self.client.policies:
                self.show_error(
                    f"{self.client.name} has no insurance providers (self-pay): an insurance payment cannot be recorded"
                )
            else:
                self.message.value = ""
        else:
            self.body.layout.display = "none"
            if change["new"] == CLIENT_PAYMENT:
                self.message.value = message_html(
                    "info", "Client Payment is not available yet in recon; choose Insurance Payment"
                )
        self._edited(preview=True)

    def _on_total(self, _change: dict[str, Any]) -> None:
        if self._syncing:
            return
        self._total_auto = False
        self._edited(preview=True)

    def _button_label(self, card: bool) -> str:
        """The seed's label: Save for Vantage; Record Payment / Charge Payment Method otherwise."""
        if self.processor == "vantage":
            return SAVE
        return CHARGE if card else RECORD

    def _on_method(self, change: dict[str, Any]) -> None:
        card = change["new"] is PaymentMethod.INSURANCE_CARD
        self.record_button.description = self._button_label(card)
        self.record_button.icon = "credit-card" if card else "check"
        if card:
            self.record_button.add_class("recon-charge-payment-method")
        else:
            self.record_button.remove_class("recon-charge-payment-method")
        self._edited()

    def _edited(self, preview: bool = False) -> None:
        """Any edit re-arms Record Payment (it rests disabled after a payment)."""
        if self._syncing:
            return
        self._rested = False
        if preview:
            self.refresh_preview()
        else:
            self._arm()

    def _arm(self) -> None:
        """Record Payment is enabled unless busy, resting after a payment, or the input is invalid."""
        self.record_button.disabled = self._busy or self._rested or self.invalid is not None

    def _set_invalid(self, text: str | None, field: str | None = None) -> None:
        """Remember why the input cannot be recorded, mark its field, and disable Record Payment."""
        self.invalid = text
        self._marked = field if text is not None else None
        self._mark_invalid()
        self._arm()

    def _mark_invalid(self) -> None:
        """Exactly the bad field carries ``recon-invalid`` (invoice rows are rebuilt per page)."""
        fields: dict[str, w.DOMWidget] = {"total": self.total, "insurance": self.insurance, "eob": self.eob_panel}
        fields.update({f"invoice:{inv}": pay for inv, (_tick, pay) in self._row_widgets.items()})
        for key, field in fields.items():
            if key == self._marked:
                field.add_class(INVALID)
            elif INVALID in field._dom_classes:
                field.remove_class(INVALID)

    def _field_of(self, exc: ReconError) -> str | None:
        """The field an input error is about: Total Amount, Insurance or an invoice's Payment."""
        name = getattr(exc, "field", None) or str(exc)
        if name.startswith("EOB"):
            return "eob"
        match = re.search(r"[Ii]nvoice (\S+?)(?=[:\s]|$)", name)
        if match and match.group(1) in {r.invoice_id for r in self._open}:
            return f"invoice:{match.group(1)}"
        if "Total Amount" in name:
            return "total"
        if "Insurance" in name:
            return "insurance"
        return None

    # ----------------------------------------------------------------- preview
    def _plan_inputs(self) -> tuple[str, Any, tuple[InvoicePick, ...]]:
        """Payer, Total Amount and picks as the analyst entered them (parsed, not judged)."""
        if self.insurance.value is None:
            raise InputError("Choose the Insurance this payment comes from")
        text = self.total.value.strip()
        amount = parse_amount(text, "Total Amount") if text else None
        picks = []
        for r in self._open:
            entry = self._entries.get(r.invoice_id)
            if entry is None:
                continue
            if r.invoice_id in self._ticked:
                picks.append(InvoicePick(r.invoice_id))
            else:
                picks.append(InvoicePick(r.invoice_id, parse_amount(entry, f"Payment on invoice {r.invoice_id}")))
        return str(self.insurance.value), amount, tuple(picks)

    def refresh_preview(self) -> Plan | None:
        """Show what Record Payment would do now (``recon.plan_payment``), or why it cannot.

        One plan per change, computed at once. When the input cannot be recorded the
        reason is shown here (once: never again in the message line), the field is
        marked and Record Payment is disabled until the input is fixed.
        """
        self._previewed = None
        if self.kind.value != INSURANCE_PAYMENT:
            self.preview.value = ""
            self._set_invalid(None)
            return None
        if not self.total.value.strip() and not self._entries:
            text = "Enter a Total Amount (applied oldest service first), or tick invoices, or type a Payment"
            self.preview.value = message_html("info", text)
            self._set_invalid(text)
            return None
        try:
            inputs = self._plan_inputs()
            payer, amount, picks = inputs
            eob_entries = self._eob_entries()
            planned = PaymentRequest(
                self.client_id,
                payer,
                PaymentMethod.INSURANCE,
                amount=amount,
                picks=picks,
                confirm_other_payer=self.confirm_other_payer.value,
                eob=eob_entries,
            )
            plan = self.recon.plan_payment(planned)
            eob = self.recon.plan_eob(planned, plan) if eob_entries else None
        except Exception as exc:  # one line in the preview; bugs are logged
            self._offer_confirmation(isinstance(exc, OtherPayersInvoice))
            text = shown_error(exc)
            self.preview.value = message_html("error", text)
            self._set_invalid(text, self._field_of(exc) if isinstance(exc, ReconError) else None)
            return None
        self._offer_confirmation(any("confirmed by the analyst" in a.meets for a in plan.allocations))
        self._previewed = ((*inputs, self.confirm_other_payer.value, eob_entries), plan, eob)
        self.preview.value = self._plan_html(plan, lump=not picks) + (self._eob_html(eob) if eob else "")
        self._set_invalid(None)
        return plan

    def _offer_confirmation(self, needed: bool) -> None:
        """Show the other-payer confirmation while it matters; untick it when it no longer does."""
        if not needed and self.confirm_other_payer.value:
            self._set_quietly(self.confirm_other_payer, False)
        self.confirm_other_payer.layout.display = "" if needed else "none"

    def _plan_html(self, plan: Plan, lump: bool) -> str:
        rows = {r.invoice_id: r for r in self._open}
        shown = plan.allocations[:_PREVIEW_ROWS]
        table = html_table(
            ["Invoice", "Date", "Open Ins Amt Due", "Payment", "Meets"],
            [
                (
                    a.invoice_id,
                    rows[a.invoice_id].service_date if a.invoice_id in rows else "",
                    rows[a.invoice_id].ins_open if a.invoice_id in rows else "",
                    a.amount,
                    a.meets,
                )
                for a in shown
            ],
            numeric=[False, False, True, True, False],
        )
        more = len(plan.allocations) - len(shown)
        title = "Preview — applied oldest service first" if lump else "Preview"
        parts = [
            f"<b>{title}</b>",
            table if shown else "<p>No open invoice of this insurer to apply it to.</p>",
            f"<small>… and {more:,} more invoices</small>" if more > 0 else "",
            f"<p>Total Amount <b>{fmt(plan.total)}</b> · applied <b>{fmt(plan.applied)}</b> to "
            f"{len(plan.allocations):,} invoice(s) · "
            f"unapplied credit <b>{fmt(plan.unapplied)}</b></p>",
        ]
        if plan.unapplied > ZERO:
            parts.append(
                message_html(
                    "warning",
                    f"{fmt(plan.unapplied)} will not be applied to an invoice: "
                    "it is kept as unapplied credit "
                    f"on {self.client.name}'s account",
                )
            )
        return "".join(parts)

    # ----------------------------------------------------------------- record
    def request(self) -> PaymentRequest:
        """The PaymentRequest the form would send now (with its idempotency key)."""
        if self.kind.value != INSURANCE_PAYMENT:
            raise InputError("Choose Insurance Payment (Client Payment is not available yet)")
        if self.method.value is None:
            raise InputError("Choose a Payment Method")
        payer, amount, picks = self._plan_inputs()
        return PaymentRequest(
            client_id=self.client_id,
            payer=payer,
            method=self.method.value,
            amount=amount,
            picks=picks,
            payment_number=self.payment_number.value.strip() or None,
            notes=self.notes.value.strip() or None,
            idempotency_key=self.key,
            confirm_other_payer=self.confirm_other_payer.value,
            eob=self._eob_entries(),
        )

    def set_busy(self, busy: bool) -> None:
        """Recording (or charging): the button is disabled so a second click does nothing."""
        self._busy = busy
        self._arm()

    def show_error(self, text: str) -> None:
        self.message.value = message_html("error", text)

    def _on_record(self, _button: Any = None) -> None:
        if self._busy or self.record_button.disabled:
            return  # a second click while (or right after) recording records nothing
        self.set_busy(True)
        self.message.value = self.warnings.value = self.credit_banner.value = ""
        try:
            receipt = self._record_or_charge()
        except Exception as exc:  # one readable line; bugs are logged in full
            text = shown_error(exc)
            self._busy = False
            self.refresh_preview()  # re-plan on the ledger as it is now
            if text != self.invalid:  # else the preview says it already: shown once
                self.show_error(f"{text}; nothing was recorded")
            return
        if receipt is not None:
            self.recorded(receipt)

    def _record_or_charge(self) -> PaymentReceipt | None:
        user_id = self.user_picker.require()
        request = self.request()
        inputs = (request.payer, request.amount, request.picks, request.confirm_other_payer, request.eob)
        if self._previewed is not None and self._previewed[0] == inputs:
            plan, eob = self._previewed[1], self._previewed[2]
        else:
            plan = self.recon.plan_payment(request)
            eob = self.recon.plan_eob(request, plan) if request.eob else None
        if request.method is PaymentMethod.INSURANCE_CARD:
            on_charge = self.on_charge or _default_card_form()
            if on_charge is None:
                raise PaymentRefused(
                    "Insurance Credit/Debit Card needs the practice's card form, "
                    "which is not set up "
                    "in this notebook; nothing was charged"
                )
            require_billing(self.recon.user(user_id), "charge a card")
            on_charge(ChargeRequest(self.recon, request, plan, user_id, self))
            return None  # the card form calls done() or failed()
        return self.recon.record_payment(request, user_id, expected_plan=plan, expected_eob=eob)

    def recorded(self, receipt: PaymentReceipt) -> None:
        """Confirm, warn, refresh the ledger in place, and reset the form for the next payment."""
        self.last_receipt = receipt
        method = self.method.value.label if self.method.value is not None else "payment"
        payer = self.insurance.label or ""
        if receipt.replayed:
            text = f"Payment {receipt.payment_id} was already recorded; nothing new was recorded"
        else:
            text = (
                f"Recorded payment {receipt.payment_id}: {fmt(receipt.amount)} ({method}) "
                f"from {payer}; "
                f"applied {fmt(receipt.applied)} to {len(receipt.allocations)} invoice(s)"
            )
        self.message.value = message_html("ok", text)
        self.warnings.value = "".join(message_html("warning", x) for x in receipt.warnings)
        if receipt.unapplied > ZERO:
            self.credit_banner.value = message_html(
                "warning",
                f"Unapplied credit: {fmt(receipt.unapplied)} of payment {receipt.payment_id} "
                "was not applied "
                f"to an invoice and is kept as credit on {self.client.name}'s account",
            )
        try:
            if self.on_recorded is not None:
                self.on_recorded(receipt)
            self.reset()
        except Exception as exc:  # the payment stands; say the screen is stale
            self.message.value = message_html(
                "warning", f"{text}, but the screen could not refresh: {shown_error(exc)}"
            )
        self._busy = False
        self._rested = True  # re-armed by the next edit
        self._arm()

    def reset(self) -> None:
        """A fresh form on the current ledger: new idempotency key, nothing ticked or typed.

        Payment Method and Insurance stay as chosen: the next payment is often the
        same insurer's.
        """
        self.key = uuid.uuid4().hex
        self._syncing = True
        try:
            self._entries.clear()
            self._ticked.clear()
            self._total_auto = False
            self.total.value = ""
            self.payment_number.value = ""
            self.notes.value = ""
            self.confirm_other_payer.value = False
            self.confirm_other_payer.layout.display = "none"
            self._eob.clear()
            self._load_invoices()
        finally:
            self._syncing = False
        self.client = self.recon.client(self.client_id)
        self.refresh_preview()

    def cancel(self) -> None:
        if self.on_cancel is not None:
            self.on_cancel()
        else:
            self.reset()
            self.message.value = self.warnings.value = self.credit_banner.value = ""

    def dispose(self) -> None:
        """Close the form's widgets (the browser drops their models)."""
        for box in self.invoice_rows.children:
            for child in box.children:  # type: ignore[attr-defined]
                child.close()
            box.close()
        self.close()


def _default_card_form() -> ChargeHandler | None:
    """The processor's card form (``recon.ui.card_form``) when no ``on_charge`` was given."""
    try:
        from recon.ui.card_form import card_charge_handler
    except ImportError:  # the card part is not in this checkout
        return None
    return card_charge_handler()


_FORM_CSS = """
<style>
.recon-payment-form .recon-invalid input, .recon-payment-form .recon-invalid select,
.recon-payment-form input.recon-invalid { border-color: #c62828 !important; background: #fdecea; }
</style>
"""


def _cell(value: str, width: str, numeric: bool) -> str:
    kind = "recon-cell num" if numeric else "recon-cell"
    return f'<span class="{kind}" style="width:{width}">{esc(value)}</span>'


def _row_header() -> str:
    cells = "".join(
        _cell(h, width, num).replace(">", "><b>", 1).replace("</span>", "</b></span>") for h, width, num in _COLUMNS
    )
    return (
        '<div class="recon-invoice-header" style="display:flex;align-items:center">'
        f'<span class="recon-cell" style="width:112px"><b>Invoice</b></span>{cells}'
        '<span class="recon-cell" style="width:110px"><b>Payment</b></span></div>'
    )
