from __future__ import annotations

from decimal import Decimal

import pytest

from recon.errors import InvalidAmount
from recon.money import fmt, parse_amount, total
from recon.store.sql import bind, literal


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12", "12.00"),
        ("12.3", "12.30"),
        ("-4.50", "-4.50"),
        ("1,234.56", "1234.56"),
        ("$5", "5.00"),
        (".5", "0.50"),
        ("1.000", "1.00"),
    ],
)
def test_parse(text: str, expected: str) -> None:
    assert fmt(parse_amount(text)) == expected


@pytest.mark.parametrize("bad", ["", "abc", "1.005", "12.345", "1e3", "NaN", "1.2.3", 0.1, True])
def test_refused(bad: object) -> None:
    with pytest.raises(InvalidAmount):
        parse_amount(bad, "fee")


def test_total_refuses_floats_and_is_exact() -> None:
    assert total([Decimal("33.33")] * 3) == Decimal("99.99")
    with pytest.raises(TypeError):
        total([Decimal("1"), 0.5])


def test_sql_literals_cannot_break_out() -> None:
    assert literal("O'Brien") == "'O''Brien'"
    import duckdb

    con = duckdb.connect()
    assert con.execute(bind("SELECT ?, ?", ["x'); DROP TABLE y; --", Decimal("1.10")])).fetchone() == (
        "x'); DROP TABLE y; --",
        Decimal("1.10"),
    )
