"""Milestones of a contract: the unit that is funded, delivered, accepted and paid."""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import ARRAY, CheckConstraint, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from mesteri.kit.db import Base
from mesteri.kit.ids import new_id


class MilestoneState(enum.StrEnum):
    DRAFT = "draft"  # the contract is not signed yet
    AWAITING_FUNDING = "awaiting_funding"
    FUNDED = "funded"
    SUBMITTED = "submitted"
    CHANGES_REQUESTED = "changes_requested"
    ACCEPTED = "accepted"
    RELEASED = "released"  # paid to the pro's pending balance
    DISPUTED = "disputed"
    SPLIT = "split"  # a dispute settled in two parts: some released, the rest refunded
    REFUNDED = "refunded"
    CANCELLED = "cancelled"


class Milestone(Base):
    __tablename__ = "milestones"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount"),
        Index("ix_milestones_contract", "contract_id", "position"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    contract_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("contracts.id"))
    job_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("jobs.id"))
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    pro_user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(140))
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    due_date: Mapped[date | None]
    # Definition of Done: [{text, done}]; the pro ticks items when submitting.
    dod: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    state: Mapped[str] = mapped_column(String(20), default=MilestoneState.DRAFT)
    hold_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)  # the escrow hold (payments)
    submission_note: Mapped[str | None] = mapped_column(Text)
    submission_attachment_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), default=list)
    change_request: Mapped[str | None] = mapped_column(Text)
    # How a dispute ended, set just before the resolving transition moves the money:
    # {"pro_amount", "client_amount"} (minor units of ``currency``).
    resolution: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    submissions: Mapped[int] = mapped_column(Integer, default=0)
    funded_at: Mapped[datetime | None]
    submitted_at: Mapped[datetime | None]
    accepted_at: Mapped[datetime | None]
    released_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
