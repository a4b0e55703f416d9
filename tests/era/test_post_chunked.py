"""A file posted in many small pieces has exactly the outcome of the same file posted whole (issue 11, memory).

The posting stages a file in chunks of claims (``chunk_rows``) and derives the amounts
due in pieces of invoices (``piece``) so that its memory stays bounded. Neither may
change anything: the same files are posted into two copies of one practice, once with
the default sizes (each file one chunk, one piece) and once with chunks of one or two
claims and pieces of one invoice, and every row of every posting table is compared
(ids included; only the posting's clock differs). The files put related claims in
different chunks: a reversal and its correction, a reversal before its original in the
same file, a PLB naming a claim of another chunk, a multi-line claim, a denial, an
unmatched claim and a claim from a payer that is not the client's.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from recon.cli import main
from recon.remit.post import FileOutcome, post_file, post_remittances
from recon.services import Recon
from tests.conftest import PRACTICE, write_practice
from tests.era.conftest import assert_invariant
from tests.era.edi import claim, st, write_835

INVOICES = [
    (f"J{n}", f"P{1 + n % 3}", f"2026-01-{n:02d}", "90837", "1", "150.00", "", "", "", "") for n in range(1, 13)
]
CHUNKED = {
    **PRACTICE,
    "clients.csv": [
        ("client_id", "first_name", "last_name", "date_of_birth", "copay"),
        ("P1", "Pat", "One", "1980-01-01", "0"),
        ("P2", "Sam", "Two", "1981-01-01", "0"),
        ("P3", "Lee", "Three", "1982-01-01", "0"),
    ],
    "client_insurance.csv": [
        ("client_id", "payer_id", "member_id", "priority", "copay"),
        ("P1", "AET", "A1", "primary", ""),
        ("P2", "AET", "A2", "primary", ""),
        ("P2", "BCBS", "B2", "secondary", ""),
        ("P3", "AET", "A3", "primary", ""),
    ],
    "invoices.csv": [
        PRACTICE["invoices.csv"][0],
        *INVOICES,
        ("J20", "P1", "2026-02-03", "90834", "1", "100.00", "", "", "", "CLM-20"),
        ("J21", "P1", "2026-02-10", "90837", "1", "150.00", "", "", "", "CLM-20"),
    ],
}
TABLES = (
    "remittances",
    "remit_claims",
    "remit_lines",
    "remit_cas",
    "remit_plb",
    "remit_entries",
    "payments",
    "allocations",
    "adjustments",
    "adjudications",
    "adjudication_reversals",
    "due_changes",
    "exceptions",
    "exception_actions",
    "exception_invoices",
    "exception_cas",
)


def paid(clp01: str, when: str, charge: str = "150", pay: str = "100", pr: str = "20", **kw: Any) -> list[list[str]]:
    """A claim paid on one line: CO-45 for the rest but the patient's share."""
    co = Decimal(charge) - Decimal(pay) - Decimal(pr)
    cas = [["CO", "45", str(co)]] + ([["PR", "2", pr]] if Decimal(pr) else [])
    return claim(clp01, kw.pop("status", "1"), charge, pay, pr, lines=[("HC:90837", charge, pay, when, cas)], **kw)


def files(tmp: Path) -> list[Path]:
    first = write_835(
        tmp / "first.835",
        [
            st(
                "0001",
                amount="840",
                trace="C1",
                claims=[
                    paid("J1", "20260101"),
                    paid("J2", "20260102", pcn="PAYER-J2"),
                    claim("J4", "4", "150", "0", cas=[["CO", "50", "150"]]),  # a denial
                    paid("J5", "20260105"),
                    paid("NOPE-1", "20260105", pay="40", pr="0"),  # matches no invoice: held
                    paid("J6", "20260106", pay="100"),
                    # two lines of one claim, the second chunk of a two-claim chunking
                    claim(
                        "CLM-20",
                        "1",
                        "250",
                        "200",
                        "",
                        lines=[
                            ("HC:90834", "100", "80", "20260203", [["CO", "45", "20"]]),
                            ("HC:90837", "150", "120", "20260210", [["CO", "45", "30"]]),
                        ],
                    ),
                    paid("J7", "20260107", pay="100", pr="30"),
                ],
            )
        ],
    )
    second = write_835(
        tmp / "second.835",
        [
            st(
                "0002",
                amount="170",
                trace="C2",
                claims=[
                    # J3's reversal comes before its original, three chunks earlier
                    claim(
                        "J3",
                        "22",
                        "-150",
                        "-90",
                        "",
                        lines=[("HC:90837", "-150", "-90", "20260103", [["CO", "45", "-60"]])],
                    ),
                    # J1 (first file) reversed and corrected, the correction in another chunk
                    claim(
                        "J1",
                        "22",
                        "-150",
                        "-100",
                        "-20",
                        lines=[("HC:90837", "-150", "-100", "20260101", [["CO", "45", "-30"], ["PR", "2", "-20"]])],
                    ),
                    paid("J8", "20260108"),
                    paid("J9", "20260109", status="2"),  # secondary for a client whose only payer is AET
                    claim(
                        "J3", "1", "150", "90", "", lines=[("HC:90837", "150", "90", "20260103", [["CO", "45", "60"]])]
                    ),
                    paid("J10", "20260110"),
                    paid("J1", "20260101", pay="90", pr="30"),
                    paid("J11", "20260111"),
                    paid("J12", "20260112"),
                ],
                plb=[["PLB", "1922164458", "20261231", "WO:PAYER-J2", "-30"]],
            )
        ],
    )
    bcbs = write_835(
        tmp / "bcbs.835",
        [
            st(
                "0003",
                amount="100",
                trace="C3",
                payer=("Blue Cross", "00570"),
                claims=[
                    paid("J5", "20260105"),  # P3 has no BCBS policy: held
                    paid("J8", "20260108", status="2"),
                ],
            )
        ],
    )
    return [first, second, bcbs]


def dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the posting's tables, without the posting's clock (timestamps)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    with Recon.open(db) as recon:
        for table in TABLES:
            rows = recon.execute(f"SELECT * FROM {table}").fetchall()
            out[table] = sorted(
                (tuple(None if isinstance(v, datetime) else v for v in row) for row in rows),
                key=lambda r: tuple((v is None, str(v)) for v in r),
            )
    return out


def post_all(db: Path, paths: list[Path], **sizes: int) -> list[tuple[Any, ...]]:
    outcomes: list[tuple[Any, ...]] = []
    with Recon.open(db) as recon:
        for path in paths:
            out: FileOutcome = post_file(recon, path, "ana", **sizes)
            assert out.status == "posted", (path.name, out.message)
            outcomes.append((out.summary(), out.warnings, out.problems, out.claims))
    return outcomes


@pytest.fixture
def practice(tmp_path: Path) -> Path:
    folder = write_practice(tmp_path / "practice", CHUNKED)
    db = tmp_path / "practice.duckdb"
    assert main(["load", str(folder), "--db", str(db)]) == 0
    return db


def balanced(paths: list[Path]) -> list[Path]:
    """Rewrite each file's BPR02 as its claims' CLP04 less its PLB, so every file balances."""
    for path in paths:
        text = path.read_text()
        segs = [s.split("*") for s in text.split("~") if s]
        total = sum(Decimal(s[4]) for s in segs if s[0] == "CLP") - sum(Decimal(s[4]) for s in segs if s[0] == "PLB")
        for s in segs:
            if s[0] == "BPR":
                s[2] = str(total)
        path.write_text("~".join("*".join(s) for s in segs) + "~")
    return paths


@pytest.mark.parametrize("chunk_rows, piece", [(1, 1), (3, 2)])
def test_small_chunks_and_pieces_post_what_one_chunk_posts(
    practice: Path, tmp_path: Path, chunk_rows: int, piece: int
) -> None:
    paths = balanced(files(tmp_path))
    whole, pieces = tmp_path / "whole.duckdb", tmp_path / "pieces.duckdb"
    for db in (whole, pieces):
        db.write_bytes(practice.read_bytes())
    expected = post_all(whole, paths)
    got = post_all(pieces, paths, chunk_rows=chunk_rows, piece=piece)
    assert got == expected
    before, after = dump(whole), dump(pieces)
    for table in TABLES:
        assert after[table] == before[table], table
    with Recon.open(pieces) as recon:
        assert_invariant(recon)
        outcomes = dict(recon.execute("SELECT outcome, count(*) FROM remit_claims GROUP BY 1").fetchall())
        # the file exercises what spans chunks: a reversal of the first file's claim, a reversal before
        # its original (linked late), a claim held for its payer, an unmatched claim and a denial
        assert outcomes["reversal"] == 1 and outcomes["unmatched_reversal"] == 1, outcomes
        assert outcomes["payer_not_on_policy"] >= 1 and outcomes["unmatched"] == 1 and outcomes["denied"] == 1
        assert recon.one("SELECT count(*) FROM adjudication_reversals") == (2,)
        row = recon.one("SELECT claim_posting_id FROM exceptions WHERE kind = 'recoupment'")
        assert row is not None and row[0] > 0  # the PLB found J2's posting, in another chunk
        assert recon.one("SELECT count(DISTINCT invoice_id) FROM due_changes")[0] > 3
    # and a replay posts nothing again, in pieces as whole
    with Recon.open(pieces) as recon:
        again = post_file(recon, paths[1], "ana", chunk_rows=chunk_rows, piece=piece)
    assert again.status == "already_posted"
    assert dump(pieces) == after


def test_each_file_of_a_batch_that_outgrows_the_posting_limit_is_posted_again_alone(tmp_path: Path) -> None:
    """A batch posts every file with DuckDB held to the posting's limit; a file that runs out of it is
    rolled back and posted again with the session's limit, the files before it staying posted, and the
    session keeps its own limit afterwards."""
    folder = write_practice(tmp_path / "practice", CHUNKED)
    db = tmp_path / "batch.duckdb"
    assert main(["load", str(folder), "--db", str(db)]) == 0
    paths = balanced(files(tmp_path))
    with Recon.open(db) as recon:
        limit = float(recon.one("SELECT current_setting('memory_limit')")[0].split()[0])  # MiB
        report = post_remittances(recon, paths, "ana", memory_limit="2MB")  # no posting fits in 2 MB
        assert [f.status for f in report.files] == ["posted", "posted", "posted"], [f.message for f in report.files]
        # the session's own limit again (as its text rounds, within 1 MiB), not the posting's 2 MB
        assert abs(float(recon.one("SELECT current_setting('memory_limit')")[0].split()[0]) - limit) < 1
        assert recon.one("SELECT count(*) FROM remittances") == (3,)
        assert_invariant(recon)
        again = post_remittances(recon, paths, "ana", memory_limit="2MB")
    assert [f.status for f in again.files] == ["already_posted"] * 3


def test_memory_limit_by_file_size(tmp_path: Path) -> None:
    """AUTO holds a large file to 100 MB (flat memory), a small file of a batch to 150 MB (a batch's speed)
    and one posted alone to 120 MB."""
    from recon.remit.post import (
        ALONE_MEMORY_LIMIT,
        AUTO,
        LARGE_FILE,
        POST_MEMORY_LIMIT,
        SMALL_FILE_MEMORY_LIMIT,
        _limit_for,
    )

    small, large = tmp_path / "small.835", tmp_path / "large.835"
    small.write_text("ISA")
    with large.open("wb") as fh:  # sparse: the size is what counts
        fh.truncate(LARGE_FILE + 1)
    assert _limit_for(small, AUTO, batch=True) == SMALL_FILE_MEMORY_LIMIT == "150MB"
    assert _limit_for(large, AUTO, batch=True) == POST_MEMORY_LIMIT == "100MB"
    assert _limit_for(small, AUTO, batch=False) == ALONE_MEMORY_LIMIT == "120MB"
    assert _limit_for(large, AUTO, batch=False) == POST_MEMORY_LIMIT
    assert _limit_for(tmp_path / "missing.835", AUTO, batch=True) == POST_MEMORY_LIMIT
    assert _limit_for(large, "2MB", batch=True) == "2MB" and _limit_for(small, None, batch=False) is None


def test_staging_limit_holds_while_staging_and_is_set_back(tmp_path: Path) -> None:
    """A file posted alone, or a large one, is staged with DuckDB at STAGE_MEMORY_LIMIT and finished at the
    posting's limit; a staging that runs out of it writes nothing, and the limit before the posting is set
    back either way."""
    import duckdb

    from recon.remit import post as posting
    from recon.remit.post import AUTO, LARGE_FILE, STAGE_MEMORY_LIMIT, _stage_limit_for

    small, large = tmp_path / "small.835", tmp_path / "large.835"
    small.write_text("ISA")
    with large.open("wb") as fh:
        fh.truncate(LARGE_FILE + 1)
    assert _stage_limit_for(large, AUTO, batch=True) == STAGE_MEMORY_LIMIT == "80MB"
    assert _stage_limit_for(small, AUTO, batch=False) == _stage_limit_for(large, AUTO, batch=False) == "80MB"
    assert _stage_limit_for(small, AUTO, batch=True) is None
    assert _stage_limit_for(large, "2MB", batch=False) is None

    folder = write_practice(tmp_path / "practice", CHUNKED)
    db = tmp_path / "stage.duckdb"
    assert main(["load", str(folder), "--db", str(db)]) == 0
    paths = balanced(files(tmp_path))
    seen: list[str] = []
    finish = posting.Poster.finish

    def mib(con: Any) -> float:  # the limit as DuckDB shows it, which rounds (within 0.1 MiB when set back)
        return float(con.execute("SELECT current_setting('memory_limit')").fetchone()[0].split()[0])

    def watched(self: Any) -> None:  # the finish sees the limit from before the staging again
        seen.append(mib(self.con))
        finish(self)

    with Recon.open(db) as recon:
        limit = mib(recon.con)
        with pytest.raises(duckdb.OutOfMemoryException):  # no staging fits in 1 MB
            post_file(recon, paths[0], "ana", stage_limit="1MB")
        assert abs(mib(recon.con) - limit) < 0.2
        assert recon.one("SELECT count(*) FROM remittances") == (0,)
        posting.Poster.finish = watched  # type: ignore[method-assign]
        try:
            outcome = post_file(recon, paths[0], "ana", stage_limit="64MB")
        finally:
            posting.Poster.finish = finish  # type: ignore[method-assign]
        assert outcome.status == "posted" and len(seen) == 1 and abs(seen[0] - limit) < 0.2
        assert abs(mib(recon.con) - limit) < 0.2
        assert_invariant(recon)


def test_a_staging_out_of_its_limit_is_posted_again_at_the_posting_limit_first(tmp_path: Path) -> None:
    """The retry ladder: staging limit, then the posting's limit throughout, then the session's."""
    import duckdb

    from recon.remit.post import _within_memory

    with Recon.open(tmp_path / "ladder.duckdb") as recon:
        def mib() -> float:
            return float(recon.one("SELECT current_setting('memory_limit')")[0].split()[0])

        session = mib()
        for failures, expected in ((1, [("80MB", 190.7), (None, 190.7)]),
                                   (2, [("80MB", 190.7), (None, 190.7), (None, session)])):
            calls: list[tuple[str | None, float]] = []

            def post(prepared: Any, stage: str | None, failures: int = failures,
                     calls: list[tuple[str | None, float]] = calls) -> FileOutcome:
                calls.append((stage, mib()))
                if len(calls) <= failures:
                    raise duckdb.OutOfMemoryException("out of memory")
                return FileOutcome("f.835", "posted")

            assert _within_memory(recon, "200MB", post, stage_limit="80MB").status == "posted"
            assert [s for s, _ in calls] == [s for s, _ in expected]
            assert all(abs(m - e) < 0.2 for (_, m), (_, e) in zip(calls, expected, strict=True)), calls
            assert abs(mib() - session) < 0.2


@pytest.mark.parametrize("match", [1, 2, 1000])
def test_prepared_chunks_matched_together_post_what_one_chunk_posts(
    practice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, match: int
) -> None:
    """A reader process's chunks are matched PREPARED_MATCH claims at a time: a chunk a run, some, or all
    of a file; each posts exactly what the file posted in process does."""
    import functools

    from recon.remit import era835, prepare
    from recon.remit import post as posting
    from recon.remit.prepare import prepare_file

    paths = balanced(files(tmp_path))
    whole, prepared = tmp_path / "whole.duckdb", tmp_path / "prepared.duckdb"
    for db in (whole, prepared):
        db.write_bytes(practice.read_bytes())
    expected = post_all(whole, paths)
    monkeypatch.setattr(posting, "PREPARED_MATCH", match)
    # the reader hands over one claim at a time, so with chunk_rows=1 each claim is a chunk of its own
    monkeypatch.setattr(prepare, "read_835_stream", functools.partial(era835.read_835_stream, batch=1))
    runs: list[tuple[int, int]] = []
    run_after = posting.Stager.run_after
    monkeypatch.setattr(posting.Stager, "run_after",
                        lambda self, lo, hi: (hi > lo and runs.append((lo, hi)), run_after(self, lo, hi))[1])
    got, chunks = [], []
    with Recon.open(prepared) as recon:
        for path in paths:
            scratch = tmp_path / f"scratch-{path.stem}"
            scratch.mkdir()
            ready = prepare_file(path, path.name, str(scratch), chunk_rows=1)
            assert not ready.in_process, ready.in_process
            chunks.append([(lo, hi) for lo, hi, _ in ready.chunks if hi > lo])
            out = post_file(recon, path, "ana", prepared=ready)
            assert out.status == "posted", out.message
            got.append((out.summary(), out.warnings, out.problems, out.claims))
    assert got == expected
    assert dump(prepared) == dump(whole)
    assert max(len(c) for c in chunks) > 1  # some file came in several chunks
    if match == 1:
        assert runs == [c for file in chunks for c in file]  # each chunk matched as it came
    if match == 1000:
        assert runs == [(file[0][0], file[-1][1]) for file in chunks]  # each file matched in one run
