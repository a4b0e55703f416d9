"""Card payments on the ledger, against the real peers (each test runs for Stripe and Vantage).

What is asserted is what the analyst and the processor both see: the payment row
(method, processor, reference, brand, last 4), its allocations, the attempt row,
and — asked of the peer itself — how many charges and refunds exist.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from recon.cards import (
    CardDeclined,
    ChargedNotRecorded,
    ChargeOutcomeUnknown,
    attempts,
    charge_card_payment,
    void_any_payment,
)
from recon.errors import PaymentRefused, PermissionDenied
from recon.model import InvoicePick, PaymentMethod, PaymentRequest
from tests.cards.conftest import Peer

CARD = PaymentMethod.INSURANCE_CARD


def card_request(key: str | None = "form-key-1", **kw: Any) -> PaymentRequest:
    """C1's Aetna invoices I1 and I2 ticked (open Ins Amt Due 130.00 + 100.00)."""
    values: dict[str, Any] = {
        "client_id": "C1",
        "payer": "AET",
        "method": CARD,
        "picks": (InvoicePick("I1"), InvoicePick("I2")),
        "payment_number": "CARD-1",
        "idempotency_key": key,
    }
    values.update(kw)
    return PaymentRequest(**values)


def payments(recon: Any) -> list[tuple[Any, ...]]:
    return recon.execute(
        "SELECT payment_id, method, amount, processor, processor_ref, card_brand, card_last4, "
        "reverses FROM payments ORDER BY created_at"
    ).fetchall()


def allocations(recon: Any, payment_id: str) -> list[tuple[str, Decimal]]:
    rows = recon.execute(
        "SELECT invoice_id, amount FROM allocations WHERE payment_id = ? ORDER BY invoice_id",
        [payment_id],
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def audit_actions(recon: Any) -> list[str]:
    rows = recon.execute("SELECT action FROM audit_log ORDER BY audit_id").fetchall()
    return [r[0] for r in rows]


class NoCalls:
    """A processor that fails the test if anything reaches it."""

    name = "stripe"

    def __getattr__(self, attr: str) -> Any:
        raise AssertionError(f"the processor was called ({attr}) before the permission check")


# ------------------------------------------------------------------------------ charge
def test_charge_records_payment_with_card_details_and_planned_allocations(recon: Any, peer: Peer) -> None:
    request = card_request()
    plan = recon.plan_payment(request)

    receipt = charge_card_payment(
        recon, request, "ana", token=peer.token(), processor=peer.processor(), expected_plan=plan
    )

    assert receipt.amount == Decimal("230.00") == plan.total
    assert allocations(recon, receipt.payment_id) == [
        ("I1", Decimal("130.00")),
        ("I2", Decimal("100.00")),
    ]
    (row,) = payments(recon)
    pid, method, amount, processor, ref, brand, last4, _ = row
    assert (pid, method, amount, processor) == (
        receipt.payment_id, "insurance-card", Decimal("230.00"), peer.name,
    )  # fmt: skip
    assert brand == "visa" and last4 == peer.card_number[-4:]
    (charge,) = peer.charges(pid)
    assert charge["ref"] == ref
    assert receipt.extra["processor_ref"] == ref and receipt.extra["last4"] == last4
    (att,) = attempts(recon)
    assert (att.status, att.payment_id, att.processor_ref) == ("succeeded", pid, ref)
    assert att.amount == Decimal("230.00") and att.request_key == "form-key-1"
    assert audit_actions(recon)[-3:] == [
        "card_attempt_started", "record_payment", "card_charge_succeeded",
    ]  # fmt: skip
    ledger = {r.invoice_id: r for r in recon.ledger_rows("C1")}
    assert ledger["I1"].ins_amt_paid == Decimal("130.00")
    assert ledger["I2"].ins_amt_paid == Decimal("100.00")


def test_same_request_again_replays_and_charges_nothing(recon: Any, peer: Peer) -> None:
    processor = peer.processor()
    first = charge_card_payment(recon, card_request(), "ana", token=peer.token(), processor=processor)
    again = charge_card_payment(recon, card_request(), "ana", token=peer.token(), processor=processor)
    assert again.replayed and again.payment_id == first.payment_id
    assert len(payments(recon)) == 1
    assert len(peer.charges(first.payment_id)) == 1
    assert len(attempts(recon)) == 1


def test_decline_records_no_money_and_keeps_the_reason(recon: Any, peer: Peer) -> None:
    before = recon.ledger_rows("C1")

    with pytest.raises(CardDeclined) as caught:
        charge_card_payment(
            recon, card_request(), "ana", token=peer.token(declined=True),
            processor=peer.processor(),
        )  # fmt: skip

    assert payments(recon) == []
    assert recon.ledger_rows("C1") == before
    (att,) = attempts(recon)
    assert att.status == "declined"
    assert att.reason and att.reason in str(caught.value)
    assert caught.value.reason == att.reason
    expected = "Your card was declined." if peer.name == "stripe" else "has been declined"
    assert expected in att.reason
    assert peer.attempts_on_peer(att.payment_id) == 1
    assert peer.charges(att.payment_id) == []
    assert "card_charge_declined" in audit_actions(recon)


def test_after_a_decline_a_new_card_is_a_new_attempt(recon: Any, peer: Peer) -> None:
    with pytest.raises(CardDeclined):
        charge_card_payment(
            recon, card_request(), "ana", token=peer.token(declined=True),
            processor=peer.processor(),
        )  # fmt: skip
    receipt = charge_card_payment(recon, card_request(), "ana", token=peer.token(), processor=peer.processor())
    declined, succeeded = sorted(attempts(recon), key=lambda a: a.status)
    assert (declined.status, succeeded.status) == ("declined", "succeeded")
    assert declined.idempotency_key != succeeded.idempotency_key
    assert succeeded.payment_id == receipt.payment_id
    assert len(peer.charges(receipt.payment_id)) == 1


def test_retry_after_a_timeout_charges_once_and_records_once(recon: Any, peer: Peer) -> None:
    lossy, lost = peer.lossy_processor()

    with pytest.raises(ChargeOutcomeUnknown):
        charge_card_payment(recon, card_request(), "ana", token=peer.token(), processor=lossy)

    assert lost == [1]
    (att,) = attempts(recon)
    assert att.status == "unknown"
    assert payments(recon) == []
    assert len(peer.charges(att.payment_id)) == 1  # the charge did happen

    # The analyst submits again (the browser tokenizes the card again).
    receipt = charge_card_payment(recon, card_request(), "ana", token=peer.token(), processor=peer.processor())

    assert receipt.payment_id == att.payment_id
    (charge,) = peer.charges(att.payment_id)
    assert peer.attempts_on_peer(att.payment_id) == 1
    (row,) = payments(recon)
    assert row[4] == charge["ref"]
    (after,) = attempts(recon)
    assert after.status == "succeeded" and after.idempotency_key == att.idempotency_key
    assert "card_retry" in audit_actions(recon)


def test_explicit_retry_of_an_attempt_needs_no_new_token(recon: Any, peer: Peer) -> None:
    lossy, _ = peer.lossy_processor()
    with pytest.raises(ChargeOutcomeUnknown) as caught:
        charge_card_payment(recon, card_request(key=None), "ana", token=peer.token(), processor=lossy)
    receipt = charge_card_payment(
        recon, card_request(key=None), "ana", token=None, processor=peer.processor(),
        retry_attempt=caught.value.attempt_id,
    )  # fmt: skip
    assert len(peer.charges(receipt.payment_id)) == 1
    assert attempts(recon)[0].status == "succeeded"


def test_crash_before_the_call_then_retry_charges_once(recon: Any, peer: Peer) -> None:
    """The kernel died after storing the attempt, before the processor heard of it."""

    class Crash(Exception):
        pass

    class DiesOnCharge:
        name = peer.name

        def charge(self, **_kw: Any) -> Any:
            raise Crash("kernel died")

    with pytest.raises(Crash):
        charge_card_payment(
            recon,
            card_request(),
            "ana",
            token=peer.token(),
            processor=DiesOnCharge(),  # type: ignore[arg-type]
        )
    (att,) = attempts(recon)
    assert att.status == "unknown" and peer.attempts_on_peer(att.payment_id) == 0

    receipt = charge_card_payment(recon, card_request(), "ana", token=peer.token(), processor=peer.processor())
    assert receipt.payment_id == att.payment_id
    assert len(peer.charges(att.payment_id)) == 1


def test_ledger_change_after_the_charge_refunds_and_says_so(recon: Any, peer: Peer) -> None:
    """Another analyst records a check on I1 while the card is being charged."""
    real = peer.processor()

    class MeanwhileACheck:
        name = real.name

        def charge(self, **kw: Any) -> Any:
            result = real.charge(**kw)
            check = PaymentRequest("C1", "AET", PaymentMethod.INSURANCE_CHECK, picks=(InvoicePick("I1"),))
            recon.record_payment(check, "ana")
            return result

        def __getattr__(self, attr: str) -> Any:
            return getattr(real, attr)

    request = card_request()
    with pytest.raises(ChargedNotRecorded) as caught:
        charge_card_payment(
            recon, request, "ana", token=peer.token(), processor=MeanwhileACheck(),  # type: ignore[arg-type]
            expected_plan=recon.plan_payment(request),
        )  # fmt: skip

    assert caught.value.refunded
    assert "refunded" in str(caught.value) and "could not be recorded" in str(caught.value)
    (att,) = attempts(recon)
    assert att.status == "refunded" and att.refund_ref
    assert peer.refunded(str(att.processor_ref))
    assert [p[1] for p in payments(recon)] == ["insurance-check"]  # only the check


def test_changed_preview_charges_nothing(recon: Any, peer: Peer) -> None:
    request = card_request(picks=(), amount=Decimal("100.00"))
    stale = recon.plan_payment(request)
    recon.record_payment(
        PaymentRequest("C1", "AET", PaymentMethod.INSURANCE_CHECK, picks=(InvoicePick("I1", Decimal("50")),)),
        "ana",
    )
    with pytest.raises(PaymentRefused, match="changed since"):
        charge_card_payment(
            recon, request, "ana", token=peer.token(), processor=peer.processor(),
            expected_plan=stale,
        )  # fmt: skip
    assert attempts(recon) == []


def test_billing_permission_is_checked_before_any_processor_call(recon: Any) -> None:
    with pytest.raises(PermissionDenied, match="Billing permission"):
        charge_card_payment(recon, card_request(), "ben", token="pm_x", processor=NoCalls())  # type: ignore[arg-type]
    with pytest.raises(PermissionDenied, match="Billing permission"):
        void_any_payment(recon, "PAY-000001", "ben", "x", processor=NoCalls())  # type: ignore[arg-type]
    assert attempts(recon) == []


def test_not_enrolled_offers_no_card_payment(recon: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECON_PROCESSOR", "none")
    with pytest.raises(PaymentRefused, match="not enrolled"):
        charge_card_payment(recon, card_request(), "ana", token="pm_x")


# -------------------------------------------------------------------------------- void
def test_void_refunds_through_the_processor_then_reverses(recon: Any, peer: Peer) -> None:
    processor = peer.processor()
    receipt = charge_card_payment(recon, card_request(), "ana", token=peer.token(), processor=processor)
    ref = receipt.extra["processor_ref"]

    reversal = void_any_payment(recon, receipt.payment_id, "ana", "insurer asked", processor=processor)

    assert peer.refunded(ref)
    rows = {r[0]: r for r in payments(recon)}
    assert rows[reversal][2] == Decimal("-230.00") and rows[reversal][7] == receipt.payment_id
    ledger = {r.invoice_id: r for r in recon.ledger_rows("C1")}
    assert ledger["I1"].ins_amt_paid == Decimal("0.00")
    (refund,) = recon.execute(
        "SELECT status, reversal_id FROM card_refunds WHERE payment_id = ?", [receipt.payment_id]
    ).fetchall()
    assert refund == ("succeeded", reversal)
    actions = audit_actions(recon)
    assert actions.index("card_refund_succeeded") < actions.index("void_payment")

    with pytest.raises(PaymentRefused, match="already voided"):
        void_any_payment(recon, receipt.payment_id, "ana", "again", processor=processor)
    assert peer.refund_count(ref) == 1


def test_refund_done_but_reversal_lost_is_finished_without_a_second_refund(
    recon: Any, peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    processor = peer.processor()
    receipt = charge_card_payment(recon, card_request(), "ana", token=peer.token(), processor=processor)
    real_void = recon.void_payment
    monkeypatch.setattr(recon, "void_payment", lambda *a: (_ for _ in ()).throw(OSError("disk")))
    with pytest.raises(Exception, match="without a second refund"):
        void_any_payment(recon, receipt.payment_id, "ana", "dup", processor=processor)
    monkeypatch.setattr(recon, "void_payment", real_void)

    reversal = void_any_payment(recon, receipt.payment_id, "ana", "dup", processor=processor)

    assert reversal
    assert peer.refund_count(receipt.extra["processor_ref"]) == 1


def test_void_of_a_check_needs_no_processor(recon: Any) -> None:
    receipt = recon.record_payment(
        PaymentRequest("C1", "AET", PaymentMethod.INSURANCE_CHECK, amount=Decimal("10.00")), "ana"
    )
    reversal = void_any_payment(recon, receipt.payment_id, "ana", "typo", processor=NoCalls())  # type: ignore[arg-type]
    assert reversal != receipt.payment_id


# --------------------------------------------------------------------------------- CLI
def test_cli_charges_a_token_and_voids_it(
    db: Path, cli: Callable[..., Any], peer: Peer, peer_env: Callable[[], None]
) -> None:
    peer_env()
    token = peer.token()
    run = cli(
        "pay", "C1", "--db", db, "--user", "ana", "--payer", "AET", "--method", "insurance-card",
        "--invoice", "I1", "--payment-method-token", token, "--key", "cli-1",
    )  # fmt: skip
    assert run.code == 0, run.err
    assert "Recorded payment PAY-" in run.out and "130.00 (Insurance Credit/Debit Card)" in run.out
    pid = run.out.split("Recorded payment ", 1)[1].split(":", 1)[0]
    from recon.services import Recon

    with Recon.open(db) as recon:
        (row,) = payments(recon)
        assert row[3] == peer.name and row[6] == peer.card_number[-4:]
    (charge,) = peer.charges(pid)
    assert charge["ref"] == row[4]

    again = cli(
        "pay", "C1", "--db", db, "--user", "ana", "--payer", "AET", "--method", "insurance-card",
        "--invoice", "I1", "--payment-method-token", peer.token(), "--key", "cli-1",
    )  # fmt: skip
    assert again.code == 0 and "Already recorded as payment " + pid in again.out
    assert len(peer.charges(pid)) == 1

    void = cli("void", pid, "--db", db, "--user", "ana", "--reason", "wrong client")
    assert void.code == 0, void.err
    assert f"Voided {pid} by reversing entry PAY-" in void.out
    assert peer.refunded(row[4])


def test_cli_decline_prints_the_reason_and_records_nothing(
    db: Path, cli: Callable[..., Any], peer: Peer, peer_env: Callable[[], None]
) -> None:
    peer_env()
    run = cli(
        "pay", "C1", "--db", db, "--user", "ana", "--payer", "AET", "--method", "insurance-card",
        "--amount", "50.00", "--payment-method-token", peer.token(declined=True),
    )  # fmt: skip
    assert run.code == 1
    assert "recon: error: The card was declined: " in run.err
    from recon.services import Recon

    with Recon.open(db) as recon:
        assert payments(recon) == []
        assert [a.status for a in attempts(recon)] == ["declined"]


def test_cli_refuses_card_method_without_token(
    db: Path, cli: Callable[..., Any], peer: Peer, peer_env: Callable[[], None]
) -> None:
    peer_env()
    run = cli(
        "pay", "C1", "--db", db, "--user", "ana", "--payer", "AET", "--method", "insurance-card",
        "--amount", "50.00",
    )  # fmt: skip
    assert run.code == 1 and "No card token" in run.err


def test_card_number_is_not_in_the_ledger_file(db: Path, peer: Peer) -> None:
    from recon.services import Recon

    with Recon.open(db) as recon:
        charge_card_payment(recon, card_request(), "ana", token=peer.token(), processor=peer.processor())
    data = db.read_bytes() + (Path(str(db) + ".wal").read_bytes() if Path(str(db) + ".wal").exists() else b"")
    assert peer.card_number.encode() not in data
    assert peer.card_number[-4:].encode() in data  # the check can see what is stored
