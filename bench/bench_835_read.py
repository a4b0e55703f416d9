"""How fast recon reads and balances 835 files, and whether memory stays flat.

    python bench/bench_835_read.py            # 10 MB file + 1,000,000 claims over 32 files
    python bench/bench_835_read.py --pyx12    # also pyx12 on the 10 MB file (~85 s or more)
    python bench/bench_835_read.py --skip-million

Files are generated once under bench/out/ (gitignored) and reused. The floor is
``read().split()`` of the whole file: no Python per segment at all, and no streaming.
The million-claim read runs first, in a fresh process, so its peak RSS is its own.

The machine is shared, so each row is the best of ``--repeat`` runs, the rows are
interleaved (every round runs each row once), and the ratio to the floor is what to
compare: CPU time of this process (``time.process_time``) is the headline because
other processes' load inflates wall time far more than it does CPU time; wall time is
printed beside it, and the load average before and after. Reader rows run cold: the
reader's parse caches are emptied before each run, as in a fresh ``recon`` process.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recon.remit.balance import check_remittance, read_balanced  # noqa: E402
from recon.remit.era835 import TransactionEnd, clear_caches, read_835, read_835_stream  # noqa: E402
from recon.remit.generate import generate_835  # noqa: E402
from recon.remit.validate import validate_file  # noqa: E402
from recon.remit.x12 import X12Reader, gc_paused  # noqa: E402

OUT = ROOT / "bench" / "out"
TEN_MB_CLAIMS = 31_000
MILLION = 1_000_000
FILES = 32


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def interleaved(repeat: int, rows: list[tuple[str, Callable[[], int]]],
                ) -> dict[str, tuple[float, float]]:
    """Best (CPU s, wall s) of ``repeat`` rounds; each round runs every row once."""
    best = {label: (float("inf"), float("inf")) for label, _ in rows}
    for _ in range(repeat):
        for label, fn in rows:
            clear_caches()
            cpu, wall = time.process_time(), time.perf_counter()
            with gc_paused():
                fn()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            best[label] = (min(best[label][0], cpu), min(best[label][1], wall))
    return best


def floor(path: Path) -> int:
    text = path.read_text(encoding="utf-8")
    return len([s.split("*") for s in text.split("~") if s])


def tokenize(path: Path) -> int:
    return sum(len(batch) for _, batch in X12Reader(path).batches())


def read_only(path: Path) -> int:
    return sum(len(r.claims) for r in read_835(path))


def read_then_check(path: Path) -> int:
    """The two-pass way: read the records, then walk them to balance."""
    claims = 0
    for rem in read_835(path):
        if check_remittance(rem):
            raise SystemExit(f"{path} does not balance")
        claims += len(rem.claims)
    return claims


def read_and_balance(path: Path) -> int:
    """Balanced in the reading pass (what validate_file does)."""
    claims = 0
    for rem, problems in read_balanced(path):
        if problems:
            raise SystemExit(f"{path} does not balance")
        claims += len(rem.claims)
    return claims


def read_streamed(path: Path) -> int:
    """Balanced in the reading pass, a batch of claims at a time (what validate_file and recon era do)."""
    claims = 0
    for part in read_835_stream(path):
        if isinstance(part, TransactionEnd):
            if part.imbalances or part.remittance.defects:
                raise SystemExit(f"{path} does not balance")
            claims += part.claims
    return claims


def ensure_ten_mb() -> Path:
    path = OUT / f"era_{TEN_MB_CLAIMS}.835"
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        generate_835(path, n_claims=TEN_MB_CLAIMS, seed=835)
        print(f"generated {path.name} in {time.perf_counter() - start:.1f} s")
    return path


def _generate_part(args: tuple[Path, int, int]) -> int:
    path, claims, seed = args
    return generate_835(path, n_claims=claims, seed=seed, transactions=4,
                        trace=f"M{seed:06d}").claims


def ensure_million() -> Path:
    folder = OUT / "million"
    paths = [folder / f"part_{k:02d}.835" for k in range(FILES)]
    missing = [p for p in paths if not p.exists()]
    if missing:
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        jobs = [(p, MILLION // FILES, 1000 + paths.index(p)) for p in missing]
        with ProcessPoolExecutor() as pool:
            list(pool.map(_generate_part, jobs))
        print(f"generated {len(missing)} files, {MILLION // FILES * len(missing):,} claims "
              f"in {time.perf_counter() - start:.1f} s")
    return folder


def read_many(folder: Path) -> None:
    """Child process: read and balance every file, one remittance at a time."""
    start = time.perf_counter()
    claims = 0
    marks = []
    files = sorted(folder.glob("*.835"))
    with gc_paused():
        for k, path in enumerate(files, start=1):
            claims += read_and_balance(path)
            if k in (1, len(files) // 4, len(files) // 2, len(files)):
                marks.append(f"after {k} file(s) {peak_mb():.0f} MB")
    took = time.perf_counter() - start
    print(f"read+balanced {claims:,} claims in {len(files)} files: {took:.1f} s "
          f"({claims / took:,.0f} claims/s)")
    print("peak RSS " + ", ".join(marks))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyx12", action="store_true", help="also time pyx12 (slow)")
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--read-many", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.read_many:
        read_many(args.read_many)
        return

    if not args.skip_million:
        # First, while this process is small: Linux carries ru_maxrss across exec, so a
        # child started after the big reads below would inherit their peak.
        folder = ensure_million()
        subprocess.run([sys.executable, __file__, "--read-many", str(folder)], check=True)

    path = ensure_ten_mb()
    size = path.stat().st_size / 1e6
    segments = floor(path)
    print(f"{path.name}: {size:.1f} MB, {segments:,} segments, {TEN_MB_CLAIMS:,}+ claims")
    print(f"  before: {load()}")
    rows = [
        ("str.split floor (whole file)", floor),
        ("recon tokenizer (streaming)", tokenize),
        ("recon reader (loop model)", read_only),
        ("reader, then check_remittance", read_then_check),
        ("recon reader + balancing", read_and_balance),
        ("streamed (read_835_stream)", read_streamed),
    ]
    best = interleaved(args.repeat, [(label, lambda fn=fn: fn(path)) for label, fn in rows])
    base_cpu, base_wall = best[rows[0][0]]
    print(f"  {'best of ' + str(args.repeat):<32} {'CPU s':>7} {'× floor':>8} {'wall s':>7} "
          f"{'× floor':>8} {'M seg/s (CPU)':>14}")
    for label, _ in rows:
        cpu, wall = best[label]
        print(f"  {label:<32} {cpu:7.3f} {cpu / base_cpu:7.2f}× {wall:7.3f} "
              f"{wall / base_wall:7.2f}× {segments / cpu / 1e6:14.2f}")
    clear_caches()
    start = time.perf_counter()
    report = validate_file(path)
    print(f"  {'validate_file (report, cold)':<32} {time.perf_counter() - start:7.3f} s wall  "
          f"ok={report.ok} claims={report.claims:,} paid={report.total_paid}")
    print(f"  after: {load()}")

    if args.pyx12:
        try:
            import pyx12  # noqa: F401
        except ImportError:
            print("  pyx12 not installed")
        else:
            start = time.perf_counter()
            strict = validate_file(path, strict=True)
            took = time.perf_counter() - start
            guide = next(c for c in strict.checks if c.name == "guide")
            print(f"  {'pyx12 (validate_file strict)':<32} {took:6.2f} s  "
                  f"guide passed={guide.passed} ({guide.failed} findings)")


if __name__ == "__main__":
    main()
