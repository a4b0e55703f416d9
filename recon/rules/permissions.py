"""Who may do what.

Every change of money needs the Billing permission. Loading a practice (which also
creates users and grants their permissions) needs the Admin permission, except the
very first load into a ledger that has no users yet: that load is how the first
admin comes to exist. Every action is by a user of the ledger; an unknown user is
refused before anything is read or written (:meth:`recon.services.Recon.user`).
"""

from __future__ import annotations

from collections.abc import Iterable

from recon.errors import PermissionDenied
from recon.model import BILLING, User

ADMIN = "admin"
"""Loads practices and manages users (grants Billing or Admin through users.csv)."""


def is_admin(user: User) -> bool:
    return ADMIN in user.permissions


def require_billing(user: User, action: str) -> None:
    """Refuse ``action`` unless ``user`` holds the Billing permission."""
    if not user.has_billing:
        raise PermissionDenied(f"{user.name} ({user.user_id}) does not have the Billing permission needed to {action}")


def require_admin(user: User, action: str) -> None:
    """Refuse ``action`` unless ``user`` holds the Admin permission."""
    if not is_admin(user):
        raise PermissionDenied(
            f"{user.name} ({user.user_id}) does not have the admin permission needed to {action}; "
            "ask an admin of this ledger"
        )


def parse_permissions(text: str | None) -> frozenset[str]:
    """``billing;reports`` as stored in users.permissions (lower case, blanks dropped)."""
    return frozenset(p.strip().lower() for p in (text or "").split(";") if p.strip())


def granted(records: Iterable[tuple[str, str, str]], permission: str) -> list[str]:
    """The user ids among ``(user_id, name, permissions)`` records that hold ``permission``."""
    return [r[0] for r in records if permission in parse_permissions(r[2])]


__all__ = ["ADMIN", "BILLING", "granted", "is_admin", "parse_permissions", "require_admin", "require_billing"]
