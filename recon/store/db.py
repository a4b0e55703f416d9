"""Open the ledger file (plain or encrypted), apply the schema, run transactions.

The ledger holds PHI. With a key (``RECON_DB_KEY``) the file is encrypted at rest
with DuckDB's database encryption; writing an encrypted file needs the httpfs
extension's crypto, which ships on PyPI as ``duckdb-extension-httpfs`` and is loaded
here by path (nothing can be downloaded at run time).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import duckdb

from recon.errors import LedgerError
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


def default_db_path() -> Path:
    """``RECON_DB`` if set, else ``data/recon.duckdb`` under the current folder."""
    env = os.environ.get("RECON_DB")
    return Path(env) if env else DEFAULT_DB


def _httpfs_extension() -> str:
    try:
        import duckdb_extension_httpfs
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise LedgerError("An encrypted ledger needs the duckdb-extension-httpfs package; reinstall recon") from exc
    base = os.path.dirname(duckdb_extension_httpfs.__file__)
    found = glob.glob(os.path.join(base, "extensions", f"v{duckdb.__version__}", "*.duckdb_extension"))
    if not found:
        raise LedgerError(
            f"No httpfs extension for DuckDB {duckdb.__version__} in {base}; "
            "install the duckdb-extension-httpfs version matching duckdb"
        )
    return found[0]


def connect(path: str | os.PathLike[str], key: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open (creating when missing) the ledger at ``path`` and bring its schema up to date."""
    con = session(key)
    attach(con, Path(path), key)
    return con


def session(key: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB session to which the ledger file is attached when in use.

    Attaching (a few milliseconds) rather than connecting lets a notebook release the
    file between actions, so the CLI or another notebook can use the same ledger.
    """
    con = duckdb.connect(":memory:")
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


def attach(con: duckdb.DuckDBPyConnection, path: Path, key: str | None) -> None:
    """Attach the ledger file as the session's default catalog (schema brought up to date)."""
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
        # Spills beside the ledger (not in whatever folder the caller runs from), and
        # encrypted like the ledger: a spilled page may hold PHI.
        con.execute(f"SET temp_directory = {_quote(str(path) + '.tmp')}")
        if key:
            con.execute("SET temp_file_encryption = true")
    try:
        if key:
            con.execute(f"ATTACH {_quote(str(path))} AS {ALIAS} (ENCRYPTION_KEY {_quote(key)})")
        else:
            con.execute(f"ATTACH {_quote(str(path))} AS {ALIAS}")
        con.execute(f"USE {ALIAS}")
    except duckdb.Error as exc:
        raise LedgerError(_explain_open_error(path, exc, key is not None)) from exc
    _apply_schema(con)


def detach(con: duckdb.DuckDBPyConnection) -> None:
    """Checkpoint and let go of the ledger file (its lock is released)."""
    with contextlib.suppress(duckdb.Error):
        con.execute("CHECKPOINT")
    con.execute("USE memory")
    con.execute(f"DETACH {ALIAS}")


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
    if "lock" in text.lower():
        return f"The ledger {path} is open in another program (a notebook or another recon); close it and retry"
    if "not a valid DuckDB database" in text or "Could not read" in text:
        return f"{path} is not a recon ledger (not a DuckDB database file)"
    return f"The ledger {path} could not be opened: {text.splitlines()[0]}"


def _apply_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Run every ``recon/store/*.sql`` in name order; each is idempotent (IF NOT EXISTS).

    Other parts of recon (remittances, card attempts) add their tables as their own
    numbered files, so the ledger schema stays one place to read.
    """
    files = sorted(
        (f for f in resources.files("recon.store").iterdir() if f.name.endswith(".sql")),
        key=lambda f: f.name,
    )
    texts = [f.read_text() for f in files]
    digest = hashlib.sha256("\0".join(texts).encode()).hexdigest()
    if _current_schema(con) == digest:
        return  # opening an up-to-date ledger writes nothing
    with transaction(con):
        for text in texts:
            for statement in _statements(text):
                con.execute(statement)
        # A literal, not a bound parameter: binding a Python value makes DuckDB import pandas.
        con.execute(
            f"INSERT INTO meta VALUES ('schema', {literal(digest)}) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        )


def _current_schema(con: duckdb.DuckDBPyConnection) -> str | None:
    try:
        row = con.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except duckdb.CatalogException:
        return None
    return row[0] if row else None


def _statements(sql: str) -> Iterator[str]:
    # Schema files keep string literals free of "--" and ";", so comments strip simply.
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    for statement in "\n".join(lines).split(";"):
        if statement.strip():
            yield statement


@contextlib.contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """All or nothing: commit when the block ends, roll back on any exception."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    else:
        try:
            con.execute("COMMIT")
        except duckdb.Error as exc:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            raise LedgerError(f"The change could not be saved: {str(exc).splitlines()[0]}") from exc
