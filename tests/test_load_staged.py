"""Issue 11: the big practice files are read and checked by DuckDB, with the same result as row by row.

A load reads clients.csv, client_insurance.csv and invoices.csv with DuckDB and checks
them in SQL; whatever those checks do not accept is loaded row by row in Python, as
before. These tests load the same practice both ways (a blank line at the end of a file
sends it row by row: DuckDB's rows then no longer match the file's lines) and compare
every table, over the cases the derivation of an invoice's payer and dues has.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date
from pathlib import Path

import duckdb
import pytest

from recon.demo import PracticeSize, generate_practice
from recon.practice import TABLES, load_practice
from recon.services import Recon
from tests.conftest import PRACTICE, Run, write_practice

CASES = {
    **PRACTICE,
    "users.csv": [*PRACTICE["users.csv"], ("lee", "Lee Admin", "admin")],
    "clients.csv": [
        *PRACTICE["clients.csv"],
        ("C4", "José", "Ñúñez-O'Brien", "3/4/1971", "15"),  # not ASCII, a US date, whole-dollar co-pay
        ("C5", "Dana, Jr.", "Fox", "", ""),  # a quoted comma; no date of birth, no co-pay
        ("C6", "Eli", "Gray", "2001-1-2", "7.5"),
    ],
    "client_insurance.csv": [
        *PRACTICE["client_insurance.csv"],
        ("C4", "UHC", "", "Secondary", "12.00"),  # only a secondary policy, upper-case priority
        ("C6", "AET", "M600", "", ""),  # priority left out: primary
    ],
    "invoices.csv": [
        *PRACTICE["invoices.csv"],
        ("I9", "C4", "02/10/2026", "90837", "", "165.00", "", "", "", ""),  # the secondary's co-pay
        ("I10", "C5", "2026-02-10", "90834", "2", "130.00", "", "", "", ""),  # self-pay: client owes the fee
        ("I11", "C4", "2026-02-11", "90834", "1", "130.00", "UHC", "", "100.00", ""),  # ins due given
        ("I12", "C2", "2026-02-12", "90791", "1", "200.00", "BCBS", "30.00", "150.00", "CLM/12"),  # both given
        ("I13", "C6", "2026-02-13", "90846", "1", "5.00", "", "", "", ""),  # fee below the co-pay
        ("I14", "C1", "2026-02-14", "96127", "1", "25", "UHC", "", "", ""),  # a payer not the client's
        ("I15", "C5", "2026-02-15", "90853", "1", "60.00", "", "60.00", "", ""),  # client due given
        ("I6", "C2", "2026-01-07", "90791", "1", "200.00", "", "", "", ""),  # an identical repeat
    ],
}


def _tables(db: Path) -> dict[str, list[tuple[object, ...]]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {t: con.execute(f"SELECT {', '.join(c)} FROM {t} ORDER BY ALL").fetchall() for t, c in TABLES.items()}
    finally:
        con.close()


def _load(folder: Path, db: Path, user: str | None = None) -> tuple[str, list[str]]:
    said: list[str] = []
    recon = Recon.open(db)
    try:
        summary = load_practice(recon, folder, user, said.append)
    finally:
        recon.close()
    return str(summary), said


def _by_duckdb(said: list[str]) -> bool:
    return any("read and checked by DuckDB" in text for text in said)


def _row_by_row(folder: Path) -> Path:
    """The same files, each ending in a blank line: DuckDB's rows no longer match the lines, so read row by row."""
    for name in ("clients.csv", "client_insurance.csv", "invoices.csv"):
        path = folder / name
        path.write_text(path.read_text() + "\n")
    return folder


def test_duckdb_and_row_by_row_load_the_same_records(tmp_path: Path) -> None:
    fast, said = _load(write_practice(tmp_path / "fast", CASES), tmp_path / "fast.duckdb")
    assert _by_duckdb(said), said
    slow, said = _load(_row_by_row(write_practice(tmp_path / "slow", CASES)), tmp_path / "slow.duckdb")
    assert not _by_duckdb(said), said
    assert fast.replace("fast", "x") == slow.replace("slow", "x")
    assert "invoices: 15 added, 0 unchanged" in fast
    assert _tables(tmp_path / "fast.duckdb") == _tables(tmp_path / "slow.duckdb")


def test_windows_line_ends_and_a_byte_order_mark_load_the_same(tmp_path: Path) -> None:
    folder = write_practice(tmp_path / "crlf", CASES)
    for name in ("clients.csv", "client_insurance.csv", "invoices.csv"):
        path = folder / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    _, said = _load(folder, tmp_path / "crlf.duckdb")
    assert _by_duckdb(said), said
    _load(_row_by_row(write_practice(tmp_path / "slow", CASES)), tmp_path / "slow.duckdb")
    assert _tables(tmp_path / "crlf.duckdb") == _tables(tmp_path / "slow.duckdb")


def test_two_policies_of_one_priority_are_left_to_the_row_by_row_path(tmp_path: Path) -> None:
    cases = {**CASES, "client_insurance.csv": [*CASES["client_insurance.csv"], ("C6", "UHC", "", "primary", "")]}
    _, said = _load(write_practice(tmp_path / "p", cases), tmp_path / "p.duckdb")
    checks = [text for text in said if text.startswith("checking")]
    # checked by DuckDB, then redone row by row, which decides between the two as it always did
    assert len(checks) == 2 and _by_duckdb(checks[:1]) and not _by_duckdb(checks[1:]), checks
    _, said = _load(_row_by_row(write_practice(tmp_path / "q", cases)), tmp_path / "q.duckdb")
    assert _tables(tmp_path / "p.duckdb") == _tables(tmp_path / "q.duckdb")


def test_a_generated_practice_loads_in_batches_and_reloads_unchanged(tmp_path: Path) -> None:
    size = PracticeSize(clients=300, invoices=2_000)
    first = generate_practice(tmp_path / "one", size, seed=3)
    second = generate_practice(tmp_path / "two", size, seed=3, start=date(2026, 9, 1), first_invoice=2_001)
    db = tmp_path / "l.duckdb"
    text, said = _load(first, db)
    assert _by_duckdb(said) and "invoices: 2000 added, 0 unchanged" in text
    text, said = _load(second, db, "cara")
    assert _by_duckdb(said)
    assert "clients: 0 added, 300 unchanged" in text and "invoices: 2000 added, 0 unchanged" in text
    before = _tables(db)
    text, _ = _load(second, db, "cara")
    assert "invoices: 0 added, 2000 unchanged" in text and "client_insurance: 0 added," in text
    assert _tables(db) == before
    assert len(before["invoices"]) == 4_000 and len({r[0] for r in before["invoices"]}) == 4_000


@pytest.mark.parametrize(
    ("name", "row", "message"),
    [
        # each of these passes DuckDB's reading and is refused by the checks, word for word as row by row
        ("invoices.csv", ("I16", "C1", "2026-03-01", "90837", "1", "150.005", "", "", "", ""), "fee: '150.005'"),
        ("invoices.csv", ("I16", "C9", "2026-03-01", "90837", "1", "150.00", "", "", "", ""), "unknown client 'C9'"),
        ("invoices.csv", ("I16", "C5", "2026-03-01", "90837", "1", "150.00", "", "", "5.00", ""), "payer_id: required"),
        ("invoices.csv", ("I1", "C1", "2026-01-05", "90837", "1", "151.00", "", "", "", ""), "duplicate id 'I1'"),
        ("client_insurance.csv", ("C5", "NOPE", "", "primary", ""), "unknown payer 'NOPE'"),
        ("clients.csv", ("C7", "Fay", "Hale", "2026-02-30", ""), "date_of_birth: '2026-02-30' is not a date"),
        ("clients.csv", ("C7", "Fay\u200f", "Hale", "", ""), "U+200F"),
    ],
)
def test_a_bad_row_is_named_and_nothing_is_written(
    cli: Callable[..., Run], tmp_path: Path, name: str, row: tuple[str, ...], message: str
) -> None:
    cases = {**CASES, name: [*CASES[name], row]}
    folder = write_practice(tmp_path / "bad", cases)
    line = len(cases[name])
    db = tmp_path / "l.duckdb"
    run = cli("load", folder, "--db", db)
    assert run.code == 1 and "Traceback" not in run.err
    assert run.err.startswith(f"recon: error: {name}:{line}: "), run.err
    assert message in run.err, run.err
    assert all(not rows for rows in _tables(db).values())


def test_a_changed_record_on_reload_is_refused_and_nothing_is_added(cli: Callable[..., Run], tmp_path: Path) -> None:
    db = tmp_path / "l.duckdb"
    assert cli("load", write_practice(tmp_path / "one", CASES), "--db", db).code == 0
    before = _tables(db)
    more = [*CASES["invoices.csv"], ("I16", "C1", "2026-03-01", "90837", "1", "150.00", "", "", "", "")]
    more[3] = (*more[3][:5], "121.00", *more[3][6:])  # I3's fee changed
    run = cli("load", write_practice(tmp_path / "two", {**CASES, "invoices.csv": more}), "--db", db, "--user", "lee")
    assert run.code == 1 and "invoices.csv:4: 'I3' is already in the ledger with different content" in run.err
    assert _tables(db) == before


def test_a_load_leaves_the_sessions_memory_limit_as_it_was(tmp_path: Path) -> None:
    recon = Recon.open(tmp_path / "l.duckdb")
    try:
        before = recon.one("SELECT current_setting('memory_limit')")
        load_practice(recon, write_practice(tmp_path / "p", CASES), None)
        assert recon.one("SELECT current_setting('memory_limit')") == before
    finally:
        recon.close()


# Values the two paths must treat alike: odd but valid shapes, and near misses.
_AMOUNTS = ("12.5", " 30.00 ", "0012.00", "0", "12.", ".5", "$12", "1,200.00", "+5", "-0", "12.345", "")
_DATES = ("2026-1-05", "12/31/2026", "2/29/2025", "2024-02-29", "0000-01-01", " 2026-03-01 ", "2026-03-01x", "")
_NAMES = ("Zoë", " Ana ", "O'Neil", "\u00a0Ana", "Ana\u00a0", "Ana\u2003Lee", "Bo\u200bb", "Ｗｉｄｅ", "")
_PRIORITIES = ("primary", "PRIMARY", " Secondary ", "tertiary", "first", "prímary", "")
_UNITS = ("", "1", "00002", "0", "99999", "100000", " 3 ", "3.0")
_IDS = ("C1", "C2", "C3", " C1 ", "C1 x", "c/1.-_", "")


def _variant(rng: random.Random) -> dict[str, list[tuple[str, ...]]]:
    tables = {k: list(v) for k, v in CASES.items()}

    def change(name: str, column: str, values: tuple[str, ...]) -> None:
        rows = tables[name]
        n = rng.randrange(1, len(rows))
        cells = list(rows[n])
        cells[rows[0].index(column)] = rng.choice(values)
        rows[n] = tuple(cells)

    for _ in range(rng.randrange(1, 4)):
        rng.choice(
            [
                lambda: change("invoices.csv", rng.choice(("fee", "client_amt_due", "ins_amt_due")), _AMOUNTS),
                lambda: change("invoices.csv", "service_date", _DATES),
                lambda: change("invoices.csv", "units", _UNITS),
                lambda: change("invoices.csv", "client_id", _IDS),
                lambda: change("invoices.csv", "service_code", _NAMES),
                lambda: change("clients.csv", rng.choice(("first_name", "last_name")), _NAMES),
                lambda: change("clients.csv", "date_of_birth", _DATES),
                lambda: change("clients.csv", "copay", _AMOUNTS),
                lambda: change("client_insurance.csv", "priority", _PRIORITIES),
                lambda: change("client_insurance.csv", "copay", _AMOUNTS),
                lambda: change("client_insurance.csv", "member_id", _NAMES),
            ]
        )()
    return tables


def _outcome(cli: Callable[..., Run], folder: Path, db: Path) -> tuple[int, str, dict[str, list[tuple[object, ...]]]]:
    run = cli("load", folder, "--db", db)
    return run.code, run.err.replace(str(folder), "<folder>"), _tables(db)


@pytest.mark.parametrize("seed", range(20))  # 13 of these load, 10 of them through DuckDB alone
def test_odd_values_give_the_same_outcome_both_ways(cli: Callable[..., Run], tmp_path: Path, seed: int) -> None:
    tables = _variant(random.Random(seed))
    fast = _outcome(cli, write_practice(tmp_path / "f", tables), tmp_path / "f.duckdb")
    slow = _outcome(cli, _row_by_row(write_practice(tmp_path / "s", tables)), tmp_path / "s.duckdb")
    assert fast == slow
