"""Pieces every view shares: the one-line message area, the error guard, the user
picker, a pager, HTML tables and the ledger a notebook opens by default.

Why a shared guard: the analyst must never see a traceback. A :class:`ReconError`
already carries the one line to show; anything else is a bug, so it is logged in
full (logger ``recon.ui``) and shown as one line that says what did not happen.
"""

from __future__ import annotations

import html
import logging
import math
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import ipywidgets as w

from recon.errors import InputError, ReconError
from recon.money import fmt

log = logging.getLogger("recon.ui")

STYLE = {"description_width": "130px"}
"""Wide enough for the seed's longest label ("Payment Method") to show in full."""

CSS = """
<style>
.recon-table { border-collapse: collapse; font-size: 12px;
               font-family: var(--jp-ui-font-family, sans-serif); }
.recon-table th, .recon-table td { padding: 2px 8px; border-bottom: 1px solid #ddd;
                                   white-space: nowrap; }
.recon-table th { background: #f2f4f7; text-align: left; position: sticky; top: 0; }
.recon-table td.num, .recon-table th.num { text-align: right; font-variant-numeric: tabular-nums; }
.recon-table tr.recon-just-paid td { background: #e6f4ea; }
.recon-msg { padding: 4px 8px; border-radius: 3px; margin: 2px 0; }
.recon-msg-error { background: #fdecea; color: #8a1c1c; }
.recon-msg-ok { background: #e6f4ea; color: #1e5631; }
.recon-msg-warning { background: #fff4e5; color: #6b4400; }
.recon-msg-info { background: #eef3fb; color: #1d3b66; }
.recon-cell { display: inline-block; padding: 0 4px; font-size: 12px; }
.recon-cell.num { text-align: right; font-variant-numeric: tabular-nums; }
</style>
"""
"""Styles for the HTML the views render (sent once per view, scoped by class names)."""


def esc(value: object) -> str:
    """Text from the ledger or the analyst, safe to put into HTML element content."""
    return html.escape("" if value is None else str(value), quote=False)


def esc_attr(value: object) -> str:
    """Text safe inside a double-quoted HTML attribute."""
    return html.escape("" if value is None else str(value), quote=True)


def cell(value: object) -> str:
    """How a ledger value reads in a table: amounts with two decimals, dates ISO."""
    if isinstance(value, Decimal):
        return fmt(value)
    if isinstance(value, date):
        return value.isoformat()
    return "" if value is None else str(value)


def html_table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    numeric: Sequence[bool] | None = None,
    row_attrs: Iterable[str] | None = None,
    table_class: str = "recon-table",
) -> str:
    """One HTML table: cheap for the browser, whatever the row count the caller pages to."""
    numeric = numeric or [False] * len(headers)
    head = "".join(f'<th class="{"num" if n else ""}">{esc(h)}</th>' for h, n in zip(headers, numeric, strict=True))
    attrs = iter(row_attrs) if row_attrs is not None else None
    body = []
    for row in rows:
        extra = next(attrs) if attrs is not None else ""
        tds = "".join(
            f'<td class="{"num" if n else ""}">{esc(cell(v))}</td>' for v, n in zip(row, numeric, strict=True)
        )
        body.append(f"<tr {extra}>{tds}</tr>")
    rows_html = "".join(body)
    return f'<table class="{table_class}"><thead><tr>{head}</tr></thead><tbody>{rows_html}</tbody></table>'


def message_html(kind: str, text: str) -> str:
    """A one-line message box; ``kind`` is error, ok, warning or info."""
    return f'<div class="recon-msg recon-msg-{kind}">{esc(text)}</div>'


def one_line(exc: BaseException) -> str:
    """The first line of an unexpected error, for showing without its traceback."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def shown_error(exc: BaseException, what_did_not_happen: str | None = None) -> str:
    """The one line an analyst sees for ``exc``; unexpected errors are logged in full."""
    tail = f"; {what_did_not_happen}" if what_did_not_happen else ""
    if isinstance(exc, ReconError):
        return f"{exc}{tail}"
    log.error("recon.ui: unexpected error", exc_info=exc)
    return f"Something went wrong: {one_line(exc)}{tail}"


def guarded(message: w.HTML, action: Callable[[], None], what_did_not_happen: str | None = None) -> bool:
    """Run ``action``; on any error put one readable line into ``message``. True if it ran clean."""
    try:
        action()
    except Exception as exc:  # the analyst sees one line; bugs are logged in full
        message.value = message_html("error", shown_error(exc, what_did_not_happen))
        return False
    return True


class Pager(w.HBox):
    """Previous / Next buttons and "1–50 of 3,000" for any list the views page through.

    Why paging: a client can have thousands of invoices; the browser stays quick
    when it holds one page of HTML or widgets, never thousands.
    """

    def __init__(self, prefix: str, page_size: int, on_change: Callable[[], None], noun: str) -> None:
        self.page_size = page_size
        self.page = 0
        self.count = 0
        self.noun = noun
        self._on_change = on_change
        self.prev = w.Button(description="‹ Previous", layout=w.Layout(width="110px"))
        self.next = w.Button(description="Next ›", layout=w.Layout(width="110px"))
        self.label = w.HTML()
        self.prev.add_class(f"{prefix}-prev")
        self.next.add_class(f"{prefix}-next")
        self.label.add_class(f"{prefix}-page")
        self.prev.on_click(lambda _b: self.go(self.page - 1))
        self.next.on_click(lambda _b: self.go(self.page + 1))
        super().__init__([self.prev, self.next, self.label])
        self.add_class(f"{prefix}-pager")

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.count / self.page_size))

    def window(self) -> slice:
        """The slice of the full list the current page shows."""
        start = self.page * self.page_size
        return slice(start, start + self.page_size)

    def set_count(self, count: int, page: int | None = None) -> None:
        """New list length; keeps (or moves to) a page that exists."""
        self.count = count
        if page is not None:
            self.page = page
        self.page = min(max(self.page, 0), self.pages - 1)
        self._label()

    def page_of(self, index: int) -> int:
        return index // self.page_size

    def go(self, page: int) -> None:
        page = min(max(page, 0), self.pages - 1)
        if page != self.page:
            self.page = page
            self._label()
            self._on_change()

    def _label(self) -> None:
        s = self.window()
        first, last = (s.start + 1, min(s.stop, self.count)) if self.count else (0, 0)
        self.label.value = (
            f"&nbsp;{self.noun} {first:,}–{last:,} of {self.count:,} · page {self.page + 1} of {self.pages}"
        )
        self.prev.disabled = self.page == 0
        self.next.disabled = self.page >= self.pages - 1
        self.layout.display = None if self.count > self.page_size else "none"


class UserPicker(w.Dropdown):
    """Who the analyst is: ``RECON_USER`` (or the ``user`` given) preselected, else a choice.

    The picker only says who acts; whether that user may change money is decided by
    the library (``record_payment`` raises PermissionDenied), exactly as on the CLI.
    """

    def __init__(self, recon: Any, user: str | None = None) -> None:
        users = recon.users()
        wanted = user or os.environ.get("RECON_USER") or None
        ids = {u.user_id for u in users}
        self.unknown = wanted if wanted and wanted not in ids else None
        super().__init__(
            options=[(f"{u.name} ({u.user_id})", u.user_id) for u in users],
            value=wanted if wanted in ids else None,
            description="User",
            style=STYLE,
            layout=w.Layout(width="320px"),
        )
        self.add_class("recon-user")

    def require(self) -> str:
        """The chosen user id, or a one-line refusal naming what to do."""
        if self.value is None:
            if self.unknown:
                raise InputError(f"User {self.unknown!r} (RECON_USER) is not a user of this ledger; choose one in User")
            raise InputError("Choose who you are in the User drop-down")
        return str(self.value)


def processor_enrolled() -> tuple[bool, str | None]:
    """Whether the practice is enrolled in payment processing, and why not when it cannot tell.

    The processors part may be absent in a checkout; then the card method is simply
    not offered. A broken settings file is not a reason to block recording a check.
    """
    try:
        from recon.processors.settings import load_settings
    except ImportError:
        return False, None
    try:
        return bool(load_settings().enrolled), None
    except ReconError as exc:
        return False, f"Card payments are not offered: {exc}"
    except Exception as exc:  # settings are optional for recording; log, do not block
        log.error("recon.ui: payment settings could not be read", exc_info=exc)
        return False, f"Card payments are not offered: {one_line(exc)}"


def practice_processor() -> tuple[str, str | None]:
    """The practice's processor (``stripe``, ``vantage`` or ``none``), and why none when it cannot tell.

    The form's button follows it: the seed's Vantage steps end with Save, Stripe's with
    Record Payment / Charge Payment Method.
    """
    try:
        from recon.processors.settings import load_settings
    except ImportError:
        return "none", None
    try:
        return load_settings().processor, None
    except ReconError as exc:
        return "none", f"Card payments are not offered: {exc}"
    except Exception as exc:  # settings are optional for recording; log, do not block
        log.error("recon.ui: payment settings could not be read", exc_info=exc)
        return "none", f"Card payments are not offered: {one_line(exc)}"


def demo_batch_folder(db_path: Path | str) -> Path:
    """Where notebook 02 keeps its demo ERA batch: beside a ledger file, else under the checkout's data/."""
    from recon.demo import project_root

    return db_path.parent / "era_demo" if isinstance(db_path, Path) else project_root() / "data" / "era_demo"


def notebook_ledger_path() -> Path | str:
    """The ledger a notebook opens: ``RECON_DB`` (a file or a ``postgresql://`` URI) or ``data/recon.duckdb``.

    The demo ledger is created when the file is missing, so a fresh clone runs top
    to bottom; tests point ``RECON_DB`` at a temporary file so nothing is written
    into the repository. A server ledger is used as it is (never filled with the demo).
    """
    from recon.demo import ensure_demo_ledger, project_root
    from recon.store.pg import is_postgres

    env = os.environ.get("RECON_DB")
    if env and is_postgres(env):
        return env
    path = Path(env) if env else project_root() / "data" / "recon.duckdb"
    if not path.exists():
        ensure_demo_ledger(path)
    return path


def export_dir() -> Path:
    """Where notebooks export: ``RECON_EXPORT_DIR`` or ``data/exports`` of the checkout."""
    from recon.demo import project_root

    env = os.environ.get("RECON_EXPORT_DIR")
    return Path(env) if env else project_root() / "data" / "exports"


def download_links(paths: Iterable[Path], max_inline_bytes: int = 5_000_000) -> Any:
    """Download links for exported files, shown as one HTML output.

    Why a data link for small files: JupyterLab only serves files under its root
    (``recon lab`` roots at ``notebooks/``), while exports go to ``data/exports``;
    a file embedded in the link downloads wherever the server is rooted. Larger
    files get a link relative to the notebook and their full path, so nothing big
    is copied into the notebook.
    """
    import base64
    import mimetypes

    from IPython.display import HTML

    items = []
    for path in paths:
        path = Path(path)
        size = path.stat().st_size
        if size <= max_inline_bytes:
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            data = base64.b64encode(path.read_bytes()).decode("ascii")
            href = f"data:{kind};base64,{data}"
        else:
            href = os.path.relpath(path, Path.cwd())
        items.append(
            f'<li><a class="recon-download" href="{esc_attr(href)}" '
            f'download="{esc_attr(path.name)}">'
            f"{esc(path.name)}</a> <small>({size:,} bytes · {esc(path)})</small></li>"
        )
    return HTML(f"<ul>{''.join(items)}</ul>")
