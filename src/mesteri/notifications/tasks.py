"""Delivery of queued messages (idempotent: a message already sent is not sent again)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from mesteri.config import get_settings
from mesteri.kit import clock, jobs
from mesteri.notifications import senders
from mesteri.notifications.models import DeliveryState, OutboundMessage


class DeliveryFailedError(Exception):
    """The channel refused the message; procrastinate retries the job with back-off."""

    persist_on_error = True


@jobs.task("notifications.deliver_message", retry=8)
async def deliver_message(message_id: str) -> None:
    async with jobs.job_session() as session:
        message = await session.scalar(
            select(OutboundMessage)
            .where(OutboundMessage.id == uuid.UUID(message_id))
            .with_for_update()
        )
        if message is None or message.state == DeliveryState.SENT:
            return
        message.attempts += 1
        channels = senders.current()
        try:
            if message.channel == "email":
                await channels.email.send(to=message.to, subject=message.subject, body=message.body)
            else:
                await channels.sms.send(to=message.to, body=message.body)
        except Exception as exc:
            message.error = str(exc)[:500]
            # Kept by the unit of work (the error and the attempt count); the job is retried.
            raise DeliveryFailedError(message.error) from exc
        message.state = DeliveryState.SENT
        message.sent_at = clock.now()
        message.error = None
        if not get_settings().dev_tools_enabled:
            # Codes and links must not linger in production logs once delivered.
            message.body = ""
