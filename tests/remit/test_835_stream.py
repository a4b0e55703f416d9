"""Reading an 835 as a stream: the same claims, checks and messages as a whole read, in bounded memory."""

from __future__ import annotations

import dataclasses
import tracemalloc
from pathlib import Path

from recon.remit.era835 import ClaimBatch, TransactionEnd, clear_caches, read_835_checked, read_835_stream
from recon.remit.generate import generate_835
from recon.remit.validate import validate_file
from recon.remit.x12 import X12Error


def test_stream_yields_the_claims_and_checks_of_a_whole_read(tmp_path: Path) -> None:
    f = generate_835(tmp_path / "three.835", n_claims=2_500, seed=11, transactions=3).path
    whole = list(read_835_checked(f))
    batches: dict[int, list[object]] = {}
    ends: list[TransactionEnd] = []
    for part in read_835_stream(f, batch=300):
        if isinstance(part, ClaimBatch):
            assert 0 < len(part.claims) <= 300
            assert part.st not in {e.st for e in ends}, "a batch after its transaction ended"
            batches.setdefault(part.st, []).extend(part.claims)
            header = part.header
            assert header.claims == () and header.trace_number and header.amount > 0
        else:
            ends.append(part)
    assert [e.st for e in ends] == [1, 2, 3]
    for end, (rem, imbalances) in zip(ends, whole, strict=True):
        assert tuple(batches[end.st]) == rem.claims
        assert end.remittance == dataclasses.replace(rem, claims=())
        assert end.imbalances == imbalances
        assert end.claims == len(rem.claims)
        assert end.lines == sum(len(c.lines) for c in rem.claims)
        assert end.paid == sum((c.paid for c in rem.claims), start=end.paid * 0)


def test_stream_raises_the_errors_of_a_whole_read(tmp_path: Path) -> None:
    f = generate_835(tmp_path / "cut.835", n_claims=400, seed=3).path
    text = f.read_text()
    cut = tmp_path / "truncated.835"
    cut.write_text(text[: len(text) // 2])
    messages = []
    for read in (lambda: list(read_835_checked(cut)), lambda: list(read_835_stream(cut, batch=50))):
        try:
            read()
        except X12Error as exc:
            messages.append(exc.message)
    assert len(messages) == 2 and messages[0] == messages[1]
    assert "truncated" in messages[0] or "no SE" in messages[0]


def _repeated(source: Path, times: int, dest: Path) -> Path:
    """``source`` (one ST, no PLB) with its claims written ``times`` over, in one ST that still balances.

    The claims' texts repeat, so the reader's caches hold the same after one copy as after
    ten: what differs between the two files' peaks is only what the read keeps per claim.
    """
    segs = [s for s in source.read_text().split("~") if s]
    first = next(i for i, s in enumerate(segs) if s.startswith("LX*"))
    end = next(i for i, s in enumerate(segs) if s.startswith("SE*"))
    head, body = segs[:first], segs[first:end]
    st = next(i for i, s in enumerate(head) if s.startswith("ST*"))
    ((rem, _),) = read_835_checked(source)
    bpr = head[st + 1].split("*")
    bpr[2] = str(rem.amount * times)
    head[st + 1] = "*".join(bpr)
    count = len(head) - st + len(body) * times + 1
    se = segs[end].split("*")
    se[1] = str(count)
    text = "~".join([*head, *(body * times), "*".join(se), *segs[end + 1 :]]) + "~"
    dest.write_text(text)
    return dest


def _validate_peak(path: Path) -> tuple[int, int]:
    """(peak traced bytes, claims) of validating ``path``."""
    clear_caches()
    tracemalloc.start()
    try:
        report = validate_file(path)
        return tracemalloc.get_traced_memory()[1], report.claims
    finally:
        tracemalloc.stop()
        assert report.ok, report.errors[:3]


def test_validate_holds_the_same_memory_for_a_transaction_three_times_larger(tmp_path: Path) -> None:
    """One ST of 18,000 claims (~5 MB) is validated in the memory of one of 6,000.

    Both are past the reader's fixed cost (two 1 MB chunks of text and their segments);
    a whole read of the ST would keep every claim (about 1.5 KB each): 3x the claims' memory.
    """
    source = generate_835(tmp_path / "one.835", n_claims=1_500, seed=5, plb=False).path
    small = _repeated(source, 4, tmp_path / "small.835")
    large = _repeated(source, 12, tmp_path / "large.835")
    (small_peak, small_claims), (large_peak, large_claims) = _validate_peak(small), _validate_peak(large)
    assert large_claims == 3 * small_claims
    assert large_peak < 1.25 * small_peak, (small_peak, large_peak)
