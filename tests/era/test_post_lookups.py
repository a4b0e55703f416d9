"""Outcomes of the posting's look-ups in the ledger, pinned while they were rewritten for speed (issue 11).

The look-ups that once compared a file with the whole ledger (a PLB naming a claim, a
reversal that came before its original, the policies listed for a payer that is none of
the client's) now look up the file's own keys only; these are the outcomes that must not
change, read through the CLI on a real ledger.
"""

from __future__ import annotations

from recon.services import Recon
from tests.era.edi import claim
from tests.era.test_claim_life import AET, BCBS, Era, check_invariant, era, life_db, line

__all__ = ["era", "life_db"]  # fixtures


def _recoupments(era: Era) -> list[tuple[str, int, str, str]]:
    with Recon.open(era.db) as recon:
        rows = recon.execute(
            "SELECT claim_id, claim_posting_id, coalesce(invoice_id, ''), detail FROM exceptions "
            "WHERE kind = 'recoupment' ORDER BY exception_id"
        ).fetchall()
    return [(r[0], int(r[1]), r[2], r[3]) for r in rows]


def _postings(era: Era, claim_id: str) -> list[int]:
    with Recon.open(era.db) as recon:
        rows = recon.execute(
            "SELECT claim_posting_id FROM remit_claims WHERE claim_id = ? ORDER BY 1", [claim_id]
        ).fetchall()
    return [int(r[0]) for r in rows]


def test_plb_naming_a_claim_by_clp01_links_the_latest_posting_of_the_same_payer(era: Era) -> None:
    paid = claim("J13", "1", "150", "120", lines=[line("90837", "150", "120", "20260116", [["CO", "45", "30"]])])
    era.post(AET, paid, amount="120")
    era.post(AET, paid, amount="120")  # paid twice: the later posting is the one a recovery names
    tertiary = claim("J11", "3", "200", "20", lines=[line("90837", "200", "20", "20260114", [["CO", "45", "180"]])])
    era.post(BCBS, tertiary, amount="20")
    era.post(
        AET,
        claim("J1", "1", "150", "150", lines=[line("90837", "150", "150", "20260105", [])]),
        amount="90",
        plb=[["PLB", "1922164458", "20261231", "WO:J13", "50", "FB:J11", "10"]],
    )
    first, later = _postings(era, "J13")
    assert first < later
    (j13, j11) = _recoupments(era)
    assert j13 == ("J13", later, "J13", f"PLB WO 50.00 names claim J13 (claim posting {later}, paid 120.00)")
    # J11 was posted by BCBS only: an AET recovery naming it links to nothing
    assert j11 == ("J11", 0, "", "PLB FB 10.00 names claim J11 (no posted claim of this payer has it)")
    check_invariant(era.db)


def test_plb_naming_a_claim_prefers_its_clp07_to_a_clp01(era: Era) -> None:
    era.post(
        AET,
        claim(
            "J13", "1", "150", "120", pcn="J12", lines=[line("90837", "150", "120", "20260116", [["CO", "45", "30"]])]
        ),
        amount="120",
    )
    era.post(
        AET,
        claim("J12", "1", "180", "100", lines=[line("90837", "180", "100", "20260115", [["CO", "45", "80"]])]),
        amount="100",
    )
    era.post(
        AET,
        claim("J1", "1", "150", "150", lines=[line("90837", "150", "150", "20260105", [])]),
        amount="140",
        plb=[["PLB", "1922164458", "20261231", "L6:J12", "10"]],
    )
    (by_pcn,) = _postings(era, "J13")
    ((claim_id, cpid, invoice, _),) = _recoupments(era)
    assert (claim_id, cpid, invoice) == ("J12", by_pcn, "J13")  # CLP07 J12 of J13's posting, not claim J12
    check_invariant(era.db)


def test_payer_not_on_policy_lists_only_that_clients_policies_in_order(era: Era) -> None:
    era.post(
        BCBS,
        claim("J3", "1", "180", "80", lines=[line("90837", "180", "80", "20260107", [["CO", "45", "100"]])]),
        amount="80",
    )
    (exc,) = era.worklist()
    assert (exc["kind"], exc["claim_id"], exc["payer_id"]) == ("payer_not_on_policy", "J3", "BCBS")
    assert exc["reason"] == "CO-45: payer BCBS is not a policy of client P1 (its policies: UHC primary, AET secondary)"
    check_invariant(era.db)


def test_reversal_without_clp07_before_its_original_is_linked_when_the_original_comes(era: Era) -> None:
    before = era.ledger("P2")["J2"]
    era.post(
        AET,
        claim("J2", "22", "-200", "-150", lines=[line("90837", "-200", "-150", "20260106", [["CO", "45", "-50"]])]),
        amount="-150",
    )
    assert [(k, c) for k, c, s in era.kinds() if s == "open"] == [("unmatched_reversal", "J2")]
    era.post(
        AET,
        claim("J2", "1", "200", "150", lines=[line("90837", "200", "150", "20260106", [["CO", "45", "50"]])]),
        amount="150",
    )
    assert era.ledger("P2")["J2"] == before  # the pair undoes itself, whatever the order
    assert [k for k, _, s in era.kinds() if s == "open"] == []
    check_invariant(era.db)
