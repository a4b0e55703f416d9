"""``recon``: the command line over :class:`recon.services.Recon`.

Errors an analyst can act on print one line on stderr and exit 1; nothing is half
written (each command's change is one transaction).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from recon.errors import InputError, OtherPayersInvoice, ReconError
from recon.model import EobEntry, InvoicePick, PaymentMethod, PaymentRequest
from recon.money import fmt, parse_amount
from recon.output import FORMATS, Rows, render
from recon.store import queries

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def register(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn

    return register


def _open(args: argparse.Namespace) -> Any:
    from recon.services import Recon

    return Recon.open(args.db)


def _date_arg(text: str) -> date:
    from recon.practice import parse_date

    try:
        return parse_date(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date; expected YYYY-MM-DD") from None


def _pick(text: str) -> InvoicePick:
    """``ID`` ticks the invoice; ``ID=AMOUNT`` is a typed (partial) Payment."""
    invoice_id, sep, amount = text.partition("=")
    if not invoice_id.strip():
        raise InputError(f"--invoice: {text!r} is not valid; expected ID or ID=AMOUNT")
    if not sep:
        return InvoicePick(invoice_id.strip())
    return InvoicePick(invoice_id.strip(), parse_amount(amount, f"--invoice {invoice_id.strip()}"))


_EOB_KINDS = {
    "allowed": "allowed",
    "deductible": "deductible",
    "coinsurance": "coinsurance",
    "copay": "copay",
    "co-pay": "copay",
}


def _eob(text: str) -> EobEntry:
    """``--eob INVOICE:allowed=80,co45=20,deductible=10,coinsurance=5,copay=0`` (a paper EOB's line).

    Keys: allowed, deductible (PR-1), coinsurance (PR-2), copay (PR-3), and payer adjustments
    by code (``co45`` or ``CO-45``; see recon.rules.eob.ADJUSTMENT_CODES). Each key at most once.
    """
    invoice_id, sep, rest = text.partition(":")
    invoice_id = invoice_id.strip()
    expected = "expected INVOICE:key=AMOUNT,... e.g. I1:allowed=80,co45=20,deductible=10,coinsurance=5,copay=0"
    if not invoice_id or not sep or not rest.strip():
        raise InputError(f"--eob: {text!r} is not valid; {expected}")
    fields: dict[str, Any] = {}
    adjustments: list[tuple[str, Any]] = []
    for item in rest.split(","):
        key, eq, value = item.partition("=")
        key = key.strip().lower()
        if not eq or not key:
            raise InputError(f"--eob {invoice_id}: {item.strip()!r} is not valid; {expected}")
        label = f"--eob {invoice_id} {key}"
        if key in _EOB_KINDS:
            name = _EOB_KINDS[key]
            if name in fields:
                raise InputError(f"--eob {invoice_id}: {key} is given twice")
            fields[name] = parse_amount(value, label)
            continue
        group, reason = key[:2].upper(), key[2:].lstrip("-").upper()
        if group not in ("CO", "OA", "PI", "CR") or not reason.isalnum():
            raise InputError(
                f"--eob {invoice_id}: unknown key {key!r}; expected allowed, deductible, coinsurance, copay "
                "or an adjustment code such as co45"
            )
        adjustments.append((f"{group}-{reason}", parse_amount(value, label)))
    return EobEntry(invoice_id, adjustments=tuple(adjustments), **fields)


# ------------------------------------------------------------------ commands
def _method(text: str) -> PaymentMethod:
    """``--method``: a refusal lists only the methods this practice offers (the card one when enrolled)."""
    try:
        return PaymentMethod.parse(text)
    except InputError:
        offered = [m.value for m in PaymentMethod if m is not PaymentMethod.INSURANCE_CARD or _card_enrolled()]
        raise InputError(f"--method: {text!r} is not a Payment Method; expected one of {', '.join(offered)}") from None


def _card_enrolled() -> bool:
    """Whether the practice is enrolled in a card processor (its settings unreadable: not enrolled)."""
    try:
        from recon.processors.settings import load_settings

        return bool(load_settings().enrolled)
    except Exception:  # settings only decide what a message lists; recording a check never depends on them
        return False


@command("load")
def cmd_load(args: argparse.Namespace) -> int:
    from recon.practice import load_practice
    from recon.progress import TtyProgress

    with _open(args) as recon, TtyProgress() as line:  # a terminal shows each step; a pipe nothing
        summary = load_practice(recon, args.source, args.user or None, lambda text: line(f"recon load: {text}"))
    print(summary)
    return 0


@command("pay")
def cmd_pay(args: argparse.Namespace) -> int:
    method = _method(args.method)
    if args.amount is None and not args.invoice:
        raise InputError("pay: give --amount, or one or more --invoice ID[=AMOUNT]")
    request = PaymentRequest(
        client_id=args.client,
        payer=args.payer,
        method=method,
        amount=parse_amount(args.amount, "--amount") if args.amount is not None else None,
        picks=tuple(_pick(p) for p in args.invoice or ()),
        payment_number=args.payment_number,
        notes=args.notes,
        received_on=args.date,
        idempotency_key=args.key,
        confirm_other_payer=args.confirm_other_payer,
        eob=tuple(_eob(e) for e in args.eob or ()),
    )
    with _open(args) as recon:
        if method is PaymentMethod.INSURANCE_CARD:
            from recon.cards import charge_card_payment

            receipt = charge_card_payment(recon, request, args.user, token=args.payment_method_token)
        else:
            try:
                receipt = recon.record_payment(request, args.user)
            except OtherPayersInvoice as exc:
                raise OtherPayersInvoice(f"{exc} (--confirm-other-payer)") from None
    if receipt.replayed:  # its only warning says the same
        print(f"Already recorded as payment {receipt.payment_id}; nothing new was recorded")
        return 0
    for warning in receipt.warnings:
        print(f"recon: warning: {warning}", file=sys.stderr)
    applied = ", ".join(f"{inv} {fmt(amt)}" for inv, amt in receipt.allocations) or "no invoice"
    print(f"Recorded payment {receipt.payment_id}: {fmt(receipt.amount)} ({method.label}); applied {applied}")
    if receipt.unapplied:
        print(f"Unapplied credit on this payment: {fmt(receipt.unapplied)}")
    for invoice_id, meets in receipt.meets:
        if meets:
            print(f"  {invoice_id}: meets {meets}")
    for line in receipt.eob:
        print(f"  EOB {line}")
    return 0


@command("void")
def cmd_void(args: argparse.Namespace) -> int:
    with _open(args) as recon:
        from recon.cards import void_any_payment

        reversal = void_any_payment(recon, args.payment_id, args.user, args.reason)
    print(f"Voided {args.payment_id} by reversing entry {reversal}")
    return 0


@command("ledger")
def cmd_ledger(args: argparse.Namespace) -> int:
    with _open(args) as recon:
        recon.client(args.client)
        table = recon.rows(queries.ledger_sql("client_id = $1"), [args.client])
    sys.stdout.write(render(table, args.format, queries.LEDGER_COLUMNS if args.format == "table" else None))
    return 0


@command("payments")
def cmd_payments(args: argparse.Namespace) -> int:
    with _open(args) as recon:
        if args.client:
            recon.client(args.client)
            table = recon.rows(queries.payments_sql("client_id = $1"), [args.client])
        else:
            table = recon.rows(queries.payments_sql())
    cols = queries.PAYMENT_COLUMNS if args.format == "table" else None
    if args.format == "table":
        table = _short_text(table, "notes", 40)
    sys.stdout.write(render(table, args.format, cols))
    return 0


def _short_text(table: Rows, column: str, width: int) -> Rows:
    """``column`` on one line and at most ``width`` characters, for the terminal table (csv/json keep it whole)."""
    at = table.names.index(column)

    def short(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        flat = " ".join(value.split())
        return flat if len(flat) <= width else flat[: width - 1] + "…"

    rows = [(*r[:at], short(r[at]), *r[at + 1 :]) for r in table.rows]
    return Rows(table.names, rows, table.decimal)


@command("clients")
def cmd_clients(args: argparse.Namespace) -> int:
    import pyarrow as pa

    with _open(args) as recon:
        frame = recon.clients(args.search)
    if frame.empty and args.format == "table":
        search = (args.search or "").strip()
        print(f"No client matches {search!r}" if search else "No clients in this ledger")
        return 0
    sys.stdout.write(render(pa.Table.from_pandas(frame, preserve_index=False), args.format))
    return 0


@command("export")
def cmd_export(args: argparse.Namespace) -> int:
    with _open(args) as recon:
        written = recon.export(args.out, args.format)
    for path in written:
        print(path)
    return 0


@command("demo")
def cmd_demo(args: argparse.Namespace) -> int:
    from recon.demo import run_demo

    print(run_demo(args.db, rebuild=args.rebuild))
    return 0


@command("lab")
def cmd_lab(args: argparse.Namespace) -> int:
    """JupyterLab as a child (see recon.lab): stops with recon, options after ``--`` passed on."""
    from recon.demo import notebooks_dir, project_root
    from recon.lab import lab_command, require_jupyterlab, run_lab

    require_jupyterlab()
    # Rooted at the project so exports under data/ can be linked from the notebooks.
    folder = Path(args.notebooks).resolve() if args.notebooks else notebooks_dir()
    root = project_root() if folder.is_relative_to(project_root()) else folder
    start = folder.relative_to(root).as_posix()
    return run_lab(lab_command(root, start, no_browser=args.no_browser, extra=args.jupyter_args))


@command("migrate")
def cmd_migrate(args: argparse.Namespace) -> int:
    """Copy the ledger to another engine (--to postgresql://… or --to FILE.duckdb) and prove the copy equal."""
    from recon.store import db
    from recon.store.transfer import migrate

    source = db.target(args.db) if args.db else db.default_db_path()
    report = migrate(source, db.target(args.to), args.user)
    print("\n".join(report.lines()))
    return 0


@command("app")
def cmd_app(args: argparse.Namespace) -> int:
    """The workbench as a web page (Voilà over the same recon.ui views); the demo ledger when there is none."""
    from recon.lab import launch_app

    if args.db:
        os.environ["RECON_DB"] = str(args.db)
    return launch_app(no_browser=args.no_browser, extra=args.voila_args)


def _known_user(args: argparse.Namespace) -> None:
    """Refuse an unknown ``--user`` before any command runs (a dry run too, and commands added later).

    The library checks the user of every change itself; this makes sure a command that
    only reads (``era --dry-run``) refuses an unknown user as well. ``load`` has its own
    rule (the first load into an empty ledger creates the users).
    """
    user = getattr(args, "user", None)
    if not user or args.command == "load" or not hasattr(args, "db"):
        return
    from recon.services import Recon

    with Recon.open(args.db) as recon:
        recon.user(user)


def _extra_commands(sub: Any) -> None:
    """Commands of the remittance and reports parts, when present."""
    try:
        from recon.remit import cli as remit_cli
    except ImportError:
        return
    for name, fn in remit_cli.register(sub).items():
        COMMANDS[name] = fn


# -------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recon", description="Insurance-payment reconciliation for billing analysts")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_db(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument(
            "--db", help="ledger: a file, or postgresql://… on a server (default: $RECON_DB or data/recon.duckdb)"
        )
        return p

    def with_format(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--format", choices=FORMATS, default="table")
        return p

    p = with_db(sub.add_parser("load", help="load a practice from a CSV folder or .xlsx"))
    p.add_argument("source", type=Path)
    p.add_argument(
        "--user",
        default=os.environ.get("RECON_USER") or None,
        help="who loads: an admin of the ledger (default $RECON_USER); the first load into an empty ledger "
        "needs none and creates the first admin from users.csv",
    )

    p = with_db(sub.add_parser("pay", help="record an insurance payment (Accept Payment → Insurance Payment)"))
    p.add_argument("client")
    p.add_argument("--user", required=True)
    p.add_argument("--payer", required=True, help="payer id or exact name; one of the client's providers")
    p.add_argument("--method", required=True, help="insurance | insurance-check | insurance-eft-ach | insurance-card")
    p.add_argument("--amount", help="Total Amount")
    p.add_argument(
        "--invoice",
        action="append",
        metavar="ID[=AMOUNT]",
        help="tick an invoice (pay its open Ins Amt Due) or pay AMOUNT on it; repeatable",
    )
    p.add_argument("--payment-number")
    p.add_argument("--notes")
    p.add_argument("--date", type=_date_arg, help="date received (default today)")
    p.add_argument("--key", help="idempotency key: a replay with the same key records nothing new")
    p.add_argument("--payment-method-token", help="card token from the processor's tokenizer (insurance-card)")
    p.add_argument(
        "--confirm-other-payer",
        action="store_true",
        help="record on a ticked invoice whose Ins Amt Due is owed by another payer (refused without it)",
    )
    p.add_argument(
        "--eob",
        action="append",
        metavar="INVOICE:KEY=AMOUNT,...",
        help="a paper EOB's details for one invoice, recorded as a manual adjudication; keys: allowed, "
        "deductible (PR-1), coinsurance (PR-2), copay (PR-3) and adjustments by code (co45, co253, co97, "
        "oa23, ...), e.g. I1:allowed=80,co45=20,deductible=10,coinsurance=5,copay=0; repeatable",
    )

    p = with_db(sub.add_parser("void", help="void a payment by a reversing entry"))
    p.add_argument("payment_id")
    p.add_argument("--user", required=True)
    p.add_argument("--reason", required=True)

    p = with_format(with_db(sub.add_parser("ledger", help="a client's ledger")))
    p.add_argument("client")
    p = with_format(with_db(sub.add_parser("payments", help="payments (a client's, or all)")))
    p.add_argument("client", nargs="?")
    p = with_format(with_db(sub.add_parser("clients", help="list or search clients")))
    p.add_argument("search", nargs="?")

    p = with_db(sub.add_parser("export", help="export the ledger to CSV, Excel or Parquet"))
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--format", choices=("csv", "xlsx", "parquet"))

    p = with_db(sub.add_parser("demo", help="build the demo ledger, record a few payments, summarise"))
    p.add_argument("--rebuild", action="store_true", help="start the demo ledger afresh")

    p = with_db(sub.add_parser("migrate", help="copy the ledger to PostgreSQL (or back to a file), proving it equal"))
    p.add_argument("--to", required=True, help="an empty target: postgresql://… (libpq URI) or a new FILE.duckdb")
    p.add_argument("--user", default=os.environ.get("RECON_USER") or None, help="who copies (Billing permission)")

    p = sub.add_parser("lab", help="open JupyterLab on the notebooks (options after -- go to JupyterLab)")
    p.add_argument("--notebooks", help="folder (default: the project's notebooks/)")
    p.add_argument("--no-browser", action="store_true")
    p.add_argument("jupyter_args", nargs=argparse.REMAINDER, metavar="-- JUPYTERLAB-OPTIONS")

    p = sub.add_parser("app", help="the workbench as a web page: clients, ledger, ERA batch, reports (Voila)")
    p.add_argument("--db", default=None, help="ledger file (default $RECON_DB, else the demo ledger data/recon.duckdb)")
    p.add_argument("--no-browser", action="store_true")
    p.add_argument("voila_args", nargs=argparse.REMAINDER, metavar="-- VOILA-OPTIONS")

    _extra_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _known_user(args)
        return COMMANDS[args.command](args)
    except ReconError as exc:
        print(f"recon: error: {_scrub(str(exc), args)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("recon: interrupted; nothing partial was saved", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: one line for the analyst, the details in a log
        if os.environ.get("RECON_DEBUG"):
            raise
        log = _write_crash_log(args)
        # With the ledger encrypted, an exception's text may quote patient data: name its type only.
        said = "" if os.environ.get("RECON_DB_KEY") else _scrub((str(exc).splitlines() or [""])[0], args)
        print(
            f"recon: internal error: {type(exc).__name__}: {said}; nothing partial was saved; details in {log}",
            file=sys.stderr,
        )
        return 3


def _scrub(text: str, args: argparse.Namespace | None) -> str:
    """No server password in anything recon prints or logs (the URI masked, any password replaced)."""
    from recon.store.pg import is_postgres, scrub

    for uri in (getattr(args, "db", None), getattr(args, "to", None), os.environ.get("RECON_DB")):  # --to: migrate
        if is_postgres(uri):
            text = scrub(text, uri)
    return text


def _write_crash_log(args: argparse.Namespace | None = None) -> Path:
    """The last internal error's traceback, in the temp folder (for whoever fixes the bug).

    With an encrypted ledger (``RECON_DB_KEY``) a message or a value in it may be PHI,
    which must not reach a disk in plain text: the log then holds only the exception
    types and code locations (file, line, function), and says so.
    """
    import tempfile
    import traceback

    path = Path(tempfile.gettempdir()) / "recon-last-error.log"
    if os.environ.get("RECON_DB_KEY"):
        path.write_text(_bare_traceback(sys.exc_info()[1]))
    else:
        path.write_text(_scrub(traceback.format_exc(), args))
    return path


def _bare_traceback(exc: BaseException | None) -> str:
    """Each exception of the chain (oldest first): its type and the code locations it passed, nothing else."""
    import traceback

    chain: list[BaseException] = []
    while exc is not None and all(exc is not seen for seen in chain):
        chain.append(exc)
        exc = exc.__cause__ if exc.__cause__ is not None else (None if exc.__suppress_context__ else exc.__context__)
    lines = [
        "The ledger is encrypted (RECON_DB_KEY): this log holds only the exception types and code locations, "
        "not their messages, source lines or any values.",
    ]
    for err in reversed(chain):
        lines.append("Traceback (most recent call last):")
        frames = traceback.extract_tb(err.__traceback__)
        lines += [f'  File "{f.filename}", line {f.lineno}, in {f.name}' for f in frames]
        lines.append(f"{type(err).__module__}.{type(err).__qualname__}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
