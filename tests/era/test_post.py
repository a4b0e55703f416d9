"""Posting 835 files end to end: exact ledger balances per invoice, the worklist, refusals."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from recon.errors import PermissionDenied
from recon.remit.post import post_remittances, write_off_codes
from recon.remit.worklist import mark_denial, match_claim
from tests.era.conftest import assert_invariant, counts, ledger
from tests.era.edi import claim, st, write_835

D = Decimal
PLB = ["PLB", "1922164458", "20261231", "L6", "-2.50", "WO:PCN1", "10.00"]


def file_a(folder: Path, name: str = "aetna_0301.835", *, paid_on: str = "20260301") -> Path:
    """AET (REF*2U 60054): full pay, deductible, coinsurance, CO-97 kept, a denial, an unmatched claim, PLB."""
    claims = [
        claim("I1", "1", "150", "100", "20", lines=[("HC:90837", "150", "100", "20260105",
                                                     [["CO", "45", "30"], ["PR", "1", "20"]])]),
        claim("I2", "1", "120", "120", lines=[("HC:90834", "120", "120", "20260112", [])]),
        claim("CLM-9", "1", "120", "80", "15", lines=[("HC:90834:HO", "120", "80", "20260119",
                                                       [["CO", "45", "25"], ["PR", "2", "15"]])]),
        claim("I8", "1", "150", "100", lines=[("HC:90837", "150", "100", "20260209",
                                               [["CO", "45", "40", "", "97", "10"]])]),
        claim("I4", "4", "100", "0", lines=[("HC:90846", "100", "0", "20260126", [["CO", "50", "100"]])]),
        claim("NOPE-1", "1", "90", "60", lines=[("HC:90834", "90", "60", "20260115", [["CO", "45", "30"]])]),
    ]
    return write_835(folder / name, [st("0001", amount="452.5", trace="T100", paid_on=paid_on, claims=claims,
                                        plb=[PLB])])


def file_b(folder: Path) -> Path:
    """Blue Cross by N1*PR name only, a check; '|' elements, '>' components, newline terminators."""
    claims = [
        claim("CLM-20", "1", "250", "190", "10", lines=[
            ("HC:90834:HO", "100", "70", "20260203", [["CO", "45", "20"], ["PR", "3", "10"]]),
            ("HC:90837", "150", "120", "20260210", [["CO", "45", "30"]])]),
        claim("I6", "1", "200", "150", cas=[["CO", "45", "50"]]),
    ]
    tx = st("0001", amount="340", trace="C200", method="CHK", payer=("Blue Cross", "00570"), ref_2u=False,
            claims=claims)
    return write_835(folder / "bcbs.835", [tx], element="|", component=">", terminator="\n")


def file_c(folder: Path) -> Path:
    """AET reverses I1 (all amounts negated) and sends the correction in the same file."""
    claims = [
        claim("I1", "22", "-150", "-100", lines=[("HC:90837", "-150", "-100", "20260105",
                                                  [["CO", "45", "-30"], ["PR", "1", "-20"]])]),
        claim("I1", "1", "150", "110", "10", lines=[("HC:90837", "150", "110", "20260105",
                                                     [["CO", "45", "30"], ["PR", "1", "10"]])]),
    ]
    return write_835(folder / "aetna_0315.835", [st("0001", amount="10", trace="T300", paid_on="20260315",
                                                    claims=claims)])


BEFORE = {
    "I1": ("20.00", "0.00", "130.00", "0.00", "0.00", "150.00"),
    "I4": ("5.00", "0.00", "95.00", "0.00", "0.00", "100.00"),
    "I7": ("120.00", "0.00", "0.00", "0.00", "0.00", "120.00"),
}


def test_file_a_posts_payments_adjustments_amounts_due(recon, tmp_path):
    report = post_remittances(recon, [file_a(tmp_path)], "ana")
    out = report.files[0]
    assert (out.status, out.payer_id, out.trace_number, out.amount, out.plb_amount) == \
        ("posted", "AET", "T100", D("452.50"), D("7.50"))
    assert (out.claims_posted, out.claims_denied, out.claims_unmatched) == (4, 1, 1)
    assert out.unmatched_amount == D("60.00")
    got = ledger(recon)
    # deductible PR-1 20: C1's secondary (BCBS) has not adjudicated yet, so it is due from BCBS (Ins Amt Due)
    assert got["I1"] == ("0.00", "0.00", "150.00", "100.00", "30.00", "20.00")
    assert got["I2"] == ("0.00", "0.00", "120.00", "120.00", "0.00", "0.00")  # full pay, no PR: client owes 0
    assert got["I3"] == ("0.00", "0.00", "120.00", "80.00", "25.00", "15.00")  # by claim id, modifier HO
    assert got["I8"] == ("0.00", "0.00", "150.00", "100.00", "40.00", "10.00")  # CO-97 kept, not written off
    assert got["I4"] == BEFORE["I4"]  # the denial changes nothing
    kept = recon.execute("SELECT group_code, reason_code, amount, written_off FROM adjustments "
                         "WHERE invoice_id = 'I8' ORDER BY reason_code").fetchall()
    assert kept == [("CO", "45", D("40.00"), True), ("CO", "97", D("10.00"), False)]
    pay = recon.execute("SELECT client_id, method, amount, payment_number, received_on, payer_id, remittance_id "
                        "FROM payments").fetchall()
    assert [(p[0], p[1], p[2], p[3], str(p[4]), p[5]) for p in pay] == \
        [("C1", "insurance-eft-ach", D("400.00"), "T100", "2026-03-01", "AET")]
    rem = recon.one("SELECT payment_method, plb_amount, unmatched_amount, paid_on FROM remittances")
    assert (rem[0], rem[1], rem[2], str(rem[3])) == ("ACH", D("7.50"), D("60.00"), "2026-03-01")
    plb = recon.execute("SELECT reason, reference, amount FROM remit_plb ORDER BY seq").fetchall()
    assert plb == [("L6", None, D("-2.50")), ("WO", "PCN1", D("10.00"))]
    exc = recon.execute("SELECT kind, claim_id, amount, reason, invoice_id FROM exceptions "
                        "ORDER BY exception_id").fetchall()
    assert exc == [("denial", "I4", D("100.00"), "CO-50", "I4"),
                   ("unmatched_claim", "NOPE-1", D("60.00"), "CO-45", None),
                   ("recoupment", "PCN1", D("10.00"), "WO", None)]  # a PLB naming a claim is listed
    assert_invariant(recon)


def test_multiline_claim_claim_without_lines_and_unusual_separators(recon, tmp_path):
    out = post_remittances(recon, [file_b(tmp_path)], "ana").files[0]
    assert (out.status, out.payer_id, out.claims_posted) == ("posted", "BCBS", 2), out.message
    got = ledger(recon)
    assert got["I9"] == ("10.00", "0.00", "90.00", "70.00", "20.00", "10.00")
    assert got["I10"] == ("0.00", "0.00", "150.00", "120.00", "30.00", "0.00")  # no modifier in the ERA
    assert got["I6"] == ("0.00", "0.00", "200.00", "150.00", "50.00", "0.00")  # claim-level CAS, no SVC
    pay = recon.execute("SELECT client_id, method, amount FROM payments").fetchall()
    assert pay == [("C2", "insurance-check", D("340.00"))]
    assert_invariant(recon)


def test_reversal_then_correction_restores_and_reposts(recon, tmp_path):
    post_remittances(recon, [file_a(tmp_path)], "ana")
    out = post_remittances(recon, [file_c(tmp_path)], "ana").files[0]
    assert (out.status, out.claims_reversed, out.claims_posted) == ("posted", 1, 1), out.message
    assert ledger(recon)["I1"] == ("0.00", "0.00", "150.00", "110.00", "30.00", "10.00")  # PR 10 due from BCBS
    # reversing rows name what they reverse; nothing was deleted or updated
    reversed_adj = recon.execute("SELECT count(*) FROM adjustments WHERE reverses IS NOT NULL").fetchone()[0]
    reversed_due = recon.execute("SELECT count(*) FROM due_changes WHERE reverses IS NOT NULL").fetchone()[0]
    # the original wrote CO-45 and PR-1; its PR 20 equalled the co-pay already due, so no due change
    assert (reversed_adj, reversed_due) == (2, 0)
    pay = recon.execute("SELECT p.amount FROM payments p JOIN remittances r USING (remittance_id) "
                        "WHERE r.trace_number = 'T300'").fetchall()
    assert pay == [(D("10.00"),)]  # −100 reversal + 110 correction on this remittance's one payment
    neg = recon.execute("SELECT a.amount FROM allocations a JOIN payments p USING (payment_id) "
                        "WHERE p.payment_number = 'T300' ORDER BY a.amount").fetchall()
    assert neg == [(D("-100.00"),), (D("110.00"),)]
    assert_invariant(recon)


def test_unbalanced_and_truncated_files_are_rejected_whole(recon, tmp_path):
    bad = write_835(tmp_path / "bad.835", [st("0001", amount="100", trace="T9", claims=[
        claim("I2", "1", "120", "100", lines=[("HC:90834", "120", "100", "20260112", [["CO", "45", "10"]])])])])
    good = file_a(tmp_path)
    cut = write_835(tmp_path / "cut.835", [st("0001", amount="452.5", trace="T101", claims=[
        claim("I2", "1", "120", "120", lines=[("HC:90834", "120", "120", "20260112", [])])])], truncate_at=400)
    before = counts(recon)
    report = post_remittances(recon, [bad, cut, good], "ana")
    bad_out, cut_out, good_out = report.files
    assert bad_out.status == "rejected" and "nothing of bad.835 was posted" in bad_out.message
    assert any("line" in p and "off by" in p and "110.00" in p for p in bad_out.problems), bad_out.problems
    assert any("claim" in p and "CLP03 120.00" in p for p in bad_out.problems), bad_out.problems
    assert cut_out.status == "rejected" and "truncated" in cut_out.message
    assert good_out.status == "posted"  # one rejected file does not stop the others
    after = counts(recon)
    assert after["remittances"] == before["remittances"] + 1
    assert not report.ok


def test_resent_file_posts_nothing_and_conflict_is_refused(recon, tmp_path):
    post_remittances(recon, [file_a(tmp_path)], "ana")
    before = counts(recon)
    again = post_remittances(recon, [file_a(tmp_path, "renamed.txt")], "ana").files[0]
    assert again.status == "already_posted" and again.ok
    assert counts(recon) == before
    clash = post_remittances(recon, [file_a(tmp_path, "late.835", paid_on="20260302")], "ana").files[0]
    assert clash.status == "conflict" and not clash.ok
    assert "T100" in clash.message and "2026-03-01" in clash.message and "2026-03-02" in clash.message
    assert counts(recon) == before


def test_unknown_payer_refused_naming_its_ids(recon, tmp_path):
    path = write_835(tmp_path / "who.835", [st("0001", amount="120", trace="T5", payer=("NOBODY HEALTH", "99999"),
                                               claims=[claim("I2", "1", "120", "120")])])
    before = counts(recon)
    out = post_remittances(recon, [path], "ana").files[0]
    assert out.status == "rejected"
    assert "'99999'" in out.message and "'1000099999'" in out.message and "NOBODY HEALTH" in out.message
    assert counts(recon) == before


def test_worklist_match_appeal_write_off(recon, tmp_path):
    post_remittances(recon, [file_a(tmp_path)], "ana")
    unmatched, denial = (recon.one("SELECT exception_id FROM exceptions WHERE kind = ?", [k])[0]
                         for k in ("unmatched_claim", "denial"))
    with pytest.raises(PermissionDenied):
        match_claim(recon, unmatched, "I7", "ben")
    pid = match_claim(recon, unmatched, "I7", "ana")
    assert recon.one("SELECT client_id, amount, payment_number FROM payments WHERE payment_id = ?", [pid]) == \
        ("C3", D("60.00"), "T100")
    assert ledger(recon)["I7"] == ("0.00", "0.00", "120.00", "60.00", "30.00", "30.00")
    mark_denial(recon, denial, "appeal", "documentation sent", "ana")
    assert recon.one("SELECT status FROM exception_status WHERE exception_id = ?", [denial])[0] == "appealed"
    written = mark_denial(recon, denial, "write_off", "appeal lost", "ana")
    assert written == [("I4", D("95.00"))]  # capped at the insurer's open amount: the co-pay stays
    assert ledger(recon)["I4"] == ("5.00", "0.00", "95.00", "0.00", "95.00", "5.00")
    status = dict(recon.execute("SELECT exception_id, status FROM exception_status "
                                "WHERE kind <> 'recoupment'").fetchall())
    assert status == {unmatched: "matched", denial: "written_off"}
    actions = recon.one("SELECT count(*) FROM audit_log WHERE entity = 'exception'")[0]
    assert actions == 3
    assert_invariant(recon)


def test_reversal_of_a_worklist_matched_claim(recon, tmp_path):
    post_remittances(recon, [file_a(tmp_path)], "ana")
    exc = recon.one("SELECT exception_id FROM exceptions WHERE kind = 'unmatched_claim'")[0]
    match_claim(recon, exc, "I7", "ana")
    rev = write_835(tmp_path / "rev.835", [st("0001", amount="-60", trace="T400", method="NON", claims=[
        claim("NOPE-1", "22", "-90", "-60", lines=[("HC:90834", "-90", "-60", "20260115", [["CO", "45", "-30"]])])])])
    out = post_remittances(recon, [rev], "ana").files[0]
    assert (out.status, out.claims_reversed) == ("posted", 1), out.message
    assert ledger(recon)["I7"] == BEFORE["I7"]
    assert_invariant(recon)


def test_all_of_it_exact_ledger(recon, tmp_path):
    post_remittances(recon, [file_a(tmp_path), file_b(tmp_path), file_c(tmp_path)], "ana")
    got = ledger(recon)
    assert got == {
        "I1": ("0.00", "0.00", "150.00", "110.00", "30.00", "10.00"),
        "I2": ("0.00", "0.00", "120.00", "120.00", "0.00", "0.00"),
        "I3": ("0.00", "0.00", "120.00", "80.00", "25.00", "15.00"),
        "I4": ("5.00", "0.00", "95.00", "0.00", "0.00", "100.00"),
        "I5": ("10.00", "0.00", "0.00", "0.00", "0.00", "10.00"),
        "I6": ("0.00", "0.00", "200.00", "150.00", "50.00", "0.00"),
        "I7": ("120.00", "0.00", "0.00", "0.00", "0.00", "120.00"),
        "I8": ("0.00", "0.00", "150.00", "100.00", "40.00", "10.00"),
        "I9": ("10.00", "0.00", "90.00", "70.00", "20.00", "10.00"),
        "I10": ("0.00", "0.00", "150.00", "120.00", "30.00", "0.00"),
    }
    assert_invariant(recon)


def test_auto_write_off_set_is_configurable(recon, tmp_path, monkeypatch):
    assert write_off_codes() == {"CO-45", "CO-253"}
    monkeypatch.setenv("RECON_AUTO_WRITE_OFF", "CO-45, CO-97")
    assert write_off_codes() == {"CO-45", "CO-97"}
    post_remittances(recon, [file_a(tmp_path)], "ana")
    assert ledger(recon)["I8"] == ("0.00", "0.00", "150.00", "100.00", "50.00", "0.00")


def test_dry_run_writes_nothing(recon, tmp_path):
    before = counts(recon)
    report = post_remittances(recon, [file_a(tmp_path)], "ben", dry_run=True)  # no Billing needed
    out = report.files[0]
    assert out.status == "dry_run" and out.claims_posted == 4
    preview = {c.claim_id: (c.outcome, c.invoices) for c in out.claims}
    assert preview["CLM-9"] == ("posted", "I3") and preview["NOPE-1"] == ("unmatched", "")
    assert counts(recon) == before
