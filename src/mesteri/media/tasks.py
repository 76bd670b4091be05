"""Retention of media: orphaned uploads and documents past their retention are deleted."""

from __future__ import annotations

from mesteri.kit import jobs
from mesteri.media import service


@jobs.registry.periodic(cron="23 * * * *")
@jobs.task("media.purge")
async def purge(timestamp: int) -> None:
    """Hourly; each batch in its own transaction until nothing is left (idempotent)."""
    while True:
        async with jobs.job_session() as session:
            if await service.purge(session) == 0:
                return
