"""BAI2 bank files: exactly the deposits, and nothing that is not one (issue 13).

The files directly in ``data/`` are written by hand for these tests (the public
samples are in ``data/public/``, checked by ``test_bai2_public.py``); each has correct
control totals and record counts, worked out by hand:
``same_account_twice.bai`` (one account listed twice, details without a bank
reference, two identical credits), ``not_deposits.bai`` (sweeps, interest, a loan,
returns, a total and a debit beside two deposits), ``wrapped_trace.txt`` (a trace
wrapped onto an 88, ``190/`` continued by ``88,500000``, several records on one
line, an account number with a space, a ``.txt`` name), ``currencies_and_groups.bai``
(CAD and GBP credits, a test-only group) and ``funds_types.bai`` (funds types S, D
and V in 03 and 16 records).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from recon.errors import FileFormatError, InputError
from recon.remit import bai2
from recon.remit.deposits import _ID, deposit_type_codes, load_deposits, read_bank_file
from recon.services import Recon
from tests.conftest import read_csv

DATA = Path(__file__).parent / "data"


def copy(name: str, tmp_path: Path, as_name: str | None = None, text: str | None = None) -> Path:
    path = tmp_path / (as_name or name)
    path.write_text(text if text is not None else (DATA / name).read_text())
    return path


def count(recon: Recon, table: str) -> int:
    row = recon.one(f"SELECT count(*) FROM {table}")
    assert row is not None
    return int(row[0])


# ------------------------------------------------------------------ reader
def test_a_field_complete_before_slash_is_followed_by_the_88s_fields() -> None:
    text = (
        "01,B,P,260301,0700,1,,,2/\n02,P,B,1,260301,,,2/\n"
        "03,9,USD,010,100,,,190/\n88,500,2,0/\n"  # 190/ then 88,500 is type 190 with amount 500
        "16,165,1000,S,500,300,200/\n88,REF77,CUST9/\n88,TEXT HERE\n"  # S amounts, then refs, then text
        "49,1600,6/\n98,1600,1,8/\n99,1600,1,10/\n"
    )
    parsed = bai2.parse(text, "x.bai")
    (d,) = parsed.details
    assert (d.type_code, d.amount, d.funds_type) == ("165", 1000, "S")
    assert (d.bank_reference, d.customer_reference, d.text) == ("REF77", "CUST9", "TEXT HERE")
    assert parsed.total == 1600  # 100 + 500 + 1000: the S availability amounts are not in the totals


def test_text_runs_on_across_88s_and_line_breaks() -> None:
    text = (
        "01,B,P,260301,0700,1,,,2/\n02,P,B,1,260301,,,2/\n03,9,,,,,/\n"
        "16,165,1000,Z,R1,,PAYMENT FROM AET TRN*1*AB\n88,CD12*1060054\\\n"  # no "/": the 88 runs on, nothing added
        "16,169,2000,Z,R2,,FIRST LINE/\n88,SECOND LINE\n"  # text ended with "/": the 88 is a new line
        "16,169,3000,Z,R3,,BROKEN\nLINE/\n"  # a bare line break inside a record is not a record
        "49,6000,7/\n98,6000,1,9/\n99,6000,1,11/\n"
    )
    texts = [d.text for d in bai2.parse(text, "x.bai").details]
    assert texts == ["PAYMENT FROM AET TRN*1*ABCD12*1060054\\", "FIRST LINE SECOND LINE", "BROKENLINE"]


def test_control_totals_and_counts_of_the_hand_made_files() -> None:
    for path in sorted(p for p in DATA.iterdir() if p.is_file()):  # data/public/: test_bai2_public.py
        parsed = bai2.parse(path.read_text(), path.name)
        assert parsed.details, path.name
    parsed = bai2.parse((DATA / "funds_types.bai").read_text(), "funds_types.bai")
    assert parsed.total == 1670000 and parsed.accounts == 1 and parsed.groups == 1


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("49,175000,4/", "49,175100,4/", "same_account_twice.bai:6: 49 account trailer: control total 1,751.00 but"),
        ("49,175000,4/", "49,175000,5/", "same_account_twice.bai:6: 49 account trailer: says 5 records in the account"),
        (
            "98,322500,2,11/",
            "98,322500,3,11/",
            ":12: 98 group trailer: says 3 accounts in the group but the file has 2",
        ),
        ("99,322500,1,13/", "99,322501,1,13/", ":13: 99 file trailer: control total 3,225.01 but"),
        ("99,322500,1,13/\n", "", "the file ends before the 99 file trailer"),
        ("16,169,25000,", "16,169,250.00,", ":5: 16 detail amount: '250.00' is not an amount"),
        ("16,169,25000,Z", "16,169,25000,X", ":5: 16 detail: funds type 'X' is not one of 0, 1, 2, V, S, D, Z"),
        ("02,PRACTICE,BANKID,1,260304", "02,PRACTICE,BANKID,1,260399", ":2: as-of date: '260399' is not a date"),
        (",,,2/\n02", ",,,1/\n02", ":1: 01 file header: version '1'; recon reads BAI2 files (version 2"),
        ("49,147500,5/\n", "", ":11: a 98 group trailer where a 16 detail or 49 account trailer was expected"),
    ],
)
def test_a_file_that_does_not_add_up_is_refused_whole(
    recon: Recon, tmp_path: Path, old: str, new: str, message: str
) -> None:
    text = (DATA / "same_account_twice.bai").read_text()
    assert old in text
    path = copy("same_account_twice.bai", tmp_path, text=text.replace(old, new))
    with pytest.raises(FileFormatError) as err:
        load_deposits(recon, path, "ana")
    assert message in str(err.value), str(err.value)
    assert str(err.value).startswith("same_account_twice.bai")
    assert count(recon, "deposits") == count(recon, "other_bank_activity") == 0


# ------------------------------------------------------------------ which details are deposits
def test_duplicate_looking_details_are_kept_and_a_reordered_file_is_the_same(recon: Recon, tmp_path: Path) -> None:
    path = copy("same_account_twice.bai", tmp_path)
    load = load_deposits(recon, path, "ana")
    assert (load.added, load.total) == (5, Decimal("2225.00"))  # the two equal 500.00 credits are two deposits
    assert count(recon, "deposits") == 5
    lines = path.read_text().splitlines()
    # the same details in another order (within each account, and the accounts swapped)
    reordered = [*lines[:2], lines[6], lines[9], lines[8], lines[7], lines[10], lines[2], lines[4], lines[3]]
    reordered += [lines[5], *lines[11:]]
    again = copy("x", tmp_path, "reordered.bai", "\n".join(reordered) + "\n")
    assert load_deposits(recon, again, "ana").unchanged == 5
    assert count(recon, "deposits") == 5


def test_only_deposit_codes_are_deposits_and_the_rest_is_kept_apart(
    recon: Recon, tmp_path: Path, add_remittance: Callable[..., str]
) -> None:
    # a BCBS remittance of exactly the ZBA sweep's amount, paid the same day
    add_remittance("R-BCBS", "BCBS-NOTRACE", "150.00", date(2026, 3, 9), payer="BCBS")
    add_remittance("R-BCBS2", "BCBS7788", "300.00", date(2026, 3, 9), payer="BCBS")
    path = copy("not_deposits.bai", tmp_path)
    load = load_deposits(recon, path, "ana")
    assert load.total == Decimal("390.00") and len(load.deposit_ids) == 2
    assert load.status == {"matched": 1, "unmatched": 1}
    assert "9 other bank activity kept apart" in str(load)
    other = {
        r[0]: r[1:] for r in recon.execute("SELECT type_code, kind, amount, reason FROM other_bank_activity").fetchall()
    }
    assert sorted(other) == ["140", "257", "258", "261", "266", "275", "354", "475", "706"]
    assert other["275"][:2] == ("credit", Decimal("150.00"))
    assert other["706"][0] == "loan" and other["475"][0] == "debit"
    assert "total" in other["140"][2]
    status = dict(recon.execute("SELECT remittance_id, status FROM remittance_reconciliation").fetchall())
    assert status == {"R-BCBS": "awaiting_deposit", "R-BCBS2": "reconciled"}  # the sweep matched nothing
    written = {p.name: p for p in recon.export(tmp_path / "out")}
    exported = read_csv(written["other_bank_activity.csv"].read_text())
    assert len(exported) == 9 and {r["amount"] for r in exported if r["type_code"] == "275"} == {"150.00"}
    audits = count(recon, "audit_log")
    again = load_deposits(recon, path, "ana")
    assert (again.added, again.other_added) == (0, 0)
    assert count(recon, "other_bank_activity") == 9 and count(recon, "audit_log") == audits


def test_the_deposit_codes_are_configurable(recon: Recon, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECON_DEPOSIT_TYPE_CODES", "165, 275")
    bank = read_bank_file(copy("not_deposits.bai", tmp_path))
    assert sorted(d.description.split()[0] for d in bank.deposits if d.description) == ["165", "275"]
    assert deposit_type_codes("166;169") == {"166", "169"}
    for codes, message in [
        ("140", "140 is a total (Total ACH credits), not one credit"),
        ("475", "475 is a debit code (Check paid), not a credit"),
        ("16x", "'16x' is not a BAI2 type code"),
        (",", "no type codes given"),
    ]:
        with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
            deposit_type_codes(codes)
    monkeypatch.setenv("RECON_DEPOSIT_TYPE_CODES", "475")
    with pytest.raises(InputError, match=r"^RECON_DEPOSIT_TYPE_CODES: 475 is a debit code"):
        load_deposits(recon, tmp_path / "not_deposits.bai", "ana")


def test_other_currencies_and_test_groups_are_not_deposits(recon: Recon, tmp_path: Path) -> None:
    load = load_deposits(recon, copy("currencies_and_groups.bai", tmp_path), "ana")
    assert load.total == Decimal("400.00") and load.deposit_ids == ("5550001-20260314-C1",)
    rows = recon.execute("SELECT currency, amount, reason FROM other_bank_activity ORDER BY currency").fetchall()
    assert [(c, a) for c, a, _ in rows] == [
        ("CAD", Decimal("250.00")),
        ("GBP", Decimal("125.00")),
        ("USD", Decimal("99.00")),
    ]
    assert "in CAD: recon matches deposits in USD only" in rows[0][2]
    assert "test only" in rows[2][2]


# ------------------------------------------------------------------ continuations, lines, names, dates
def test_a_wrapped_trace_is_read_whole_and_matches(
    recon: Recon, tmp_path: Path, add_remittance: Callable[..., str]
) -> None:
    add_remittance("R1", "EFT20260311001", "1234.56", date(2026, 3, 1))
    # the file's name ends in .txt: it is BAI2 by its content, not read as CSV
    load = load_deposits(recon, copy("wrapped_trace.txt", tmp_path), "ana")
    assert load.status == {"matched": 1, "unmatched": 1}
    rows = recon.execute(
        "SELECT deposit_id, deposit_date, amount, trace_number FROM deposits ORDER BY amount"
    ).fetchall()
    assert [r[3] for r in rows] == ["EFT20260311001", None]
    assert [r[2] for r in rows] == [Decimal("1234.56"), Decimal("3765.44")]
    # the wire is value-dated 2026-03-13; the deposit date is the group's as-of date
    assert {r[1] for r in rows} == {date(2026, 3, 11)}
    # an account number with a space still gives valid ids
    assert all(_ID.match(r[0]) for r in rows) and rows[1][0] == "4400_1234-20260311-W99871"


def test_funds_types_decide_the_fields(tmp_path: Path) -> None:
    bank = read_bank_file(copy("funds_types.bai", tmp_path))
    got = [(d.deposit_id, d.amount, d.trace_number, d.deposit_date) for d in bank.deposits]
    assert got == [
        ("5550001-20260319-LB1", Decimal("600.00"), None, date(2026, 3, 19)),
        ("5550001-20260319-A1", Decimal("1400.00"), "TRC-1", date(2026, 3, 19)),
        ("5550001-20260319-D1", Decimal("1000.00"), None, date(2026, 3, 19)),
    ]
    assert [(a.type_code, a.amount) for a in bank.other] == [("475", Decimal("50.00"))]


def test_bai2_is_recognised_by_content(recon: Recon, tmp_path: Path) -> None:
    as_csv = copy("funds_types.bai", tmp_path, "statement.csv")
    assert len(read_bank_file(as_csv).deposits) == 3
    csv_as_txt = copy("x", tmp_path, "deposits.txt", "deposit_id,deposit_date,amount\nD1,2026-03-01,5.00\n")
    assert [d.deposit_id for d in read_bank_file(csv_as_txt).deposits] == ["D1"]
    not_bai = copy("x", tmp_path, "bank.bai", "deposit_id,deposit_date,amount\nD1,2026-03-01,5.00\n")
    with pytest.raises(
        FileFormatError, match=r"^bank\.bai:1: not a BAI2 file: it does not start with a 01 file header"
    ):
        load_deposits(recon, not_bai, "ana")


# ------------------------------------------------------------------ CLI
def test_dry_run_lists_the_files_would_be_deposits_and_matches(
    db: Path, tmp_path: Path, cli: Callable[..., object]
) -> None:
    with Recon.open(db) as recon:
        recon.execute(
            "INSERT INTO remittances (remittance_id, payer_id, trace_number, amount, plb_amount, paid_on, "
            "posted_at, user_id, unmatched_amount, claims) "
            "VALUES ('R1', 'AET', 'EFT20260311001', 1234.56, 0, DATE '2026-03-10', now()::TIMESTAMP, 'ana', 0, 0)"
        )
    path = copy("wrapped_trace.txt", tmp_path)
    run = cli("deposits", "--db", db, "--load", path, "--user", "ana", "--dry-run", "--format", "csv")
    assert run.code == 0, run.err  # type: ignore[attr-defined]
    rows = read_csv(run.out)  # type: ignore[attr-defined]
    assert [(r["amount"], r["status"], r["remittance_id"]) for r in rows] == [
        ("1234.56", "matched", "R1"),
        ("3765.44", "unmatched", ""),
    ]
    assert "Would load deposits" in run.err  # type: ignore[attr-defined]
    with Recon.open(db) as recon:
        assert count(recon, "deposits") == 0
    run = cli("deposits", "--db", db, "--load", copy("not_deposits.bai", tmp_path), "--user", "ana", "--activity",
              "--format", "csv")  # fmt: skip
    assert run.code == 0, run.err  # type: ignore[attr-defined]
    activity = read_csv(run.out)  # type: ignore[attr-defined]
    assert len(activity) == 9 and {r["type_code"] for r in activity} >= {"275", "354", "706"}
    run = cli("deposits", "--db", db, "--load", path, "--user", "ana", "--deposit-codes", "140")
    assert run.code == 1 and "140 is a total" in run.err  # type: ignore[attr-defined]
