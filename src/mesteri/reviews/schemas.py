"""Request and response shapes of the reviews API."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mesteri.kit.text import Clean, Trimmed

MAX_PHOTOS = 10  # per review


class Sort(enum.StrEnum):
    NEWEST = "newest"
    HELPFUL = "helpful"
    LOWEST = "lowest"


class ReportReason(enum.StrEnum):
    FAKE = "fake"
    OFFENSIVE = "offensive"
    PERSONAL_DATA = "personal_data"
    SPAM = "spam"
    OTHER = "other"


class Decision(enum.StrEnum):
    HIDE = "hide"
    KEEP = "keep"


class Ratings(BaseModel):
    """1 to 5 stars: overall is required, the four dimensions are optional."""

    model_config = ConfigDict(extra="forbid")

    overall: int = Field(ge=1, le=5)
    quality: int | None = Field(default=None, ge=1, le=5)
    punctuality: int | None = Field(default=None, ge=1, le=5)
    communication: int | None = Field(default=None, ge=1, le=5)
    value: int | None = Field(default=None, ge=1, le=5)


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ratings: Ratings
    comment: Trimmed = Field(default="", max_length=5000)
    photo_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_PHOTOS)


class ReviewPatch(BaseModel):
    """Only the fields given change; ``ratings`` replaces all the stars at once."""

    model_config = ConfigDict(extra="forbid")

    ratings: Ratings | None = None
    comment: Trimmed | None = Field(default=None, max_length=5000)
    photo_ids: list[uuid.UUID] | None = Field(default=None, max_length=MAX_PHOTOS)


class ResponseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Clean = Field(min_length=1, max_length=3000)

    @field_validator("body")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("Write an answer.")
        return value


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: ReportReason
    details: Trimmed = Field(default="", max_length=2000)


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Decision
    reason: Trimmed = Field(default="", max_length=500)


class PhotoOut(BaseModel):
    id: uuid.UUID
    url: str
    thumbnail_url: str


class ResponseOut(BaseModel):
    body: str
    at: datetime


class VerifiedJobOut(BaseModel):
    category: str
    month: str  # "2026-05"


class ReviewOut(BaseModel):
    """A review as its author (or, once published, the other party) sees it."""

    id: uuid.UUID
    contract_id: uuid.UUID
    side: str
    state: str
    ratings: Ratings
    comment: str
    photos: list[PhotoOut]
    helpful_count: int
    response: ResponseOut | None
    verified_job: VerifiedJobOut
    published_at: datetime | None
    created_at: datetime
    updated_at: datetime


class ContractReviewsOut(BaseModel):
    """The review page of a contract for one of its parties."""

    contract_id: uuid.UUID
    my_side: str
    open: bool  # money was released: reviews can be written
    can_write: bool  # open, not closed, and no review by this side yet
    can_edit: bool  # this side's review is still sealed
    opened_at: datetime | None
    closes_at: datetime | None
    closed_at: datetime | None
    mine: ReviewOut | None
    theirs: ReviewOut | None  # only once published


class PublicReviewOut(BaseModel):
    """A published review of a pro, as anyone sees it."""

    id: uuid.UUID
    ratings: Ratings
    comment: str
    photos: list[PhotoOut]
    author: str  # "Ana P."
    verified_job: VerifiedJobOut
    helpful_count: int
    response: ResponseOut | None
    published_at: datetime


class HelpfulOut(BaseModel):
    review_id: uuid.UUID
    helpful_count: int
    voted: bool


class ReportOut(BaseModel):
    id: uuid.UUID
    review_id: uuid.UUID
    reason: str
    details: str
    state: str
    created_at: datetime


class QueueReviewOut(BaseModel):
    id: uuid.UUID
    pro_id: uuid.UUID
    side: str
    state: str
    ratings: Ratings
    comment: str
    author: str
    response: ResponseOut | None
    published_at: datetime | None


class QueueItemOut(BaseModel):
    """An open report with the review it is about (the moderation queue)."""

    report: ReportOut
    review: QueueReviewOut
    open_reports: int  # on this review


class DecisionOut(BaseModel):
    report: ReportOut
    review_state: str
    closed_reports: int
