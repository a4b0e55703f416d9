"""TEST DOUBLE of the Authorize.Net JSON API (the gateway behind Vantage) on loopback.

This is not Authorize.Net. It follows the public Authorize.Net API reference and
testing guide for exactly the calls recon's Vantage adapter uses, so the adapter's
real HTTP/JSON code can be tested offline:

* ``POST /xml/v1/request.api`` (the API endpoint), JSON bodies, answers that start
  with a UTF-8 BOM as the real gateway's do:
    - ``createTransactionRequest``: ``authCaptureTransaction`` paid with Accept.js
      ``opaqueData``; ``refundTransaction`` (``refTransId`` + the card's last 4;
      only for a settled charge, else reason 54; over the amount left, reason 55);
      ``voidTransaction`` (an unsettled transaction).
    - ``getTransactionDetailsRequest`` and ``getUnsettledTransactionListRequest``.
    - ``securePaymentContainerRequest``: the Accept.js tokenizer. The card stays
      in this server; the caller gets single-use ``opaqueData`` (15 minutes).
* The duplicate window: a transaction of the same type, card, expiry, amount,
  invoice number and zip within ``duplicateWindow`` seconds (default 120, at most
  28800) is refused with reason 11, "A duplicate transaction has been submitted."
  The check runs before the single-use token is spent, so a retried request meets
  it even though its token was already used.
* Sandbox test triggers: billing zip 46282 declines (response code 2, reason 2);
  card 4222222222222 turns the dollar amount into the reason code (2, 3, 4, 27,
  44, 45, 65 decline; 252 and 253 are held for review, response code 4).
* ``GET /v1/Accept.js``: a stand-in Accept.js whose ``Accept.dispatchData(secureData,
  callback)`` posts the card to this server's tokenizer and calls back with
  ``opaqueData`` — only the token reaches Python.
* Test controls, not part of the API: ``POST /_test/settle`` closes the batch
  (unsettled → settled), ``DELETE /_test/data`` forgets everything.

Credentials: API login id ``recon-test-login``, transaction key
``recon-test-transaction-key``, client key ``recon-test-client-key`` (overridable).

    python -m tests.peers.authnet_server --port 0   # prints the URL it listens on
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LOGIN = "recon-test-login"
TRANSACTION_KEY = "recon-test-transaction-key"
CLIENT_KEY = "recon-test-client-key"
DESCRIPTOR = "COMMON.ACCEPT.INAPP.PAYMENT"
TOKEN_TTL = 15 * 60
DECLINE_ZIP = "46282"
ERROR_CARD = "4222222222222"
HELD_CODES = {252, 253}
DECLINE_TEXT = {
    2: "This transaction has been declined.",
    3: "This transaction has been declined.",
    4: "This transaction has been declined.",
    27: "The transaction has been declined because of an AVS mismatch.",
    44: "This transaction has been declined.",
    45: "This transaction has been declined.",
    65: "This transaction has been declined.",
}
# The stand-in Accept.js: same entry point and callback shape as the real library,
# posting to this double's tokenizer (found from the script's own URL).
ACCEPT_JS = r"""/* Stand-in Accept.js of recon's Authorize.Net TEST DOUBLE (not Authorize.Net). */
(function () {
  var script = document.currentScript;
  var base = script && script.src ? new URL(script.src).origin : window.location.origin;
  function error(code, text) {
    return {messages: {resultCode: "Error", message: [{code: code, text: text}]}};
  }
  window.Accept = {
    baseUrl: base,
    dispatchData: function (secureData, callback) {
      var auth = (secureData && secureData.authData) || {};
      var card = (secureData && secureData.cardData) || {};
      if (!auth.clientKey || !auth.apiLoginID) {
        callback(error("E_WC_10", "Please provide valid apiloginid and clientKey."));
        return;
      }
      var year = String(card.year || "");
      var body = {securePaymentContainerRequest: {
        merchantAuthentication: {name: auth.apiLoginID, clientKey: auth.clientKey},
        refId: "",
        data: {type: "TOKEN", id: String(Date.now()), token: {
          cardNumber: String(card.cardNumber || "").replace(/\s+/g, ""),
          expirationDate: String(card.month || "") + year.slice(-2),
          cardCode: String(card.cardCode || ""),
          zip: String(card.zip || ""),
          fullName: String(card.fullName || "")
        }}
      }};
      fetch(window.Accept.baseUrl + "/xml/v1/request.api", {
        method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)
      }).then(function (r) { return r.text(); })
        .then(function (text) { callback(JSON.parse(text.replace(/^\uFEFF/, ""))); })
        .catch(function () { callback(error("E_WC_14", "Accept.js encryption failed.")); });
    }
  };
})();
"""


@dataclass
class Card:
    number: str
    expiration: str  # MMYY
    code: str
    zip: str
    name: str


@dataclass
class Token:
    card: Card
    created: float
    used: bool = False


@dataclass
class Txn:
    trans_id: str
    type: str
    status: str
    response_code: int
    reason_code: int
    reason: str
    amount: Decimal
    card: Card
    submitted: float
    invoice: str = ""
    description: str = ""
    auth_code: str = ""
    ref_trans_id: str = ""
    window: int = 120
    refunded: Decimal = Decimal("0.00")
    settled: bool = False
    user_fields: list[dict[str, str]] = field(default_factory=list)


def brand(number: str) -> str:
    if number.startswith("4"):
        return "Visa"
    if re.match(r"5[1-5]|2[2-7]", number):
        return "MasterCard"
    if re.match(r"3[47]", number):
        return "AmericanExpress"
    if re.match(r"6011|65", number):
        return "Discover"
    if number.startswith("35"):
        return "JCB"
    if re.match(r"3[068]", number):
        return "DinersClub"
    return "Unknown"


def luhn_ok(number: str) -> bool:
    digits = [int(d) for d in number][::-1]
    total = sum(digits[0::2]) + sum(sum(divmod(2 * d, 10)) for d in digits[1::2])
    return total % 10 == 0


def ok(**body: Any) -> dict[str, Any]:
    return {
        **body,
        "messages": {"resultCode": "Ok", "message": [{"code": "I00001", "text": "Successful."}]},
    }


def fail(code: str, text: str, **body: Any) -> dict[str, Any]:
    return {**body, "messages": {"resultCode": "Error", "message": [{"code": code, "text": text}]}}


class Gateway:
    """The double's state and the behaviour of each API call."""

    def __init__(
        self, login: str = LOGIN, key: str = TRANSACTION_KEY, client_key: str = CLIENT_KEY
    ) -> None:
        self.login, self.key, self.client_key = login, key, client_key
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.tokens: dict[str, Token] = {}
        self.txns: dict[str, Txn] = {}
        self.next_id = 60000000001

    def settle(self) -> int:
        """Close the batch: what was unsettled settles (and leaves the unsettled list)."""
        moved = {
            "capturedPendingSettlement": "settledSuccessfully",
            "refundPendingSettlement": "refundSettledSuccessfully",
        }
        pending = [t for t in self.txns.values() if not t.settled]
        for t in pending:
            t.status = moved.get(t.status, t.status)
            t.settled = True
        return len(pending)

    # -- dispatch --------------------------------------------------------------------
    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        if len(request) != 1:
            return fail("E00003", "The request body must hold exactly one request.")
        name, body = next(iter(request.items()))
        handler = getattr(self, "do_" + name, None)
        if handler is None or not isinstance(body, dict):
            return fail("E00045", f"The root node does not reference a valid XML namespace: {name}")
        auth = body.get("merchantAuthentication") or {}
        refid = {"refId": body["refId"]} if "refId" in body else {}
        if len(str(body.get("refId", ""))) > 20:
            return fail("E00003", "The 'refId' element is invalid: longer than 20 characters.")
        if name == "securePaymentContainerRequest":
            if auth.get("name") != self.login or auth.get("clientKey") != self.client_key:
                return fail(
                    "E_WC_21",
                    "User authentication failed due to invalid authentication values.",
                    **refid,
                )
        elif auth.get("name") != self.login or auth.get("transactionKey") != self.key:
            return fail(
                "E00007",
                "User authentication failed due to invalid authentication values.",
                **refid,
            )
        with self.lock:
            return {**handler(body), **refid}

    # -- Accept.js tokenizer -----------------------------------------------------------
    def do_securePaymentContainerRequest(self, body: dict[str, Any]) -> dict[str, Any]:
        token = ((body.get("data") or {}).get("token")) or {}
        number = re.sub(r"\D", "", str(token.get("cardNumber", "")))
        exp = re.sub(r"\D", "", str(token.get("expirationDate", "")))
        code = str(token.get("cardCode", ""))
        if not (13 <= len(number) <= 16 and luhn_ok(number)):
            return fail("E_WC_05", "Please provide valid credit card number.")
        if len(exp) not in (4, 6) or not 1 <= int(exp[:2]) <= 12:
            return fail("E_WC_06", "Please provide valid expiration month.")
        year = int(exp[2:]) + (2000 if len(exp) == 4 else 0)
        if (year, int(exp[:2])) < (datetime.now(UTC).year, datetime.now(UTC).month):
            return fail("E_WC_08", "Expiration date must be in the future.")
        if code and not re.fullmatch(r"\d{3,4}", code):
            return fail("E_WC_15", "Please provide valid CVV.")
        zip_code = str(token.get("zip", ""))
        if len(zip_code) > 20:
            return fail("E_WC_16", "Please provide valid Postal Code.")
        value = "eyJ0ZXN0IjoiZG91YmxlIn0." + secrets.token_urlsafe(24)
        card = Card(number, exp[:2] + exp[-2:], code, zip_code, str(token.get("fullName", "")))
        self.tokens[value] = Token(card, time.time())
        return ok(
            opaqueData={
                "dataDescriptor": DESCRIPTOR,
                "dataValue": value,
                "dataKey": secrets.token_urlsafe(16),
            }
        )

    # -- transactions ------------------------------------------------------------------
    def do_createTransactionRequest(self, body: dict[str, Any]) -> dict[str, Any]:
        req = body.get("transactionRequest") or {}
        kind = req.get("transactionType")
        if kind == "authCaptureTransaction":
            return self._auth_capture(req)
        if kind == "refundTransaction":
            return self._refund(req)
        if kind == "voidTransaction":
            return self._void(req)
        return fail("E00003", f"The transactionType {kind!r} is not supported by this double.")

    def _new_id(self) -> str:
        self.next_id += 1
        return str(self.next_id)

    def _settings(self, req: dict[str, Any]) -> int:
        settings = (req.get("transactionSettings") or {}).get("setting") or []
        if isinstance(settings, dict):
            settings = [settings]
        for s in settings:
            if s.get("settingName") == "duplicateWindow":
                return max(0, min(int(s.get("settingValue", 120)), 28800))
        return 120

    def _duplicate(self, kind: str, card: Card, amount: Decimal, invoice: str) -> Txn | None:
        now = time.time()
        wanted = (kind, card.number, card.expiration, amount, invoice, card.zip)
        for t in reversed(list(self.txns.values())):
            seen = (t.type, t.card.number, t.card.expiration, t.amount, t.invoice, t.card.zip)
            if seen == wanted and now - t.submitted < t.window:
                return t
        return None

    def _auth_capture(self, req: dict[str, Any]) -> dict[str, Any]:
        amount = _amount(req.get("amount"))
        if amount is None:
            return _txn_error("5", "A valid amount is required.")
        opaque = (req.get("payment") or {}).get("opaqueData") or {}
        token = self.tokens.get(str(opaque.get("dataValue", "")))
        if opaque.get("dataDescriptor") != DESCRIPTOR or token is None:
            return fail("E00114", "Invalid OTS Token.")
        order = req.get("order") or {}
        invoice = str(order.get("invoiceNumber", ""))
        if len(invoice) > 20:
            return fail("E00003", "The 'invoiceNumber' element is invalid: longer than 20.")
        card = Card(**vars(token.card))
        bill_zip = (req.get("billTo") or {}).get("zip")
        if bill_zip:
            card.zip = str(bill_zip)
        window = self._settings(req)
        if self._duplicate("authCaptureTransaction", card, amount, invoice):
            return _txn_error("11", "A duplicate transaction has been submitted.", card=card)
        if token.used or time.time() - token.created > TOKEN_TTL:
            return fail("E00114", "Invalid OTS Token.")
        token.used = True
        code, reason_code, reason = 1, 1, "This transaction has been approved."
        if card.zip == DECLINE_ZIP:
            code, reason_code, reason = 2, 2, DECLINE_TEXT[2]
        elif card.number == ERROR_CARD and amount == amount.to_integral_value():
            trigger = int(amount)
            if trigger in DECLINE_TEXT:
                code, reason_code, reason = 2, trigger, DECLINE_TEXT[trigger]
            elif trigger in HELD_CODES:
                code, reason_code = 4, trigger
                reason = "Your order has been received. Thank you for your business!"
        status = {1: "capturedPendingSettlement", 2: "declined", 4: "FDSPendingReview"}[code]
        fields = (req.get("userFields") or {}).get("userField") or []
        txn = Txn(
            self._new_id(),
            "authCaptureTransaction",
            status,
            code,
            reason_code,
            reason,
            amount,
            card,
            time.time(),
            invoice,
            str(order.get("description", "")),
            secrets.token_hex(3).upper() if code == 1 else "",
            window=window,
            user_fields=fields if isinstance(fields, list) else [fields],
        )
        self.txns[txn.trans_id] = txn
        return self._answer(txn)

    def _answer(self, txn: Txn) -> dict[str, Any]:
        tr: dict[str, Any] = {
            "responseCode": str(txn.response_code),
            "authCode": txn.auth_code,
            "avsResultCode": "Y" if txn.response_code == 1 else "N",
            "cvvResultCode": "M" if txn.card.code else "",
            "cavvResultCode": "",
            "transId": txn.trans_id,
            "refTransID": txn.ref_trans_id,
            "transHash": "",
            "testRequest": "0",
            "accountNumber": "XXXX" + txn.card.number[-4:],
            "accountType": brand(txn.card.number),
            "transHashSha2": "",
        }
        if txn.response_code in (1, 4):
            tr["messages"] = [{"code": str(txn.reason_code), "description": txn.reason}]
            return ok(transactionResponse=tr)
        tr["errors"] = [{"errorCode": str(txn.reason_code), "errorText": txn.reason}]
        return fail("E00027", "The transaction was unsuccessful.", transactionResponse=tr)

    def _refund(self, req: dict[str, Any]) -> dict[str, Any]:
        amount = _amount(req.get("amount"))
        if amount is None:
            return _txn_error("5", "A valid amount is required.")
        orig = self.txns.get(str(req.get("refTransId", "")))
        last4 = str(((req.get("payment") or {}).get("creditCard") or {}).get("cardNumber", ""))
        criteria = "The referenced transaction does not meet the criteria for issuing a credit."
        if (
            orig is None
            or orig.type != "authCaptureTransaction"
            or orig.status != "settledSuccessfully"
            or orig.card.number[-4:] != last4[-4:]
        ):
            return _txn_error("54", criteria)
        invoice = str((req.get("order") or {}).get("invoiceNumber", ""))
        if self._duplicate("refundTransaction", orig.card, amount, invoice):
            return _txn_error("11", "A duplicate transaction has been submitted.", card=orig.card)
        if orig.refunded + amount > orig.amount:
            return _txn_error(
                "55",
                "The sum of credits against the referenced transaction would"
                " exceed original debit amount.",
            )
        orig.refunded += amount
        txn = Txn(
            self._new_id(),
            "refundTransaction",
            "refundPendingSettlement",
            1,
            1,
            "This transaction has been approved.",
            amount,
            orig.card,
            time.time(),
            invoice,
            str((req.get("order") or {}).get("description", "")),
            ref_trans_id=orig.trans_id,
            window=self._settings(req),
        )
        self.txns[txn.trans_id] = txn
        return self._answer(txn)

    def _void(self, req: dict[str, Any]) -> dict[str, Any]:
        orig = self.txns.get(str(req.get("refTransId", "")))
        if orig is None:
            return _txn_error("16", "The transaction cannot be found.")
        if orig.status == "voided":
            return _txn_error("310", "This transaction has already been voided.")
        if orig.status not in (
            "capturedPendingSettlement",
            "refundPendingSettlement",
            "FDSPendingReview",
        ):
            # The public reference names no dedicated reason for voiding a settled
            # transaction; the double answers "cannot be found" (16), as for a bad id.
            return _txn_error("16", "The transaction cannot be found.")
        orig.status = "voided"
        answer = self._answer(orig)
        answer["transactionResponse"]["refTransID"] = orig.trans_id
        answer["transactionResponse"]["messages"] = [
            {"code": "1", "description": "This transaction has been approved."}
        ]
        return answer

    # -- reporting ----------------------------------------------------------------------
    def do_getTransactionDetailsRequest(self, body: dict[str, Any]) -> dict[str, Any]:
        txn = self.txns.get(str(body.get("transId", "")))
        if txn is None:
            return fail("E00040", "The record cannot be found.")
        detail: dict[str, Any] = {
            "transId": txn.trans_id,
            "submitTimeUTC": _utc(txn.submitted),
            "submitTimeLocal": _utc(txn.submitted)[:-1],
            "transactionType": txn.type,
            "transactionStatus": txn.status,
            "responseCode": txn.response_code,
            "responseReasonCode": txn.reason_code,
            "responseReasonDescription": txn.reason,
            "authCode": txn.auth_code,
            "AVSResponse": "Y" if txn.response_code == 1 else "N",
            "order": {"invoiceNumber": txn.invoice, "description": txn.description},
            "authAmount": txn.amount,
            "settleAmount": txn.amount if txn.status != "declined" else Decimal("0.00"),
            "payment": {
                "creditCard": {
                    "cardNumber": "XXXX" + txn.card.number[-4:],
                    "expirationDate": "XXXX",
                    "cardType": brand(txn.card.number),
                }
            },
            "recurringBilling": False,
            "product": "Card Not Present",
            "marketType": "eCommerce",
        }
        if txn.ref_trans_id:
            detail["refTransId"] = txn.ref_trans_id
        return ok(transaction=detail)

    def do_getUnsettledTransactionListRequest(self, body: dict[str, Any]) -> dict[str, Any]:
        sorting = body.get("sorting") or {}
        paging = body.get("paging") or {"limit": 1000, "offset": 1}
        limit, page = int(paging.get("limit", 1000)), int(paging.get("offset", 1))
        if not (1 <= limit <= 1000 and page >= 1):
            return fail("E00003", "The paging limit must be 1-1000 and the offset at least 1.")
        items = [t for t in self.txns.values() if not t.settled]
        descending = str(sorting.get("orderDescending", "false")).lower() == "true"
        items.sort(key=lambda t: (t.submitted, int(t.trans_id)), reverse=descending)
        total = len(items)
        items = items[(page - 1) * limit : page * limit]
        if not items:
            return {
                "totalNumInResultSet": total,
                "messages": {
                    "resultCode": "Ok",
                    "message": [{"code": "I00004", "text": "No records found."}],
                },
            }
        return ok(
            transactions=[
                {
                    "transId": t.trans_id,
                    "submitTimeUTC": _utc(t.submitted),
                    "submitTimeLocal": _utc(t.submitted)[:-1],
                    "transactionStatus": t.status,
                    "invoiceNumber": t.invoice,
                    "accountType": brand(t.card.number),
                    "accountNumber": "XXXX" + t.card.number[-4:],
                    "settleAmount": t.amount,
                    "marketType": "eCommerce",
                    "product": "Card Not Present",
                }
                for t in items
            ],
            totalNumInResultSet=total,
        )


def _amount(value: Any) -> Decimal | None:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        return None
    return amount.quantize(Decimal("0.01"))


def _txn_error(code: str, text: str, card: Card | None = None) -> dict[str, Any]:
    tr = {
        "responseCode": "3",
        "authCode": "",
        "transId": "0",
        "refTransID": "",
        "accountNumber": "XXXX" + card.number[-4:] if card else "",
        "accountType": brand(card.number) if card else "",
        "errors": [{"errorCode": code, "errorText": text}],
    }
    return fail("E00027", "The transaction was unsuccessful.", transactionResponse=tr)


def _utc(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _dumps(obj: Any) -> str:
    """JSON with exact decimal numbers (amounts are numbers in the reporting API)."""

    def mark(o: Any) -> Any:
        if isinstance(o, Decimal):
            return f"__decimal__{o:.2f}__"
        raise TypeError(type(o).__name__)

    return re.sub(r'"__decimal__(-?[0-9.]+)__"', r"\1", json.dumps(obj, default=mark))


class Handler(BaseHTTPRequestHandler):
    gateway: Gateway
    server_version = "AuthorizeNetTestDouble/1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: request bodies may hold test card numbers

    def _send(self, status: int, text: str, ctype: str = "application/json") -> None:
        data = ("\ufeff" + text if ctype == "application/json" else text).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", f"{ctype}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Headers", "Content-Type")
        self.send_header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
        self.end_headers()
        self.wfile.write(data)

    def do_OPTIONS(self) -> None:
        self._send(204, "", "text/plain")

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/v1/Accept.js":
            self._send(200, ACCEPT_JS, "application/javascript")
        else:
            self._send(404, _dumps(fail("E00001", "Not found.")))

    def do_DELETE(self) -> None:
        if self.path == "/_test/data":
            with self.gateway.lock:
                self.gateway.reset()
            self._send(200, "{}")
        else:
            self._send(404, "{}")

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/_test/settle":
            with self.gateway.lock:
                n = self.gateway.settle()
            self._send(200, json.dumps({"settled": n}))
            return
        if self.path != "/xml/v1/request.api":
            self._send(404, _dumps(fail("E00001", "Not found.")))
            return
        try:
            request = json.loads(raw.decode("utf-8-sig"), parse_float=Decimal)
            answer = (
                self.gateway.handle(request)
                if isinstance(request, dict)
                else fail("E00003", "The request is not a JSON object.")
            )
        except (ValueError, UnicodeDecodeError):
            answer = fail("E00003", "The request could not be parsed as JSON.")
        self._send(200, _dumps(answer))


def serve(port: int = 0, gateway: Gateway | None = None) -> ThreadingHTTPServer:
    """A bound (not yet serving) double on 127.0.0.1; ``server_address[1]`` is its port."""
    handler = type("BoundHandler", (Handler,), {"gateway": gateway or Gateway()})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    return server


def start_in_thread(port: int = 0) -> tuple[ThreadingHTTPServer, str]:
    """Start the double in a daemon thread; returns the server and its base URL."""
    server = serve(port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Authorize.Net API test double (loopback)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    server = serve(args.port)
    print(f"authnet double listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
