"""A local HTTP fake of the Stripe endpoints ``StripeProvider`` calls.

It speaks Stripe's wire format: form-encoded request bodies with bracketed keys, JSON
objects with ``object``/``id``/``livemode``, errors as ``{"error": {type, code, message}}``
with Stripe's HTTP statuses, ``Idempotency-Key`` replays, and ``Stripe-Account`` for calls
made as a connected account. It keeps balances, so transfers and payouts fail the way
Stripe's do when the money is not there. Webhooks are signed with the SDK's own helper.

Use the ``fake_stripe`` fixture (import it into a test module) and point the provider at
``fake_stripe.url``.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe

API_VERSION = "2026-10-28.endive"
SECRET_KEY = "sk_test_fake"
WEBHOOK_SECRET = "whsec_fake"
# What the fake keeps of each payment as Stripe's fee: 1.4% + 1.00 in minor units.
FEE_BPS = 140
FEE_FIXED = 100
COUNTRY_CURRENCIES = {"RO": "ron", "IL": "ils"}
# The collections the fake can retrieve from, and the object type each holds.
COLLECTIONS = {
    "checkout/sessions": "checkout.session",
    "payment_intents": "payment_intent",
    "refunds": "refund",
    "transfers": "transfer",
    "payouts": "payout",
    "accounts": "account",
}
ONBOARDING_REQUIREMENTS = ["external_account", "individual.dob.day", "tos_acceptance.date"]


class StripeFailure(Exception):
    """An error answer in Stripe's shape."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"type": error_type, "message": message}
        if code:
            self.body["code"] = code
        if param:
            self.body["param"] = param


def _missing(kind: str, ref: str, param: str | None = None) -> StripeFailure:
    return StripeFailure(
        404,
        "invalid_request_error",
        f"No such {kind}: '{ref}'",
        code="resource_missing",
        param=param,
    )


def _invalid(message: str, *, code: str | None = None, param: str | None = None) -> StripeFailure:
    return StripeFailure(400, "invalid_request_error", message, code=code, param=param)


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's bracketed form keys (``a[b][0][c]=v``) as nested dicts and lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    decoded: dict[str, Any] = _lists(root)
    return decoded


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    converted = {key: _lists(value) for key, value in node.items()}
    if converted and all(key.isdigit() for key in converted):
        return [converted[key] for key in sorted(converted, key=int)]
    return converted


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]


@dataclass
class FakeStripe:
    """The fake's state; every stored object is the JSON Stripe would return."""

    url: str = ""
    secret_key: str = SECRET_KEY
    webhook_secret: str = WEBHOOK_SECRET
    objects: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Which account owns an object made as a connected account (payouts).
    owners: dict[str, str] = field(default_factory=dict)
    requests: list[RecordedRequest] = field(default_factory=list)
    # Objects really created, by Stripe object type; idempotent replays do not count.
    created: Counter[str] = field(default_factory=Counter)
    # Available balance in minor units, by (account or "platform", currency).
    balances: Counter[tuple[str, str]] = field(default_factory=Counter)
    _idempotent: dict[tuple[str, str], tuple[str, dict[str, Any], int, bytes]] = field(
        default_factory=dict
    )
    _session_intent_data: dict[str, dict[str, Any]] = field(default_factory=dict)
    _failures: list[tuple[str, StripeFailure]] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # -- test controls -------------------------------------------------------------------

    def fail_next(
        self,
        path: str,
        status: int = 402,
        error_type: str = "card_error",
        code: str = "card_declined",
        message: str = "Your card was declined.",
    ) -> None:
        """Answer the next request whose path starts with ``path`` with this error."""
        with self._lock:
            self._failures.append((path, StripeFailure(status, error_type, message, code=code)))

    def calls(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def complete_checkout(
        self, session_id: str, *, payment_method: str = "card", capture: bool = True
    ) -> dict[str, Any]:
        """The payer pays: Stripe creates the PaymentIntent and charge behind the session."""
        with self._lock:
            session = self.objects[session_id]
            intent_data = self._session_intent_data[session_id]
            amount = int(session["amount_total"])
            currency = session["currency"]
            captured = capture and intent_data.get("capture_method", "automatic") != "manual"
            intent = self._store(
                "pi",
                {
                    "object": "payment_intent",
                    "amount": amount,
                    "amount_capturable": 0 if captured else amount,
                    "amount_received": amount if captured else 0,
                    "capture_method": "automatic" if captured else "manual",
                    "currency": currency,
                    "description": intent_data.get("description"),
                    "last_payment_error": None,
                    "latest_charge": None,
                    "metadata": dict(intent_data.get("metadata") or {}),
                    "payment_method": self._new_id("pm"),
                    "payment_method_types": [payment_method],
                    "status": "succeeded" if captured else "requires_capture",
                    "transfer_group": intent_data.get("transfer_group"),
                },
            )
            charge = self._store(
                "ch",
                {
                    "object": "charge",
                    "amount": amount,
                    "amount_captured": amount if captured else 0,
                    "amount_refunded": 0,
                    "balance_transaction": None,
                    "captured": captured,
                    "currency": currency,
                    "metadata": dict(intent["metadata"]),
                    "paid": True,
                    "payment_intent": intent["id"],
                    "payment_method_details": {"type": payment_method},
                    "refunded": False,
                    "status": "succeeded",
                    "transfer_group": intent["transfer_group"],
                },
            )
            intent["latest_charge"] = charge["id"]
            if captured:
                self._settle_charge(charge)
            session.update(status="complete", payment_status="paid", payment_intent=intent["id"])
            return intent

    def complete_onboarding(self, account_id: str) -> dict[str, Any]:
        """The account holder finishes KYC and adds a bank account."""
        with self._lock:
            account = self.objects[account_id]
            account.update(charges_enabled=True, payouts_enabled=True, details_submitted=True)
            account["capabilities"] = {"transfers": "active"}
            account["requirements"] = _requirements([])
            return account

    def settle_payout(self, payout_id: str, *, paid: bool = True) -> dict[str, Any]:
        """The bank accepts (paid) or returns (failed) a payout."""
        with self._lock:
            payout = self.objects[payout_id]
            if paid:
                payout["status"] = "paid"
            else:
                payout.update(
                    status="failed",
                    failure_code="account_closed",
                    failure_message="The bank account has been closed.",
                )
                self.balances[(self.owners[payout_id], payout["currency"])] += payout["amount"]
            return payout

    # -- webhooks ------------------------------------------------------------------------

    def event(
        self,
        event_type: str,
        obj: dict[str, Any],
        *,
        account: str | None = None,
        created: int | None = None,
    ) -> dict[str, Any]:
        """A snapshot event about ``obj``, as Stripe would post it."""
        event: dict[str, Any] = {
            "id": self._new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": created if created is not None else int(time.time()),
            "data": {"object": json.loads(json.dumps(obj))},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": event_type,
        }
        if account:
            event["account"] = account
        return event

    def sign(
        self, event: dict[str, Any], *, timestamp: int | None = None, secret: str | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The body and ``Stripe-Signature`` header (``t=…,v1=…``) made by the SDK's helper."""
        body = json.dumps(event)
        header = stripe.WebhookSignature.generate_signature_header(
            body, secret or self.webhook_secret, timestamp
        )
        return body.encode(), {"Stripe-Signature": header}

    def signed_event(
        self,
        event_type: str,
        obj: dict[str, Any],
        *,
        account: str | None = None,
        timestamp: int | None = None,
        secret: str | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        return self.sign(
            self.event(event_type, obj, account=account, created=timestamp),
            timestamp=timestamp,
            secret=secret,
        )

    # -- the HTTP surface ----------------------------------------------------------------

    def handle(
        self, method: str, path: str, params: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, bytes, dict[str, str]]:
        """One request, answered as Stripe would: (status, JSON body, extra headers)."""
        with self._lock:
            self.requests.append(RecordedRequest(method, path, params, headers))
            account = headers.get("stripe-account", "")
            key = headers.get("idempotency-key")
            if method == "POST" and key:
                replay = self._idempotent.get((account, key))
                if replay is not None:
                    return self._replay(replay, path, params)
            status, body = self._answer(method, path, params, headers)
            if method == "POST" and key:
                self._idempotent[(account, key)] = (path, params, status, body)
            return status, body, {}

    def _replay(
        self, stored: tuple[str, dict[str, Any], int, bytes], path: str, params: dict[str, Any]
    ) -> tuple[int, bytes, dict[str, str]]:
        first_path, first_params, status, body = stored
        if (first_path, first_params) != (path, params):
            failure = StripeFailure(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters "
                "they were first used with.",
            )
            return failure.status, json.dumps({"error": failure.body}).encode(), {}
        return status, body, {"Idempotent-Replayed": "true"}

    def _answer(
        self, method: str, path: str, params: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, bytes]:
        try:
            self._authenticate(headers)
            self._injected_failure(path)
            obj = self._route(method, path, params, headers.get("stripe-account"))
            return 200, json.dumps(self._expanded(obj, params.get("expand") or [])).encode()
        except StripeFailure as failure:
            return failure.status, json.dumps({"error": failure.body}).encode()

    def _authenticate(self, headers: dict[str, str]) -> None:
        if headers.get("authorization") != f"Bearer {self.secret_key}":
            raise StripeFailure(401, "invalid_request_error", "Invalid API Key provided")

    def _injected_failure(self, path: str) -> None:
        for index, (prefix, failure) in enumerate(self._failures):
            if path.startswith(prefix):
                del self._failures[index]
                raise failure

    def _route(
        self, method: str, path: str, params: dict[str, Any], account: str | None
    ) -> dict[str, Any]:
        routes = {
            ("POST", "/v1/checkout/sessions"): self._create_session,
            ("POST", "/v1/refunds"): self._create_refund,
            ("POST", "/v1/accounts"): self._create_account,
            ("POST", "/v1/account_links"): self._create_account_link,
            ("POST", "/v1/transfers"): self._create_transfer,
        }
        if (method, path) in routes:
            return routes[(method, path)](params)
        if (method, path) == ("POST", "/v1/payouts"):
            return self._create_payout(params, account)
        capture = re.fullmatch(r"/v1/payment_intents/([^/]+)/capture", path)
        if method == "POST" and capture:
            return self._capture(capture.group(1), params)
        found = re.fullmatch(
            r"/v1/(checkout/sessions|payment_intents|refunds|transfers|payouts|accounts)/([^/]+)",
            path,
        )
        if method == "GET" and found:
            return self._get(found.group(1), found.group(2), account)
        raise _invalid(f"Unrecognized request URL ({method}: {path}).")

    def _get(self, collection: str, ref: str, account: str | None) -> dict[str, Any]:
        object_type = COLLECTIONS[collection]
        obj = self.objects.get(ref)
        visible = obj is not None and self.owners.get(ref) == (account or None)
        if obj is None or not visible or obj["object"] != object_type:
            raise _missing(object_type, ref)
        return obj

    def _expanded(self, obj: dict[str, Any], paths: list[str]) -> dict[str, Any]:
        """Replace ids by objects along ``expand`` paths (``a.b`` expands ``a`` then ``b``)."""
        result: dict[str, Any] = json.loads(json.dumps(obj))
        for path in paths:
            node: Any = result
            for name in path.split("."):
                value = node.get(name) if isinstance(node, dict) else None
                if isinstance(value, str) and value in self.objects:
                    node[name] = json.loads(json.dumps(self.objects[value]))
                    value = node[name]
                node = value
        return result

    # -- endpoints -----------------------------------------------------------------------

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        line_items = params.get("line_items") or []
        if params.get("mode") != "payment" or len(line_items) != 1:
            raise _invalid("The fake supports one line item in payment mode.", param="mode")
        price = line_items[0]["price_data"]
        amount = int(price["unit_amount"]) * int(line_items[0].get("quantity", 1))
        methods = params.get("allowed_payment_method_types") or ["card"]
        session = self._store(
            "cs_test",
            {
                "object": "checkout.session",
                "amount_total": amount,
                "cancel_url": params.get("cancel_url"),
                "client_reference_id": params.get("client_reference_id"),
                "currency": price["currency"],
                "customer_email": params.get("customer_email"),
                "metadata": params.get("metadata") or {},
                "mode": "payment",
                "payment_intent": None,
                "payment_method_types": methods,
                "payment_status": "unpaid",
                "status": "open",
                "success_url": params.get("success_url"),
            },
        )
        session["url"] = f"{self.url}/c/pay/{session['id']}"
        self._session_intent_data[session["id"]] = params.get("payment_intent_data") or {}
        return session

    def _capture(self, intent_id: str, params: dict[str, Any]) -> dict[str, Any]:
        intent = self.objects.get(intent_id)
        if intent is None or intent["object"] != "payment_intent":
            raise _missing("payment_intent", intent_id)
        if intent["status"] != "requires_capture":
            raise _invalid(
                "This PaymentIntent could not be captured because it has a status of "
                f"{intent['status']}.",
                code="payment_intent_unexpected_state",
            )
        amount = intent["amount"]
        intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
        charge = self.objects[intent["latest_charge"]]
        charge.update(captured=True, amount_captured=amount)
        self._settle_charge(charge)
        return intent

    def _create_refund(self, params: dict[str, Any]) -> dict[str, Any]:
        intent_id = params.get("payment_intent", "")
        intent = self.objects.get(intent_id)
        if intent is None or intent["object"] != "payment_intent":
            raise _missing("payment_intent", intent_id, "payment_intent")
        if intent["status"] != "succeeded":
            raise _invalid(
                "This PaymentIntent does not have a successful charge to refund.",
                code="charge_not_refundable",
            )
        charge = self.objects[intent["latest_charge"]]
        remaining = charge["amount_captured"] - charge["amount_refunded"]
        amount = int(params.get("amount", remaining))
        if amount <= 0 or amount > remaining:
            raise _invalid(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge "
                f"({remaining})",
                code="amount_too_large",
                param="amount",
            )
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount_captured"]
        self.balances[("platform", charge["currency"])] -= amount
        return self._store(
            "re",
            {
                "object": "refund",
                "amount": amount,
                "charge": charge["id"],
                "currency": charge["currency"],
                "failure_reason": None,
                "metadata": params.get("metadata") or {},
                "payment_intent": intent_id,
                "reason": params.get("reason"),
                "status": "succeeded",
            },
        )

    def _create_account(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("type") != "express":
            raise _invalid("The fake only creates Express accounts.", param="type")
        country = str(params.get("country", "US")).upper()
        requested = (params.get("capabilities") or {}).get("transfers", {}).get("requested")
        return self._store(
            "acct",
            {
                "object": "account",
                "capabilities": {"transfers": "inactive"} if requested == "true" else {},
                "charges_enabled": False,
                "country": country,
                "default_currency": COUNTRY_CURRENCIES.get(country, "eur"),
                "details_submitted": False,
                "email": params.get("email"),
                "metadata": params.get("metadata") or {},
                "payouts_enabled": False,
                "requirements": _requirements(ONBOARDING_REQUIREMENTS),
                "type": "express",
            },
        )

    def _create_account_link(self, params: dict[str, Any]) -> dict[str, Any]:
        account_id = params.get("account", "")
        account = self.objects.get(account_id)
        if account is None or account["object"] != "account":
            raise _missing("account", account_id, "account")
        if params.get("type") not in ("account_onboarding", "account_update"):
            raise _invalid("Invalid type.", param="type")
        now = int(time.time())
        return {
            "object": "account_link",
            "created": now,
            "expires_at": now + 300,
            "url": f"{self.url}/setup/e/{account_id}/{uuid.uuid4().hex}",
        }

    def _create_transfer(self, params: dict[str, Any]) -> dict[str, Any]:
        destination = params.get("destination", "")
        account = self.objects.get(destination)
        if account is None or account["object"] != "account":
            raise _invalid(
                f"No such destination: '{destination}'",
                code="resource_missing",
                param="destination",
            )
        if account["capabilities"].get("transfers") != "active":
            raise _invalid(
                "Your destination account needs to have at least one of the following "
                "capabilities enabled: transfers, crypto_transfers, legacy_payments",
                code="insufficient_capabilities_for_transfer",
                param="destination",
            )
        amount = int(params["amount"])
        currency = params["currency"]
        self._debit("platform", currency, amount)
        self.balances[(destination, currency)] += amount
        return self._store(
            "tr",
            {
                "object": "transfer",
                "amount": amount,
                "amount_reversed": 0,
                "currency": currency,
                "destination": destination,
                "destination_payment": self._new_id("py"),
                "metadata": params.get("metadata") or {},
                "reversed": False,
                "transfer_group": params.get("transfer_group"),
            },
        )

    def _create_payout(self, params: dict[str, Any], account_id: str | None) -> dict[str, Any]:
        owner = account_id or "platform"
        if account_id:
            account = self.objects.get(account_id)
            if account is None or account["object"] != "account":
                raise StripeFailure(
                    403,
                    "invalid_request_error",
                    "The provided key does not have access to account "
                    f"'{account_id}' (or that account does not exist).",
                    code="account_invalid",
                )
            if not account["payouts_enabled"]:
                raise _invalid(
                    "Payouts are not enabled for this account.", code="payouts_not_allowed"
                )
        amount = int(params["amount"])
        currency = params["currency"]
        self._debit(owner, currency, amount)
        payout = self._store(
            "po",
            {
                "object": "payout",
                "amount": amount,
                "arrival_date": int(time.time()) + 2 * 86400,
                "currency": currency,
                "destination": self._new_id("ba"),
                "failure_code": None,
                "failure_message": None,
                "metadata": params.get("metadata") or {},
                "method": "standard",
                "status": "pending",
            },
        )
        if account_id:
            self.owners[payout["id"]] = account_id
        return payout

    # -- bookkeeping ---------------------------------------------------------------------

    def _settle_charge(self, charge: dict[str, Any]) -> None:
        """Stripe keeps its fee and credits the rest to the platform balance."""
        amount = charge["amount"]
        fee = amount * FEE_BPS // 10_000 + FEE_FIXED
        txn = self._store(
            "txn",
            {
                "object": "balance_transaction",
                "amount": amount,
                "currency": charge["currency"],
                "fee": fee,
                "net": amount - fee,
                "source": charge["id"],
                "status": "available",
                "type": "charge",
            },
        )
        charge["balance_transaction"] = txn["id"]
        self.balances[("platform", charge["currency"])] += amount - fee

    def _debit(self, owner: str, currency: str, amount: int) -> None:
        if amount <= 0:
            raise _invalid("Amount must be positive.", param="amount")
        if self.balances[(owner, currency)] < amount:
            raise _invalid(
                "You have insufficient funds in your Stripe account.",
                code="balance_insufficient",
            )
        self.balances[(owner, currency)] -= amount

    def _store(self, prefix: str, obj: dict[str, Any]) -> dict[str, Any]:
        obj = {"id": self._new_id(prefix), "created": int(time.time()), "livemode": False, **obj}
        self.objects[obj["id"]] = obj
        self.created[obj["object"]] += 1
        return obj

    @staticmethod
    def _new_id(prefix: str) -> str:
        return f"{prefix}_{uuid.uuid4().hex[:24]}"

    # -- running it ----------------------------------------------------------------------

    @classmethod
    @contextmanager
    def running(cls) -> Iterator[FakeStripe]:
        """Serve the fake on a free port of 127.0.0.1 for the duration of the block."""
        fake = cls()
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(fake))
        server.daemon_threads = True
        host, port = server.server_address[:2]
        fake.url = f"http://{host!s}:{port}"
        thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="fake-stripe", daemon=True
        )
        thread.start()
        try:
            yield fake
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


def _requirements(due: list[str]) -> dict[str, Any]:
    return {
        "currently_due": list(due),
        "eventually_due": list(due),
        "past_due": [],
        "disabled_reason": "requirements.past_due" if due else None,
    }


def _handler_for(fake: FakeStripe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            pairs = parse_qsl(body if method == "POST" else url.query, keep_blank_values=True)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, answer, extra = fake.handle(method, url.path, decode_form(pairs), headers)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.send_header("Request-Id", f"req_{uuid.uuid4().hex[:14]}")
            self.send_header("Stripe-Version", API_VERSION)
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the recorded requests are the log."""

    return Handler


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    """A running fake Stripe; point ``StripeProvider(api_base=fake_stripe.url)`` at it."""
    with FakeStripe.running() as fake:
        yield fake
