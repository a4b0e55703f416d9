"""recon: insurance-payment reconciliation for behavioral-health billing analysts.

The public entry point is :class:`Recon` (``Recon.open(db)``); notebooks, widgets
and the CLI all go through it.
"""

from recon.errors import ReconError
from recon.model import InvoicePick, PaymentMethod, PaymentRequest
from recon.services import Recon

__all__ = ["InvoicePick", "PaymentMethod", "PaymentRequest", "Recon", "ReconError"]
