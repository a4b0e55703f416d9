"""``recon credits`` (the credit-balance report) and ``recon overpayment`` (refund or apply one).

Credit balances are kept out of A/R aging (:func:`recon.reports.ar_aging`); this is
where they are seen and worked. Each credit is the worklist item ``overpayment``
(also listed by ``recon exceptions``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from recon.reports import CREDIT_BALANCE_COLUMNS


def cmd_credits(args: argparse.Namespace) -> int:
    """``recon credits [CLIENT]``: overpaid invoices and unapplied credit, with the payments behind them."""
    from recon.output import render
    from recon.reports import credit_items_sql
    from recon.services import Recon

    with Recon.open(args.db) as recon:
        where, params = "TRUE", []
        if args.client:
            recon.client(args.client)
            where, params = "client_id = ?", [args.client]
        table = recon.rows(
            f"""SELECT exception_id, client_id, client, source, invoice_id, service_date, responsibility, payer_id,
                       due, paid, credit, payments, payment_id, remittance_id
                FROM ({credit_items_sql()}) WHERE {where}
                ORDER BY client_id, source, service_date, invoice_id, payment_id""",
            params,
        )
    sys.stdout.write(render(table, args.format, CREDIT_BALANCE_COLUMNS if args.format == "table" else None))
    return 0


def cmd_overpayment(args: argparse.Namespace) -> int:
    """``recon overpayment ID refund|apply``: work one credit balance (needs Billing)."""
    from recon.errors import InputError
    from recon.money import fmt, parse_amount
    from recon.remit.worklist import apply_overpayment, refund_overpayment
    from recon.services import Recon

    amount = parse_amount(args.amount, "--amount") if args.amount is not None else None
    with Recon.open(args.db) as recon:
        if args.action == "refund":
            if args.to:
                raise InputError("--to names the invoice of an apply; a refund goes back to the payer")
            rid = refund_overpayment(
                recon,
                args.credit_id,
                args.user,
                args.reason,
                amount=amount,
                payer=args.payer,
                method=args.method,
                refunded_on=args.date,
            )
            paid = recon.one(
                "SELECT -amount, coalesce(payer_id, 'the client') FROM payments WHERE payment_id = ?", [rid]
            )
            print(f"Refunded {fmt(paid[0])} of {args.credit_id} to {paid[1]}: refund entry {rid}")
            return 0
        if not args.to:
            raise InputError("apply: give --to INVOICE, the open invoice of the same client to apply the credit to")
        moved = apply_overpayment(recon, args.credit_id, args.to, args.user, args.reason, amount=amount)
    parts = ", ".join(f"{pid} {fmt(a)}" for pid, a in moved)
    print(f"Applied {fmt(sum(a for _, a in moved))} of {args.credit_id} to {args.to} (from {parts})")
    return 0


def register(sub: Any) -> dict[str, Callable[[argparse.Namespace], int]]:
    from recon.cli import _date_arg
    from recon.output import FORMATS

    p = sub.add_parser("credits", help="credit balances: overpaid invoices and unapplied credit, per client")
    p.add_argument("client", nargs="?")
    p.add_argument("--db", help="ledger file (default: $RECON_DB or data/recon.duckdb)")
    p.add_argument("--format", choices=FORMATS, default="table")
    p = sub.add_parser("overpayment", help="work a credit balance: refund it to the payer, or apply it to an invoice")
    p.add_argument("credit_id", metavar="ID", help="the credit's id (recon credits / recon exceptions)")
    p.add_argument("action", choices=("refund", "apply"))
    p.add_argument("--db", help="ledger file (default: $RECON_DB or data/recon.duckdb)")
    p.add_argument("--user", required=True)
    p.add_argument("--reason", required=True, help="why (kept with the credit and in the audit log)")
    p.add_argument("--to", metavar="INVOICE", help="apply: the open invoice of the same client")
    p.add_argument("--amount", help="default: the whole credit (apply: at most what is open on --to)")
    p.add_argument("--payer", help="refund: whose money, when several payers' payments stand on the invoice")
    p.add_argument("--method", default="insurance-check", help="refund: how it is paid back (default insurance-check)")
    p.add_argument("--date", type=_date_arg, help="refund: date of the refund (default today)")
    return {"credits": cmd_credits, "overpayment": cmd_overpayment}
