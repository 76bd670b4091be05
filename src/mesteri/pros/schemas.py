"""Shapes of the pros API (SPEC 5.1 field names)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from mesteri.kit.text import Clean

BusinessType = Literal["pfa", "ii", "srl", "individual", "osek_patur", "osek_murshe", "company"]
AvailabilityIn = Literal["available", "busy", "vacation"]
Sort = Literal["relevance", "distance", "rating", "price"]


class CraftIn(BaseModel):
    category_id: uuid.UUID
    primary: bool = False
    years: int = Field(default=0, ge=0, le=70)


class CertificationIn(BaseModel):
    name: Clean = Field(max_length=120)
    issuer: Clean = Field(default="", max_length=120)
    year: int | None = Field(default=None, ge=1950, le=2100)


class InsuranceIn(BaseModel):
    insurer: Clean = Field(max_length=120)
    coverage: int | None = Field(default=None, ge=0, description="minor units")
    valid_until: Clean | None = Field(default=None, max_length=10, examples=["2027-12-31"])


class ProPatch(BaseModel):
    display_name: Clean | None = Field(default=None, min_length=2, max_length=120)
    bio: Clean | None = Field(default=None, max_length=4000)
    business_type: BusinessType | None = None
    business_id: Clean | None = Field(default=None, max_length=20)
    crafts: list[CraftIn] | None = Field(default=None, max_length=10)
    place_id: uuid.UUID | None = None
    radius_km: int | None = Field(default=None, ge=1, le=500)
    rate_min: int | None = Field(default=None, ge=0, le=100_000_000)
    rate_max: int | None = Field(default=None, ge=0, le=100_000_000)
    languages: list[Clean] | None = Field(default=None, max_length=10)
    certifications: list[CertificationIn] | None = Field(default=None, max_length=20)
    insurance: InsuranceIn | None = None


class AvailabilityPut(BaseModel):
    availability: AvailabilityIn


class CraftOut(BaseModel):
    category_id: uuid.UUID
    slug: str
    name: str
    primary: bool
    years: int | None = None


class PlaceRef(BaseModel):
    id: uuid.UUID
    name: str
    county: str


class PortfolioItemOut(BaseModel):
    id: uuid.UUID
    caption: str
    image_url: str
    thumbnail_url: str
    after_image_url: str | None
    category_id: uuid.UUID | None
    created_at: datetime


class ProOut(BaseModel):
    """The public profile: no phone, e-mail or address, ever."""

    id: uuid.UUID
    display_name: str
    bio: str
    business_type: str | None
    crafts: list[CraftOut]
    place: PlaceRef | None
    radius_km: int
    rate_min: int | None
    rate_max: int | None
    currency: str
    availability: str
    languages: list[str]
    certifications: list[dict[str, Any]]
    insured: bool
    tier: str
    badges: list[str]
    verified: bool
    rating: float | None
    reviews_count: int
    delivery_score: float
    portfolio_count: int
    member_since: datetime


class ReputationOut(BaseModel):
    """A pro's reputation (docs/reputation.md)."""

    score: float | None  # Bayesian-smoothed, recency-weighted rating, 1..5
    rating: float | None  # plain average of overall ratings
    reviews_count: int
    dimensions: dict[str, float | None]  # quality, punctuality, communication, value
    on_time: float | None  # share of milestones delivered by their due date
    milestones_delivered: int
    completion_rate: float | None
    contracts_ended: int
    response_hours: float | None


class ProDetailOut(ProOut):
    reputation: ReputationOut


class ProMeOut(ProOut):
    business_id: str | None
    insurance: dict[str, Any] | None
    verification_state: str
    listed: bool


class ProSearchItem(BaseModel):
    id: uuid.UUID
    display_name: str
    crafts: list[CraftOut]
    rating: float | None
    reviews_count: int
    verified: bool
    distance_km: float | None
    availability: str
    rate_min: int | None
    rate_max: int | None
    currency: str
    place_name: str | None
    portfolio_count: int
    score: float


class VerificationIn(BaseModel):
    kind: Literal["kyc", "kyb"]
    legal_name: Clean = Field(min_length=2, max_length=200)
    business_type: BusinessType | None = None
    business_id: Clean | None = Field(default=None, max_length=20)
    document_ids: list[uuid.UUID] = Field(min_length=1, max_length=5)


class ProviderCheckOut(BaseModel):
    """The payment provider's onboarding verdict on the pro's identity."""

    provider: str
    status: Literal["action_required", "pending", "verified", "rejected"]
    requirements_due: list[str]  # what the provider still needs (Stripe's names)
    past_due: list[str]  # needed and already late: payouts stop until given
    disabled_reason: str | None


class VerificationOut(BaseModel):
    """``state`` is our staff review of the latest submission; ``profile_state`` is the
    badge state, which also needs the provider when ``provider_required``."""

    id: uuid.UUID | None
    state: str
    kind: str | None
    reason: str | None
    submitted_at: datetime | None
    decided_at: datetime | None
    profile_state: str | None = None
    provider_required: bool = False
    provider: ProviderCheckOut | None = None


class AdminVerificationOut(BaseModel):
    id: uuid.UUID
    pro_id: uuid.UUID
    display_name: str
    state: str
    kind: str
    legal_name: str
    business_type: str | None
    business_id: str | None
    business_id_valid: bool | None
    document_ids: list[uuid.UUID]
    reason: str | None
    submitted_at: datetime
    decided_at: datetime | None


class RejectIn(BaseModel):
    reason: Clean = Field(min_length=3, max_length=500)


class SuggestItem(BaseModel):
    type: Literal["category", "pro", "place"]
    id: uuid.UUID
    label: str
    detail: str | None = None


MAX_ADDRESSES = 10


class AddressOut(BaseModel):
    """A saved address; exactly one of a non-empty list is the ``default``."""

    id: uuid.UUID
    label: str
    place_id: uuid.UUID
    place_name: str | None = None
    street: str
    default: bool


class ClientProfileOut(BaseModel):
    addresses: list[AddressOut]
    search_history: bool


class AddressIn(BaseModel):
    """``id`` keeps an existing address's id in a whole-list ``PATCH``; ``default`` makes
    it the default (the first address is when none is)."""

    id: uuid.UUID | None = None
    label: Clean = Field(min_length=1, max_length=60)
    place_id: uuid.UUID
    street: Clean = Field(default="", max_length=200)
    default: bool = False


class ClientProfilePatch(BaseModel):
    addresses: list[AddressIn] | None = Field(default=None, max_length=MAX_ADDRESSES)
    search_history: bool | None = None


class SearchHistoryOut(BaseModel):
    id: uuid.UUID
    query: dict[str, Any]
    at: datetime


class PortfolioIn(BaseModel):
    media_id: uuid.UUID
    after_media_id: uuid.UUID | None = None
    caption: Clean = Field(default="", max_length=300)
    category_id: uuid.UUID | None = None
