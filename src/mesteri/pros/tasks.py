"""Jobs of the pros domain; importing it also registers the module's event subscribers."""

from __future__ import annotations

from mesteri.kit import jobs
from mesteri.pros import service
from mesteri.pros import subscribers as subscribers


@jobs.registry.periodic(cron="41 2 * * *")
@jobs.task("pros.refresh_ranks")
async def refresh_ranks(timestamp: int) -> None:
    """Daily: recompute every pro's query-independent rank (promotions expire; weights may
    have changed since the last run). Idempotent."""
    async with jobs.job_session() as session:
        await service.do_refresh_rank(session)
