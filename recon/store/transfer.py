"""``recon migrate``: copy a whole ledger to another engine, and prove the copy equal.

A billing service moves its DuckDB ledger onto the team's PostgreSQL server (or
takes a server ledger back into a file). The target must hold no ledger rows. Every
table is copied in one transaction of the target; before it commits, the two
ledgers are compared table by table (row count, and the sum of every money
column) and invoice by invoice (each Ledger amount and balance, as the Client
Ledger shows them). Any difference rolls the copy back: nothing half-copied stays.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from recon.errors import LedgerError
from recon.store import db, migrations, queries
from recon.store.pg import SEQUENCES, is_postgres
from recon.store.sql import literal

SOURCE = "source"
NOT_COPIED = frozenset({"meta", "schema_migrations", "id_blocks"})  # each ledger keeps its own schema and counters
_TABLE = re.compile(r"^\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.IGNORECASE)


def ledger_tables() -> list[str]:
    """Every table the migrations create, in the order they create them."""
    found: list[str] = []
    for migration in migrations.migrations():
        for statement in migration.statements():
            matched = _TABLE.match(statement)
            if matched and matched.group(1) not in found:
                found.append(matched.group(1))
    return found


@dataclass(frozen=True)
class TableCheck:
    table: str
    rows: int
    money: tuple[tuple[str, str], ...]  # (column, sum as text)


@dataclass
class Fingerprint:
    tables: dict[str, TableCheck] = field(default_factory=dict)
    invoices: int = 0
    balances: str = ""  # the sum of every invoice's Ledger row hash (DuckDB hash, the same in one session)
    total_balance: str = "0.00"


@dataclass(frozen=True)
class MigrationReport:
    source: str
    target: str
    tables: tuple[TableCheck, ...]
    invoices: int
    total_balance: str
    sequences: dict[str, int]

    def lines(self) -> list[str]:
        out = [f"Copied {self.source} to {self.target}", "  table: rows (same in both)"]
        out += [f"  {t.table}: {t.rows}" for t in self.tables if t.rows]
        out.append(f"  every money column's sum is the same in both ({sum(len(t.money) for t in self.tables)} columns)")
        out.append(f"  {self.invoices} invoice(s): every Ledger amount and balance the same; total balance "
                   f"{self.total_balance}")  # fmt: skip
        return out


def migrate(source: db.Target, target: db.Target, user_id: str | None) -> MigrationReport:
    """Copy ``source`` into the empty ``target``; compare; commit only when they are equal."""
    from recon.rules.permissions import require_billing
    from recon.services import Recon

    if isinstance(source, Path) and not source.exists():
        raise LedgerError(f"There is no ledger {source} to copy")
    if str(source) == str(target):
        raise LedgerError("recon migrate: the target is the source; name another --to")
    if not user_id:
        raise LedgerError("recon migrate needs --user (or RECON_USER): a user with the Billing permission")
    with Recon.open(source) as recon:
        require_billing(recon.user(user_id), "copy the ledger")
        recon.release()
    with Recon.open(target) as out:
        con = out.con
        _refuse_non_empty(con, db.describe(target))
        _attach_source(con, source)
        try:
            return _copy(con, source, target)
        finally:
            con.execute("USE ledger")
            con.execute(f"DETACH {SOURCE}")


def _refuse_non_empty(con: duckdb.DuckDBPyConnection, name: str) -> None:
    filled = [
        t for t in ledger_tables()
        if t not in NOT_COPIED and con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {t} LIMIT 1)").fetchone()[0]
    ]  # fmt: skip
    if filled:
        raise LedgerError(
            f"The target {name} is not empty (it has {', '.join(filled[:5])}{' …' if len(filled) > 5 else ''}); "
            "recon migrate copies only into an empty ledger: name a new file or an empty database"
        )


def _attach_source(con: duckdb.DuckDBPyConnection, source: db.Target) -> None:
    if isinstance(source, str) and is_postgres(source):
        from recon.store.pg import attach_read_only

        attach_read_only(con, source, SOURCE)
    else:
        key = os.environ.get("RECON_DB_KEY")
        option = f", ENCRYPTION_KEY {literal(key)}" if key else ""
        con.execute(f"ATTACH {literal(str(source))} AS {SOURCE} (READ_ONLY{option})")


def _columns(con: duckdb.DuckDBPyConnection, qualified: str) -> list[str]:
    return [d[0] for d in con.execute(f"SELECT * FROM {qualified} LIMIT 0").description]


def _copy(con: duckdb.DuckDBPyConnection, source: db.Target, target: db.Target) -> MigrationReport:
    tables = [t for t in ledger_tables() if t not in NOT_COPIED]
    db.begin(con)
    try:
        for table in tables:
            wanted = _columns(con, table)
            have = set(_columns(con, f"{SOURCE}.{table}"))
            cols = ", ".join(f'"{c}"' for c in wanted if c in have)
            con.execute(f"INSERT INTO {table} ({cols}) SELECT {cols} FROM {SOURCE}.{table}")
        con.execute(f"INSERT INTO meta SELECT * FROM {SOURCE}.meta WHERE key NOT IN ('schema', 'posting_in_progress')")
        sequences = _next_values(con, source)
        copied = _fingerprint(con, "ledger", tables)
        original = _fingerprint(con, SOURCE, tables)
        con.execute("USE ledger")
        differences = _differences(original, copied)
        if differences:
            raise LedgerError(
                f"recon migrate: the copy in {db.describe(target)} differs from {db.describe(source)} "
                f"({'; '.join(differences[:5])}); nothing was kept"
            )
        if db.engine(con) == "duckdb":
            for name, value in sequences.items():
                con.execute(f"CREATE OR REPLACE SEQUENCE {name} START {value}")
    except BaseException:
        con.execute("USE ledger")
        db.rollback(con)
        raise
    db.commit(con)
    ledger = db.postgres_of(con)
    if ledger is not None:
        ledger.set_next(sequences)
    return MigrationReport(
        db.describe(source), db.describe(target), tuple(copied.tables.values()), copied.invoices,
        copied.total_balance, sequences,
    )  # fmt: skip


def _next_values(con: duckdb.DuckDBPyConnection, source: db.Target) -> dict[str, int]:
    """The number each sequence hands out next in the source."""
    if isinstance(source, str) and is_postgres(source):
        found = dict(con.execute(f"SELECT name, next_value FROM {SOURCE}.id_blocks").fetchall())
        return {name: int(found.get(name, 1)) for name in SEQUENCES}
    rows = dict(con.execute(
        f"SELECT sequence_name, coalesce(last_value + 1, start_value) FROM duckdb_sequences() "
        f"WHERE database_name = '{SOURCE}'"
    ).fetchall())  # fmt: skip
    return {name: int(rows.get(name, 1)) for name in SEQUENCES}


def _fingerprint(con: duckdb.DuckDBPyConnection, catalog: str, tables: list[str]) -> Fingerprint:
    con.execute(f"USE {catalog}")
    found = Fingerprint()
    for table in tables:
        described = con.execute(f"DESCRIBE {table}").fetchall()
        money = [r[0] for r in described if str(r[1]).upper().startswith("DECIMAL")]
        sums = ", ".join(f'CAST(coalesce(sum("{c}"), 0) AS VARCHAR)' for c in money)
        row = con.execute(f"SELECT count(*){', ' + sums if sums else ''} FROM {table}").fetchone()
        found.tables[table] = TableCheck(table, int(row[0]), tuple(zip(money, row[1:], strict=True)))
    # every invoice's Ledger row (amounts, balance, client, payer) hashed whole and summed: order-free, in SQL
    invoices, total, balances = con.execute(
        "SELECT count(*), CAST(CAST(coalesce(sum(balance), 0) AS DECIMAL(38,2)) AS VARCHAR), "
        f"CAST(coalesce(sum(hash(l)), 0) AS VARCHAR) FROM ({queries.ledger_sql()}) l"
    ).fetchone()
    found.invoices, found.balances, found.total_balance = int(invoices), balances, total
    return found


def _differences(a: Fingerprint, b: Fingerprint) -> list[str]:
    out = []
    for table, check in a.tables.items():
        other = b.tables.get(table)
        if other is None or other.rows != check.rows:
            out.append(f"{table}: {check.rows} row(s) in the source, {other.rows if other else 0} in the copy")
        elif other.money != check.money:
            out.append(f"{table}: money sums {dict(check.money)} in the source, {dict(other.money)} in the copy")
    if (a.invoices, a.balances) != (b.invoices, b.balances):
        out.append(f"invoice balances differ (source total {a.total_balance}, copy {b.total_balance})")
    return out
