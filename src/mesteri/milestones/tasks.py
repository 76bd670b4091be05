"""Jobs of the milestones domain: review reminders before auto-acceptance. (The
auto-accept and overdue-refund timers are the lifecycle's own, see lifecycles.py.)"""

from __future__ import annotations

import uuid

from mesteri.kit import jobs
from mesteri.milestones import notices as notices
from mesteri.milestones import service


@jobs.task("milestones.remind_review")
async def remind_review(milestone_id: str, submission: int) -> None:
    async with jobs.job_session() as session:
        await service.do_remind_review(session, uuid.UUID(milestone_id), submission)
