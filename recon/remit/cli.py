"""The remittance commands of ``recon``: validate, era, remittances, exceptions (and deposits).

``recon.cli`` calls :func:`register` when this module exists. Each part keeps its
command functions in its own module (``era_cli`` for posting, ``deposits`` for the
bank side) and is listed here, so the parts can change without touching each other.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

Command = Callable[[argparse.Namespace], int]


def cmd_validate(args: argparse.Namespace) -> int:
    """``recon validate FILE... [--strict]``: read, check envelopes and balancing, no ledger."""
    from recon.remit.validate import format_report, validate_file

    failed = 0
    for path in args.files:
        report = validate_file(path, strict=args.strict)
        print(format_report(report))
        failed += not report.ok
    return 1 if failed else 0


def register(sub: Any) -> dict[str, Command]:
    """Add the remittance subcommands to ``sub``; returns name → function."""
    from recon.remit import era_cli

    commands: dict[str, Command] = {}
    p = sub.add_parser("validate", help="check 835 files (envelopes, line/claim/file balancing) without a ledger")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    p.add_argument("--strict", action="store_true", help="also the implementation guide through pyx12, if installed")
    commands["validate"] = cmd_validate
    commands.update(era_cli.register(sub))
    from recon.remit import credits_cli

    commands.update(credits_cli.register(sub))
    from recon.remit import worklist_cli

    commands.update(worklist_cli.register(sub))
    try:
        from recon.remit.deposits import register_deposits
    except ImportError:  # pragma: no cover - the bank side is optional
        pass
    else:
        commands.update(register_deposits(sub))
    return commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run: recon validate|era|remittances|exceptions ...")
