"""``recon era``, ``recon remittances`` and ``recon exceptions`` as an analyst runs them."""

from __future__ import annotations

import json
from datetime import date

import pytest

from recon.remit.generate import generate_835
from recon.remit.post import post_remittances
from recon.services import Recon
from tests.conftest import read_csv
from tests.era.conftest import assert_invariant, counts
from tests.era.edi import claim, st, write_835
from tests.era.test_post import file_a, file_b


def test_era_batch_exit_codes_and_summaries(cli, era_db, tmp_path):
    unbalanced = st("0001", amount="99", trace="T9", claims=[claim("I2", "1", "120", "100")])
    bad = write_835(tmp_path / "bad.835", [unbalanced])
    run = cli("era", file_a(tmp_path), bad, file_b(tmp_path), "--db", era_db, "--user", "ana")
    assert run.code == 1  # one file rejected
    assert "aetna_0301.835: POSTED  payer AET  trace T100  amount 452.50" in run.out
    assert "claims posted 4, denied 1, unmatched 1" in run.out
    assert "bad.835: REJECTED" in run.out and "does not balance" in run.out
    assert "bcbs.835: POSTED  payer BCBS  trace C200" in run.out
    again = cli("era", file_a(tmp_path, "copy_of_a.edi"), "--db", era_db, "--user", "ana")
    assert again.code == 0 and "ALREADY_POSTED" in again.out
    clash = cli("era", file_a(tmp_path, "late.835", paid_on="20260305"), "--db", era_db, "--user", "ana")
    assert clash.code == 1 and "CONFLICT" in clash.out

    rows = read_csv(cli("remittances", "--db", era_db, "--format", "csv").out)
    assert [(r["trace_number"], r["payer_id"], r["payment_method"], r["amount"], r["plb_amount"], r["paid_on"])
            for r in rows] == [("T100", "AET", "ACH", "452.50", "7.50", "2026-03-01"),
                               ("C200", "BCBS", "CHK", "340.00", "0.00", "2026-03-01")]
    assert all("status" in r and "deposit_id" in r for r in rows)
    exc = json.loads(cli("exceptions", "--db", era_db, "--format", "json").out)
    assert [(e["kind"], e["trace_number"], e["claim_id"], e["amount"], e["reason"][:2]) for e in exc] == [
        ("denial", "T100", "I4", "100.00", "CO"), ("unmatched_claim", "T100", "NOPE-1", "60.00", "CO"),
        ("recoupment", "T100", "PCN1", "10.00", "WO")]  # the PLB WO naming claim PCN1 is listed for follow-up
    assert [e["reason"] for e in exc] == [
        "CO-50", "CO-45", "WO: PLB WO 10.00 names claim PCN1 (no posted claim of this payer has it)"]


@pytest.mark.parametrize("engine", ["duckdb"])  # compares or copies the ledger file itself
def test_billing_required_dry_run_writes_nothing(cli, era_db, tmp_path):
    path = file_a(tmp_path)
    denied = cli("era", path, "--db", era_db, "--user", "ben")
    assert denied.code == 1 and "Billing" in denied.err
    before = era_db.read_bytes()
    dry = cli("era", path, "--db", era_db, "--user", "ben", "--dry-run")
    assert dry.code == 0 and "DRY_RUN" in dry.out and "nothing was written" in dry.out
    assert "claim NOPE-1 CLP02 1: unmatched" in dry.out
    assert era_db.read_bytes() == before
    with Recon.open(era_db) as recon:
        assert counts(recon)["remittances"] == 0


def test_generated_file_posts_and_balances(recon, tmp_path):
    invoices = recon.execute("SELECT invoice_id, service_date, service_code, fee FROM invoices").fetchall()
    gen = generate_835(tmp_path / "gen.835", n_claims=40, seed=11, payer_id="60054", invoices=invoices,
                       transactions=2, payment_date=date(2026, 3, 20))
    report = post_remittances(recon, [gen.path], "ana")
    out = report.files[0]
    assert out.status == "posted", out.message
    assert out.amount == gen.total_paid
    assert len(out.remittance_ids) == 2
    assert_invariant(recon)
    assert post_remittances(recon, [gen.path], "ana").files[0].status == "already_posted"
