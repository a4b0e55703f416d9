"""The analyst's app: the workbench, the ERA batch and the reports as one page with no code cells.

Why one widget: ``recon app`` serves it with Voilà (a maintained server for Jupyter
widgets that shows outputs, never code), and a notebook can show the very same
thing. It is made of the views the notebooks use — :class:`~recon.ui.app.Workbench`
(Clients → Client Details → Ledger → Accept Payment), :class:`~recon.ui.era_batch.EraBatchView`
(upload, preview, post, the worklist), :class:`ReportsView` and the Tables tab's grids
(:mod:`recon.ui.grid`: ledger, payments, remittances, worklist with sort, filter and
paging) — so every rule is the library's, checked once.

CSS classes (stable, for browser tests)::

    recon-analyst-app    the whole page      recon-app-tabs     its tabs
    recon-reports        the Reports tab     recon-reports-refresh / recon-reports-export
    recon-reports-tables its tables          recon-reports-downloads  the export's links
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import ipywidgets as w
import traitlets

from recon.ui.app import Workbench
from recon.ui.common import (
    CSS,
    demo_batch_folder,
    esc,
    esc_attr,
    export_dir,
    guarded,
    html_table,
    message_html,
    notebook_ledger_path,
)
from recon.ui.era_batch import EraBatchView, ensure_demo_batch

TAB_TITLES = ("Clients & Ledger", "ERA batch", "Reports", "Tables")


def frame_html(frame: Any, limit: int = 200) -> str:
    """A report's DataFrame as one recon table: amounts right-aligned with two decimals."""
    rows = [tuple(r) for r in frame.head(limit).itertuples(index=False)]
    numeric = [
        any(isinstance(r[i], Decimal | int) and not isinstance(r[i], bool) for r in rows[:20])
        for i in range(len(frame.columns))
    ]
    more = f"<small>First {limit:,} of {len(frame):,} rows.</small>" if len(frame) > limit else ""
    if not rows:
        return "<p><small>Nothing to show.</small></p>"
    return html_table([str(c) for c in frame.columns], rows, numeric=numeric) + more


class ReportsView(w.VBox):
    """What a billing lead checks, as tables, and the ledger exported with download links."""

    def __init__(self, recon: Any) -> None:
        self.recon = recon
        self.refresh_button = w.Button(description="Refresh", icon="refresh")
        self.refresh_button.add_class("recon-reports-refresh")
        self.export_button = w.Button(description="Export the ledger", icon="download")
        self.export_button.add_class("recon-reports-export")
        self.message = w.HTML()
        self.message.add_class("recon-message")
        self.tables = w.HTML()
        self.tables.add_class("recon-reports-tables")
        self.downloads = w.HTML()
        self.downloads.add_class("recon-reports-downloads")
        self.refresh_button.on_click(lambda _b: self.refresh())
        self.export_button.on_click(lambda _b: self.export())
        super().__init__([w.HBox([self.refresh_button, self.export_button]), self.message, self.downloads, self.tables])
        self.add_class("recon-reports")

    def refresh(self, as_of: date | None = None) -> None:
        """Recompute every report from the ledger as it is now."""
        from recon import reports

        def run() -> None:
            day = as_of or date.today()
            sections = [
                (f"A/R aging by payer (as of {day.isoformat()})", reports.ar_aging(self.recon, day)),
                ("Payments by method and payer", reports.payments_by_method_and_payer(self.recon)),
                ("Unapplied credit by client", reports.unapplied_credit_by_client(self.recon)),
                ("Credit balances (overpaid invoices, unapplied credit)", reports.credit_balances(self.recon)),
                ("Reconciliation with the bank", reports.reconciliation_status(self.recon)),
                ("Denials by reason and payer", reports.denials_by_reason(self.recon)),
            ]
            self.tables.value = CSS + "".join(
                f'<h4 data-report="{esc_attr(title)}">{esc(title)}</h4>{frame_html(frame)}' for title, frame in sections
            )
            self.message.value = ""

        guarded(self.message, run, "the reports were not refreshed")

    def export(self) -> list[Path]:
        """Excel and CSV of the ledger into the export folder, with download links."""
        from recon.ui.common import download_links

        written: list[Path] = []

        def run() -> None:
            out = export_dir()
            written.extend(self.recon.export(out / "ledger.xlsx"))
            written.extend(self.recon.export(out / "ledger-csv", "csv"))
            self.downloads.value = download_links([p for p in written if p.suffix == ".xlsx"]).data
            self.message.value = message_html("ok", f"{len(written)} file(s) written under {out}")

        guarded(self.message, run, "nothing was exported")
        return written


class AnalystApp(w.VBox):
    """Tabs over one ledger: Clients & Ledger, ERA batch, Reports, Tables (one User for all of them)."""

    def __init__(
        self,
        recon: Any,
        user: str | None = None,
        *,
        era_files: Sequence[str | Path] = (),
        era_deposits: str | Path | None = None,
        enrolled: bool | None = None,
    ) -> None:
        self.recon = recon
        self.workbench = Workbench(recon, user, enrolled=enrolled)
        self.era = EraBatchView(recon, user, files=era_files, deposits=era_deposits)
        if era_files:
            self.era.preview()  # shown, not posted: Post is the analyst's click
        # one User for the whole page: choosing it in one tab chooses it in the others
        self._user_link = traitlets.link((self.workbench.user_picker, "value"), (self.era.user_picker, "value"))
        self.reports = ReportsView(recon)
        from recon.ui.grid import TablesView

        self.tables = TablesView(recon)
        self.tabs = w.Tab(children=[self.workbench, self.era, self.reports, self.tables])
        for index, title in enumerate(TAB_TITLES):
            self.tabs.set_title(index, title)
        self.tabs.add_class("recon-app-tabs")
        self.tabs.observe(self._on_tab, names="selected_index")
        super().__init__([w.HTML(CSS + "<h3>recon — insurance payments</h3>"), self.tabs])
        self.add_class("recon-analyst-app")

    def _on_tab(self, change: dict[str, Any]) -> None:
        """A tab shows the ledger as it is now (a payment in one tab changes the others)."""
        index = change["new"]
        if index == 1:
            guarded(self.era.message, self.era.refresh, "the worklist could not be shown")
        elif index == 2:
            self.reports.refresh()
        elif index == 3:
            self.tables.refresh()

    def show(self, title: str) -> None:
        """Select a tab by its title (for code and tests)."""
        self.tabs.selected_index = TAB_TITLES.index(title)


def analyst_app(db: Any = None, user: str | None = None, *, demo_batch: bool | None = None) -> AnalystApp:
    """The app on ``db`` (a path, an open ``Recon``, or None: ``RECON_DB``, else the demo ledger).

    ``demo_batch``: offer notebook 02's demo ERA batch, previewed (default: on the
    default ledger, which is the demo practice when it was missing).
    """
    from recon.services import Recon
    from recon.store.db import target

    default = db is None and not os.environ.get("RECON_DB")
    path = None if isinstance(db, Recon) else target(db) if db is not None else notebook_ledger_path()
    recon = db if isinstance(db, Recon) else Recon.open(path)
    files: tuple[Path, ...] = ()
    deposits = None
    if (default if demo_batch is None else demo_batch) and path is not None:
        demo = ensure_demo_batch(recon, demo_batch_folder(path))
        files, deposits = demo.files, demo.deposits
    return AnalystApp(recon, user or os.environ.get("RECON_USER"), era_files=files, era_deposits=deposits)
