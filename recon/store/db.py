"""Open the ledger file (plain or encrypted), apply the schema, run transactions.

The ledger holds PHI. With a key (``RECON_DB_KEY``) the file is encrypted at rest
with DuckDB's database encryption; writing an encrypted file needs the httpfs
extension's crypto, which ships on PyPI as ``duckdb-extension-httpfs`` and is loaded
here by path (nothing can be downloaded at run time).
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import re
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from recon.errors import LedgerError
from recon.procs import running
from recon.store import migrations
from recon.store.extensions import from_wheel
from recon.store.pg import SESSION_CONFIG as PG_SESSION_CONFIG
from recon.store.pg import PgLedger, is_postgres, masked
from recon.store.sql import literal

DEFAULT_DB = Path("data") / "recon.duckdb"
CHECKPOINT_THRESHOLD = "256MB"
MEMORY_LIMIT = "300MB"
"""DuckDB's memory (buffer pool) limit for a session; beyond it DuckDB evicts or spills to disk.

Committed rows stay cached until the write-ahead log is checkpointed; without a limit
a batch of 835 files grows by ~45 MB a file up to the checkpoint (a million claims over
32 files: RSS 164 MB after file 1, 713 MB before the 2nd checkpoint, peak 860 MB).
Measured on that batch (2 CPUs, bench/bench_835_post.py), total seconds / RSS range / peak:
no limit, threshold 256MB 55.6 s / 164-713 MB / 860 MB; 300MB + 256MB 56.5 s / 149-388 MB /
448 MB; 300MB + 128MB 62.2 s / 136-354 / 433; 300MB + 64MB 66.6 s / 121-338 / 424; 200MB +
32MB 84.6 s / 107-185 / 339. A checkpoint costs 3-7 s whatever the log's size (it grows
with the ledger), so a lower threshold only adds checkpoints; the limit bounds memory at
no measurable cost. Hence 300MB with the 256MB threshold: memory bounded, not growing with
the number of files, and the million claims within a minute.
"""
ALIAS = "ledger"
WAIT_SUFFIX = ".wait-"
DEFAULT_WAIT = 15.0
"""Seconds to wait for a ledger another program is using (``RECON_DB_WAIT``) before refusing.

DuckDB lets one process write a file at a time; recon commands hold it only while they
work (a notebook lets go whenever its kernel is idle), so a second analyst's command
waits its turn instead of failing.
"""


Target = Path | str
"""Where a ledger lives: a DuckDB file's path, or a ``postgresql://`` URI (see :mod:`recon.store.pg`)."""


def default_db_path() -> Target:
    """``RECON_DB`` if set (a file or a ``postgresql://`` URI), else ``data/recon.duckdb`` under the current folder."""
    env = os.environ.get("RECON_DB")
    if env and is_postgres(env):
        return env
    return Path(env) if env else DEFAULT_DB


def target(db: str | os.PathLike[str]) -> Target:
    """A ``--db`` value as a ledger target (a URI stays text: a Path would fold its ``//``)."""
    return db if is_postgres(db) else Path(db)


def describe(where: Target) -> str:
    """The ledger's name for a message: the file, or the URI with its password masked."""
    return masked(where) if isinstance(where, str) and is_postgres(where) else str(where)


_PG: dict[int, PgLedger] = {}
"""The PostgreSQL link of each session with a server ledger attached (by ``id`` of the session)."""


def postgres_of(con: duckdb.DuckDBPyConnection) -> PgLedger | None:
    return _PG.get(id(con))


def engine(con: duckdb.DuckDBPyConnection) -> str:
    """``postgresql`` or ``duckdb``: which engine holds the session's ledger."""
    return "postgresql" if id(con) in _PG else "duckdb"


def _httpfs_extension() -> str:
    return from_wheel("duckdb-extension-httpfs", "An encrypted ledger")


def wait_seconds(wait: float | None = None) -> float:
    """How long to wait for a busy ledger: ``wait``, else ``RECON_DB_WAIT``, else 15 s."""
    if wait is None:
        text = os.environ.get("RECON_DB_WAIT", "").strip()
        if not text:
            return DEFAULT_WAIT
        try:
            wait = float(text)  # not money: seconds
        except ValueError:
            raise LedgerError(f"RECON_DB_WAIT: {text[:60]!r} is not a number of seconds") from None
    if not math.isfinite(wait) or wait < 0:
        raise LedgerError(f"RECON_DB_WAIT: {wait} is not a number of seconds (0 or more)")
    return float(wait)  # not money: seconds


def connect(
    path: str | os.PathLike[str], key: str | None = None, *, wait: float | None = None
) -> duckdb.DuckDBPyConnection:
    """Open (creating when missing) the ledger at ``path`` and bring its schema up to date."""
    where = target(path)
    con = session(key, postgres=isinstance(where, str))
    attach(con, where, key, wait=wait)
    return con


def session(key: str | None = None, *, postgres: bool = False) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB session to which the ledger file is attached when in use.

    Attaching (a few milliseconds) rather than connecting lets a notebook release the
    file between actions, so the CLI or another notebook can use the same ledger.
    """
    # No progress bar: DuckDB draws one on stdout for a query past 2 s, which would
    # land in CLI output (csv/json) and notebook cells on a busy machine.
    con = duckdb.connect(":memory:", config=dict(PG_SESSION_CONFIG) if postgres else {})
    con.execute("SET enable_progress_bar = false")
    # A commit is durable in the write-ahead log; folding the log into the file (a
    # checkpoint) is left to release/close instead of the commit of a large 835 file.
    con.execute(f"SET checkpoint_threshold = '{CHECKPOINT_THRESHOLD}'")
    con.execute(f"SET memory_limit = '{MEMORY_LIMIT}'")
    if key:
        try:
            con.execute(f"LOAD '{_httpfs_extension()}'")
        except duckdb.Error as exc:
            raise LedgerError(f"The encryption extension could not be loaded: {str(exc).splitlines()[0]}") from exc
    return con


def attach(con: duckdb.DuckDBPyConnection, path: Target, key: str | None, *, wait: float | None = None) -> None:
    """Attach the ledger file as the session's default catalog (schema brought up to date).

    A ledger another program is writing is waited for (``wait``, see :func:`wait_seconds`),
    then refused. A posting a crash cut short is cleaned up here, before anything reads
    or writes (:mod:`recon.store.integrity`), as is staging a crashed posting left behind.
    A ``postgresql://`` target is attached from the server instead (:mod:`recon.store.pg`):
    the server keeps every transaction whole, so there is no file lock and no debris.
    """
    _remove_stale_staging()
    if isinstance(path, str):
        _attach_postgres(con, path, key)
        return
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
        # Spills beside the ledger (not in whatever folder the caller runs from), and
        # encrypted like the ledger: a spilled page may hold PHI.
        con.execute(f"SET temp_directory = {_quote(str(path) + '.tmp')}")
        if key:
            con.execute("SET temp_file_encryption = true")
    _attach_waiting(con, path, key, wait)
    try:
        con.execute(f"USE {ALIAS}")
        upgraded = _apply_schema(con)
        from recon.store.integrity import recover

        recover(con, str(path), upgraded=upgraded)
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("USE memory")
            con.execute(f"DETACH {ALIAS}")
        raise


def _attach_postgres(con: duckdb.DuckDBPyConnection, uri: str, key: str | None) -> None:
    if key:
        raise LedgerError(
            f"RECON_DB_KEY encrypts a ledger file; the ledger {masked(uri)} is on a PostgreSQL server, "
            "which protects it (sslmode=require, the server's disk encryption): unset RECON_DB_KEY"
        )
    ledger = PgLedger(uri)
    try:
        ledger.attach(con, ALIAS)
    except BaseException:
        ledger.close()
        with contextlib.suppress(duckdb.Error):
            con.execute("USE memory")
            con.execute(f"DETACH {ALIAS}")
        raise
    _PG[id(con)] = ledger


def _attach_waiting(con: duckdb.DuckDBPyConnection, path: Path, key: str | None, wait: float | None) -> None:
    """ATTACH, retrying while another process holds the file's lock, up to the wait; said once on stderr.

    While it waits, a sidecar file ``<ledger>.wait-PID`` says so, and a program that
    holds the ledger between actions (a script's long-lived Recon) lets it go at its
    next transaction (:func:`others_waiting`).
    """
    sql = f"ATTACH {_quote(str(path))} AS {ALIAS}" + (f" (ENCRYPTION_KEY {_quote(key)})" if key else "")
    deadline: float | None = None
    limit = 0.0
    sign: Path | None = None
    try:
        while True:
            try:
                con.execute(sql)
                return
            except duckdb.Error as exc:
                if not _held_elsewhere(exc):
                    raise LedgerError(_explain_open_error(path, exc, key is not None)) from exc
                now = time.monotonic()
                if deadline is None:
                    limit = wait_seconds(wait)
                    deadline = now + limit
                    if limit > 0:
                        sys.stderr.write(
                            f"recon: the ledger {path} is in use by another program{_holder(exc)}; "
                            f"waiting up to {limit:g} s for it (RECON_DB_WAIT sets how long)\n"
                        )
                        sys.stderr.flush()
                        sign = _waiting_sign(path)
                if now >= deadline:
                    raise LedgerError(
                        f"The ledger {path} is open in another program{_holder(exc)} (a notebook or another recon)"
                        + (f" and stayed busy for {limit:g} s" if limit > 0 else "")
                        + "; nothing was changed: close it and retry"
                    ) from exc
                time.sleep(min(deadline - now, random.uniform(0.01, 0.06)))  # the holder may be quick to retake it
    finally:
        if sign is not None:
            with contextlib.suppress(OSError):
                sign.unlink()


def _waiting_sign(path: Path) -> Path | None:
    sign = path.with_name(f"{path.name}{WAIT_SUFFIX}{os.getpid()}")
    try:
        sign.touch()
    except OSError:  # a folder this user cannot write: wait without the sign
        return None
    return sign


def others_waiting(path: Path) -> bool:
    """True when another running process waits for the ledger at ``path`` (its ``.wait-PID`` sign)."""
    prefix = path.name + WAIT_SUFFIX
    try:
        entries = list(os.scandir(path.parent if str(path.parent) else "."))
    except OSError:
        return False
    for entry in entries:
        pid = entry.name[len(prefix) :] if entry.name.startswith(prefix) else ""
        if pid.isdigit() and int(pid) != os.getpid():
            if running(int(pid)):
                return True
            with contextlib.suppress(OSError):  # left by a waiter that was killed
                os.remove(entry.path)
    return False


def _held_elsewhere(exc: duckdb.Error) -> bool:
    """DuckDB's refusal when another process holds the file's lock."""
    text = str(exc)
    return "Unique file handle conflict" not in text and "lock" in text.lower()


def _holder(exc: duckdb.Error) -> str:
    found = re.search(r"\(PID (\d+)\)", str(exc))
    return f" (process {found.group(1)})" if found else ""


_stale_checked = False


def _remove_stale_staging() -> None:
    """Once per process: remove staging folders that a killed posting left in the temp folder."""
    global _stale_checked
    if _stale_checked:
        return
    _stale_checked = True
    from recon.remit.stage import remove_stale_scratch

    remove_stale_scratch()


def detach(con: duckdb.DuckDBPyConnection) -> None:
    """Checkpoint and let go of the ledger file (its lock is released); for a server ledger, close the link."""
    ledger = _PG.pop(id(con), None)
    if ledger is None:
        with contextlib.suppress(duckdb.Error):
            con.execute("CHECKPOINT")
    con.execute("USE memory")
    con.execute(f"DETACH {ALIAS}")
    if ledger is not None:
        ledger.close()


def _quote(text: str) -> str:
    """A SQL string literal (ATTACH takes no bound parameters)."""
    return "'" + text.replace("'", "''") + "'"


def _explain_open_error(path: Path, exc: duckdb.Error, with_key: bool) -> str:
    text = str(exc)
    if "without a key" in text:
        return f"The ledger {path} is encrypted: set RECON_DB_KEY to its key to open it"
    if "Wrong encryption key" in text:
        return f"The ledger {path} could not be opened: the encryption key is wrong"
    if "is not encrypted" in text:
        return (
            f"The ledger {path} is not encrypted but a key was given; unset RECON_DB_KEY "
            "to open it, or export it and load it into a new encrypted ledger"
        )
    if "Unique file handle conflict" in text:
        return f"The ledger {path} is already open in this Python session; use that Recon or close it first"
    if "not a valid DuckDB database" in text or "Could not read" in text:
        return f"{path} is not a recon ledger (not a DuckDB database file)"
    return f"The ledger {path} could not be opened: {text.splitlines()[0]}"


def _apply_schema(con: duckdb.DuckDBPyConnection) -> bool:
    """Apply the migrations the ledger lacks (:mod:`recon.store.migrations`); True when any was.

    Other parts of recon (remittances, card attempts) add their tables as their own
    numbered files, so the ledger schema stays one place to read.
    """
    target_digest = migrations.digest()
    if _current_schema(con) == target_digest:
        return False  # opening an up-to-date ledger writes nothing
    with transaction(con):
        con.execute(migrations.BOOTSTRAP)
        recorded = dict(con.execute("SELECT version, checksum FROM schema_migrations").fetchall())
        stamp = literal(datetime.now(UTC).replace(tzinfo=None))
        for migration in migrations.pending(recorded):
            for statement in migration.statements():
                con.execute(statement)
            # Literals, not bound parameters: binding a Python value makes DuckDB import pandas.
            con.execute(
                f"INSERT INTO schema_migrations VALUES ({migration.version}, {literal(migration.name)}, "
                f"{literal(migration.checksum)}, {stamp}) ON CONFLICT (version) DO UPDATE SET "
                "name = excluded.name, checksum = excluded.checksum, applied_at = excluded.applied_at"
            )
        con.execute(
            f"INSERT INTO meta VALUES ('schema', {literal(target_digest)}) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )
    return True


def _current_schema(con: duckdb.DuckDBPyConnection) -> str | None:
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except duckdb.CatalogException:
        return None
    return row[0] if row else None


def begin(con: duckdb.DuckDBPyConnection, client: str | None = None) -> None:
    """BEGIN a transaction that may change the ledger (on a server ledger: after taking its locks).

    ``client``: it changes only that client's ledger, so on a server it may run beside
    other clients' (a DuckDB file has one writer at a time anyway).
    """
    ledger = _PG.get(id(con))
    if ledger is None:
        con.execute("BEGIN TRANSACTION")
    else:
        ledger.begin(con, client)


def commit(con: duckdb.DuckDBPyConnection) -> None:
    ledger = _PG.get(id(con))
    if ledger is None:
        con.execute("COMMIT")
    else:
        ledger.commit(con)


def rollback(con: duckdb.DuckDBPyConnection) -> None:
    ledger = _PG.get(id(con))
    if ledger is None:
        con.execute("ROLLBACK")
    else:
        ledger.rollback(con)


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection, client: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: commit when the block ends, roll back on any exception (``client``: see :func:`begin`)."""
    begin(con, client)
    try:
        yield con
    except BaseException:
        rollback(con)
        raise
    else:
        try:
            commit(con)
        except duckdb.Error as exc:
            with contextlib.suppress(duckdb.Error):
                rollback(con)
            raise LedgerError(f"The change could not be saved: {str(exc).splitlines()[0]}") from exc
