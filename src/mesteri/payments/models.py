"""Payments: the double-entry ledger, escrow holds and every record of money moving.

The ledger's rules live in the database as well as in Python (migration 0002): lines of
an entry balance per currency (a deferred constraint trigger), entries and lines are
immutable (triggers), every line updates its account's balance under the row lock and
stores the running balance, and accounts that must not go negative have a CHECK. Lines
of the shared platform accounts wait in ``ledger_lines_pending`` and are applied in
batches (migration 0009), so postings never lock those busy rows.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from mesteri.kit.db import Base
from mesteri.kit.ids import new_id

# ---------------------------------------------------------------- ledger


class AccountKind(enum.StrEnum):
    """Ledger accounts (DESIGN section 5). Balances are signed; every entry sums to zero.

    ``provider_clearing`` mirrors the provider's platform balance with the opposite sign:
    money entering the platform comes out of it and money leaving goes back into it, so
    the sum of all balances of a currency is always zero.
    """

    PROVIDER_CLEARING = "provider_clearing"
    ESCROW = "escrow"  # owner: the hold
    WALLET_PENDING = "wallet_pending"  # owner: the pro (or referrer); hold period running
    WALLET_AVAILABLE = "wallet_available"  # owner: the pro; withdrawable
    PAYOUTS_IN_TRANSIT = "payouts_in_transit"  # owner: the pro
    REFUNDS_PAYABLE = "refunds_payable"  # owner: the hold; refunds sent, not yet confirmed
    PLATFORM_REVENUE = "platform_revenue"
    VAT_PAYABLE = "vat_payable"
    PROVIDER_FEES = "provider_fees"  # an expense against revenue (negative balance)


# Accounts whose balance is allowed below zero: the mirror of the outside world and the
# expense account. Everything that holds someone's money must never go negative.
MAY_GO_NEGATIVE = frozenset({AccountKind.PROVIDER_CLEARING, AccountKind.PROVIDER_FEES})
# Accounts owned by the platform itself (no owner); updated by many postings.
PLATFORM_KINDS = frozenset(
    {
        AccountKind.PROVIDER_CLEARING,
        AccountKind.PLATFORM_REVENUE,
        AccountKind.VAT_PAYABLE,
        AccountKind.PROVIDER_FEES,
    }
)


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        UniqueConstraint("kind", "owner_id", "currency", postgresql_nulls_not_distinct=True),
        # Lines reference (id, currency), so a line cannot be in another currency.
        UniqueConstraint("id", "currency", name="uq_ledger_accounts_id_currency"),
        CheckConstraint("may_go_negative OR balance >= 0", name="non_negative"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(30))
    owner_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    currency: Mapped[str] = mapped_column(String(3))
    may_go_negative: Mapped[bool] = mapped_column(Boolean, default=False)
    # Maintained by the line trigger only; never written by the application.
    balance: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime]


class EntryKind(enum.StrEnum):
    CAPTURE = "capture"
    RELEASE = "release"
    REFUND = "refund"
    REFUND_CONFIRMED = "refund_confirmed"
    REFUND_RETURNED = "refund_returned"
    MATURE = "mature"
    PAYOUT = "payout"
    PAYOUT_PAID = "payout_paid"
    PAYOUT_RETURNED = "payout_returned"
    REVERSAL = "reversal"


class LedgerEntry(Base):
    """One balanced posting: what happened, what caused it, and its idempotency key."""

    __tablename__ = "ledger_entries"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(30))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    cause_type: Mapped[str] = mapped_column(String(30))  # hold, payment, refund, payout, …
    cause_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    hold_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    provider_ref: Mapped[str | None] = mapped_column(String(120), index=True)
    provider_event_id: Mapped[str | None] = mapped_column(String(120))
    reverses_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("ledger_entries.id"), unique=True
    )
    memo: Mapped[str] = mapped_column(String(300), default="")
    posted_at: Mapped[datetime]

    __table_args__ = (Index("ix_ledger_entries_cause", "cause_type", "cause_id"),)


class LedgerLine(Base):
    __tablename__ = "ledger_lines"
    __table_args__ = (
        ForeignKeyConstraint(
            ["account_id", "currency"],
            ["ledger_accounts.id", "ledger_accounts.currency"],
            name="fk_ledger_lines_account_currency",
        ),
        CheckConstraint("amount <> 0", name="non_zero"),
        # History of one account in posting order (keyset pagination).
        Index("ix_ledger_lines_account_seq", "account_id", "seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    # Posting order within the database; the running balance follows it.
    seq: Mapped[int] = mapped_column(
        BigInteger, server_default=text("nextval('ledger_line_seq')"), unique=True
    )
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_entries.id"), index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)  # positive: into the account
    # Set by the trigger from the account row it updated.
    balance_after: Mapped[int] = mapped_column(BigInteger, server_default="0")


class LedgerLinePending(Base):
    """A line of a shared platform account waiting for the roll-up (``ledger.roll_up``),
    which moves it into ``ledger_lines`` and its account's balance (migration 0009):
    postings never lock the busiest account rows. Balances count these lines."""

    __tablename__ = "ledger_lines_pending"
    __table_args__ = (CheckConstraint("amount <> 0", name="non_zero"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    entry_id: Mapped[uuid.UUID] = mapped_column(Uuid, index=True)
    account_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)


# ---------------------------------------------------------------- escrow


class HoldState(enum.StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    HELD = "held"
    FROZEN = "frozen"
    RELEASED = "released"
    REFUNDED = "refunded"
    SPLIT = "split"
    CANCELLED = "cancelled"


class Hold(Base):
    """Money held in escrow for one reference (a milestone), from payer for payee."""

    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint("amount > 0", name="positive_amount"),
        CheckConstraint("released + refunded <= captured", name="settled_within_captured"),
        CheckConstraint("released >= 0 AND refunded >= 0 AND captured >= 0", name="non_negative"),
        CheckConstraint(
            "referral_share_bps IS NULL OR referral_share_bps BETWEEN 0 AND 9000",
            name="referral_share_range",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    reference: Mapped[str] = mapped_column(String(120), unique=True)
    description: Mapped[str] = mapped_column(String(300))
    payer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    payee_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    referrer_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    referral_share_bps: Mapped[int | None] = mapped_column(Integer)
    category: Mapped[str | None] = mapped_column(String(80))
    # The fee and VAT rates of the quote when the hold was created; later changes to the
    # market's rates do not touch money already promised.
    fee_bps: Mapped[int] = mapped_column(Integer)
    vat_bps: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    amount: Mapped[int] = mapped_column(BigInteger)
    captured: Mapped[int] = mapped_column(BigInteger, default=0)
    released: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    state: Mapped[str] = mapped_column(String(20), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    # The first result of settling (release, refund in full or split), returned on repeats.
    settlement: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PaymentState(enum.StrEnum):
    REQUIRES_PAYMENT = "requires_payment"
    SUCCEEDED = "succeeded"
    CANCELLED = "cancelled"


class Payment(Base):
    """One checkout at the provider for a hold; declined attempts leave it payable."""

    __tablename__ = "payments"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    hold_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("holds.id"), index=True)
    provider: Mapped[str] = mapped_column(String(20))
    provider_ref: Mapped[str] = mapped_column(String(120))
    checkout_url: Mapped[str] = mapped_column(String(500))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[str] = mapped_column(String(20))
    method: Mapped[str | None] = mapped_column(String(20))
    failure_code: Mapped[str | None] = mapped_column(String(60))
    failure_message: Mapped[str | None] = mapped_column(String(300))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("provider", "provider_ref"),)


class RefundState(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Refund(Base):
    __tablename__ = "refunds"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    hold_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("holds.id"), index=True)
    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payments.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(300), default="")
    state: Mapped[str] = mapped_column(String(20))
    provider_ref: Mapped[str | None] = mapped_column(String(120), unique=True)
    requested_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (CheckConstraint("amount > 0", name="positive_amount"),)


class TransferState(enum.StrEnum):
    PENDING = "pending"  # recorded with the release; the job sends it
    SENT = "sent"


class Transfer(Base):
    """A transfer of a released share to the payee's (or referrer's) connected account."""

    __tablename__ = "transfers"
    __table_args__ = (UniqueConstraint("hold_id", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    hold_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("holds.id"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    # Written before the entry it points to (the entry's lines go last, see ledger.post),
    # so the reference is checked at commit.
    entry_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledger_entries.id", deferrable=True, initially="DEFERRED")
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[str] = mapped_column(String(20))
    provider_ref: Mapped[str | None] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]


# ---------------------------------------------------------------- wallets


class CreditState(enum.StrEnum):
    PENDING = "pending"
    AVAILABLE = "available"


class WalletCredit(Base):
    """Money released to a wallet; becomes withdrawable when its hold period ends (a timer)."""

    __tablename__ = "wallet_credits"
    __table_args__ = (UniqueConstraint("entry_id", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    hold_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("holds.id"))
    # Written before the entry it points to (the entry's lines go last, see ledger.post),
    # so the reference is checked at commit.
    entry_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledger_entries.id", deferrable=True, initially="DEFERRED")
    )
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[str] = mapped_column(String(20))
    available_at: Mapped[datetime]
    created_at: Mapped[datetime]


class PayoutState(enum.StrEnum):
    REQUESTED = "requested"
    IN_TRANSIT = "in_transit"
    PAID = "paid"
    FAILED = "failed"


class Payout(Base):
    __tablename__ = "payouts"
    __table_args__ = (CheckConstraint("amount > 0", name="positive_amount"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    state: Mapped[str] = mapped_column(String(20))
    provider: Mapped[str] = mapped_column(String(20))
    provider_ref: Mapped[str | None] = mapped_column(String(120), unique=True)
    failure_code: Mapped[str | None] = mapped_column(String(60))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class PayoutAccountState(enum.StrEnum):
    ONBOARDING = "onboarding"  # created; the holder has not finished the provider's form
    RESTRICTED = "restricted"  # requirements are due; payouts disabled
    ACTIVE = "active"  # payout capability active


class PayoutAccount(Base):
    """A user's connected account at the provider (Stripe Express or the sandbox)."""

    __tablename__ = "payout_accounts"
    __table_args__ = (
        UniqueConstraint("user_id", "provider"),
        UniqueConstraint("provider", "provider_ref"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    provider: Mapped[str] = mapped_column(String(20))
    provider_ref: Mapped[str] = mapped_column(String(120))
    state: Mapped[str] = mapped_column(String(20))
    requirements_due: Mapped[list[str]] = mapped_column(JSONB, default=list)
    # ``created`` of the last provider event applied; older events arriving late are ignored.
    last_event_at: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


# ---------------------------------------------------------------- provider events


class WebhookEvent(Base):
    """Every verified provider event, once (the primary key de-duplicates deliveries)."""

    __tablename__ = "webhook_events"

    provider: Mapped[str] = mapped_column(String(20), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    type: Mapped[str] = mapped_column(String(60))
    object_ref: Mapped[str] = mapped_column(String(120))
    outcome: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime]


class ReconciliationAlert(Base):
    """A difference between our ledger and the provider's records, for finance staff."""

    __tablename__ = "reconciliation_alerts"
    __table_args__ = (UniqueConstraint("provider", "object_ref", "problem"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    provider: Mapped[str] = mapped_column(String(20))
    object_kind: Mapped[str] = mapped_column(String(20))
    object_ref: Mapped[str] = mapped_column(String(120))
    problem: Mapped[str] = mapped_column(String(60))
    expected: Mapped[int | None] = mapped_column(BigInteger)
    actual: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
