"""Post 835 files to the ledger: each file checked whole, then posted whole or not at all.

Per file, in one database transaction:
1. read it once, streaming (``read_835_checked``); each transaction (ST) is checked as
   the gate ``validate_file`` checks it (envelopes while reading, defects, line/claim/
   file balancing, all in the reading pass) and staged in chunks of delimited text
   that DuckDB loads (:mod:`recon.remit.stage`), each chunk matched as it is loaded;
2. find the payer (REF*2U, TRN03, N1*PR id or name against ``insurance_providers``)
   and the remittance identity payer + TRN02: seen with the same BPR02 and BPR16 means
   already posted (nothing is staged), with others a conflict (the file is refused);
3. match and write set-based (:mod:`recon.remit.match`), check payments + held − PLB
   = BPR02 per remittance, then commit (or roll back for a dry run).
If anything fails the transaction is rolled back and, for a bad file, ``validate_file``
is run to give the analyst the complete list of problems.

A batch (several files) is pipelined: a reader process reads, checks and formats the
staged text of the next files while this process posts the current one
(:func:`_post_pipelined`, :mod:`recon.remit.prepare`); each file is still posted in
its own transaction, in order, with the same checks and outcomes.

Outcome statuses, in order of precedence: ``rejected`` (cannot be read, does not
balance, unknown payer), ``conflict`` (a TRN02 already posted with other content),
``already_posted`` (every transaction was posted before), ``dry_run``, ``posted``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from recon.errors import RemittanceError
from recon.money import ZERO, fmt
from recon.remit.balance import plb_total
from recon.remit.era835 import ClaimBatch, Remittance, read_835_checked, read_835_stream, same_header
from recon.remit.match import Poster
from recon.remit.prepare import Header, Prepared
from recon.remit.stage import Stager, private_session, scratch_folder
from recon.remit.x12 import gc_paused
from recon.rules.permissions import require_billing
from recon.store import db
from recon.store.integrity import posting_marked
from recon.store.sql import bind

DEFAULT_WRITE_OFF = ("CO-45", "CO-253")
PREVIEW_LIMIT = 2000
POST_MEMORY_LIMIT = "100MB"
"""DuckDB's memory limit while a file larger than :data:`LARGE_FILE` is posted (its staging at
:data:`STAGE_MEMORY_LIMIT`); :data:`SMALL_FILE_MEMORY_LIMIT` for a smaller file of a batch,
:data:`ALONE_MEMORY_LIMIT` for one posted alone.

Staging and the posting's finish spill their working tables past it, and the finish's
large statements take the file in pieces (``Poster.PIECE``), so what a file needs stays
near it whatever the file's size; the process's RSS is about 2-3 times DuckDB's share
(its allocator keeps freed pages a while). A file that runs out of it is rolled back
and posted again with the session's limit (:func:`_within_memory`): one file at a time,
so in a batch the files before it stay posted and the next ones get it again.

Peak RSS of ``recon era`` (2026-12-02, docs/benchmarks.md): 100 MB file 316 MB with 150 MB and
whole-file statements, 283-291 MB at 100 MB in pieces; 300 MB file 604 MB (it ran out of 150 MB and
was posted again at 300 MB), 308 MB at 100 MB in pieces, 273.5 MiB with its staging at
:data:`STAGE_MEMORY_LIMIT` (`/usr/bin/time -v`, later that day). A batch's posting process spends ~20% more
CPU at 100 MB than at 150 MB (8 files: 22.6 against 17.2 s), hence :data:`SMALL_FILE_MEMORY_LIMIT`."""
STAGE_MEMORY_LIMIT = "80MB"
"""DuckDB's limit while a file larger than :data:`LARGE_FILE`, or any file posted alone, is read and staged
(its finish then gets :data:`POST_MEMORY_LIMIT` or :data:`ALONE_MEMORY_LIMIT`). Staging works a chunk at a
time and its tables spill (a 300 MB file ends its staging with 23 MB of them in memory and 607 MB in temp
files), so it needs little; the reading's own Python memory comes on top of it there, and that was the
process's peak. 300 MB file, RSS sampled every 50 ms: staging 314 MiB
at 100 MB, 276-278 MiB at 80 MB, with the finish at 100 MB peaking at 272 MiB either way and the same time
(2026-12-02). At 64 MB a chunk's statements ran out of it (the file was posted again at the session's limit)."""
SMALL_FILE_MEMORY_LIMIT = "150MB"
"""DuckDB's limit for a file of at most :data:`LARGE_FILE` in a batch: such a file posts as fast as with the
session's limit (the million-claim batch of 32 files of ~10 MB: 91 s at 300 MB, 116 s at 100 MB, 91-104 s at
150 MB, 2026-12-02 on a quiet machine)."""
ALONE_MEMORY_LIMIT = "120MB"
"""DuckDB's limit for a file of at most :data:`LARGE_FILE` posted alone, its staging at :data:`STAGE_MEMORY_LIMIT`.
A 10 MB `recon era` (three interleaved rounds, 2026-12-02): 150 MB 1.65 s and 256-266 MiB peak; 150/80 MB
1.67-1.69 s, 250-267 MiB; 120/80 MB 1.70-1.72 s, 230 MiB; 100/80 MB 1.70-1.75 s, 211-215 MiB. 120 MB keeps
a margin under both of issue 11's goals (300 MB; 4 times the floor process, here 2.9-3.4)."""
LARGE_FILE = 32 * 1024 * 1024
PREPARED_MATCH = 48_000
"""Claims of a prepared file (chunks a reader process wrote) matched by one run of the per-chunk statements:
its chunks are loaded first and matched together, ~3 chunks at a time. The chunk size bounds the reader's
Python memory, not DuckDB's, so this process need not match in its steps; a batch's files of ~31,000 claims
match in one run instead of two or three (the million-claim batch 40.6 -> 37.8 s in process, 2026-12-02)."""
AUTO = "auto"
"""``memory_limit`` by each file's size and whether it is posted alone: :data:`POST_MEMORY_LIMIT` for a large
file, else :data:`SMALL_FILE_MEMORY_LIMIT` in a batch or :data:`ALONE_MEMORY_LIMIT` alone; the staging of a large
file or of one posted alone at :data:`STAGE_MEMORY_LIMIT`."""
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class ClaimPreview:
    """One claim as posted (or as it would be): for the notebook's preview table."""

    remittance_id: str
    claim_id: str
    status: str
    outcome: str
    invoices: str
    charge: Decimal
    paid: Decimal
    held: Decimal
    adjustments: str


@dataclass(slots=True)
class FileOutcome:
    """What happened to one file. ``problems`` name level, ST, claim and numbers."""

    file: str
    status: str
    payer_id: str = ""
    trace_number: str = ""
    amount: Decimal = ZERO
    plb_amount: Decimal = ZERO
    claims_posted: int = 0
    claims_denied: int = 0
    claims_unmatched: int = 0
    claims_reversed: int = 0
    message: str = ""
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    remittance_ids: list[str] = field(default_factory=list)
    claims: list[ClaimPreview] = field(default_factory=list)
    unmatched_amount: Decimal = ZERO

    @property
    def ok(self) -> bool:
        return self.status not in ("rejected", "conflict")

    def summary(self) -> str:
        head = (f"{self.file}: {self.status.upper()}  payer {self.payer_id or '?'}  trace "
                f"{self.trace_number or '?'}  amount {fmt(self.amount)}  PLB {fmt(self.plb_amount)}")
        if self.status in ("rejected", "conflict"):
            return head + f"\n  {self.message}"
        return (head + f"\n  claims posted {self.claims_posted}, denied {self.claims_denied}, "
                f"unmatched {self.claims_unmatched}, reversed {self.claims_reversed}; "
                f"held {fmt(self.unmatched_amount)}" + (f"\n  {self.message}" if self.message else ""))


@dataclass(slots=True)
class BatchReport:
    files: list[FileOutcome] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files)


class _Reread(Exception):
    """The prepared file cannot be used as it is: read it in process (nothing was written)."""


class _Refused(Exception):
    def __init__(self, status: str, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.problems = status, message, problems or []


def write_off_codes(codes: Iterable[str] | str | None = None) -> frozenset[str]:
    """The auto write-off set: ``codes``, else ``RECON_AUTO_WRITE_OFF``, else CO-45 and CO-253."""
    if codes is None:
        codes = os.environ.get("RECON_AUTO_WRITE_OFF") or DEFAULT_WRITE_OFF
    if isinstance(codes, str):
        codes = codes.split(",")
    return frozenset(c.strip().upper().replace(" ", "") for c in codes if c.strip())


def post_remittances(recon: Any, paths: Sequence[str | os.PathLike[str]], user_id: str, *, dry_run: bool = False,
                     progress: Progress | None = None,
                     auto_write_off: Iterable[str] | str | None = None,
                     memory_limit: str | None = AUTO) -> BatchReport:
    """Post each file independently; a refused file does not stop the others.

    Posting needs the Billing permission; a dry run does everything in a transaction
    that is rolled back, so it writes nothing and needs no permission, but it too is
    by a user of the ledger (an unknown user is refused). Each file is posted with
    DuckDB held to ``memory_limit`` (None: the session's; :data:`AUTO`: by the file's size, see
    :data:`POST_MEMORY_LIMIT`).
    """
    user = recon.user(user_id)
    if not dry_run:
        require_billing(user, "post remittances")
    codes = write_off_codes(auto_write_off)
    report = BatchReport()
    paths = list(paths)
    if len(paths) > 1:
        _post_pipelined(recon, paths, user_id, dry_run, codes, report, progress, memory_limit)
        return report
    for done, path in enumerate(paths, start=1):
        limit = _limit_for(path, memory_limit, batch=False)
        report.files.append(_within_memory(recon, limit, lambda prepared, stage, p=path: post_file(
            recon, p, user_id, dry_run=dry_run, write_off=codes, prepared=prepared, stage_limit=stage),
            stage_limit=_stage_limit_for(path, memory_limit, batch=False)))
        if progress is not None:
            progress(done, len(paths), str(path))
    return report


def _limit_for(path: str | os.PathLike[str], limit: str | None, *, batch: bool) -> str | None:
    """DuckDB's limit for posting ``path``: ``limit`` itself unless it is :data:`AUTO`."""
    if limit != AUTO:
        return limit
    if _large(path):
        return POST_MEMORY_LIMIT
    return SMALL_FILE_MEMORY_LIMIT if batch else ALONE_MEMORY_LIMIT


def _stage_limit_for(path: str | os.PathLike[str], limit: str | None, *, batch: bool) -> str | None:
    """DuckDB's limit while ``path`` is staged under :data:`AUTO`: :data:`STAGE_MEMORY_LIMIT` for a large
    file or one posted alone."""
    if limit != AUTO:
        return None
    return STAGE_MEMORY_LIMIT if not batch or _large(path) else None


def _large(path: str | os.PathLike[str]) -> bool:
    try:
        return os.path.getsize(path) > LARGE_FILE
    except OSError:  # post_file reports the file; the limit does not matter then
        return True


def _within_memory(recon: Any, limit: str | None, post: Callable[[Prepared | None, str | None], FileOutcome],
                   prepared: Prepared | None = None, *, stage_limit: str | None = None) -> FileOutcome:
    """``post(prepared, stage_limit)`` with DuckDB held to ``limit`` (and to ``stage_limit`` while the file is
    staged); out of it, ``post(None, None)`` at ``limit`` throughout (when there was a ``stage_limit``), then
    with the session's limit.

    A file is posted in one transaction, rolled back whenever it fails, so a posting
    that runs out of memory (e.g. indexes DuckDB cannot spill) has written nothing and
    is simply posted again, read in process (a prepared file's chunk files are used up
    by the first attempt). The session's limit is set back afterwards, whatever happens.
    """
    if not limit:
        return post(prepared, None)
    import duckdb

    con = recon.con
    session = _current_limit(con)
    stages = [stage_limit, None] if stage_limit else [None]  # the tries at ``limit``: staging held, then not
    try:
        try:
            con.execute(f"SET memory_limit = '{limit}'")
        except duckdb.OutOfMemoryException:  # DuckDB holds more than that already (the limit may still be set)
            stages = []
        for n, stage in enumerate(stages, start=1):
            try:
                return post(prepared, stage)
            except duckdb.OutOfMemoryException:
                if session is None and n == len(stages):
                    raise
                prepared = None
        if session is not None:
            con.execute(f"SET memory_limit = '{session}'")
        return post(prepared, None)
    finally:
        if session is not None:
            con.execute(f"SET memory_limit = '{session}'")


def _post_pipelined(recon: Any, paths: list[str | os.PathLike[str]], user_id: str, dry_run: bool,
                    codes: frozenset[str], report: BatchReport, progress: Progress | None,
                    memory_limit: str | None = None) -> None:
    """Post ``paths`` in order while a reader process prepares the next files (:mod:`recon.remit.prepare`).

    Reading (pure Python) and posting (DuckDB, which re-takes the GIL) do not overlap
    in threads, so the reading runs in a ``spawn``-ed process (a fork of a process
    with DuckDB open is unsafe) that ends with this one (:func:`watch_parent`). At
    most two files are prepared ahead (their staged text on disk, in folders this
    function owns and always removes; in memory when the ledger is encrypted). Each file is
    still posted in its own transaction with every check of :func:`post_file`; a file
    the reader could not prepare, or a reader that failed, is read in process.
    """
    import multiprocessing
    from concurrent.futures import Future, ProcessPoolExecutor

    from recon.remit.prepare import prepare_file, watch_parent

    private = private_session(recon.con)  # encrypted ledger: the reader keeps staged PHI in memory
    pool: ProcessPoolExecutor | None = None
    with contextlib.suppress(Exception):  # no process can be started: read every file in process
        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=watch_parent, initargs=(os.getpid(),))
    futures: dict[int, Future[Prepared]] = {}
    folders: dict[int, str] = {}

    def submit(i: int) -> None:
        nonlocal pool
        if pool is None or i >= len(paths):
            return
        if not private:
            folders[i] = scratch_folder("prepare")
        try:
            futures[i] = pool.submit(prepare_file, os.fspath(paths[i]), Path(paths[i]).name, folders.get(i),
                                     private=private)
        except Exception:  # a broken pool: the remaining files are read in process
            pool.shutdown(wait=False, cancel_futures=True)
            pool = None

    try:
        submit(0)  # the first file too: reading it here instead was no faster on 2 CPUs and kept its
        submit(1)  # parse in this process's heap (RSS +40 MB)
        for i, path in enumerate(paths):
            prepared: Prepared | None = None
            future = futures.pop(i, None)
            if future is not None:
                try:
                    prepared = future.result()
                except Exception:  # the reader process died: this file is read in process
                    prepared = None
            submit(i + 2)
            try:
                limit = _limit_for(path, memory_limit, batch=True)
                report.files.append(_within_memory(recon, limit, lambda ready, stage, p=path: post_file(
                    recon, p, user_id, dry_run=dry_run, write_off=codes, prepared=ready, stage_limit=stage),
                    prepared, stage_limit=_stage_limit_for(path, memory_limit, batch=True)))
            finally:
                if i in folders:
                    shutil.rmtree(folders.pop(i), ignore_errors=True)
            if progress is not None:
                progress(i + 1, len(paths), str(path))
    finally:
        for future in futures.values():
            future.cancel()
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        for folder in folders.values():
            shutil.rmtree(folder, ignore_errors=True)


def post_file(recon: Any, path: str | os.PathLike[str], user_id: str, *, dry_run: bool = False,
              write_off: Iterable[str] = DEFAULT_WRITE_OFF, prepared: Prepared | None = None,
              stream: bool = True, chunk_rows: int | None = None, piece: int | None = None,
              stage_limit: str | None = None) -> FileOutcome:
    """One file, one transaction (see the module docstring for the steps).

    ``prepared``: the file as a reader process read and formatted it (a batch); when
    it says the file must be read here, or when only some of its transactions are new
    (its chunks were cut for all of them), the file is read in process instead.
    ``stream=False``: read a whole transaction at a time (the fallback of a streamed read).
    ``chunk_rows``, ``piece``: claims a staged chunk holds, and claims or invoices one statement
    of the finish takes (defaults :data:`recon.remit.stage.CHUNK_ROWS`, ``Poster.PIECE``);
    tests make them small, the outcome does not depend on them. ``stage_limit``: DuckDB's memory limit while
    the file is read and staged (:data:`STAGE_MEMORY_LIMIT`); the limit before it is set back for the finish.
    """
    if prepared is not None and prepared.in_process:
        prepared = None
    from recon.services import now

    name = Path(path).name
    outcome = FileOutcome(name, "posted")
    con = recon.con
    marked = contextlib.nullcontext() if dry_run else posting_marked(con, f"posting {name}")
    # the marker: a posting cut short is cleaned up at the next open
    with _limit_kept(con, stage_limit), _single_threaded(con) as threads, marked:
        db.begin(con)
        stager: Stager | None = None
        try:
            poster = Poster(con, user_id=user_id, stamp=now(), write_off=write_off, piece=piece)
            poster.prepare()
            stager = Stager(con, after=poster.chunk, chunk_rows=chunk_rows)
            with _memory_limit(con, stage_limit):
                if prepared is None:
                    new = _read_and_stage(recon, Path(path), name, stager, outcome, stream)
                else:
                    new = _stage_prepared(recon, prepared, name, stager, outcome)
            if new:
                _post_staged(recon, poster, outcome, user_id)
            elif outcome.remittance_ids:
                outcome.status = "already_posted"
            if dry_run and outcome.status == "posted":
                outcome.status = "dry_run"
        except _Refused as refused:
            db.rollback(con)
            outcome.status, outcome.message, outcome.problems = refused.status, refused.message, refused.problems
            outcome.claims = []
            return outcome
        except _Reread:
            db.rollback(con)
            reread = True
        except BaseException:
            db.rollback(con)
            raise
        else:
            reread = False
        finally:
            if stager is not None:
                stager.close()
        if reread:
            return post_file(recon, path, user_id, dry_run=dry_run, write_off=write_off, stream=False,
                             chunk_rows=chunk_rows, piece=piece, stage_limit=stage_limit)
        if dry_run or outcome.status != "posted":
            db.rollback(con)
        else:
            con.execute(f"SET threads = {threads}")  # a commit that checkpoints does it on every thread
            db.commit(con)
    return outcome


def _current_limit(con: Any) -> str | None:
    row = con.execute("SELECT current_setting('memory_limit')").fetchone()
    return str(row[0]) if row else None


@contextlib.contextmanager
def _memory_limit(con: Any, limit: str | None) -> Iterator[None]:
    """DuckDB held to ``limit`` (None: as it is) inside the posting's transaction, the limit before it set back
    when the block ends well. A failed transaction accepts no SET until it is rolled back, so after an error
    :func:`_limit_kept`, outside the transaction, sets it back."""
    if not limit:
        yield
        return
    before = _current_limit(con)
    con.execute(f"SET memory_limit = '{limit}'")
    yield
    if before is not None:
        con.execute(f"SET memory_limit = '{before}'")


@contextlib.contextmanager
def _limit_kept(con: Any, limit: str | None) -> Iterator[None]:
    """The memory limit as it was before a posting that may change it (``limit`` set), whatever happens."""
    before = _current_limit(con) if limit else None
    try:
        yield
    finally:
        if before is not None:
            con.execute(f"SET memory_limit = '{before}'")


@contextlib.contextmanager
def _single_threaded(con: Any) -> Iterator[int]:
    """DuckDB on one thread for the time of a posting (set and reset outside the transaction); yields the
    session's thread count.

    The posting's statements are many and small (tens of thousands of rows each):
    with a second thread DuckDB spends more on coordinating and on writing temp
    tables in parallel than it gains; one thread made the posting ~15% faster.
    A failed transaction accepts no SET until it is rolled back, hence outside. The
    COMMIT gets the session's threads back (set inside the healthy transaction): when it
    checkpoints the log, two threads did it in 2.5-3.6 s against 3.4-3.9 s on one.
    """
    row = con.execute("SELECT current_setting('threads')").fetchone()
    threads = int(row[0]) if row else os.cpu_count() or 1
    con.execute("SET threads = 1")
    try:
        yield threads
    finally:
        con.execute(f"SET threads = {threads}")


def _read_and_stage(recon: Any, path: Path, name: str, stager: Stager, outcome: FileOutcome,
                    stream: bool = True) -> int:
    """Read, check and stage every transaction; returns how many are new."""
    if stream:
        return _stream_and_stage(recon, path, name, stager, outcome)

    def transactions() -> Iterator[tuple[int, Remittance, Decimal]]:
        for st, (rem, imbalances) in enumerate(read_835_checked(path, name=name), start=1):
            if rem.defects or imbalances:  # the gate's checks, made in the reading pass
                raise _bad_file(path, name)
            yield st, rem, plb_total(rem)

    try:
        with gc_paused():
            rows = _check_transactions(recon, name, transactions(), outcome, stager.add)
            stager.flush()
    except RemittanceError as exc:  # the reader refused the file (envelope, truncation, a bad value)
        raise _bad_file(path, name, exc.message) from exc
    _stage_remittances(stager.con, rows)
    return len(rows)


def _stream_and_stage(recon: Any, path: Path, name: str, stager: Stager, outcome: FileOutcome) -> int:
    """``_read_and_stage`` holding a few thousand claims at a time, whatever the file's size.

    A transaction is checked (payer, already posted, conflict) on its header as read
    before its first claim (:class:`~recon.remit.era835.ClaimBatch`), and only a new
    one's claims are staged, batch by batch. At its SE the finished transaction must
    pass the gate and agree with that header (:func:`~recon.remit.era835.same_header`;
    a file with header segments after a claim is read again the whole way,
    :class:`_Reread`). The outcome is then completed as ``_read_and_stage`` leaves it:
    SE-time warnings in their place, Σ PLB, the claim counts of the ``s_rem`` rows.
    """
    new: set[int] = set()
    early: dict[int, Remittance] = {}
    late: dict[int, tuple[int, Remittance, int]] = {}  # st -> (where its warnings go, the SE record, claims)

    def transactions() -> Iterator[tuple[int, Remittance, Decimal]]:
        for part in read_835_stream(path, name=name):
            st = part.st
            if isinstance(part, ClaimBatch):
                if st not in early:
                    early[st] = part.header
                    mark = len(outcome.warnings) + len(part.header.warnings)
                    yield st, part.header, ZERO
                    late[st] = (mark, part.header, 0)
                if st in new:
                    stager.add_claims(st, part.claims)
                continue
            rem = part.remittance
            if rem.defects or part.imbalances:  # the gate's checks, made in the reading pass
                raise _bad_file(path, name)
            header = early.get(st)
            if header is None:  # no claims: checked as a whole
                yield st, rem, plb_total(rem)
            elif not same_header(header, rem) or rem.warnings[: len(header.warnings)] != header.warnings:
                raise _Reread
            else:
                late[st] = (late[st][0], rem, part.claims)
            if st in new:
                stager.add_plb(st, rem.provider_adjustments)

    try:
        with gc_paused():
            rows = _check_transactions(recon, name, transactions(), outcome, lambda st, rem: new.add(st))
            stager.flush()
    except RemittanceError as exc:  # the reader refused the file (envelope, truncation, a bad value)
        raise _bad_file(path, name, exc.message) from exc
    for st in sorted(late, reverse=True):  # later marks first: earlier ones stay where they were
        mark, rem, _ = late[st]
        outcome.warnings[mark:mark] = rem.warnings[len(early[st].warnings):]
        outcome.plb_amount += plb_total(rem)
    for row in rows:
        if row[0] in late:
            row[-1] = late[row[0]][2]
    _stage_remittances(stager.con, rows)
    return len(rows)


def _stage_prepared(recon: Any, prepared: Prepared, name: str, stager: Stager, outcome: FileOutcome) -> int:
    """``_read_and_stage`` for a file a reader process read: the same checks, its chunk files loaded.

    Its chunks number the claims of every transaction, so they serve when all are new
    (or none, nothing staged); with only some new the file is read again here
    (decided before any remittance id is drawn, so ids are the same as in process).
    """
    headers = prepared.headers
    if not _all_or_none_new(recon, headers):
        raise _Reread
    rows = _check_transactions(recon, name, ((st, h, h.plb) for st, h in enumerate(headers, start=1)), outcome,
                               lambda st, rem: None)
    if rows:
        first: int | None = None
        for n, (lo, hi, files) in enumerate(prepared.chunks, start=1):
            stager.load_files(lo, hi, files, after=False)
            first = lo if first is None else first
            if hi - first >= PREPARED_MATCH or n == len(prepared.chunks):
                stager.run_after(first, hi)
                first = None
    _stage_remittances(stager.con, rows)
    return len(rows)


def _all_or_none_new(recon: Any, headers: Sequence[Header]) -> bool:
    """True unless the file would be posted with only some of its transactions (no refusal among them)."""
    seen: dict[tuple[str, str], Header] = {}
    scratch: list[str] = []
    new = 0
    for h in headers:
        payer = _payer(recon, h)
        if payer is None:
            return True  # refused as a whole
        key = (payer[0], h.trace_number)
        done = _already(recon, key, h, seen.get(key), scratch)
        seen.setdefault(key, h)
        new += done is None
    return bool(scratch) or new in (0, len(headers))


def _check_transactions(recon: Any, name: str, transactions: Iterable[tuple[int, Any, Decimal]],
                        outcome: FileOutcome, stage: Callable[[int, Any], None]) -> list[list[Any]]:
    """Payer, already posted or conflicting, remittance ids; ``stage`` each new transaction.

    ``transactions``: (ST number, Remittance or prepared Header, Σ PLB). Returns the
    ``s_rem`` rows; raises ``_Refused`` for an unknown payer or a conflict.
    """
    rows: list[list[Any]] = []
    seen: dict[tuple[str, str], Any] = {}
    unknown: list[str] = []
    conflicts: list[str] = []
    traces: list[str] = []
    payers: list[str] = []
    for st, rem, plb in transactions:
        outcome.warnings.extend(rem.warnings)  # values the reader repaired, each named
        outcome.amount += rem.amount
        outcome.plb_amount += plb
        traces.append(rem.trace_number)
        payer = _payer(recon, rem)
        if payer is None:
            unknown.append(_ids(rem))
            continue
        payers.append(payer[0])
        key = (payer[0], rem.trace_number)
        done = _already(recon, key, rem, seen.get(key), conflicts)
        seen.setdefault(key, rem)
        if done is not None:
            if not done.startswith("("):
                outcome.remittance_ids.append(done)
            outcome.warnings.append(f"ST {rem.envelope.transaction_control}: remittance {key[0]} trace "
                                    f"{key[1]} was already posted ({done}); nothing of it was posted again")
            continue
        if conflicts or unknown:
            continue
        rid = _next_id(recon)
        outcome.remittance_ids.append(rid)
        if rem.notification_only:
            outcome.warnings.append(f"ST {rem.envelope.transaction_control}: BPR01 = H (notification "
                                    f"only): claims are posted, BPR02 {fmt(rem.amount)} expects no deposit")
        rows.append([st, rid, payer[0], rem.trace_number, rem.method, rem.handling_code, rem.amount,
                     rem.payment_date, name, rem.payer_name, payer[1], rem.envelope.transaction_control,
                     _n_claims(rem)])
        stage(st, rem)
    outcome.trace_number = ", ".join(dict.fromkeys(traces))
    outcome.payer_id = ", ".join(dict.fromkeys(payers))
    if unknown:
        raise _Refused("rejected", "unknown payer: no insurance provider matches " + "; ".join(unknown)
                       + f"; add or map the payer (insurance_providers.payer_identifier) and post {name} "
                       "again; nothing was posted")
    if conflicts:
        raise _Refused("conflict", "; ".join(conflicts) + f"; nothing of {name} was posted", conflicts)
    return rows


def _n_claims(rem: Remittance | Header) -> int:
    return rem.n_claims if isinstance(rem, Header) else len(rem.claims)


def _bad_file(path: Path, name: str, first: str | None = None) -> _Refused:
    """The complete list of a bad file's problems, from the validation gate itself."""
    from recon.remit.validate import validate_file

    report = validate_file(path, name=name)
    problems = list(report.errors) or ([first] if first else ["the file does not pass validation"])
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return _Refused("rejected", f"{problems[0]}{more}; nothing of {name} was posted", problems)


def _ids(rem: Remittance | Header) -> str:
    parts = [f"REF*2U {rem.payer_ref_id!r}" if rem.payer_ref_id else "no REF*2U",
             f"TRN03 {rem.originator_id!r}" if rem.originator_id else "no TRN03",
             f"N1*PR {rem.payer_name!r}" + (f" id {rem.payer_n1_id!r}" if rem.payer_n1_id else "")]
    return f"ST {rem.envelope.transaction_control} (trace {rem.trace_number}): " + ", ".join(parts)


def _payer(recon: Any, rem: Remittance | Header) -> tuple[str, str] | None:
    """(payer_id, the id that matched) by REF*2U, then TRN03 (with or without its leading 1), N1*PR."""
    candidates = [rem.payer_ref_id, rem.originator_id]
    if len(rem.originator_id) == 10 and rem.originator_id.startswith("1"):
        candidates.append(rem.originator_id[1:])
    candidates.append(rem.payer_n1_id)
    for ident in (c.strip() for c in candidates):
        if not ident:
            continue
        row = recon.one(
            """SELECT payer_id FROM insurance_providers WHERE payer_identifier = ? OR payer_id = ?
               ORDER BY payer_identifier = ? DESC, payer_id LIMIT 1""", [ident, ident, ident])
        if row:
            return row[0], ident
    if rem.payer_name.strip():
        row = recon.one("SELECT payer_id FROM insurance_providers WHERE upper(name) = upper(?) ORDER BY payer_id "
                        "LIMIT 1", [rem.payer_name.strip()])
        if row:
            return row[0], rem.payer_name.strip()
    return None


def _already(recon: Any, key: tuple[str, str], rem: Remittance | Header, earlier: Remittance | Header | None,
             conflicts: list[str]) -> str | None:
    """The remittance id when payer + TRN02 was posted with the same BPR02 and BPR16."""
    if earlier is not None:  # twice in one file
        if (earlier.amount, earlier.payment_date) != (rem.amount, rem.payment_date):
            conflicts.append(f"trace {key[1]} of payer {key[0]} appears twice in the file with different amounts "
                             f"or dates ({fmt(earlier.amount)} {earlier.payment_date} vs {fmt(rem.amount)} "
                             f"{rem.payment_date})")
        return "(earlier in this file)"
    row = recon.one("SELECT remittance_id, amount, paid_on, file_name FROM remittances "
                    "WHERE payer_id = ? AND trace_number = ?", list(key))
    if row is None:
        return None
    if (row[1], row[2]) != (rem.amount, rem.payment_date):
        conflicts.append(f"conflict: payer {key[0]} trace {key[1]} was posted as {row[0]} from {row[3]} with "
                         f"BPR02 {fmt(row[1])} paid {row[2]}, but this file says BPR02 {fmt(rem.amount)} paid "
                         f"{rem.payment_date}")
        return None
    return str(row[0])


def _next_id(recon: Any) -> str:
    row = recon.one("SELECT nextval('remittance_seq')")
    return f"REM-{row[0]:06d}"


def _stage_remittances(con: Any, rows: list[list[Any]]) -> None:
    con.execute("""CREATE OR REPLACE TEMP TABLE s_rem (st INTEGER, remittance_id VARCHAR, payer_id VARCHAR,
                     trace VARCHAR, method VARCHAR, handling VARCHAR, amount DECIMAL(18,2), paid_on DATE,
                     file_name VARCHAR, payer_name VARCHAR, payer_identifier VARCHAR, st_control VARCHAR,
                     claims INTEGER)""")
    for row in rows:
        con.execute(bind("INSERT INTO s_rem VALUES (" + ", ".join("?" * len(row)) + ")", row))


def _post_staged(recon: Any, poster: Poster, outcome: FileOutcome, user_id: str) -> None:
    poster.finish()
    poster.check_invariant()
    counts = poster.counts()
    outcome.claims_posted = counts.get("posted", 0)
    outcome.claims_denied = counts.get("denied", 0)
    outcome.claims_unmatched = sum(counts.get(k, 0) for k in ("unmatched", "not_our_claim", "unmatched_reversal",
                                                               "reversal_mismatch", "payer_not_on_policy"))
    outcome.claims_reversed = counts.get("reversal", 0)
    held = recon.one("SELECT coalesce(sum(unmatched_amount), 0) FROM remittances "
                     "WHERE remittance_id IN (SELECT remittance_id FROM s_rem)")
    outcome.unmatched_amount = held[0] if held else ZERO
    outcome.claims = _preview(recon)
    for r in recon.execute("SELECT remittance_id, trace_number, amount, plb_amount, unmatched_amount, file_name "
                           "FROM remittances WHERE remittance_id IN (SELECT remittance_id FROM s_rem)").fetchall():
        recon.audit(user_id, "post_remittance", "remittance", r[0],
                    {"trace_number": r[1], "amount": fmt(r[2]), "plb_amount": fmt(r[3]),
                     "unmatched_amount": fmt(r[4]), "file": r[5], "counts": counts})
    if outcome.claims_unmatched:
        outcome.warnings.append(f"{outcome.claims_unmatched} claim(s) matched no invoice: "
                                f"{fmt(outcome.unmatched_amount)} held on the remittance (see recon exceptions)")
    poster.cleanup()


def _preview(recon: Any, limit: int = PREVIEW_LIMIT) -> list[ClaimPreview]:
    """The first ``limit`` claims of the file with their invoices and adjustments (staged tables).

    Claims are numbered 1, 2, ... in file order (``ci``), so the first ``limit`` are
    ``ci <= limit``: a filter every staged table can apply while it is scanned.
    """
    top = f"ci <= {int(limit)}"
    rows = recon.execute(f"""
        WITH li AS (SELECT ci, string_agg(DISTINCT invoice_id, ', ') AS inv FROM m_line WHERE {top} GROUP BY ci),
             ci_inv AS (SELECT ci, string_agg(DISTINCT invoice_id, ', ') AS inv FROM m_inv WHERE {top} GROUP BY ci),
             adj AS (SELECT ci, string_agg(grp || '-' || reason || ' ' || CAST(amount AS VARCHAR), '; ' ORDER BY k)
                            AS adj
                     FROM s_cas WHERE {top} GROUP BY ci)
        SELECT r.remittance_id, c.clp01, c.status, m.outcome, coalesce(li.inv, ci_inv.inv, ''),
               c.charge, c.paid, h.held, coalesce(adj.adj, '')
        FROM s_claim c JOIN m_claim m USING (ci) JOIN m_held h USING (ci) JOIN s_rem r ON r.st = c.st
        LEFT JOIN li USING (ci) LEFT JOIN ci_inv USING (ci) LEFT JOIN adj USING (ci)
        WHERE c.{top}
        ORDER BY c.ci""").fetchall()
    return [ClaimPreview(*r) for r in rows]
