"""A paper EOB posted by hand (issue 10): ``recon pay --eob``, read back through ``recon ledger --format csv``.

C2 has one policy (BCBS, primary): I6 fee 200.00, Client Amt Due 30.00 (policy co-pay), Ins Amt Due 170.00.
C1 has AET primary and BCBS secondary: I1 fee 150.00, Client Amt Due 20.00, Ins Amt Due 130.00.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from recon.services import Recon
from recon.store.integrity import problems
from tests.conftest import Run, read_csv
from tests.era.edi import claim, st, write_835

COLUMNS = ("client_amt_due", "client_amt_paid", "ins_amt_due", "ins_amt_paid", "ins_adjusted", "balance")


def row(cli: Callable[..., Run], db: Path, client: str, invoice: str) -> tuple[str, ...]:
    run = cli("ledger", client, "--db", db, "--format", "csv")
    assert run.code == 0, run.err
    (r,) = [r for r in read_csv(run.out) if r["invoice_id"] == invoice]
    return tuple(r[c] for c in COLUMNS)


def pay(cli: Callable[..., Run], db: Path, client: str, payer: str, *args: str) -> Run:
    return cli("pay", client, "--db", db, "--user", "ana", "--payer", payer, "--method", "insurance-check", *args)


def test_paper_eob_sets_client_due_to_the_last_payers_patient_responsibility(cli: Callable[..., Run], db: Path) -> None:
    assert row(cli, db, "C2", "I6") == ("30.00", "0.00", "170.00", "0.00", "0.00", "200.00")
    run = pay(cli, db, "C2", "BCBS", "--invoice", "I6=120",
              "--eob", "I6:allowed=160,co45=40,deductible=30,coinsurance=10")  # fmt: skip
    assert run.code == 0, run.err
    assert "EOB I6: allowed 160.00; paid 120.00; CO-45 40.00 written off; PR-1 30.00, PR-2 10.00" in run.out
    assert "Client Amt Due 40.00 (was 30.00), Ins Amt Due 160.00" in run.out
    # CO-45 is in the auto write-off set: Ins Adjusted; the PR is the client's (BCBS is the only payer)
    assert row(cli, db, "C2", "I6") == ("40.00", "0.00", "160.00", "120.00", "40.00", "40.00")
    with Recon.open(db) as recon:
        adj = recon.execute(
            "SELECT a.payer_id, a.priority, a.status, a.remittance_id, a.charge, a.paid, a.patient_resp, "
            "a.written_off, a.other_adj, m.allowed, m.deductible, m.coinsurance, m.copay, m.adjustments "
            "FROM adjudications a JOIN manual_adjudications m USING (claim_posting_id)"
        ).fetchall()
        assert [tuple(str(v) if v is not None else None for v in a) for a in adj] == [
            ("BCBS", "1", "1", None, "200.00", "120.00", "40.00", "40.00", "0.00", "160.00", "30.00", "10.00",
             "0.00", "CO-45=40.00"),
        ]  # fmt: skip
        (detail,) = recon.execute("SELECT detail FROM audit_log WHERE action = 'record_payment'").fetchone()
        assert '"client_amt_due": "40.00"' in detail and '"CO-45": "40.00"' in detail
        # the Client Ledger's drill-down lists it beside the ERA adjudications (no remittance behind it)
        from recon.store import queries

        shown = recon.execute(queries.adjudications_sql("a.invoice_id = $1"), ["I6"]).fetchall()
        assert [(r[1], r[5], str(r[8]), r[12]) for r in shown] == [("BCBS", None, "120.00", "stands")]


def test_an_adjustment_outside_the_write_off_set_stays_ins_amt_due(cli: Callable[..., Run], db: Path) -> None:
    run = pay(cli, db, "C2", "BCBS", "--invoice", "I6=120", "--eob", "I6:CO-97=50,copay=30")
    assert run.code == 0, run.err
    # CO-97 is recorded (other adjustment) but not Ins Adjusted; Client Amt Due is the co-pay
    assert row(cli, db, "C2", "I6") == ("30.00", "0.00", "170.00", "120.00", "0.00", "80.00")


def test_primary_paper_eob_waits_on_the_secondary_then_its_eob_bills_the_client(
    cli: Callable[..., Run], db: Path
) -> None:
    run = pay(cli, db, "C1", "AET", "--invoice", "I1=100", "--eob", "I1:allowed=120,co45=30,deductible=20")
    assert run.code == 0, run.err
    # BCBS (secondary) has not adjudicated: the deductible is Ins Amt Due from it, Client Amt Due 0
    assert row(cli, db, "C1", "I1") == ("0.00", "0.00", "150.00", "100.00", "30.00", "20.00")
    run = pay(cli, db, "C1", "BCBS", "--invoice", "I1=15", "--eob", "I1:allowed=20,coinsurance=5")
    assert run.code == 0, run.err
    assert row(cli, db, "C1", "I1") == ("5.00", "0.00", "145.00", "115.00", "30.00", "5.00")


def test_secondary_paper_eob_after_an_era_primary_follows_the_chain(
    cli: Callable[..., Run], db: Path, tmp_path: Path
) -> None:
    era = write_835(tmp_path / "aet.835", [st("0001", amount="100.00", trace="T1", claims=[
        claim("I1", "1", "150.00", "100.00", "20.00", cas=[["CO", "45", "30.00"], ["PR", "1", "20.00"]]),
    ])])  # fmt: skip
    run = cli("era", era, "--db", db, "--user", "ana")
    assert run.code == 0, run.err
    before = row(cli, db, "C1", "I1")
    assert before == ("0.00", "0.00", "150.00", "100.00", "30.00", "20.00")  # PR waits on BCBS
    run = pay(cli, db, "C1", "BCBS", "--invoice", "I1=12", "--eob", "I1:allowed=20,oa23=0,coinsurance=8",
              "--payment-number", "EOB-7")  # fmt: skip
    assert run.code == 0, run.err
    assert "Client Amt Due 8.00 (was 0.00), Ins Amt Due 142.00" in run.out
    assert row(cli, db, "C1", "I1") == ("8.00", "0.00", "142.00", "112.00", "30.00", "8.00")
    # voiding the secondary's payment undoes its adjudication: back to waiting on BCBS
    (pid,) = [p["payment_id"] for p in read_csv(cli("payments", "C1", "--db", db, "--format", "csv").out)
              if p["payment_number"] == "EOB-7"]  # fmt: skip
    run = cli("void", pid, "--db", db, "--user", "ana", "--reason", "keyed on the wrong client")
    assert run.code == 0, run.err
    assert row(cli, db, "C1", "I1") == before


def test_void_restores_the_amounts_due_and_ins_adjusted(cli: Callable[..., Run], db: Path) -> None:
    before = row(cli, db, "C2", "I6")
    run = pay(cli, db, "C2", "BCBS", "--invoice", "I6=120", "--eob", "I6:allowed=160,co45=40,deductible=40")
    assert run.code == 0, run.err
    pid = run.out.split("Recorded payment ", 1)[1].split(":", 1)[0]
    assert row(cli, db, "C2", "I6") != before
    run = cli("void", pid, "--db", db, "--user", "ana", "--reason", "wrong EOB")
    assert run.code == 0, run.err
    assert row(cli, db, "C2", "I6") == before
    with Recon.open(db) as recon:
        assert recon.one("SELECT count(*) FROM adjudication_reversals")[0] == 1
        assert recon.one("SELECT sum(amount) FROM adjustments WHERE invoice_id = 'I6'")[0] == 0
        (detail,) = recon.one("SELECT detail FROM audit_log WHERE action = 'void_payment'")
        assert '"manual_adjudications_reversed": ["I6"]' in detail
        assert problems(recon.con) == []  # a crash check after a posting would remove none of it
    # voiding twice is refused; the adjudication is not reversed twice
    assert cli("void", pid, "--db", db, "--user", "ana", "--reason", "again").code == 1


def test_refusals_name_the_invoice_and_numbers_and_write_nothing(cli: Callable[..., Run], db: Path) -> None:
    cases = [
        ("I6:allowed=150,co45=40,deductible=40", "allowed 150.00 is not paid 120.00 + patient responsibility "
         "40.00 = 160.00 (difference -10.00)"),
        ("I6:co45=50,deductible=40", "paid 120.00 + adjustments 50.00 + patient responsibility 40.00 = 210.00 "
         "is more than its fee 200.00"),
        ("I6:deductible=10.005", "at most two decimal places"),
        ("I6:co12=5", "adjustment code 'CO-12' is not one of"),
        ("I6:pr1=5", "unknown key 'pr1'"),
        ("I6:allowed=160,allowed=160", "allowed is given twice"),
        ("I6", "expected INVOICE:key=AMOUNT"),
        ("I6:deductible=-5", "deductible (PR-1) must not be negative (got -5.00)"),
        ("I1:deductible=5", "invoice I1 is not one of this client's invoices"),
    ]  # fmt: skip
    for eob, message in cases:
        run = pay(cli, db, "C2", "BCBS", "--invoice", "I6=120", "--eob", eob)
        assert run.code == 1, (eob, run.out)
        assert message in run.err, (eob, run.err)
        assert "Traceback" not in run.err
    assert read_csv(cli("payments", "C2", "--db", db, "--format", "csv").out) == []
    assert row(cli, db, "C2", "I6") == ("30.00", "0.00", "170.00", "0.00", "0.00", "200.00")


def test_replayed_key_with_the_same_eob_records_nothing_new(cli: Callable[..., Run], db: Path) -> None:
    args = ("--invoice", "I6=120", "--eob", "I6:allowed=160,co45=40,deductible=40", "--key", "eob-1")
    assert pay(cli, db, "C2", "BCBS", *args).code == 0
    again = pay(cli, db, "C2", "BCBS", *args)
    assert again.code == 0 and "Already recorded" in again.out
    other = pay(cli, db, "C2", "BCBS", "--invoice", "I6=120", "--eob", "I6:allowed=160,co45=40,copay=40",
                "--key", "eob-1")  # fmt: skip
    assert other.code == 1 and "different details" in other.err
    assert row(cli, db, "C2", "I6") == ("40.00", "0.00", "160.00", "120.00", "40.00", "40.00")


def test_a_ledger_of_the_previous_version_opens_and_takes_a_paper_eob(
    cli: Callable[..., Run], db: Path, tmp_path: Path
) -> None:
    era = write_835(tmp_path / "aet.835", [st("0001", amount="100.00", trace="T1", claims=[
        claim("I1", "1", "150.00", "100.00", "20.00", cas=[["CO", "45", "30.00"], ["PR", "1", "20.00"]]),
    ])])  # fmt: skip
    assert cli("era", era, "--db", db, "--user", "ana").code == 0
    with Recon.open(db) as recon:  # back to the schema before manual adjudications
        recon.execute("DROP TABLE manual_adjudications")
        recon.execute("ALTER TABLE adjudications ALTER COLUMN remittance_id SET NOT NULL")
        recon.execute("UPDATE meta SET value = 'earlier' WHERE key = 'schema'")
        recon.execute("DROP TABLE schema_migrations")  # made before versioned migrations
    run = pay(cli, db, "C1", "BCBS", "--invoice", "I1=12", "--eob", "I1:allowed=20,coinsurance=8")
    assert run.code == 0, run.err
    assert row(cli, db, "C1", "I1") == ("8.00", "0.00", "142.00", "112.00", "30.00", "8.00")


def test_client_due_rule_forwarded_claims_and_billing_decisions() -> None:
    from decimal import Decimal

    from recon.rules.eob import NEW_POSTING, Adjudicated, client_due

    pr = Decimal("12.00")
    ranks = {"AET": 1}
    assert client_due([], ranks) is None  # nothing stands: the amounts as billed
    assert client_due([Adjudicated("I1", 5, "AET", 1, "1", pr)], ranks) == pr
    forwarded = [Adjudicated("I1", 5, "AET", 1, "19", pr)]  # CLP02 19: the payer sent it on
    assert client_due(forwarded, ranks) == Decimal("0.00")
    assert client_due(forwarded, ranks, billed_priorities=[1]) == pr  # the analyst billed the client
    # a manual adjudication sorts after earlier manual ones, before any 835 claim posting of the same priority
    era = Adjudicated("I1", 5, "AET", 1, "1", Decimal("3.00"))
    manual = Adjudicated("I1", NEW_POSTING, "AET", 1, "1", pr)
    assert client_due([era, manual], ranks) == Decimal("3.00")
