"""Disputes over a funded milestone: the ladder's current stage, every step of its
history, and the split offers made on the way."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from mesteri.kit.db import Base
from mesteri.kit.ids import new_id


class DisputeStage(enum.StrEnum):
    """The ladder (SPEC M8); a dispute is open in any of the first four."""

    NEGOTIATION = "negotiation"  # 1. the parties exchange split offers (7 days)
    MEDIATION = "mediation"  # 2. support staff mediate and propose a split (7 days)
    EXPERT_REVIEW = "expert_review"  # 3. optional, requested and paid by a party
    DECISION = "decision"  # 4. an admin decides: release, refund or split; final
    SETTLED = "settled"  # the parties accepted a split (their own or the mediator's)
    RESOLVED = "resolved"  # decided by an admin


OPEN_STAGES = frozenset(
    {
        DisputeStage.NEGOTIATION,
        DisputeStage.MEDIATION,
        DisputeStage.EXPERT_REVIEW,
        DisputeStage.DECISION,
    }
)


class ExpertFeeState(enum.StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    PAID = "paid"
    CANCELLED = "cancelled"  # not paid in time: the dispute went on to a decision without it


class OfferState(enum.StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    SUPERSEDED = "superseded"  # a newer offer, the next stage or the end replaced it


class Dispute(Base):
    __tablename__ = "disputes"
    __table_args__ = (
        CheckConstraint("amount_disputed > 0 AND amount_disputed <= amount_held", name="amount"),
        CheckConstraint(
            "stage IN ('negotiation', 'mediation', 'expert_review', 'decision', 'settled',"
            " 'resolved')",
            name="stage",
        ),
        # One open dispute per milestone.
        Index(
            "uq_disputes_milestone_open",
            "milestone_id",
            unique=True,
            postgresql_where=text("stage NOT IN ('settled', 'resolved')"),
        ),
        # The dispute desk: open disputes by stage and age.
        Index(
            "ix_disputes_desk",
            "stage",
            "opened_at",
            postgresql_where=text("stage NOT IN ('settled', 'resolved')"),
        ),
        Index("ix_disputes_client", "client_id", "opened_at"),
        Index("ix_disputes_pro", "pro_user_id", "opened_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    milestone_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("milestones.id"))
    contract_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("contracts.id"))
    hold_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    pro_user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    opened_by: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    opened_by_role: Mapped[str] = mapped_column(String(6))  # client | pro
    reason: Mapped[str] = mapped_column(Text)
    currency: Mapped[str] = mapped_column(String(3))
    amount_held: Mapped[int] = mapped_column(Integer)  # the whole hold, frozen
    amount_disputed: Mapped[int] = mapped_column(Integer)  # what the opener contests
    milestone_state: Mapped[str] = mapped_column(String(20))  # when it was disputed
    stage: Mapped[str] = mapped_column(String(20), default=DisputeStage.NEGOTIATION)
    stage_started_at: Mapped[datetime]
    stage_deadline: Mapped[datetime | None]  # stages 1 and 2 escalate by themselves
    mediator_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    expert_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    expert_requested_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    expert_fee: Mapped[int | None] = mapped_column(Integer)
    expert_fee_state: Mapped[str | None] = mapped_column(String(20))
    expert_fee_hold_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    expert_report: Mapped[str | None] = mapped_column(Text)
    # The end: release | refund | split, with the exact parts the ledger settled.
    outcome: Mapped[str | None] = mapped_column(String(10))
    pro_amount: Mapped[int | None] = mapped_column(Integer)
    client_amount: Mapped[int | None] = mapped_column(Integer)
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    opened_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]

    # The declared lifecycle (kit.statemachine) reads and moves ``state``: the stage.
    @property
    def state(self) -> str:
        return self.stage

    @state.setter
    def state(self, value: str) -> None:
        self.stage = value


class DisputeEvent(Base):
    """One step of a dispute's history: opened, evidence, offer, escalation, question,
    answer, proposal, expert request and report, decision. Both sides see them all."""

    __tablename__ = "dispute_events"
    __table_args__ = (Index("ix_dispute_events_dispute", "dispute_id", "at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    dispute_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("disputes.id", ondelete="CASCADE")
    )
    kind: Mapped[str] = mapped_column(String(30))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    actor_role: Mapped[str] = mapped_column(String(10))  # client | pro | staff | expert | system
    stage: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text, default="")
    attachment_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), default=list)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    at: Mapped[datetime]


class DisputeOffer(Base):
    """A split of the held amount proposed by a party (the other accepts) or by the
    mediator (both accept)."""

    __tablename__ = "dispute_offers"
    __table_args__ = (
        CheckConstraint("pro_amount >= 0 AND client_amount >= 0", name="amounts"),
        CheckConstraint("state IN ('open', 'accepted', 'superseded')", name="state"),
        Index("ix_dispute_offers_dispute", "dispute_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    dispute_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("disputes.id", ondelete="CASCADE")
    )
    made_by: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    made_by_role: Mapped[str] = mapped_column(String(10))  # client | pro | mediator
    stage: Mapped[str] = mapped_column(String(20))
    pro_amount: Mapped[int] = mapped_column(Integer)
    client_amount: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(12), default=OfferState.OPEN)
    client_accepted_at: Mapped[datetime | None]
    pro_accepted_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
