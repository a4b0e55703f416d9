"""ERA reports and export on real postings: denials by CARC and payer, reconciliation status.

Two hand-written 835s (``era_files``) are posted through ``post_remittances``; the
expected numbers are written out here, to the cent.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from recon import reports
from recon.remit.deposits import load_deposits
from recon.remit.post import post_remittances
from recon.remit.reconcile import worklist
from recon.remit.worklist import mark_denial
from recon.services import Recon
from tests.deposits.era_files import AETNA_MARCH, BCBS_MARCH, write_835

D = Decimal


@pytest.fixture
def posted(recon: Recon, tmp_path: Path) -> Recon:
    files = [write_835(tmp_path / "aet.835", AETNA_MARCH, 1), write_835(tmp_path / "bcbs.835", BCBS_MARCH, 2)]
    report = post_remittances(recon, files, "ana")
    assert [f.status for f in report.files] == ["posted", "posted"], [f.message for f in report.files]
    return recon


def denial_id(recon: Recon, claim_id: str) -> str:
    row = recon.one("SELECT exception_id FROM exceptions WHERE kind = 'denial' AND claim_id = ?", [claim_id])
    assert row is not None
    return str(row[0])


def test_denials_by_reason_and_payer(posted: Recon) -> None:
    mark_denial(posted, denial_id(posted, "I1"), "appeal", "records sent", "ana")
    mark_denial(posted, denial_id(posted, "I4"), "write_off", "past timely filing for appeal", "ana")
    frame = reports.denials_by_reason(posted)
    got = [
        (r.payer_id, r.carc, r.claims, r.denied_amount, r.charge, r.open, r.appealed, r.written_off)
        for r in frame.itertuples()
    ]
    assert got == [
        ("AET", "CO-50", 1, D("150.00"), D("150.00"), 0, 1, 0),
        ("AET", "CO-197", 1, D("120.00"), D("120.00"), 1, 0, 0),
        ("BCBS", "CO-50", 1, D("100.00"), D("100.00"), 0, 0, 1),
    ]
    assert frame.iloc[0]["description"] == "Not deemed a medical necessity by the payer"
    assert isinstance(frame["denied_amount"].dtype, pd.ArrowDtype)  # exact, not float
    march_2 = reports.denials_by_reason(posted, start=date(2026, 3, 1), end=date(2026, 3, 2))
    assert set(march_2["payer_id"]) == {"AET"}


def test_reconciliation_status_numbers(posted: Recon, deposit_file: Callable[..., Path]) -> None:
    load_deposits(
        posted,
        deposit_file(
            "DEP-1,2026-03-03,150.00,AET-TRACE-1,AETNA EFT",
            "DEP-2,2026-03-05,170.00,BCBS-TRACE-7,BCBS EFT",  # BPR02 is 172.50
            "DEP-3,2026-03-05,55.55,,counter deposit",
        ),
        "ana",
    )
    status = reports.reconciliation_status(posted)
    got = [(r.side, r.status, r.count, r.amount, r.difference) for r in status.itertuples()]
    assert got == [
        ("deposits", "matched", 1, D("150.00"), D("0.00")),
        ("deposits", "amount_mismatch", 1, D("170.00"), D("-2.50")),
        ("deposits", "unmatched", 1, D("55.55"), D("0.00")),
        ("remittances", "reconciled", 1, D("150.00"), D("0.00")),
        ("remittances", "amount_mismatch", 1, D("172.50"), D("-2.50")),
        ("remittances", "awaiting_deposit", 0, D("0.00"), D("0.00")),
        ("remittances", "no_payment", 0, D("0.00"), D("0.00")),
    ]
    unmatched = reports.unmatched_deposits(posted)
    assert list(unmatched["deposit_id"]) == ["DEP-3"] and unmatched.iloc[0]["amount"] == D("55.55")
    diffs = reports.amount_differences(posted)
    assert [(r.deposit_id, r.remittance_amount, r.difference) for r in diffs.itertuples()] == [
        ("DEP-2", D("172.50"), D("-2.50"))
    ]
    assert reports.remittances_awaiting_deposit(posted).empty
    # the worklist carries both sides
    kinds = sorted(worklist(posted)["kind"])
    assert kinds == ["amount_mismatch", "denial", "denial", "denial", "unmatched_claim", "unmatched_deposit"]


def test_remittance_awaiting_deposit_and_late_deposit(
    recon: Recon, tmp_path: Path, deposit_file: Callable[..., Path]
) -> None:
    # the bank's list arrives first: nothing to match yet
    load_deposits(recon, deposit_file("DEP-9,2026-03-06,172.50,,ACH CREDIT"), "ana")
    assert reports.unmatched_deposits(recon)["deposit_id"].tolist() == ["DEP-9"]
    post_remittances(recon, [write_835(tmp_path / "aet.835", AETNA_MARCH, 1)], "ana")
    waiting = reports.remittances_awaiting_deposit(recon, as_of=date(2026, 3, 12))
    assert [(r.trace_number, r.amount, r.days_waiting) for r in waiting.itertuples()] == [
        ("AET-TRACE-1", D("150.00"), 10)
    ]
    # the BCBS 835 posts later: the earlier deposit (no trace, 172.50, 2 days after BPR16) matches it
    post_remittances(recon, [write_835(tmp_path / "bcbs.835", BCBS_MARCH, 2)], "ana")
    row = recon.one("SELECT status, matched_by, remittance_trace FROM deposit_reconciliation")
    assert row == ("matched", "amount_date", "BCBS-TRACE-7")


def test_export_carries_remittances_claims_exceptions_and_deposits(
    posted: Recon, tmp_path: Path, deposit_file: Callable[..., Path]
) -> None:
    load_deposits(posted, deposit_file("DEP-1,2026-03-03,150.00,AET-TRACE-1,AETNA EFT"), "ana")
    written = {p.name: p for p in posted.export(tmp_path / "out")}
    for name in ("remittances", "remittance_claims", "remittance_adjustments", "remittance_plb", "exceptions",
                 "exception_actions", "deposits", "remittance_reconciliation"):  # fmt: skip
        assert f"{name}.csv" in written, sorted(written)

    def rows(name: str) -> list[dict[str, str]]:
        with written[f"{name}.csv"].open() as fh:
            return list(csv.DictReader(fh))

    rem = {r["trace_number"]: r for r in rows("remittances")}
    assert rem["AET-TRACE-1"]["amount"] == "150.00" and rem["AET-TRACE-1"]["reconciliation_status"] == "reconciled"
    assert rem["BCBS-TRACE-7"]["plb_amount"] == "-2.50"
    assert rem["BCBS-TRACE-7"]["reconciliation_status"] == "awaiting_deposit"
    assert [(r["deposit_id"], r["status"], r["amount"]) for r in rows("deposits")] == [("DEP-1", "matched", "150.00")]
    assert len(rows("remittance_claims")) == 6
    kinds = sorted(r["kind"] for r in rows("exceptions"))
    assert kinds == ["denial", "denial", "denial", "unmatched_claim"]
    # Excel too: one sheet per table
    from openpyxl import load_workbook

    book = load_workbook(posted.export(tmp_path / "ledger.xlsx")[0], read_only=True)
    assert {"remittances", "deposits", "exceptions", "remittance_reconciliation"} <= set(book.sheetnames)


def test_plots_draw_without_float_money_in_the_frames(posted: Recon) -> None:
    import matplotlib

    matplotlib.use("agg")
    ax = reports.plot_denials(reports.denials_by_reason(posted))
    assert [t.get_text() for t in ax.get_yticklabels()] == ["CO-50", "CO-197"]
    ax2 = reports.plot_reconciliation(reports.reconciliation_status(posted))
    assert ax2.get_title().startswith("Deposits and remittances")
