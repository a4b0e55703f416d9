"""Benchmark: `recon load` of a million invoices, and a ledger of ten million.

    python bench/bench_scale.py                      # both parts
    python bench/bench_scale.py --skip-load          # only the 10M ledger
    python bench/bench_scale.py --skip-ledger        # only the 1M load

Part 1 runs ``recon load`` of a generated practice (100,000 clients, 1,000,000
invoices) into a fresh ledger as a whole process, ``--load-rounds`` times, and prints
its wall seconds, CPU seconds and peak RSS (``getrusage`` of the child).

Part 2 builds, once, a ledger of ``--invoices`` (10,000,000) invoices by loading ten
generated practices of the same 100,000 clients (invoice numbers and service dates
following on) with ``recon load``, each as a process; it is kept in bench/out/scale/
(gitignored) and reused. Then, as the CLI and notebooks use the library
(``recon.services.Recon``), it times: one client's ledger (``ledger_rows``), planning
and recording one insurance payment, and the A/R aging report (``reports.ar_aging``),
printing medians. The machine is shared: each figure is printed with the load average.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from recon.demo import PracticeSize, generate_practice  # noqa: E402

OUT = ROOT / "bench" / "out" / "scale"
CLIENTS = 100_000
SEED = 11


def load_avg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def recon_load(source: Path, db: Path, user: str | None = None) -> tuple[float, float, float]:
    """``recon load`` as a process: (wall s, CPU s, peak RSS MB of that child)."""
    cmd = [sys.executable, "-m", "recon.cli", "load", str(source), "--db", str(db)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if user:
        cmd += ["--user", user]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    run = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode != 0:
        raise SystemExit(f"recon load failed ({run.returncode}): {run.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    # ru_maxrss of RUSAGE_CHILDREN is the largest child so far: run each load in its own bench process
    # (or read the per-round figure as "at most"); KB on Linux
    return wall, cpu, after.ru_maxrss / 1024


def remove_ledger(db: Path) -> None:
    for path in (db, db.with_name(db.name + ".wal")):
        path.unlink(missing_ok=True)
    shutil.rmtree(db.with_name(db.name + ".tmp"), ignore_errors=True)


def bench_load(rounds: int) -> None:
    practice = OUT / "practice_1m"
    if not (practice / "invoices.csv").exists():
        generate_practice(practice, PracticeSize(CLIENTS, 1_000_000), SEED)
    print(f"== recon load of {CLIENTS:,} clients and 1,000,000 invoices, as a process ==")
    walls = []
    for n in range(rounds):
        db = OUT / "load_1m.duckdb"
        remove_ledger(db)
        before = load_avg()
        if n == 0:
            wall, cpu, rss = recon_load(practice, db)
        else:  # a fresh child process measures its own peak: rusage keeps the largest child's
            child = subprocess.run(
                [sys.executable, __file__, "--one-load", str(practice), str(db)],
                capture_output=True,
                text=True,
                check=True,
            )
            wall, cpu, rss = (float(x) for x in child.stdout.split())
        walls.append(wall)
        print(
            f"round {n + 1}: {wall:6.2f} s wall, {cpu:6.2f} s CPU, peak RSS {rss:6.0f} MB "
            f"(load {before} -> {load_avg()})"
        )
    print(f"median wall {statistics.median(walls):.2f} s over {rounds} rounds")
    remove_ledger(OUT / "load_1m.duckdb")


def build_ledger(total: int, chunk: int) -> Path:
    """The 10M-invoice ledger, built once by loading practices of ``chunk`` invoices one after another."""
    db = OUT / f"ledger_{total // 1_000_000}m.duckdb"
    done = db.with_name(db.name + ".done")
    if done.exists() and db.exists():
        return db
    remove_ledger(db)
    print(f"== building a {total:,}-invoice ledger in {total // chunk} loads of {chunk:,} (once) ==")
    for k in range(total // chunk):
        source = OUT / "chunk"
        shutil.rmtree(source, ignore_errors=True)
        start = date(2024, 1, 1) + timedelta(days=70 * k)
        generate_practice(source, PracticeSize(CLIENTS, chunk), SEED, start=start, first_invoice=k * chunk + 1)
        before = load_avg()
        wall, cpu, rss = recon_load(source, db, None if k == 0 else "cara")
        print(
            f"load {k + 1}: +{chunk:,} invoices into {k * chunk:,}: {wall:6.2f} s wall, {cpu:6.2f} s CPU "
            f"(peak RSS so far {rss:.0f} MB; load {before} -> {load_avg()})",
            flush=True,
        )
    shutil.rmtree(OUT / "chunk", ignore_errors=True)
    done.write_text(f"{total} invoices\n")
    return db


CPU: dict[str, list[float]] = {}
"""CPU seconds of this process (DuckDB's threads included) per call, by what was timed: on a shared
machine a wall figure waits for other work; the CPU figure is what the call itself costs."""


STATEMENTS: dict[str, list[int]] = {}
"""Statements each timed call sent to DuckDB through ``Recon.execute`` (every read and write of the library)."""
_SENT = [0]


def count_statements() -> None:
    """Count what ``Recon.execute`` runs (the bench's own instrument, installed once)."""
    from recon.services import Recon

    execute = Recon.execute

    def counted(self, sql, params=()):  # type: ignore[no-untyped-def]
        _SENT[0] += 1
        return execute(self, sql, params)

    Recon.execute = counted  # type: ignore[method-assign]


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    sent = _SENT[0]
    start, cpu = time.perf_counter(), time.process_time()
    result = fn(*args, **kwargs)
    name = getattr(fn, "__name__", "call")
    CPU.setdefault(name, []).append(time.process_time() - cpu)
    STATEMENTS.setdefault(name, []).append(_SENT[0] - sent)
    return result, time.perf_counter() - start


def summary(name: str, times: list[float], unit: float = 1000.0, label: str = "ms", cpu: str = "") -> None:
    times = sorted(times)
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    spent = f", CPU median {statistics.median(CPU[cpu]) * unit:7.1f} {label}" if cpu in CPU else ""
    if cpu in STATEMENTS:
        spent += f", {statistics.median(STATEMENTS[cpu]):.0f} statements"
    print(
        f"{name:<38} median {statistics.median(times) * unit:8.1f} {label}, p95 {p95 * unit:8.1f} {label}{spent}, "
        f"n={len(times)}  (load {load_avg()})"
    )


def bench_ledger(db: Path, repeat: int) -> None:
    from recon import reports
    from recon.model import PaymentMethod, PaymentRequest
    from recon.services import Recon

    count_statements()
    recon = Recon.open(db)
    try:
        count = recon.one("SELECT count(*) FROM invoices")[0]  # type: ignore[index]
        print(f"== a ledger of {count:,} invoices ({db.stat().st_size / 1e9:.2f} GB file) ==")
        policies = recon.execute(
            "SELECT client_id, payer_id FROM client_insurance WHERE priority = 'primary' ORDER BY client_id"
        ).fetchall()
        rng = random.Random(time.time_ns())
        picked = rng.sample(policies, repeat)
        recon.ledger_rows(picked[0][0])  # warm: the first query opens the file's metadata
        ledgers, plans, records = [], [], []
        sizes = []
        run = time.strftime("%Y%m%d%H%M%S")
        for n, (client_id, payer_id) in enumerate(picked):
            rows, t = timed(recon.ledger_rows, client_id)
            ledgers.append(t)
            sizes.append(len(rows))
            request = PaymentRequest(
                client_id,
                payer_id,
                PaymentMethod.INSURANCE_EFT_ACH,
                amount=Decimal("100.00"),
                payment_number=f"S{run}-{n}",
                idempotency_key=f"scale-{run}-{n}",
            )
            _, t_plan = timed(recon.plan_payment, request)
            _, t_record = timed(recon.record_payment, request, "cara")
            plans.append(t_plan)
            records.append(t_record)
        print(f"clients' ledgers: {min(sizes)}-{max(sizes)} invoices (median {statistics.median(sizes):.0f})")
        summary("client ledger (ledger_rows)", ledgers, cpu="ledger_rows")
        summary("plan one payment (plan_payment)", plans, cpu="plan_payment")
        summary("record one payment (record_payment)", records, cpu="record_payment")
        summary("plan + record", [a + b for a, b in zip(plans, records, strict=True)])
        reports.ar_aging(recon)  # warm (imports pandas)
        aging = [timed(reports.ar_aging, recon)[1] for _ in range(5)]
        summary("A/R aging report (reports.ar_aging)", aging, 1.0, "s", cpu="ar_aging")
    finally:
        recon.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=10_000_000)
    parser.add_argument("--chunk", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=50, help="clients whose ledger is read and paid")
    parser.add_argument("--load-rounds", type=int, default=3)
    parser.add_argument("--skip-load", action="store_true")
    parser.add_argument("--skip-ledger", action="store_true")
    parser.add_argument("--one-load", nargs=2, metavar=("SOURCE", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_load:
        wall, cpu, rss = recon_load(Path(args.one_load[0]), Path(args.one_load[1]))
        print(wall, cpu, rss)
        return
    OUT.mkdir(parents=True, exist_ok=True)
    if not args.skip_load:
        bench_load(args.load_rounds)
    if not args.skip_ledger:
        bench_ledger(build_ledger(args.invoices, args.chunk), args.repeat)


if __name__ == "__main__":
    main()
