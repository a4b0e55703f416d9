"""Order independence, proven: a claim's remittances in every order leave the same ledger.

A claim's life here is four remittances with generated amounts: the primary's original
(UHC, CLP07 U1), its reversal, its correction (U2) and the secondary's adjudication (AET).
All 24 orders are posted at once: invoice K of the practice gets the remittances in the
K-th order, so step n posts the n-th remittance of every order (one file per payer). After
every step the invariants hold; at the end every invoice shows the same amounts, the ones
billing practice gives.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as strat

from recon.cli import main
from recon.remit.post import post_remittances
from recon.reports import overpayment_worklist_sql
from recon.services import Recon
from recon.store import queries
from tests.conftest import PRACTICE, write_practice
from tests.era.conftest import assert_invariant
from tests.era.edi import claim, st, write_835

ORDERS = list(itertools.permutations(("original", "reversal", "correction", "secondary")))
PAYER = {
    "original": ("UnitedHealthcare", "87726"),
    "reversal": ("UnitedHealthcare", "87726"),
    "correction": ("UnitedHealthcare", "87726"),
    "secondary": ("AETNA", "60054"),
}


def money(cents: int) -> str:
    return str(Decimal(cents).scaleb(-2))


def practice(tmp: Path, fee: int) -> Path:
    tables = {
        "users.csv": PRACTICE["users.csv"],
        "insurance_providers.csv": PRACTICE["insurance_providers.csv"],
        "clients.csv": [
            ("client_id", "first_name", "last_name", "date_of_birth", "copay"),
            ("P1", "Pat", "Two", "1980-01-01", "0"),
        ],
        "client_insurance.csv": [
            ("client_id", "payer_id", "member_id", "priority", "copay"),
            ("P1", "UHC", "U1", "primary", ""),
            ("P1", "AET", "A1", "secondary", ""),
        ],
        "invoices.csv": [PRACTICE["invoices.csv"][0]]
        + [
            (f"K{k:02d}", "P1", f"2026-01-{k + 1:02d}", "90837", "1", money(fee), "", "", "", "")
            for k in range(len(ORDERS))
        ],
    }
    db = tmp / "orders.duckdb"
    assert main(["load", str(write_practice(tmp / "orders", tables)), "--db", str(db)]) == 0
    return db


def split(draw: strat.DrawFn, total: int) -> tuple[int, int, int]:
    """paid, CO-45, PR adding up to ``total`` cents."""
    paid = draw(strat.integers(0, total))
    co = draw(strat.integers(0, total - paid))
    return paid, co, total - paid - co


@strat.composite
def lives(draw: strat.DrawFn) -> dict[str, object]:
    fee = draw(strat.integers(1, 40_000))
    return {"fee": fee, "original": split(draw, fee), "correction": split(draw, fee), "secondary": split(draw, fee)}


def remittance(kind: str, inv: str, when: str, life: dict[str, object]) -> tuple[list[list[str]], int]:
    """The claim of ``kind`` for invoice ``inv`` and the money it carries (cents)."""
    fee = int(life["fee"])  # type: ignore[call-overload]
    if kind == "secondary":
        paid, other, pr = life["secondary"]  # type: ignore[misc]
        cas = [c for c in (["OA", "23", money(other)], ["PR", "2", money(pr)]) if c[2] != "0.00"]
        return claim(
            inv,
            "2",
            money(fee),
            money(paid),
            money(pr),
            pcn=f"A-{inv}",
            lines=[("HC:90837", money(fee), money(paid), when, cas)],
        ), paid
    source = "correction" if kind == "correction" else "original"
    paid, co, pr = life[source]  # type: ignore[misc]
    sign = -1 if kind == "reversal" else 1
    cas = [c for c in (["CO", "45", money(sign * co)], ["PR", "2", money(sign * pr)]) if c[2] not in ("0.00", "-0.00")]
    return claim(
        inv,
        "22" if kind == "reversal" else "1",
        money(sign * fee),
        money(sign * paid),
        "" if kind == "reversal" else money(pr),
        pcn=f"{'U2' if kind == 'correction' else 'U1'}-{inv}",
        lines=[("HC:90837", money(sign * fee), money(sign * paid), when, cas)],
    ), sign * paid


def invariants(recon: Recon) -> None:
    assert_invariant(recon)  # each remittance: payments + held − matched − PLB = BPR02
    for pid, amount, applied, unapplied in recon.execute(
        f"SELECT payment_id, amount, applied, unapplied FROM ({queries.payments_sql()})"
    ).fetchall():
        assert applied + unapplied == amount, pid
        assert unapplied == 0, f"{pid}: an ERA payment is allocated whole"
    flagged = {
        r[0]
        for r in recon.execute(
            f"SELECT invoice_id FROM ({overpayment_worklist_sql()}) WHERE status = 'open'"
        ).fetchall()
    }
    for inv, fee, cdue, ipaid, adj in recon.execute(
        f"SELECT invoice_id, fee, client_amt_due, ins_amt_paid, ins_adjusted FROM ({queries.ledger_sql()})"
    ).fetchall():
        assert ipaid + adj + cdue <= fee or inv in flagged, f"{inv}: paid + adjusted + client due above the fee"


@settings(max_examples=4, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(life=lives())
def test_every_order_leaves_the_same_ledger(tmp_path_factory, life: dict[str, object]) -> None:
    tmp = tmp_path_factory.mktemp("orders")
    db = practice(tmp, int(life["fee"]))  # type: ignore[call-overload]
    with Recon.open(db) as recon:
        for step in range(4):
            files = []
            for payer in ("UnitedHealthcare", "AETNA"):
                claims, total = [], 0
                for k, order in enumerate(ORDERS):
                    kind = order[step]
                    if PAYER[kind][0] != payer:
                        continue
                    segs, cents = remittance(kind, f"K{k:02d}", f"202601{k + 1:02d}", life)
                    claims.append(segs)
                    total += cents
                if claims:
                    ident = PAYER["secondary"] if payer == "AETNA" else PAYER["original"]
                    files.append(
                        write_835(
                            tmp / f"s{step}_{payer}.835",
                            [st("0001", amount=money(total), trace=f"T{step}{payer[:3]}", payer=ident, claims=claims)],
                        )
                    )
            for path in files:
                out = post_remittances(recon, [path], "ana").files[0]
                assert out.status == "posted", out.message
            invariants(recon)
        rows = recon.execute(f"""SELECT fee, client_amt_due, client_amt_paid, ins_amt_due, ins_amt_paid,
                                        ins_adjusted, balance FROM ({queries.ledger_sql()})""").fetchall()
    fee = Decimal(int(life["fee"])).scaleb(-2)  # type: ignore[call-overload]
    c_paid, c_co, _ = (Decimal(v).scaleb(-2) for v in life["correction"])  # type: ignore[attr-defined]
    s_paid, _, s_pr = (Decimal(v).scaleb(-2) for v in life["secondary"])  # type: ignore[attr-defined]
    # the standing adjudications: the correction and the secondary, which is last: its PR is the client's
    expected = (fee, s_pr, Decimal(0), fee - s_pr, c_paid + s_paid, c_co, fee - c_paid - s_paid - c_co)
    assert set(rows) == {expected}, life
