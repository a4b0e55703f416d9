"""The staged text of a claim is the text the values format to, whatever their shape.

The staging formats Decimals with ``str`` and service dates through a cache (both
cheaper than an f-string's ``format``); these tests pin that the text, and so what
DuckDB loads, is the same for amounts and quantities of every exponent the reader
can produce, a negative zero, and repeated or missing dates.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from recon.remit.era835 import Adjustment, Claim, ServiceLine
from recon.remit.stage import NULL, SEP, TextStager


def _claim(number: int, units: Decimal, day: date | None, amount: Decimal) -> Claim:
    adj = Adjustment("CO", "45", amount)
    line = ServiceLine("HC", "90791", ("HO", "GT"), Decimal("80.00"), Decimal("46.40"), units, day, (adj,), 20)
    return Claim(
        f"INV{number}",
        "1",
        Decimal("80.00"),
        Decimal("46.40"),
        Decimal("-0.00"),
        "PCN1",
        "DOE, JANE",
        "M1",
        day,
        (adj,),
        (line,),
        10,
    )


def test_staged_text_is_what_format_gives_each_value() -> None:
    values = [
        (Decimal("1.00"), date(2023, 1, 2), Decimal("33.60")),
        (Decimal("0.125"), date(2023, 1, 2), Decimal("-12.00")),
        (Decimal("1E-8"), None, Decimal("0.00")),
        (Decimal("123456789012345"), date(1999, 12, 31), Decimal("9999999999999999.99")),
    ]
    claims = [_claim(k, *v) for k, v in enumerate(values, start=1)]
    stager = TextStager(None, private=True)
    stager.add_claims(1, claims)
    lines = stager.lines["s_line"]
    rows = stager.lines["s_claim"]
    cas = stager.lines["s_cas"]
    for k, (claim, (units, day, amount)) in enumerate(zip(claims, values, strict=True), start=1):
        assert rows[k - 1] == SEP.join(
            [str(k), "1", str(k), claim.claim_id, "1", "80.00", "46.40", "-0.00", "PCN1", "DOE, JANE", "1"]
        )
        expected_day = NULL if day is None else f"{day}"
        assert lines[k - 1] == SEP.join([str(k), "1", "90791", "HO:GT", "80.00", "46.40", f"{units}", "", expected_day])
        assert cas[2 * k - 2] == SEP.join([str(2 * k - 1), str(k), "0", "CO", "45", f"{amount}"])
        assert cas[2 * k - 1] == SEP.join([str(2 * k), str(k), "1", "CO", "45", f"{amount}"])
    stager.close()
