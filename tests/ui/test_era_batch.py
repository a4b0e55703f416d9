"""The ERA batch widget driven from Python: upload, preview, post, work the exceptions.

Setting ``FileUpload.value`` and calling ``button.click()`` runs the same handlers the
browser triggers; every assertion on money is made on the ledger, not on the HTML.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from recon.services import Recon
from recon.ui.era_batch import EraBatchView, era_batch
from tests.deposits.era_files import AETNA_MARCH, BCBS_MARCH, write_835

DEPOSITS = b"deposit_id,deposit_date,amount,trace_number,description\nDEP-1,2026-03-03,150.00,AET-TRACE-1,AETNA\n" \
    b"DEP-2,2026-03-06,172.50,,ACH CREDIT\nDEP-3,2026-03-06,9.99,,COUNTER\n"  # fmt: skip


def upload_value(*files: tuple[str, bytes]) -> tuple[dict[str, Any], ...]:
    """What the browser sends: ipywidgets 8 FileUpload value."""
    return tuple(
        {"name": name, "type": "", "size": len(data), "content": memoryview(data),
         "last_modified": datetime(2026, 3, 7, tzinfo=UTC)}
        for name, data in files
    )  # fmt: skip


@pytest.fixture
def era_bytes(tmp_path: Path) -> dict[str, bytes]:
    return {
        "aetna.835": write_835(tmp_path / "a.835", AETNA_MARCH, 1).read_bytes(),
        "bcbs.835": write_835(tmp_path / "b.835", BCBS_MARCH, 2).read_bytes(),
    }


@pytest.fixture
def view(recon: Recon, era_bytes: dict[str, bytes]) -> EraBatchView:
    v = era_batch(recon, "ana")
    v.upload.value = upload_value(*era_bytes.items())
    v.deposit_upload.value = upload_value(("bank.csv", DEPOSITS))
    return v


def count(recon: Recon, sql: str, params: list[Any] | None = None) -> int:
    row = recon.one(sql, params or [])
    assert row is not None
    return int(row[0])


def message(view: EraBatchView) -> str:
    return view.message.value


def exception_id(recon: Recon, claim_id: str) -> str:
    row = recon.one("SELECT exception_id FROM exceptions WHERE claim_id = ?", [claim_id])
    assert row is not None
    return str(row[0])


def test_preview_posts_nothing_and_shows_each_file(view: EraBatchView, recon: Recon) -> None:
    assert "2</b> 835 file(s): aetna.835, bcbs.835" in view.files_label.value
    view.preview_button.click()
    assert "Preview (nothing posted): 2 file(s): 2 dry run" in message(view)
    html = view.preview_html.value
    assert html.count('data-status="dry_run"') == 2
    assert 'data-claim="I1"' in html and "CO-50 150.00" in html  # the claim's adjustment
    assert "Balanced: every line" in html
    assert 'class="recon-era-file recon-era-deposits"' in html and "3 new, 0 unchanged" in html
    assert count(recon, "SELECT count(*) FROM remittances") == 0
    assert count(recon, "SELECT count(*) FROM deposits") == 0
    assert count(recon, "SELECT count(*) FROM payments") == 0


def test_post_then_work_the_exceptions(view: EraBatchView, recon: Recon) -> None:
    view.post_button.click()
    assert "Posted batch: 2 file(s): 2 posted; deposits: 3 new" in message(view), message(view)
    assert count(recon, "SELECT count(*) FROM remittances") == 2
    assert 'data-status="posted"' in view.preview_html.value
    status = dict(recon.execute("SELECT deposit_id, status FROM deposit_reconciliation").fetchall())
    assert status == {"DEP-1": "matched", "DEP-2": "matched", "DEP-3": "unmatched"}
    assert "amount mismatch" in view.reconciliation_html.value
    # the worklist: three denials, one unmatched claim, one unmatched deposit
    assert len(view.worklist_rows) == 5
    assert 'data-exception="deposit:DEP-3"' in view.worklist_html.value
    choices = [v for _, v in view.exception.options if v]
    assert len(choices) == 4  # the bank-side row is shown, not offered for claim actions

    # match the unmatched claim (70.00 held) to I8
    view.exception.value = exception_id(recon, "X-404")
    assert "I8" in view.invoice.options and view.appeal_button.disabled
    view.invoice.value = "I8"
    view.match_button.click()
    assert "matched to I8: payment" in message(view), message(view)
    paid = recon.one("SELECT coalesce(sum(amount), 0) FROM allocations WHERE invoice_id = 'I8' AND kind = 'insurance'")
    assert paid == (Decimal("70.00"),)

    # appeal one denial, write another off, each with a reason
    view.exception.value = exception_id(recon, "I1")
    view.reason.value = "medical records sent"
    view.appeal_button.click()
    assert "marked for appeal" in message(view)
    view.exception.value = exception_id(recon, "I2")
    view.reason.value = "no authorization on file"
    view.write_off_button.click()
    assert "written off: I2 100.00" in message(view), message(view)
    states = dict(recon.execute("SELECT claim_id, status FROM exception_status").fetchall())
    assert states == {"I1": "appealed", "I2": "written_off", "X-404": "matched", "I4": "open"}
    adjusted = recon.one("SELECT amount, note FROM adjustments WHERE invoice_id = 'I2' AND group_code = 'WO'")
    assert adjusted == (Decimal("100.00"), "no authorization on file")
    actions = {r[0] for r in recon.execute("SELECT action FROM audit_log").fetchall()}
    assert {"denial_appeal", "denial_write_off", "load_deposits"} <= actions
    assert len(view.worklist_rows) == 2  # I4's denial and the unmatched deposit

    # posting the same batch again posts nothing
    view.post_button.click()
    assert "2 already posted; deposits: 0 new, 3 unchanged" in message(view)
    assert count(recon, "SELECT count(*) FROM remittances") == 2


def test_errors_are_one_line(view: EraBatchView, recon: Recon) -> None:
    view.post_button.click()
    view.exception.value = exception_id(recon, "I1")
    view.write_off_button.click()  # no reason
    assert "recon-msg-error" in message(view) and "Give a reason in Reason" in message(view)
    view.exception.value = None
    view.appeal_button.click()
    assert "Choose an exception" in message(view)
    assert "Traceback" not in message(view)
    view.exception.value = exception_id(recon, "X-404")
    view.invoice.value = "NO-SUCH-INVOICE"
    view.match_button.click()
    assert "recon-msg-error" in message(view) and "Traceback" not in message(view)
    assert "\n" not in message(view)


def test_posting_needs_billing(recon: Recon, era_bytes: dict[str, bytes]) -> None:
    v = EraBatchView(recon, "ben")
    v.upload.value = upload_value(*era_bytes.items())
    v.post_button.click()
    assert "does not have the Billing permission" in message(v)
    assert count(recon, "SELECT count(*) FROM remittances") == 0
    v.preview_button.click()  # a preview writes nothing and needs no Billing
    assert "2 dry run" in message(v)


def test_a_rejected_file_does_not_stop_the_batch_or_the_deposits(recon: Recon, era_bytes: dict[str, bytes]) -> None:
    truncated = era_bytes["bcbs.835"].split(b"SE*")[0]
    v = era_batch(recon, "ana")
    v.upload.value = upload_value(("aetna.835", era_bytes["aetna.835"]), ("bcbs-cut.835", truncated))
    v.deposit_upload.value = upload_value(("bank.csv", DEPOSITS))
    v.post_button.click()
    assert "1 posted, 1 rejected" in message(v) and "recon-msg-warning" in message(v)
    assert 'data-status="rejected"' in v.preview_html.value
    assert count(recon, "SELECT count(*) FROM remittances") == 1
    assert count(recon, "SELECT count(*) FROM deposits") == 3


def test_a_bad_deposit_file_is_one_line_and_the_835s_still_post(recon: Recon, era_bytes: dict[str, bytes]) -> None:
    v = era_batch(recon, "ana")
    v.upload.value = upload_value(("aetna.835", era_bytes["aetna.835"]))
    v.deposit_upload.value = upload_value(("bank.csv", b"deposit_id,deposit_date,amount\nD1,2026-03-01,1.005\n"))
    v.post_button.click()
    assert "bank.csv:2: amount: '1.005' is not valid" in message(v)
    assert count(recon, "SELECT count(*) FROM remittances") == 1
    assert count(recon, "SELECT count(*) FROM deposits") == 0


def test_nothing_chosen(recon: Recon) -> None:
    v = era_batch(recon, "ana")
    v.preview_button.click()
    assert "Choose one or more 835 files" in message(v)
    assert "No open exceptions" in v.worklist_html.value


def test_demo_batch_is_made_once_and_posts(recon: Recon, tmp_path: Path) -> None:
    from recon.ui.era_batch import ensure_demo_batch

    # the tiny practice has no AETNA/BCBS/UHC ids: the files carry no invoice claims, only extras
    demo = ensure_demo_batch(recon, tmp_path / "demo")
    again = ensure_demo_batch(recon, tmp_path / "demo")
    assert demo == again and all(p.exists() for p in demo.files)
    assert demo.deposits.read_text().count("\n") == 5


def test_local_files_with_preview_are_previewed_and_not_posted(
    recon: Recon, era_bytes: dict[str, bytes], tmp_path: Path
) -> None:
    """Notebook 02's Run All: the batch is previewed at once and nothing is posted until Post."""
    files = []
    for name, data in era_bytes.items():
        (tmp_path / name).write_bytes(data)
        files.append(tmp_path / name)
    (tmp_path / "bank.csv").write_bytes(DEPOSITS)
    v = era_batch(recon, None, files=files, deposits=tmp_path / "bank.csv", preview=True)  # RECON_USER unset
    assert "Preview (nothing posted): 2 file(s): 2 dry run" in message(v)
    assert v.preview_html.value.count('data-status="dry_run"') == 2
    assert count(recon, "SELECT count(*) FROM remittances") == 0
    assert count(recon, "SELECT count(*) FROM deposits") == 0
    v.post_button.click()  # posting asks who posts
    assert "Choose who you are" in message(v) and count(recon, "SELECT count(*) FROM remittances") == 0
    v.user_picker.value = "ana"
    v.post_button.click()  # one click posts
    assert count(recon, "SELECT count(*) FROM remittances") == 2


def test_the_worklist_shows_every_column_full_width(view: EraBatchView) -> None:
    """Reason and Deposit were cut off: the table spans the output and scrolls sideways if need be."""
    view.post_button.click()
    html = view.worklist_html.value
    assert html.startswith('<div class="recon-scroll-x">') and "<th" in html
    for header in ("Exception", "Kind", "Trace", "Payer", "Claim", "Amount", "Reason", "Deposit"):
        assert f">{header}</th>" in html
    assert view.worklist_html.layout.width == "100%" and view.worklist_html.layout.overflow == "auto"


def test_a_deposit_matched_by_hand_refused_confirmed_and_undone(view: EraBatchView, recon: Recon) -> None:
    pytest.importorskip("recon.remit.deposit_match")
    view.post_button.click()
    aetna = recon.one("SELECT remittance_id FROM remittances WHERE trace_number = 'AET-TRACE-1'")
    assert aetna is not None
    assert "DEP-3" in [v for _, v in view.deposit.options] and aetna[0] in [v for _, v in view.remittances.options]

    def links() -> list[tuple[Any, ...]]:
        return recon.execute(
            "SELECT remittance_id, matched_by FROM deposit_links WHERE deposit_id = 'DEP-3'"
        ).fetchall()

    # 9.99 for a 150.00 remittance already matched to DEP-1: refused with the reasons, nothing written
    view.deposit.value = "DEP-3"
    view.remittances.value = (aetna[0],)
    view.deposit_match_button.click()
    assert "recon-msg-error" in message(view) and "confirm it with a reason" in message(view), message(view)
    assert links() == []
    view.confirm.value = True
    view.deposit_match_button.click()
    assert "Give the reason for confirming" in message(view) and links() == []

    # confirmed with a reason: matched by hand, audited
    view.reason.value = "bank split the ACH; remainder posted separately"
    view.deposit_match_button.click()
    assert "recon-msg-ok" in message(view) and "matched by hand" in message(view), message(view)
    assert links() == [(aetna[0], "manual")]
    actions = {r[0] for r in recon.execute("SELECT action FROM audit_log").fetchall()}
    assert "match_deposit" in actions

    # undo needs a reason; then the deposit goes back to the rules
    view.deposit.value = "DEP-3"
    view.deposit_unmatch_button.click()
    assert "Give the reason for undoing" in message(view) and links() == [(aetna[0], "manual")]
    view.reason.value = "wrong remittance"
    view.deposit_unmatch_button.click()
    assert "recon-msg-ok" in message(view) and "unmatched" in message(view), message(view)
    assert links() == []
