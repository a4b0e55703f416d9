"""Stage remittances as DuckDB temp tables, in Arrow chunks, while the file is read.

Posting is set-based (SQL joins over staged tables) so that a million claims cost a
few large statements, not a million small ones. The only per-claim Python is turning
the reader's records into column lists; every ``CHUNK_ROWS`` claims the columns become
an Arrow table (money as decimal128(18,2), never float) that is appended to the temp
table, so memory stays flat however large the file is.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from recon.remit.era835 import Remittance

CHUNK_ROWS = 50_000
MONEY = pa.decimal128(18, 2)

# name -> (column, Arrow type, SQL type)
TABLES: dict[str, tuple[tuple[str, Any, str], ...]] = {
    "s_claim": (
        ("ci", pa.int64(), "BIGINT"), ("st", pa.int32(), "INTEGER"), ("seq", pa.int32(), "INTEGER"),
        ("clp01", pa.string(), "VARCHAR"), ("status", pa.string(), "VARCHAR"),
        ("charge", MONEY, "DECIMAL(18,2)"), ("paid", MONEY, "DECIMAL(18,2)"),
        ("patient", MONEY, "DECIMAL(18,2)"), ("pcn", pa.string(), "VARCHAR"),
        ("patient_name", pa.string(), "VARCHAR"), ("n_lines", pa.int32(), "INTEGER"),
    ),
    "s_line": (
        ("ci", pa.int64(), "BIGINT"), ("ln", pa.int32(), "INTEGER"), ("code", pa.string(), "VARCHAR"),
        ("modifiers", pa.string(), "VARCHAR"), ("charge", MONEY, "DECIMAL(18,2)"),
        ("paid", MONEY, "DECIMAL(18,2)"), ("units", MONEY, "DECIMAL(18,2)"),
        ("service_date", pa.date32(), "DATE"),
    ),
    "s_cas": (
        ("k", pa.int64(), "BIGINT"), ("ci", pa.int64(), "BIGINT"), ("ln", pa.int32(), "INTEGER"),
        ("grp", pa.string(), "VARCHAR"), ("reason", pa.string(), "VARCHAR"),
        ("amount", MONEY, "DECIMAL(18,2)"),
    ),
    "s_plb": (
        ("st", pa.int32(), "INTEGER"), ("seq", pa.int32(), "INTEGER"), ("provider_id", pa.string(), "VARCHAR"),
        ("fiscal", pa.date32(), "DATE"), ("reason", pa.string(), "VARCHAR"),
        ("reference", pa.string(), "VARCHAR"), ("amount", MONEY, "DECIMAL(18,2)"),
    ),
}


class Stager:
    """Column buffers for the staged tables of one file; ``flush`` appends them to DuckDB."""

    def __init__(self, con: Any) -> None:
        self.con = con
        self.cols: dict[str, list[list[Any]]] = {t: [[] for _ in spec] for t, spec in TABLES.items()}
        self.claims = 0
        self.cas = 0
        for table, spec in TABLES.items():
            columns = ", ".join(f"{name} {sql}" for name, _, sql in spec)
            con.execute(f"CREATE OR REPLACE TEMP TABLE {table} ({columns})")

    def add(self, st: int, rem: Remittance) -> None:
        """Append one remittance's claims, lines, adjustments and PLB to the buffers."""
        c = self.cols["s_claim"]
        ln_cols = self.cols["s_line"]
        cas = self.cols["s_cas"]
        for seq, claim in enumerate(rem.claims, start=1):
            self.claims += 1
            ci = self.claims
            for col, value in zip(c, (ci, st, seq, claim.claim_id, claim.status, claim.charge, claim.paid,
                                      claim.patient_responsibility, claim.payer_control_number,
                                      claim.patient_name, len(claim.lines)), strict=True):
                col.append(value)
            for adj in claim.adjustments:
                self._cas(cas, ci, 0, adj.group, adj.reason, adj.amount)
            for number, line in enumerate(claim.lines, start=1):
                for col, value in zip(ln_cols, (ci, number, line.procedure_code.upper(), ":".join(line.modifiers),
                                                line.charge, line.paid, line.units, line.service_date), strict=True):
                    col.append(value)
                for adj in line.adjustments:
                    self._cas(cas, ci, number, adj.group, adj.reason, adj.amount)
        plb = self.cols["s_plb"]
        for seq, p in enumerate(rem.provider_adjustments, start=1):
            for col, value in zip(plb, (st, seq, p.provider_id, p.fiscal_period_end, p.reason, p.reference,
                                        p.amount), strict=True):
                col.append(value)
        if len(c[0]) >= CHUNK_ROWS:
            self.flush()

    def _cas(self, cas: list[list[Any]], ci: int, line: int, group: str, reason: str, amount: Any) -> None:
        self.cas += 1
        for col, value in zip(cas, (self.cas, ci, line, group, reason, amount), strict=True):
            col.append(value)

    def flush(self) -> None:
        """Append every buffered row to its temp table (through an Arrow view) and clear."""
        for table, spec in TABLES.items():
            cols = self.cols[table]
            if not cols[0]:
                continue
            arrow = pa.table([_array(col, typ) for col, (_, typ, _) in zip(cols, spec, strict=True)],
                             names=[name for name, _, _ in spec])
            self.con.register("stage_chunk", arrow)
            try:
                self.con.execute(f"INSERT INTO {table} SELECT * FROM stage_chunk")
            finally:
                self.con.unregister("stage_chunk")
            for col in cols:
                col.clear()

    def drop(self) -> None:
        for table in TABLES:
            self.con.execute(f"DROP TABLE IF EXISTS {table}")


def _array(values: list[Any], typ: Any) -> Any:
    """An Arrow column; money goes Decimal → text → decimal128 (exact, and faster than from Decimal)."""
    if typ is MONEY:
        return pc.cast(pa.array(list(map(str, values)), type=pa.string()), MONEY)
    return pa.array(values, type=typ)
