"""Dispute API bodies and answers (never the ORM models)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mesteri.kit.text import Clean
from mesteri.payments.schemas import MAX_AMOUNT


def _text(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("Write a few words.")
    if "\x00" in value:
        raise ValueError("Text must not contain NUL characters.")
    return value


class EvidenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=5000)
    attachment_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)
    # Answering the mediator's question (a ``question`` event of this dispute).
    question_id: uuid.UUID | None = None

    _clean = field_validator("body")(_text)


class DisputeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)
    # What the opener contests; the whole held amount when left out.
    amount: int | None = Field(default=None, gt=0, le=MAX_AMOUNT)
    evidence: EvidenceIn | None = None

    _clean = field_validator("reason")(_text)


class OfferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pro_amount: int = Field(ge=0, le=MAX_AMOUNT)
    client_amount: int = Field(ge=0, le=MAX_AMOUNT)
    note: Clean = Field(default="", max_length=2000)


class QuestionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=5000)
    to: Literal["client", "pro", "both"] = "both"

    _clean = field_validator("body")(_text)


class ExpertRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The fee the party saw and accepts (GET /disputes/{id}/expert-quote).
    confirm_fee: int = Field(ge=0, le=MAX_AMOUNT)


class ExpertAssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expert_id: uuid.UUID


class ExpertReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: str = Field(min_length=1, max_length=20000)

    _clean = field_validator("body")(_text)


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: Literal["release", "refund", "split"]
    pro_amount: int | None = Field(default=None, ge=0, le=MAX_AMOUNT)
    client_amount: int | None = Field(default=None, ge=0, le=MAX_AMOUNT)
    note: str = Field(min_length=1, max_length=5000)

    _clean = field_validator("note")(_text)


class QuoteOut(BaseModel):
    fee: int
    currency: str


class OfferOut(BaseModel):
    id: uuid.UUID
    made_by: uuid.UUID
    made_by_role: str
    stage: str
    pro_amount: int
    client_amount: int
    currency: str
    note: str
    state: str
    client_accepted_at: datetime | None
    pro_accepted_at: datetime | None
    created_at: datetime


class TimelineItemOut(BaseModel):
    """One entry of the evidence timeline: a step of the dispute, a milestone transition
    or the milestone's delivery."""

    at: datetime
    source: Literal["dispute", "milestone"]
    kind: str
    actor_role: str
    body: str = ""
    attachment_ids: list[uuid.UUID] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)
    id: uuid.UUID | None = None


class DisputeListItem(BaseModel):
    id: uuid.UUID
    milestone_id: uuid.UUID
    contract_id: uuid.UUID
    stage: str
    opened_by_role: str
    reason: str
    currency: str
    amount_held: int
    amount_disputed: int
    stage_deadline: datetime | None
    mediator_id: uuid.UUID | None
    opened_at: datetime
    outcome: str | None


class DisputeOut(DisputeListItem):
    client_id: uuid.UUID
    pro_user_id: uuid.UUID
    milestone_state: str
    stage_started_at: datetime
    expert_id: uuid.UUID | None
    expert_requested_by: uuid.UUID | None
    expert_fee: int | None
    expert_fee_state: str | None
    expert_report: str | None
    pro_amount: int | None
    client_amount: int | None
    resolved_by: uuid.UUID | None
    resolution_note: str | None
    resolved_at: datetime | None
    my_role: str
    actions: list[str]
    offers: list[OfferOut]
    timeline: list[TimelineItemOut]


class ExpertPayOut(BaseModel):
    payment_id: uuid.UUID
    checkout_url: str
