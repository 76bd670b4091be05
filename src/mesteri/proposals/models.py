"""Proposals a pro sends for a job, and each revision of their terms (offers and counters)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text, Uuid, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from mesteri.kit.db import Base
from mesteri.kit.ids import new_id


class ProposalState(enum.StrEnum):
    SUBMITTED = "submitted"  # waiting for the client; the pro may still edit it
    SHORTLISTED = "shortlisted"
    COUNTERED = "countered"  # the client offered other terms; waiting for the pro
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


LIVE_STATES = (ProposalState.SUBMITTED, ProposalState.SHORTLISTED, ProposalState.COUNTERED)


class Proposal(Base):
    __tablename__ = "proposals"
    __table_args__ = (
        CheckConstraint("price > 0", name="price"),
        # At most one live proposal per pro per job.
        Index(
            "uq_proposals_live",
            "job_id",
            "pro_id",
            unique=True,
            postgresql_where=text("state IN ('submitted', 'shortlisted', 'countered')"),
        ),
        Index("ix_proposals_job", "job_id", text("created_at")),
        Index("ix_proposals_pro", "pro_user_id", text("created_at DESC")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    job_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("jobs.id"))
    pro_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("pro_profiles.id"))
    pro_user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    state: Mapped[str] = mapped_column(String(20), default=ProposalState.SUBMITTED)
    # The terms on the table now (the latest revision's), so lists need no join.
    price: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    duration_days: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text, default="")
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    # [{title, amount, due_date (ISO), dod: [text]}], amounts summing to ``price``
    milestones: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    decline_reason: Mapped[str | None] = mapped_column(Text)
    contract_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    expires_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]  # first reply of the client; editing stops there
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ProposalRevision(Base):
    """Every version of the terms, by whom: the pro's offers and the client's counters."""

    __tablename__ = "proposal_revisions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    proposal_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("proposals.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    author: Mapped[str] = mapped_column(String(10))  # pro | client
    author_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    price: Mapped[int] = mapped_column(Integer)
    duration_days: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text, default="")
    milestones: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    created_at: Mapped[datetime]
