"""Jobs a client posts, the pros they invite, and the log of every contact-details reveal."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import INET, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from mesteri.kit.db import Base
from mesteri.kit.ids import new_id


class JobState(enum.StrEnum):
    DRAFT = "draft"
    OPEN = "open"  # published on the lead board
    IN_PROGRESS = "in_progress"  # a pro was hired
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class BudgetType(enum.StrEnum):
    FIXED = "fixed"
    HOURLY = "hourly"


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("budget_min >= 0 AND budget_max >= budget_min", name="budget"),
        CheckConstraint("budget_type IN ('fixed', 'hourly')", name="budget_type"),
        CheckConstraint(
            "state IN ('draft', 'open', 'in_progress', 'completed', 'cancelled', 'expired')",
            name="state",
        ),
        Index("ix_jobs_client_created", "client_id", text("created_at DESC")),
        # The lead board reads open jobs only: by category and recency, or by distance.
        Index(
            "ix_jobs_open_category",
            "category_id",
            text("published_at DESC"),
            postgresql_where=text("state = 'open'"),
        ),
        Index(
            "ix_jobs_open_location",
            text("point(lon, lat)"),
            postgresql_using="gist",
            postgresql_where=text("state = 'open'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    market: Mapped[str] = mapped_column(String(2))
    title: Mapped[str] = mapped_column(String(140))
    description: Mapped[str] = mapped_column(Text)
    category_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("categories.id"))
    place_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("places.id"))
    # The place's coordinates: what a pro may see and what distance is measured from.
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    # The exact address is PII (SPEC 4.4): encrypted, shown only through the contact reveal.
    address_enc: Mapped[str | None] = mapped_column(Text)
    budget_type: Mapped[str] = mapped_column(String(10))
    budget_min: Mapped[int] = mapped_column(Integer)  # minor units (per hour when hourly)
    budget_max: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    start_date: Mapped[date | None]
    end_date: Mapped[date | None]
    template_id: Mapped[str | None] = mapped_column(String(40))
    # The milestones the client expects (from a template or written): [{title, share, dod[]}]
    milestone_plan: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    attachment_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), default=list)
    state: Mapped[str] = mapped_column(String(20), default=JobState.DRAFT)
    proposals_count: Mapped[int] = mapped_column(Integer, default=0)
    hired_pro_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("pro_profiles.id"))
    published_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class JobInvite(Base):
    """A pro the client asked to propose; invited jobs come first on their lead board."""

    __tablename__ = "job_invites"

    job_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True
    )
    pro_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("pro_profiles.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]


class ContactReveal(Base):
    """Who saw a client's contact details, when and from where (SPEC 4.4)."""

    __tablename__ = "contact_reveals"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    job_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("jobs.id"), index=True)
    subject_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))  # whose PII
    viewer_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), index=True)
    viewer_role: Mapped[str] = mapped_column(String(20))  # client, pro or a staff role
    fields: Mapped[list[str]] = mapped_column(ARRAY(String(20)))
    ip: Mapped[str | None] = mapped_column(INET)
    user_agent: Mapped[str | None] = mapped_column(String(400))
    at: Mapped[datetime]
