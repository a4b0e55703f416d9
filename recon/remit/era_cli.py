"""``recon era`` (post 835 files), ``recon remittances`` and ``recon exceptions``.

``era`` posts each file independently and exits 1 when any file was rejected or
conflicted (an already-posted file is not an error). ``--deposits`` loads the bank
file after the batch, whatever happened to its files, so the day's deposits are
always matched against every remittance in the ledger.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REMITTANCE_COLUMNS = (
    "remittance_id",
    "trace_number",
    "payer_id",
    "payment_method",
    "amount",
    "plb_amount",
    "paid_on",
    "unmatched_amount",
    "claims",
    "status",
    "deposit_id",
    "file_name",
)
ERA_MEMORY_LIMIT = "auto"
"""DuckDB's share while ``recon era`` posts a file: by the file's size (recon.remit.post.AUTO, not imported
here, so that ``recon validate`` does not load DuckDB)."""
EXCEPTION_COLUMNS = ("exception_id", "kind", "status", "trace_number", "payer_id", "claim_id", "amount", "reason")


def _has(recon: Any, name: str) -> bool:
    row = recon.one("SELECT count(*) FROM duckdb_views() WHERE view_name = ? AND NOT internal", [name])
    return bool(row and row[0])


def remittances_sql(recon: Any) -> str:
    """Remittances with their bank status (the deposits view when the ledger has it)."""
    if _has(recon, "remittance_reconciliation"):
        status = "coalesce(rr.status, 'posted') AS status, rr.deposit_id"
        join = "LEFT JOIN remittance_reconciliation rr USING (remittance_id)"
    else:
        status, join = "'posted' AS status, CAST(NULL AS VARCHAR) AS deposit_id", ""
    return f"""SELECT r.remittance_id, r.trace_number, r.payer_id, r.payment_method, r.amount, r.plb_amount,
                      r.paid_on, r.unmatched_amount, r.claims, {status}, r.file_name, r.payer_name,
                      r.handling_code, r.st_control, r.posted_at, r.user_id
               FROM remittances r {join} ORDER BY r.posted_at, r.remittance_id"""


def exceptions_sql(recon: Any) -> str:
    """The posting worklist, plus the bank side's exceptions when the ledger has them."""
    sql = """SELECT exception_id, kind, status, remittance_id, trace_number, payer_id, claim_id, amount, reason,
                    invoice_id, created_at, CAST(NULL AS VARCHAR) AS deposit_id FROM exception_status"""
    if _has(recon, "deposit_exceptions"):
        sql += """ UNION ALL SELECT exception_id, kind, 'open', remittance_id, trace_number, payer_id, claim_id,
                   amount, reason, NULL, created_at, deposit_id FROM deposit_exceptions"""
    from recon.reports import overpayment_worklist_sql  # credit balances, kind overpayment

    sql += f""" UNION ALL SELECT exception_id, kind, status, remittance_id, trace_number, payer_id, claim_id, amount,
               reason, invoice_id, created_at, deposit_id FROM ({overpayment_worklist_sql()})"""
    return f"SELECT * FROM ({sql}) ORDER BY created_at, exception_id"


def cmd_era(args: argparse.Namespace) -> int:
    from recon.progress import TtyProgress
    from recon.remit.post import post_remittances
    from recon.services import Recon

    line = TtyProgress()  # one updating line on a terminal's stderr; nothing when stderr is not one

    def progress(done: int, total: int, path: str) -> None:
        if total > 1:
            line(f"recon era: {done}/{total} files ({Path(path).name})")

    with Recon.open(args.db) as recon:
        with line:
            report = post_remittances(
                recon,
                args.files,
                args.user,
                dry_run=args.dry_run,
                progress=progress,
                auto_write_off=args.auto_write_off,
                memory_limit=ERA_MEMORY_LIMIT,
            )
        for outcome in report.files:
            print(outcome.summary())
            for problem in outcome.problems[1:20]:
                print(f"    {problem}")
            for warning in outcome.warnings:
                print(f"  warning: {warning}")
            if args.dry_run and outcome.claims:
                for c in outcome.claims[:50]:
                    print(
                        f"    claim {c.claim_id} CLP02 {c.status}: {c.outcome} {c.invoices or '-'} paid {c.paid} "
                        f"held {c.held} [{c.adjustments}]"
                    )
        if args.deposits:
            _deposits(recon, args)
    if args.dry_run:
        print("dry run: nothing was written")
    return 0 if report.ok else 1


def _deposits(recon: Any, args: argparse.Namespace) -> None:
    try:
        from recon.remit.deposits import load_deposits
    except ImportError:
        print("recon: warning: --deposits needs recon.remit.deposits, which this version lacks", file=sys.stderr)
        return
    print(load_deposits(recon, args.deposits, args.user, dry_run=args.dry_run))


def cmd_remittances(args: argparse.Namespace) -> int:
    from recon.output import render
    from recon.services import Recon

    with Recon.open(args.db) as recon:
        table = recon.rows(remittances_sql(recon))
    sys.stdout.write(render(table, args.format, REMITTANCE_COLUMNS if args.format == "table" else None))
    return 0


def cmd_exceptions(args: argparse.Namespace) -> int:
    from recon.output import render
    from recon.services import Recon

    with Recon.open(args.db) as recon:
        where, params = ("status = 'open'", []) if args.open else ("TRUE", [])
        table = recon.rows(f"SELECT * FROM ({exceptions_sql(recon)}) WHERE {where}", params)
    sys.stdout.write(render(table, args.format, EXCEPTION_COLUMNS if args.format == "table" else None))
    return 0


def register(sub: Any) -> dict[str, Callable[[argparse.Namespace], int]]:
    from recon.output import FORMATS

    p = sub.add_parser("era", help="post 835 ERA files to the ledger (one transaction per file)")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--db", help="ledger file (default: $RECON_DB or data/recon.duckdb)")
    p.add_argument("--user", required=True, help="who posts (needs Billing, except with --dry-run)")
    p.add_argument("--deposits", type=Path, metavar="FILE", help="bank deposit file to load and match afterwards")
    p.add_argument("--dry-run", action="store_true", help="show everything, write nothing")
    p.add_argument(
        "--auto-write-off",
        metavar="CODES",
        help="CARCs written off as Ins Adjusted, e.g. CO-45,CO-253 (default: $RECON_AUTO_WRITE_OFF)",
    )
    for name, helptext in (
        ("remittances", "posted remittances and their bank status"),
        ("exceptions", "the exceptions worklist with each one's status (--open: only open ones)"),
    ):
        q = sub.add_parser(name, help=helptext)
        q.add_argument("--db", help="ledger file (default: $RECON_DB or data/recon.duckdb)")
        q.add_argument("--format", choices=FORMATS, default="table")
        if name == "exceptions":
            q.add_argument("--open", action="store_true", help="only exceptions still to be worked")
    return {"era": cmd_era, "remittances": cmd_remittances, "exceptions": cmd_exceptions}
