"""Clients (search by name or id) and Client Details, the first two screens of the seed.

Each client is a button with the client's name, because the seed's step is
"Click on a Client Name to open Client Details". The list is paged so a billing
service with thousands of clients still renders one small page.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w

from recon.money import fmt
from recon.ui.common import CSS, STYLE, Pager, esc, guarded, html_table, message_html


class ClientsView(w.VBox):
    """The Clients list: a search box and one page of client names."""

    page_size = 20

    def __init__(self, recon: Any, on_open: Callable[[str], None]) -> None:
        self.recon = recon
        self._on_open = on_open
        self._rows: list[Any] = []
        self._row_widgets: dict[str, w.HBox] = {}
        self.search = w.Text(
            description="Search",
            placeholder="client name or id",
            style=STYLE,
            continuous_update=True,
            layout=w.Layout(width="420px"),
        )
        self.search.add_class("recon-client-search")
        self.results = w.VBox()
        self.results.add_class("recon-client-list")
        self.message = w.HTML()
        self.message.add_class("recon-message")
        self.pager = Pager("recon-clients", self.page_size, self._render, "Clients")
        self.search.observe(lambda _c: self.refresh(), "value")
        super().__init__([w.HTML(CSS + "<h3>Clients</h3>"), self.search, self.results, self.pager, self.message])
        self.add_class("recon-clients")
        self.refresh()

    def refresh(self) -> None:
        """Run the search again (the list follows each keystroke)."""

        def run() -> None:
            frame = self.recon.clients(self.search.value)
            self._rows = list(frame.itertuples(index=False))
            self.pager.set_count(len(self._rows), page=0)
            self.message.value = "" if self._rows else message_html("info", "No client matches this search")
            self._render()

        guarded(self.message, run)

    def _render(self) -> None:
        """Show the current page, keeping the row of a client who is still listed.

        Why keep it: the list follows each keystroke, and a click that reaches the
        kernel just after a refresh would be lost if its button had been closed.
        A client's row is the same widget for as long as the client stays listed.
        """
        shown = {}
        for r in self._rows[self.pager.window()]:
            row = self._row_widgets.pop(r.client_id, None) or self._client_row(r.client_id)
            insurance = r.insurance if isinstance(r.insurance, str) else "Self-pay"
            name = f"{r.first_name} {r.last_name}"
            button, info = row.children
            button.description = name
            button.tooltip = f"Open Client Details for {name}"
            info.value = (
                f'<span class="recon-cell" style="width:70px">{esc(r.client_id)}</span>'
                f'<span class="recon-cell">{esc(insurance)}</span>'
            )
            shown[r.client_id] = row
        for gone in self._row_widgets.values():
            for child in gone.children:
                child.close()
            gone.close()
        self._row_widgets = shown
        self.results.children = list(shown.values())

    def _client_row(self, client_id: str) -> w.HBox:
        button = w.Button(layout=w.Layout(width="220px"))
        button.add_class("recon-client-link")
        button.add_class(f"recon-client-{client_id}")
        button.on_click(lambda _b: self._on_open(client_id))
        return w.HBox([button, w.HTML()])


class ClientDetailsView(w.VBox):
    """Client Details: who the client is, their insurance policies, co-pay and unapplied credit."""

    def __init__(self, recon: Any, on_ledger: Callable[[str], None], on_back: Callable[[], None]) -> None:
        self.recon = recon
        self.client_id: str | None = None
        self.info = w.HTML()
        self.info.add_class("recon-client-details")
        self.message = w.HTML()
        self.message.add_class("recon-message")
        self.ledger_button = w.Button(description="Ledger", button_style="primary", icon="book")
        self.ledger_button.add_class("recon-ledger-button")
        self.ledger_button.on_click(lambda _b: self.client_id and on_ledger(self.client_id))
        self.back_button = w.Button(description="Clients", icon="arrow-left")
        self.back_button.add_class("recon-back-to-clients")
        self.back_button.on_click(lambda _b: on_back())
        super().__init__([self.info, w.HBox([self.ledger_button, self.back_button]), self.message])
        self.add_class("recon-client-details-view")

    def show(self, client_id: str) -> None:
        def run() -> None:
            client = self.recon.client(client_id)
            self.client_id = client.client_id
            self.info.value = CSS + client_details_html(client)
            self.message.value = ""

        guarded(self.message, run)


def client_details_html(client: Any) -> str:
    """The Client Details block: name, id, date of birth, co-pay, policies, unapplied credit."""
    dob = client.date_of_birth.isoformat() if client.date_of_birth else ""
    policies = (
        html_table(
            ["Insurance", "Priority", "Member ID", "Co-pay"],
            [
                (
                    p.payer_name,
                    p.priority.capitalize(),
                    p.member_id or "",
                    fmt(p.copay) if p.copay is not None else f"{fmt(client.copay)} (client's)",
                )
                for p in client.policies
            ],
            numeric=[False, False, False, True],
        )
        if client.policies
        else "<p>Self-pay: no insurance policies.</p>"
    )
    credit = (
        message_html("warning", f"Unapplied credit: {fmt(client.unapplied_credit)}")
        if client.unapplied_credit
        else f"<p>Unapplied credit: {fmt(client.unapplied_credit)}</p>"
    )
    return (
        f"<h3>Client Details — {esc(client.name)}</h3>"
        f"<p>Client ID: <b>{esc(client.client_id)}</b> · Date of birth: {esc(dob)} · "
        f"Co-pay: <b>{fmt(client.copay)}</b></p>"
        f"<h4>Insurance policies</h4>{policies}{credit}"
    )
