"""A long mutation-fuzzing campaign against the 835 reader and ``validate_file``.

    nice -n 19 python bench/fuzz_835.py                 # 100,000 inputs, seed 835
    nice -n 19 python bench/fuzz_835.py --inputs 2000   # a quick look

Valid files are generated (``recon.remit.generate``: several separator sets, line
breaks, 1 to 4 transactions, from a few KB to ~2 MB) and mutated the ways a careless
export, a broken transfer or an attacker would: characters and stretches deleted,
inserted, duplicated or moved; elements replaced by huge digit runs (up to a million
digits), empty, non-ASCII or separator characters; segments repeated thousands of
times, indented or swapped; ISA fields made a character short or long; envelopes
changed (GS01, control numbers, counts); the file truncated.

Each input goes through ``validate_file`` (the reader, the balancing, the report).
The contract: a report, never an exception other than recon's own (an *internal
error*: saved under ``bench/out/fuzz_failures/`` to reproduce), every message under
1,000 characters, and time linear in size. Printed: inputs, internal errors, the
slowest CPU seconds per MB (over all inputs, and over inputs of at least 256 KB,
where a fixed start-up cost does not dominate) and the slowest input. CPU time of
this process is used because the machine is shared: wall time depends on the load.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from recon.errors import ReconError  # noqa: E402
from recon.remit.era835 import clear_caches  # noqa: E402
from recon.remit.generate import generate_835  # noqa: E402
from recon.remit.validate import validate_file  # noqa: E402
from recon.remit.x12 import Separators  # noqa: E402

OUT = ROOT / "bench" / "out"
FAILURES = OUT / "fuzz_failures"
ALPHABET = "*:~^|>\\'{\n\r \t0123456789.-+ABCDEHIPQRSTXZ\ufeff\u0663\uff11\u2028\x00\x1f\x1cé€"
SEPARATORS = [
    Separators("*", ":", "^", "~"),
    Separators("|", ">", "^", "~"),
    Separators("*", ":", "^", "\n"),
    Separators("^", "\\", "{", "'"),
    Separators("*", ">", None, "~"),
]
TIMEOUT_S = 120
MAX_TEXT = 6_000_000
"""Largest mutant, in characters: the campaign's memory stays bounded (an early version
repeated a segment holding a million-digit run 20,000 times and was killed for memory)."""
LARGE = 256 * 1024
SMALL = 16 * 1024
"""Below this a fixed cost per file (~0.5 ms) would dominate seconds per MB: such inputs
are judged by their time alone."""


class Hang(Exception):
    """Raised by the alarm: an input took longer than TIMEOUT_S of wall time."""


@dataclass
class Base:
    """A valid generated file to mutate, as text, with its terminator and separators."""

    text: str
    seps: Separators


def bases(folder: Path, rng: random.Random) -> tuple[list[Base], list[Base]]:
    """Small and medium files (most inputs) and ~2 MB files (a few inputs)."""
    small: list[Base] = []
    for k, seps in enumerate(SEPARATORS):
        for claims, transactions in ((3, 1), (12, 2), (60, 3), (250, 4)):
            path = folder / f"base_{k}_{claims}.835"
            generate_835(
                path,
                n_claims=claims,
                seed=rng.randrange(10**6),
                separators=seps,
                line_break=bool(k % 2),
                transactions=transactions,
            )
            small.append(Base(path.read_text(encoding="utf-8"), seps))
    large: list[Base] = []
    for k, seps in enumerate(SEPARATORS[:3]):
        path = folder / f"large_{k}.835"
        generate_835(path, n_claims=6500, seed=rng.randrange(10**6), separators=seps, line_break=k == 2)
        large.append(Base(path.read_text(encoding="utf-8"), seps))
    return small, large


def long_run(rng: random.Random) -> str:
    n = rng.choice((19, 100, 5_000, 40_000, 40_000, 300_000, 1_000_001))
    unit = rng.choice(("1", "1", "9", "0", "1.", "-1"))
    return unit * (n // len(unit)) + rng.choice(("", "X", "."))


def element_value(rng: random.Random, seps: Separators) -> str:
    kind = rng.randrange(10)
    if kind == 0:
        return long_run(rng)
    if kind == 1:
        return ""
    if kind == 2:
        return rng.choice(("-", ".", "-.", "1.2.3", "1e5", "NaN", "Infinity", "-0", "0.125", "9.999", "+5"))
    if kind == 3:
        return rng.choice(("\u0663", "\uff11\uff12", "\u00b2", "١٢٣.٤٥", "1\u2028"))
    if kind == 4:
        return rng.choice((seps.component, seps.repetition or "^", " ", "\t")) * rng.randrange(1, 4)
    if kind == 5:
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randrange(1, 30)))
    if kind == 6:
        return "X" * rng.choice((39, 61, 81, 300, 70_000))
    if kind == 7:
        return str(rng.randrange(-(10**20), 10**20)) + rng.choice(("", ".5", ".55", ".555"))
    if kind == 8:
        return rng.choice(("HC", "HP", "HC:99213:GT:95:25:XX", "HC>99213", "L6:" + "9" * 60))
    return rng.choice(("20240230", "00000000", "99999999", "2024031", "202403155"))


def mutate(base: Base, rng: random.Random) -> str:
    """One to eight random edits of ``base``."""
    text = base.text
    term, el = base.seps.segment, base.seps.element
    for _ in range(rng.randrange(1, 9)):
        if not text:
            text = base.text[: rng.randrange(1, 200)]
        kind = rng.randrange(16)
        at = rng.randrange(len(text) + 1)
        size = rng.choice((1, 1, 2, 3, 10, 50, 400))
        if kind == 0:
            text = text[:at] + text[at + size :]
        elif kind == 1:
            text = text[:at] + "".join(rng.choice(ALPHABET) for _ in range(size)) + text[at:]
        elif kind == 2:
            text = text[:at] + rng.choice(ALPHABET) + text[at + 1 :]
        elif kind == 3:
            text = text[:at] + text[at : at + size * 20] * rng.choice((1, 2, 50)) + text[at:]
        elif kind == 4:
            text = text[:at] + long_run(rng) + text[at:]
        elif kind == 5:
            piece = text[at : at + size * 10]
            rest = text[:at] + text[at + size * 10 :]
            to = rng.randrange(len(rest) + 1)
            text = rest[:to] + piece + rest[to:]
        elif kind == 6:
            text = text[: max(at, 1)]
        elif kind in (7, 8, 9):  # replace one element of one segment
            segs = text.split(term)
            i = rng.randrange(len(segs))
            e = segs[i].split(el)
            j = rng.randrange(len(e))
            e[j] = element_value(rng, base.seps)
            segs[i] = el.join(e)
            text = term.join(segs)
        elif kind == 10:  # repeat one segment many times
            segs = text.split(term)
            i = rng.randrange(len(segs))
            reps = min(rng.choice((2, 10, 1000, 20_000)), MAX_TEXT // (len(segs[i]) + 1))
            segs[i:i] = [segs[i]] * reps
            text = term.join(segs)
        elif kind == 11:  # swap two segments, or drop one
            segs = text.split(term)
            i, j = rng.randrange(len(segs)), rng.randrange(len(segs))
            if rng.randrange(2):
                segs[i], segs[j] = segs[j], segs[i]
            else:
                del segs[i]
            text = term.join(segs)
        elif kind == 12:  # indent segments
            lead = rng.choice((" ", "  ", "\t", "\r\n  "))
            segs = text.split(term)
            step = rng.choice((1, 3, 50))
            text = term.join(lead + s if k % step == 0 else s for k, s in enumerate(segs))
        elif kind == 13:  # an ISA field a character short or long
            fields = text[:106].split(el)
            if len(fields) >= 16:
                f = rng.randrange(1, 16)
                fields[f] = fields[f][:-1] if rng.randrange(2) and fields[f] else fields[f] + " "
                text = el.join(fields) + text[106:]
        elif kind == 14:  # envelope edits
            swap = rng.choice(
                ((f"GS{el}HP", f"GS{el}HC"), (f"ST{el}835", f"ST{el}837"), (f"{el}00501{el}", f"{el}00401{el}"))
            )
            text = text.replace(*swap, 1)
        else:  # another interchange: the same one again, or with other separators
            other = rng.choice(SEPARATORS)
            again = text if rng.randrange(2) else base.text.replace(el, "\x00").replace(term, "\x01")
            if "\x00" in again:
                again = again.replace("\x00", other.element).replace("\x01", other.segment)
            text = text + again
        if len(text) > MAX_TEXT:  # repeated growth (a doubled file doubled again) stays bounded
            text = text[:MAX_TEXT]
    return text


def corrupt_bytes(text: str, rng: random.Random) -> bytes:
    """The text as UTF-8 with a few bytes overwritten: invalid UTF-8, NULs, a cut sequence."""
    data = bytearray(text.encode("utf-8"))
    for _ in range(rng.randrange(1, 4)):
        if data:
            data[rng.randrange(len(data))] = rng.choice((0x00, 0x80, 0xC3, 0xE2, 0xFF, 0x1C))
    return bytes(data)


def run_one(path: Path, data: bytes) -> tuple[bool, float, float, str | None]:
    """(ok, CPU s, wall s, internal error or None) for one input."""
    path.write_bytes(data)
    clear_caches()
    cpu, wall = time.process_time(), time.perf_counter()
    signal.alarm(TIMEOUT_S)
    try:
        report = validate_file(path)
        problem = None
        for message in report.errors:
            if len(message) >= 1000:
                problem = f"a message of {len(message):,} characters: {message[:200]!r}"
                break
        ok = report.ok
    except Hang:
        ok, problem = False, f"no answer after {TIMEOUT_S} s"
    except ReconError:  # validate_file reports bad content; anything raised is a bug
        ok, problem = False, "validate_file raised: " + traceback.format_exc(limit=-3)
    except Exception:
        ok, problem = False, traceback.format_exc()
    finally:
        signal.alarm(0)
    return ok, time.process_time() - cpu, time.perf_counter() - wall, problem


@dataclass
class Tally:
    """What one worker found; tallies of several workers add up."""

    inputs: int = 0
    internal: int = 0
    accepted: int = 0
    total_mb: float = 0.0
    cpu_total: float = 0.0
    worst: tuple[float, float, int] = (0.0, 0.0, 0)  # s/MB, s, size (inputs >= SMALL)
    worst_large: tuple[float, float, int] = (0.0, 0.0, 0)
    slowest_small: tuple[float, int] = (0.0, 0)
    slowest: tuple[float, int] = (0.0, 0)

    def add(self, other: Tally) -> None:
        self.inputs += other.inputs
        self.internal += other.internal
        self.accepted += other.accepted
        self.total_mb += other.total_mb
        self.cpu_total += other.cpu_total
        self.worst = max(self.worst, other.worst)
        self.worst_large = max(self.worst_large, other.worst_large)
        self.slowest_small = max(self.slowest_small, other.slowest_small)
        self.slowest = max(self.slowest, other.slowest)


def on_alarm(signum: int, frame: object) -> None:
    raise Hang


def campaign(job: tuple[int, int, int, int]) -> Tally:
    """One worker: ``inputs`` mutants from its own seed; progress every 10,000."""
    worker, inputs, seed, large_every = job
    signal.signal(signal.SIGALRM, on_alarm)
    rng = random.Random(seed * 1000 + worker)
    start = time.perf_counter()
    tally = Tally()
    with tempfile.TemporaryDirectory(prefix="recon-fuzz-") as tmp:
        folder = Path(tmp)
        small, large = bases(folder, rng)
        path = folder / "mutant.835"
        for k in range(1, inputs + 1):
            base = rng.choice(large) if k % large_every == 0 else rng.choice(small)
            text = mutate(base, rng)
            data = corrupt_bytes(text, rng) if rng.randrange(50) == 0 else text.encode("utf-8")
            del text
            ok, cpu, _wall, problem = run_one(path, data)
            size = len(data)
            mb = max(size, 1) / 1e6
            tally.inputs += 1
            tally.total_mb += mb
            tally.cpu_total += cpu
            tally.accepted += ok
            per_mb = cpu / mb
            if size >= SMALL:
                tally.worst = max(tally.worst, (per_mb, cpu, size))
            if size >= LARGE:
                tally.worst_large = max(tally.worst_large, (per_mb, cpu, size))
            if size < SMALL:
                tally.slowest_small = max(tally.slowest_small, (cpu, size))
            tally.slowest = max(tally.slowest, (cpu, size))
            if problem is not None:
                tally.internal += 1
                FAILURES.mkdir(parents=True, exist_ok=True)
                saved = FAILURES / f"seed{seed}_w{worker}_{k}.835"
                saved.write_bytes(data)
                print(
                    f"worker {worker} input {k}: INTERNAL ERROR ({size:,} bytes, saved as {saved}):\n{problem}",
                    flush=True,
                )
            if k % 10_000 == 0:
                print(
                    f"  worker {worker}: {k:,} inputs, {tally.internal} internal errors, "
                    f"{time.perf_counter() - start:,.0f} s",
                    flush=True,
                )
    return tally


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=835)
    parser.add_argument("--workers", type=int, default=1, help="processes sharing the inputs")
    parser.add_argument("--large-every", type=int, default=100, help="one ~2 MB base every N inputs")
    args = parser.parse_args()
    start = time.perf_counter()
    shares = [args.inputs // args.workers + (w < args.inputs % args.workers) for w in range(args.workers)]
    jobs = [(w, n, args.seed, args.large_every) for w, n in enumerate(shares)]
    total = Tally()
    if args.workers == 1:
        total.add(campaign(jobs[0]))
    else:
        with multiprocessing.Pool(args.workers) as pool:
            for tally in pool.imap_unordered(campaign, jobs):
                total.add(tally)
    took = time.perf_counter() - start
    rejected = total.inputs - total.accepted
    print(f"inputs: {total.inputs:,} ({total.total_mb:,.1f} MB; {total.accepted:,} accepted, {rejected:,} rejected)")
    print(f"internal errors: {total.internal}")
    worst, large = total.worst, total.worst_large
    print(
        f"slowest seconds per MB (CPU, inputs of 16 KB or more): {worst[0]:.3f} "
        f"({worst[1]:.4f} s for {worst[2]:,} bytes)"
    )
    print(
        f"slowest seconds per MB (CPU, inputs of 256 KB or more): {large[0]:.3f} "
        f"({large[1]:.3f} s for {large[2]:,} bytes)"
    )
    print(f"slowest input under 16 KB (CPU): {total.slowest_small[0]:.4f} s for {total.slowest_small[1]:,} bytes")
    print(f"slowest input (CPU): {total.slowest[0]:.3f} s for {total.slowest[1]:,} bytes")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"total: {total.cpu_total:,.0f} s CPU in {args.workers} process(es), {took:,.0f} s wall; load average {load}")


if __name__ == "__main__":
    main()
