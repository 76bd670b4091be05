"""Delivery of queued messages over their channel, with retries and the delivery log.

Idempotent: a message already sent or given up is not sent again. A channel that may
succeed later (a timeout, a 5xx, rate limiting) is retried with growing waits; one that
never will (a bad number, a push subscription that is gone) is marked ``failed`` at once,
and so is any message still failing after the last attempt.
"""

from __future__ import annotations

import uuid

import procrastinate
from sqlalchemy import select

from mesteri.config import get_settings
from mesteri.kit import clock, jobs
from mesteri.notifications import senders
from mesteri.notifications.models import DeliveryState, Device, DeviceProvider, OutboundMessage
from mesteri.notifications.senders import PermanentDeliveryError, PushTarget, SubscriptionGoneError

# 1 + 8 attempts over about 4 hours (waits of 2**n seconds, 1 s to ~2 h).
ATTEMPTS = 9
RETRY = procrastinate.RetryStrategy(max_attempts=ATTEMPTS - 1, exponential_wait=2)


class DeliveryFailedError(Exception):
    """The channel refused the message; procrastinate retries the job with back-off."""

    persist_on_error = True


@jobs.task("notifications.deliver_message", retry=RETRY)
async def deliver_message(message_id: str) -> None:
    async with jobs.job_session() as session:
        message = await session.scalar(
            select(OutboundMessage)
            .where(OutboundMessage.id == uuid.UUID(message_id))
            .with_for_update()
        )
        if message is None or message.state != DeliveryState.QUEUED:
            return
        message.attempts += 1
        device = await session.get(Device, message.device_id) if message.device_id else None
        try:
            await _send(message, device)
        except PermanentDeliveryError as exc:
            if isinstance(exc, SubscriptionGoneError) and device is not None:
                device.disabled_at = clock.now()  # never pushed to again
            _give_up(message, exc)
            return
        except Exception as exc:
            if message.attempts >= ATTEMPTS:
                _give_up(message, exc)
                return
            message.error = str(exc)[:500]
            # Kept by the unit of work (the error and the attempt count); the job is retried.
            raise DeliveryFailedError(message.error) from exc
        message.state = DeliveryState.SENT
        message.sent_at = clock.now()
        message.error = None
        if device is not None:
            device.last_used_at = message.sent_at
        if not get_settings().dev_tools_enabled:
            # Codes and links must not linger in production logs once delivered.
            message.body, message.html, message.data = "", None, {}


def _give_up(message: OutboundMessage, exc: Exception) -> None:
    message.state = DeliveryState.FAILED
    message.error = str(exc)[:500] or type(exc).__name__


async def _send(message: OutboundMessage, device: Device | None) -> None:
    channels = senders.current()
    if message.channel == "email":
        await channels.email.send(
            to=message.to, subject=message.subject, body=message.body, html=message.html
        )
    elif message.channel == "sms":
        await channels.sms.send(to=message.to, body=message.body)
    elif message.channel == "whatsapp":
        await channels.whatsapp.send(to=message.to, body=message.body)
    elif message.channel == "push":
        if device is None or device.disabled_at is not None:
            raise SubscriptionGoneError("the device is no longer registered")
        if device.provider == DeviceProvider.WEBPUSH:
            target = PushTarget(device.token, device.p256dh or "", device.auth or "")
            await channels.webpush.send(target, message.data, topic=None)
        else:
            await channels.fcm.send(
                device.token,
                title=message.subject,
                body=message.body,
                link=message.data.get("url"),
                data={k: str(v) for k, v in message.data.items()},
            )
    else:
        raise PermanentDeliveryError(f"unknown channel {message.channel!r}")
