"""Bank deposits: strict loading, idempotent reloads, and matching to remittances.

The matching rules (era-835.md, "Reconciling with the bank"): by trace number
first; without a trace, by exact amount within 5 days of BPR16, only when unique
both ways. Matching is a view, so order of loading does not matter.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from recon.errors import FileFormatError, InputError, PermissionDenied
from recon.remit.deposits import (
    deposit_exceptions,
    deposit_reconciliation,
    load_deposits,
    normalise_trace,
    read_deposits,
    register_deposits,
    remittance_reconciliation,
)
from recon.services import Recon
from tests.conftest import read_csv

HEADER = "deposit_id,deposit_date,amount,trace_number,description"


def status_of(recon: Recon) -> dict[str, tuple[str, str | None]]:
    rows = recon.execute("SELECT deposit_id, status, remittance_id FROM deposit_reconciliation").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def count_deposits(recon: Recon) -> int:
    row = recon.one("SELECT count(*) FROM deposits")
    assert row is not None
    return int(row[0])


# ------------------------------------------------------------------ loading
@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["D1,2026-03-01,100.00,T1,x", "D2,2026-03-01,12.345,T2,"], "deposits_0.csv:3: amount: '12.345' is not valid"),
        (
            ["D1,2026-03-01,100.00,T1,x", "D2,03/40/2026,10.00,,"],
            "deposits_0.csv:3: deposit_date: '03/40/2026' is not a date",
        ),
        (
            ["D1,2026-03-01,-5.00,T1,"],
            "deposits_0.csv:2: amount: '-5.00' is not a deposit; expected an amount above 0.00",
        ),
        (["D1,2026-03-01,0.00,T1,"], "deposits_0.csv:2: amount: '0.00' is not a deposit"),
        ([",2026-03-01,5.00,T1,"], "deposits_0.csv:2: deposit_id: required"),
        (["D 1,2026-03-01,5.00,T1,"], "deposits_0.csv:2: deposit_id: 'D 1' is not a valid id"),
        (["D1,2026-03-01,5.00"], "deposits_0.csv:2: 3 fields; expected 5"),
        (["D1,,5.00,,"], "deposits_0.csv:2: deposit_date: required"),
        (["D1,2026-03-01,abc,,"], "deposits_0.csv:2: amount: 'abc' is not valid"),
        (
            ["D1,2026-03-01,5.00,,", "", "D1,2026-03-02,5.00,,"],
            "deposits_0.csv:4: deposit_id: duplicate id 'D1' with different content than line 2",
        ),
    ],
)
def test_a_bad_row_rejects_the_whole_file(
    recon: Recon, deposit_file: Callable[..., Path], rows: list[str], message: str
) -> None:
    path = deposit_file(*rows)
    with pytest.raises(FileFormatError) as err:
        load_deposits(recon, path, "ana")
    assert str(err.value).startswith(message), str(err.value)
    assert count_deposits(recon) == 0


def test_missing_columns_and_empty_files_are_named(recon: Recon, deposit_file: Callable[..., Path]) -> None:
    with pytest.raises(FileFormatError, match=r"deposits_0.csv:1: missing column\(s\) amount"):
        load_deposits(recon, deposit_file("D1,2026-03-01", header="deposit_id,deposit_date"), "ana")
    with pytest.raises(FileFormatError, match="no deposits in the file"):
        load_deposits(recon, deposit_file(), "ana")
    with pytest.raises(InputError, match="no such file"):
        load_deposits(recon, Path("/nonexistent/deposits.csv"), "ana")


def test_optional_columns_and_us_dates_and_dollar_amounts(recon: Recon, deposit_file: Callable[..., Path]) -> None:
    path = deposit_file('D1,03/05/2026,"$1,234.50"', header="deposit_id,deposit_date,amount")
    load = load_deposits(recon, path, "ana")
    assert load.added == 1 and load.total == Decimal("1234.50")
    row = recon.one("SELECT deposit_date, amount, trace_number, description FROM deposits")
    assert row == (date(2026, 3, 5), Decimal("1234.50"), None, None)


def test_loading_again_changes_nothing(recon: Recon, deposit_file: Callable[..., Path]) -> None:
    path = deposit_file("D1,2026-03-01,100.00,T1,first", "D2,2026-03-02,50.00,,second")
    first = load_deposits(recon, path, "ana")
    audits = recon.one("SELECT count(*) FROM audit_log WHERE action = 'load_deposits'")
    again = load_deposits(recon, path, "ana")
    assert (first.added, first.unchanged) == (2, 0)
    assert (again.added, again.unchanged) == (0, 2)
    assert count_deposits(recon) == 2
    assert recon.one("SELECT count(*) FROM audit_log WHERE action = 'load_deposits'") == audits == (1,)
    # the same deposits under another file name are the same deposits
    renamed = deposit_file("D1,2026-03-01,100.00,T1,first", name="bank_copy.csv")
    assert load_deposits(recon, renamed, "ana").unchanged == 1


def test_same_id_with_other_content_is_refused_and_nothing_is_kept(
    recon: Recon, deposit_file: Callable[..., Path]
) -> None:
    load_deposits(recon, deposit_file("D1,2026-03-01,100.00,T1,"), "ana")
    changed = deposit_file("D9,2026-03-09,9.00,,", "D1,2026-03-01,100.01,T1,")
    with pytest.raises(InputError) as err:
        load_deposits(recon, changed, "ana")
    assert str(err.value).startswith(
        "deposits_1.csv:3: deposit_id: 'D1' is already in the ledger with different content"
    )
    assert "2026-03-01, 100.00, trace T1" in str(err.value)
    assert count_deposits(recon) == 1  # D9 was not kept either


def test_loading_needs_billing_but_a_dry_run_does_not(recon: Recon, deposit_file: Callable[..., Path]) -> None:
    path = deposit_file("D1,2026-03-01,100.00,T1,")
    with pytest.raises(PermissionDenied, match="Billing permission needed to load bank deposits"):
        load_deposits(recon, path, "ben")
    preview = load_deposits(recon, path, "ben", dry_run=True)
    assert preview.dry_run and preview.added == 1 and preview.status == {"unmatched": 1}
    assert count_deposits(recon) == 0
    assert str(preview).startswith("Would load deposits from")


def test_trace_is_taken_from_a_ccd_addenda() -> None:
    assert normalise_trace("TRN*1*12345678*1512345678\\") == "12345678"
    assert normalise_trace("  EFT998  ") == "EFT998"
    assert normalise_trace("") is None


# ----------------------------------------------------------------- matching
def test_trace_match(recon: Recon, add_remittance: Callable[..., str], deposit_file: Callable[..., Path]) -> None:
    add_remittance("R1", "TRACE-1", "100.00", date(2026, 3, 1))
    add_remittance("R2", "TRACE-2", "100.00", date(2026, 3, 1))
    # dates far apart do not matter for a trace match
    load = load_deposits(recon, deposit_file("D1,2026-04-20,100.00,TRACE-2,ACH"), "ana")
    assert load.status == {"matched": 1}
    frame = deposit_reconciliation(recon)
    row = frame.iloc[0]
    assert (row["status"], row["remittance_id"], row["matched_by"]) == ("matched", "R2", "trace")
    assert row["difference"] == Decimal("0.00")
    rem = {r.remittance_id: r for r in remittance_reconciliation(recon).itertuples()}
    assert rem["R2"].status == "reconciled" and rem["R2"].deposit_id == "D1"
    assert (rem["R1"].status == "awaiting_deposit" and rem["R1"].deposit_id is None) or str(
        rem["R1"].deposit_id
    ) == "<NA>"


def test_trace_match_with_another_amount_is_an_amount_mismatch(
    recon: Recon, add_remittance: Callable[..., str], deposit_file: Callable[..., Path]
) -> None:
    add_remittance("R1", "T1", "1010.00", date(2026, 3, 1), payer="BCBS")
    load_deposits(recon, deposit_file("D1,2026-03-02,1000.00,T1,"), "ana")
    row = deposit_reconciliation(recon).iloc[0]
    assert row["status"] == "amount_mismatch" and row["remittance_id"] == "R1"
    assert row["remittance_amount"] == Decimal("1010.00") and row["difference"] == Decimal("-10.00")
    rem = remittance_reconciliation(recon).iloc[0]
    assert rem["status"] == "amount_mismatch" and rem["deposit_id"] == "D1"
    exc = deposit_exceptions(recon)
    assert list(exc["kind"]) == ["amount_mismatch"]
    assert exc.iloc[0]["amount"] == Decimal("-10.00") and exc.iloc[0]["trace_number"] == "T1"
    assert (exc.iloc[0]["payer_id"] == "BCBS" and exc.iloc[0]["claim_id"] is None) or str(
        exc.iloc[0]["claim_id"]
    ) == "<NA>"
    assert "paid 1010.00, a difference of -10.00" in exc.iloc[0]["reason"]


def test_trace_without_remittance_does_not_fall_back_to_amount(
    recon: Recon, add_remittance: Callable[..., str], deposit_file: Callable[..., Path]
) -> None:
    add_remittance("R1", "T1", "100.00", date(2026, 3, 1))
    load_deposits(recon, deposit_file("D1,2026-03-01,100.00,OTHER,"), "ana")
    assert status_of(recon) == {"D1": ("unmatched", None)}
    reason = deposit_exceptions(recon).iloc[0]["reason"]
    assert "no posted remittance has trace OTHER" in reason


def test_amount_and_date_unique_match(
    recon: Recon, add_remittance: Callable[..., str], deposit_file: Callable[..., Path]
) -> None:
    add_remittance("R1", "T1", "250.75", date(2026, 3, 10))
    add_remittance("R2", "T2", "250.75", date(2026, 3, 30))  # same amount, too far
    add_remittance("R3", "T3", "250.76", date(2026, 3, 10))  # a cent off
    load_deposits(
        recon,
        deposit_file(
            "D1,2026-03-15,250.75,,CHECK DEP",  # 5 days after R1: inside the window
            "D2,2026-03-04,250.76,,",  # 6 days before R3: outside
        ),
        "ana",
    )
    frame = deposit_reconciliation(recon)
    got = {r.deposit_id: (r.status, r.remittance_id, r.matched_by) for r in frame.itertuples()}
    assert got["D1"] == ("matched", "R1", "amount_date")
    assert got["D2"][0] == "unmatched"
    assert (
        "no remittance of 250.76 paid within 5 days of 2026-03-04" in frame.set_index("deposit_id").loc["D2", "reason"]
    )


def test_ambiguous_amount_is_not_matched(
    recon: Recon, add_remittance: Callable[..., str], deposit_file: Callable[..., Path]
) -> None:
    # two remittances fit one deposit
    add_remittance("R1", "T1", "80.00", date(2026, 3, 10), payer="AET")
    add_remittance("R2", "T2", "80.00", date(2026, 3, 12), payer="UHC")
    # one remittance fits two deposits
    add_remittance("R3", "T3", "45.00", date(2026, 3, 10))
    load_deposits(recon, deposit_file("D1,2026-03-11,80.00,,", "D2,2026-03-09,45.00,,", "D3,2026-03-11,45.00,,"), "ana")
    assert status_of(recon) == {"D1": ("unmatched", None), "D2": ("unmatched", None), "D3": ("unmatched", None)}
    reasons = dict(zip(*[deposit_exceptions(recon)[c] for c in ("deposit_id", "reason")], strict=True))
    assert "2 remittances of 80.00 were paid within 5 days of 2026-03-11: ambiguous" in reasons["D1"]
    assert "also fits another deposit: ambiguous" in reasons["D2"]
    assert {r.status for r in remittance_reconciliation(recon).itertuples()} == {"awaiting_deposit"}


def test_a_remittance_claimed_by_trace_is_not_offered_by_amount(
    recon: Recon, add_remittance: Callable[..., str], deposit_file: Callable[..., Path]
) -> None:
    add_remittance("R1", "T1", "60.00", date(2026, 3, 10))
    add_remittance("R2", "T2", "60.00", date(2026, 3, 10))
    load_deposits(recon, deposit_file("D1,2026-03-10,60.00,T1,", "D2,2026-03-11,60.00,,"), "ana")
    assert status_of(recon) == {"D1": ("matched", "R1"), "D2": ("matched", "R2")}


def test_two_deposits_with_one_trace_match_once(
    recon: Recon, add_remittance: Callable[..., str], deposit_file: Callable[..., Path]
) -> None:
    add_remittance("R1", "T1", "60.00", date(2026, 3, 10))
    load_deposits(recon, deposit_file("D1,2026-03-10,59.00,T1,", "D2,2026-03-11,60.00,T1,"), "ana")
    assert status_of(recon) == {"D1": ("unmatched", None), "D2": ("matched", "R1")}
    reason = deposit_exceptions(recon).set_index("deposit_id").loc["D1", "reason"]
    assert "duplicate: remittance R1 (trace T1) is already matched by deposit D2" in reason
    assert remittance_reconciliation(recon).iloc[0]["deposit_id"] == "D2"


def test_a_trace_used_by_two_payers_is_settled_by_amount(
    recon: Recon, add_remittance: Callable[..., str], deposit_file: Callable[..., Path]
) -> None:
    add_remittance("R1", "SAME", "60.00", date(2026, 3, 10), payer="AET")
    add_remittance("R2", "SAME", "75.00", date(2026, 3, 10), payer="UHC")
    load_deposits(recon, deposit_file("D1,2026-03-10,75.00,SAME,", "D2,2026-03-10,99.00,SAME,"), "ana")
    assert status_of(recon) == {"D1": ("matched", "R2"), "D2": ("unmatched", None)}
    assert "is on 2 remittances of different payers" in deposit_exceptions(recon).iloc[0]["reason"]


def test_deposit_loaded_before_its_remittance_matches_once_it_posts(
    recon: Recon, add_remittance: Callable[..., str], deposit_file: Callable[..., Path]
) -> None:
    load = load_deposits(recon, deposit_file("D1,2026-03-02,100.00,T1,", "D2,2026-03-03,42.00,,"), "ana")
    assert load.status == {"unmatched": 2}
    assert set(deposit_exceptions(recon)["kind"]) == {"unmatched_deposit"}
    add_remittance("R1", "T1", "100.00", date(2026, 3, 1))
    add_remittance("R2", "T2", "42.00", date(2026, 2, 27))
    assert status_of(recon) == {"D1": ("matched", "R1"), "D2": ("matched", "R2")}
    assert len(deposit_exceptions(recon)) == 0
    assert {r.status for r in remittance_reconciliation(recon).itertuples()} == {"reconciled"}


def test_zero_payment_remittance_expects_no_deposit(recon: Recon, add_remittance: Callable[..., str]) -> None:
    add_remittance("R0", "T0", "0.00", date(2026, 3, 1), method="NON")
    assert remittance_reconciliation(recon).iloc[0]["status"] == "no_payment"


# ---------------------------------------------------------------------- BAI2
BAI2 = """01,BANK,PRACTICE,260305,0800,1,,,2/
02,PRACTICE,BANK,1,260305,,USD,2/
03,123456789,USD,,,,/
16,165,10000,Z,BREF1,CREF1,TRN*1*T1*1512345678\\
16,165,7700,Z,BREF2,,HCCLAIMPMT UHC
16,475,500,Z,CHK9,,CHECK PAID
49,18200,5/
98,18200,1,7/
99,18200,1,9/
"""


def test_bai2_credits_become_deposits(recon: Recon, tmp_path: Path, add_remittance: Callable[..., str]) -> None:
    path = tmp_path / "bank.bai2"
    path.write_text(BAI2)
    deps = read_deposits(path)
    assert [(d.deposit_id, d.amount, d.trace_number) for d in deps] == [
        ("123456789-20260305-BREF1", Decimal("100.00"), "T1"),
        ("123456789-20260305-BREF2", Decimal("77.00"), None),
    ]  # the 475 (check paid) is a debit, not a deposit: it is other bank activity
    add_remittance("R1", "T1", "100.00", date(2026, 3, 4))
    add_remittance("R2", "T2", "77.00", date(2026, 3, 3), payer="UHC")
    load = load_deposits(recon, path, "ana")
    assert load.status == {"matched": 2}
    assert load_deposits(recon, path, "ana").unchanged == 2


def test_bai2_with_wrong_control_totals_is_refused(recon: Recon, tmp_path: Path) -> None:
    path = tmp_path / "bad.bai"
    path.write_text(BAI2.replace("49,18200,5/", "49,18300,5/"))
    with pytest.raises(FileFormatError, match=r"^bad\.bai:7: 49 account trailer: control total 183\.00 but"):
        load_deposits(recon, path, "ana")
    assert count_deposits(recon) == 0


# ----------------------------------------------------------------------- CLI
def run_deposits_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``recon deposits`` through the real parser when the remittance CLI is present, else its own."""
    from recon import cli

    parser = cli.build_parser()
    commands = cli.COMMANDS
    choices = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    if "deposits" not in choices:
        parser = argparse.ArgumentParser(prog="recon")
        commands = register_deposits(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["deposits", *argv])
    capsys.readouterr()
    try:
        code = commands["deposits"](args)
    except Exception as exc:  # ReconError: what main() prints
        print(f"recon: error: {exc}", file=__import__("sys").stderr)
        code = 1
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_lists_deposits_in_every_format(db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bank.csv"
    path.write_text(f"{HEADER}\nD1,2026-03-02,100.00,T1,ACH\nD2,2026-03-02,5.10,,\n")
    with Recon.open(db) as recon:
        recon.execute(
            "INSERT INTO remittances (remittance_id, payer_id, trace_number, amount, plb_amount, paid_on, "
            "posted_at, user_id, unmatched_amount, claims) "
            "VALUES ('R1', 'AET', 'T1', 100.00, 0, DATE '2026-03-01', now()::TIMESTAMP, 'ana', 0, 0)"
        )
    code, out, err = run_deposits_cli(capsys, "--db", str(db), "--load", str(path), "--user", "ana", "--format", "csv")
    assert code == 0, err
    assert "2 added" in err and "1 matched" in err
    rows = read_csv(out)
    assert [(r["deposit_id"], r["amount"], r["trace_number"], r["status"]) for r in rows] == [
        ("D1", "100.00", "T1", "matched"),
        ("D2", "5.10", "", "unmatched"),
    ]
    code, out, _ = run_deposits_cli(capsys, "--db", str(db), "--format", "json", "--status", "unmatched")
    assert code == 0 and '"deposit_id": "D2"' in out and '"amount": "5.10"' in out and "D1" not in out
    code, out, _ = run_deposits_cli(capsys, "--db", str(db))
    assert code == 0 and out.splitlines()[0].split()[:5] == [
        "deposit_id",
        "deposit_date",
        "amount",
        "trace_number",
        "status",
    ]
