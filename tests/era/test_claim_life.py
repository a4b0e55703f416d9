"""A claim's whole life across payers (issue 8): each reproduction, read through ``recon ledger --format csv``.

Every expectation is the billing practice's answer to the cent: per invoice Fee, Client Amt
Due, Client Amt Paid, Ins Amt Due, Ins Amt Paid, Ins Adjusted and Balance, and the worklist.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from recon.cli import main
from recon.errors import PaymentRefused
from recon.remit.worklist import bill_client, match_claim
from recon.services import Recon
from tests.conftest import PRACTICE, read_csv, write_practice
from tests.era.conftest import assert_invariant
from tests.era.edi import claim, st, write_835

AET = ("AETNA", "60054")
BCBS = ("Blue Cross", "00570")
UHC = ("UnitedHealthcare", "87726")

LIFE = {
    "users.csv": PRACTICE["users.csv"],
    "insurance_providers.csv": PRACTICE["insurance_providers.csv"],
    "clients.csv": [
        ("client_id", "first_name", "last_name", "date_of_birth", "copay"),
        ("P1", "Pat", "Two", "1980-01-01", "0"),  # UHC primary, AET secondary
        ("P2", "Sam", "One", "1981-01-01", "0"),  # AET only
        ("P3", "Lee", "Three", "1982-01-01", "0"),  # UHC, AET, BCBS
        ("P4", "Kim", "Four", "1983-01-01", "0"),  # AET only (no BCBS)
    ],
    "client_insurance.csv": [
        ("client_id", "payer_id", "member_id", "priority", "copay"),
        ("P1", "UHC", "U1", "primary", ""),
        ("P1", "AET", "A1", "secondary", ""),
        ("P2", "AET", "A2", "primary", ""),
        ("P3", "UHC", "U3", "primary", ""),
        ("P3", "AET", "A3", "secondary", ""),
        ("P3", "BCBS", "B3", "tertiary", ""),
        ("P4", "AET", "A4", "primary", ""),
    ],
    "invoices.csv": [
        PRACTICE["invoices.csv"][0],
        ("J1", "P2", "2026-01-05", "90837", "1", "150.00", "", "", "", ""),
        ("J2", "P2", "2026-01-06", "90837", "1", "200.00", "", "", "", ""),
        ("J3", "P1", "2026-01-07", "90837", "1", "180.00", "", "", "", ""),
        ("J4", "P1", "2026-01-08", "90837", "1", "180.00", "", "", "", ""),
        ("J5", "P2", "2026-02-03", "90834", "1", "100.00", "", "", "", "CLM-5"),
        ("J6", "P2", "2026-02-10", "90837", "1", "150.00", "", "", "", "CLM-5"),
        ("J7", "P2", "2026-02-17", "90837", "1", "150.00", "", "", "", ""),
        ("J8", "P4", "2026-01-09", "90837", "1", "100.00", "", "", "", ""),
        ("J9", "P2", "2026-01-12", "90837", "1", "150.00", "", "", "", ""),
        ("J10", "P2", "2026-01-13", "90837", "1", "150.00", "", "", "", ""),
        ("J11", "P3", "2026-01-14", "90837", "1", "200.00", "", "", "", ""),
        ("J12", "P2", "2026-01-15", "90837", "1", "180.00", "", "", "", ""),
        ("J13", "P2", "2026-01-16", "90837", "1", "150.00", "", "", "", ""),
    ],
}

COLUMNS = ("fee", "client_amt_due", "client_amt_paid", "ins_amt_due", "ins_amt_paid", "ins_adjusted", "balance")
Cli = Callable[..., object]


@pytest.fixture
def life_db(tmp_path: Path) -> Path:
    path = tmp_path / "life.duckdb"
    assert main(["load", str(write_practice(tmp_path / "life", LIFE)), "--db", str(path)]) == 0
    return path


class Era:
    """Write and post 835s one per call (a fresh trace each), read the ledger and worklist by the CLI."""

    def __init__(self, cli: Cli, db: Path, folder: Path) -> None:
        self.cli, self.db, self.folder, self.n = cli, db, folder, 0

    def post(self, payer: tuple[str, str], *claims: list[list[str]], amount: str, plb: list[list[str]] = ()) -> str:
        self.n += 1
        path = write_835(
            self.folder / f"f{self.n}.835",
            [st("0001", amount=amount, trace=f"TR{self.n}", payer=payer, claims=list(claims), plb=plb)],
        )
        run = self.cli("era", path, "--db", self.db, "--user", "ana")
        assert run.code == 0, run.out + run.err
        return run.out

    def ledger(self, client: str) -> dict[str, tuple[str, ...]]:
        run = self.cli("ledger", client, "--db", self.db, "--format", "csv")
        assert run.code == 0, run.err
        return {r["invoice_id"]: tuple(r[c] for c in COLUMNS) for r in read_csv(run.out)}

    def worklist(self) -> list[dict[str, str]]:
        run = self.cli("exceptions", "--db", self.db, "--format", "json")
        assert run.code == 0, run.err
        return json.loads(run.out)

    def kinds(self) -> list[tuple[str, str, str]]:
        return [(e["kind"], e["claim_id"], e["status"]) for e in self.worklist()]


@pytest.fixture
def era(cli: Cli, life_db: Path, tmp_path: Path) -> Era:
    return Era(cli, life_db, tmp_path)


def line(code: str, charge: str, paid: str, when: str, cas: list[list[str]], billed: str | None = None) -> tuple:
    return (f"HC:{code}", charge, paid, when, cas, *([f"HC:{billed}"] if billed else []))


def check_invariant(db: Path) -> None:
    with Recon.open(db) as recon:
        assert_invariant(recon)


# --------------------------------------------------------------------------- 1. claim-level CAS
def test_claim_level_cas_on_a_claim_with_lines(era: Era) -> None:
    era.post(
        AET,
        claim(
            "J1",
            "1",
            "150",
            "70",
            "60",
            cas=[["PR", "1", "30", "", "2", "10", "", "3", "20"]],
            lines=[line("90837", "150", "130", "20260105", [["CO", "45", "20"]])],
        ),
        amount="70",
    )
    assert era.ledger("P2")["J1"] == ("150.00", "60.00", "0.00", "90.00", "70.00", "20.00", "60.00")
    assert era.kinds() == []
    check_invariant(era.db)


# --------------------------------------------------------------------------- 2. reversals by CLP07
def original(paid: str = "150", co: str = "50", pcn: str = "ICN-1", status: str = "1") -> list[list[str]]:
    return claim("J2", status, "200", paid, pcn=pcn, lines=[line("90837", "200", paid, "20260106", [["CO", "45", co]])])


def reversal(paid: str = "-150", co: str = "-50", pcn: str = "ICN-1") -> list[list[str]]:
    return claim("J2", "22", "-200", paid, pcn=pcn, lines=[line("90837", "-200", paid, "20260106", [["CO", "45", co]])])


def test_correction_before_reversal_stays_standing(era: Era) -> None:
    era.post(AET, original(), amount="150")
    era.post(AET, original("170", "30", "ICN-2"), amount="170")
    assert era.ledger("P2")["J2"] == ("200.00", "0.00", "0.00", "200.00", "320.00", "80.00", "-200.00")
    assert [k for k, _, _ in era.kinds()] == ["overpayment"]  # both stand until the reversal comes
    era.post(AET, reversal(), amount="-150")
    assert era.ledger("P2")["J2"] == ("200.00", "0.00", "0.00", "200.00", "170.00", "30.00", "0.00")
    assert [k for k, _, s in era.kinds() if s == "open"] == []
    check_invariant(era.db)


def test_reversal_that_does_not_negate_is_a_mismatch_and_undoes_nothing(era: Era) -> None:
    era.post(AET, original(), amount="150")
    era.post(
        AET,
        claim(
            "J2",
            "22",
            "-200",
            "-100",
            pcn="ICN-1",
            lines=[line("90837", "-200", "-100", "20260106", [["CO", "45", "-100"]])],
        ),
        amount="-100",
    )
    assert era.ledger("P2")["J2"] == ("200.00", "0.00", "0.00", "200.00", "150.00", "50.00", "0.00")
    (exc,) = era.worklist()
    assert (exc["kind"], exc["claim_id"], exc["amount"], exc["status"]) == (
        "reversal_mismatch",
        "J2",
        "-100.00",
        "open",
    )
    check_invariant(era.db)


def test_reversal_twice_undoes_once(era: Era) -> None:
    era.post(AET, original(), amount="150")
    era.post(AET, reversal(), amount="-150")
    era.post(AET, reversal(), amount="-150")
    assert era.ledger("P2")["J2"] == ("200.00", "0.00", "0.00", "200.00", "0.00", "0.00", "200.00")
    assert era.kinds() == [("reversal_mismatch", "J2", "open")]  # the second names the first, already reversed
    assert "already reversed" in era.worklist()[0]["reason"]
    check_invariant(era.db)


def test_reversal_before_its_original_is_linked_when_it_comes(era: Era) -> None:
    era.post(AET, reversal(), amount="-150")
    assert era.kinds() == [("unmatched_reversal", "J2", "open")]
    era.post(AET, original(), amount="150")
    assert era.ledger("P2")["J2"] == ("200.00", "0.00", "0.00", "200.00", "0.00", "0.00", "200.00")
    assert era.kinds() == [("unmatched_reversal", "J2", "matched")]
    check_invariant(era.db)


def test_reversal_with_an_unknown_clp07_matches_by_claim_and_amounts(era: Era) -> None:
    era.post(AET, original(), amount="150")
    era.post(AET, reversal(pcn="OTHER-ICN"), amount="-150")
    assert era.ledger("P2")["J2"] == ("200.00", "0.00", "0.00", "200.00", "0.00", "0.00", "200.00")
    assert era.kinds() == []
    check_invariant(era.db)


# --------------------------------------------------------------------------- 3./4. coordination of benefits
def primary(inv: str = "J3", pcn: str = "U-1", paid: str = "100") -> list[list[str]]:
    return claim(
        inv,
        "1",
        "180",
        paid,
        "60",
        pcn=pcn,
        lines=[
            line(
                "90837", "180", paid, "20260107" if inv == "J3" else "20260108", [["CO", "45", "20"], ["PR", "2", "60"]]
            )
        ],
    )


def secondary(inv: str = "J3", cas: list[list[str]] | None = None) -> list[list[str]]:
    cas = cas or [["OA", "23", "120"], ["PR", "2", "10"]]
    return claim(
        inv,
        "2",
        "180",
        "50",
        pcn="A-1",
        lines=[line("90837", "180", "50", "20260107" if inv == "J3" else "20260108", cas)],
    )


COB_FINAL = ("180.00", "10.00", "0.00", "170.00", "150.00", "20.00", "10.00")


def test_primary_then_secondary(era: Era) -> None:
    era.post(UHC, primary(), amount="100")
    # the primary's PR 60 is due from the secondary (AET) until it adjudicates
    assert era.ledger("P1")["J3"] == ("180.00", "0.00", "0.00", "180.00", "100.00", "20.00", "60.00")
    era.post(AET, secondary(), amount="50")
    assert era.ledger("P1")["J3"] == COB_FINAL
    assert era.kinds() == []
    check_invariant(era.db)


def test_secondary_first_then_primary(era: Era) -> None:
    era.post(AET, secondary(), amount="50")
    era.post(UHC, primary(), amount="100")
    assert era.ledger("P1")["J3"] == COB_FINAL
    check_invariant(era.db)


def test_primary_reversed_and_repaid_after_the_secondary(era: Era) -> None:
    era.post(UHC, primary(), amount="100")
    era.post(AET, secondary(), amount="50")
    rev = claim(
        "J3",
        "22",
        "-180",
        "-100",
        pcn="U-1",
        lines=[line("90837", "-180", "-100", "20260107", [["CO", "45", "-20"], ["PR", "2", "-60"]])],
    )
    era.post(UHC, rev, primary(pcn="U-2"), amount="0")
    assert era.ledger("P1")["J3"] == COB_FINAL
    assert era.kinds() == []
    check_invariant(era.db)


def test_secondary_own_write_off_no_pr(era: Era) -> None:
    era.post(UHC, primary("J4"), amount="100")
    era.post(AET, secondary("J4", [["OA", "23", "120"], ["CO", "45", "10"]]), amount="50")
    assert era.ledger("P1")["J4"] == ("180.00", "0.00", "0.00", "180.00", "150.00", "30.00", "0.00")
    check_invariant(era.db)


def test_tertiary_chain(era: Era) -> None:
    era.post(
        UHC,
        claim(
            "J11",
            "1",
            "200",
            "100",
            "60",
            lines=[line("90837", "200", "100", "20260114", [["CO", "45", "40"], ["PR", "1", "60"]])],
        ),
        amount="100",
    )
    era.post(
        AET,
        claim(
            "J11",
            "2",
            "200",
            "40",
            "20",
            lines=[line("90837", "200", "40", "20260114", [["OA", "23", "140"], ["PR", "1", "20"]])],
        ),
        amount="40",
    )
    assert era.ledger("P3")["J11"] == ("200.00", "0.00", "0.00", "200.00", "140.00", "40.00", "20.00")  # BCBS next
    era.post(
        BCBS,
        claim(
            "J11",
            "3",
            "200",
            "15",
            "5",
            lines=[line("90837", "200", "15", "20260114", [["OA", "23", "180"], ["PR", "1", "5"]])],
        ),
        amount="15",
    )
    assert era.ledger("P3")["J11"] == ("200.00", "5.00", "0.00", "195.00", "155.00", "40.00", "5.00")
    check_invariant(era.db)


def test_crossover_waits_for_the_next_payer_until_the_client_is_billed(era: Era) -> None:
    era.post(
        AET,
        claim(
            "J12",
            "19",
            "180",
            "100",
            "60",
            lines=[line("90837", "180", "100", "20260115", [["CO", "45", "20"], ["PR", "2", "60"]])],
        ),
        amount="100",
    )
    assert era.ledger("P2")["J12"] == ("180.00", "0.00", "0.00", "180.00", "100.00", "20.00", "60.00")
    with Recon.open(era.db) as recon:
        assert bill_client(recon, "J12", "ana", "no secondary on file") == 60
        with pytest.raises(PaymentRefused):
            bill_client(recon, "J12", "ana")  # nothing is waiting any more
        audit = recon.one("SELECT count(*) FROM audit_log WHERE action = 'bill_client' AND entity_id = 'J12'")[0]
        assert audit == 1
    assert era.ledger("P2")["J12"] == ("180.00", "60.00", "0.00", "120.00", "100.00", "20.00", "60.00")


def test_denial_then_primary_with_secondary_pending(era: Era) -> None:
    era.post(
        UHC,
        claim("J3", "4", "180", "0", pcn="U-D", lines=[line("90837", "180", "0", "20260107", [["CO", "50", "180"]])]),
        amount="0",
    )
    assert era.ledger("P1")["J3"] == ("180.00", "0.00", "0.00", "180.00", "0.00", "0.00", "180.00")
    assert era.kinds() == [("denial", "J3", "open")]


# --------------------------------------------------------------------------- 5. line matching
def two_lines() -> list[list[str]]:
    return claim(
        "CLM-5",
        "1",
        "250",
        "210",
        lines=[
            line("90834", "100", "80", "20260203", [["CO", "45", "20"]]),
            line("90791", "150", "130", "20260210", [["CO", "45", "20"]]),
        ],
    )


def test_matched_line_posts_and_unmatched_line_is_held_alone(era: Era) -> None:
    era.post(AET, two_lines(), amount="210")
    got = era.ledger("P2")
    assert got["J5"] == ("100.00", "0.00", "0.00", "100.00", "80.00", "20.00", "0.00")
    assert got["J6"] == ("150.00", "0.00", "0.00", "150.00", "0.00", "0.00", "150.00")
    (exc,) = era.worklist()
    assert (exc["kind"], exc["claim_id"], exc["amount"], exc["status"]) == ("unmatched_line", "CLM-5", "130.00", "open")
    assert exc["reason"] == (
        "CO-45: no invoice of claim CLM-5 for 90791 on 2026-02-10 (line 2: charge 150.00, paid 130.00)"
    )
    with Recon.open(era.db) as recon:
        with pytest.raises(PaymentRefused, match="would take its balance"):
            match_claim(recon, exc["exception_id"], "J5", "ana")  # would take J5 to −150
        match_claim(recon, exc["exception_id"], "J6", "ana")
    got = era.ledger("P2")
    assert got["J5"] == ("100.00", "0.00", "0.00", "100.00", "80.00", "20.00", "0.00")
    assert got["J6"] == ("150.00", "0.00", "0.00", "150.00", "130.00", "20.00", "0.00")
    check_invariant(era.db)


def test_downcoded_line_matches_by_svc06(era: Era) -> None:
    era.post(
        AET,
        claim(
            "J7", "1", "150", "90", lines=[line("90834", "150", "90", "20260217", [["CO", "45", "60"]], billed="90837")]
        ),
        amount="90",
    )
    assert era.ledger("P2")["J7"] == ("150.00", "0.00", "0.00", "150.00", "90.00", "60.00", "0.00")
    assert era.kinds() == []


# --------------------------------------------------------------------------- 6. payer check
def test_payer_not_on_the_clients_policies_is_held(era: Era) -> None:
    era.post(
        BCBS,
        claim("J8", "1", "100", "80", lines=[line("90837", "100", "80", "20260109", [["CO", "45", "20"]])]),
        amount="80",
    )
    assert era.ledger("P4")["J8"] == ("100.00", "0.00", "0.00", "100.00", "0.00", "0.00", "100.00")
    (exc,) = era.worklist()
    assert (exc["kind"], exc["claim_id"], exc["amount"], exc["payer_id"]) == (
        "payer_not_on_policy",
        "J8",
        "80.00",
        "BCBS",
    )
    assert exc["reason"] == "CO-45: payer BCBS is not a policy of client P4 (its policies: AET primary)"
    check_invariant(era.db)


def test_reversal_of_a_held_claim_closes_it(era: Era) -> None:
    era.post(
        BCBS,
        claim("J8", "1", "100", "80", pcn="B-8", lines=[line("90837", "100", "80", "20260109", [["CO", "45", "20"]])]),
        amount="80",
    )
    era.post(
        BCBS,
        claim(
            "J8",
            "22",
            "-100",
            "-80",
            pcn="B-8",
            lines=[line("90837", "-100", "-80", "20260109", [["CO", "45", "-20"]])],
        ),
        amount="-80",
    )
    assert era.ledger("P4")["J8"] == ("100.00", "0.00", "0.00", "100.00", "0.00", "0.00", "100.00")
    assert era.kinds() == [("payer_not_on_policy", "J8", "closed")]
    check_invariant(era.db)


def test_reversed_and_corrected_twice(era: Era) -> None:
    era.post(AET, original(), amount="150")
    era.post(AET, reversal(), original("170", "30", "ICN-2"), amount="20")
    era.post(AET, reversal("-170", "-30", "ICN-2"), original("160", "40", "ICN-3"), amount="-10")
    assert era.ledger("P2")["J2"] == ("200.00", "0.00", "0.00", "200.00", "160.00", "40.00", "0.00")
    assert era.kinds() == []
    check_invariant(era.db)


def test_primary_denies_secondary_pays(era: Era) -> None:
    era.post(
        UHC,
        claim("J4", "4", "180", "0", pcn="U-D4", lines=[line("90837", "180", "0", "20260108", [["CO", "50", "180"]])]),
        amount="0",
    )
    era.post(
        AET,
        claim("J4", "2", "180", "150", "30", lines=[line("90837", "180", "150", "20260108", [["PR", "2", "30"]])]),
        amount="150",
    )
    assert era.ledger("P1")["J4"] == ("180.00", "30.00", "0.00", "150.00", "150.00", "0.00", "30.00")
    assert era.kinds() == [("denial", "J4", "open")]
    check_invariant(era.db)


# --------------------------------------------------------------------------- 9. ERA after a manual payment
def test_era_paying_a_manually_paid_invoice_is_a_possible_duplicate(era: Era) -> None:
    run = era.cli(
        "pay",
        "P2",
        "--db",
        era.db,
        "--user",
        "ana",
        "--payer",
        "AET",
        "--method",
        "insurance-check",
        "--invoice",
        "J9=100",
        "--payment-number",
        "CHK-9",
    )
    assert run.code == 0, run.err
    era.post(
        AET,
        claim("J9", "1", "150", "100", lines=[line("90837", "150", "100", "20260112", [["CO", "45", "50"]])]),
        amount="100",
    )
    # neither applied twice nor netted: the manual payment stands, the ERA's 100 is held
    assert era.ledger("P2")["J9"] == ("150.00", "0.00", "0.00", "150.00", "100.00", "0.00", "50.00")
    (exc,) = era.worklist()
    assert (exc["kind"], exc["claim_id"], exc["amount"]) == ("possible_duplicate", "J9", "100.00")
    with Recon.open(era.db) as recon:
        detail = recon.one("SELECT detail FROM exceptions WHERE exception_id = ?", [exc["exception_id"]])[0]
    assert "PAY-" in detail and "100.00" in detail and "AET" in detail
    check_invariant(era.db)


# --------------------------------------------------------------------------- 10. denial reversed and repaid
def test_denial_reversed_and_repaid_closes_the_denial(era: Era) -> None:
    era.post(
        AET,
        claim(
            "J10", "4", "150", "0", pcn="ICN-D", lines=[line("90837", "150", "0", "20260113", [["CO", "197", "150"]])]
        ),
        amount="0",
    )
    assert era.kinds() == [("denial", "J10", "open")]
    era.post(
        AET,
        claim(
            "J10",
            "22",
            "-150",
            "0",
            pcn="ICN-D",
            lines=[line("90837", "-150", "0", "20260113", [["CO", "197", "-150"]])],
        ),
        claim(
            "J10", "1", "150", "120", pcn="ICN-E", lines=[line("90837", "150", "120", "20260113", [["CO", "45", "30"]])]
        ),
        amount="120",
    )
    assert era.ledger("P2")["J10"] == ("150.00", "0.00", "0.00", "150.00", "120.00", "30.00", "0.00")
    assert era.kinds() == [("denial", "J10", "closed")]
    check_invariant(era.db)


# --------------------------------------------------------------------------- PLB naming a claim
def test_plb_naming_a_claim_is_a_recoupment(era: Era) -> None:
    era.post(
        AET,
        claim(
            "J13",
            "1",
            "150",
            "120",
            pcn="ICN-13",
            lines=[line("90837", "150", "120", "20260116", [["CO", "45", "30"]])],
        ),
        amount="120",
    )
    era.post(
        AET,
        claim("J1", "1", "150", "150", lines=[line("90837", "150", "150", "20260105", [])]),
        amount="100",
        plb=[["PLB", "1922164458", "20261231", "WO:ICN-13", "50"]],
    )
    rec = [e for e in era.worklist() if e["kind"] == "recoupment"]
    assert [(e["claim_id"], e["amount"], e["invoice_id"]) for e in rec] == [("ICN-13", "50.00", "J13")]
    check_invariant(era.db)
