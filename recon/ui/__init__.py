"""The notebook workbench: ipywidgets views over :class:`recon.services.Recon`.

Entry points:

- ``workbench(db=None, user=None, *, on_charge=None, enrolled=None)`` — the whole
  app: Clients → Client Details → Ledger → Accept Payment.
- ``client_ledger(recon, client_id, user=None, ...)`` — one client's Client Ledger
  with Accept Payment.
- ``analyst_app(db=None, user=None)`` (``recon.ui.analyst_app``) — the workbench, the
  ERA batch and the reports as tabs of one page (what ``python -m recon.lab app`` serves).
- ``InsurancePaymentForm`` — the form alone; ``ChargeRequest`` is what ``on_charge``
  (the card form's extension point) receives.

The views hold no money rule: amounts are parsed with ``recon.money.parse_amount``,
shown with ``recon.money.fmt``, planned by ``recon.plan_payment`` and recorded by
``recon.record_payment`` (which checks the Billing permission).

CSS classes (stable, for browser tests; ``<id>`` is a client or invoice id)::

    recon-workbench            the app            recon-nav / recon-screen
    recon-nav-clients          nav: Clients       recon-nav-ledger     nav: Ledger
    recon-user                 User drop-down (RECON_USER preselected)
    recon-clients              Clients screen     recon-client-search  Search text
    recon-client-list          the result rows    recon-client-link    every client-name button
    recon-client-<id>          one client-name button
    recon-clients-prev/-next/-page    client list pager
    recon-client-details-view  Client Details     recon-client-details its HTML (policies, credit)
    recon-ledger-button        Ledger button      recon-back-to-clients
    recon-client-ledger        Client Ledger
    recon-ledger-header        name, balance, unapplied credit of the client
    recon-ledger-table         ledger HTML (a <table class="recon-table">, rows carry
                               data-invoice="<id>"; rows just paid have class recon-just-paid)
    recon-ledger-prev/-next/-page     ledger pager (50 rows a page)
    recon-accept-payment       Accept Payment button
    recon-payment-form         the Insurance Payment form
    recon-payment-kind         Insurance Payment / Client Payment radio
    recon-total-amount         Total Amount text
    recon-invoice-rows         open-invoice rows  recon-invoice-row    one row
    recon-tick / recon-tick-<invoice_id>   row checkbox (labelled with the invoice id,
                               so get_by_label("INV0014") finds it)
    recon-pay  / recon-pay-<invoice_id>    row Payment text (far-right column)
    recon-invoices-prev/-next/-page   invoice rows pager (25 rows a page)
    recon-selection            "n ticked, m partial"
    recon-preview              live allocation preview (and unapplied credit)
    recon-payment-method       Payment Method drop-down
    recon-insurance            Insurance drop-down
    recon-payment-number       Payment Number text
    recon-notes                Notes textarea
    recon-record-payment       Record Payment button (also recon-charge-payment-method
                               while Insurance Credit/Debit Card is chosen); it reads
                               Charge Payment Method then, and Save throughout for a
                               Vantage practice; disabled while the input is invalid
    recon-invalid              on the field the preview refuses (Total Amount,
                               Insurance or an invoice's Payment)
    recon-cancel-payment       Cancel
    recon-message              the one-line outcome, inside
                               <div class="recon-msg recon-msg-{ok,error,info,warning}">
    recon-warnings             e.g. Payment Number already used by that payer
    recon-credit-banner        unapplied credit of the payment just recorded
"""

from __future__ import annotations

from recon.ui.app import Workbench, client_ledger, workbench
from recon.ui.clients import ClientDetailsView, ClientsView
from recon.ui.common import UserPicker, demo_batch_folder, download_links, export_dir, notebook_ledger_path
from recon.ui.ledger import ClientLedgerView, LedgerTable
from recon.ui.payment import ChargeHandler, ChargeRequest, InsurancePaymentForm

__all__ = [
    "ChargeHandler",
    "ChargeRequest",
    "ClientDetailsView",
    "ClientLedgerView",
    "ClientsView",
    "InsurancePaymentForm",
    "LedgerTable",
    "UserPicker",
    "Workbench",
    "client_ledger",
    "demo_batch_folder",
    "download_links",
    "export_dir",
    "notebook_ledger_path",
    "workbench",
]
