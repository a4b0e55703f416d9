"""A posting is all or nothing in the ledger file, whatever the database engine recovers after a crash.

Why this exists: DuckDB writes a large bulk append to the database file before the
transaction commits ("optimistic writes"). Killed during the commit of an 835
posting, a ledger was reopened holding ~150,000 ``remit_entries`` rows with no
remittance or payment behind them (DuckDB pull request 25931, "Fix uncommitted data
recovered accidentally"). recon cannot count on a fixed DuckDB release, so:

- before a posting's transaction starts, a marker row (``meta`` key
  ``posting_in_progress``, with the highest remittance number then) is committed on
  its own; it is removed, again on its own, once the posting has committed or rolled
  back. A marker found when the ledger is opened means a posting was cut short;
- the ledger is then checked in one transaction (:func:`remove_debris`): the
  remittances that posting drew which do not add up are taken out, and every row
  of the posting tables that no committed remittance (or payment) reaches is removed
  as crash debris. What was removed is said on stderr and in an ``audit_log`` row.

:func:`problems` is the full check (every row reachable; each remittance's money
adds up), used by the tests after each kill.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from recon.store.sql import literal

MARKER = "posting_in_progress"
SEQUENCES = ("remittance_seq", "payment_seq", "entry_seq", "exception_seq")
SYSTEM_USER = "recon"
"""The audit_log user of what recon does by itself (removing crash debris)."""

_NUMBER = "TRY_CAST(regexp_extract(remittance_id, '[0-9]+$') AS BIGINT)"
_REMITTANCES = "(SELECT remittance_id FROM remittances)"
_PAYMENTS = "(SELECT payment_id FROM payments)"
_CLAIMS = "(SELECT claim_posting_id FROM remit_claims)"

# (table, rows no committed remittance or payment reaches), in the order they are removed:
# a remittance first, then what hangs from it, then what hangs from those.
UNREACHABLE: tuple[tuple[str, str], ...] = (
    ("remit_plb", f"remittance_id NOT IN {_REMITTANCES}"),
    ("remit_claims", f"remittance_id NOT IN {_REMITTANCES}"),
    ("exceptions", f"remittance_id NOT IN {_REMITTANCES}"),
    ("exception_invoices", "exception_id NOT IN (SELECT exception_id FROM exceptions)"),
    ("exception_cas", "exception_id NOT IN (SELECT exception_id FROM exceptions)"),
    ("exception_actions", "exception_id NOT IN (SELECT exception_id FROM exceptions)"),
    ("payments", f"remittance_id IS NOT NULL AND remittance_id NOT IN {_REMITTANCES}"),
    ("allocations", f"payment_id NOT IN {_PAYMENTS}"),
    (
        "adjustments",
        f"(remittance_id IS NOT NULL AND remittance_id NOT IN {_REMITTANCES}) "
        f"OR (payment_id IS NOT NULL AND payment_id NOT IN {_PAYMENTS})",
    ),
    ("due_changes", f"remittance_id IS NOT NULL AND remittance_id NOT IN {_REMITTANCES}"),
    ("remit_lines", f"claim_posting_id NOT IN {_CLAIMS}"),
    ("remit_cas", f"claim_posting_id NOT IN {_CLAIMS}"),
    (
        "remit_entries",
        f"""claim_posting_id NOT IN {_CLAIMS}
        OR (entry_kind = 'allocation' AND entry_id NOT IN (SELECT allocation_id FROM allocations))
        OR (entry_kind = 'adjustment' AND entry_id NOT IN (SELECT adjustment_id FROM adjustments))
        OR (entry_kind = 'due_change' AND entry_id NOT IN (SELECT change_id FROM due_changes))""",
    ),
    ("adjudications", f"remittance_id IS NOT NULL AND remittance_id NOT IN {_REMITTANCES}"),  # NULL: paper EOB
    # a manual adjudication's (paper EOB, negative ids) reversal has no 835 claim posting behind it
    ("adjudication_reversals", f"original > 0 AND (original NOT IN {_CLAIMS} OR reversal NOT IN {_CLAIMS})"),
    ("audit_log", f"action = 'post_remittance' AND entity_id NOT IN {_REMITTANCES}"),
)


def _unbalanced_sql(scope: str = "TRUE") -> str:
    """Remittances (within ``scope``) whose rows do not add up: what a half-recovered posting leaves."""
    return f"""
        WITH r AS (SELECT * FROM remittances WHERE {scope}),
             pay AS (SELECT remittance_id, sum(amount) AS amount FROM payments
                     WHERE remittance_id IN (SELECT remittance_id FROM r) GROUP BY 1),
             matched AS (SELECT e.remittance_id, sum(a.amount) AS amount
                         FROM exception_actions a JOIN exceptions e USING (exception_id)
                         WHERE a.action = 'matched' AND e.remittance_id IN (SELECT remittance_id FROM r) GROUP BY 1),
             cl AS (SELECT remittance_id, count(*) AS n FROM remit_claims
                    WHERE remittance_id IN (SELECT remittance_id FROM r) GROUP BY 1),
             plb AS (SELECT remittance_id, sum(amount) AS amount FROM remit_plb
                     WHERE remittance_id IN (SELECT remittance_id FROM r) GROUP BY 1),
             alloc AS (SELECT p.remittance_id, count(*) FILTER (WHERE p.amount <> coalesce(a.amount, 0)) AS bad
                       FROM payments p
                       LEFT JOIN (SELECT payment_id, sum(amount) AS amount FROM allocations GROUP BY 1) a
                            USING (payment_id)
                       WHERE p.remittance_id IN (SELECT remittance_id FROM r) GROUP BY 1)
        SELECT r.remittance_id,
               CASE WHEN r.claims <> coalesce(cl.n, 0)
                    THEN 'claims: ' || r.claims || ' stated but ' || coalesce(cl.n, 0) || ' posted'
                    WHEN r.plb_amount <> coalesce(plb.amount, 0) THEN 'its PLB rows do not add up to its PLB amount'
                    WHEN coalesce(alloc.bad, 0) > 0 THEN 'a payment differs from its allocations'
                    ELSE 'payments + held - PLB is not BPR02' END
        FROM r LEFT JOIN pay USING (remittance_id) LEFT JOIN matched USING (remittance_id)
               LEFT JOIN cl USING (remittance_id) LEFT JOIN plb USING (remittance_id)
               LEFT JOIN alloc USING (remittance_id)
        WHERE r.claims <> coalesce(cl.n, 0) OR r.plb_amount <> coalesce(plb.amount, 0) OR coalesce(alloc.bad, 0) > 0
           OR r.amount <> coalesce(pay.amount, 0) - coalesce(matched.amount, 0) + r.unmatched_amount - r.plb_amount
        ORDER BY r.remittance_id"""


def _rules(con: Any) -> list[tuple[str, str]]:
    """The UNREACHABLE rules of the tables this ledger has (a table comes with the schema version)."""
    have = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
        ).fetchall()
    }
    return [(table, where) for table, where in UNREACHABLE if table in have]


def problems(con: Any) -> list[str]:
    """Everything wrong with the posting tables: unreachable rows, remittances that do not add up."""
    found = [
        f"{table}: {n} row(s) no committed remittance or payment reaches"
        for table, where in _rules(con)
        if (n := con.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0])
    ]
    found += [f"{rid}: {why}" for rid, why in con.execute(_unbalanced_sql()).fetchall()]
    return found


def _sequence_values(con: Any) -> dict[str, int | None]:
    rows = con.execute(
        "SELECT sequence_name, last_value FROM duckdb_sequences() WHERE database_name = "
        "current_database() AND sequence_name IN (" + ", ".join(literal(s) for s in SEQUENCES) + ")"
    ).fetchall()
    return {name: value for name, value in rows}


@contextlib.contextmanager
def posting_marked(con: Any, what: str) -> Iterator[None]:
    """Commit a marker before a posting and remove it after, so a posting cut short is found at the next open.

    Call outside any transaction: the marker must be committed before the posting's
    own transaction begins, and removed only after it has ended.
    """
    from recon.store.db import engine

    if engine(con) == "postgresql":  # the server keeps a transaction whole: no marker, no debris
        yield
        return
    state = {
        "what": what,
        "pid": os.getpid(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "sequences": _sequence_values(con),
        "last_remittance": int(con.execute(f"SELECT coalesce(max({_NUMBER}), 0) FROM remittances").fetchone()[0]),
    }
    con.execute(
        f"INSERT INTO meta VALUES ({literal(MARKER)}, {literal(json.dumps(state, sort_keys=True))}) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
    )
    try:
        yield
    finally:
        with contextlib.suppress(Exception):  # not removed: the next open checks, and finds nothing to remove
            con.execute(f"DELETE FROM meta WHERE key = {literal(MARKER)}")


def recover(con: Any, ledger: str, *, upgraded: bool = False) -> dict[str, int]:
    """At open: when a posting was cut short, remove its debris (one transaction) and say so.

    ``upgraded``: the schema was just brought up to date, so this recon may open the
    ledger for the first time; an earlier version set no marker, so any unreachable
    row is looked for once (no remittance is taken out: which posting was cut short is
    not known). Returns table -> rows removed (empty when there was nothing to remove).
    """
    try:
        row = con.execute(f"SELECT value FROM meta WHERE key = {literal(MARKER)}").fetchone()
    except Exception:  # a ledger without the meta table yet
        return {}
    if row is None and not upgraded:
        return {}
    try:
        state = json.loads(row[0]) if row else {"what": "a posting by an earlier recon", "sequences": {}}
    except ValueError:
        state = {}
    con.execute("BEGIN TRANSACTION")
    try:
        removed = remove_debris(con, state)
        if removed:
            detail = {"posting": state.get("what"), "started": state.get("started"), "removed": removed}
            stamp = datetime.now(UTC).replace(tzinfo=None)  # naive UTC, as every entry
            con.execute(
                f"INSERT INTO audit_log VALUES (nextval('entry_seq'), {literal(stamp)}, "
                f"{literal(SYSTEM_USER)}, 'remove_crash_debris', 'ledger', NULL, "
                f"{literal(json.dumps(detail, sort_keys=True))})"
            )
        con.execute(f"DELETE FROM meta WHERE key = {literal(MARKER)}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    if removed:
        what = ", ".join(f"{table} {n}" for table, n in removed.items())
        sys.stderr.write(
            f"recon: the ledger {ledger} held rows of a posting that never completed "
            f"({state.get('what') or 'unknown'}, started {state.get('started') or '?'}, cut short by "
            f"a crash or a kill); removed them as crash debris: {what}. Nothing of that posting "
            "is in the ledger: post that file again.\n"
        )
    return removed


def remove_debris(con: Any, state: dict[str, Any]) -> dict[str, int]:
    """Inside a transaction: remove the cut-short posting's remittances that do not add up, then every unreachable row.

    ``state``: the marker. That posting's remittances are those numbered after
    ``last_remittance`` (the highest number in the ledger when it started); one that
    does not add up means the engine recovered only part of the posting, so all of
    that posting is taken out.
    """
    removed: dict[str, int] = {}
    before = state.get("last_remittance")
    scope = (  # without the number (an earlier recon, a damaged marker) no remittance is taken out
        f"{_NUMBER} > {before}" if isinstance(before, int) and not isinstance(before, bool) else "FALSE"
    )
    bad = con.execute(_unbalanced_sql(scope)).fetchall()
    if bad:
        count = con.execute(f"DELETE FROM remittances WHERE {scope}").fetchone()[0]
        removed["remittances"] = int(count)
    for table, where in _rules(con):
        count = int(con.execute(f"DELETE FROM {table} WHERE {where}").fetchone()[0])
        if count:
            removed[table] = removed.get(table, 0) + count
    return removed
