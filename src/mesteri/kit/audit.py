"""An append-only audit log: who did what to whom, when, from where."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import String, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mesteri.kit import clock
from mesteri.kit.db import Base
from mesteri.kit.ids import new_id


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(index=True)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    action: Mapped[str] = mapped_column(String(80), index=True)
    subject_type: Mapped[str | None] = mapped_column(String(40))
    subject_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


def record(
    session: AsyncSession,
    action: str,
    *,
    actor_id: uuid.UUID | None,
    subject_type: str | None = None,
    subject_id: uuid.UUID | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    **data: Any,
) -> AuditEntry:
    entry = AuditEntry(
        id=new_id(),
        at=clock.now(),
        actor_id=actor_id,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        ip=ip,
        user_agent=(user_agent or "")[:400] or None,
        data=data,
    )
    session.add(entry)
    return entry
