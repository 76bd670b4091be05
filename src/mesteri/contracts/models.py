"""Contracts (statements of work), their signed versions and the signatures."""

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
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import INET, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from mesteri.kit.db import Base
from mesteri.kit.ids import new_id


class ContractState(enum.StrEnum):
    AWAITING_SIGNATURES = "awaiting_signatures"  # the first version is not signed by both yet
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class VersionState(enum.StrEnum):
    PENDING = "pending"  # waiting for signatures
    SIGNED = "signed"  # both parties signed this exact document
    SUPERSEDED = "superseded"  # a newer version replaced it before it was signed


class Contract(Base):
    __tablename__ = "contracts"
    __table_args__ = (
        CheckConstraint(
            "state IN ('awaiting_signatures', 'active', 'completed', 'cancelled')", name="state"
        ),
        Index("ix_contracts_client", "client_id", "created_at"),
        Index("ix_contracts_pro", "pro_user_id", "created_at"),
        # One live contract per job: a contract withdrawn before signing frees the job
        # to hire again (ContractEnded "withdrawn").
        Index(
            "uq_contracts_job_live",
            "job_id",
            unique=True,
            postgresql_where=text("state <> 'cancelled'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    job_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("jobs.id"))
    proposal_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("proposals.id"), unique=True)
    client_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    pro_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("pro_profiles.id"))
    pro_user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    market: Mapped[str] = mapped_column(String(2))
    category_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("categories.id"))
    title: Mapped[str] = mapped_column(String(140))
    currency: Mapped[str] = mapped_column(String(3))
    price: Mapped[int] = mapped_column(Integer)  # of the signed (or first) version
    state: Mapped[str] = mapped_column(String(30), default=ContractState.AWAITING_SIGNATURES)
    signed_version: Mapped[int | None] = mapped_column(Integer)  # the version in force
    latest_version: Mapped[int] = mapped_column(Integer, default=1)
    activated_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ContractVersion(Base):
    """One version of the document: its terms, the exact PDF bytes and their SHA-256."""

    __tablename__ = "contract_versions"
    __table_args__ = (UniqueConstraint("contract_id", "number"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    contract_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contracts.id", ondelete="CASCADE")
    )
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20), default=VersionState.PENDING)
    # Everything the document states (parties, scope, milestones, fee, clauses, law).
    terms: Mapped[dict[str, Any]] = mapped_column(JSONB)
    language: Mapped[str] = mapped_column(String(5))
    document: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    document_sha256: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text, default="")  # why an amendment was proposed
    created_by: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("users.id"))
    created_at: Mapped[datetime]
    signed_at: Mapped[datetime | None]


class Signature(Base):
    __tablename__ = "contract_signatures"
    __table_args__ = (UniqueConstraint("version_id", "user_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    version_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("contract_versions.id", ondelete="CASCADE")
    )
    contract_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("contracts.id"), index=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    party: Mapped[str] = mapped_column(String(10))  # client | pro
    full_name: Mapped[str] = mapped_column(String(160))
    document_sha256: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(INET)
    user_agent: Mapped[str | None] = mapped_column(String(400))
    signed_at: Mapped[datetime]
