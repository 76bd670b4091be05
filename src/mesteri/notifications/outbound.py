"""Composing and queueing outbound messages. Delivery happens in a job after commit."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select

from mesteri.kit import clock, jobs
from mesteri.kit.db import ReadSession, WriteSession
from mesteri.kit.ids import new_id
from mesteri.kit.pagination import keyset, page_of
from mesteri.notifications.models import OutboundMessage


async def do_queue_message(
    session: WriteSession,
    *,
    channel: str,
    to: str,
    subject: str,
    body: str,
    kind: str,
    user_id: uuid.UUID | None = None,
) -> OutboundMessage:
    from mesteri.notifications.tasks import deliver_message

    message = OutboundMessage(
        id=new_id(),
        user_id=user_id,
        channel=channel,
        to=to,
        subject=subject,
        body=body,
        kind=kind,
        created_at=clock.now(),
    )
    session.add(message)
    await jobs.defer(session, deliver_message, message_id=str(message.id))
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
    """Account deletion: message texts and addresses go; that a message was sent stays."""
    rows = await session.scalars(select(OutboundMessage).where(OutboundMessage.user_id == user_id))
    for message in rows:
        message.to = "redacted"
        message.body = ""
