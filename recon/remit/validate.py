"""Whole-file validation of an 835: the gate in front of posting.

A file is posted all or nothing, so every check runs over the whole file first and
*all* problems are collected into a :class:`FileReport` (an analyst fixes a file
faster from a full list than from one error at a time). Only per-transaction totals
are kept, never the claims: the file is read as a stream (a couple of thousand claims
at a time, :func:`~recon.remit.era835.read_835_stream`), so memory stays flat however
large a file, or one of its transactions, is. Posting
then reads the file a second time. Defects a careful reader can undo without
guessing (a payment date one element early, another system's component separator)
are read as meant and listed as ``warnings``: they do not stop a file, but the
analyst sees them. With ``strict=True`` pyx12 (when installed) also
checks the implementation guide; it is slow (~85 s per 10 MB) and known to flag some
valid PLB segments, so it is opt-in.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from recon.errors import RemittanceError
from recon.money import ZERO, fmt
from recon.remit.balance import BalanceProblem, plb_total
from recon.remit.era835 import TransactionEnd, read_835_stream
from recon.remit.x12 import gc_paused

SHOWN_PROBLEMS = 50
SHOWN_TRANSACTIONS = 12


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check over the file: ``checked`` items, ``failed`` of them, numbers in ``detail``."""

    name: str
    passed: bool
    checked: int
    failed: int
    detail: str


@dataclass(frozen=True, slots=True)
class TransactionSummary:
    """The numbers of one ST that a report (or a bank match) needs."""

    control: str
    trace_number: str
    payer_id: str
    payer_name: str
    method: str
    payment_date: date | None
    amount: Decimal
    claims_paid: Decimal
    plb_total: Decimal
    claims: int
    balanced: bool


@dataclass(frozen=True, slots=True)
class FileReport:
    """Everything validation found about one file; ``ok`` means it may be posted."""

    file: str
    transactions: int
    claims: int
    service_lines: int
    total_paid: Decimal
    claims_paid: Decimal
    plb_total: Decimal
    checks: tuple[CheckResult, ...]
    errors: tuple[str, ...]
    problems: tuple[BalanceProblem, ...]
    summaries: tuple[TransactionSummary, ...]
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    """Defects read as the payer evidently meant them; shown, but the file may be posted."""

    @property
    def ok(self) -> bool:
        return not self.errors


class InvalidRemittanceFile(RemittanceError):
    """A file that failed validation; ``report`` holds every problem found."""

    def __init__(self, report: FileReport) -> None:
        self.report = report
        more = len(report.errors) - 1
        tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
        super().__init__(f"{report.errors[0]}{tail}; nothing of {report.file} was posted")


def require_valid(report: FileReport) -> None:
    """Raise :class:`InvalidRemittanceFile` unless the report is clean."""
    if not report.ok:
        raise InvalidRemittanceFile(report)


def validate_file(path: str | Path, strict: bool = False, *, name: str | None = None) -> FileReport:
    """Read and balance a whole 835 file; never raises for bad content, reports it."""
    name = name if name is not None else Path(path).name
    defects: list[str] = []
    warnings: list[str] = []
    problems: list[BalanceProblem] = []
    summaries: list[TransactionSummary] = []
    claims = lines = 0
    envelope_error = None
    try:
        with gc_paused():  # see x12.gc_paused: a third of the time otherwise
            for part in read_835_stream(path, name=name):
                if not isinstance(part, TransactionEnd):
                    continue  # a batch of claims: their totals come with the transaction's end
                rem = part.remittance
                found = [BalanceProblem(*f) for f in part.imbalances]
                defects.extend(rem.defects)
                warnings.extend(rem.warnings)
                problems.extend(found)
                claims += part.claims
                lines += part.lines
                summaries.append(
                    TransactionSummary(
                        rem.envelope.transaction_control,
                        rem.trace_number,
                        rem.payer_id,
                        rem.payer_name,
                        rem.method,
                        rem.payment_date,
                        rem.amount,
                        part.paid,
                        plb_total(rem),
                        part.claims,
                        not found,
                    )
                )
    except RemittanceError as exc:
        envelope_error = exc.message
    checks = _checks(summaries, problems, defects, warnings, envelope_error, claims, lines)
    errors = ([envelope_error] if envelope_error else []) + defects + [p.message for p in problems]
    notes: list[str] = []
    if strict:
        guide = _guide_check(path, name, notes)
        if guide is not None:
            checks.append(guide[0])
            errors.extend(guide[1])
    return FileReport(
        name,
        len(summaries),
        claims,
        lines,
        sum((s.amount for s in summaries), ZERO),
        sum((s.claims_paid for s in summaries), ZERO),
        sum((s.plb_total for s in summaries), ZERO),
        tuple(checks),
        tuple(errors),
        tuple(problems),
        tuple(summaries),
        tuple(notes),
        tuple(warnings),
    )


def _checks(
    summaries: list[TransactionSummary],
    problems: list[BalanceProblem],
    defects: list[str],
    warnings: list[str],
    envelope_error: str | None,
    claims: int,
    lines: int,
) -> list[CheckResult]:
    by_level = {level: sum(1 for p in problems if p.level == level) for level in ("line", "claim", "file")}
    paid = sum((s.amount for s in summaries), ZERO)
    clp = sum((s.claims_paid for s in summaries), ZERO)
    plb = sum((s.plb_total for s in summaries), ZERO)
    return [
        CheckResult(
            "envelope",
            envelope_error is None,
            len(summaries),
            int(envelope_error is not None),
            envelope_error or "ISA/GS/ST/SE/GE/IEA counts and control numbers match",
        ),
        CheckResult(
            "content",
            not defects,
            len(summaries) + claims + lines,
            len(defects),
            f"{len(defects)} missing or invalid values"
            if defects
            else "dates and procedure codes readable" + (f" ({len(warnings)} read with a warning)" if warnings else ""),
        ),
        CheckResult("line", not by_level["line"], lines, by_level["line"], "SVC02 − line CAS = SVC03"),
        CheckResult("claim", not by_level["claim"], claims, by_level["claim"], "CLP03 − (claim + line CAS) = CLP04"),
        CheckResult(
            "file",
            not by_level["file"],
            len(summaries),
            by_level["file"],
            f"Σ CLP04 {fmt(clp)} − Σ PLB {fmt(plb)} = {fmt(clp - plb)}; Σ BPR02 {fmt(paid)} (per ST)",
        ),
    ]


def _guide_check(path: str | Path, name: str, notes: list[str]) -> tuple[CheckResult, list[str]] | None:
    """Run pyx12's implementation-guide validation and return its findings as messages."""
    try:
        import pyx12.params
        import pyx12.x12n_document
    except ImportError:
        notes.append("pyx12 not installed: implementation-guide validation skipped")
        return None
    logger = logging.getLogger("pyx12")
    saved = logger.level, logger.propagate, list(logger.handlers)
    logged = _Collect()
    logger.handlers[:] = [logged]
    logger.propagate = False
    out = io.StringIO()
    try:
        valid = pyx12.x12n_document.x12n_document(
            param=pyx12.params.params(),
            src_file=str(path),
            fd_997=None,
            fd_html=None,
            fd_json=out,
        )
        found = list(_pyx12_messages(out.getvalue()))
    except Exception as exc:  # pyx12 crashes on some input; report, don't trace back
        valid, found = False, [f"could not check the file: {exc!r}"]
    finally:
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
        logger.handlers[:] = saved[2]
    if not valid and not found:  # some findings only reach pyx12's log, not its JSON
        found = logged.messages or ["the file does not follow the implementation guide"]
    messages = [f"{name}: pyx12: {m}" for m in found]
    return (CheckResult("guide", not messages, 1, len(messages), "pyx12 005010X221A1 implementation guide"), messages)


class _Collect(logging.Handler):
    """Keep the first line of each error pyx12 logs."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage().splitlines()[0])


def _pyx12_messages(text: str) -> Iterator[str]:
    """Flatten pyx12's JSON error tree into one line per error."""
    if not text.strip():
        return
    doc: dict[str, Any] = json.loads(text)
    for isa in doc.get("interchanges", []):
        yield from (f"ISA {isa.get('isa_trn_set_id')}: {e['err_str']}" for e in isa["errors"])
        for gs in isa.get("groups", []):
            yield from (f"GS {gs.get('gs_control_num')}: {e['err_str']}" for e in gs["errors"])
            for st in gs.get("transactions", []):
                yield from (f"ST {st.get('trn_set_control_num')}: {e['err_str']}" for e in st["errors"])
                for seg in st.get("segments", []):
                    where = f"ST {st.get('trn_set_control_num')} segment {seg.get('seg_count')} ({seg.get('seg_id')})"
                    for err in seg.get("errors", []):
                        yield f"{where}: {err['err_str']}"
                    for ele in seg.get("elements", []):
                        for err in ele.get("errors", []):
                            yield f"{where} element {ele.get('ele_pos')}: {err['err_str']}"


def format_report(report: FileReport) -> str:
    """The report as plain text for the CLI: verdict, totals, checks, then problems."""
    verdict = (
        "OK" if report.ok else f"REJECTED ({len(report.errors)} problem" + ("s)" if len(report.errors) != 1 else ")")
    )
    if report.warnings:
        verdict += f" with {len(report.warnings)} warning" + ("s" if len(report.warnings) != 1 else "")
    out = [
        f"{report.file}: {verdict}",
        f"  {report.transactions} transaction(s), {report.claims} claim(s), {report.service_lines} service line(s)",
        f"  paid Σ BPR02 {fmt(report.total_paid)}   claims Σ CLP04 {fmt(report.claims_paid)}"
        f"   PLB Σ {fmt(report.plb_total)}",
    ]
    for shown, s in enumerate(report.summaries):
        if shown == SHOWN_TRANSACTIONS:
            out.append(f"  ... {report.transactions - shown} more transaction(s)")
            break
        out.append(
            f"  ST {s.control}: {s.method} {fmt(s.amount)} trace {s.trace_number} "
            f"payer {s.payer_name} ({s.payer_id}) date {s.payment_date or '?'} "
            f"{s.claims} claim(s){'' if s.balanced else ' UNBALANCED'}"
        )
    out.append("  checks:")
    for c in report.checks:
        status = "pass" if c.passed else "FAIL"
        failed = f" {c.failed} of {c.checked} failed" if not c.passed else f" {c.checked} checked"
        out.append(f"    {c.name:<8} {status}{failed}: {c.detail}")
    out.extend(f"  note: {n}" for n in report.notes)
    if report.warnings:
        out.append("  warnings (read as the payer meant; check them):")
        out.extend(f"    {w}" for w in report.warnings[:SHOWN_PROBLEMS])
        if len(report.warnings) > SHOWN_PROBLEMS:
            out.append(f"    ... {len(report.warnings) - SHOWN_PROBLEMS} more")
    if report.errors:
        out.append("  problems:")
        out.extend(f"    {e}" for e in report.errors[:SHOWN_PROBLEMS])
        if len(report.errors) > SHOWN_PROBLEMS:
            out.append(f"    ... {len(report.errors) - SHOWN_PROBLEMS} more")
    return "\n".join(out)
