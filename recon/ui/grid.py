"""Long tables with sort, filter and paging: ledger, payments, remittances and the worklist.

Why itables (its ``ITable`` widget) and not ipydatagrid: ITable is an anywidget, so it
renders wherever Jupyter widgets do — JupyterLab and Voilà (the app) alike, with no
lab extension to build — and DataTables gives all three things asked for: a click on
a header sorts, the search box filters, and pages keep the browser quick on
thousands of rows. ipydatagrid sorts and filters but has no paging (it scrolls), and
its last release is older. Amounts reach the grid as their exact text (``12.30``,
never a float); DataTables recognises a column of such numbers and sorts it as numbers.

Without itables installed the grid falls back to one HTML table of the first rows
(no sort or filter) with a line saying which install adds them.

CSS classes: ``recon-grid`` (the grid or its fallback), ``recon-grid-<name>`` per table,
``recon-tables`` (the app's Tables tab), ``recon-tables-choice`` / ``recon-tables-client``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import ipywidgets as w

from recon.money import fmt
from recon.ui.common import CSS, guarded, message_html

GRID_INSTALL = 'pip install "itables>=2.2"'
PAGE_LENGTH = 25
FALLBACK_ROWS = 200


def grid_frame(frame: Any) -> Any:
    """A copy of ``frame`` as the grid shows it: amounts as exact two-decimal text, dates ISO."""

    def shown(value: Any) -> Any:
        if isinstance(value, Decimal):
            return fmt(value).replace(",", "")
        if isinstance(value, datetime):
            return value.isoformat(sep=" ", timespec="seconds")
        if isinstance(value, date):
            return value.isoformat()
        return value

    out = frame.copy()
    for column in out.columns:
        values = out[column].tolist()
        if any(isinstance(v, Decimal | date) for v in values):
            out[column] = [shown(v) for v in values]
    return out


def grid(frame: Any, name: str, *, page_length: int = PAGE_LENGTH) -> w.DOMWidget:
    """The sortable, filterable, paged grid of ``frame`` (or the HTML fallback)."""
    shown = grid_frame(frame)
    try:
        from itables.widget import ITable
    except ImportError:
        from recon.ui.analyst_app import frame_html

        note = message_html("info", f"Sort, filter and paging need itables: {GRID_INSTALL}")
        widget: w.DOMWidget = w.HTML(CSS + note + frame_html(frame, FALLBACK_ROWS))
    else:
        widget = ITable(
            shown,
            pageLength=page_length,
            lengthMenu=[10, 25, 50, 100],
            layout={"topStart": "pageLength", "topEnd": "search", "bottomStart": "info", "bottomEnd": "paging"},
            showIndex=False,
            classes="display compact nowrap",
            maxBytes=0,
        )
    widget.add_class("recon-grid")
    widget.add_class(f"recon-grid-{name}")
    return widget


TABLES = ("Ledger", "Payments", "Remittances", "Worklist")


def table_frame(recon: Any, table: str, client_id: str | None = None) -> Any:
    """The DataFrame of one of :data:`TABLES` (Ledger and Payments: one client, or all)."""
    if table == "Ledger":
        return recon.ledger(client_id or None)
    if table == "Payments":
        return recon.payments(client_id or None)
    if table == "Remittances":
        from recon.remit.reconcile import EXPORT_QUERIES

        return recon.frame(dict(EXPORT_QUERIES)["remittances"])
    if table == "Worklist":
        from recon.remit.reconcile import worklist

        return worklist(recon)
    raise ValueError(f"unknown table {table!r}")


class TablesView(w.VBox):
    """Choose a table (and a client for Ledger and Payments): it opens as a grid."""

    def __init__(self, recon: Any) -> None:
        self.recon = recon
        self.choice = w.ToggleButtons(options=TABLES, value="Ledger")
        self.choice.add_class("recon-tables-choice")
        self.client = w.Text(description="Client", placeholder="client id, or empty for all", continuous_update=False)
        self.client.add_class("recon-tables-client")
        self.message = w.HTML()
        self.message.add_class("recon-message")
        self.holder = w.VBox()
        self.current: w.DOMWidget | None = None
        self.choice.observe(lambda _c: self.refresh(), names="value")
        self.client.observe(lambda _c: self.refresh(), names="value")
        super().__init__([w.HBox([self.choice, self.client]), self.message, self.holder])
        self.add_class("recon-tables")

    def refresh(self) -> None:
        """Rebuild the chosen table's grid from the ledger as it is now."""

        def run() -> None:
            table = str(self.choice.value)
            self.client.layout.display = None if table in ("Ledger", "Payments") else "none"
            frame = table_frame(self.recon, table, self.client.value.strip() or None)
            old = self.current
            self.current = grid(frame, table.lower())
            self.holder.children = [self.current]
            if old is not None:
                old.close()
            self.message.value = ""

        guarded(self.message, run, "the table was not shown")
