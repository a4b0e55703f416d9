"""The three balancing checks an 835 must pass before anything of it is posted.

1. line:  SVC02 − Σ line CAS = SVC03
2. claim: CLP03 − Σ (claim CAS + line CAS) = CLP04 (a claim without lines: claim CAS only)
3. file:  Σ CLP04 − Σ PLB = BPR02, per ST

They hold for denials (CLP02 = 4: the CAS explain the whole charge) and reversals
(CLP02 = 22: every amount negated) as for any claim, so no status is exempt. Problems
are returned as data so a report can show all of them; :func:`raise_if_unbalanced`
turns them into one :class:`~recon.errors.RemittanceError` for code that must stop.

:func:`check_remittance` checks any Remittance from its records. :func:`read_balanced`
reads a file and balances it in the same pass (the reader adds the amounts while it
has them), which is what validation and posting of whole files should use: it gives
the same problems, in the same order, for about a sixth less time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from recon.errors import RemittanceError
from recon.money import ZERO, fmt
from recon.remit.era835 import Adjustment, Claim, Remittance, read_835_checked

LEVELS = ("line", "claim", "file")


@dataclass(frozen=True, slots=True)
class BalanceProblem:
    """One failed check: where (file, ST02, claim, line) and the numbers on both sides.

    ``stated`` is what the file says was paid (SVC03, CLP04 or BPR02); ``computed`` is
    what the other amounts add up to (SVC02 − CAS, CLP03 − CAS, Σ CLP04 − Σ PLB).
    """

    level: str
    file: str
    transaction: str
    claim_id: str | None
    claim_segment: int | None
    line: int | None
    segment: int
    stated: Decimal
    computed: Decimal
    formula: str

    @property
    def difference(self) -> Decimal:
        return self.computed - self.stated

    @property
    def message(self) -> str:
        where = f"{self.file}: ST {self.transaction}"
        if self.claim_id is not None:
            where += f" claim {self.claim_id} (segment {self.claim_segment})"
        if self.line is not None:
            where += f" line {self.line} (segment {self.segment})"
        return (f"{where}: {self.level} does not balance: {self.formula} = "
                f"{fmt(self.computed)}, but the file says {fmt(self.stated)} "
                f"(off by {fmt(self.difference)})")


class UnbalancedRemittance(RemittanceError):
    """An 835 whose amounts do not add up; ``problems`` lists every failed check."""

    def __init__(self, problems: list[BalanceProblem]) -> None:
        self.problems = problems
        first = problems[0].message
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{first}{more}")


def _cas_total(adjustments: Iterable[Adjustment]) -> Decimal:
    total = ZERO
    for a in adjustments:
        total += a.amount
    return total


def check_claim(claim: Claim, file: str, transaction: str) -> list[BalanceProblem]:
    """Line and claim checks of one claim."""
    problems: list[BalanceProblem] = []
    adjusted = _cas_total(claim.adjustments)
    for number, line in enumerate(claim.lines, start=1):
        line_cas = _cas_total(line.adjustments)
        adjusted += line_cas
        computed = line.charge - line_cas
        if computed != line.paid:
            problems.append(BalanceProblem(
                "line", file, transaction, claim.claim_id, claim.segment, number, line.segment,
                line.paid, computed, f"SVC02 {fmt(line.charge)} − line CAS {fmt(line_cas)}",
            ))
    computed = claim.charge - adjusted
    if computed != claim.paid:
        what = "claim + line CAS" if claim.lines else "claim CAS"
        problems.append(BalanceProblem(
            "claim", file, transaction, claim.claim_id, claim.segment, None, claim.segment,
            claim.paid, computed, f"CLP03 {fmt(claim.charge)} − {what} {fmt(adjusted)}",
        ))
    return problems


def check_remittance(remittance: Remittance) -> list[BalanceProblem]:
    """All three checks of one transaction; an empty list means it balances."""
    env = remittance.envelope
    problems: list[BalanceProblem] = []
    paid = ZERO
    for claim in remittance.claims:
        paid += claim.paid
        problems.extend(check_claim(claim, env.file, env.transaction_control))
    plb = plb_total(remittance)
    computed = paid - plb
    if computed != remittance.amount:
        problems.append(BalanceProblem(
            "file", env.file, env.transaction_control, None, None, None, env.segment,
            remittance.amount, computed, f"Σ CLP04 {fmt(paid)} − Σ PLB {fmt(plb)}",
        ))
    return problems


def plb_total(remittance: Remittance) -> Decimal:
    """Σ PLB amounts of one transaction (positive: money withheld from the payment)."""
    total = ZERO
    for adj in remittance.provider_adjustments:
        total += adj.amount
    return total


def raise_if_unbalanced(problems: list[BalanceProblem]) -> None:
    """Raise :class:`UnbalancedRemittance` naming the first problem if there is any."""
    if problems:
        raise UnbalancedRemittance(problems)


def read_balanced(path: str | Path, *, name: str | None = None,
                  ) -> Iterator[tuple[Remittance, list[BalanceProblem]]]:
    """Yield ``(remittance, problems)`` per transaction, balanced while reading.

    ``problems`` equals ``check_remittance(remittance)``; the envelope errors of
    :func:`~recon.remit.era835.read_835` are raised the same way.
    """
    for rem, found in read_835_checked(path, name=name):
        yield rem, [BalanceProblem(*f) for f in found]
