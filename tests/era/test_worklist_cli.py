"""``recon worklist``: each action end to end through ``recon.cli.main``, read back by the CLI.

Each decision's effect is read through ``recon ledger C --format csv`` and ``recon exceptions
--format csv``; each refusal is one line on stderr, exit 1, and leaves both unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from recon.cli import main
from tests.conftest import read_csv, write_practice
from tests.era.edi import claim
from tests.era.test_claim_life import AET, LIFE, UHC, Cli, Era, check_invariant, line, two_lines


@pytest.fixture
def wl(cli: Cli, tmp_path: Path) -> Era:
    db = tmp_path / "wl.duckdb"
    assert main(["load", str(write_practice(tmp_path / "wl", LIFE)), "--db", str(db)]) == 0
    return Era(cli, db, tmp_path)


def exceptions(era: Era) -> list[dict[str, str]]:
    run = era.cli("exceptions", "--db", era.db, "--format", "csv")
    assert run.code == 0, run.err
    return read_csv(run.out)


def refused(era: Era, *args: str, client: str, says: str) -> None:
    """The command exits 1 with one line naming the problem, and changes neither the ledger nor the worklist."""
    before = (era.ledger(client), exceptions(era))
    run = era.cli("worklist", *args, "--db", era.db)
    assert run.code == 1, run.out + run.err
    assert run.err.count("\n") == 1 and run.err.startswith("recon: error: "), run.err
    assert says in run.err, run.err
    assert "Traceback" not in run.err
    assert (era.ledger(client), exceptions(era)) == before


def test_match_moves_a_held_line_to_its_invoice(wl: Era) -> None:
    wl.post(AET, two_lines(), amount="210")
    (exc,) = exceptions(wl)
    assert (exc["kind"], exc["status"], exc["amount"]) == ("unmatched_line", "open", "130.00")
    eid = exc["exception_id"]
    refused(wl, "match", eid, "--invoice", "J5", "--user", "ana", client="P2", says="would take its balance")
    refused(wl, "match", eid, "--invoice", "J6", "--user", "zed", client="P2", says="zed")
    refused(wl, "match", eid, "--invoice", "J6", "--user", "ben", client="P2", says="Billing")
    refused(wl, "match", "EXC-NOPE", "--invoice", "J6", "--user", "ana", client="P2", says="EXC-NOPE")
    refused(wl, "match", eid, "--invoice", "NOPE", "--user", "ana", client="P2", says="NOPE")

    run = wl.cli("worklist", "match", eid, "--invoice", "J6", "--user", "ana", "--db", wl.db)
    assert run.code == 0, run.err
    assert run.out.startswith(f"Matched {eid} to J6: payment ") and run.out.endswith(" of 130.00\n")
    assert wl.ledger("P2")["J6"] == ("150.00", "0.00", "0.00", "150.00", "130.00", "20.00", "0.00")
    assert [(e["exception_id"], e["status"]) for e in exceptions(wl)] == [(eid, "matched")]
    refused(wl, "match", eid, "--invoice", "J6", "--user", "ana", client="P2", says="already matched")
    check_invariant(wl.db)


def denial(era: Era) -> str:
    era.post(
        UHC,
        claim("J3", "4", "180", "0", pcn="U-D", lines=[line("90837", "180", "0", "20260107", [["CO", "50", "180"]])]),
        amount="0",
    )
    (exc,) = exceptions(era)
    assert (exc["kind"], exc["status"]) == ("denial", "open")
    return exc["exception_id"]


def test_appeal_then_write_off_a_denial(wl: Era) -> None:
    eid = denial(wl)
    before = wl.ledger("P1")["J3"]
    assert before == ("180.00", "0.00", "0.00", "180.00", "0.00", "0.00", "180.00")
    refused(wl, "appeal", eid, "--user", "ana", "--reason", " ", client="P1", says="Give a reason")
    refused(wl, "appeal", eid, "--user", "ben", "--reason", "x", client="P1", says="Billing")
    refused(wl, "match", eid, "--invoice", "J3", "--user", "ana", client="P1", says="appeal or write it off")

    run = wl.cli("worklist", "appeal", eid, "--user", "ana", "--reason", "medical necessity letter", "--db", wl.db)
    assert (run.code, run.out) == (0, f"Marked {eid} appealed\n"), run.err
    assert wl.ledger("P1")["J3"] == before
    assert [(e["exception_id"], e["status"]) for e in exceptions(wl)] == [(eid, "appealed")]

    run = wl.cli("worklist", "write-off", eid, "--user", "ana", "--reason", "appeal lost", "--db", wl.db)
    assert (run.code, run.out) == (0, f"Wrote off {eid}: J3 180.00\n"), run.err
    assert wl.ledger("P1")["J3"] == ("180.00", "0.00", "0.00", "180.00", "0.00", "180.00", "0.00")
    assert [e["status"] for e in exceptions(wl)] == ["written_off"]
    refused(wl, "write-off", eid, "--user", "ana", "--reason", "again", client="P1", says="already")


def test_bill_client_moves_pr_waiting_on_a_next_payer(wl: Era) -> None:
    wl.post(
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
    assert wl.ledger("P2")["J12"] == ("180.00", "0.00", "0.00", "180.00", "100.00", "20.00", "60.00")
    refused(wl, "bill-client", "J12", "--user", "ben", "--reason", "x", client="P2", says="Billing")
    refused(wl, "bill-client", "J13", "--user", "ana", "--reason", "x", client="P2", says="No payer has adjudicated")
    refused(wl, "bill-client", "J99", "--user", "ana", "--reason", "x", client="P2", says="J99")

    run = wl.cli("worklist", "bill-client", "J12", "--user", "ana", "--reason", "no secondary on file", "--db", wl.db)
    assert run.code == 0, run.err
    assert run.out == "Billed the client 60.00 of J12 (moved from Ins Amt Due to Client Amt Due)\n"
    assert wl.ledger("P2")["J12"] == ("180.00", "60.00", "0.00", "120.00", "100.00", "20.00", "60.00")
    refused(wl, "bill-client", "J12", "--user", "ana", "--reason", "again", client="P2", says="Nothing of J12")


def test_an_action_needs_its_arguments(wl: Era) -> None:
    run = wl.cli("worklist", "appeal", "EXC-1", "--user", "ana", "--db", wl.db)
    assert run.code == 2 and "--reason" in run.err
    run = wl.cli("worklist", "frobnicate", "--db", wl.db)
    assert run.code == 2 and "invalid choice" in run.err
