"""The ERA batch: upload a day's 835 files and the bank's deposit list, preview, post,
then work the exceptions — one widget over ``post_remittances``, ``load_deposits`` and
the worklist functions.

Why a preview is a dry run of the real posting: ``post_remittances(dry_run=True)``
runs every check and every match inside a transaction that is rolled back, so what
the analyst sees before Post is exactly what Post will do, computed by the same code.

Uploads are written to a temporary folder (the posting API reads files, streaming,
as the CLI does); nothing of an upload is kept in widget state after it is written.
With an encrypted ledger (``RECON_DB_KEY``) an upload holds PHI that must not reach a
disk in plain text: its bytes are kept in an anonymous in-memory file (``memfd``) and
the temporary folder holds only a link of the upload's name to it, so the readers
open it by path as before; it is freed at the next batch or when the view closes.
Every action goes through the library, which checks the Billing permission and
writes an audit entry; errors are one line in ``recon-era-message``, never a traceback.

CSS classes (stable, for browser tests)::

    recon-era-batch            the whole widget
    recon-user                 User drop-down
    recon-era-upload           835 FileUpload (multiple)
    recon-era-deposit-upload   deposit file FileUpload (.csv, .bai, .bai2, .txt: BAI2 is told by content)
    recon-era-files            the files ready for the batch
    recon-era-preview-button   Preview button
    recon-era-post             Post button
    recon-era-progress         progress bar (shown while a batch runs)
    recon-era-message          one-line outcome <div class="recon-msg recon-msg-...">
    recon-era-preview          per-file preview/outcome: a recon-era-file block each
                               (data-status="posted|already_posted|rejected|conflict|dry_run")
                               with its claims table; and recon-era-deposits (deposit matches)
    recon-era-reconciliation   deposits and remittances by reconciliation status
    recon-worklist             the exceptions section
    recon-worklist-table       open exceptions (rows carry data-exception="<id>")
    recon-worklist-prev/-next/-page   its pager
    recon-worklist-exception   exception drop-down (open claim exceptions and credit balances)
    recon-worklist-invoice     invoice id (combobox of the payer's open invoices)
    recon-worklist-reason      reason text
    recon-worklist-match       Match to invoice button (held claims and lines)
    recon-worklist-appeal      Appeal button (denials)
    recon-worklist-write-off   Write off button (denials)
    recon-worklist-refund      Refund button (overpayments: back to the payer)
    recon-worklist-apply       Apply to invoice button (overpayments: to the Invoice typed)
    recon-worklist-bill-client Bill client button (the Invoice's PR waiting on a next payer)

Each action button is enabled only for the kinds it works (match: held claims and
lines; appeal and write off: denials; refund and apply: overpayments); a kind no
button works (a recoupment) is listed and offered nothing. Bill client works on the
invoice typed, whatever is chosen.
    recon-deposit-choice       Deposit drop-down (every deposit, with its status)
    recon-deposit-remittances  the remittance(s) it paid (select several: together they make its amount)
    recon-deposit-confirm      "Confirm a mismatch with the Reason" checkbox
    recon-deposit-match        Match deposit button     recon-deposit-unmatch   Undo match button

Matching a deposit by hand (``recon.remit.deposit_match``, when present): a match whose
amounts differ, or that takes a remittance or deposit already matched, is refused with
the reason; ticking Confirm and typing a Reason records it anyway. Undo match needs a
Reason too. Each is an audited entry; the worklist and reconciliation follow at once.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import ipywidgets as w

from recon.errors import InputError
from recon.money import fmt
from recon.remit.worklist import MATCHABLE
from recon.ui.common import CSS, STYLE, Pager, UserPicker, esc, esc_attr, guarded, html_table, message_html

PREVIEW_ROWS = 200
"""Claims shown per file in the preview (the browser stays quick on 30,000-claim files)."""

CLAIM_MATCHABLE = MATCHABLE
"""Kinds Match to invoice works: the library's (``recon.remit.worklist.MATCHABLE``)."""
DENIAL_KINDS = ("denial",)
CREDIT_KINDS = ("overpayment",)
STATUS_KIND = {
    "posted": "ok", "dry_run": "info", "already_posted": "info", "rejected": "error", "conflict": "error",
}  # fmt: skip
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True, slots=True)
class DemoBatch:
    """Sample 835 files and a bank deposit list made from the demo practice's invoices."""

    files: tuple[Path, ...]
    deposits: Path


def _upload_items(value: Any) -> list[tuple[str, bytes]]:
    """(name, content) of a FileUpload value (ipywidgets 8: a tuple of dicts)."""
    items = value.values() if isinstance(value, dict) else value or ()
    out = []
    for item in items:
        name = item.get("name") or "upload"
        content = item.get("content")
        out.append((str(name), bytes(content) if content is not None else b""))
    return out


class EraBatchView(w.VBox):
    """Upload, preview, post and work the exceptions of one day's ERA batch."""

    def __init__(
        self,
        recon: Any,
        user: str | None = None,
        *,
        files: Sequence[str | Path] = (),
        deposits: str | Path | None = None,
        page_size: int = 25,
    ) -> None:
        self.recon = recon
        self._tmp = Path(tempfile.mkdtemp(prefix=f"recon-era-{os.getpid()}-"))  # removed at the next start if killed
        self._memory: list[int] = []  # in-memory files of the uploads (encrypted ledger)
        self.local_files: list[Path] = [Path(f) for f in files]
        self.local_deposits: Path | None = Path(deposits) if deposits else None
        self.last_report: Any = None
        self.last_deposits: Any = None

        self.user_picker = UserPicker(recon, user)
        self.upload = w.FileUpload(accept=".835,.txt,.edi,.x12,.era", multiple=True, description="835 files")
        self.upload.add_class("recon-era-upload")
        self.deposit_upload = w.FileUpload(accept=".csv,.bai,.bai2,.txt", multiple=False, description="Deposits")
        self.deposit_upload.add_class("recon-era-deposit-upload")
        self.files_label = w.HTML()
        self.files_label.add_class("recon-era-files")
        self.preview_button = w.Button(description="Preview", icon="search", tooltip="Check and match, post nothing")
        self.preview_button.add_class("recon-era-preview-button")
        self.post_button = w.Button(description="Post", icon="check", button_style="primary")
        self.post_button.add_class("recon-era-post")
        self.progress = w.IntProgress(value=0, min=0, max=1, description="Files", style=STYLE)
        self.progress.add_class("recon-era-progress")
        self.progress.layout.display = "none"
        self.message = w.HTML()
        self.message.add_class("recon-era-message")
        self.preview_html = w.HTML()
        self.preview_html.add_class("recon-era-preview")
        self.reconciliation_html = w.HTML()
        self.reconciliation_html.add_class("recon-era-reconciliation")

        self.upload.observe(lambda _c: self._show_files(), names="value")
        self.deposit_upload.observe(lambda _c: self._show_files(), names="value")
        self.preview_button.on_click(lambda _b: self.preview())
        self.post_button.on_click(lambda _b: self.post())

        # the worklist
        self.worklist_rows: list[tuple[Any, ...]] = []
        # full width, scrolling sideways when the output area is narrower than the table:
        # a fixed-width HTML widget cut off the Reason and Deposit columns
        self.worklist_html = w.HTML(layout=w.Layout(width="100%", max_width="100%", min_width="0", overflow="auto"))
        self.worklist_html.add_class("recon-worklist-table")
        self.pager = Pager("recon-worklist", page_size, self._render_worklist, "exceptions")
        self.exception = w.Dropdown(description="Exception", style=STYLE, layout=w.Layout(width="640px"))
        self.exception.add_class("recon-worklist-exception")
        self.invoice = w.Combobox(
            description="Invoice", placeholder="invoice id", ensure_option=False, style=STYLE,
            layout=w.Layout(width="320px"),
        )  # fmt: skip
        self.invoice.add_class("recon-worklist-invoice")
        self.reason = w.Text(description="Reason", placeholder="why (kept with the exception)", style=STYLE,
                             layout=w.Layout(width="640px"))  # fmt: skip
        self.reason.add_class("recon-worklist-reason")
        self.match_button = w.Button(description="Match to invoice", icon="link")
        self.match_button.add_class("recon-worklist-match")
        self.appeal_button = w.Button(description="Appeal", icon="gavel")
        self.appeal_button.add_class("recon-worklist-appeal")
        self.write_off_button = w.Button(description="Write off", icon="eraser", button_style="warning")
        self.write_off_button.add_class("recon-worklist-write-off")
        self.refund_button = w.Button(description="Refund", icon="undo", tooltip="Refund the credit to its payer")
        self.refund_button.add_class("recon-worklist-refund")
        self.apply_button = w.Button(
            description="Apply to invoice", icon="share", tooltip="Apply the credit to Invoice"
        )
        self.apply_button.add_class("recon-worklist-apply")
        self.bill_client_button = w.Button(
            description="Bill client", icon="user", tooltip="Move Invoice's PR waiting on a next payer to the client"
        )
        self.bill_client_button.add_class("recon-worklist-bill-client")
        self.exception.observe(lambda _c: self._exception_chosen(), names="value")
        self.match_button.on_click(lambda _b: self.match())
        self.appeal_button.on_click(lambda _b: self.mark("appeal"))
        self.write_off_button.on_click(lambda _b: self.mark("write_off"))
        self.refund_button.on_click(lambda _b: self.work_credit("refund"))
        self.apply_button.on_click(lambda _b: self.work_credit("apply"))
        self.bill_client_button.on_click(lambda _b: self.bill_client())
        # the bank side: match a deposit to remittance(s) by hand, or undo that
        self.deposit = w.Dropdown(description="Deposit", style=STYLE, layout=w.Layout(width="640px"))
        self.deposit.add_class("recon-deposit-choice")
        self.remittances = w.SelectMultiple(
            description="Remittances", rows=5, style=STYLE, layout=w.Layout(width="640px")
        )
        self.remittances.add_class("recon-deposit-remittances")
        self.confirm = w.Checkbox(description="Confirm a mismatch with the Reason", indent=False)
        self.confirm.add_class("recon-deposit-confirm")
        self.deposit_match_button = w.Button(description="Match deposit", icon="link")
        self.deposit_match_button.add_class("recon-deposit-match")
        self.deposit_unmatch_button = w.Button(description="Undo match", icon="unlink")
        self.deposit_unmatch_button.add_class("recon-deposit-unmatch")
        self.deposit_match_button.on_click(lambda _b: self.match_deposit())
        self.deposit_unmatch_button.on_click(lambda _b: self.unmatch_deposit())
        worklist = w.VBox(
            [
                w.HTML("<h4>Exceptions worklist</h4>"),
                self.worklist_html,
                self.pager,
                self.exception,
                w.HBox([self.invoice, self.match_button, self.apply_button, self.bill_client_button]),
                w.HBox([self.reason, self.appeal_button, self.write_off_button, self.refund_button]),
                w.HTML("<b>A deposit by hand</b>: the remittance(s) it paid, or undo a match by hand"),
                self.deposit,
                self.remittances,
                w.HBox([self.confirm, self.deposit_match_button, self.deposit_unmatch_button]),
            ]
        )
        worklist.add_class("recon-worklist")
        self.worklist_box = worklist

        batch = w.VBox(
            [
                w.HBox([self.upload, self.deposit_upload, self.user_picker]),
                self.files_label,
                w.HBox([self.preview_button, self.post_button, self.progress]),
            ]
        )
        super().__init__(
            [
                w.HTML(CSS + _ERA_CSS),
                w.HTML("<h3>ERA batch: post 835 remittances and match bank deposits</h3>"),
                batch,
                self.message,
                self.preview_html,
                w.HTML("<h4>Reconciliation with the bank</h4>"),
                self.reconciliation_html,
                worklist,
            ]
        )
        self.add_class("recon-era-batch")
        if self.user_picker.unknown:
            self.message.value = message_html(
                "warning", f"User {self.user_picker.unknown!r} (RECON_USER) is not a user of this ledger; choose one"
            )
        self._show_files()
        guarded(self.message, self.refresh, "the worklist could not be shown")

    # ------------------------------------------------------------- the batch
    def batch_files(self) -> tuple[list[Path], Path | None]:
        """The 835 files and deposit file of the batch: uploads (written to a temp folder), else local files."""
        uploads = _upload_items(self.upload.value)
        deposit_uploads = _upload_items(self.deposit_upload.value)
        self._free_memory()  # the previous batch's in-memory uploads are done with
        files = [self._write(name, content) for name, content in uploads] if uploads else list(self.local_files)
        deposits = self._write(*deposit_uploads[0]) if deposit_uploads else self.local_deposits
        return files, deposits

    def _write(self, name: str, content: bytes) -> Path:
        """Write one upload under its own (sanitised) name; the same name twice gets a suffix."""
        safe = _SAFE_NAME.sub("_", Path(name).name).strip("._") or "upload"
        folder = self._tmp / f"{len(list(self._tmp.iterdir())):04d}"
        folder.mkdir()
        path = folder / safe
        if self._private():
            path.symlink_to(self._in_memory(safe, content))
        else:
            path.write_bytes(content)
        return path

    def _private(self) -> bool:
        """An encrypted ledger: no upload may be written to a disk in plain text."""
        from recon.remit.stage import private_session

        return bool(os.environ.get("RECON_DB_KEY")) or private_session(getattr(self.recon, "con", None))

    def _in_memory(self, name: str, content: bytes) -> str:
        """``content`` in an anonymous in-memory file; returns the path this process's readers open it by."""
        if not hasattr(os, "memfd_create"):
            raise InputError(
                "The ledger is encrypted and this system cannot keep an upload in memory; "
                "post the 835 files from their folder with recon era instead"
            )
        fd = os.memfd_create(f"recon-era-{name}", os.MFD_CLOEXEC)
        self._memory.append(fd)
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        return f"/proc/{os.getpid()}/fd/{fd}"

    def _free_memory(self) -> None:
        while self._memory:
            os.close(self._memory.pop())

    def _show_files(self) -> None:
        uploads = [n for n, _ in _upload_items(self.upload.value)]
        deposits = [n for n, _ in _upload_items(self.deposit_upload.value)]
        names = uploads or [p.name for p in self.local_files]
        dep = deposits[0] if deposits else (self.local_deposits.name if self.local_deposits else None)
        if not names and not dep:
            self.files_label.value = "<i>Choose the day's 835 files (and the bank's deposit file), then Preview.</i>"
            return
        shown = ", ".join(esc(n) for n in names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
        self.files_label.value = (
            f"<b>{len(names)}</b> 835 file(s): {shown or '<i>none</i>'}"
            f" · deposits: {esc(dep) if dep else '<i>none</i>'}"
        )

    def _progress(self, done: int, total: int, name: str) -> None:
        self.progress.max = max(1, total)
        self.progress.value = done
        self.progress.description = f"{done}/{total}"
        self.progress.tooltip = Path(name).name

    def _run(self, dry_run: bool) -> None:
        from recon.remit.deposits import load_deposits
        from recon.remit.post import post_remittances

        files, deposits = self.batch_files()
        if not files and deposits is None:
            raise InputError("Choose one or more 835 files (or a deposit file) first")
        if dry_run and self.user_picker.value is None and self.user_picker.options:
            # a preview writes nothing: before the analyst has said who they are (Run All
            # without RECON_USER), it is made as any user of the ledger; Post asks who
            user = self.user_picker.options[0][1]
        else:
            user = self.user_picker.require()  # who posts (posting checks Billing)
        self.progress.layout.display = None if len(files) > 1 else "none"
        self.progress.value = 0
        self.preview_button.disabled = self.post_button.disabled = True
        try:
            report = post_remittances(self.recon, files, str(user), dry_run=dry_run, progress=self._progress)
            self.last_report = report
            self.last_deposits = None
            deposit_error = None
            if deposits is not None:
                # loaded even when a file of the batch was rejected (the bank's money is a fact)
                try:
                    self.last_deposits = load_deposits(self.recon, deposits, str(user), dry_run=dry_run)
                except Exception as exc:
                    from recon.ui.common import shown_error

                    deposit_error = shown_error(exc, "the deposits were not loaded")
        finally:
            self.preview_button.disabled = self.post_button.disabled = False
            self.progress.layout.display = "none"
        self.preview_html.value = self._report_html(report, self.last_deposits, dry_run)
        self.message.value = self._summary(report, dry_run, deposit_error)
        self.refresh()

    def preview(self) -> None:
        """Preview: the real posting in a rolled-back transaction (needs no Billing permission)."""
        guarded(self.message, lambda: self._run(True), "nothing was previewed")

    def post(self) -> None:
        """Post every file (each all or nothing), then load the deposit file."""
        guarded(self.message, lambda: self._run(False), "nothing more was posted")

    def _summary(self, report: Any, dry_run: bool, deposit_error: str | None) -> str:
        counts: dict[str, int] = {}
        for f in report.files:
            counts[f.status] = counts.get(f.status, 0) + 1
        parts = [f"{n} {s.replace('_', ' ')}" for s, n in counts.items()]
        verb = "Preview (nothing posted)" if dry_run else "Posted batch"
        text = f"{verb}: {len(report.files)} file(s): {', '.join(parts) or 'none'}"
        if self.last_deposits is not None:
            d = self.last_deposits
            text += f"; deposits: {d.added} new, {d.unchanged} unchanged"
        if deposit_error:
            return message_html("error", f"{text}. Deposits: {deposit_error}")
        bad = any(f.status in ("rejected", "conflict") for f in report.files)
        return message_html("warning" if bad else ("info" if dry_run else "ok"), text)

    def _report_html(self, report: Any, deposits: Any, dry_run: bool) -> str:
        blocks = [_file_html(f) for f in report.files]
        if deposits is not None:
            blocks.append(_deposits_html(deposits, dry_run))
        return "".join(blocks)

    # ----------------------------------------------------------- the worklist
    def refresh(self) -> None:
        """Reload the worklist and the reconciliation summary from the ledger."""
        from recon import reports
        from recon.remit.reconcile import WORKLIST_SQL

        self.worklist_rows = self.recon.execute(
            f"""SELECT exception_id, kind, trace_number, payer_id, claim_id, amount, reason, deposit_id
                FROM ({WORKLIST_SQL}) WHERE status = 'open' ORDER BY created_at, exception_id"""
        ).fetchall()
        self.pager.set_count(len(self.worklist_rows))
        self._render_worklist()
        actionable = [r for r in self.worklist_rows if r[7] is None]
        keep = self.exception.value
        self.exception.options = [("(choose an exception)", None)] + [
            (f"{r[0]} · {r[1].replace('_', ' ')} · claim {r[4]} · {r[3]} · {fmt(r[5])} · {r[6] or ''}", r[0])
            for r in actionable
        ]
        self.exception.value = keep if keep in {r[0] for r in actionable} else None
        self._deposit_choices()
        status = reports.reconciliation_status(self.recon)
        self.reconciliation_html.value = html_table(
            ["Side", "Status", "Count", "Amount", "Difference"],
            [(r.side, r.status.replace("_", " "), r.count, r.amount, r.difference) for r in status.itertuples()],
            numeric=[False, False, True, True, True],
        )

    def _render_worklist(self) -> None:
        rows = self.worklist_rows[self.pager.window()]
        if not self.worklist_rows:
            self.worklist_html.value = message_html("ok", "No open exceptions")
            return
        table = html_table(
            ["Exception", "Kind", "Trace", "Payer", "Claim", "Amount", "Reason", "Deposit"],
            [(r[0], r[1].replace("_", " "), *r[2:]) for r in rows],
            numeric=[False, False, False, False, False, True, False, False],
            row_attrs=[f'data-exception="{esc_attr(r[0])}"' for r in rows],
        )
        self.worklist_html.value = f'<div class="recon-scroll-x">{table}</div>'

    def _deposit_choices(self) -> None:
        """Deposits (newest first, with their status) and remittances to match them to."""
        keep_deposit, keep_remittances = self.deposit.value, set(self.remittances.value)
        deposits = self.recon.execute(
            """SELECT deposit_id, deposit_date, amount, status, matched_by FROM deposit_reconciliation
               ORDER BY deposit_date DESC, deposit_id LIMIT 500"""
        ).fetchall()
        self.deposit.options = [("(choose a deposit)", None)] + [
            (f"{d[0]} · {d[1]} · {fmt(d[2])} · {d[3].replace('_', ' ')}" + (f" ({d[4]})" if d[4] else ""), d[0])
            for d in deposits
        ]
        self.deposit.value = keep_deposit if keep_deposit in {d[0] for d in deposits} else None
        remittances = self.recon.execute(
            """SELECT remittance_id, payer_id, trace_number, amount, paid_on, status FROM remittance_reconciliation
               ORDER BY paid_on DESC, remittance_id LIMIT 500"""
        ).fetchall()
        self.remittances.options = [
            (f"{r[0]} · {r[1]} · trace {r[2]} · {fmt(r[3])} · {r[4]} · {r[5].replace('_', ' ')}", r[0])
            for r in remittances
        ]
        self.remittances.value = tuple(r[0] for r in remittances if r[0] in keep_remittances)

    def match_deposit(self) -> None:
        """Match the chosen deposit to the chosen remittance(s) (confirmed with the Reason when they differ)."""

        def run() -> None:
            from recon.remit.deposit_match import match_deposit

            if not self.deposit.value:
                raise InputError("Choose the deposit in Deposit first")
            if not self.remittances.value:
                raise InputError("Choose the remittance(s) the deposit paid in Remittances")
            reason = self.reason.value.strip()
            if self.confirm.value and not reason:
                raise InputError("Give the reason for confirming the mismatch in Reason")
            done = match_deposit(
                self.recon,
                str(self.deposit.value),
                list(self.remittances.value),
                self.user_picker.require(),
                confirm=reason if self.confirm.value else None,
            )
            self.reason.value = ""
            self.confirm.value = False
            self.refresh()
            self.message.value = message_html("ok", str(done))

        guarded(self.message, run, "nothing was matched")

    def unmatch_deposit(self) -> None:
        """Undo the chosen deposit's match by hand (the Reason is kept with it)."""

        def run() -> None:
            from recon.remit.deposit_match import unmatch_deposit

            if not self.deposit.value:
                raise InputError("Choose the deposit in Deposit first")
            reason = self.reason.value.strip()
            if not reason:
                raise InputError("Give the reason for undoing the match in Reason")
            done = unmatch_deposit(self.recon, str(self.deposit.value), self.user_picker.require(), reason)
            self.reason.value = ""
            self.refresh()
            self.message.value = message_html("ok", str(done))

        guarded(self.message, run, "nothing was undone")

    def _exception_chosen(self) -> None:
        """Offer the payer's invoices with insurance still open as match candidates."""
        row = next((r for r in self.worklist_rows if r[0] == self.exception.value), None)
        if row is None:
            self.invoice.options = ()
            for button in (self.match_button, self.appeal_button, self.write_off_button, self.refund_button,
                           self.apply_button):  # fmt: skip
                button.disabled = False  # a click says "Choose an exception"
            return
        from recon.store import queries

        candidates = self.recon.execute(
            f"""SELECT invoice_id FROM ({queries.ledger_sql()})
                WHERE payer_id = ? AND ins_amt_due - ins_amt_paid - ins_adjusted > 0
                ORDER BY service_date DESC, invoice_id LIMIT 200""",
            [row[3]],
        ).fetchall()
        self.invoice.options = tuple(c[0] for c in candidates)
        kind = row[1]
        self.match_button.disabled = kind not in CLAIM_MATCHABLE
        self.appeal_button.disabled = self.write_off_button.disabled = kind not in DENIAL_KINDS
        self.refund_button.disabled = self.apply_button.disabled = kind not in CREDIT_KINDS

    def _chosen(self, kinds: Sequence[str] | None = None, what: str = "") -> str:
        """The chosen exception's id; refused (one line) when its kind is not one ``kinds`` names."""
        if not self.exception.value:
            raise InputError("Choose an exception in Exception first")
        exception_id = str(self.exception.value)
        kind = next((r[1] for r in self.worklist_rows if r[0] == exception_id), None)
        if kinds is not None and kind is not None and kind not in kinds:
            raise InputError(f"{exception_id} is {_a(kind)}: {what} does not apply to it ({_works(kind)})")
        return exception_id

    def match(self) -> None:
        """Match the chosen unmatched claim to the invoice typed in Invoice (an audited payment)."""

        def run() -> None:
            from recon.remit.worklist import match_claim

            exception_id = self._chosen(CLAIM_MATCHABLE, "Match to invoice")
            invoice_id = (self.invoice.value or "").strip()
            if not invoice_id:
                raise InputError("Type or choose the invoice this claim pays in Invoice")
            payment_id = match_claim(self.recon, exception_id, invoice_id, self.user_picker.require())
            self.invoice.value = ""
            self.refresh()
            self.message.value = message_html(
                "ok", f"{exception_id} matched to {invoice_id}: payment {payment_id} recorded"
            )

        guarded(self.message, run, "nothing was matched")

    def mark(self, action: str) -> None:
        """Appeal or write off the chosen denial with the reason typed (an audited entry)."""

        def run() -> None:
            from recon.remit.worklist import mark_denial

            exception_id = self._chosen(DENIAL_KINDS, "Appeal" if action == "appeal" else "Write off")
            reason = self.reason.value.strip()
            if not reason:
                raise InputError("Give a reason in Reason (it is kept with the denial)")
            invoice_id = (self.invoice.value or "").strip() or None
            written = mark_denial(
                self.recon, exception_id, action, reason, self.user_picker.require(), invoice_id=invoice_id
            )
            self.reason.value = ""
            self.refresh()
            if action == "appeal":
                text = f"{exception_id} marked for appeal"
            else:
                amounts = ", ".join(f"{inv} {fmt(amount)}" for inv, amount in written)
                text = f"{exception_id} written off: {amounts}"
            self.message.value = message_html("ok", text)

        guarded(self.message, run, "nothing was changed")

    def work_credit(self, action: str) -> None:
        """Refund the chosen overpayment to its payer, or apply it to the invoice typed (Reason required)."""

        def run() -> None:
            from recon.remit.worklist import apply_overpayment, refund_overpayment

            credit_id = self._chosen(CREDIT_KINDS, "Refund" if action == "refund" else "Apply to invoice")
            reason = self.reason.value.strip()
            if not reason:
                raise InputError("Give a reason in Reason (it is kept with the credit balance)")
            user = self.user_picker.require()
            if action == "refund":
                refund_id = refund_overpayment(self.recon, credit_id, user, reason)
                amount = self.recon.one("SELECT -amount FROM payments WHERE payment_id = ?", [refund_id])[0]
                text = f"{credit_id} refunded: {fmt(amount)} (refund entry {refund_id})"
            else:
                invoice_id = (self.invoice.value or "").strip()
                if not invoice_id:
                    raise InputError("Type or choose the invoice to apply the credit to in Invoice")
                moved = apply_overpayment(self.recon, credit_id, invoice_id, user, reason)
                text = f"{credit_id} applied to {invoice_id}: {fmt(sum((a for _, a in moved), Decimal(0)))}"
            self.reason.value = ""
            self.invoice.value = ""
            self.refresh()
            self.message.value = message_html("ok", text)

        guarded(self.message, run, "nothing was changed")

    def bill_client(self) -> None:
        """Move the typed invoice's patient responsibility waiting on a next payer to the client."""

        def run() -> None:
            from recon.remit.worklist import bill_client

            invoice_id = (self.invoice.value or "").strip()
            if not invoice_id:
                raise InputError("Type the invoice whose patient responsibility to bill the client in Invoice")
            reason = self.reason.value.strip()
            if not reason:
                raise InputError("Give a reason in Reason (why the next payer will not pay it)")
            moved = bill_client(self.recon, invoice_id, self.user_picker.require(), reason)
            self.reason.value = ""
            self.invoice.value = ""
            self.refresh()
            self.message.value = message_html("ok", f"{invoice_id}: {fmt(moved)} billed to the client")

        guarded(self.message, run, "nothing was billed")

    def close(self) -> None:
        self._free_memory()
        shutil.rmtree(self._tmp, ignore_errors=True)
        super().close()


def _a(kind: str) -> str:
    words = kind.replace("_", " ")
    return ("an " if words[0] in "aeiou" else "a ") + words


def _works(kind: str) -> str:
    """Which buttons work ``kind`` (said when another is clicked)."""
    if kind in CLAIM_MATCHABLE:
        return "match it to an invoice"
    if kind in DENIAL_KINDS:
        return "appeal or write it off"
    if kind in CREDIT_KINDS:
        return "refund it or apply it to an invoice"
    return "it is listed for information; no action here works it"


_ERA_CSS = """
<style>
.recon-era-file { border: 1px solid #dde2ea; border-radius: 4px; padding: 4px 8px; margin: 6px 0; }
.recon-era-file h5 { margin: 2px 0 4px 0; font-size: 13px; }
.recon-era-file .recon-era-claims { max-height: 320px; overflow: auto; }
.recon-era-file ul { margin: 2px 0 2px 18px; padding: 0; font-size: 12px; }
.recon-era-status { font-weight: bold; text-transform: uppercase; font-size: 11px; padding: 0 4px; border-radius: 3px; }
.recon-era-status-posted { background: #e6f4ea; } .recon-era-status-dry_run { background: #eef3fb; }
.recon-era-status-already_posted { background: #eef3fb; } .recon-era-status-rejected { background: #fdecea; }
.recon-era-status-conflict { background: #fdecea; }
.recon-scroll-x { max-width: 100%; overflow-x: auto; }
.recon-worklist-table .widget-html-content { width: 100%; line-height: normal; }
.recon-worklist-table .recon-table { width: 100%; }
.recon-worklist-table .recon-table td:nth-child(7) { white-space: normal; min-width: 14em; max-width: 36em; }
</style>
"""


def _file_html(f: Any) -> str:
    """One file of the batch: status, totals, balance checks, problems and its claims."""
    head = (
        f'<h5><span class="recon-era-status recon-era-status-{esc_attr(f.status)}">{esc(f.status.replace("_", " "))}'
        f"</span> {esc(f.file)} · payer {esc(f.payer_id or '?')} · trace {esc(f.trace_number or '?')} · "
        f"amount {fmt(f.amount)} · PLB {fmt(f.plb_amount)}</h5>"
    )
    items: list[str] = []
    if f.status in ("rejected", "conflict"):
        items.append(f"<li>{esc(f.message)}</li>")
        items += [f"<li>{esc(p)}</li>" for p in f.problems[:50]]
        if len(f.problems) > 50:
            items.append(f"<li>… and {len(f.problems) - 50} more problems</li>")
    else:
        items.append(
            "<li>Balanced: every line (charge − adjustments = paid), claim and file (Σ paid − PLB = BPR02)</li>"
        )
        items.append(
            f"<li>Claims posted {f.claims_posted}, denied {f.claims_denied}, unmatched {f.claims_unmatched}, "
            f"reversed {f.claims_reversed}; held as unmatched funds {fmt(f.unmatched_amount)}</li>"
        )
        if f.message:
            items.append(f"<li>{esc(f.message)}</li>")
    items += [f'<li class="recon-era-warning">{esc(x)}</li>' for x in f.warnings[:20]]
    claims = ""
    if f.claims:
        shown = f.claims[:PREVIEW_ROWS]
        claims = '<div class="recon-era-claims">' + html_table(
            ["Remittance", "Claim", "CLP02", "Outcome", "Invoices", "Charge", "Paid", "Held", "Adjustments"],
            [(c.remittance_id, c.claim_id, c.status, c.outcome, c.invoices, c.charge, c.paid, c.held, c.adjustments)
             for c in shown],
            numeric=[False, False, False, False, False, True, True, True, False],
            row_attrs=[f'data-claim="{esc_attr(c.claim_id)}"' for c in shown],
        ) + "</div>"  # fmt: skip
        if len(f.claims) > PREVIEW_ROWS:
            claims += f"<small>First {PREVIEW_ROWS} of {len(f.claims):,} claims shown.</small>"
    return (
        f'<div class="recon-era-file" data-status="{esc_attr(f.status)}" data-file="{esc_attr(f.file)}">'
        f"{head}<ul>{''.join(items)}</ul>{claims}</div>"
    )


def _deposits_html(load: Any, dry_run: bool) -> str:
    """The deposit file: how many are new, and what each deposit matches (or why not)."""
    note = (
        " (matched against remittances already in the ledger: the files above are matched after Post)"
        if dry_run
        else ""
    )
    table = html_table(
        ["Deposit", "Date", "Amount", "Trace", "Status", "Remittance", "Difference", "Why not matched"],
        [(*m[:4], m[4].replace("_", " "), *m[5:]) for m in load.matches],
        numeric=[False, False, True, False, False, False, True, False],
        row_attrs=[f'data-deposit="{esc_attr(m[0])}" data-status="{esc_attr(m[4])}"' for m in load.matches],
    )
    return (
        f'<div class="recon-era-file recon-era-deposits"><h5>Deposits: {esc(Path(load.source).name)} · '
        f"{load.added} new, {load.unchanged} unchanged · total {fmt(load.total)}{esc(note)}</h5>{table}</div>"
    )


# ------------------------------------------------------------------ demo data
def ensure_demo_batch(recon: Any, folder: str | Path, per_payer: int = 24) -> DemoBatch:
    """Sample 835s (Aetna, BCBS, UnitedHealthcare) from the demo practice's invoices, and a deposit CSV.

    Made once: when the folder already has them they are reused, so re-running a
    notebook posts the very same files (already posted) rather than new ones. The
    invoices are chosen from the practice as loaded (never from what was paid since),
    and the payment date follows the last service date, so the batch is the same for
    the same practice. The deposits cover each rule: a trace match, an amount-and-date
    match without a trace, an amount that differs, and money no remittance explains.
    """
    from recon.remit.generate import generate_835

    folder = Path(folder)
    names = ("aetna.835", "bcbs.835", "uhc.835")
    files = tuple(folder / n for n in names)
    deposits = folder / "bank_deposits.csv"
    if all(p.exists() for p in files) and deposits.exists():
        return DemoBatch(files, deposits)
    folder.mkdir(parents=True, exist_ok=True)
    last = recon.one("SELECT max(service_date) FROM invoices")
    paid_on = (last[0] if last and last[0] else date.today()) + timedelta(days=14)
    payers = (
        ("AETNA", "60054", "AETNA"),
        ("BCBS", "00570", "BLUE CROSS BLUE SHIELD"),
        ("UHC", "87726", "UNITEDHEALTHCARE"),
    )
    generated = []
    for n, ((payer_id, ident, name), path) in enumerate(zip(payers, files, strict=True)):
        invoices = recon.execute(
            """SELECT i.invoice_id, i.service_date, i.service_code, i.fee FROM invoices i
               JOIN client_insurance ci ON ci.client_id = i.client_id AND ci.payer_id = i.payer_id
               WHERE i.payer_id = ? AND ci.priority = 'primary' AND i.ins_amt_due > 0
               ORDER BY i.service_date, i.invoice_id LIMIT ?""",
            [payer_id, per_payer],
        ).fetchall()
        generated.append(
            generate_835(
                path, n_claims=len(invoices) + 3, seed=835 + n, payer_id=ident, payer_name=name,
                trace=f"{ident}{paid_on:%m%d}{n + 1:03d}", invoices=invoices, payment_date=paid_on + timedelta(days=n),
                method="ACH" if n != 2 else "CHK",
            )
        )  # fmt: skip
    a, b, c = generated
    rows = [
        ("BANK-0001", paid_on + timedelta(days=1), a.total_paid, a.trace_numbers[0], "ACH CREDIT HCCLAIMPMT AETNA"),
        ("BANK-0002", paid_on + timedelta(days=3), b.total_paid, "", "ACH CREDIT (no addenda)"),
        ("BANK-0003", paid_on + timedelta(days=4), c.total_paid - Decimal("1.50"), c.trace_numbers[0],
         "CHECK DEPOSIT UHC"),
        ("BANK-0004", paid_on + timedelta(days=2), Decimal("250.00"), "", "COUNTER DEPOSIT"),
    ]  # fmt: skip
    lines = ["deposit_id,deposit_date,amount,trace_number,description"]
    lines += [f"{i},{d.isoformat()},{fmt(amt)},{t},{desc}" for i, d, amt, t, desc in rows]
    deposits.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return DemoBatch(files, deposits)


def era_batch(
    recon: Any,
    user: str | None = None,
    *,
    files: Iterable[str | Path] = (),
    deposits: str | Path | None = None,
    preview: bool = False,
) -> EraBatchView:
    """The ERA batch widget for ``recon`` (``files``/``deposits``: local files ready to preview).

    ``preview=True`` previews them at once (a dry run, nothing written), so a notebook's
    Run All shows what Post would do and leaves posting to the analyst's click.
    """
    view = EraBatchView(recon, user, files=list(files), deposits=deposits)
    if preview:
        view.preview()
    return view
