"""``SandboxProvider``: the provider interface implemented inside the app.

Test cards (SPEC M6): 4242 4242 4242 4242 succeeds, 4000 0000 0000 0002 is declined,
4000 0000 0000 9995 fails for insufficient funds. A BNPL option is approved or denied on
the checkout page. Connected accounts are onboarded on a page that can be completed or
left with requirements due; a bank account ending in 0002 returns its payouts.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from mesteri.kit import clock, jobs
from mesteri.kit.db import WriteSession
from mesteri.payments.providers import Deliver, signing
from mesteri.payments.providers.base import (
    REFERENCE_KEY,
    Checkout,
    CheckoutRequest,
    ConnectedAccount,
    EventType,
    InvalidSignatureError,
    OnboardingStatus,
    ProviderError,
    ProviderEvent,
    ProviderObject,
)
from mesteri.payments.sandbox.models import SandboxEvent, SandboxObject

SUCCESS_CARD = "4242424242424242"
DECLINE_CARD = "4000000000000002"
INSUFFICIENT_FUNDS_CARD = "4000000000009995"
RETURNED_PAYOUT_IBAN_SUFFIX = "0002"
INITIAL_REQUIREMENTS = ("external_account", "individual.verification.document")

# What the sandbox charges per payment (like a card processor): 1.5% + 1.00.
FEE_BPS = 150
FEE_FIXED = 100


_RAW_TYPES = {
    "payment_intent.succeeded": EventType.PAYMENT_SUCCEEDED,
    "payment_intent.payment_failed": EventType.PAYMENT_FAILED,
    "transfer.created": EventType.TRANSFER_CREATED,
    "payout.paid": EventType.PAYOUT_PAID,
    "payout.failed": EventType.PAYOUT_FAILED,
    "account.updated": EventType.ACCOUNT_UPDATED,
}


@dataclass(frozen=True)
class CardOutcome:
    succeeded: bool
    code: str | None = None
    message: str | None = None


def card_outcome(card_number: str) -> CardOutcome:
    digits = "".join(ch for ch in card_number if ch.isdigit())
    if digits == SUCCESS_CARD:
        return CardOutcome(True)
    if digits == DECLINE_CARD:
        return CardOutcome(False, "card_declined", "Your card was declined.")
    if digits == INSUFFICIENT_FUNDS_CARD:
        return CardOutcome(False, "insufficient_funds", "Your card has insufficient funds.")
    if len(digits) < 12 or not _luhn(digits):
        return CardOutcome(False, "incorrect_number", "Your card number is incorrect.")
    return CardOutcome(False, "card_not_supported", "Use one of the sandbox test cards.")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _new_ref(prefix: str) -> str:
    return f"{prefix}_sbx_{secrets.token_hex(12)}"


class SandboxProvider:
    name = "sandbox"
    checks_identity = False  # its onboarding asks for a bank account only

    def __init__(
        self,
        sessions: async_sessionmaker[WriteSession],
        *,
        secret: str,
        public_url: str,
        deliver: Deliver | None = None,
    ) -> None:
        self._sessions = sessions
        self.secret = secret
        self.public_url = public_url.rstrip("/")
        self.deliver = deliver

    # ------------------------------------------------------------ the provider interface

    async def create_checkout(self, request: CheckoutRequest, *, idempotency_key: str) -> Checkout:
        async with self._transaction() as session:
            obj = await self._existing(session, idempotency_key)
            if obj is None:
                obj = self._new(
                    session,
                    "payment",
                    "pi",
                    idempotency_key,
                    status="requires_payment_method",
                    amount=request.amount,
                    currency=request.currency,
                    data={
                        "metadata": {REFERENCE_KEY: request.reference},
                        "transfer_group": request.transfer_group,
                        "description": request.description,
                        "customer_email": request.customer_email,
                        "success_url": request.success_url,
                        "cancel_url": request.cancel_url,
                        "allow_bnpl": request.allow_bnpl,
                    },
                )
        return Checkout(provider_ref=obj.id, checkout_url=self.checkout_url(obj.id))

    async def capture(self, provider_ref: str, *, idempotency_key: str) -> ProviderObject:
        # Sandbox payments are captured when paid (SPEC 2: capture at funding).
        return await self.retrieve("payment", provider_ref)

    async def refund(
        self, provider_ref: str, amount: int, *, reference: str, idempotency_key: str
    ) -> ProviderObject:
        async with self._transaction() as session:
            obj = await self._existing(session, idempotency_key)
            if obj is None:
                payment = await self._locked(session, provider_ref, "payment")
                if payment.status != "succeeded":
                    raise ProviderError("payment_not_captured")
                if amount <= 0 or payment.amount_refunded + amount > payment.amount:
                    raise ProviderError("amount_too_large")
                payment.amount_refunded += amount
                obj = self._new(
                    session,
                    "refund",
                    "re",
                    idempotency_key,
                    status="succeeded",
                    amount=amount,
                    currency=payment.currency,
                    parent=payment.id,
                    data={"metadata": {REFERENCE_KEY: reference}, "payment_intent": payment.id},
                )
                await self._emit(session, "refund.updated", obj)
        return _public(obj)

    async def create_connected_account(
        self, *, reference: str, email: str | None, country: str, idempotency_key: str
    ) -> ConnectedAccount:
        async with self._transaction() as session:
            obj = await self._existing(session, idempotency_key)
            if obj is None:
                obj = self._new(
                    session,
                    "account",
                    "acct",
                    idempotency_key,
                    status="onboarding",
                    data={
                        "metadata": {REFERENCE_KEY: reference},
                        "email": email,
                        "country": country,
                        "payouts_enabled": False,
                        "requirements_due": list(INITIAL_REQUIREMENTS),
                        "balances": {},
                    },
                )
        return _account(obj)

    async def onboarding_link(self, account_ref: str, *, return_url: str, refresh_url: str) -> str:
        async with self._transaction() as session:
            obj = await self._locked(session, account_ref, "account")
            obj.data = {**obj.data, "return_url": return_url, "refresh_url": refresh_url}
        return f"{self.public_url}/sandbox/onboarding/{account_ref}"

    async def transfer(
        self,
        account_ref: str,
        amount: int,
        currency: str,
        *,
        transfer_group: str,
        reference: str,
        idempotency_key: str,
    ) -> ProviderObject:
        async with self._transaction() as session:
            obj = await self._existing(session, idempotency_key)
            if obj is None:
                account = await self._locked(session, account_ref, "account")
                _credit(account, currency, amount)
                obj = self._new(
                    session,
                    "transfer",
                    "tr",
                    idempotency_key,
                    status="paid",
                    amount=amount,
                    currency=currency,
                    parent=account_ref,
                    data={"metadata": {REFERENCE_KEY: reference}, "transfer_group": transfer_group},
                )
                await self._emit(session, "transfer.created", obj)
        return _public(obj)

    async def payout(
        self,
        account_ref: str,
        amount: int,
        currency: str,
        *,
        reference: str,
        idempotency_key: str,
    ) -> ProviderObject:
        async with self._transaction() as session:
            obj = await self._existing(session, idempotency_key)
            if obj is None:
                account = await self._locked(session, account_ref, "account")
                if not account.data.get("payouts_enabled"):
                    raise ProviderError("payouts_not_enabled")
                if _balance(account, currency) < amount:
                    raise ProviderError("balance_insufficient")
                _credit(account, currency, -amount)
                returned = str(account.data.get("iban", "")).endswith(RETURNED_PAYOUT_IBAN_SUFFIX)
                obj = self._new(
                    session,
                    "payout",
                    "po",
                    idempotency_key,
                    status="failed" if returned else "paid",
                    amount=amount,
                    currency=currency,
                    parent=account_ref,
                    data={"metadata": {REFERENCE_KEY: reference}},
                )
                if returned:
                    _credit(account, currency, amount)  # the bank sent it back
                    obj.data = {**obj.data, "failure_code": "account_closed"}
                # Banks answer later; the result reaches the platform as an event.
                await self._emit(session, "payout.failed" if returned else "payout.paid", obj)
        public = _public(obj)
        return ProviderObject(**{**public.__dict__, "status": "in_transit"})

    async def retrieve(
        self, kind: str, ref: str, *, account_ref: str | None = None
    ) -> ProviderObject:
        async with self._sessions() as session:
            obj = await session.get(SandboxObject, ref)
        if obj is None or obj.kind != kind:
            raise ProviderError(f"no such {kind}: {ref}")
        return _public(obj)

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        signing.verify(
            payload,
            headers.get("stripe-signature"),
            self.secret,
            now=int(clock.now().timestamp()),
        )
        try:
            event = json.loads(payload)
            obj = event["data"]["object"]
            raw_type = str(event["type"])
            return _normalise(event, obj, raw_type)
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidSignatureError("malformed event") from exc

    # ------------------------------------------------------------ sandbox-only actions

    def checkout_url(self, ref: str) -> str:
        return f"{self.public_url}/sandbox/checkout/{ref}"

    async def checkout(self, ref: str) -> SandboxObject | None:
        async with self._sessions() as session:
            obj = await session.get(SandboxObject, ref)
        return obj if obj is not None and obj.kind == "payment" else None

    async def pay(self, ref: str, *, card_number: str | None, bnpl: bool | None) -> CardOutcome:
        """The payer submitted the checkout form (a card, or a BNPL decision)."""
        async with self._transaction() as session:
            payment = await self._locked(session, ref, "payment")
            if payment.status == "succeeded":
                return CardOutcome(True)
            if bnpl is not None:
                outcome = (
                    CardOutcome(True)
                    if bnpl
                    else CardOutcome(False, "bnpl_denied", "The instalment plan was not approved.")
                )
                method = "bnpl"
            else:
                outcome = card_outcome(card_number or "")
                method = "card"
            if outcome.succeeded:
                payment.status = "succeeded"
                payment.fee = payment.amount * FEE_BPS // 10_000 + FEE_FIXED
                payment.data = {
                    **payment.data,
                    "payment_method": method,
                    "last_payment_error": None,
                }
                await self._emit(session, "payment_intent.succeeded", payment)
            else:
                payment.data = {
                    **payment.data,
                    "payment_method": method,
                    "last_payment_error": {"code": outcome.code, "message": outcome.message},
                }
                await self._emit(session, "payment_intent.payment_failed", payment)
            payment.updated_at = clock.now()
        return outcome

    async def account(self, ref: str) -> SandboxObject | None:
        async with self._sessions() as session:
            obj = await session.get(SandboxObject, ref)
        return obj if obj is not None and obj.kind == "account" else None

    async def complete_onboarding(self, ref: str, *, iban: str | None) -> str:
        """The holder submitted the onboarding form; without a bank account, it stays due."""
        async with self._transaction() as session:
            account = await self._locked(session, ref, "account")
            due = [] if iban else ["external_account"]
            account.status = "active" if not due else "restricted"
            account.data = {
                **account.data,
                "iban": iban,
                "payouts_enabled": not due,
                "requirements_due": due,
            }
            await self._emit(session, "account.updated", account)
            return str(account.data.get("return_url") or self.public_url)

    async def deliver_event(self, event_id: str, session: WriteSession) -> None:
        """Sign and post one event; raises so the job retries until the platform answers 2xx."""
        event = await session.get(SandboxEvent, event_id, with_for_update=True)
        if event is None or event.delivered_at is not None:
            return
        if self.deliver is None:
            raise ProviderError("no webhook delivery configured")
        body = json.dumps(event.payload, separators=(",", ":")).encode()
        header = signing.signature_header(body, self.secret, int(clock.now().timestamp()))
        event.attempts += 1
        status = await self.deliver(
            body, {"Stripe-Signature": header, "Content-Type": "application/json"}
        )
        if not 200 <= status < 300:
            raise ProviderError(f"webhook answered {status}")
        event.delivered_at = clock.now()

    # ------------------------------------------------------------ helpers

    def _transaction(self) -> Any:
        return _Transaction(self._sessions)

    async def _existing(self, session: WriteSession, key: str) -> SandboxObject | None:
        found: SandboxObject | None = await session.scalar(
            select(SandboxObject).where(SandboxObject.idempotency_key == key)
        )
        return found

    async def _locked(self, session: WriteSession, ref: str, kind: str) -> SandboxObject:
        obj = await session.get(SandboxObject, ref, with_for_update=True)
        if obj is None or obj.kind != kind:
            raise ProviderError(f"no such {kind}: {ref}")
        return obj

    def _new(
        self,
        session: WriteSession,
        kind: str,
        prefix: str,
        idempotency_key: str,
        *,
        status: str,
        amount: int = 0,
        currency: str = "",
        parent: str | None = None,
        data: dict[str, Any],
    ) -> SandboxObject:
        now = clock.now()
        obj = SandboxObject(
            id=_new_ref(prefix),
            kind=kind,
            status=status,
            amount=amount,
            currency=currency,
            amount_refunded=0,
            fee=0,
            parent=parent,
            idempotency_key=idempotency_key,
            data=data,
            created_at=now,
            updated_at=now,
        )
        session.add(obj)
        return obj

    async def _emit(self, session: WriteSession, raw_type: str, obj: SandboxObject) -> None:
        from mesteri.payments.sandbox.tasks import deliver_event  # tasks import this module

        await session.flush()
        event = SandboxEvent(
            id=_new_ref("evt"),
            type=raw_type,
            created=int(clock.now().timestamp()),
            payload={},
            attempts=0,
        )
        event.payload = {
            "id": event.id,
            "object": "event",
            "type": raw_type,
            "created": event.created,
            "account": obj.parent if obj.kind in ("payout", "transfer") else None,
            "data": {"object": _serialise(obj)},
        }
        session.add(event)
        await jobs.defer(session, deliver_event, event_id=event.id)


class _Transaction:
    """One short transaction of the provider's own (never the caller's)."""

    def __init__(self, sessions: async_sessionmaker[WriteSession]) -> None:
        self._sessions = sessions
        self._session: WriteSession | None = None

    async def __aenter__(self) -> WriteSession:
        self._session = self._sessions()
        await self._session.begin()
        return self._session

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        assert self._session is not None
        try:
            if exc_type is None:
                await self._session.commit()
            else:
                await self._session.rollback()
        finally:
            await self._session.close()


def _balance(account: SandboxObject, currency: str) -> int:
    return int(account.data.get("balances", {}).get(currency, 0))


def _credit(account: SandboxObject, currency: str, amount: int) -> None:
    balances = dict(account.data.get("balances", {}))
    balances[currency] = int(balances.get(currency, 0)) + amount
    account.data = {**account.data, "balances": balances}


def _serialise(obj: SandboxObject) -> dict[str, Any]:
    data = obj.data
    body: dict[str, Any] = {
        "id": obj.id,
        "object": obj.kind,
        "status": obj.status,
        "amount": obj.amount,
        "currency": obj.currency,
        "metadata": data.get("metadata", {}),
    }
    if obj.kind == "payment":
        body |= {
            "amount_refunded": obj.amount_refunded,
            "fee": obj.fee,
            "payment_method": data.get("payment_method"),
            "last_payment_error": data.get("last_payment_error"),
            "transfer_group": data.get("transfer_group"),
        }
    elif obj.kind == "payout":
        body["failure_code"] = data.get("failure_code")
    elif obj.kind == "account":
        body |= {
            "payouts_enabled": bool(data.get("payouts_enabled")),
            "requirements": {"currently_due": list(data.get("requirements_due", []))},
        }
    return body


def _public(obj: SandboxObject) -> ProviderObject:
    body = _serialise(obj)
    return ProviderObject(
        ref=obj.id,
        kind=obj.kind,
        status=obj.status,
        amount=obj.amount,
        currency=obj.currency,
        amount_refunded=obj.amount_refunded,
        fee=obj.fee,
        failure_code=body.get("failure_code"),
        data=body,
    )


def _account(obj: SandboxObject) -> ConnectedAccount:
    return _connected(
        obj.id, bool(obj.data.get("payouts_enabled")), obj.data.get("requirements_due", [])
    )


def _connected(ref: str, payouts_enabled: bool, due: list[str]) -> ConnectedAccount:
    verified = payouts_enabled and not due
    return ConnectedAccount(
        ref=ref,
        payouts_enabled=payouts_enabled,
        requirements_due=tuple(due),
        status=OnboardingStatus.VERIFIED if verified else OnboardingStatus.ACTION_REQUIRED,
    )


def _normalise(event: dict[str, Any], obj: dict[str, Any], raw_type: str) -> ProviderEvent:
    kind = _RAW_TYPES.get(raw_type, EventType.UNKNOWN)
    if raw_type == "refund.updated":
        kind = {
            "succeeded": EventType.REFUND_SUCCEEDED,
            "failed": EventType.REFUND_FAILED,
            "canceled": EventType.REFUND_FAILED,
        }.get(obj.get("status", ""), EventType.UNKNOWN)
    error = obj.get("last_payment_error") or {}
    account = None
    if kind is EventType.ACCOUNT_UPDATED:
        account = _connected(
            obj["id"],
            bool(obj.get("payouts_enabled")),
            list(obj.get("requirements", {}).get("currently_due", [])),
        )
    return ProviderEvent(
        id=str(event["id"]),
        type=kind,
        raw_type=raw_type,
        created=int(event["created"]),
        object_ref=str(obj["id"]),
        reference=(obj.get("metadata") or {}).get(REFERENCE_KEY),
        amount=obj.get("amount"),
        currency=(obj.get("currency") or "").upper() or None,
        fee=int(obj.get("fee") or 0),
        failure_code=error.get("code") or obj.get("failure_code"),
        failure_message=error.get("message"),
        payment_method=obj.get("payment_method"),
        account=account,
        payload=event,
    )
