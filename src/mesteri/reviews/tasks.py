"""Jobs of the reviews domain: the window's end (publish what was written) and the
reminders to review, deferred when the first payment to the pro opens the window."""

from __future__ import annotations

import uuid

from mesteri.kit import jobs
from mesteri.reviews import reputation, service  # noqa: F401  - reputation subscribes to events


@jobs.task("reviews.close_window")
async def close_window(contract_id: str) -> None:
    async with jobs.job_session() as session:
        await service.do_close_window(session, uuid.UUID(contract_id))


@jobs.task("reviews.remind")
async def remind(contract_id: str) -> None:
    async with jobs.job_session() as session:
        await service.do_remind(session, uuid.UUID(contract_id))
