"""Jobs of the jobs domain. The expiry of open jobs is the lifecycle's own timer
(``lifecycles.py``); importing the service here registers the lifecycle (so the worker
can fire its timers) and the domain's event subscriptions (a contract that ends moves
its job) in the worker process too."""

from __future__ import annotations

import uuid

from mesteri.jobs import service
from mesteri.kit import jobs


@jobs.task("jobs.announce_lead")
async def announce_lead(job_id: str) -> None:
    """A job was published: the pros it suits hear of it (idempotent per job and pro)."""
    async with jobs.job_session() as session:
        await service.do_announce_lead(session, uuid.UUID(job_id))


__all__ = ["announce_lead", "service"]
