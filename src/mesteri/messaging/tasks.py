"""Messaging jobs: the "unread messages" notice for someone who was away, and the
retention of the live-event streams. Importing this module also registers the
subscribers that keep conversations in step with jobs, contracts and milestones."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import delete

from mesteri.config import get_settings
from mesteri.kit import clock, jobs
from mesteri.kit.i18n import lazy
from mesteri.kit.realtime import presence, streams
from mesteri.messaging import service
from mesteri.messaging import subscribers as subscribers
from mesteri.messaging.models import UnreadAlert
from mesteri.notifications import service as notifications


@jobs.task("messaging.alert_unread")
async def alert_unread(user_id: str) -> None:
    """The wait after a first unread message is over: one notice sums up what is still
    unread, unless the person came back or read everything meanwhile."""
    person = uuid.UUID(user_id)
    async with jobs.job_session() as session:
        alert = await session.scalar(
            delete(UnreadAlert).where(UnreadAlert.user_id == person).returning(UnreadAlert)
        )
        if alert is None or await presence.is_online(session, person):
            return
        summary = await service.unread_summary(session, person)
        if summary.messages == 0:
            return
        await notifications.do_notify(
            session,
            person,
            "message.new",
            subject=lazy("Unread messages on Mesteri: {count}"),
            body=lazy("New messages from {names} about {titles}."),
            link="/inbox",
            dedupe_key=f"message.new:{alert.created_at.isoformat()}",
            count=summary.messages,
            names=", ".join(summary.senders),
            titles=", ".join(f"“{t}”" for t in summary.titles),
        )


@jobs.registry.periodic(cron="7 * * * *")
@jobs.task("messaging.forget_old_events")
async def forget_old_events(timestamp: int) -> None:
    """Hourly: live events older than the retention are dropped (a client away longer
    reloads its pages instead of resuming)."""
    cutoff = clock.now() - timedelta(days=get_settings().realtime_retention_days)
    async with jobs.job_session() as session:
        await streams.forget_before(await session.connection(), cutoff)
