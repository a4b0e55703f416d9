"""The Client Ledger: one paged HTML table of invoices, and the Accept Payment button.

Why one HTML widget per page rather than a widget per cell: a client with
thousands of invoices would otherwise send tens of thousands of widget models to
the browser. The table holds one page (50 rows); the pager moves through the rest.
After Record Payment the table refreshes in place and marks the invoices just paid.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import ipywidgets as w

from recon.model import PaymentReceipt
from recon.money import fmt, total
from recon.ui.common import CSS, Pager, esc, esc_attr, guarded, html_table, message_html
from recon.ui.payment import ChargeHandler, InsurancePaymentForm

LEDGER_HEADERS = (
    "Invoice",
    "Date",
    "Service",
    "Fee",
    "Client Amt Due",
    "Client Amt Paid",
    "Ins Amt Due",
    "Ins Amt Paid",
    "Ins Adjusted",
    "Balance",
)
"""The seed's Client Ledger columns, in its order."""

_NUMERIC = (False, False, False, True, True, True, True, True, True, True)


class LedgerTable(w.VBox):
    """One client's invoices, one page at a time (``page_size`` rows of HTML)."""

    def __init__(self, recon: Any, client_id: str, page_size: int = 50) -> None:
        self.recon = recon
        self.client_id = client_id
        self.rows: list[Any] = []
        self.highlight: set[str] = set()
        self.table = w.HTML()
        self.table.add_class("recon-ledger-table")
        self.pager = Pager("recon-ledger", page_size, self._render, "Invoices")
        self.message = w.HTML()
        self.message.add_class("recon-message")
        self.pick = w.Text(placeholder="Invoice", description="Adjudications", layout=w.Layout(width="260px"))
        self.pick.on_submit(lambda _: self.drill(self.pick.value.strip()))
        self.detail = w.HTML()
        self.detail.add_class("recon-adjudications")
        super().__init__([self.table, self.pager, self.message, self.pick, self.detail])
        self.refresh()

    @property
    def rendered_rows(self) -> int:
        """How many invoice rows the browser holds now (one page at most)."""
        return len(self.rows[self.pager.window()])

    def refresh(self, highlight: Iterable[str] = ()) -> None:
        """Read the ledger again; show the page of the first highlighted invoice."""

        def run() -> None:
            self.rows = self.recon.ledger_rows(self.client_id)
            self.highlight = set(highlight)
            page = None
            if self.highlight:
                first = next((i for i, r in enumerate(self.rows) if r.invoice_id in self.highlight), None)
                page = self.pager.page_of(first) if first is not None else None
            self.pager.set_count(len(self.rows), page)
            self._render()

        guarded(self.message, run)

    def drill(self, invoice_id: str) -> None:
        """Show who owes what on ``invoice_id`` and each payer's adjudication behind it."""
        from recon.store import queries

        def run() -> None:
            row = next((r for r in self.rows if r.invoice_id == invoice_id), None)
            if row is None:
                self.detail.value = message_html("warning", f"No invoice {invoice_id} in this ledger")
                return
            rows = self.recon.execute(queries.adjudications_sql("a.invoice_id = $1"), [invoice_id]).fetchall()
            waiting = self.recon.one(queries.waiting_on_sql(), [invoice_id])
            insurer = fmt(row.ins_amt_due - row.ins_amt_paid - row.ins_adjusted)
            owed = f"Client owes {fmt(row.client_amt_due - row.client_amt_paid)}; insurance owes {insurer}" + (
                f" (waiting on {waiting[0]})" if waiting else ""
            )
            table = html_table(
                ("Payer", "Priority", "CLP02", "CLP07", "Trace", "Paid", "PR", "Written off", "Other adj", "Standing"),
                ((r[1], r[2], r[3], r[4], r[5], r[8], r[9], r[10], r[11], r[12]) for r in rows),
                numeric=(False, False, False, False, False, True, True, True, True, False),
            )
            self.detail.value = f"<p>{esc(invoice_id)}: {esc(owed)}</p>" + (
                table if rows else "<p>No payer has adjudicated this invoice.</p>"
            )

        guarded(self.message, run)

    def _render(self) -> None:
        page = self.rows[self.pager.window()]
        body = html_table(
            LEDGER_HEADERS,
            (
                (
                    r.invoice_id,
                    r.service_date,
                    r.service_code,
                    r.fee,
                    r.client_amt_due,
                    r.client_amt_paid,
                    r.ins_amt_due,
                    r.ins_amt_paid,
                    r.ins_adjusted,
                    r.balance,
                )
                for r in page
            ),
            numeric=_NUMERIC,
            row_attrs=(
                f'data-invoice="{esc_attr(r.invoice_id)}"'
                + (' class="recon-just-paid"' if r.invoice_id in self.highlight else "")
                for r in page
            ),
        )
        self.table.value = CSS + body if page else "<p>This client has no invoices.</p>"


class ClientLedgerView(w.VBox):
    """Client Ledger for one client: header, paged table, Accept Payment and its form.

    ``on_charge`` is handed to the Insurance Payment form: it is how the card form
    (another part of recon) takes over when the analyst picks Insurance
    Credit/Debit Card and clicks Charge Payment Method.
    """

    def __init__(
        self,
        recon: Any,
        client_id: str,
        user: Any = None,
        *,
        on_charge: ChargeHandler | None = None,
        enrolled: bool | None = None,
        page_size: int = 50,
        on_back: Callable[[], None] | None = None,
    ) -> None:
        self.recon = recon
        self.client_id = client_id
        self.user = user
        self.on_charge = on_charge
        self.enrolled = enrolled
        self.form: InsurancePaymentForm | None = None
        self.header = w.HTML()
        self.header.add_class("recon-ledger-header")
        self.table = LedgerTable(recon, client_id, page_size)
        self.accept_button = w.Button(description="Accept Payment", button_style="primary", icon="money")
        self.accept_button.add_class("recon-accept-payment")
        self.accept_button.on_click(lambda _b: self.open_payment_form())
        buttons: list[w.Widget] = [self.accept_button]
        if on_back is not None:
            back = w.Button(description="Client Details", icon="arrow-left")
            back.add_class("recon-back-to-details")
            back.on_click(lambda _b: on_back())
            buttons.append(back)
        self.form_slot = w.VBox()
        self.form_slot.add_class("recon-payment-slot")
        super().__init__([self.header, w.HBox(buttons), self.form_slot, self.table])
        self.add_class("recon-client-ledger")
        self._header()

    def _header(self) -> None:
        def run() -> None:
            client = self.recon.client(self.client_id)
            balance = total(r.balance for r in self.table.rows)
            credit = (
                message_html(
                    "warning",
                    f"Unapplied credit on this client's account: {fmt(client.unapplied_credit)}",
                )
                if client.unapplied_credit
                else ""
            )
            self.header.value = (
                f"<h3>Client Ledger — {esc(client.name)} ({esc(client.client_id)})</h3>"
                f"<p>{len(self.table.rows):,} invoices · Balance <b>{fmt(balance)}</b> · "
                f"Unapplied credit <b>{fmt(client.unapplied_credit)}</b></p>{credit}"
            )

        guarded(self.table.message, run)

    def open_payment_form(self) -> InsurancePaymentForm:
        """Accept Payment: a fresh Insurance Payment form (with a new idempotency key)."""
        if self.form is None:
            self.form = InsurancePaymentForm(
                self.recon,
                self.client_id,
                self.user,
                on_recorded=self.refresh,
                on_charge=self.on_charge,
                enrolled=self.enrolled,
                on_cancel=self.close_payment_form,
            )
            self.form_slot.children = [self.form]
        return self.form

    def close_payment_form(self) -> None:
        if self.form is not None:
            self.form.dispose()
        self.form = None
        self.form_slot.children = []

    def refresh(self, receipt: PaymentReceipt | None = None) -> None:
        """Re-read the ledger in place; after a payment, show and mark the invoices it paid."""
        paid = [inv for inv, _amt in receipt.allocations] if receipt else []
        self.table.refresh(highlight=paid)
        self._header()
