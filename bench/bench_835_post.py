"""How fast recon posts 835 files to a ledger, next to the str.split floor, and at a million claims.

    python bench/bench_835_post.py                 # 10 MB file (~31,000 claims) + 1,000,000 claims / 32 files
    python bench/bench_835_post.py --skip-million

A practice whose invoices the claims pay is written straight into a fresh ledger (SQL,
not the CSV loader: the benchmark measures posting, not loading), and the 835s are
generated from those invoices with ``recon.remit.generate`` (paid, partial, denied,
reversed, multi-line, no-line and unmatched claims, PLB). Files are kept under
bench/out/post/ (gitignored) and reused. Each posting starts from a fresh copy of the
ledger, so a run never measures "already posted".
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recon.remit.generate import CODES, generate_835  # noqa: E402
from recon.remit.post import post_remittances  # noqa: E402
from recon.remit.validate import validate_file  # noqa: E402
from recon.services import Recon  # noqa: E402

OUT = ROOT / "bench" / "out" / "post"
TEN_MB_CLAIMS = 31_000
MILLION = 1_000_000
FILES = 32
PAYER = "87726"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build_practice(path: Path, invoices: int) -> None:
    """Users, one payer, a client per 4 invoices, ``invoices`` invoices, all in SQL."""
    path.unlink(missing_ok=True)
    codes = "[" + ", ".join(f"'{c}'" for c in CODES) + "]"
    with Recon.open(path) as recon:
        recon.execute("INSERT INTO users VALUES ('ana', 'Ana Analyst', 'billing')")
        recon.execute(f"INSERT INTO insurance_providers VALUES ('UHC', 'UnitedHealthcare', '{PAYER}')")
        recon.execute(f"""INSERT INTO clients SELECT 'C' || i, 'First', 'Last' || i, DATE '1980-01-01', 20
                          FROM range({invoices // 4 + 1}) t(i)""")
        recon.execute(f"""INSERT INTO client_insurance SELECT 'C' || i, 'UHC', 'M' || i, 'primary', NULL
                          FROM range({invoices // 4 + 1}) t(i)""")
        recon.execute(f"""
            INSERT INTO invoices
            SELECT 'INV' || lpad(CAST(i AS VARCHAR), 8, '0'), 'C' || (i // 4),
                   DATE '2023-01-02' + CAST(i % 600 AS INTEGER),
                   {codes}[1 + i % {len(CODES)}], 1, CAST(80 + i % 180 AS DECIMAL(18,2)), 'UHC', 20,
                   CAST(60 + i % 180 AS DECIMAL(18,2)), 'INV' || lpad(CAST(i AS VARCHAR), 8, '0')
            FROM range({invoices}) t(i)""")


def invoice_specs(path: Path, offset: int, count: int) -> list[tuple[object, ...]]:
    with Recon.open(path) as recon:
        return recon.execute(f"""SELECT invoice_id, service_date, service_code, fee FROM invoices
                                 ORDER BY invoice_id LIMIT {count} OFFSET {offset}""").fetchall()


def floor(path: Path) -> int:
    text = path.read_text(encoding="utf-8")
    return len([s.split("*") for s in text.split("~") if s])


def timed(fn: object) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()  # type: ignore[operator]
    return time.perf_counter() - start, result


def ten_mb() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    practice = OUT / "practice_31k.duckdb"
    era = OUT / f"era_{TEN_MB_CLAIMS}.835"
    if not era.exists() or not practice.exists():
        build_practice(practice, TEN_MB_CLAIMS)
        generate_835(era, n_claims=TEN_MB_CLAIMS, seed=7, payer_id=PAYER, payment_date=date(2024, 3, 15),
                     invoices=invoice_specs(practice, 0, TEN_MB_CLAIMS))
    size = era.stat().st_size / 1e6
    t_floor, segments = timed(lambda: floor(era))
    t_validate, report = timed(lambda: validate_file(era))
    ledger = OUT / "bench_ledger.duckdb"
    best = None
    for _ in range(2):
        shutil.copy(practice, ledger)
        with Recon.open(ledger) as recon:
            t_post, batch = timed(lambda: post_remittances(recon, [era], "ana"))
        best = t_post if best is None else min(best, t_post)
        out = batch.files[0]  # type: ignore[attr-defined]
        assert out.status == "posted", out.message
    print(f"10 MB file: {size:.1f} MB, {segments:,} segments, {report.claims:,} claims")  # type: ignore[attr-defined]
    print(f"  floor  read().split()           {t_floor:6.2f} s")
    print(f"  read + balance (validate_file)  {t_validate:6.2f} s")
    print(f"  read + balance + post (1 pass)  {best:6.2f} s   "
          f"posted {out.claims_posted:,}, denied {out.claims_denied:,}, unmatched {out.claims_unmatched:,}, "
          f"reversed {out.claims_reversed:,}")
    print(f"  post / floor                    {best / t_floor:6.1f} x")


def million_files() -> tuple[Path, list[Path]]:
    folder = OUT / "million"
    folder.mkdir(parents=True, exist_ok=True)
    practice = OUT / "practice_1m.duckdb"
    per = MILLION // FILES
    files = [folder / f"part_{k:02d}.835" for k in range(FILES)]
    if not practice.exists() or not all(f.exists() for f in files):
        build_practice(practice, MILLION)
        for k, path in enumerate(files):
            generate_835(path, n_claims=per, seed=100 + k, payer_id=PAYER, trace=f"M{k:04d}",
                         payment_date=date(2024, 4, 1), invoices=invoice_specs(practice, k * per, per))
    return practice, files


def million_child(practice: Path, files: list[Path]) -> None:
    """Runs in a fresh process so its peak RSS is its own."""
    ledger = OUT / "bench_million.duckdb"
    shutil.copy(practice, ledger)
    rss: list[float] = []
    with Recon.open(ledger) as recon:
        start = time.perf_counter()
        report = post_remittances(recon, files, "ana", progress=lambda done, total, f: rss.append(peak_mb()))
        elapsed = time.perf_counter() - start
        claims = recon.one("SELECT count(*) FROM remit_claims")[0]
    assert report.ok, [f.message for f in report.files if not f.ok]
    print(f"1,000,000 claims over {len(files)} files: posted {claims:,} claim rows in {elapsed:.1f} s "
          f"({claims / elapsed:,.0f} claims/s)")
    print(f"  peak RSS after file 1: {rss[0]:.0f} MB, after file {len(rss) // 2}: {rss[len(rss) // 2 - 1]:.0f} MB, "
          f"after file {len(rss)}: {rss[-1]:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument("--million-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.million_child:
        million_child(*million_files())
        return
    ten_mb()
    if not args.skip_million:
        million_files()
        subprocess.run([sys.executable, __file__, "--million-child"], check=True)


if __name__ == "__main__":
    main()
