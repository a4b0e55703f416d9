"""Benchmark: the ledger on PostgreSQL beside the same ledger in a DuckDB file.

    python bench/bench_pg.py [--rounds 2] [--payments 40]

Prints, with the load average:
- the 10 MB 835 of bench/bench_835_post.py (32,000 claims on a 31,000-invoice
  practice) posted into a DuckDB file and into a PostgreSQL database holding the same
  practice (copied there by ``recon migrate``), best of ``--rounds``, and the ratio;
- payments recorded per second with 1, 4 and 8 analysts at once, each a process
  recording ``--payments`` payments on clients of its own through the library.

The server is ``RECON_BENCH_PG`` (an admin URI) or one started from the machine's
PostgreSQL binaries for the run (tests/pgserver.py).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_835_post import OUT, load, ten_mb_inputs  # noqa: E402

from recon.remit.post import post_remittances  # noqa: E402
from recon.services import Recon  # noqa: E402
from recon.store.transfer import migrate  # noqa: E402
from tests import pgserver  # noqa: E402

ANALYST = """
import sys, time
from decimal import Decimal
from recon.model import PaymentMethod, PaymentRequest
from recon.services import Recon

uri, worker, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with Recon.open(uri) as recon:
    recon.one("SELECT 1")
    print("ready", flush=True)
    sys.stdin.readline()
    start = time.perf_counter()
    for i in range(count):
        client = f"C{worker * 100 + i}"
        recon.record_payment(PaymentRequest(client, "UHC", PaymentMethod.INSURANCE_CHECK, amount=Decimal("10.00"),
                                            payment_number=f"B-{worker}-{i}"), "ana")
    print(time.perf_counter() - start, flush=True)
"""


@contextlib.contextmanager
def server() -> Iterator[str]:
    given = os.environ.get("RECON_BENCH_PG")
    if given:
        yield given
        return
    found = pgserver.binaries()
    if found is None:
        sys.exit("no PostgreSQL server: set RECON_BENCH_PG or install the postgresql package")
    with pgserver.started(found) as uri:
        yield uri


def post_seconds(target: Path | str, era: Path) -> float:
    with Recon.open(target) as recon:
        recon.one("SELECT 1")
        start = time.perf_counter()
        out = post_remittances(recon, [era], "ana").files[0]
        seconds = time.perf_counter() - start
    assert out.status == "posted", out.message
    return seconds


def ten_mb(admin: str, rounds: int) -> None:
    practice, era = ten_mb_inputs()
    print(f"10 MB file: {era.stat().st_size / 1e6:.1f} MB; {load()}")
    best = {"duckdb": float("inf"), "postgresql": float("inf")}
    for _ in range(rounds):
        copy = OUT / "bench_pg_ledger.duckdb"
        for stale in (copy, copy.with_name(copy.name + ".wal")):
            stale.unlink(missing_ok=True)
        shutil.copy(practice, copy)
        best["duckdb"] = min(best["duckdb"], post_seconds(copy, era))
        with pgserver.fresh_database(admin) as uri:
            start = time.perf_counter()
            migrate(practice, uri, "ana")
            print(f"  recon migrate of the 31,000-invoice practice to PostgreSQL: {time.perf_counter() - start:.2f} s")
            best["postgresql"] = min(best["postgresql"], post_seconds(uri, era))
    ratio = best["postgresql"] / best["duckdb"]
    print(f"  post into DuckDB       {best['duckdb']:7.2f} s")
    print(f"  post into PostgreSQL   {best['postgresql']:7.2f} s   {ratio:4.2f} x DuckDB (best of {rounds}); {load()}")


def payments(admin: str, per_analyst: int) -> None:
    practice, _ = ten_mb_inputs()
    with pgserver.fresh_database(admin) as uri:
        migrate(practice, uri, "ana")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        first = 0  # each analyst pays clients of their own: C{worker * 100 + i}
        for analysts in (1, 4, 8):
            workers = range(first, first + analysts)
            first += analysts
            procs = [subprocess.Popen([sys.executable, "-c", ANALYST, uri, str(w), str(per_analyst)],
                                      stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
                     for w in workers]  # fmt: skip
            for p in procs:
                assert p.stdout is not None and p.stdout.readline().strip() == "ready"
            start = time.perf_counter()
            for p in procs:
                assert p.stdin is not None
                p.stdin.write("go\n")
                p.stdin.flush()
            for p in procs:
                p.communicate(timeout=900)
                assert p.returncode == 0
            wall = time.perf_counter() - start
            total = analysts * per_analyst
            print(
                f"  {analysts} analyst(s): {total} payments in {wall:6.2f} s = {total / wall:6.1f} payments/s; {load()}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--payments", type=int, default=40, help="payments per analyst (at most 100)")
    parser.add_argument("--skip-835", action="store_true")
    args = parser.parse_args()
    with server() as admin:
        if not args.skip_835:
            ten_mb(admin, args.rounds)
        payments(admin, args.payments)


if __name__ == "__main__":
    main()
