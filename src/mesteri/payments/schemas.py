"""Request and response bodies of the payments API (amounts: integer minor units)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field

MAX_AMOUNT = 10**12  # 10 billion in major units: far beyond any job


class FeeQuoteOut(BaseModel):
    amount: int
    platform_fee: int
    referral_fee: int
    pro_net: int
    vat_on_fee: int
    currency: str
    fee_rate_bps: int
    vat_rate_bps: int


class HoldIn(BaseModel):
    """Staff create a hold directly (until milestones exist, and for support cases)."""

    model_config = ConfigDict(extra="forbid")

    payer_email: EmailStr
    payee_email: EmailStr
    amount: int = Field(gt=0, le=MAX_AMOUNT)
    currency: str = Field(min_length=3, max_length=3)
    description: str = Field(min_length=1, max_length=300)
    reference: str | None = Field(default=None, min_length=1, max_length=120)
    category: str | None = Field(default=None, max_length=80)
    referrer_email: EmailStr | None = None
    referral_share: int | None = Field(default=None, ge=0, le=90)


class SettlementOut(BaseModel):
    outcome: str
    released: int
    refunded: int
    platform_fee: int
    referral_fee: int
    pro_net: int
    vat_on_fee: int
    currency: str
    at: str


class PaymentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    hold_id: uuid.UUID
    amount: int
    currency: str
    state: str
    method: str | None
    failure_code: str | None
    failure_message: str | None
    checkout_url: str
    created_at: datetime


class HoldOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    reference: str
    description: str
    payer_id: uuid.UUID
    payee_id: uuid.UUID
    referrer_id: uuid.UUID | None
    amount: int
    captured: int
    released: int
    refunded: int
    held: int
    currency: str
    state: str
    settlement: SettlementOut | None
    created_at: datetime


class FundOut(BaseModel):
    hold: HoldOut
    payment_id: uuid.UUID
    checkout_url: str


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int | None = Field(default=None, gt=0, le=MAX_AMOUNT)
    reason: str = Field(default="", max_length=300)


class RefundOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    hold_id: uuid.UUID
    payment_id: uuid.UUID
    amount: int
    currency: str
    state: str
    reason: str
    created_at: datetime


class SplitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pro_amount: int = Field(ge=0, le=MAX_AMOUNT)
    client_amount: int = Field(ge=0, le=MAX_AMOUNT)


class WalletEntryOut(BaseModel):
    seq: int
    account: str  # pending, available, in_transit
    amount: int
    balance_after: int
    kind: str
    hold_id: uuid.UUID | None
    memo: str
    posted_at: datetime


class WalletOut(BaseModel):
    currency: str
    pending: int
    available: int
    in_transit: int
    payouts_enabled: bool
    entries: list[WalletEntryOut]
    next_cursor: str | None


class PayoutIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int = Field(gt=0, le=MAX_AMOUNT)
    currency: str = Field(min_length=3, max_length=3)


class PayoutOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    amount: int
    currency: str
    state: str
    failure_code: str | None
    created_at: datetime


class PayoutAccountOut(BaseModel):
    state: str
    requirements_due: list[str]
    onboarding_url: str | None = None


class LedgerLineOut(BaseModel):
    seq: int
    entry_id: uuid.UUID
    kind: str
    amount: int
    balance_after: int
    cause_type: str
    cause_id: uuid.UUID
    hold_id: uuid.UUID | None
    memo: str
    posted_at: datetime


class LedgerAccountOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    owner_id: uuid.UUID | None
    currency: str
    balance: int


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    provider: str
    object_kind: str
    object_ref: str
    problem: str
    expected: int | None
    actual: int | None
    detail: str
    created_at: datetime


class WebhookAck(BaseModel):
    received: bool
    outcome: str
    detail: dict[str, Any] | None = None
