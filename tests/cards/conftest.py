"""Card-payment tests run against the real peers: localstripe and the Authorize.Net double.

A :class:`Peer` wraps one processor's peer with what the tests need to ask it
directly (tokenize a test card the way the browser would, count charges, list
refunds), so each ledger test runs unchanged for Stripe and for Vantage. Counting
on the peer, not in recon, is what makes "charged once" a real assertion.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import stripe

from recon.processors.base import Processor
from recon.processors.settings import StripeSettings, VantageSettings
from recon.processors.stripe import StripeProcessor
from recon.processors.vantage import VantageProcessor, short_ref
from recon.services import Recon
from tests.peers.fixtures import *  # noqa: F403  (fixtures are found by name)
from tests.peers.fixtures import STRIPE_PUBLISHABLE, STRIPE_SECRET, post_json

STRIPE_OK = "4242424242424242"
STRIPE_DECLINED = "4000000000000341"  # localstripe declines it when charged
VANTAGE_OK = "4111111111111111"
VANTAGE_DECLINE_ZIP = "46282"  # Authorize.Net sandbox trigger: declined


@dataclass
class Peer:
    """One processor's peer, as the tests talk to it (never through recon)."""

    name: str
    settings: StripeSettings | VantageSettings
    card_number: str

    def processor(self) -> Processor:
        if isinstance(self.settings, StripeSettings):
            return StripeProcessor(self.settings)
        return VantageProcessor(self.settings)

    def env(self) -> dict[str, str]:
        """Payment settings as the CLI and notebooks read them (environment variables)."""
        s = self.settings
        if isinstance(s, StripeSettings):
            return {
                "RECON_PROCESSOR": "stripe",
                "RECON_STRIPE_SECRET_KEY": STRIPE_SECRET,
                "RECON_STRIPE_PUBLISHABLE_KEY": STRIPE_PUBLISHABLE,
                "RECON_STRIPE_API_BASE": str(s.api_base),
                "RECON_STRIPE_JS_URL": s.js_url,
            }
        return {
            "RECON_PROCESSOR": "vantage",
            "RECON_VANTAGE_API_LOGIN_ID": s.api_login_id,
            "RECON_VANTAGE_TRANSACTION_KEY": s.transaction_key.reveal(),
            "RECON_VANTAGE_CLIENT_KEY": s.client_key,
            "RECON_VANTAGE_API_URL": s.api_url,
            "RECON_VANTAGE_ACCEPT_JS_URL": s.accept_js_url,
        }

    # -- what the browser's tokenizer does ---------------------------------------------
    def token(self, declined: bool = False) -> str:
        s = self.settings
        if isinstance(s, StripeSettings):
            number = STRIPE_DECLINED if declined else STRIPE_OK
            pm = self._admin().v1.payment_methods.create(
                params={
                    "type": "card",
                    "card": {"number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123"},
                }
            )
            return str(pm.id)
        answer = post_json(
            s.api_url,
            {
                "securePaymentContainerRequest": {
                    "merchantAuthentication": {"name": s.api_login_id, "clientKey": s.client_key},
                    "data": {
                        "type": "TOKEN",
                        "id": uuid.uuid4().hex,
                        "token": {
                            "cardNumber": VANTAGE_OK,
                            "expirationDate": "1234",
                            "cardCode": "123",
                            "zip": VANTAGE_DECLINE_ZIP if declined else "10001",
                            "fullName": "Pat Payer",
                        },
                    },
                }
            },
        )
        assert answer["messages"]["resultCode"] == "Ok", answer
        return str(answer["opaqueData"]["dataValue"])

    # -- a processor whose first charge answer is lost after the charge happened ------
    def lossy_processor(self) -> tuple[Processor, list[int]]:
        lost: list[int] = []
        s = self.settings
        if isinstance(s, StripeSettings):

            class LostResponse(stripe.RequestsClient):
                def request(self, method: str, url: str, headers: Any, post_data: Any = None) -> Any:
                    answer = super().request(method, url, headers, post_data)
                    if method == "post" and url.endswith("/v1/payment_intents") and not lost:
                        lost.append(1)
                        raise stripe.APIConnectionError("Request timed out (simulated)")
                    return answer

            return StripeProcessor(s, http_client=LostResponse(timeout=10)), lost
        # No duplicate window: recon's own lookup alone must prevent a second charge.
        plain = VantageProcessor(replace(s, duplicate_window=0))

        def transport(body: bytes) -> bytes:
            answer = plain._post(body)
            if b"authCaptureTransaction" in body and not lost:
                lost.append(1)
                raise TimeoutError("timed out (simulated: answer lost after sending)")
            return answer

        return VantageProcessor(replace(s, duplicate_window=0), transport=transport), lost

    # -- what the peer holds ---------------------------------------------------------------
    def charges(self, payment_id: str) -> list[dict[str, Any]]:
        """Successful charges the peer holds for a recon payment id."""
        s = self.settings
        if isinstance(s, StripeSettings):
            listed = self._admin().v1.payment_intents.list(params={"limit": 100})
            return [
                {"ref": pi.id, "amount": pi.amount}
                for pi in listed.auto_paging_iter()
                if pi.metadata.to_dict().get("recon_payment_id") == payment_id and pi.status == "succeeded"
            ]
        return [
            {"ref": t["transId"], "amount": t["settleAmount"]}
            for t in self._unsettled()
            if t.get("invoiceNumber") == short_ref(payment_id)
            and t["transactionStatus"] in ("capturedPendingSettlement", "settledSuccessfully")
        ]

    def attempts_on_peer(self, payment_id: str) -> int:
        """Every charge request the peer recorded for the payment (declined ones too)."""
        s = self.settings
        if isinstance(s, StripeSettings):
            listed = self._admin().v1.payment_intents.list(params={"limit": 100})
            return sum(
                1 for pi in listed.auto_paging_iter() if pi.metadata.to_dict().get("recon_payment_id") == payment_id
            )
        return sum(1 for t in self._unsettled() if t.get("invoiceNumber") == short_ref(payment_id))

    def refunded(self, charge_ref: str) -> bool:
        """Whether the peer shows the charge given back (refund, or void before settlement)."""
        s = self.settings
        if isinstance(s, StripeSettings):
            refunds = self._admin().v1.refunds.list(params={"payment_intent": charge_ref})
            return sum(int(r.amount) for r in refunds.data) > 0
        detail = self._gateway("getTransactionDetailsRequest", {"transId": charge_ref})
        return bool(detail["transaction"]["transactionStatus"] == "voided")

    def refund_count(self, charge_ref: str) -> int:
        s = self.settings
        if isinstance(s, StripeSettings):
            return len(self._admin().v1.refunds.list(params={"payment_intent": charge_ref}).data)
        return 1 if self.refunded(charge_ref) else 0

    def _admin(self) -> stripe.StripeClient:
        assert isinstance(self.settings, StripeSettings)
        return stripe.StripeClient(
            self.settings.secret_key.reveal(),
            base_addresses={"api": str(self.settings.api_base)},
            max_network_retries=0,
        )

    def _gateway(self, request: str, body: dict[str, Any]) -> dict[str, Any]:
        s = self.settings
        assert isinstance(s, VantageSettings)
        auth = {"name": s.api_login_id, "transactionKey": s.transaction_key.reveal()}
        return post_json(s.api_url, {request: {"merchantAuthentication": auth, **body}})

    def _unsettled(self) -> list[dict[str, Any]]:
        answer = self._gateway("getUnsettledTransactionListRequest", {"paging": {"limit": 1000, "offset": 1}})
        return list(answer.get("transactions") or [])


@pytest.fixture(params=["stripe", "vantage"])
def peer(request: pytest.FixtureRequest) -> Peer:
    """Each test that uses it runs once against localstripe and once against the double."""
    if request.param == "stripe":
        return Peer("stripe", request.getfixturevalue("stripe_settings"), STRIPE_OK)
    return Peer("vantage", request.getfixturevalue("vantage_settings"), VANTAGE_OK)


@pytest.fixture
def recon(db: Path) -> Any:
    """The tiny practice's ledger (tests/conftest.py), open for the test."""
    with Recon.open(db) as r:
        yield r


@pytest.fixture
def peer_env(peer: Peer, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Put the peer's payment settings into the environment (as a practice would)."""

    def apply() -> None:
        for key, value in peer.env().items():
            monkeypatch.setenv(key, value)

    return apply
