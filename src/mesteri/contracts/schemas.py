"""Request and response shapes of the contracts API."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mesteri.kit.text import Clean
from mesteri.milestones.schemas import MilestoneTerms


class SignIn(BaseModel):
    """A signature: the typed full name and the consent, optionally naming the exact
    document that was read (its version number and/or SHA-256)."""

    model_config = ConfigDict(extra="forbid")

    full_name: Clean = Field(min_length=1, max_length=160)
    agree: bool
    document_sha256: str | None = Field(default=None, pattern="^[0-9a-fA-F]{64}$")
    version: int | None = Field(default=None, ge=1, le=10_000)


class AmendmentIn(BaseModel):
    """Every milestone of the contract as it should be: funded (or later) ones exactly as
    they are, with their ``id``; changed unfunded ones with their ``id``; new ones without.
    Unfunded milestones left out are dropped. The new price is the sum of the amounts."""

    model_config = ConfigDict(extra="forbid")

    milestones: list[MilestoneTerms] = Field(min_length=1, max_length=30)
    reason: Clean = Field(default="", max_length=2000)
    price: int | None = Field(default=None, gt=0, description="if given, must equal the sum")


class PartyOut(BaseModel):
    user_id: uuid.UUID
    name: str
    pro_id: uuid.UUID | None = None
    display_name: str | None = None
    business_type: str | None = None
    business_id: str | None = None
    city: str | None = None
    verified_at: datetime | None = None


class SignatureOut(BaseModel):
    party: str
    full_name: str
    signed_at: datetime
    document_sha256: str


class VersionOut(BaseModel):
    number: int
    state: str
    language: str
    document_sha256: str
    reason: str
    price: int
    created_at: datetime
    signed_at: datetime | None
    document_url: str
    signatures: list[SignatureOut]


class ContractMilestoneOut(BaseModel):
    """A summary; ``GET /milestones/{id}`` has the whole milestone."""

    id: uuid.UUID
    position: int
    title: str
    amount: int
    currency: str
    state: str
    due_date: date | None
    dod: list[dict[str, Any]]
    actions: list[str]


class HistoryOut(BaseModel):
    transition: str
    from_state: str
    to_state: str
    actor: str
    at: datetime


class ContractOut(BaseModel):
    id: uuid.UUID
    state: str
    job_id: uuid.UUID
    proposal_id: uuid.UUID
    title: str
    price: int
    currency: str
    market: str
    client: PartyOut
    pro: PartyOut
    versions: list[VersionOut]
    current_version: int
    signed_version: int | None
    # The version waiting for signatures, if any, and what this user may do now.
    pending_version: int | None
    my_party: str | None
    actions: list[str]
    milestones: list[ContractMilestoneOut]
    history: list[HistoryOut]
    created_at: datetime
    activated_at: datetime | None
    completed_at: datetime | None


class ContractListItem(BaseModel):
    id: uuid.UUID
    state: str
    job_id: uuid.UUID
    title: str
    price: int
    currency: str
    my_party: str | None
    counterpart: str
    current_version: int
    signed_version: int | None
    awaiting_my_signature: bool
    created_at: datetime
