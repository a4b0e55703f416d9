"""The public BAI2 sample files: exactly the deposits each yields, or a clear refusal (issue 13).

The files in ``data/public/`` are unmodified copies of the samples published with
ministryofjustice/bai2 (MIT) and moov-io/bai2 (Apache-2.0); ``data/public/README.md``
and ``MANIFEST.tsv`` say where each comes from. Every expected value below was worked
out by hand from the file's records, not by running recon's reader: amounts are whole
cents; the account, group and file control totals are the sums of the 03 and 16
amounts (funds-type availability amounts excluded) and the record counts include the
88s and the trailer. A deposit is a 16 detail of a deposit type code in USD, dated
by its group's as-of date; every other detail is other bank activity.

A small independent scan (:func:`scan_details`, a regular expression over the raw
text) cross-checks that no 16 record is lost or double counted. The "variant" tests
change a public file by hand (totals and counts kept right) to exercise what the
public files lack: a trace wrapped onto an 88, identical details, corrected counts.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from recon.errors import FileFormatError
from recon.remit.deposits import DEFAULT_DEPOSIT_CODES, load_deposits, read_bank_file
from recon.services import Recon
from tests.conftest import read_csv

PUBLIC = Path(__file__).parent / "data" / "public"


@dataclass(frozen=True)
class Yields:
    """What a public file yields, worked out by hand."""

    deposits: int
    total: str
    other: dict[str, int] = field(default_factory=dict)
    """Other bank activity: type code -> how many."""
    other_credits: str = "0.00"
    other_debits: str = "0.00"
    currency: str = "USD"
    """The currency of the file's accounts (its other activity)."""
    as_of: tuple[date, ...] = ()
    some: tuple[tuple[str, date, str, str | None], ...] = ()
    """A few deposits: (deposit_id, deposit_date, amount, trace_number)."""


CAD_SAMPLE = Yields(0, "0.00", {"108": 5, "409": 12}, "3200.00", "3200.00", "CAD", (date(2006, 3, 17),))
"""sample1: two listings of one CAD account, 16s value-dated 060316/060317, as-of 060317."""

SAMPLE3 = Yields(
    13, "397.13", {"451": 13}, "0.00", "594.18", "USD", (date(2022, 9, 19),),
    some=(
        ("1111111-20220919-142-25.00", date(2022, 9, 19), "25.00", None),
        ("1111111-20220919-142-1.00", date(2022, 9, 19), "1.00", None),
        ("11111111-20220919-195-138.55", date(2022, 9, 19), "138.55", None),
        ("11111111-20220919-142-0.87", date(2022, 9, 19), "0.87", None),
    ),
)  # fmt: skip
"""sample3: one USD group, 15 accounts (1111111 and 11111111 listed several times), records
several to a line; deposits 142 x12 (25+5+1, 25+6+6, 2.15+1.05, 115.21+47.83+23.47+0.87)
and a 195 wire of 138.55; 451 debits 32.00+307.03+186.51+59.44+9.20."""

GBP_SAMPLE = Yields(0, "0.00", {"699": 4, "399": 1}, "0.89", "27.65", "GBP", (date(2009, 12, 16),))
"""example2: a GBP account, 16s with defaulted funds type and references, text on 88s."""

ACCEPTED: dict[str, Yields] = {
    "moj__account_trailer_amount_blank_example.bai2": Yields(0, "0.00"),
    "moj__example.bai2": Yields(0, "0.00", {"191": 1}, "0.01", "0.00", "GBP", (date(2015, 7, 15),)),
    "moj__example2.bai2": GBP_SAMPLE,
    "moj__nwb_example.bai2": GBP_SAMPLE,
    "moj__svb_us_example.bai2": Yields(
        2,
        "13959.96",
        as_of=(date(2022, 2, 1), date(2022, 2, 2)),
        some=(
            ("1234567890-20220201-172629", date(2022, 2, 1), "4901.96", None),
            ("1234567890-20220202-150675", date(2022, 2, 2), "9058.00", None),
        ),
    ),
    "moov__sample1.txt": CAD_SAMPLE,
    "moov__sample1-btrs.txt": CAD_SAMPLE,
    "moov__data__sample.txt": CAD_SAMPLE,
    "moov__sample2.txt": Yields(
        3,
        "109500.00",
        {"218": 1},
        "200000.00",
        as_of=(date(2004, 6, 20),),
        some=(
            ("0123456789-20040620-115-4500.00", date(2004, 6, 20), "4500.00", None),
            ("9876543210-20040620-115-5000.00", date(2004, 6, 20), "5000.00", None),
            ("4589761203-20040620-195-100000.00", date(2004, 6, 20), "100000.00", None),
        ),
    ),
    "moov__spec-section3.txt": Yields(
        1,
        "15000.00",
        as_of=(date(2004, 6, 20),),
        some=(("0975312468-20040620-DD1620", date(2004, 6, 20), "15000.00", None),),
    ),
    "moov__bai3__x9-bank-header-all-fields.txt": Yields(0, "0.00", {"115": 1}, "250.00", "0.00", "CAD"),
    "moov__bai3__x9-mandatory.txt": Yields(0, "0.00"),
    "moov__bai3__x9-status-summary-detail.txt": Yields(0, "0.00", {"399": 1}, "250.00", "0.00", "CAD"),
    "moov__sample3.txt": SAMPLE3,
    "moov__data__sample3.txt": SAMPLE3,
}

REFUSED: dict[str, str] = {
    # no 01 file header: the first record is "00"
    "moov__sample-parseError.txt": "moov__sample-parseError.txt:1: the file starts with record code '00'; "
    "a BAI2 file starts with a 01 file header",
    # 49: 18650000 stated; 500000 + 70000000 (03) + 1500000 + 10000000 (16s) = 82000000
    "moov__v2__example.txt": "moov__v2__example.txt:8: 49 account trailer: control total 186,500.00 but the "
    "account's 03 and 16 amounts add up to 820,000.00",
    # 49: 299000000 stated; 055 1000000 + 100, 190, 400 and 570 of 99666666 each (across two 88s) = 399666664
    "moov__bai3__x9-03-split-summary.txt": "moov__bai3__x9-03-split-summary.txt:6: 49 account trailer: control "
    "total 2,990,000.00 but the account's 03 and 16 amounts add up to 3,996,666.64",
    # 49 counts 4 records; the account has 03, 16, 88, 88, 49
    "moov__bai3__x9-continuation-16.txt": "moov__bai3__x9-continuation-16.txt:7: 49 account trailer: says 4 "
    "records in the account but the file has 5",
    # 49 of account 107049932: -1260161341762 stated; 060 6865898 + 100 1912 + 16s 60000 + 143500 + 928650
    "moov__sample4-continuations-newline-delimited.txt": "moov__sample4-continuations-newline-delimited.txt:22: "
    "49 account trailer: control total -12,601,613,417.62 but the account's 03 and 16 amounts add up to 79,999.60",
    "moov__sample5-issue113.txt": "moov__sample5-issue113.txt:22: 49 account trailer: control total "
    "-12,601,613,417.62 but the account's 03 and 16 amounts add up to 79,999.60",
}

_DETAIL = re.compile(r"(?:^|/)\s*16,(\d{3}),(\d*),", re.MULTILINE)


def scan_details(text: str) -> list[tuple[str, int]]:
    """Every 16 record's type code and amount, found independently of recon's reader."""
    return [(code, int(amount or 0)) for code, amount in _DETAIL.findall(text)]


def money(cents: int) -> Decimal:
    return Decimal(cents).scaleb(-2).quantize(Decimal("0.01"))


def test_every_public_file_is_accounted_for() -> None:
    files = {p.name for p in PUBLIC.iterdir() if p.is_file() and p.suffix in (".txt", ".bai2")}
    assert files == set(ACCEPTED) | set(REFUSED)
    manifest = [line.split("\t") for line in (PUBLIC / "MANIFEST.tsv").read_text().splitlines()[1:]]
    assert {row[0] for row in manifest} == files
    assert all((PUBLIC / row[0]).stat().st_size == int(row[5]) for row in manifest)


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_a_public_file_yields_exactly_its_deposits(name: str) -> None:
    want = ACCEPTED[name]
    bank = read_bank_file(PUBLIC / name)
    assert bank.bai2
    assert len(bank.deposits) == want.deposits
    assert sum((d.amount for d in bank.deposits), Decimal("0.00")) == Decimal(want.total)
    assert Counter(a.type_code for a in bank.other) == Counter(want.other)
    credits = sum((a.amount or Decimal(0) for a in bank.other if a.kind == "credit"), Decimal("0.00"))
    debits = sum((a.amount or Decimal(0) for a in bank.other if a.kind == "debit"), Decimal("0.00"))
    assert (credits, debits) == (Decimal(want.other_credits), Decimal(want.other_debits))
    assert {a.currency for a in bank.other} <= {want.currency}
    if want.as_of:
        assert {d.deposit_date for d in bank.deposits} | {a.as_of_date for a in bank.other} == set(want.as_of)
    got = {d.deposit_id: (d.deposit_date, str(d.amount), d.trace_number) for d in bank.deposits}
    for deposit_id, when, amount, trace in want.some:
        assert got.get(deposit_id) == (when, amount, trace), (deposit_id, sorted(got))
    assert len(got) == len(bank.deposits) and len({a.activity_id for a in bank.other}) == len(bank.other)
    # independently: every 16 record of the file is one deposit or one other entry, to the cent
    scanned = scan_details((PUBLIC / name).read_text())
    assert len(scanned) == len(bank.deposits) + len(bank.other)
    assert money(sum(a for _, a in scanned)) == Decimal(want.total) + credits + debits
    in_usd = want.currency == "USD"
    assert len(bank.deposits) == sum(1 for c, _ in scanned if c in DEFAULT_DEPOSIT_CODES and in_usd)


def test_the_public_deposits_are_those_a_practice_is_paid_by(tmp_path: Path) -> None:
    """Read by hand: which details of the public files are deposits, and why the rest are not."""
    sample2 = read_bank_file(PUBLIC / "moov__sample2.txt")
    (foreign,) = sample2.other  # 218 foreign collection credit, V value date 040622, refs SP4738 / YRC065321
    assert (foreign.activity_id, foreign.amount) == ("4589761203-20040620-218-20000000-SP4738", Decimal("200000.00"))
    assert "customer ref YRC065321" in (foreign.description or "")
    assert "PROCEEDS OF LETTER OF CREDIT FROM THE ARAMCO OIL CO" in (foreign.description or "")
    lockbox = {d.deposit_id: d for d in sample2.deposits}["9876543210-20040620-115-5000.00"]
    assert lockbox.description == "115 Lockbox deposit; LOCK BOX NO.68751"  # S: three availability amounts skipped
    cad_lockbox = read_bank_file(PUBLIC / "moov__bai3__x9-bank-header-all-fields.txt").other[0]
    assert cad_lockbox.type_code == "115" and "in CAD" in cad_lockbox.reason  # a deposit code, but not in USD
    gbp = read_bank_file(PUBLIC / "moj__example2.bai2")
    texts = [a.description for a in gbp.other]
    # the 399's text wraps mid-word over two 88s: "...INTERNATIONAL-5373 CLIE" + "NT SECCY AC TFR"
    assert texts[-1] == "399 Miscellaneous credit; TFR XBANKGO24007680SJ CAT JPY 2 GBPXBANKGO24007680BGC " \
        "INTERNATIONAL-5373 CLIENT SECCY AC TFR"  # fmt: skip
    sample3 = read_bank_file(PUBLIC / "moov__sample3.txt")
    sixes = [d for d in sample3.deposits if d.amount == Decimal("6.00")]
    # two 142s of 6.00 in one account, no bank reference, different text: two deposits
    assert len(sixes) == 2 and len({d.deposit_id for d in sixes}) == 2
    assert {("ACH_SETL" in (d.description or ""), "VSN_SETL" in (d.description or "")) for d in sixes} == {
        (True, False),
        (False, True),
    }
    wire = {d.deposit_id: d for d in sample3.deposits}["11111111-20220919-195-138.55"]
    assert "900 METRO CENTER BLVD" in (wire.description or "") and "FOSTER CITY" in (wire.description or "")


# ------------------------------------------------------------------ variants made by hand
def variant(tmp_path: Path, name: str, replace: list[tuple[str, str]], as_name: str | None = None) -> Path:
    text = (PUBLIC / name).read_text()
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / (as_name or name)
    path.write_text(text)
    return path


def test_a_trace_wrapped_onto_an_88_is_read_whole(tmp_path: Path) -> None:
    # svb_us_example with the first ACH credit's text split over two 88s mid-trace (one more record)
    path = variant(tmp_path, "moj__svb_us_example.bai2", [
        ("88,SOME PAYMENT ACH OFFSET\n49,138884258,7/\n98,138884258,1,9/",
         "88,SOME PAYMENT TRN*1*EFT2022\n88,0201001*1512345678\\\n49,138884258,8/\n98,138884258,1,10/"),
        ("99,282030196,2,20\n", "99,282030196,2,21\n"),
    ])  # fmt: skip
    bank = read_bank_file(path)
    assert [(d.deposit_id, d.trace_number) for d in bank.deposits] == [
        ("1234567890-20220201-172629", "EFT20220201001"),
        ("1234567890-20220202-150675", None),
    ]


def test_a_trace_wrapped_at_a_record_ended_by_a_slash_is_read_whole(tmp_path: Path) -> None:
    # banks that end every record with "/" wrap a long 16 text the same way: "...EFT2022/" then "88,0201001*...\\/"
    path = variant(tmp_path, "moj__svb_us_example.bai2", [
        ("88,SOME PAYMENT ACH OFFSET\n49,138884258,7/\n98,138884258,1,9/",
         "88,SOME PAYMENT TRN*1*EFT2022/\n88,0201001*1512345678\\/\n49,138884258,8/\n98,138884258,1,10/"),
        ("88,SOME PAYMENT ACH OFFSET\n", "88,TRN*1*T2/\n88,NEXT LINE\n"),  # no segment end: the trace is T2
        ("49,143145938,7/\n98,143145938,1,9/", "49,143145938,8/\n98,143145938,1,10/"),
        ("99,282030196,2,20\n", "99,282030196,2,22\n"),
    ])  # fmt: skip
    bank = read_bank_file(path)
    assert [d.trace_number for d in bank.deposits] == ["EFT20220201001", "T2"]
    assert bank.deposits[0].description == (
        "142 ACH credit received; bank ref 172629; SOME PAYMENT TRN*1*EFT2022 0201001*1512345678\\"
    )


def test_the_continued_16_reads_its_references_and_text_once_the_counts_are_right(tmp_path: Path) -> None:
    # x9-continuation-16 with its record counts corrected (49: 5, 98: 7, 99: 9): S amounts on the 16,
    # bank and customer reference on the first 88, text on the second
    path = variant(tmp_path, "moov__bai3__x9-continuation-16.txt",
                   [("000,4/", "000,5/"), ("000,1,6/", "000,1,7/"), ("000,1,8/", "000,1,9/")])  # fmt: skip
    (dep,) = read_bank_file(path).deposits
    assert (dep.deposit_id, dep.deposit_date, dep.amount) == (
        "1234567890-20150622-TRACE12345678900",
        date(2015, 6, 22),
        Decimal("1230000000.00"),
    )
    assert dep.description == "165 Preauthorized ACH credit; bank ref TRACE12345678900; customer ref CUST REF 79; " \
        "THIS IS THE TEXT HERE"  # fmt: skip


def test_the_split_summary_adds_up_once_its_totals_are_right(tmp_path: Path) -> None:
    path = variant(tmp_path, "moov__bai3__x9-03-split-summary.txt", [("299000000", "399666664")])
    bank = read_bank_file(path)
    assert bank.deposits == () and bank.other == ()


def test_identical_details_are_two_deposits(tmp_path: Path) -> None:
    # the spec's example with its 165 credit listed twice (totals and counts raised to match)
    line = "16,165,1500000,1,DD1620,, DEALER PAYMENTS\n"
    path = variant(tmp_path, "moov__spec-section3.txt", [
        (line, line + line), ("49,72000000,3/", "49,73500000,4/"), ("98,72000000,1,5/", "98,73500000,1,6/"),
        ("99,72000000,1,7/", "99,73500000,1,8/"),
    ])  # fmt: skip
    bank = read_bank_file(path)
    assert [(d.deposit_id, d.amount) for d in bank.deposits] == [
        ("0975312468-20040620-DD1620", Decimal("15000.00")),
        ("0975312468-20040620-DD1620-2", Decimal("15000.00")),
    ]


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_a_public_file_the_specification_calls_invalid_is_refused(name: str) -> None:
    with pytest.raises(FileFormatError) as err:
        read_bank_file(PUBLIC / name)
    assert str(err.value).startswith(REFUSED[name]), str(err.value)


# ------------------------------------------------------------------ through the CLI and the ledger
def test_the_cli_loads_each_public_file_or_refuses_it_whole(db: Path, cli: Callable[..., object]) -> None:
    for name in sorted(REFUSED):
        run = cli("deposits", "--db", db, "--load", PUBLIC / name, "--user", "ana")
        assert run.code == 1 and run.err.startswith(f"recon: error: {REFUSED[name]}"), run.err  # type: ignore[attr-defined]
        assert "Traceback" not in run.err  # type: ignore[attr-defined]
    with Recon.open(db) as recon:
        assert recon.one("SELECT count(*) FROM deposits") == (0,)
        assert recon.one("SELECT count(*) FROM other_bank_activity") == (0,)
    for name in ("moj__svb_us_example.bai2", "moov__sample2.txt", "moov__spec-section3.txt", "moov__sample3.txt"):
        run = cli("deposits", "--db", db, "--load", PUBLIC / name, "--user", "ana", "--dry-run", "--format", "csv")
        assert run.code == 0, run.err  # type: ignore[attr-defined]
        rows = read_csv(run.out)  # type: ignore[attr-defined]
        want = ACCEPTED[name]
        assert len(rows) == want.deposits and sum(Decimal(r["amount"]) for r in rows) == Decimal(want.total)
        assert {r["status"] for r in rows} == {"unmatched"}
    with Recon.open(db) as recon:
        assert recon.one("SELECT count(*) FROM deposits") == (0,)  # a dry run keeps nothing
    for name in ("moj__svb_us_example.bai2", "moov__sample2.txt", "moov__sample1.txt", "moov__sample3.txt"):
        run = cli("deposits", "--db", db, "--load", PUBLIC / name, "--user", "ana")
        assert run.code == 0, run.err  # type: ignore[attr-defined]
    with Recon.open(db) as recon:
        assert recon.one("SELECT count(*), sum(amount) FROM deposits") == (18, Decimal("123857.09"))
        assert recon.one("SELECT count(*) FROM other_bank_activity") == (31,)
        assert recon.one("SELECT sum(amount) FROM other_bank_activity WHERE kind = 'credit'") == (Decimal("203200.00"),)


def test_a_dry_run_of_a_public_file_shows_its_would_be_matches(
    recon: Recon, tmp_path: Path, add_remittance: Callable[..., str]
) -> None:
    add_remittance("R-SVB", "EFT-NOT-IN-FILE", "4901.96", date(2022, 2, 2))  # amount and date within 5 days
    load = load_deposits(recon, PUBLIC / "moj__svb_us_example.bai2", "ana", dry_run=True)
    assert load.status == {"matched": 1, "unmatched": 1} and load.total == Decimal("13959.96")
    assert [(m[0], m[4], m[5]) for m in load.matches] == [
        ("1234567890-20220201-172629", "matched", "R-SVB"),
        ("1234567890-20220202-150675", "unmatched", None),
    ]
    assert recon.one("SELECT count(*) FROM deposits") == (0,)


def test_an_empty_control_total_passes_only_when_there_is_nothing_to_add(tmp_path: Path) -> None:
    # the ministryofjustice sample leaves its 49 totals empty over empty accounts: accepted above;
    # the same file with a 10.00 credit in the first account cannot be checked, and is refused
    path = variant(tmp_path, "moj__account_trailer_amount_blank_example.bai2", [
        ("03,12345,/\n49,,2/", "03,12345,/\n16,165,1000,,R1,,/\n49,,3/"), ("98,0,2,6/", "98,1000,2,7/"),
        ("99,0,1,8/", "99,1000,1,9/"),
    ])  # fmt: skip
    with pytest.raises(FileFormatError) as err:
        read_bank_file(path)
    assert str(err.value) == (
        "moj__account_trailer_amount_blank_example.bai2:5: 49 account trailer: the control total is empty but "
        "the account's 03 and 16 amounts add up to 10.00; the file cannot be checked"
    )


def test_a_bank_file_of_many_88s_yields_its_deposits_once_its_totals_are_right(tmp_path: Path) -> None:
    # sample5 (issue 113) with its one "88:" typo made "88," and its totals and counts worked out again by
    # hand: account 107049932 03 6867810 + 16s 1132150 in 18 records; account 104108339 03 636100182 +
    # 16s 3829282486 in 96 records; group 17526708068 over 5 accounts and 122 records; file 124 records
    path = variant(tmp_path, "moov__sample5-issue113.txt", [
        ("88:EREF: 07370568132", "88,EREF: 07370568132"), ("49,-1260161341762,26/", "49,7999960,18/"),
        ("49,6869722,8/", "49,4465382668,96/"), ("98,13060195162,4,16/", "98,17526708068,5,122/"),
        ("99,13060195162,1,18/ ", "99,17526708068,1,124/ "),
    ])  # fmt: skip
    bank = read_bank_file(path)
    assert [(d.deposit_id, str(d.amount)) for d in bank.deposits] == [
        ("104108339-20230906-GI2229300000187", "11.25"),  # 195 incoming wire
        ("104108339-20230906-GI2228400005800", "500.50"),  # 195 RTP incoming
        ("104108339-20230906-SX22293073766088", "5.27"),  # 175 check deposit
        ("104108339-20230906-SPB2321284264201", "50.00"),  # 165, whatever its text says
        ("104108339-20230906-GI2323300007089", "37979996.24"),  # 195 incoming wire
    ]
    assert {d.deposit_date for d in bank.deposits} == {date(2023, 9, 6)}
    assert Counter(a.type_code for a in bank.other) == Counter(
        ["447", "447", "261", "557", "451", "266", "495", "495", "257", "255", "475", "475", "275", "698", "354"]
    )
    credits = sum((a.amount or Decimal(0) for a in bank.other if a.kind == "credit"), Decimal("0.00"))
    debits = sum((a.amount or Decimal(0) for a in bank.other if a.kind == "debit"), Decimal("0.00"))
    assert (credits, debits) == (Decimal("5457.93"), Decimal("318125.17"))
    check_return = next(a for a in bank.other if a.type_code == "255")
    assert "EREF: 07370568132" in (check_return.description or "")


def test_the_same_file_with_its_details_reordered_loads_as_the_same_deposits(recon: Recon, tmp_path: Path) -> None:
    # data/sample3: account 11111111 has two 142 credits of 6.00 without a bank reference (lines 20-23);
    # the second load lists them the other way round, and the first account's 1.00 before its 25.00 and 5.00
    first = load_deposits(recon, PUBLIC / "moov__data__sample3.txt", "ana")
    assert (first.added, first.other_added) == (13, 13)
    lines = (PUBLIC / "moov__data__sample3.txt").read_text().split("\n")
    lines[19:23] = [*lines[21:23], *lines[19:21]]
    lines[2:4] = [lines[3], lines[2]]  # 16,142,100 before the line holding 16,142,2500 and 16,142,500
    path = tmp_path / "moov__data__sample3.txt"
    path.write_text("\n".join(lines))
    again = load_deposits(recon, path, "ana")
    assert (again.added, again.unchanged, again.other_added) == (0, 13, 0)
    assert set(again.deposit_ids) == set(first.deposit_ids)
    assert recon.one("SELECT count(*), sum(amount) FROM deposits") == (13, Decimal("397.13"))
