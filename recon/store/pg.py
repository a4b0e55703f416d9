"""A ledger on a PostgreSQL server: the tables live there, DuckDB does the querying.

Why this shape: every rule of recon is written once, as DuckDB SQL run in one
session (:mod:`recon.store.db`). DuckDB's postgres extension (PyPI
``duckdb-extension-postgres``, the same version as DuckDB) attaches the server's
database as the session's ``ledger`` catalog, so the same statements read and write
the server's tables; a DuckDB transaction is one server transaction. psycopg 3 does
what DuckDB cannot: apply the migrations in PostgreSQL's own DDL (constraints and
sequences live on the server), and take the ledger's write lock.

Concurrency, correct by construction: a transaction that changes the ledger takes
its locks (PostgreSQL advisory locks, on a psycopg connection of its own) *before* it
begins. The extension runs its transactions at REPEATABLE READ, so the snapshot a
change is planned on is taken after the previous holder committed. A payment takes
its client's lock and the ledger lock shared (payments for one client take turns:
no invoice is paid beyond its open amount, no update is lost; different clients'
payments run at once); anything else takes the ledger lock exclusively. A busy
ledger is waited for, never refused; readers take no lock; a process that dies lets
go with its connection.

The ledger's numbers (payments, entries, remittances, exceptions) come from the
``id_blocks`` counters: a transaction alone continues from them, one beside others
reserves a block in one atomic UPDATE. DuckDB draws them from temporary sequences
bounded by what was reserved, so no number is ever drawn twice.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import duckdb

from recon.errors import LedgerError
from recon.store import migrations
from recon.store.extensions import from_wheel
from recon.store.sql import literal

SCHEMES = ("postgresql://", "postgres://")
SEQUENCES = ("remittance_seq", "payment_seq", "entry_seq", "exception_seq")
WRITE_LOCK = 0x7265636F6E  # "recon": the ledger's write lock (pg_advisory_lock key)
MIGRATE_LOCK = WRITE_LOCK + 1
CLIENT_LOCKS = 0x72636C  # the key space of the per-client locks: (CLIENT_LOCKS, hashtext(client_id))
BLOCK = {"payment_seq": 20, "entry_seq": 100_000, "remittance_seq": 20, "exception_seq": 10_000}
"""Numbers a transaction beside others reserves per counter (the unused end is given back when it can be)."""


def is_postgres(target: object) -> bool:
    """True for a libpq connection URI (``postgresql://…`` or ``postgres://…``)."""
    return isinstance(target, str) and target.startswith(SCHEMES)


def masked(uri: str) -> str:
    """The URI with any password shown as ``***`` (for messages, logs and notebooks)."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "postgresql://***"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = parts.query
    if query:
        pairs = [(k, "***" if k.lower() == "password" else v) for k, v in parse_qsl(query, keep_blank_values=True)]
        query = urlencode(pairs, safe="*/")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _secrets(uri: str) -> list[str]:
    """Every password the URI or the environment holds (scrubbed from any message shown)."""
    found = []
    with contextlib.suppress(ValueError):
        parts = urlsplit(uri)
        if parts.password:
            found += [parts.password, unquote(parts.password)]
        found += [v for k, v in parse_qsl(parts.query) if k.lower() == "password" and v]
    if os.environ.get("PGPASSWORD"):
        found.append(os.environ["PGPASSWORD"])
    return [s for s in found if s]


def scrub(text: str, uri: str) -> str:
    """``text`` with the URI masked and no password in it."""
    text = text.replace(uri, masked(uri))
    for secret in _secrets(uri):
        text = text.replace(secret, "***")
    return text


def _extension() -> str:
    """The postgres extension's file, under the name DuckDB's LOAD expects (``postgres_scanner``).

    The wheel ships it as ``postgres.duckdb_extension``; DuckDB derives the entry point
    from the file name, so a link to the installed file is made once in a folder of
    this user's own (mode 0700; a folder anyone else could write is not used). Nothing
    is downloaded at run time. DuckDB's signature check of the 40 MB file costs half a
    second per session; the session loads it unchecked (:data:`SESSION_CONFIG`) because
    the link can only lead to the installed package, which is trusted like any import.
    """
    found = from_wheel("duckdb-extension-postgres", "A PostgreSQL ledger")
    installed = os.path.realpath(found)
    folder = os.path.join(tempfile.gettempdir(), f"recon-duckdb-{duckdb.__version__}-{os.getuid()}")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    info = os.lstat(folder)
    if info.st_uid != os.getuid() or info.st_mode & 0o077 or not os.path.isdir(folder):
        folder = tempfile.mkdtemp(prefix="recon-duckdb-")  # not ours alone: a private one for this process
    target = os.path.join(folder, "postgres_scanner.duckdb_extension")
    if not (os.path.islink(target) and os.path.realpath(target) == installed):
        staging = f"{target}.{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            os.remove(staging)
        os.symlink(installed, staging)
        os.replace(staging, target)
    return target


SESSION_CONFIG = {"allow_unsigned_extensions": True}
"""DuckDB settings of a session for a PostgreSQL ledger (see :func:`_extension`)."""


class PgLedger:
    """One session's link to a PostgreSQL ledger: the psycopg side connection and the write lock."""

    _said_waiting = False

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self.name = masked(uri)
        self._side: Any = None
        self._views: list[str] = []
        self._held: list[tuple[str, tuple[int | str, ...]]] = []
        self._blocks: dict[str, tuple[int, int | None]] = {}

    # ------------------------------------------------------------- connecting
    def _error(self, what: str, exc: BaseException) -> LedgerError:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return LedgerError(scrub(f"The ledger {self.name} {what}: {first}", self.uri))

    @property
    def side(self) -> Any:
        if self._side is None or self._side.closed:
            try:
                import psycopg
            except ImportError as exc:  # pragma: no cover - a dependency of the package
                raise LedgerError("A PostgreSQL ledger needs psycopg; reinstall recon") from exc
            try:
                self._side = psycopg.connect(self.uri, autocommit=True, application_name="recon")
            except Exception as exc:
                raise self._error("could not be reached", exc) from None
        return self._side

    def attach(self, con: duckdb.DuckDBPyConnection, alias: str) -> bool:
        """Bring the server's schema up to date, attach it as ``alias`` and make it the default catalog."""
        upgraded = self.migrate()
        try:
            con.execute(f"LOAD '{_extension()}'")
            con.execute(f"ATTACH {literal(self.uri)} AS {alias} (TYPE postgres)")
        except duckdb.Error as exc:
            raise self._error("could not be attached", exc) from None
        con.execute(f"USE {alias}")
        for statement in self._views:
            con.execute(migrations.temporary_view(statement))
        return upgraded

    def migrate(self) -> bool:
        """Apply the migrations the server's database lacks (one transaction, one migrator at a time)."""
        conn = self.side
        target = migrations.digest()
        self._views = [v for m in migrations.migrations() for v in m.views()]
        if self._current_digest(conn) == target:
            return False
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
                conn.execute(migrations.BOOTSTRAP)
                recorded = dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())
                for migration in migrations.pending(recorded):
                    for statement in migration.tables_and_sequences():
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO schema_migrations VALUES (%s, %s, %s, now() AT TIME ZONE 'UTC') "
                        "ON CONFLICT (version) DO UPDATE SET name = excluded.name, checksum = excluded.checksum, "
                        "applied_at = excluded.applied_at",
                        (migration.version, migration.name, migration.checksum),
                    )
                for name in SEQUENCES:  # the counters start where the sequences stand (recon before id_blocks)
                    conn.execute(
                        "INSERT INTO id_blocks SELECT %s, CASE WHEN is_called THEN last_value + 1 ELSE last_value END "
                        f"FROM {name} ON CONFLICT (name) DO NOTHING",
                        (name,),
                    )
                conn.execute(
                    "INSERT INTO meta VALUES ('schema', %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (target,),
                )
        except Exception as exc:
            raise self._error("could not be brought up to date", exc) from None
        return True

    @staticmethod
    def _current_digest(conn: Any) -> str | None:
        if conn.execute("SELECT to_regclass('meta') IS NULL").fetchone()[0]:
            return None
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        return row[0] if row else None

    # ------------------------------------------------------------ transactions
    def begin(self, con: duckdb.DuckDBPyConnection, client: str | None = None) -> None:
        """Take the locks (waiting for them), draw the numbers this transaction may use, BEGIN.

        ``client``: the transaction changes only that client's ledger (a payment); it
        runs beside other clients' payments. Without it the transaction may change any
        row (an 835, a worklist action) and runs alone.
        """
        if client is None:
            self._lock("pg_advisory_lock", "pg_advisory_unlock", WRITE_LOCK)
        else:
            self._lock("pg_advisory_lock_shared", "pg_advisory_unlock_shared", WRITE_LOCK)
            self._lock("pg_advisory_lock", "pg_advisory_unlock", CLIENT_LOCKS, client)
        try:
            self._blocks = self._draw(shared=client is not None)
            for name, (start, end) in self._blocks.items():
                bound = f" MAXVALUE {end - 1}" if end is not None else ""
                con.execute(f"CREATE OR REPLACE TEMP SEQUENCE {name} START {start}{bound}")
            con.execute("BEGIN TRANSACTION")
        except BaseException:
            self._give_back({})
            self._unlock()
            raise

    def _lock(self, take: str, release: str, *key: int | str) -> None:
        conn = self.side
        args = "%s" if len(key) == 1 else "%s, hashtext(%s)"
        try_take = take.replace("pg_advisory_lock", "pg_try_advisory_lock")
        if not conn.execute(f"SELECT {try_take}({args})", key).fetchone()[0]:
            if not PgLedger._said_waiting:  # once per process: a busy team would fill the terminal
                PgLedger._said_waiting = True
                sys.stderr.write(f"recon: another analyst is saving to the ledger {self.name}; waiting for them\n")
                sys.stderr.flush()
            conn.execute(f"SELECT {take}({args})", key)
        self._held.append((f"SELECT {release}({args})", key))

    def _draw(self, *, shared: bool) -> dict[str, tuple[int, int | None]]:
        """The numbers each sequence may hand out here: (first, end or None for open-ended).

        Alone (the exclusive lock), a transaction continues from where the server's
        counters stand. Beside others, it reserves a block of each counter in one
        atomic UPDATE, so two payments never draw the same number.
        """
        conn = self.side
        if not shared:
            rows = dict(conn.execute("SELECT name, next_value FROM id_blocks").fetchall())
            return {name: (int(rows[name]), None) for name in SEQUENCES}
        rows = conn.execute(
            "UPDATE id_blocks b SET next_value = b.next_value + s.size "
            f"FROM (VALUES {', '.join(['(%s, %s::bigint)'] * len(SEQUENCES))}) AS s(name, size) "
            "WHERE b.name = s.name RETURNING b.name, b.next_value - s.size",
            [x for name in SEQUENCES for x in (name, BLOCK[name])],
        ).fetchall()
        return {name: (int(start), int(start) + BLOCK[name]) for name, start in rows}

    def _give_back(self, used: dict[str, int]) -> None:
        """Return the unused end of each block (when nobody drew after it); advance an open-ended counter.

        One UPDATE: a block's end goes back only where the counter still stands at it.
        """
        settle = []
        for name, (start, end) in self._blocks.items():
            after = used.get(name, start - 1) + 1
            if end is not None or after > start:
                settle.append((name, after, end))
        if settle:
            values = ", ".join(["(%s, %s::bigint, %s::bigint)"] * len(settle))
            self.side.execute(
                "UPDATE id_blocks b SET next_value = s.after "
                f"FROM (VALUES {values}) AS s(name, after, expected) "
                "WHERE b.name = s.name AND (s.expected IS NULL OR b.next_value = s.expected)",
                [x for row in settle for x in row],
            )
        self._blocks = {}

    def commit(self, con: duckdb.DuckDBPyConnection) -> None:
        """Settle the counters, COMMIT, let go of the locks (also when the commit fails)."""
        try:
            used = dict(con.execute(
                "SELECT sequence_name, last_value FROM duckdb_sequences() WHERE temporary AND last_value IS NOT NULL"
            ).fetchall())  # fmt: skip
            self._give_back({name: int(last) for name, last in used.items() if name in SEQUENCES})
            con.execute("COMMIT")
        finally:
            self._unlock()

    def rollback(self, con: duckdb.DuckDBPyConnection) -> None:
        try:
            con.execute("ROLLBACK")
            with contextlib.suppress(Exception):
                self._give_back({})
        finally:
            self._unlock()

    def _unlock(self) -> None:
        held, self._held = self._held, []
        for sql, key in reversed(held):
            with contextlib.suppress(Exception):  # a lost connection has let go of it already
                self.side.execute(sql, key)

    def set_next(self, values: dict[str, int]) -> None:
        """Make each counter hand out ``values[name]`` next (a ledger copied in by ``recon migrate``)."""
        for name, value in values.items():
            if name in SEQUENCES:
                self.side.execute("UPDATE id_blocks SET next_value = %s WHERE name = %s", (int(value), name))

    def close(self) -> None:
        self._unlock()
        if self._side is not None:
            with contextlib.suppress(Exception):
                self._side.close()
            self._side = None


def attach_read_only(con: duckdb.DuckDBPyConnection, uri: str, alias: str) -> None:
    """Attach a server ledger read-only beside the session's own (``recon migrate``'s source)."""
    try:
        con.execute(f"LOAD '{_extension()}'")
        con.execute(f"ATTACH {literal(uri)} AS {alias} (TYPE postgres, READ_ONLY)")
    except duckdb.Error as exc:
        first = (str(exc).strip().splitlines() or ["?"])[0]
        raise LedgerError(scrub(f"The ledger {masked(uri)} could not be attached: {first}", uri)) from None
