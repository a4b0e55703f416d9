"""Matching a deposit to remittances by hand, and undoing it (issue 10, manual deposit matching).

A match by hand comes before the automatic rules (trace, amount and date), is
refused on a mismatch unless confirmed with a reason, is audited (append-only rows,
an undo is a reversing row) and is taken into account by every reconciliation view.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from recon import reports
from recon.errors import InputError, NotFound, PaymentRefused, PermissionDenied
from recon.remit.deposit_match import match_deposit, match_history, unmatch_deposit
from recon.remit.deposits import load_deposits
from recon.services import Recon
from tests.conftest import Run

D = Decimal


def status(recon: Recon, deposit_id: str) -> tuple[str, str | None, str | None, Decimal | None]:
    row = recon.one(
        "SELECT status, matched_by, remittance_id, difference FROM deposit_reconciliation WHERE deposit_id = ?",
        [deposit_id],
    )
    assert row is not None
    return row[0], row[1], row[2], row[3]


def remittance_status(recon: Recon, remittance_id: str) -> tuple[str, str | None]:
    row = recon.one("SELECT status, deposit_id FROM remittance_reconciliation WHERE remittance_id = ?", [remittance_id])
    assert row is not None
    return row[0], row[1]


def entries(recon: Recon) -> list[tuple[object, ...]]:
    return recon.execute(
        "SELECT action, deposit_id, remittance_id, confirmed IS NOT NULL, reason, user_id "
        "FROM deposit_match_entries ORDER BY entry_id"
    ).fetchall()


def audits(recon: Recon) -> list[tuple[str, str, dict[str, object]]]:
    rows = recon.execute(
        "SELECT action, entity_id, detail FROM audit_log WHERE action LIKE '%match_deposit' ORDER BY audit_id"
    ).fetchall()
    return [(r[0], r[1], json.loads(r[2])) for r in rows]


@pytest.fixture
def bank(recon: Recon, add_remittance: Callable[..., str], deposit_file: Callable[..., Path]) -> Recon:
    """Remittances R1 100.00, R2 60.00, R3 40.00 (no deposit names them); deposits that no rule matches."""
    add_remittance("R1", "T-100", "100.00", date(2026, 3, 2))
    add_remittance("R2", "T-60", "60.00", date(2026, 3, 2), payer="BCBS")
    add_remittance("R3", "T-40", "40.00", date(2026, 3, 3), payer="UHC")
    add_remittance("R4", "T-77", "77.00", date(2026, 3, 3))
    load_deposits(
        recon,
        deposit_file(
            "D1,2026-03-04,100.00,TYPO-100,ACH mistyped trace",
            "D2,2026-03-20,100.00,,lump sum of two payers",
            "D3,2026-03-04,99.50,,short",
            "D4,2026-03-04,77.00,T-77,trace match",
        ),
        "ana",
    )
    assert status(recon, "D1")[0] == "unmatched"
    assert status(recon, "D4")[:3] == ("matched", "trace", "R4")
    return recon


# ------------------------------------------------------------------ matching
def test_match_one(bank: Recon) -> None:
    done = match_deposit(bank, "D1", ["R1"], "ana")
    assert done.written and done.remittance_ids == ("R1",) and done.difference == D("0.00")
    assert str(done) == "Deposit D1 (100.00) matched by hand to R1 (100.00)"
    assert status(bank, "D1") == ("matched", "manual", "R1", D("0.00"))
    assert remittance_status(bank, "R1") == ("reconciled", "D1")
    assert entries(bank) == [("match", "D1", "R1", False, None, "ana")]


def test_match_several_that_make_the_amount(bank: Recon) -> None:
    done = match_deposit(bank, "D2", ["R3", "R2"], "ana")
    assert done.remittance_ids == ("R2", "R3") and done.remittance_amount == D("100.00")
    row = bank.one(
        "SELECT status, matched_by, remittance_id, payer_id, remittance_amount, difference, reason "
        "FROM deposit_reconciliation WHERE deposit_id = 'D2'"
    )
    assert row == ("matched", "manual", "R2, R3", "BCBS, UHC", D("100.00"), D("0.00"), None)
    assert remittance_status(bank, "R2") == ("reconciled", "D2")
    assert remittance_status(bank, "R3") == ("reconciled", "D2")
    links = bank.execute("SELECT deposit_id, remittance_id, matched_by FROM deposit_links ORDER BY 2").fetchall()
    assert links == [("D2", "R2", "manual"), ("D2", "R3", "manual"), ("D4", "R4", "trace")]
    # the worklist no longer lists D2
    assert "deposit:D2" not in set(bank.frame("SELECT exception_id FROM deposit_exceptions")["exception_id"])


@pytest.mark.parametrize(
    ("deposit", "remittances", "problem"),
    [
        ("D3", ["R1"], "deposit 99.50 but remittance R1 paid 100.00, a difference of -0.50"),
        ("D2", ["R2"], "deposit 100.00 but remittance R2 paid 60.00, a difference of 40.00"),
        ("D1", ["R4"], "remittance R4 is already matched by trace to deposit D4"),
        ("D4", ["R1"], "deposit D4 is already matched by trace to R4"),
    ],
)
def test_a_mismatch_is_refused_without_confirmation(
    bank: Recon, deposit: str, remittances: list[str], problem: str
) -> None:
    before = status(bank, deposit)
    with pytest.raises(PaymentRefused) as err:
        match_deposit(bank, deposit, remittances, "ana")
    assert problem in str(err.value)
    assert "Nothing was written" in str(err.value) and "confirm it with a reason" in str(err.value)
    assert status(bank, deposit) == before
    assert entries(bank) == [] and audits(bank) == []
    with pytest.raises(PaymentRefused):  # a blank reason is no confirmation
        match_deposit(bank, deposit, remittances, "ana", confirm="   ")


def test_a_confirmed_mismatch_is_recorded_with_its_reason(bank: Recon) -> None:
    done = match_deposit(bank, "D3", ["R1"], "ana", confirm="bank fee of 0.50 taken from the ACH")
    assert done.confirmed == ("deposit 99.50 but remittance R1 paid 100.00, a difference of -0.50",)
    assert "reason: bank fee of 0.50 taken from the ACH" in str(done)
    st, how, rid, diff = status(bank, "D3")
    assert (st, how, rid, diff) == ("amount_mismatch", "manual", "R1", D("-0.50"))
    reason = bank.one("SELECT reason FROM deposit_reconciliation WHERE deposit_id = 'D3'")
    assert reason is not None and reason[0].endswith("matched by hand by ana: bank fee of 0.50 taken from the ACH")
    assert bank.one("SELECT confirmed, reason FROM deposit_match_entries") == (
        "deposit 99.50 but remittance R1 paid 100.00, a difference of -0.50",
        "bank fee of 0.50 taken from the ACH",
    )
    # worked: not in the open worklist, but still in the amounts that differ
    assert "deposit:D3" not in set(bank.frame("SELECT exception_id FROM deposit_exceptions")["exception_id"])
    assert list(reports.amount_differences(bank)["deposit_id"]) == ["D3"]
    assert remittance_status(bank, "R1") == ("amount_mismatch", "D3")


def test_a_confirmed_match_takes_a_remittance_from_the_automatic_rules(bank: Recon) -> None:
    match_deposit(bank, "D1", ["R4"], "ana", confirm="D4 is the payer's other account, R4 came in D1")
    assert status(bank, "D1")[:3] == ("amount_mismatch", "manual", "R4")
    st, how, rid, _ = status(bank, "D4")
    assert (st, how, rid) == ("unmatched", None, None)
    reason = bank.one("SELECT reason FROM deposit_reconciliation WHERE deposit_id = 'D4'")
    assert reason == ("remittance R4 (trace T-77) was matched by hand to deposit D1",)


def test_a_confirmed_match_supersedes_an_overlapping_match_by_hand(bank: Recon) -> None:
    match_deposit(bank, "D2", ["R2", "R3"], "ana")
    done = match_deposit(bank, "D3", ["R2", "R3"], "ana", confirm="the bank split the lump sum")
    assert done.superseded == ("D2",)
    assert status(bank, "D2")[0] == "unmatched"
    assert status(bank, "D3")[:3] == ("amount_mismatch", "manual", "R2, R3")
    assert [e[0] for e in entries(bank)] == ["match", "match", "unmatch", "unmatch", "match", "match"]
    assert [a[0] for a in audits(bank)] == ["match_deposit", "unmatch_deposit", "match_deposit"]


def test_replaying_a_match_writes_nothing(bank: Recon) -> None:
    first = match_deposit(bank, "D2", ["R2", "R3"], "ana")
    again = match_deposit(bank, "D2", ["R3", "R2", "R3"], "ana")
    assert first.written and not again.written
    assert str(again) == "Deposit D2 is already matched to R2, R3; nothing was written"
    confirmed = match_deposit(bank, "D3", ["R1"], "ana", confirm="fee")
    assert not match_deposit(bank, "D3", ["R1"], "ana", confirm="fee").written
    assert confirmed.written
    assert len(entries(bank)) == 3 and len(audits(bank)) == 2
    # what the rules matched already is not matched again
    assert not match_deposit(bank, "D4", ["R4"], "ana").written
    assert len(entries(bank)) == 3


# ------------------------------------------------------------------ undo
def test_undo_is_a_reversing_row_and_the_deposit_goes_back_to_the_rules(bank: Recon) -> None:
    match_deposit(bank, "D2", ["R2", "R3"], "ana")
    done = unmatch_deposit(bank, "D2", "ana", "matched the wrong lump sum")
    assert done.written and str(done).startswith("Deposit D2 unmatched from R2, R3")
    assert status(bank, "D2")[0] == "unmatched"
    assert remittance_status(bank, "R2") == ("awaiting_deposit", None)
    assert entries(bank) == [
        ("match", "D2", "R2", False, None, "ana"),
        ("match", "D2", "R3", False, None, "ana"),
        ("unmatch", "D2", "R2", False, "matched the wrong lump sum", "ana"),
        ("unmatch", "D2", "R3", False, "matched the wrong lump sum", "ana"),
    ]
    # undoing again writes nothing; the history keeps every row
    assert not unmatch_deposit(bank, "D2", "ana", "again").written
    assert len(match_history(bank, "D2")) == 4
    # and the deposit can be matched again
    match_deposit(bank, "D2", ["R1"], "ana")
    assert status(bank, "D2")[:3] == ("matched", "manual", "R1")


def test_undo_is_refused_without_a_match_by_hand_or_a_reason(bank: Recon) -> None:
    with pytest.raises(PaymentRefused, match="D4 was matched automatically \\(by trace to R4\\), not by hand"):
        unmatch_deposit(bank, "D4", "ana", "wrong")
    with pytest.raises(PaymentRefused, match="Deposit D1 is not matched"):
        unmatch_deposit(bank, "D1", "ana", "wrong")
    match_deposit(bank, "D1", ["R1"], "ana")
    with pytest.raises(InputError, match="reason: give a reason"):
        unmatch_deposit(bank, "D1", "ana", "  ")
    assert status(bank, "D1")[1] == "manual"


def test_needs_billing_a_known_user_and_known_ids(bank: Recon) -> None:
    with pytest.raises(PermissionDenied, match="Billing permission needed to match a bank deposit"):
        match_deposit(bank, "D1", ["R1"], "ben")
    with pytest.raises(NotFound, match="No user 'zed'"):
        match_deposit(bank, "D1", ["R1"], "zed")
    with pytest.raises(NotFound, match="No deposit 'D9'"):
        match_deposit(bank, "D9", ["R1"], "ana")
    with pytest.raises(NotFound, match="No remittance 'R9'"):
        match_deposit(bank, "D1", ["R1", "R9"], "ana")
    with pytest.raises(InputError, match="give the remittance"):
        match_deposit(bank, "D1", [" "], "ana")
    match_deposit(bank, "D1", ["R1"], "ana")
    with pytest.raises(PermissionDenied, match="needed to undo a deposit match"):
        unmatch_deposit(bank, "D1", "ben", "wrong")
    assert len(entries(bank)) == 1


# ------------------------------------------------------------------ views and audit
def test_reports_before_and_after(bank: Recon) -> None:
    def snapshot() -> tuple[list[str], list[str], list[str], list[tuple[str, str, int, Decimal, Decimal]]]:
        status = [
            (r.side, r.status, r.count, r.amount, r.difference)
            for r in reports.reconciliation_status(bank).itertuples()
        ]
        return (
            sorted(reports.unmatched_deposits(bank)["deposit_id"]),
            sorted(reports.remittances_awaiting_deposit(bank, as_of=date(2026, 3, 10))["remittance_id"]),
            sorted(reports.amount_differences(bank)["deposit_id"]),
            status,
        )

    unmatched, awaiting, differ, st = snapshot()
    assert (unmatched, awaiting, differ) == (["D1", "D2", "D3"], ["R1", "R2", "R3"], [])
    assert ("deposits", "unmatched", 3, D("299.50"), D("0.00")) in st
    match_deposit(bank, "D2", ["R2", "R3"], "ana")
    match_deposit(bank, "D3", ["R1"], "ana", confirm="bank fee")
    unmatched, awaiting, differ, st = snapshot()
    assert (unmatched, awaiting, differ) == (["D1"], [], ["D3"])
    assert st == [
        ("deposits", "matched", 2, D("177.00"), D("0.00")),
        ("deposits", "amount_mismatch", 1, D("99.50"), D("-0.50")),
        ("deposits", "unmatched", 1, D("100.00"), D("0.00")),
        ("remittances", "reconciled", 3, D("177.00"), D("0.00")),
        ("remittances", "amount_mismatch", 1, D("100.00"), D("-0.50")),
        ("remittances", "awaiting_deposit", 0, D("0.00"), D("0.00")),
        ("remittances", "no_payment", 0, D("0.00"), D("0.00")),
    ]
    unmatch_deposit(bank, "D2", "ana", "wrong")
    unmatched, awaiting, differ, _ = snapshot()
    assert (unmatched, awaiting, differ) == (["D1", "D2"], ["R2", "R3"], ["D3"])


def test_a_confirmed_mismatch_over_several_remittances_counts_its_difference_once(bank: Recon) -> None:
    match_deposit(bank, "D3", ["R2", "R3"], "ana", confirm="fee")
    rows = bank.execute(
        "SELECT remittance_id, status, deposit_id, difference FROM remittance_reconciliation "
        "WHERE deposit_id = 'D3' ORDER BY remittance_id"
    ).fetchall()
    assert rows == [("R2", "amount_mismatch", "D3", D("-0.50")), ("R3", "amount_mismatch", "D3", None)]
    reason = bank.one("SELECT reason FROM deposit_reconciliation WHERE deposit_id = 'D3'")
    assert reason == ("deposit 99.50 but remittances R2, R3 paid 100.00 together, a difference of -0.50, "
                      "matched by hand by ana: fee",)  # fmt: skip


def test_every_action_is_audited(bank: Recon) -> None:
    match_deposit(bank, "D3", ["R1"], "ana", confirm="bank fee")
    unmatch_deposit(bank, "D3", "ana", "wrong remittance")
    got = audits(bank)
    assert [(a, e) for a, e, _ in got] == [("match_deposit", "D3"), ("unmatch_deposit", "D3")]
    match, undo = got[0][2], got[1][2]
    assert match["remittance_ids"] == ["R1"] and match["reason"] == "bank fee"
    assert match["deposit_amount"] == "99.50" and match["remittance_amount"] == "100.00"
    assert match["confirmed"] == ["deposit 99.50 but remittance R1 paid 100.00, a difference of -0.50"]
    assert undo == {"match_id": match["match_id"], "remittance_ids": ["R1"], "reason": "wrong remittance"}
    who = bank.execute("SELECT DISTINCT user_id FROM audit_log WHERE action LIKE '%match_deposit'").fetchall()
    assert who == [("ana",)]


def test_a_ledger_of_the_previous_version_opens_and_matches(db: Path, tmp_path: Path) -> None:
    """A ledger made before the table existed gets it on open (CREATE TABLE IF NOT EXISTS)."""
    with Recon.open(db) as recon:
        recon.execute("DROP VIEW deposit_exceptions")
        recon.execute("DROP VIEW remittance_reconciliation")
        recon.execute("DROP VIEW deposit_reconciliation")
        recon.execute("DROP VIEW deposit_links")
        recon.execute("DROP VIEW deposit_auto_matches")
        recon.execute("DROP VIEW manual_deposit_matches")
        recon.execute("DROP TABLE deposit_match_entries")
        recon.execute("DELETE FROM meta WHERE key = 'schema'")
        recon.execute("DROP TABLE schema_migrations")  # made before versioned migrations
    with Recon.open(db) as recon:
        assert recon.one("SELECT count(*) FROM deposit_match_entries") == (0,)
        assert recon.one("SELECT count(*) FROM deposit_reconciliation") == (0,)


# ------------------------------------------------------------------ CLI
@pytest.fixture
def ledger(db: Path, tmp_path: Path) -> Path:
    with Recon.open(db) as recon:
        for rid, trace, amount in (("R1", "T-100", "100.00"), ("R2", "T-60", "60.00"), ("R3", "T-40", "40.00")):
            recon.execute(
                """INSERT INTO remittances (remittance_id, payer_id, trace_number, payment_method, amount,
                       plb_amount, paid_on, file_name, posted_at, user_id, unmatched_amount, claims)
                   VALUES (?, 'AET', ?, 'ACH', ?, 0, DATE '2026-03-02', 'x.835', now()::TIMESTAMP, 'ana', 0, 0)""",
                [rid, trace, D(amount)],
            )
        path = tmp_path / "bank.csv"
        path.write_text(
            "deposit_id,deposit_date,amount,trace_number,description\n"
            "D1,2026-03-20,100.00,,lump\nD2,2026-03-04,99.00,,short\n"
        )
        load_deposits(recon, path, "ana")
    return db


def test_cli_match_several_and_undo(cli: Callable[..., Run], ledger: Path) -> None:
    db = str(ledger)
    run = cli("deposits", "--db", db, "--match", "D1", "--to", "R2", "--to", "R3", "--user", "ana")
    assert (run.code, run.out, run.err) == (0, "Deposit D1 (100.00) matched by hand to R2, R3 (100.00)\n", "")
    again = cli("deposits", "--db", db, "--match", "D1", "--to", "R3", "--to", "R2", "--user", "ana")
    assert again.code == 0 and again.out == "Deposit D1 is already matched to R2, R3; nothing was written\n"
    listed = cli("deposits", "--db", db, "--format", "csv", "--status", "matched")
    assert '"D1",2026-03-20,100.00,,"matched","manual","R2, R3"' in listed.out
    undo = cli("deposits", "--db", db, "--unmatch", "D1", "--reason", "wrong lump sum", "--user", "ana")
    assert undo.code == 0 and undo.out.startswith("Deposit D1 unmatched from R2, R3")
    with Recon.open(ledger) as recon:
        assert [e[0] for e in entries(recon)] == ["match", "match", "unmatch", "unmatch"]
        assert status(recon, "D1")[0] == "unmatched"


def test_cli_mismatch_needs_confirm(cli: Callable[..., Run], ledger: Path) -> None:
    db = str(ledger)
    refused = cli("deposits", "--db", db, "--match", "D2", "--to", "R1", "--user", "ana")
    assert refused.code == 1 and refused.out == ""
    assert refused.err == (
        "recon: error: Deposit D2 was not matched: deposit 99.00 but remittance R1 paid 100.00, a difference of "
        "-1.00. Nothing was written; if this is right, confirm it with a reason\n"
    )
    done = cli("deposits", "--db", db, "--match", "D2", "--to", "R1", "--user", "ana", "--confirm", "bank fee")
    assert done.code == 0 and "confirmed: deposit 99.00 but remittance R1 paid 100.00" in done.out
    assert done.out.rstrip().endswith("reason: bank fee")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--match", "D1", "--to", "R1"], "give --user"),
        (["--match", "D1", "--user", "ana"], "give --to REMITTANCE_ID"),
        (["--to", "R1", "--user", "ana"], "--to: goes with --match DEPOSIT_ID"),
        (["--unmatch", "D1", "--user", "ana"], "give --reason TEXT"),
        (["--unmatch", "D1", "--user", "ana", "--reason", "x", "--to", "R1"], "takes --reason TEXT, not --to"),
        (["--match", "D1", "--unmatch", "D1", "--user", "ana"], "not both"),
        (["--match", "D1", "--to", "R1", "--user", "ana", "--status", "matched"], "not with --load"),
        (["--confirm", "why"], "--confirm goes with --match"),
        (["--match", "D1", "--to", "R1", "--user", "ben"], "does not have the Billing permission"),
        (["--match", "D1", "--to", "R9", "--user", "ana"], "No remittance 'R9'"),
        (["--unmatch", "D1", "--user", "ana", "--reason", "x"], "Deposit D1 is not matched"),
    ],
)
def test_cli_refusals_are_one_line(cli: Callable[..., Run], ledger: Path, argv: list[str], message: str) -> None:
    run = cli("deposits", "--db", str(ledger), *argv)
    assert run.code == 1 and run.out == ""
    assert run.err.startswith("recon: error: ") and message in run.err and run.err.count("\n") == 1
    with Recon.open(ledger) as recon:
        assert entries(recon) == []


def test_the_export_carries_the_matches_by_hand(bank: Recon, tmp_path: Path) -> None:
    match_deposit(bank, "D3", ["R1"], "ana", confirm="=bank fee")
    unmatch_deposit(bank, "D3", "ana", "wrong remittance")
    written = {p.name: p for p in bank.export(tmp_path / "out")}
    with written["deposit_matches.csv"].open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["action"], r["deposit_id"], r["remittance_id"], r["user_id"]) for r in rows] == [
        ("match", "D3", "R1", "ana"),
        ("unmatch", "D3", "R1", "ana"),
    ]
    assert rows[0]["deposit_amount"] == "99.50" and rows[0]["remittance_amount"] == "100.00"
    assert rows[1]["reason"] == "wrong remittance"
    assert not rows[0]["reason"].startswith("=")  # an analyst's text never becomes a formula
