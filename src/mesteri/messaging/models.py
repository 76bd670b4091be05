"""Conversations between a client and a pro, their members' read state, the messages,
and every earlier version of an edited or deleted message (kept for disputes)."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from mesteri.kit.db import Base
from mesteri.kit.ids import new_id


class ConversationKind(enum.StrEnum):
    JOB = "job"  # before hire: the client and one pro who proposed or was invited
    CONTRACT = "contract"  # after hire: the job room of one contract


class ConversationState(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"  # read-only: moved to the job room, job filled or closed, withdrawn


class MessageKind(enum.StrEnum):
    TEXT = "text"
    QUOTE = "quote"  # a proposal's terms, with the pro's (or the counter's) message
    SYSTEM = "system"  # what happened on the job, contract or milestones


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        CheckConstraint("kind IN ('job', 'contract')", name="kind"),
        CheckConstraint("state IN ('open', 'closed')", name="state"),
        CheckConstraint("(kind = 'contract') = (contract_id IS NOT NULL)", name="contract"),
        # One pre-hire conversation per job and pro; one job room per contract.
        Index(
            "uq_conversations_job_pro",
            "job_id",
            "pro_user_id",
            unique=True,
            postgresql_where=text("kind = 'job'"),
        ),
        UniqueConstraint("contract_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(10))
    job_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("jobs.id"), index=True)
    contract_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("contracts.id"))
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    pro_user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    pro_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("pro_profiles.id"))
    state: Mapped[str] = mapped_column(String(10), default=ConversationState.OPEN)
    closed_reason: Mapped[str | None] = mapped_column(String(30))
    # Contact details are masked until the parties signed a contract on this job.
    unmasked_at: Mapped[datetime | None]
    # Messages are numbered per conversation under this row's lock: the order is the
    # order of commits, the same for every reader.
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_message_at: Mapped[datetime | None]
    created_at: Mapped[datetime]


class Member(Base):
    """A participant's side of a conversation: read position, unread count, inbox order."""

    __tablename__ = "conversation_members"
    __table_args__ = (
        Index("ix_conversation_members_inbox", "user_id", "activity_at", "conversation_id"),
    )

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), primary_key=True)
    role: Mapped[str] = mapped_column(String(10))  # client | pro
    last_read_seq: Mapped[int] = mapped_column(Integer, default=0)
    last_read_at: Mapped[datetime | None]
    unread: Mapped[int] = mapped_column(Integer, default=0)
    activity_at: Mapped[datetime]  # the newest message, for the inbox's order


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        # A client's retry of the same send (its own token) finds the first message.
        Index(
            "uq_messages_client_token",
            "conversation_id",
            "sender_id",
            "client_token",
            unique=True,
            postgresql_where=text("client_token IS NOT NULL"),
        ),
        CheckConstraint("kind IN ('text', 'quote', 'system')", name="kind"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("conversations.id", ondelete="CASCADE")
    )
    seq: Mapped[int] = mapped_column(Integer)
    sender_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(10), default=MessageKind.TEXT)
    body: Mapped[str] = mapped_column(Text, default="")  # as the participants see it
    # The words as written, when masking hid something: for staff only (disputes).
    original_body: Mapped[str | None] = mapped_column(Text)
    mask_kinds: Mapped[list[str]] = mapped_column(ARRAY(String(10)), default=list)
    # Quote: the proposal's terms; system: the event and its parameters.
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    attachment_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), default=list)
    client_token: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    edited_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]


class MessageRevision(Base):
    """What a message said before an edit or a deletion."""

    __tablename__ = "message_revisions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    message_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(10))  # edit | delete
    body: Mapped[str] = mapped_column(Text)
    original_body: Mapped[str | None] = mapped_column(Text)
    mask_kinds: Mapped[list[str]] = mapped_column(ARRAY(String(10)), default=list)
    attachment_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), default=list)
    by_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    at: Mapped[datetime]


class UnreadAlert(Base):
    """A "you have unread messages" notice waiting to go to someone who was away: one per
    person at a time, so a burst of messages makes one e-mail, not one per message."""

    __tablename__ = "message_alerts"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    due_at: Mapped[datetime]
    created_at: Mapped[datetime]
