"""A billing team on one PostgreSQL ledger at once: no invoice paid beyond its open amount, nothing posted twice.

Each analyst is a separate process using the library as the CLI and notebooks do
(``Recon.open(uri)``) against a real server (tests/pgserver.py). What is checked is
what the ledger holds afterwards, and what each analyst was told.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from recon.cli import main
from recon.services import Recon
from recon.store import queries
from tests.conftest import PRACTICE, write_practice
from tests.era.edi import claim, st, write_835

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("engine", ["postgresql"])]

ROOT = Path(__file__).resolve().parents[1]
INVOICES = [f"T{n}" for n in range(10)]
TEAM_PRACTICE = {
    **PRACTICE,
    "invoices.csv": [
        PRACTICE["invoices.csv"][0],
        *[
            (i, "C1", f"2026-03-{n + 1:02d}", "90837", "1", "120.00", "AET", "20.00", "", "")
            for n, i in enumerate(INVOICES)
        ],
    ],
}

ANALYST = """
import json, sys
from decimal import Decimal
from recon.errors import ReconError
from recon.model import InvoicePick, PaymentMethod, PaymentRequest
from recon.services import Recon

uri, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
invoices = [f"T{n}" for n in range(10)]
told = []
with Recon.open(uri) as recon:
    for i in range(count):
        invoice = invoices[(worker * 3 + i) % 10]
        request = PaymentRequest("C1", "AET", PaymentMethod.INSURANCE_CHECK,
                                 picks=(InvoicePick(invoice, Decimal("7.00")),),
                                 payment_number=f"CHK-{worker}-{i}", idempotency_key=f"team-{worker}-{i}")
        try:
            recon.record_payment(request, "ana")
            told.append("recorded")
        except ReconError as exc:
            told.append(str(exc))
print(json.dumps(told))
"""

POSTER = """
import json, sys
from recon.remit.post import post_remittances
from recon.services import Recon

uri, path = sys.argv[1], sys.argv[2]
with Recon.open(uri) as recon:
    out = post_remittances(recon, [path], "ana").files[0]
print(json.dumps([out.status, out.message or ""]))
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RECON_DB", "RECON_DB_KEY")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run_all(commands: list[list[str]]) -> list[subprocess.CompletedProcess[str]]:
    procs = [subprocess.Popen(c, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in commands]  # fmt: skip
    done = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return done


@pytest.fixture
def team_db(ledger_target: str, tmp_path: Path) -> str:
    assert main(["load", str(write_practice(tmp_path / "team", TEAM_PRACTICE)), "--db", ledger_target]) == 0
    return ledger_target


def _paid(uri: str) -> dict[str, tuple[Decimal, Decimal]]:
    """invoice -> (Ins Amt Due, Ins Amt Paid)."""
    with Recon.open(uri) as recon:
        return {
            r.invoice_id: (r.ins_amt_due, r.ins_amt_paid) for r in recon.ledger_rows("C1") if r.invoice_id in INVOICES
        }


def test_eight_analysts_pay_the_same_ten_invoices_and_none_is_overpaid(team_db: str) -> None:
    runs = _run_all([[sys.executable, "-c", ANALYST, team_db, str(w), "25"] for w in range(8)])
    told: list[str] = []
    for run in runs:
        assert run.returncode == 0, run.stderr
        told += json.loads(run.stdout.strip().splitlines()[-1])
    assert len(told) == 200
    refusals = [t for t in told if t != "recorded"]
    assert refusals, "200 payments of 7.00 on ten invoices of 100.00 must run some invoices out"
    for why in refusals:
        assert "is more than its open" in why, why  # never a busy ledger, never anything else
    paid = _paid(team_db)
    for invoice, (due, got) in paid.items():
        assert got <= due, f"{invoice} paid {got} of {due} due"
        assert due - got < Decimal("7.00"), f"{invoice}: {due - got} left open although analysts kept paying"
    recorded = told.count("recorded")
    assert sum(got for _, got in paid.values()) == Decimal("7.00") * recorded
    with Recon.open(team_db) as recon:  # every payment its own number, every allocation its own entry
        assert recon.one("SELECT count(*), count(DISTINCT payment_id) FROM payments")[0:2] == (recorded, recorded)
        assert recon.one("SELECT count(*) - count(DISTINCT allocation_id) FROM allocations")[0] == 0


SIDE_BY_SIDE = """
import sys
from decimal import Decimal
from recon.model import PaymentMethod, PaymentRequest
from recon.services import Recon

uri, worker = sys.argv[1], int(sys.argv[2])
client, payer = ("C1", "AET") if worker % 2 == 0 else ("C2", "BCBS")
with Recon.open(uri) as recon:
    for i in range(20):
        recon.record_payment(PaymentRequest(client, payer, PaymentMethod.INSURANCE_CHECK, amount=Decimal("1.00"),
                                            payment_number=f"SIDE-{worker}-{i}"), "ana")
print("done")
"""


def test_payments_for_different_clients_run_side_by_side_and_never_share_a_number(team_db: str) -> None:
    """Each client's payments take that client's lock only: two clients' analysts work at once."""
    runs = _run_all([[sys.executable, "-c", SIDE_BY_SIDE, team_db, str(w)] for w in range(6)])
    for run in runs:
        assert run.returncode == 0, run.stderr
    with Recon.open(team_db) as recon:
        ids = recon.execute("SELECT payment_id FROM payments WHERE payment_number LIKE 'SIDE-%'").fetchall()
        assert len(ids) == 120 and len(set(ids)) == 120
        for table, column in (("allocations", "allocation_id"), ("audit_log", "audit_id")):
            total, distinct = recon.one(f"SELECT count(*), count(DISTINCT {column}) FROM {table}")
            assert total == distinct, f"{table}: {total - distinct} number(s) drawn twice"
        by_client = dict(recon.execute("SELECT client_id, sum(amount) FROM payments WHERE payment_number LIKE 'SIDE-%' "
                                       "GROUP BY client_id").fetchall())  # fmt: skip
        assert by_client == {"C1": Decimal("60.00"), "C2": Decimal("60.00")}


def _aetna_835(path: Path, claims: int, trace: str) -> Path:
    """Aetna pays 5.00 on each of ``claims`` claims of the ten invoices (CO-45 and PR-1 make them balance)."""
    paid = Decimal("5.00") * claims
    return write_835(path, [st("0001", amount=f"{paid}", trace=trace, claims=[
        claim(INVOICES[n % 10], "1", "120.00", "5.00", "20.00", cas=[["CO", "45", "95.00"], ["PR", "1", "20.00"]])
        for n in range(claims)
    ])])  # fmt: skip


def test_two_analysts_post_the_same_835_at_once_and_it_posts_once(team_db: str, tmp_path: Path) -> None:
    era = _aetna_835(tmp_path / "same.835", 10, "TEAM-1")
    runs = _run_all([[sys.executable, "-c", POSTER, team_db, str(era)] for _ in range(2)])
    outcomes = []
    for run in runs:
        assert run.returncode == 0, run.stderr
        outcomes.append(json.loads(run.stdout.strip().splitlines()[-1]))
    assert sorted(o[0] for o in outcomes) == ["already_posted", "posted"], outcomes
    with Recon.open(team_db) as recon:
        assert recon.one("SELECT count(*) FROM remittances WHERE trace_number = 'TEAM-1'")[0] == 1
        assert recon.one("SELECT count(*) FROM payments WHERE remittance_id IS NOT NULL")[0] == 1


BIG_CLAIMS = 31_000  # a 9 MB file: bench/bench_835_post.py's "10 MB" 835

PAYMENTS = """
import sys
from decimal import Decimal
from recon.model import PaymentMethod, PaymentRequest
from recon.services import Recon

uri, worker = sys.argv[1], int(sys.argv[2])
with Recon.open(uri) as recon:
    for i in range(10):
        recon.record_payment(PaymentRequest(f"C{worker * 10 + i}", "UHC", PaymentMethod.INSURANCE_CHECK,
                                            amount=Decimal("25.00"), payment_number=f"LUMP-{worker}-{i}",
                                            idempotency_key=f"lump-{worker}-{i}"), "ana")
print("done")
"""


def _big_practice(uri: str) -> list[tuple[object, ...]]:
    """A client per 4 invoices, every invoice billed to UHC; returns the invoices the 835 pays."""
    with Recon.open(uri) as recon, recon.transaction():
        recon.execute("INSERT INTO users VALUES ('ana', 'Ana Analyst', 'billing')")
        recon.execute("INSERT INTO insurance_providers VALUES ('UHC', 'UnitedHealthcare', '87726')")
        recon.execute(f"INSERT INTO clients SELECT 'C' || i, 'First', 'Last' || i, DATE '1980-01-01', 20 "
                      f"FROM range({BIG_CLAIMS // 4 + 1}) t(i)")  # fmt: skip
        recon.execute(f"INSERT INTO client_insurance SELECT 'C' || i, 'UHC', 'M' || i, 'primary', NULL "
                      f"FROM range({BIG_CLAIMS // 4 + 1}) t(i)")  # fmt: skip
        recon.execute(f"""
            INSERT INTO invoices
            SELECT 'INV' || lpad(CAST(i AS VARCHAR), 8, '0'), 'C' || (i // 4),
                   DATE '2023-01-02' + CAST(i % 600 AS INTEGER),
                   '90837', 1, CAST(80 + i % 180 AS DECIMAL(18,2)), 'UHC', 20, CAST(60 + i % 180 AS DECIMAL(18,2)),
                   'INV' || lpad(CAST(i AS VARCHAR), 8, '0')
            FROM range({BIG_CLAIMS}) t(i)""")
    with Recon.open(uri) as recon:
        return recon.execute(
            "SELECT invoice_id, service_date, service_code, fee FROM invoices ORDER BY invoice_id"
        ).fetchall()


def test_a_ten_megabyte_835_posts_while_four_analysts_record_payments(ledger_target: str, tmp_path: Path) -> None:
    from recon.remit.generate import generate_835

    specs = _big_practice(ledger_target)
    era = tmp_path / "big.835"
    generate_835(era, n_claims=BIG_CLAIMS, seed=7, payer_id="87726", invoices=specs)
    assert era.stat().st_size > 8_000_000
    runs = _run_all([[sys.executable, "-c", POSTER, ledger_target, str(era)]]
                    + [[sys.executable, "-c", PAYMENTS, ledger_target, str(w)] for w in range(4)])  # fmt: skip
    for run in runs:
        assert run.returncode == 0, run.stderr
    assert json.loads(runs[0].stdout.strip().splitlines()[-1])[0] == "posted"
    assert all(run.stdout.strip().endswith("done") for run in runs[1:])
    with Recon.open(ledger_target) as recon:
        assert recon.one("SELECT count(*) FROM payments WHERE payment_number LIKE 'LUMP-%'")[0] == 40
        per_payment = recon.execute("""
            SELECT p.payment_id, p.amount, coalesce(sum(a.amount), 0) FROM payments p
            LEFT JOIN allocations a USING (payment_id) WHERE p.payment_number LIKE 'LUMP-%'
            GROUP BY ALL""").fetchall()
        assert sum(amount for _, amount, _ in per_payment) == Decimal("1000.00")
        for pid, amount, applied in per_payment:  # what could not be applied stays unapplied credit
            assert Decimal("0.00") <= applied <= amount, (pid, amount, applied)
        # a lump never pays an invoice past what the 835 left open
        overpaid = recon.execute(
            """
            SELECT l.invoice_id FROM (SELECT * FROM ("""
            + queries.ledger_sql("client_id IN (SELECT 'C' || i FROM range(40) t(i))")
            + """)) l
            WHERE l.ins_amt_paid > l.ins_amt_due AND l.invoice_id IN (
                SELECT a.invoice_id FROM allocations a JOIN payments p USING (payment_id)
                WHERE p.payment_number LIKE 'LUMP-%')"""
        ).fetchall()
        assert overpaid == []
        # the remittance is whole: its payments + money held - PLB = BPR02
        ((amount, total),) = recon.execute("""
            SELECT r.amount, coalesce((SELECT sum(p.amount) FROM payments p WHERE p.remittance_id = r.remittance_id), 0)
                             + r.unmatched_amount - r.plb_amount
            FROM remittances r""").fetchall()
        assert amount == total
        assert recon.one("SELECT count(*) - count(DISTINCT allocation_id) FROM allocations")[0] == 0
