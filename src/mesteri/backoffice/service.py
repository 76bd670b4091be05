"""Back-office reads. Staff access is checked by the callers' dependencies."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select

from mesteri.kit.audit import AuditEntry
from mesteri.kit.db import ReadSession
from mesteri.kit.pagination import keyset, page_of


async def list_audit_log(
    session: ReadSession,
    *,
    action: str | None,
    actor_id: uuid.UUID | None,
    cursor: str | None,
    limit: int,
) -> tuple[Sequence[AuditEntry], str | None]:
    query = select(AuditEntry)
    if action:
        query = query.where(AuditEntry.action == action)
    if actor_id:
        query = query.where(AuditEntry.actor_id == actor_id)
    keys = (AuditEntry.at, AuditEntry.id)
    rows = (await session.scalars(keyset(query, keys, cursor=cursor, limit=limit))).all()
    return page_of(rows, ["at", "id"], limit)
