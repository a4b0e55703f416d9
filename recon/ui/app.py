"""The workbench: Clients → Client Details → Client Ledger → Accept Payment in one widget.

A navigation bar (Clients, Ledger, and who the analyst is) sits above one screen
at a time, as in the practice-management system the seed describes.
"""

from __future__ import annotations

import os
from typing import Any

import ipywidgets as w

from recon.ui.clients import ClientDetailsView, ClientsView
from recon.ui.common import CSS, UserPicker, guarded, message_html, notebook_ledger_path
from recon.ui.ledger import ClientLedgerView
from recon.ui.payment import ChargeHandler


class Workbench(w.VBox):
    """The whole app for one ledger; ``recon`` is the :class:`~recon.services.Recon` it uses."""

    def __init__(
        self,
        recon: Any,
        user: str | None = None,
        *,
        on_charge: ChargeHandler | None = None,
        enrolled: bool | None = None,
    ) -> None:
        self.recon = recon
        self.on_charge = on_charge
        self.enrolled = enrolled
        self.client_id: str | None = None
        self.ledger_view: ClientLedgerView | None = None
        self.user_picker = UserPicker(recon, user)
        self.nav_clients = w.Button(description="Clients", icon="users")
        self.nav_clients.add_class("recon-nav-clients")
        self.nav_ledger = w.Button(description="Ledger", icon="book", disabled=True, tooltip="Open a client first")
        self.nav_ledger.add_class("recon-nav-ledger")
        self.nav_clients.on_click(lambda _b: self.show_clients())
        self.nav_ledger.on_click(lambda _b: self.client_id and self.open_ledger(self.client_id))
        self.message = w.HTML()
        self.message.add_class("recon-message")
        if self.user_picker.unknown:
            self.message.value = message_html(
                "warning",
                f"User {self.user_picker.unknown!r} (RECON_USER) is not a user of this ledger; choose one",
            )
        self.clients = ClientsView(recon, self.open_client)
        self.details = ClientDetailsView(recon, self.open_ledger, self.show_clients)
        self.screen = w.VBox([self.clients])
        self.screen.add_class("recon-screen")
        nav = w.HBox([self.nav_clients, self.nav_ledger, self.user_picker])
        nav.add_class("recon-nav")
        super().__init__([w.HTML(CSS), nav, self.message, self.screen])
        self.add_class("recon-workbench")

    def show_clients(self) -> None:
        self.screen.children = [self.clients]

    def open_client(self, client_id: str) -> None:
        """Click on a Client Name: Client Details."""
        self.details.show(client_id)
        if self.details.client_id == client_id:
            self.client_id = client_id
            self.nav_ledger.disabled = False
            self.nav_ledger.tooltip = f"Client Ledger of {client_id}"
        self.screen.children = [self.details]

    def open_ledger(self, client_id: str) -> ClientLedgerView | None:
        """The Ledger button (or Ledger in the navigation bar): the Client Ledger."""

        def run() -> None:
            if self.ledger_view is None or self.ledger_view.client_id != client_id:
                if self.ledger_view is not None:
                    self.ledger_view.close_payment_form()
                self.ledger_view = ClientLedgerView(
                    self.recon,
                    client_id,
                    self.user_picker,
                    on_charge=self.on_charge,
                    enrolled=self.enrolled,
                    on_back=lambda: self.open_client(client_id),
                )
            else:
                self.ledger_view.refresh()
            self.client_id = client_id
            self.nav_ledger.disabled = False
            self.screen.children = [self.ledger_view]
            self.message.value = ""

        guarded(self.message, run)
        return self.ledger_view

    def accept_payment(self, client_id: str | None = None) -> Any:
        """Ledger → Accept Payment, for code and tests; returns the Insurance Payment form."""
        view = self.open_ledger(client_id or self.client_id or "")
        return view.open_payment_form() if view is not None else None


def workbench(
    db: Any = None,
    user: str | None = None,
    *,
    on_charge: ChargeHandler | None = None,
    enrolled: bool | None = None,
) -> Workbench:
    """The whole app. ``db``: a ledger path, an open ``Recon``, or None for the notebook default.

    None means ``RECON_DB`` or the checkout's ``data/recon.duckdb``, with the demo
    ledger created when missing. ``user`` (else ``RECON_USER``) preselects who acts.
    """
    from recon.services import Recon

    recon = db if isinstance(db, Recon) else Recon.open(db if db is not None else notebook_ledger_path())
    return Workbench(recon, user, on_charge=on_charge, enrolled=enrolled)


def client_ledger(
    recon: Any,
    client_id: str,
    user: str | None = None,
    *,
    on_charge: ChargeHandler | None = None,
    enrolled: bool | None = None,
) -> ClientLedgerView:
    """One client's Client Ledger with Accept Payment; ``user`` else ``RECON_USER`` else a picker.

    Raises NotFound for an unknown client: in code, a typo should stop the cell.
    """
    recon.client(client_id)
    picker = UserPicker(recon, user or os.environ.get("RECON_USER"))
    view = ClientLedgerView(recon, client_id, picker, on_charge=on_charge, enrolled=enrolled)
    bar = w.HBox([picker])
    bar.add_class("recon-nav")
    view.children = (bar, *view.children)
    return view
