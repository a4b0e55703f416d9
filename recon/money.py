"""Money: the one place a Decimal amount is built.

Every amount in recon is a ``Decimal`` with exactly two places. Floats are refused
outright (``0.1 + 0.2`` is not money) and so is a third decimal place: a payment of
``12.345`` is an input error, not something to round.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from recon.errors import InvalidAmount

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

# ASCII digits only ("\d" would also take '٣' or '３'); commas only between groups of three.
_AMOUNT = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")
_GROUPED = re.compile(r"[+-]?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]*)?")
MAX_TEXT = 40
"""The longest amount text read: an amount below the limit never needs more (a longer one is refused unread)."""
LIMIT = Decimal("10000000000000000")


def parse_amount(value: object, field: str = "amount") -> Decimal:
    """Turn user or file input into an exact two-place Decimal.

    Accepts ``Decimal``, ``int`` and strings such as ``"12"``, ``"12.3"``,
    ``"-4.50"`` or ``"1,234.56"``; refuses floats, blanks, words and a third
    decimal place (``"1.005"``) with an :class:`InvalidAmount` naming ``field``.
    """
    if isinstance(value, bool | float):
        raise InvalidAmount(field, repr(value), "an exact amount such as 12.30 (not a float)")
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, str):
        text = value.strip().lstrip("$")
        if text.startswith("-$"):
            text = "-" + text[2:]
        if len(text) > MAX_TEXT:
            raise InvalidAmount(field, _cut(value), f"an amount of at most {MAX_TEXT} characters such as 12.30")
        if "," in text and _GROUPED.fullmatch(text):
            text = text.replace(",", "")
        if not _AMOUNT.fullmatch(text):
            raise InvalidAmount(field, value, "an amount such as 12.30")
        try:
            amount = Decimal(text)
        except InvalidOperation as exc:  # pragma: no cover - regex guards this
            raise InvalidAmount(field, value, "an amount such as 12.30") from exc
    else:
        raise InvalidAmount(field, repr(value), "an amount such as 12.30")
    if not amount.is_finite():
        raise InvalidAmount(field, str(value), "a finite amount")
    # the size first: quantizing a huge Decimal would overflow the context's precision
    if abs(amount) >= LIMIT:
        raise InvalidAmount(field, _cut(str(value)), "an amount below 10,000,000,000,000,000")
    if amount.as_tuple().exponent < -2 and amount != amount.quantize(CENT):  # type: ignore[operator]
        raise InvalidAmount(field, _cut(str(value)), "at most two decimal places")
    return amount.quantize(CENT)


def _cut(text: str, limit: int = 60) -> str:
    """A bad value as a message quotes it: its first ``limit`` characters."""
    return text if len(text) <= limit else text[:limit] + "…"


def money(value: object, field: str = "amount") -> Decimal:
    """Short alias of :func:`parse_amount` for code that builds amounts from trusted text."""
    return parse_amount(value, field)


def from_cents(minor: int) -> Decimal:
    """An amount a bank file gives in cents (BAI2: ``123456`` is 1234.56), exactly."""
    return Decimal(int(minor)).scaleb(-2)


def fmt(amount: Decimal | None) -> str:
    """Print an amount with exactly two decimals (``"1234.50"``); None prints empty."""
    if amount is None:
        return ""
    return f"{amount.quantize(CENT):.2f}"


def total(amounts: object) -> Decimal:
    """Exact sum of Decimals (``sum`` with a Decimal start, so an empty sum is 0.00)."""
    result = ZERO
    for a in amounts:  # type: ignore[attr-defined]
        if not isinstance(a, Decimal):
            raise TypeError(f"money must be Decimal, got {type(a).__name__}")
        result += a
    return result.quantize(CENT)
