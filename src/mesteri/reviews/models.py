"""Reviews of paid work, their moderation, and each pro's reputation.

A review exists only for a contract on which money was released to the pro: the
``review_windows`` row is opened by that first release and is what allows reviewing.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import (
    ARRAY,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from mesteri.kit.db import Base
from mesteri.kit.ids import new_id

DIMENSIONS = ("quality", "punctuality", "communication", "value")


class ReviewSide(enum.StrEnum):
    CLIENT = "client"  # the client reviews the pro (public, counts for reputation)
    PRO = "pro"  # the pro reviews the client


class ReviewState(enum.StrEnum):
    SUBMITTED = "submitted"  # sealed: editable by its author, visible to nobody else
    PUBLISHED = "published"
    HIDDEN = "hidden"  # removed by moderation (kept, with the reason, for the record)


class ReportState(enum.StrEnum):
    OPEN = "open"
    KEPT = "kept"
    HIDDEN = "hidden"


class ReviewWindow(Base):
    """Opened when money is first released to the pro on a contract; reviews publish
    together when both sides have written, or when ``closes_at`` passes."""

    __tablename__ = "review_windows"

    contract_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contracts.id"), primary_key=True
    )
    job_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("jobs.id"))
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    pro_user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    pro_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("pro_profiles.id"))
    category_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("categories.id"))
    opened_at: Mapped[datetime]  # the first release
    closes_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]  # reviews published (both written or window over)


class Review(Base):
    __tablename__ = "reviews"
    __table_args__ = (
        UniqueConstraint("contract_id", "side", name="uq_reviews_contract_side"),
        CheckConstraint("side IN ('client', 'pro')", name="side"),
        CheckConstraint("state IN ('submitted', 'published', 'hidden')", name="state"),
        CheckConstraint("overall BETWEEN 1 AND 5", name="overall"),
        *(CheckConstraint(f"{d} IS NULL OR {d} BETWEEN 1 AND 5", name=d) for d in DIMENSIONS),
        # A pro's public reviews, one index per sort of GET /pros/{id}/reviews.
        Index(
            "ix_reviews_pro_newest",
            "pro_id",
            text("published_at DESC"),
            text("id DESC"),
            postgresql_where=text("state = 'published' AND side = 'client'"),
        ),
        Index(
            "ix_reviews_pro_helpful",
            "pro_id",
            text("helpful_count DESC"),
            text("published_at DESC"),
            text("id DESC"),
            postgresql_where=text("state = 'published' AND side = 'client'"),
        ),
        Index(
            "ix_reviews_pro_lowest",
            "pro_id",
            "overall",
            text("published_at DESC"),
            text("id DESC"),
            postgresql_where=text("state = 'published' AND side = 'client'"),
        ),
        Index("ix_reviews_subject", "subject_id", "published_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    contract_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("contracts.id"))
    side: Mapped[str] = mapped_column(String(6))
    author_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    pro_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("pro_profiles.id"))
    category_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("categories.id"))
    work_month: Mapped[str] = mapped_column(String(7))  # "2026-05": the verified job label
    state: Mapped[str] = mapped_column(String(10), default=ReviewState.SUBMITTED)
    overall: Mapped[int] = mapped_column(Integer)
    quality: Mapped[int | None] = mapped_column(Integer)
    punctuality: Mapped[int | None] = mapped_column(Integer)
    communication: Mapped[int | None] = mapped_column(Integer)
    value: Mapped[int | None] = mapped_column(Integer)
    comment: Mapped[str] = mapped_column(Text, default="")
    photo_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), default=list)
    helpful_count: Mapped[int] = mapped_column(Integer, default=0)
    response: Mapped[str | None] = mapped_column(Text)  # the pro's one answer
    responded_at: Mapped[datetime | None]
    hidden_reason: Mapped[str | None] = mapped_column(String(500))
    published_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ReviewVote(Base):
    """One "helpful" vote per signed-in user per review."""

    __tablename__ = "review_votes"

    review_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("reviews.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), primary_key=True)
    created_at: Mapped[datetime]


class ReviewReport(Base):
    __tablename__ = "review_reports"
    __table_args__ = (
        UniqueConstraint("review_id", "reporter_id", name="uq_review_reports_reporter"),
        CheckConstraint("state IN ('open', 'kept', 'hidden')", name="state"),
        Index("ix_review_reports_queue", "created_at", postgresql_where=text("state = 'open'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    review_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("reviews.id"), index=True)
    reporter_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(String(30))  # fake, offensive, personal_data, …
    details: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(10), default=ReportState.OPEN)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    decision_reason: Mapped[str | None] = mapped_column(String(500))
    decided_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Reputation(Base):
    """A pro's reputation, kept current by events (reviews published or hidden,
    milestones settled, contracts ended, proposals sent) as running sums and counts; the
    figures shown are ratios of them (reviews/reputation.py), never aggregated on read.
    The formulas are in docs/reputation.md."""

    __tablename__ = "reputations"

    pro_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("pro_profiles.id", ondelete="CASCADE"), primary_key=True
    )
    reviews_count: Mapped[int] = mapped_column(Integer, default=0)
    overall_sum: Mapped[int] = mapped_column(Integer, default=0)
    # Per dimension: how many reviews rated it and the sum (dimensions are optional).
    quality_count: Mapped[int] = mapped_column(Integer, default=0)
    quality_sum: Mapped[int] = mapped_column(Integer, default=0)
    punctuality_count: Mapped[int] = mapped_column(Integer, default=0)
    punctuality_sum: Mapped[int] = mapped_column(Integer, default=0)
    communication_count: Mapped[int] = mapped_column(Integer, default=0)
    communication_sum: Mapped[int] = mapped_column(Integer, default=0)
    value_count: Mapped[int] = mapped_column(Integer, default=0)
    value_sum: Mapped[int] = mapped_column(Integer, default=0)
    # Recency-weighted Σ wᵢ·overallᵢ and Σ wᵢ, decayed daily (half-life in settings).
    weighted_sum: Mapped[float] = mapped_column(Float, default=0.0)
    weight: Mapped[float] = mapped_column(Float, default=0.0)
    # On-time delivery: recency-weighted Σ wᵢ·on_timeᵢ (1 or 0) and Σ wᵢ.
    on_time_weighted: Mapped[float] = mapped_column(Float, default=0.0)
    on_time_weight: Mapped[float] = mapped_column(Float, default=0.0)
    milestones_delivered: Mapped[int] = mapped_column(Integer, default=0)
    contracts_completed: Mapped[int] = mapped_column(Integer, default=0)
    contracts_ended: Mapped[int] = mapped_column(Integer, default=0)  # completed + cancelled
    leads_answered: Mapped[int] = mapped_column(Integer, default=0)
    response_hours: Mapped[float | None] = mapped_column(Float)  # moving average
    updated_at: Mapped[datetime]
