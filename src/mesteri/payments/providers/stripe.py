"""Stripe Connect behind the payment provider interface (DESIGN section 5, SPEC M6).

Escrow on Stripe is "separate charges and transfers": the payer pays through a hosted
Checkout Session and the money is captured at once into the platform balance (an
authorisation would expire long before a renovation ends); on release the platform transfers
the pro's share to the pro's Express account, which later pays out to the pro's bank.

Which id identifies a payment
    Since API version 2022-08-01 a Checkout Session in payment mode creates its PaymentIntent
    lazily, when the payer confirms. The session id is therefore the only id that exists when
    the checkout is created, so ``Checkout.provider_ref`` is the Checkout Session id
    (``cs_…``). ``capture``, ``refund`` and ``retrieve("payment", …)`` accept either a session
    id or a PaymentIntent id (``pi_…``) and resolve a session to its PaymentIntent.

How payment events are matched
    Both ``checkout.session.completed`` (when paid) and ``payment_intent.succeeded`` become
    ``PAYMENT_SUCCEEDED``; both carry our record id under ``REFERENCE_KEY`` in their metadata
    (the session's own metadata and ``payment_intent_data.metadata``). Their ``object_ref``
    differs (session id, PaymentIntent id), so consumers match payment events on
    ``reference`` and must treat the second one as a duplicate of the first.

Payment methods
    The pinned API version no longer accepts ``payment_method_types`` on a Checkout Session;
    ``allowed_payment_method_types`` filters Stripe's dynamic list instead, and Stripe itself
    drops Klarna where the currency or amount does not support it.

Fees
    Webhook payloads do not include the balance transaction, so events report ``fee=0``;
    ``retrieve("payment", …)`` expands the charge's balance transaction and reports the fee.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import stripe
from stripe.params import (
    AccountCreateParams,
    PayoutCreateParams,
    RefundCreateParams,
    TransferCreateParams,
)
from stripe.params.checkout import SessionCreateParams

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

# Stripe's own default, stated here because DESIGN section 5 requires a timestamp tolerance.
WEBHOOK_TOLERANCE_SECONDS = 300
SIGNATURE_HEADER = "stripe-signature"
_PAYMENT_EXPANSION = "latest_charge.balance_transaction"


class StripeProviderError(ProviderError):
    """A refusal from Stripe, keeping its error code (e.g. ``balance_insufficient``)."""

    def __init__(self, message: str, *, code: str | None = None, http_status: int | None = None):
        super().__init__(message)
        self.code = code
        self.http_status = http_status


def _provider_error(error: stripe.StripeError) -> StripeProviderError:
    message = error.user_message or str(error) or type(error).__name__
    return StripeProviderError(message, code=error.code, http_status=error.http_status)


def _currency(value: str | None) -> str:
    """Stripe speaks lowercase ISO codes; the rest of Mesteri speaks uppercase."""
    return (value or "").upper()


def _metadata_reference(obj: Mapping[str, Any]) -> str | None:
    metadata = obj.get("metadata") or {}
    reference = metadata.get(REFERENCE_KEY)
    return str(reference) if reference else None


def _object_id(value: Any) -> str | None:
    """The id of an expandable field, whether Stripe sent the id or the expanded object."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return str(value.get("id")) if isinstance(value, Mapping) else str(value.id)


def _single_payment_method(obj: Mapping[str, Any]) -> str | None:
    """The method used, when the object names exactly one (webhooks do not expand it)."""
    types = obj.get("payment_method_types") or []
    return str(types[0]) if len(types) == 1 else None


class StripeProvider:
    """The ``PaymentProvider`` for Stripe Connect, on the official SDK's async calls."""

    name = "stripe"
    checks_identity = True  # Connect onboarding is Stripe's KYC

    def __init__(
        self,
        secret_key: str,
        webhook_secret: str,
        *,
        api_base: str | None = None,
        max_network_retries: int = 2,
    ):
        """``max_network_retries`` is safe: every creating call carries an idempotency key."""
        self._webhook_secret = webhook_secret
        self._http = stripe.HTTPXClient()
        base = api_base.rstrip("/") if api_base else None
        self._client = stripe.StripeClient(
            secret_key,
            http_client=self._http,
            base_addresses={"api": base, "connect": base, "files": base} if base else None,
            max_network_retries=max_network_retries,
        )

    async def aclose(self) -> None:
        """Close the HTTP connections (at shutdown)."""
        await self._http.close_async()  # type: ignore[no-untyped-call]  # untyped in the SDK

    # -- payments ------------------------------------------------------------------------

    async def create_checkout(self, request: CheckoutRequest, *, idempotency_key: str) -> Checkout:
        """A Checkout Session that captures at once and tags everything with our reference."""
        metadata = {REFERENCE_KEY: request.reference}
        # Klarna is Stripe's BNPL here; Stripe drops it where currency or amount do not fit.
        methods: list[Any] = ["card", "klarna"] if request.allow_bnpl else ["card"]
        params: SessionCreateParams = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.currency.lower(),
                        "unit_amount": request.amount,
                        "product_data": {"name": request.description},
                    },
                }
            ],
            "allowed_payment_method_types": methods,
            "payment_intent_data": {
                "capture_method": "automatic",
                "transfer_group": request.transfer_group,
                "description": request.description,
                "metadata": metadata,
            },
            "metadata": metadata,
            "client_reference_id": request.reference,
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
        }
        if request.customer_email:
            params["customer_email"] = request.customer_email
        try:
            session = await self._client.v1.checkout.sessions.create_async(
                params, {"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        if not session.url:
            raise ProviderError(f"checkout session {session.id} has no URL")
        return Checkout(provider_ref=session.id, checkout_url=session.url, session_ref=session.id)

    async def capture(self, provider_ref: str, *, idempotency_key: str) -> ProviderObject:
        """Capture when Stripe still holds an authorisation; otherwise report the payment."""
        try:
            intent = await self._payment_intent(provider_ref)
            if intent is None:
                raise ProviderError(f"{provider_ref} has not been paid yet")
            if intent.status == "requires_capture":
                intent = await self._client.v1.payment_intents.capture_async(
                    intent.id,
                    {"expand": [_PAYMENT_EXPANSION]},
                    {"idempotency_key": idempotency_key},
                )
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return self._payment_object(provider_ref, intent, None)

    async def refund(
        self, provider_ref: str, amount: int, *, reference: str, idempotency_key: str
    ) -> ProviderObject:
        """Refund part or all of the captured payment; Stripe confirms by webhook."""
        try:
            intent = await self._payment_intent(provider_ref)
            if intent is None:
                raise ProviderError(f"{provider_ref} has not been paid yet")
            params: RefundCreateParams = {
                "payment_intent": intent.id,
                "amount": amount,
                "metadata": {REFERENCE_KEY: reference},
            }
            refund = await self._client.v1.refunds.create_async(
                params, {"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return self._refund_object(refund)

    # -- connected accounts --------------------------------------------------------------

    async def create_connected_account(
        self, *, reference: str, email: str | None, country: str, idempotency_key: str
    ) -> ConnectedAccount:
        """An Express account: Stripe hosts onboarding (KYC, bank) and the pro's dashboard."""
        params: AccountCreateParams = {
            "type": "express",
            "country": country.upper(),
            "capabilities": {"transfers": {"requested": True}},
            "metadata": {REFERENCE_KEY: reference},
        }
        if email:
            params["email"] = email
        try:
            account = await self._client.v1.accounts.create_async(
                params, {"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return self._connected_account(account.to_dict())

    async def onboarding_link(self, account_ref: str, *, return_url: str, refresh_url: str) -> str:
        """A single-use onboarding URL; ask again when the holder comes back via refresh_url."""
        try:
            link = await self._client.v1.account_links.create_async(
                {
                    "account": account_ref,
                    "type": "account_onboarding",
                    "return_url": return_url,
                    "refresh_url": refresh_url,
                }
            )
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return link.url

    # -- moving money --------------------------------------------------------------------

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
        """Move the pro's share from the platform balance to their connected account."""
        params: TransferCreateParams = {
            "amount": amount,
            "currency": currency.lower(),
            "destination": account_ref,
            "transfer_group": transfer_group,
            "metadata": {REFERENCE_KEY: reference},
        }
        try:
            transfer = await self._client.v1.transfers.create_async(
                params, {"idempotency_key": idempotency_key}
            )
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return self._transfer_object(transfer.to_dict())

    async def payout(
        self,
        account_ref: str,
        amount: int,
        currency: str,
        *,
        reference: str,
        idempotency_key: str,
    ) -> ProviderObject:
        """Pay out from the connected account's balance to its bank (a call as that account)."""
        params: PayoutCreateParams = {
            "amount": amount,
            "currency": currency.lower(),
            "metadata": {REFERENCE_KEY: reference},
        }
        try:
            payout = await self._client.v1.payouts.create_async(
                params, {"idempotency_key": idempotency_key, "stripe_account": account_ref}
            )
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        return self._payout_object(payout.to_dict())

    # -- reconciliation ------------------------------------------------------------------

    async def retrieve(
        self, kind: str, ref: str, *, account_ref: str | None = None
    ) -> ProviderObject:
        """Stripe's current record of one object; ``account_ref`` for a connected account's."""
        options: stripe.RequestOptions = {"stripe_account": account_ref} if account_ref else {}
        v1 = self._client.v1
        try:
            if kind == "payment":
                session = None
                if ref.startswith("cs_"):
                    session = await v1.checkout.sessions.retrieve_async(ref, None, options)
                intent = await self._payment_intent(ref, session=session, options=options)
                return self._payment_object(ref, intent, session)
            if kind == "refund":
                return self._refund_object(await v1.refunds.retrieve_async(ref, None, options))
            if kind == "transfer":
                transfer = await v1.transfers.retrieve_async(ref, None, options)
                return self._transfer_object(transfer.to_dict())
            if kind == "payout":
                payout = await v1.payouts.retrieve_async(ref, None, options)
                return self._payout_object(payout.to_dict())
            if kind == "account":
                account = await v1.accounts.retrieve_async(ref, None, options)
                return self._account_object(account.to_dict())
        except stripe.StripeError as error:
            raise _provider_error(error) from error
        raise ProviderError(f"unknown object kind {kind!r}")

    async def _payment_intent(
        self,
        ref: str,
        *,
        session: stripe.checkout.Session | None = None,
        options: stripe.RequestOptions | None = None,
    ) -> stripe.PaymentIntent | None:
        """The PaymentIntent behind a session or PaymentIntent id; ``None`` while unpaid."""
        intent_id = ref
        if ref.startswith("cs_"):
            if session is None:
                session = await self._client.v1.checkout.sessions.retrieve_async(ref, None, options)
            found = _object_id(session.payment_intent)
            if found is None:
                return None
            intent_id = found
        return await self._client.v1.payment_intents.retrieve_async(
            intent_id, {"expand": [_PAYMENT_EXPANSION]}, options
        )

    @staticmethod
    def _payment_object(
        ref: str, intent: stripe.PaymentIntent | None, session: stripe.checkout.Session | None
    ) -> ProviderObject:
        """Amount received, refunded and the fee, from the charge and its balance transaction."""
        if intent is None:
            # An unpaid Checkout Session: nothing received yet.
            status = (session.status if session else None) or "open"
            currency = session.currency if session else None
            data = {"session": ref, "amount_total": session.amount_total if session else None}
            return ProviderObject(
                ref=ref,
                kind="payment",
                status=status,
                amount=0,
                currency=_currency(currency),
                data=data,
            )
        charge = intent.latest_charge
        refunded = 0
        fee = 0
        if isinstance(charge, stripe.Charge):
            refunded = charge.amount_refunded
            if isinstance(charge.balance_transaction, stripe.BalanceTransaction):
                fee = charge.balance_transaction.fee
        error = intent.last_payment_error
        return ProviderObject(
            ref=ref,
            kind="payment",
            status=intent.status,
            amount=intent.amount_received,
            currency=_currency(intent.currency),
            amount_refunded=refunded,
            fee=fee,
            failure_code=(error.decline_code or error.code) if error else None,
            data={
                "payment_intent": intent.id,
                "session": ref if ref.startswith("cs_") else None,
                "charge": _object_id(charge),
                "transfer_group": intent.transfer_group,
                "reference": _metadata_reference(intent.to_dict()),
            },
        )

    @staticmethod
    def _refund_object(refund: stripe.Refund) -> ProviderObject:
        data = refund.to_dict()
        return ProviderObject(
            ref=refund.id,
            kind="refund",
            status=refund.status or "pending",
            amount=refund.amount,
            currency=_currency(refund.currency),
            failure_code=refund.failure_reason,
            data=data,
        )

    @staticmethod
    def _transfer_object(transfer: Mapping[str, Any]) -> ProviderObject:
        """Transfers have no status; a reversed one reports what came back as refunded."""
        return ProviderObject(
            ref=str(transfer["id"]),
            kind="transfer",
            status="reversed" if transfer.get("reversed") else "paid",
            amount=int(transfer["amount"]),
            currency=_currency(transfer.get("currency")),
            amount_refunded=int(transfer.get("amount_reversed") or 0),
            data=dict(transfer),
        )

    @staticmethod
    def _payout_object(payout: Mapping[str, Any]) -> ProviderObject:
        return ProviderObject(
            ref=str(payout["id"]),
            kind="payout",
            status=str(payout.get("status") or "pending"),
            amount=int(payout["amount"]),
            currency=_currency(payout.get("currency")),
            failure_code=payout.get("failure_code"),
            data=dict(payout),
        )

    @staticmethod
    def _account_object(account: Mapping[str, Any]) -> ProviderObject:
        connected = StripeProvider._connected_account(account)
        return ProviderObject(
            ref=connected.ref,
            kind="account",
            status="enabled" if connected.payouts_enabled else "restricted",
            amount=0,
            currency=_currency(account.get("default_currency")),
            data={
                "payouts_enabled": connected.payouts_enabled,
                "requirements_due": list(connected.requirements_due),
                "reference": _metadata_reference(account),
            },
        )

    @staticmethod
    def _connected_account(account: Mapping[str, Any]) -> ConnectedAccount:
        requirements = account.get("requirements") or {}
        due = tuple(requirements.get("currently_due") or ())
        past_due = tuple(requirements.get("past_due") or ())
        # Past-due items are normally also currently due; keep each once, in order.
        due = tuple(dict.fromkeys((*due, *past_due)))
        disabled_reason = requirements.get("disabled_reason") or None
        return ConnectedAccount(
            ref=str(account["id"]),
            payouts_enabled=bool(account.get("payouts_enabled")),
            requirements_due=due,
            past_due=past_due,
            disabled_reason=disabled_reason,
            status=_onboarding_status(
                bool(account.get("payouts_enabled")),
                due,
                tuple(requirements.get("pending_verification") or ()),
                disabled_reason,
            ),
        )

    # -- webhooks ------------------------------------------------------------------------

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        """Verify signature and timestamp with the SDK, then normalise the event."""
        signature = _header(headers, SIGNATURE_HEADER)
        try:
            event = self._client.construct_event(
                payload, signature, self._webhook_secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
            )
            raw = event.to_dict()
            obj = raw["data"]["object"]
            if not isinstance(obj, Mapping):
                raise TypeError("event data is not an object")
        except stripe.SignatureVerificationError as error:
            raise InvalidSignatureError(error.user_message or "invalid signature") from error
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            raise InvalidSignatureError(f"malformed webhook payload: {error}") from error
        return _normalise(raw, obj)


# ``requirements.disabled_reason`` values meaning Stripe is still reviewing what it was given.
_UNDER_REVIEW = frozenset({"requirements.pending_verification", "under_review"})


def _onboarding_status(
    payouts_enabled: bool,
    due: tuple[str, ...],
    pending_verification: tuple[str, ...],
    disabled_reason: str | None,
) -> OnboardingStatus:
    """Stripe's account state as one verdict. ``rejected.*`` reasons (fraud, terms of
    service, listed, other) are final; anything due needs the holder; items Stripe is
    checking, or a review, mean wait; otherwise the account is verified once it can pay out."""
    if disabled_reason and disabled_reason.startswith("rejected."):
        return OnboardingStatus.REJECTED
    if due:
        return OnboardingStatus.ACTION_REQUIRED
    if pending_verification or disabled_reason in _UNDER_REVIEW:
        return OnboardingStatus.PENDING
    if payouts_enabled and not disabled_reason:
        return OnboardingStatus.VERIFIED
    return OnboardingStatus.PENDING


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Header lookup that works for case-insensitive mappings and plain dicts alike."""
    value = headers.get(name)
    if value is not None:
        return value
    return next((v for k, v in headers.items() if k.lower() == name), None)


_PAYMENT_SUCCEEDED = {
    "payment_intent.succeeded",
    "checkout.session.completed",
    "checkout.session.async_payment_succeeded",
}
_PAYMENT_FAILED = {"payment_intent.payment_failed", "checkout.session.async_payment_failed"}
_REFUND_EVENTS = {"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"}
_REFUND_OUTCOMES = {
    "succeeded": EventType.REFUND_SUCCEEDED,
    "failed": EventType.REFUND_FAILED,
    "canceled": EventType.REFUND_FAILED,
}
_PAYOUT_OUTCOMES = {"payout.paid": EventType.PAYOUT_PAID, "payout.failed": EventType.PAYOUT_FAILED}


def _normalise(raw: Mapping[str, Any], obj: Mapping[str, Any]) -> ProviderEvent:
    """One Stripe event as a ``ProviderEvent``; unmapped or not-yet-final ones as UNKNOWN."""
    raw_type = str(raw.get("type"))
    common: dict[str, Any] = {
        "id": str(raw.get("id")),
        "raw_type": raw_type,
        "created": int(raw.get("created") or 0),
        "object_ref": str(obj.get("id")),
        "reference": _metadata_reference(obj),
        "payload": raw,
    }
    if raw_type in _PAYMENT_SUCCEEDED and _is_paid(raw_type, obj):
        return ProviderEvent(
            type=EventType.PAYMENT_SUCCEEDED,
            amount=_payment_amount(obj),
            currency=_currency(obj.get("currency")),
            payment_method=_single_payment_method(obj),
            **common,
        )
    if raw_type in _PAYMENT_FAILED:
        error = obj.get("last_payment_error") or {}
        return ProviderEvent(
            type=EventType.PAYMENT_FAILED,
            amount=_payment_amount(obj),
            currency=_currency(obj.get("currency")),
            failure_code=error.get("decline_code") or error.get("code"),
            failure_message=error.get("message"),
            payment_method=_single_payment_method(obj),
            **common,
        )
    if raw_type in _REFUND_EVENTS and obj.get("status") in _REFUND_OUTCOMES:
        return ProviderEvent(
            type=_REFUND_OUTCOMES[str(obj["status"])],
            amount=obj.get("amount"),
            currency=_currency(obj.get("currency")),
            failure_code=obj.get("failure_reason"),
            **common,
        )
    if raw_type == "transfer.created":
        return ProviderEvent(
            type=EventType.TRANSFER_CREATED,
            amount=obj.get("amount"),
            currency=_currency(obj.get("currency")),
            **common,
        )
    if raw_type in _PAYOUT_OUTCOMES:
        return ProviderEvent(
            type=_PAYOUT_OUTCOMES[raw_type],
            amount=obj.get("amount"),
            currency=_currency(obj.get("currency")),
            failure_code=obj.get("failure_code"),
            failure_message=obj.get("failure_message"),
            **common,
        )
    if raw_type == "account.updated":
        account = StripeProvider._connected_account(obj)
        return ProviderEvent(type=EventType.ACCOUNT_UPDATED, account=account, **common)
    return ProviderEvent(type=EventType.UNKNOWN, **common)


def _is_paid(raw_type: str, obj: Mapping[str, Any]) -> bool:
    """A completed session paid by a delayed method is not paid yet; its async event follows."""
    if raw_type == "checkout.session.completed":
        return obj.get("payment_status") == "paid"
    return True


def _payment_amount(obj: Mapping[str, Any]) -> int | None:
    """Received amount for a PaymentIntent, total for a Checkout Session."""
    if obj.get("object") == "payment_intent":
        received = obj.get("amount_received")
        return int(received) if received else int(obj.get("amount") or 0)
    total = obj.get("amount_total")
    return int(total) if total is not None else None
