"""Who may do what. Every change of money needs the Billing permission."""

from __future__ import annotations

from recon.errors import PermissionDenied
from recon.model import User


def require_billing(user: User, action: str) -> None:
    """Refuse ``action`` unless ``user`` holds the Billing permission."""
    if not user.has_billing:
        raise PermissionDenied(f"{user.name} ({user.user_id}) does not have the Billing permission needed to {action}")
