"""Benchmark: record payments and allocate lump sums on a generated practice.

    python bench/bench_payments.py [--invoices 100000] [--clients 10000] [--payments 200]

Prints wall-clock figures (median of the recorded calls) for: generating and loading
the practice, planning and recording ticked and lump-sum payments through the
library, a whole-practice lump sum over one busy client's invoices, and an
interactive ``recon pay`` / ``recon ledger`` as a subprocess (what an analyst feels).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from recon.demo import PracticeSize, generate_practice
from recon.model import InvoicePick, PaymentMethod, PaymentRequest
from recon.services import Recon


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--payments", type=int, default=200)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="recon-bench-"))
    size = PracticeSize(args.clients, args.invoices)
    _, t_gen = timed(generate_practice, work / "practice", size, 11)
    db = work / "ledger.duckdb"
    recon = Recon.open(db)
    _, t_load = timed(recon.load_practice, work / "practice", "cara")
    print(f"practice: {args.clients:,} clients, {args.invoices:,} invoices")
    print(f"generate CSV           {t_gen:8.2f} s")
    print(f"load (one transaction) {t_load:8.2f} s")

    policies = recon.execute(
        "SELECT client_id, payer_id FROM client_insurance WHERE priority = 'primary' ORDER BY client_id"
    ).fetchall()
    ticks, lumps, ledgers = [], [], []
    for n, (client_id, payer_id) in enumerate(policies[: args.payments]):
        rows, t = timed(recon.ledger_rows, client_id)
        ledgers.append(t)
        open_rows = [r for r in rows if r.payer_id == payer_id and r.ins_open > 0]
        if len(open_rows) < 2:
            continue
        tick = PaymentRequest(
            client_id,
            payer_id,
            PaymentMethod.INSURANCE_CHECK,
            picks=(InvoicePick(open_rows[0].invoice_id), InvoicePick(open_rows[1].invoice_id, Decimal("1.00"))),
            payment_number=f"CHK{n}",
            idempotency_key=f"b-t-{n}",
        )
        _, t = timed(recon.record_payment, tick, "cara")
        ticks.append(t)
        lump = PaymentRequest(
            client_id,
            payer_id,
            PaymentMethod.INSURANCE_EFT_ACH,
            amount=Decimal("250.00"),
            payment_number=f"EFT{n}",
            idempotency_key=f"b-l-{n}",
        )
        _, t = timed(recon.record_payment, lump, "cara")
        lumps.append(t)

    def show(name: str, values: list[float]) -> None:
        ms = sorted(v * 1000 for v in values)
        print(
            f"{name:32s} n={len(ms):4d}  median {statistics.median(ms):7.1f} ms  "
            f"p95 {ms[int(len(ms) * 0.95) - 1]:7.1f} ms"
        )

    show("client ledger (ledger_rows)", ledgers)
    show("record ticked + partial payment", ticks)
    show("record lump sum, oldest first", lumps)

    # one client holding thousands of invoices: the planner over a long ledger
    busy = recon.execute("SELECT client_id, count(*) FROM invoices GROUP BY 1 ORDER BY 2 DESC LIMIT 1").fetchone()
    payer = recon.execute(
        "SELECT payer_id FROM client_insurance WHERE client_id = ? AND priority = 'primary'", [busy[0]]
    ).fetchone()
    if payer:
        request = PaymentRequest(
            busy[0], payer[0], PaymentMethod.INSURANCE, amount=Decimal("100000.00"), idempotency_key="b-busy"
        )
        plan, t_plan = timed(recon.plan_payment, request)
        _, t_rec = timed(recon.record_payment, request, "cara")
        print(
            f"busiest client {busy[0]} ({busy[1]} invoices): plan {t_plan * 1000:.1f} ms, "
            f"record {t_rec * 1000:.1f} ms, {len(plan.allocations)} allocations"
        )
    recon.close()

    env = {**os.environ, "RECON_DB": str(db)}
    cli = [sys.executable, "-m", "recon.cli"]
    client_id, payer_id = policies[-1]
    pays, reads = [], []
    for n in range(5):
        start = time.perf_counter()
        subprocess.run(
            [
                *cli,
                "pay",
                client_id,
                "--user",
                "cara",
                "--payer",
                payer_id,
                "--method",
                "insurance",
                "--amount",
                "5.00",
                "--key",
                f"cli-{n}",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
        pays.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run([*cli, "ledger", client_id], env=env, check=True, capture_output=True)
        reads.append(time.perf_counter() - start)
    show("`recon pay` (whole process)", pays)
    show("`recon ledger` (whole process)", reads)
    print(f"(work folder {work})")


if __name__ == "__main__":
    main()
