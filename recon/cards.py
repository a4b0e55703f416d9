"""Card payments through the practice's processor (Insurance Credit/Debit Card).

The card itself never reaches Python: the browser-side form tokenizes it with the
processor, and only the token arrives here.
"""

from __future__ import annotations

from typing import Any

from recon.errors import PaymentRefused
from recon.model import PaymentReceipt, PaymentRequest


def charge_card_payment(recon: Any, request: PaymentRequest, user_id: str, *, token: str | None) -> PaymentReceipt:
    """Charge ``token`` for the planned total and record the payment (see the processors part)."""
    raise PaymentRefused("This practice is not enrolled in payment processing; card payments are not available")


def void_any_payment(recon: Any, payment_id: str, user_id: str, reason: str) -> str:
    """Void a payment; a card payment is refunded through its processor first."""
    return recon.void_payment(payment_id, user_id, reason)
