"""Back-office API (staff only: a staff role and a session that proved two-factor)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from mesteri.accounts.deps import StaffPrincipal
from mesteri.backoffice import service
from mesteri.kit.db import DbWrite
from mesteri.kit.pagination import Page

router = APIRouter(prefix="/admin", tags=["back-office"])


class AuditEntryOut(BaseModel):
    id: uuid.UUID
    at: datetime
    actor_id: uuid.UUID | None
    action: str
    subject_type: str | None
    subject_id: uuid.UUID | None
    ip: str | None
    user_agent: str | None
    data: dict[str, Any]


@router.get("/audit-log", response_model=Page[AuditEntryOut])
async def audit_log(
    session: DbWrite,
    _staff: StaffPrincipal,
    action: str | None = Query(default=None, max_length=80),
    actor_id: uuid.UUID | None = None,
    cursor: str | None = Query(default=None, max_length=400),
    limit: int = Query(default=50, ge=1, le=200),
) -> Page[AuditEntryOut]:
    items, next_cursor = await service.list_audit_log(
        session, action=action, actor_id=actor_id, cursor=cursor, limit=limit
    )
    return Page(
        items=[AuditEntryOut.model_validate(e, from_attributes=True) for e in items],
        next_cursor=next_cursor,
    )
