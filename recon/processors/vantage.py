"""Vantage: charge a card through the Authorize.Net JSON API that Vantage merchants use.

Vantage Card Services publishes no card API of its own; its merchants process
through a gateway such as Authorize.Net. The browser form sends the card to
Accept.js, which returns single-use ``opaqueData``; the kernel only sees its
``dataValue`` (the token) and sends an ``authCaptureTransaction`` paying with it.

Idempotency has three layers, because a lost answer must never mean two charges:
``refId`` carries (a 20-character digest of) recon's idempotency key; the order's
``invoiceNumber`` names the recon payment and its description tags the attempt, so
a retry finds the earlier transaction in the unsettled list; and the gateway's
``duplicateWindow`` refuses a repeat of the same card, amount and invoice number
(reason 11), which the adapter answers by looking the original up.

Refunds: Authorize.Net only refunds a settled transaction; before settlement (the
same day) the whole charge is voided instead. Stdlib HTTP only; money is parsed
from JSON as Decimal (never float), and answers start with a UTF-8 BOM.
"""

from __future__ import annotations

import hashlib
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from recon.errors import ProcessorError
from recon.money import CENT
from recon.processors.base import (
    RECON_PAYMENT_ID,
    ChargeResult,
    OutcomeUnknown,
    RefundResult,
    to_cents,
)
from recon.processors.settings import VantageSettings

DESCRIPTOR = "COMMON.ACCEPT.INAPP.PAYMENT"
FORM_FIELDS = ("Name on Card", "Card Number", "Expiration Date", "Billing Zip Code")
BRANDS = {
    "Visa": "visa",
    "MasterCard": "mastercard",
    "AmericanExpress": "amex",
    "Discover": "discover",
    "JCB": "jcb",
    "DinersClub": "diners",
}
HELD = {"FDSPendingReview", "FDSAuthorizedPendingReview"}
CHARGED = {"capturedPendingSettlement", "settledSuccessfully"}
DUPLICATE = "11"
# A transport sends one JSON body to the API URL and returns the raw answer bytes.
Transport = Callable[[bytes], bytes]


def short_ref(value: str, prefix: str = "") -> str:
    """A ≤20-character reference for Authorize.Net fields (refId, invoiceNumber).

    Short plain values are kept readable; anything longer is a digest, so two keys
    never share a reference by truncation.
    """
    room = 20 - len(prefix)
    if len(value) <= room and re.fullmatch(r"[A-Za-z0-9_-]+", value):
        return prefix + value
    return prefix + hashlib.sha256(value.encode()).hexdigest()[:room]


def _tag(idempotency_key: str) -> str:
    """The attempt tag written into the order description (details return it)."""
    return f"[recon {short_ref(idempotency_key)}]"


class VantageProcessor:
    """The Vantage (Authorize.Net gateway) side of :class:`recon.processors.base.Processor`."""

    name = "vantage"

    def __init__(self, settings: VantageSettings, *, transport: Transport | None = None) -> None:
        self._settings = settings
        self._transport = transport or self._post

    def __repr__(self) -> str:
        return f"VantageProcessor(api_url={self._settings.api_url!r})"

    # -- HTTP -------------------------------------------------------------------------
    def _post(self, body: bytes) -> bytes:
        req = urllib.request.Request(
            self._settings.api_url, data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(req, timeout=self._settings.timeout) as resp:
            data: bytes = resp.read()
        return data

    def _call(self, request: str, body: dict[str, Any]) -> dict[str, Any]:
        auth = {
            "name": self._settings.api_login_id,
            "transactionKey": self._settings.transaction_key.reveal(),
        }
        payload = json.dumps({request: {"merchantAuthentication": auth, **body}}).encode()
        try:
            raw = self._transport(payload)
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            raise OutcomeUnknown(
                "No answer from the Vantage gateway (Authorize.Net); the request may or may "
                "not have gone through. Retry it: recon checks the gateway before charging again."
            ) from exc
        try:
            answer = json.loads(raw.decode("utf-8-sig"), parse_float=Decimal)
        except (UnicodeDecodeError, ValueError) as exc:
            raise OutcomeUnknown("The Vantage gateway sent an answer recon cannot read.") from exc
        if not isinstance(answer, dict):
            raise OutcomeUnknown("The Vantage gateway sent an answer recon cannot read.")
        return answer

    # -- charge -----------------------------------------------------------------------
    def charge(
        self,
        *,
        token: str,
        amount: Decimal,
        idempotency_key: str,
        recon_payment_id: str,
        metadata: dict[str, str],
        description: str,
    ) -> ChargeResult:
        to_cents(amount)  # refuses fractions of a cent and non-positive amounts
        fields = {**metadata, RECON_PAYMENT_ID: recon_payment_id}
        # Key order follows the gateway's schema: its JSON is validated as XML.
        request = {
            "transactionType": "authCaptureTransaction",
            "amount": f"{amount:.2f}",
            "payment": {"opaqueData": {"dataDescriptor": DESCRIPTOR, "dataValue": token}},
            "order": {
                "invoiceNumber": short_ref(recon_payment_id),
                "description": f"{description[:200]} {_tag(idempotency_key)}",
            },
            "transactionSettings": {
                "setting": [
                    {
                        "settingName": "duplicateWindow",
                        "settingValue": str(self._settings.duplicate_window),
                    }
                ]
            },
            "userFields": {
                "userField": [{"name": k[:20], "value": str(v)[:255]} for k, v in fields.items()][
                    :20
                ]
            },
        }
        answer = self._call(
            "createTransactionRequest",
            {"refId": short_ref(idempotency_key), "transactionRequest": request},
        )
        tr = answer.get("transactionResponse")
        if not isinstance(tr, dict) or not tr.get("responseCode"):
            raise ProcessorError(f"The Vantage gateway refused the charge: {_messages(answer)}")
        code = str(tr["responseCode"])
        errors = tr.get("errors") or [{}]
        if code == "3" and str(errors[0].get("errorCode")) == DUPLICATE:
            earlier = self._find(recon_payment_id, None, amount)
            if earlier is not None:
                return earlier
        brand, last4 = _card(tr.get("accountType"), tr.get("accountNumber"))
        base: dict[str, Any] = {
            "processor": "vantage",
            "processor_ref": str(tr.get("transId") or "") or None,
            "amount": amount,
            "brand": brand,
            "last4": last4,
        }
        if code == "1":
            return ChargeResult(status="succeeded", **base)
        if code == "4":
            raise OutcomeUnknown(
                f"The charge (transaction {tr.get('transId')}) is held for review by the "
                "gateway's fraud filters. Approve or decline it in the Authorize.Net account, "
                "then retry here."
            )
        status = "declined" if code == "2" else "error"
        if base["processor_ref"] == "0":
            base["processor_ref"] = None
        return ChargeResult(
            status=status,
            decline_code=str(errors[0].get("errorCode") or "") or None,
            reason=str(errors[0].get("errorText") or _messages(answer)),
            **base,
        )

    # -- retry lookup -------------------------------------------------------------------
    def find_charge(self, idempotency_key: str, recon_payment_id: str) -> ChargeResult | None:
        return self._find(recon_payment_id, idempotency_key, None)

    def _find(
        self, recon_payment_id: str, idempotency_key: str | None, amount: Decimal | None
    ) -> ChargeResult | None:
        """The earlier charge for this payment (this attempt, if a key is given).

        Looks in the unsettled list (today's batch), which is where a retry's
        earlier transaction is; a settled one would have been resolved long before.
        """
        invoice = short_ref(recon_payment_id)
        found = []
        for item in self._unsettled():
            if item.get("invoiceNumber") != invoice:
                continue
            detail = self._details(str(item["transId"]))
            if detail.get("transactionType") != "authCaptureTransaction":
                continue
            described = str((detail.get("order") or {}).get("description", ""))
            if idempotency_key is not None and not described.endswith(_tag(idempotency_key)):
                continue
            if amount is not None and _money(detail.get("authAmount")) != amount:
                continue
            found.append(detail)
        if not found:
            return None
        found.sort(key=lambda d: d.get("transactionStatus") not in CHARGED)
        return _from_details(found[0])

    def _unsettled(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            answer = self._call(
                "getUnsettledTransactionListRequest",
                {
                    "sorting": {"orderBy": "submitTimeUTC", "orderDescending": True},
                    "paging": {"limit": 1000, "offset": page},
                },
            )
            if _result(answer) != "Ok":
                raise OutcomeUnknown(
                    f"The Vantage gateway did not list today's transactions: {_messages(answer)}"
                )
            batch = answer.get("transactions") or []
            items.extend(batch)
            if len(batch) < 1000:
                return items
            page += 1

    def _details(self, trans_id: str) -> dict[str, Any]:
        answer = self._call("getTransactionDetailsRequest", {"transId": trans_id})
        detail = answer.get("transaction")
        if _result(answer) != "Ok" or not isinstance(detail, dict):
            raise ProcessorError(
                f"The Vantage gateway has no transaction {trans_id}: {_messages(answer)}"
            )
        return detail

    # -- refund -------------------------------------------------------------------------
    def refund(self, processor_ref: str, amount: Decimal, idempotency_key: str) -> RefundResult:
        to_cents(amount)
        original = self._details(processor_ref)
        status = original.get("transactionStatus")
        charged = _money(original.get("authAmount"))
        if status == "voided":
            # Voided by an earlier call whose answer was lost: the money never moved.
            return RefundResult(
                "succeeded",
                "vantage",
                processor_ref,
                processor_ref,
                charged,
                reason="voided before settlement",
            )
        if status == "capturedPendingSettlement":
            if amount != charged:
                raise ProcessorError(
                    f"Transaction {processor_ref} has not settled yet, so it can only be voided "
                    f"in full ({charged}); refund part of it after it settles (usually next day)."
                )
            return self._void(processor_ref, charged)
        if status != "settledSuccessfully":
            raise ProcessorError(f"Transaction {processor_ref} is {status}; it cannot be refunded.")
        earlier = self._earlier_refund(original, processor_ref, idempotency_key)
        if earlier is not None:
            return earlier
        last4 = str(((original.get("payment") or {}).get("creditCard") or {}).get("cardNumber"))
        order = original.get("order") or {}
        request = {
            "transactionType": "refundTransaction",
            "amount": f"{amount:.2f}",
            "payment": {"creditCard": {"cardNumber": last4[-4:], "expirationDate": "XXXX"}},
            "refTransId": processor_ref,
            "order": {
                "invoiceNumber": order.get("invoiceNumber", ""),
                "description": f"Refund {_tag(idempotency_key)}",
            },
        }
        tr = self._transaction(request, idempotency_key, "refund")
        return RefundResult("succeeded", "vantage", str(tr["transId"]), processor_ref, amount)

    def _void(self, processor_ref: str, amount: Decimal) -> RefundResult:
        request = {"transactionType": "voidTransaction", "refTransId": processor_ref}
        self._transaction(request, None, "void")
        return RefundResult(
            "succeeded",
            "vantage",
            processor_ref,
            processor_ref,
            amount,
            reason="voided before settlement",
        )

    def _transaction(
        self, request: dict[str, Any], idempotency_key: str | None, what: str
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"transactionRequest": request}
        if idempotency_key:
            body = {"refId": short_ref(idempotency_key), **body}
        answer = self._call("createTransactionRequest", body)
        tr = answer.get("transactionResponse")
        if isinstance(tr, dict) and str(tr.get("responseCode")) == "1":
            return tr
        errors = (tr.get("errors") if isinstance(tr, dict) else None) or [{}]
        reason = errors[0].get("errorText") or _messages(answer)
        raise ProcessorError(f"The Vantage gateway refused the {what}: {reason}")

    def _earlier_refund(
        self, original: dict[str, Any], processor_ref: str, idempotency_key: str
    ) -> RefundResult | None:
        invoice = (original.get("order") or {}).get("invoiceNumber")
        for item in self._unsettled():
            if item.get("invoiceNumber") != invoice:
                continue
            detail = self._details(str(item["transId"]))
            described = str((detail.get("order") or {}).get("description", ""))
            if (
                detail.get("transactionType") == "refundTransaction"
                and str(detail.get("refTransId")) == processor_ref
                and described.endswith(_tag(idempotency_key))
            ):
                return RefundResult(
                    "succeeded",
                    "vantage",
                    str(detail["transId"]),
                    processor_ref,
                    _money(detail.get("authAmount")),
                )
        return None

    def browser_config(self) -> dict[str, Any]:
        return {
            "processor": "vantage",
            "api_login_id": self._settings.api_login_id,
            "client_key": self._settings.client_key,
            "script_url": self._settings.accept_js_url,
            "data_descriptor": DESCRIPTOR,
            "fields": list(FORM_FIELDS),
            "submit_label": "Save",
        }


def _from_details(detail: dict[str, Any]) -> ChargeResult:
    status = str(detail.get("transactionStatus"))
    card = (detail.get("payment") or {}).get("creditCard") or {}
    brand, last4 = _card(card.get("cardType"), card.get("cardNumber"))
    base: dict[str, Any] = {
        "processor": "vantage",
        "processor_ref": str(detail["transId"]),
        "amount": _money(detail.get("authAmount")),
        "brand": brand,
        "last4": last4,
    }
    if status in CHARGED:
        return ChargeResult(status="succeeded", **base)
    if status in HELD:
        raise OutcomeUnknown(
            f"Transaction {detail['transId']} is held for review by the gateway's fraud "
            "filters. Approve or decline it in the Authorize.Net account, then retry here."
        )
    reason = str(detail.get("responseReasonDescription") or status)
    code = str(detail.get("responseReasonCode") or "") or None
    if status == "declined":
        return ChargeResult(status="declined", decline_code=code, reason=reason, **base)
    return ChargeResult(status="error", decline_code=code, reason=f"{reason} ({status})", **base)


def _card(account_type: Any, account_number: Any) -> tuple[str | None, str | None]:
    brand = BRANDS.get(str(account_type), str(account_type).lower()) if account_type else None
    digits = re.sub(r"\D", "", str(account_number or ""))
    return brand, (digits[-4:] if len(digits) >= 4 else None)


def _money(value: Any) -> Decimal:
    """A gateway amount (parsed as Decimal, or text) as exact two-place money."""
    return Decimal(str(value)).quantize(CENT)


def _result(answer: dict[str, Any]) -> str:
    return str((answer.get("messages") or {}).get("resultCode", ""))


def _messages(answer: dict[str, Any]) -> str:
    messages = (answer.get("messages") or {}).get("message") or []
    return "; ".join(f"{m.get('text')} ({m.get('code')})" for m in messages) or "no reason given"
