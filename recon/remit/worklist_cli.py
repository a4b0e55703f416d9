"""``recon worklist match|appeal|write-off|bill-client``: work the exceptions of posted remittances.

The same actions as :mod:`recon.remit.worklist` (and the notebook's worklist), from the
command line: each needs the Billing permission, is one transaction with its audit
entry, and a refusal prints one line and exits 1 with nothing written. Credit balances
(kind ``overpayment``) are worked with ``recon overpayment ID refund|apply``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from recon.errors import InputError


def _match(args: argparse.Namespace, recon: Any) -> str:
    from recon.money import fmt
    from recon.remit.worklist import match_claim

    pid = match_claim(recon, args.exception_id, args.invoice, args.user, auto_write_off=args.auto_write_off)
    amount = recon.one("SELECT amount FROM payments WHERE payment_id = ?", [pid])[0]
    return f"Matched {args.exception_id} to {args.invoice}: payment {pid} of {fmt(amount)}"


def _denial(action: str) -> Callable[[argparse.Namespace, Any], str]:
    def run(args: argparse.Namespace, recon: Any) -> str:
        from recon.money import fmt
        from recon.remit.worklist import mark_denial

        invoice = getattr(args, "invoice", None)
        if action == "appeal" and invoice:
            raise InputError("--invoice names the invoice of a write-off; an appeal writes nothing to the ledger")
        written = mark_denial(recon, args.exception_id, action, args.reason, args.user, invoice_id=invoice)
        if action == "appeal":
            return f"Marked {args.exception_id} appealed"
        parts = ", ".join(f"{inv} {fmt(amount)}" for inv, amount in written)
        return f"Wrote off {args.exception_id}: {parts}"

    return run


def _bill_client(args: argparse.Namespace, recon: Any) -> str:
    from recon.money import fmt
    from recon.remit.worklist import bill_client

    moved = bill_client(recon, args.invoice_id, args.user, args.reason)
    return f"Billed the client {fmt(moved)} of {args.invoice_id} (moved from Ins Amt Due to Client Amt Due)"


ACTIONS: dict[str, Callable[[argparse.Namespace, Any], str]] = {
    "match": _match,
    "appeal": _denial("appeal"),
    "write-off": _denial("write_off"),
    "bill-client": _bill_client,
}


def cmd_worklist(args: argparse.Namespace) -> int:
    """``recon worklist ACTION ...``: one worklist decision, printed as one line."""
    from recon.services import Recon

    with Recon.open(args.db) as recon:
        print(ACTIONS[args.action](args, recon))
    return 0


def register(sub: Any) -> dict[str, Callable[[argparse.Namespace], int]]:
    """Add ``recon worklist`` and its actions to ``sub``."""
    p = sub.add_parser(
        "worklist",
        help="work an exception: match a held claim or line, appeal or write off a denial, bill the client",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")

    def common(q: argparse.ArgumentParser) -> argparse.ArgumentParser:
        q.add_argument("--db", help="ledger file (default: $RECON_DB or data/recon.duckdb)")
        q.add_argument("--user", required=True, help="who decides (needs Billing)")
        return q

    q = common(actions.add_parser("match", help="post a held claim's (or held line's) money to an invoice"))
    q.add_argument("exception_id", metavar="EXCEPTION_ID", help="the exception's id (recon exceptions)")
    q.add_argument("--invoice", required=True, help="the invoice the held claim or line pays")
    q.add_argument(
        "--auto-write-off",
        metavar="CODES",
        help="CARCs written off as Ins Adjusted, e.g. CO-45,CO-253 (default: $RECON_AUTO_WRITE_OFF)",
    )
    q = common(actions.add_parser("appeal", help="mark a denial appealed (status only)"))
    q.add_argument("exception_id", metavar="EXCEPTION_ID")
    q.add_argument("--reason", required=True, help="why (kept with the denial and in the audit log)")
    q = common(actions.add_parser("write-off", help="write off a denial's open insurer amount"))
    q.add_argument("exception_id", metavar="EXCEPTION_ID")
    q.add_argument("--reason", required=True, help="why (kept with the denial and in the audit log)")
    q.add_argument("--invoice", help="the invoice to write off when the denied claim matched none")
    q = common(
        actions.add_parser("bill-client", help="move patient responsibility waiting on a next payer to the client")
    )
    q.add_argument("invoice_id", metavar="INVOICE")
    q.add_argument("--reason", required=True, help="why the next payer will not pay it (kept in the audit log)")
    return {"worklist": cmd_worklist}
