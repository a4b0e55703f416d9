"""recon: insurance-payment reconciliation for behavioral-health billing analysts.

The public entry point is :class:`Recon` (``Recon.open(db)``); notebooks, widgets
and the CLI all go through it.

The names below are imported on first use (PEP 562), so a command that needs no
ledger (``recon validate``) does not pay for importing DuckDB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from recon.errors import ReconError

if TYPE_CHECKING:
    from recon.model import InvoicePick, PaymentMethod, PaymentRequest
    from recon.services import Recon

__all__ = ["InvoicePick", "PaymentMethod", "PaymentRequest", "Recon", "ReconError"]

_LAZY = {
    "InvoicePick": "recon.model",
    "PaymentMethod": "recon.model",
    "PaymentRequest": "recon.model",
    "Recon": "recon.services",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'recon' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
