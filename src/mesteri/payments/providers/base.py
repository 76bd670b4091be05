"""The payment provider interface (DESIGN section 5).

Everything the platform asks of a provider goes through these calls; everything that
changes state on the provider's side comes back as a signed webhook that ``parse_webhook``
turns into a ``ProviderEvent``. Every call that creates something carries an idempotency
key derived from our own record id, so a crash and a retry never create it twice.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

# The metadata key under which every object we create carries our own record id.
REFERENCE_KEY = "mesteri_ref"


class ProviderError(Exception):
    """The provider refused or could not be reached; callers retry or report it."""


class InvalidSignatureError(ProviderError):
    """A webhook whose signature or timestamp does not verify."""


class EventType(enum.StrEnum):
    """Provider events, normalised. Anything else arrives as ``UNKNOWN`` and is acknowledged."""

    PAYMENT_SUCCEEDED = "payment.succeeded"
    PAYMENT_FAILED = "payment.failed"
    REFUND_SUCCEEDED = "refund.succeeded"
    REFUND_FAILED = "refund.failed"
    TRANSFER_CREATED = "transfer.created"
    PAYOUT_PAID = "payout.paid"
    PAYOUT_FAILED = "payout.failed"
    ACCOUNT_UPDATED = "account.updated"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class CheckoutRequest:
    """A payment to collect for an escrow hold; ``reference`` is our payment id."""

    reference: str
    amount: int
    currency: str
    description: str
    transfer_group: str
    customer_email: str | None
    success_url: str
    cancel_url: str
    allow_bnpl: bool = True


@dataclass(frozen=True)
class Checkout:
    provider_ref: str  # the provider's payment (e.g. PaymentIntent) id
    checkout_url: str
    session_ref: str | None = None  # e.g. a Stripe Checkout Session id


@dataclass(frozen=True)
class ProviderObject:
    """What the provider holds for one object, for answers and reconciliation."""

    ref: str
    kind: str  # payment, refund, transfer, payout, account
    status: str
    amount: int
    currency: str
    amount_refunded: int = 0
    fee: int = 0
    failure_code: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


class OnboardingStatus(enum.StrEnum):
    """The provider's own verdict on a connected account's identity checks, normalised.

    The pros module combines it with our staff review (docs/architecture.md, "Verification").
    """

    ACTION_REQUIRED = "action_required"  # the holder must still give something
    PENDING = "pending"  # everything given; the provider is still checking
    VERIFIED = "verified"  # nothing outstanding and payouts enabled
    REJECTED = "rejected"  # the provider refused the account (fraud, terms, listed, ...)


@dataclass(frozen=True)
class ConnectedAccount:
    ref: str
    payouts_enabled: bool
    # What the holder must still give now (Stripe's ``currently_due``, which includes
    # ``past_due``) and what is already late (payouts or charges stop until it is given).
    requirements_due: tuple[str, ...] = ()
    past_due: tuple[str, ...] = ()
    disabled_reason: str | None = None
    status: OnboardingStatus = OnboardingStatus.ACTION_REQUIRED


@dataclass(frozen=True)
class ProviderEvent:
    """One verified webhook event, normalised.

    ``object_ref`` is the provider's id of the object the event is about; ``reference`` is
    our own record id when the provider carries it back (metadata), else ``None``.
    """

    id: str
    type: EventType
    raw_type: str
    created: int
    object_ref: str
    reference: str | None = None
    amount: int | None = None
    currency: str | None = None
    fee: int = 0
    failure_code: str | None = None
    failure_message: str | None = None
    payment_method: str | None = None
    account: ConnectedAccount | None = None
    payload: Mapping[str, Any] = field(default_factory=dict)


class PaymentProvider(Protocol):
    """What the payments module needs from a provider (sandbox or Stripe)."""

    name: str
    # Whether the provider's onboarding checks the holder's identity (Stripe's KYC) and so
    # must agree before a pro counts as verified; the sandbox's onboarding checks nothing.
    checks_identity: bool

    async def create_checkout(self, request: CheckoutRequest, *, idempotency_key: str) -> Checkout:
        """A hosted page where the payer pays ``amount``; captured at once when paid."""
        ...

    async def capture(self, provider_ref: str, *, idempotency_key: str) -> ProviderObject:
        """Capture an authorised payment (payments are captured at funding; a no-op when done)."""
        ...

    async def refund(
        self, provider_ref: str, amount: int, *, reference: str, idempotency_key: str
    ) -> ProviderObject:
        """Refund ``amount`` of a captured payment to the payer."""
        ...

    async def create_connected_account(
        self, *, reference: str, email: str | None, country: str, idempotency_key: str
    ) -> ConnectedAccount:
        """An account that can receive transfers and pay out to a bank (Stripe Express)."""
        ...

    async def onboarding_link(self, account_ref: str, *, return_url: str, refresh_url: str) -> str:
        """Where the account holder completes the provider's onboarding (KYC, bank)."""
        ...

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
        """Move ``amount`` of the platform balance to a connected account."""
        ...

    async def payout(
        self,
        account_ref: str,
        amount: int,
        currency: str,
        *,
        reference: str,
        idempotency_key: str,
    ) -> ProviderObject:
        """Pay ``amount`` from a connected account to its bank; the result arrives as a webhook."""
        ...

    async def retrieve(
        self, kind: str, ref: str, *, account_ref: str | None = None
    ) -> ProviderObject:
        """The provider's current record of one object (reconciliation)."""
        ...

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> ProviderEvent:
        """Verify signature and timestamp, then normalise; raises ``InvalidSignatureError``."""
        ...
