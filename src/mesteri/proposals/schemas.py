"""Shapes of the proposals API (SPEC 5.1 field names; amounts in integer minor units)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from mesteri.kit.text import Clean
from mesteri.milestones.schemas import MilestoneTerms
from mesteri.payments.schemas import FeeQuoteOut

# Prices are stored as 32-bit integers (minor units): 20 million in major units is plenty.
MAX_PRICE = 2_000_000_000
MAX_MILESTONES = 20


class QuestionIn(BaseModel):
    """A question the pro asks the client (the answer, when there is one, comes later)."""

    model_config = ConfigDict(extra="forbid")

    question: Clean = Field(min_length=1, max_length=1000)
    answer: Clean | None = Field(default=None, max_length=2000)


class TermsIn(BaseModel):
    """Terms put on the table: by the pro (offer, revision) or the client (counter)."""

    model_config = ConfigDict(extra="forbid")

    price: int = Field(gt=0, le=MAX_PRICE, description="minor units; the milestones sum to it")
    milestones: list[MilestoneTerms] = Field(max_length=MAX_MILESTONES)
    duration_days: int | None = Field(default=None, ge=1, le=3650)
    message: Clean = Field(default="", max_length=5000)


class ProposalIn(TermsIn):
    currency: str = Field(min_length=3, max_length=3, description="the job's currency")
    questions: list[QuestionIn] = Field(default_factory=list, max_length=10)


class ProposalPatch(BaseModel):
    """Edit a proposal the client has not answered yet; omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    price: int | None = Field(default=None, gt=0, le=MAX_PRICE)
    milestones: list[MilestoneTerms] | None = Field(default=None, max_length=MAX_MILESTONES)
    duration_days: int | None = Field(default=None, ge=1, le=3650)
    message: Clean | None = Field(default=None, max_length=5000)
    questions: list[QuestionIn] | None = Field(default=None, max_length=10)


class DeclineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Clean | None = Field(default=None, max_length=2000)


class MilestoneTermsOut(BaseModel):
    title: str
    amount: int
    due_date: str | None = None
    dod: list[str] = Field(default_factory=list)


class QuestionOut(BaseModel):
    question: str
    answer: str | None = None


class ProCardOut(BaseModel):
    """The pro as the client sees them next to a proposal (public fields only)."""

    id: uuid.UUID
    display_name: str
    rating: float | None
    reviews_count: int
    verified: bool


class RevisionOut(BaseModel):
    number: int
    author: str
    price: int
    duration_days: int | None
    message: str
    milestones: list[MilestoneTermsOut]
    created_at: datetime


class ProposalOut(BaseModel):
    id: uuid.UUID
    job_id: uuid.UUID
    pro_id: uuid.UUID
    state: str
    price: int
    currency: str
    duration_days: int | None
    message: str
    questions: list[QuestionOut]
    milestones: list[MilestoneTermsOut]
    revision: int
    decline_reason: str | None
    contract_id: uuid.UUID | None
    expires_at: datetime
    answered_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ProposalListItem(ProposalOut):
    pro: ProCardOut | None = None
    fees: FeeQuoteOut | None = None


class ProposalDetailOut(ProposalListItem):
    actions: list[str]
    revisions: list[RevisionOut]


class AcceptOut(BaseModel):
    contract_id: uuid.UUID
    proposal: ProposalOut
