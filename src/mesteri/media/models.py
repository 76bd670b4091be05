"""Media: every uploaded file, whatever domain uses it."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from mesteri.kit.db import Base
from mesteri.kit.ids import new_id


class UploadState(enum.StrEnum):
    PENDING = "pending"  # URL handed out, bytes not checked yet
    READY = "ready"
    REJECTED = "rejected"
    DELETED = "deleted"


class Upload(Base):
    __tablename__ = "uploads"
    __table_args__ = (
        Index(
            "ix_uploads_unattached",
            "created_at",
            postgresql_where=text("attached_at IS NULL AND state IN ('pending', 'ready')"),
        ),
        Index(
            "ix_uploads_delete_after",
            "delete_after",
            postgresql_where=text("delete_after IS NOT NULL AND state <> 'deleted'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    owner_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(40))
    state: Mapped[str] = mapped_column(String(20), default=UploadState.PENDING)
    declared_type: Mapped[str] = mapped_column(String(100))
    declared_size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str | None] = mapped_column(String(100))  # detected from the bytes
    size: Mapped[int | None] = mapped_column(BigInteger)
    filename: Mapped[str | None] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(200), unique=True)
    thumb_key: Mapped[str | None] = mapped_column(String(200))
    private: Mapped[bool] = mapped_column(Boolean)
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    reject_reason: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    attached_at: Mapped[datetime | None]
    delete_after: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
