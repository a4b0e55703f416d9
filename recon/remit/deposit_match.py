"""Match a bank deposit to remittances by hand, and undo it (the bank side of the worklist).

Why by hand: the automatic rules (trace, then amount and date; ``15_deposits.sql``)
leave a deposit unmatched when the bank gave no trace and the amount fits several
remittances, when one deposit pays several remittances, or when a trace was mistyped.
The analyst then says which remittance(s) the deposit paid.

A match is rows in ``deposit_match_entries`` (one per remittance) and an audit entry,
in one transaction; an undo is a reversing row per row of the match, never a delete.
The views read the matches that stand first and run the automatic rules on the rest,
so every report takes them into account. A match the rules would refuse (the amounts
differ, a remittance already matched to another deposit, the deposit already matched)
is written only when confirmed with a reason; a confirmed match supersedes (undoes,
with that reason) any other match by hand it overlaps. Replaying a match or an undo
changes nothing. Every action needs the Billing permission.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from recon.errors import InputError, NotFound, PaymentRefused
from recon.money import ZERO, fmt
from recon.rules.permissions import require_billing

_IN = "(SELECT unnest(string_split(?, chr(31))))"
"""``IN`` over ids bound as one text (ids joined by the unit separator)."""
HOW = {"manual": "by hand", "trace": "by trace", "amount_date": "by amount and date"}


@dataclass(frozen=True, slots=True)
class DepositMatch:
    """What a match or an undo did (``written`` False: it was already so, nothing was written)."""

    deposit_id: str
    action: str
    """``match`` or ``unmatch``."""
    remittance_ids: tuple[str, ...]
    deposit_amount: Decimal
    remittance_amount: Decimal
    match_id: int | None
    written: bool
    confirmed: tuple[str, ...] = ()
    """What the analyst confirmed (the mismatches), empty for a clean match."""
    reason: str | None = None
    superseded: tuple[str, ...] = ()
    """Other deposits whose match by hand this one undid (a confirmed match)."""

    @property
    def difference(self) -> Decimal:
        return self.deposit_amount - self.remittance_amount

    def __str__(self) -> str:
        ids = ", ".join(self.remittance_ids)
        if self.action == "unmatch":
            if not self.written:
                return f"Deposit {self.deposit_id}'s match by hand was already undone; nothing was written"
            return f"Deposit {self.deposit_id} unmatched from {ids} (match {self.match_id} undone: {self.reason})"
        if not self.written:
            return f"Deposit {self.deposit_id} is already matched to {ids}; nothing was written"
        text = f"Deposit {self.deposit_id} ({fmt(self.deposit_amount)}) matched by hand to {ids}"
        text += f" ({fmt(self.remittance_amount)})"
        if self.confirmed:
            text += f"; confirmed: {'; '.join(self.confirmed)}; reason: {self.reason}"
        if self.superseded:
            text += f"; the match by hand of {', '.join(self.superseded)} was undone"
        return text


def _deposit(recon: Any, deposit_id: str) -> tuple[Decimal, str | None, str | None]:
    """The deposit's amount, its status and how it is matched now."""
    row = recon.one("SELECT amount, status, matched_by FROM deposit_reconciliation WHERE deposit_id = ?", [deposit_id])
    if row is None:
        raise NotFound(f"No deposit {deposit_id!r} in this ledger (recon deposits lists them)")
    return row[0], row[1], row[2]


def _links(recon: Any, deposit_id: str) -> list[tuple[str, str, int | None]]:
    """The deposit's matched remittances now: (remittance, how, match id)."""
    return [
        (r[0], r[1], r[2])
        for r in recon.execute(
            "SELECT remittance_id, matched_by, match_id FROM deposit_links WHERE deposit_id = ? ORDER BY remittance_id",
            [deposit_id],
        ).fetchall()
    ]


def _remittance_ids(remittance_ids: Iterable[str]) -> tuple[str, ...]:
    ids: list[str] = []
    for raw in remittance_ids:
        rid = str(raw).strip()
        if rid and rid not in ids:
            ids.append(rid)
    if not ids:
        raise InputError("remittance: give the remittance(s) the deposit paid (recon remittances lists them)")
    return tuple(sorted(ids))


def match_deposit(
    recon: Any, deposit_id: str, remittance_ids: Iterable[str], user_id: str, *, confirm: str | None = None
) -> DepositMatch:
    """Match ``deposit_id`` by hand to one remittance, or to several that together make its amount.

    Refused, with nothing written, when the remittances' BPR02 do not add up to the
    deposit, when one of them is already matched to another deposit, or when the
    deposit is already matched to something else, unless ``confirm`` gives the reason
    the analyst accepts it. The same match again writes nothing.
    """
    from recon.services import now

    user = recon.user(user_id)
    require_billing(user, "match a bank deposit to remittances")
    deposit_id = (deposit_id or "").strip()
    if not deposit_id:
        raise InputError("deposit: give the deposit to match (recon deposits lists them)")
    ids = _remittance_ids(remittance_ids)
    why = (confirm or "").strip() or None
    with recon.transaction():
        amount, _status, _how = _deposit(recon, deposit_id)
        rows = recon.execute(
            f"SELECT remittance_id, amount FROM remittances WHERE remittance_id IN {_IN}",
            [chr(31).join(ids)],
        ).fetchall()
        amounts = {r[0]: r[1] for r in rows}
        missing = [i for i in ids if i not in amounts]
        if missing:
            raise NotFound(
                f"No remittance {', '.join(map(repr, missing))} in this ledger (recon remittances lists them)"
            )
        total = sum((amounts[i] for i in ids), ZERO)
        now_links = _links(recon, deposit_id)
        if tuple(r[0] for r in now_links) == ids:
            return DepositMatch(deposit_id, "match", ids, amount, total, now_links[0][2], written=False)
        issues: list[str] = []
        if total != amount:
            paid = f"remittance {ids[0]} paid" if len(ids) == 1 else f"remittances {', '.join(ids)} paid together"
            issues.append(f"deposit {fmt(amount)} but {paid} {fmt(total)}, a difference of {fmt(amount - total)}")
        if now_links:
            how = HOW.get(now_links[0][1], now_links[0][1])
            issues.append(f"deposit {deposit_id} is already matched {how} to {', '.join(r[0] for r in now_links)}")
        others = recon.execute(
            f"""SELECT remittance_id, deposit_id, matched_by, match_id FROM deposit_links
               WHERE remittance_id IN {_IN} AND deposit_id <> ? ORDER BY remittance_id""",
            [chr(31).join(ids), deposit_id],
        ).fetchall()
        for rid, other, how, _mid in others:
            issues.append(f"remittance {rid} is already matched {HOW.get(how, how)} to deposit {other}")
        if issues and why is None:
            raise PaymentRefused(
                f"Deposit {deposit_id} was not matched: {'; '.join(issues)}. Nothing was written; "
                "if this is right, confirm it with a reason"
            )
        stamp = now()
        superseded: list[str] = []
        undo = {r[2] for r in now_links if r[2] is not None} | {o[3] for o in others if o[3] is not None}
        for match_id in sorted(undo):
            other = _undo(recon, match_id, f"superseded by a match of deposit {deposit_id}: {why}", user.user_id, stamp)
            if other != deposit_id:
                superseded.append(other)
        match_id = int(recon.one("SELECT nextval('entry_seq')")[0])
        for rid in ids:
            recon.execute(
                """INSERT INTO deposit_match_entries VALUES
                   (nextval('entry_seq'), ?, 'match', ?, ?, ?, ?, ?, ?, ?, ?)""",
                [match_id, deposit_id, rid, amount, amounts[rid], "; ".join(issues) or None, why, user.user_id, stamp],
            )
        recon.audit(
            user.user_id, "match_deposit", "deposit", deposit_id,
            {"match_id": match_id, "remittance_ids": list(ids), "deposit_amount": fmt(amount),
             "remittance_amount": fmt(total), "confirmed": issues, "reason": why, "superseded": superseded,
             "undone_matches": sorted(undo)},
        )  # fmt: skip
    return DepositMatch(deposit_id, "match", ids, amount, total, match_id, True, tuple(issues), why, tuple(superseded))


def _undo(recon: Any, match_id: int, reason: str, user_id: str, stamp: Any) -> str:
    """Write the reversing rows of match ``match_id`` (and its audit entry); returns its deposit."""
    deposit_id = recon.one("SELECT any_value(deposit_id) FROM deposit_match_entries WHERE match_id = ?", [match_id])[0]
    recon.execute(
        """INSERT INTO deposit_match_entries
           SELECT nextval('entry_seq'), match_id, 'unmatch', deposit_id, remittance_id, deposit_amount,
                  remittance_amount, NULL, ?, ?, ?
           FROM deposit_match_entries WHERE match_id = ? AND action = 'match' ORDER BY entry_id""",
        [reason, user_id, stamp, match_id],
    )
    removed = [
        r[0]
        for r in recon.execute(
            "SELECT remittance_id FROM deposit_match_entries WHERE match_id = ? AND action = 'match' "
            "ORDER BY remittance_id",
            [match_id],
        ).fetchall()
    ]
    recon.audit(user_id, "unmatch_deposit", "deposit", deposit_id,
                {"match_id": match_id, "remittance_ids": removed, "reason": reason})  # fmt: skip
    return str(deposit_id)


def unmatch_deposit(recon: Any, deposit_id: str, user_id: str, reason: str) -> DepositMatch:
    """Undo the match by hand of ``deposit_id`` (reversing rows, with ``reason``).

    The deposit goes back to the automatic rules. A deposit matched automatically has no
    match by hand to undo (refused); undoing again writes nothing.
    """
    from recon.services import now

    user = recon.user(user_id)
    require_billing(user, "undo a deposit match")
    why = (reason or "").strip()
    if not why:
        raise InputError("reason: give a reason for undoing the match (it is kept with it)")
    deposit_id = (deposit_id or "").strip()
    with recon.transaction():
        amount, _status, how = _deposit(recon, deposit_id)
        links = _links(recon, deposit_id)
        live = sorted({r[2] for r in links if r[2] is not None})
        if not live:
            last = recon.one(
                "SELECT action, match_id FROM deposit_match_entries WHERE deposit_id = ? "
                "ORDER BY entry_id DESC LIMIT 1",
                [deposit_id],
            )
            if last is not None and last[0] == "unmatch":
                undone = tuple(r[0] for r in recon.execute(
                    "SELECT remittance_id FROM deposit_match_entries WHERE match_id = ? AND action = 'match' "
                    "ORDER BY remittance_id", [last[1]],
                ).fetchall())  # fmt: skip
                return DepositMatch(deposit_id, "unmatch", undone, amount, ZERO, int(last[1]), written=False)
            if links:
                raise PaymentRefused(
                    f"Deposit {deposit_id} was matched automatically ({HOW.get(how or '', how)} to "
                    f"{', '.join(r[0] for r in links)}), not by hand; there is no match by hand to undo"
                )
            raise PaymentRefused(f"Deposit {deposit_id} is not matched; there is no match to undo")
        ids = tuple(r[0] for r in links)
        total = recon.one(
            f"SELECT CAST(sum(amount) AS DECIMAL(18,2)) FROM remittances WHERE remittance_id IN {_IN}",
            [chr(31).join(ids)],
        )[0]
        stamp = now()
        for match_id in live:
            _undo(recon, match_id, why, user.user_id, stamp)
    return DepositMatch(deposit_id, "unmatch", ids, amount, total or ZERO, live[0], True, reason=why)


def match_history(recon: Any, deposit_id: str | None = None) -> Any:
    """Every match and undo by hand (who, when, why), oldest first, as an exact DataFrame."""
    where, params = ("deposit_id = ?", [deposit_id]) if deposit_id else ("TRUE", [])
    return recon.frame(f"SELECT * FROM deposit_match_entries WHERE {where} ORDER BY entry_id", params)
