"""Milestone terms (shared by proposals, contracts and amendments) and API bodies."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mesteri.payments.schemas import MAX_AMOUNT


class TitleAndDod(BaseModel):
    """The cleaning shared by every milestone-like item: a real title, and Definition-of-Done
    lines without blanks (job plans and templates use it too)."""

    @field_validator("title", check_fields=False)
    @classmethod
    def _strip_title(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("A milestone needs a title.")
        return value

    @field_validator("dod", check_fields=False)
    @classmethod
    def _clean_dod(cls, items: list[str]) -> list[str]:
        cleaned = [item.strip() for item in items if item.strip()]
        if any(len(item) > 300 for item in cleaned):
            raise ValueError("Each Definition-of-Done item fits in 300 characters.")
        return cleaned


class MilestoneTerms(TitleAndDod):
    """One milestone as offered: what is delivered, for how much, by when, and its
    Definition of Done."""

    model_config = ConfigDict(extra="forbid")

    # On an amendment, the milestone this line keeps (funded ones must stay as they are).
    id: uuid.UUID | None = None
    title: str = Field(min_length=1, max_length=140)
    amount: int = Field(gt=0, le=MAX_AMOUNT)
    due_date: date | None = None
    dod: list[str] = Field(default_factory=list, max_length=30)


class SubmitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field(min_length=1, max_length=5000)
    attachment_ids: list[uuid.UUID] = Field(default_factory=list, max_length=20)
    # Indexes of the Definition-of-Done items the pro declares done.
    dod_done: list[int] = Field(default_factory=list, max_length=30)


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000)


class DodItemOut(BaseModel):
    text: str
    done: bool


class TransitionOut(BaseModel):
    transition: str
    from_state: str
    to_state: str
    actor: str
    at: datetime
    data: dict[str, Any]


class MilestoneOut(BaseModel):
    id: uuid.UUID
    contract_id: uuid.UUID
    position: int
    title: str
    amount: int
    currency: str
    state: str
    due_date: date | None
    dod: list[DodItemOut]
    submission_note: str | None
    submission_attachment_ids: list[uuid.UUID]
    change_request: str | None
    hold_id: uuid.UUID | None
    funded_at: datetime | None
    submitted_at: datetime | None
    auto_accept_at: datetime | None
    released_at: datetime | None
    actions: list[str]


class FundOut(BaseModel):
    payment_id: uuid.UUID
    checkout_url: str
    milestone: MilestoneOut
