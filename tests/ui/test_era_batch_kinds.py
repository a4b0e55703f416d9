"""The ERA batch worklist offers each action only for the kinds it works.

An ``overpayment`` (a credit balance) is worked with Refund or Apply to invoice, a denial
with Appeal or Write off, a held claim with Match; Bill client works on the invoice typed.
Driven from Python (``button.click()`` runs the browser's handlers); money is read from the ledger.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from recon.model import PaymentMethod, PaymentRequest
from recon.remit.post import post_remittances
from recon.services import Recon
from recon.store import queries
from recon.ui.era_batch import EraBatchView, era_batch
from tests.era.edi import claim, st, write_835


@pytest.fixture
def view(recon: Recon, tmp_path: Path) -> EraBatchView:
    """Aetna pays C1's I1 100 (CO-45 30, PR-2 20: the 20 waits on Blue Cross, the secondary) and
    denies I2; a manual Aetna lump sum of 1000 leaves unapplied credit (an overpayment)."""
    paid = claim(
        "I1", "1", "150", "100", "20",
        lines=[("HC:90837", "150", "100", "20260105", [["CO", "45", "30"], ["PR", "2", "20"]])],
    )  # fmt: skip
    denied = claim("I2", "4", "120", "0", lines=[("HC:90834", "120", "0", "20260112", [["CO", "50", "120"]])])
    path = write_835(tmp_path / "aetna.835", [st("0001", amount="100", trace="T1", claims=[paid, denied])])
    assert post_remittances(recon, [path], "ana").ok
    recon.record_payment(
        PaymentRequest("C1", "AET", PaymentMethod.INSURANCE_CHECK, amount=Decimal("1000.00"), payment_number="CHK-9"),
        "ana",
    )
    return era_batch(recon, "ana")


def chosen(view: EraBatchView, kind: str) -> str:
    (row,) = [r for r in view.worklist_rows if r[1] == kind]
    view.exception.value = row[0]
    return str(row[0])


def buttons(view: EraBatchView) -> dict[str, bool]:
    """Which action buttons are offered (enabled)."""
    return {
        name: not getattr(view, f"{name}_button").disabled
        for name in ("match", "appeal", "write_off", "refund", "apply", "bill_client")
    }


def ledger(recon: Recon, invoice: str) -> tuple[str, ...]:
    """(client due, client paid, ins due, ins paid, ins adjusted, balance) as text."""
    rows = {r[0]: tuple(f"{v:.2f}" for v in r[4:10]) for r in recon.execute(queries.ledger_sql()).fetchall()}
    return rows[invoice]


def test_an_overpayment_is_offered_refund_and_apply_only(view: EraBatchView, recon: Recon) -> None:
    credit = chosen(view, "overpayment")
    assert credit.startswith("overpayment:payment:")
    assert buttons(view) == {
        "match": False, "appeal": False, "write_off": False, "refund": True, "apply": True, "bill_client": True,
    }  # fmt: skip
    # clicked anyway (a stale page): one line saying what works it, never "No exception ..."
    view.invoice.value = "I8"
    view.match_button.click()
    msg = view.message.value
    assert "recon-msg-error" in msg and "is an overpayment" in msg and "refund it or apply it" in msg, msg
    assert "No exception" not in msg
    view.reason.value = "x"
    view.appeal_button.click()
    assert "is an overpayment" in view.message.value and "No exception" not in view.message.value
    assert recon.one("SELECT count(*) FROM exception_actions")[0] == 0

    view.reason.value = ""
    view.refund_button.click()
    assert "Give a reason in Reason" in view.message.value
    view.reason.value = "payer asked for it back"
    view.refund_button.click()
    assert "recon-msg-ok" in view.message.value and f"{credit} refunded: " in view.message.value, view.message.value
    assert credit not in {r[0] for r in view.worklist_rows}
    refunds = recon.one("SELECT count(*) FROM payments WHERE amount < 0 AND reason = 'payer asked for it back'")
    assert refunds == (1,)


def test_a_denial_is_offered_appeal_and_write_off_only(view: EraBatchView) -> None:
    denial = chosen(view, "denial")
    assert buttons(view) == {
        "match": False, "appeal": True, "write_off": True, "refund": False, "apply": False, "bill_client": True,
    }  # fmt: skip
    view.reason.value = "not ours to refund"
    view.refund_button.click()
    assert f"{denial} is a denial: Refund does not apply to it (appeal or write it off)" in view.message.value


def test_bill_client_moves_the_pr_waiting_on_the_secondary(view: EraBatchView, recon: Recon) -> None:
    assert ledger(recon, "I1") == ("0.00", "0.00", "150.00", "100.00", "30.00", "20.00")
    view.bill_client_button.click()
    assert "Type the invoice" in view.message.value
    view.invoice.value = "I1"
    view.reason.value = "Blue Cross coverage ended"
    view.bill_client_button.click()
    assert "recon-msg-ok" in view.message.value and "I1: 20.00 billed to the client" in view.message.value
    assert ledger(recon, "I1") == ("20.00", "0.00", "130.00", "100.00", "30.00", "20.00")
    view.invoice.value = "I1"
    view.reason.value = "again"
    view.bill_client_button.click()
    assert "recon-msg-error" in view.message.value and "Nothing of I1 is waiting" in view.message.value
