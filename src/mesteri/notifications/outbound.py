"""Queueing outbound messages (the delivery log) and reading it back. Delivery happens in
a job after commit. Account codes and links go straight through here; everything of the
event catalogue goes through ``notifications.service.do_notify``."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update

from mesteri.kit import clock, jobs
from mesteri.kit.db import ReadSession, WriteSession
from mesteri.kit.ids import new_id
from mesteri.kit.pagination import keyset, page_of
from mesteri.notifications.models import (
    Device,
    Notification,
    OutboundMessage,
    Preference,
    QuietHours,
)


async def do_queue_message(
    session: WriteSession,
    *,
    channel: str,
    to: str,
    subject: str,
    body: str,
    kind: str,
    user_id: uuid.UUID | None = None,
    html: str | None = None,
    data: dict[str, Any] | None = None,
    device_id: uuid.UUID | None = None,
    notification_id: uuid.UUID | None = None,
    run_at: datetime | None = None,
) -> OutboundMessage:
    """One delivery over one channel, sent by a job after commit (at ``run_at`` when
    quiet hours hold it back)."""
    from mesteri.notifications.tasks import deliver_message

    now = clock.now()
    message = OutboundMessage(
        id=new_id(),
        user_id=user_id,
        notification_id=notification_id,
        channel=channel,
        to=to,
        subject=subject[:200],
        body=body,
        html=html,
        data=data or {},
        device_id=device_id,
        kind=kind,
        created_at=now,
        scheduled_for=run_at if run_at is not None and run_at > now else None,
    )
    session.add(message)
    await jobs.defer(session, deliver_message, run_at=run_at, message_id=str(message.id))
    return message


async def list_outbox(
    session: ReadSession, *, to: str | None, cursor: str | None, limit: int
) -> tuple[Sequence[OutboundMessage], str | None]:
    query = select(OutboundMessage)
    if to:
        query = query.where(OutboundMessage.to == to)
    keys = (OutboundMessage.created_at, OutboundMessage.id)
    rows = (await session.scalars(keyset(query, keys, cursor=cursor, limit=limit))).all()
    return page_of(rows, ["created_at", "id"], limit)


async def list_for_user(session: ReadSession, user_id: uuid.UUID) -> Sequence[OutboundMessage]:
    query = select(OutboundMessage).where(OutboundMessage.user_id == user_id)
    return (await session.scalars(query.order_by(OutboundMessage.created_at))).all()


async def do_forget_user(session: WriteSession, user_id: uuid.UUID) -> None:
    """Account deletion: message texts and addresses go (that a message was sent stays);
    the in-app list, preferences and devices go entirely."""
    await session.execute(
        update(OutboundMessage)
        .where(OutboundMessage.user_id == user_id)
        .values(to="redacted", body="", html=None, data={})
        .execution_options(synchronize_session=False)
    )
    for model in (Notification, Preference, QuietHours, Device):
        await session.execute(delete(model).where(model.user_id == user_id))
