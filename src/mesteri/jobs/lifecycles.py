"""The job lifecycle: draft → open (on the lead board) → in progress → completed, with
cancel and expiry branches. Hiring and completion are applied by the system when a
proposal is accepted and when the contract's last milestone settles."""

from __future__ import annotations

from typing import Any

from mesteri.jobs.events import JobClosed
from mesteri.jobs.models import Job, JobState
from mesteri.kit import clock, events
from mesteri.kit.statemachine import Actor, StateMachine, Timer, Transition

_J = JobState
_CLIENT = frozenset({Actor.CLIENT})
_SYSTEM = frozenset({Actor.SYSTEM})


def _expired(job: Job) -> bool:
    return job.expires_at is not None and clock.now() >= job.expires_at


async def _cancelled(session: Any, job: Job) -> None:
    """The proposals module declines the live proposals of a withdrawn job."""
    await events.publish(session, JobClosed(job.id, "cancelled"))


async def _expired_effect(session: Any, job: Job) -> None:
    await events.publish(session, JobClosed(job.id, "expired"))


JOB_LIFECYCLE = StateMachine(
    entity="job",
    states=JobState,
    initial=_J.DRAFT,
    transitions=[
        Transition("publish", frozenset({_J.DRAFT}), _J.OPEN, _CLIENT),
        Transition("hire", frozenset({_J.OPEN}), _J.IN_PROGRESS, _SYSTEM),
        Transition("complete", frozenset({_J.IN_PROGRESS}), _J.COMPLETED, _SYSTEM),
        Transition(
            "cancel",
            frozenset({_J.DRAFT, _J.OPEN}),
            _J.CANCELLED,
            _CLIENT | {Actor.OPERATOR},
            effect=_cancelled,
        ),
        # The contract ended with every milestone cancelled or refunded.
        Transition("cancel", frozenset({_J.IN_PROGRESS}), _J.CANCELLED, _SYSTEM),
        Transition(
            "expire",
            frozenset({_J.OPEN}),
            _J.EXPIRED,
            _SYSTEM,
            guard=_expired,
            effect=_expired_effect,
        ),
        Transition("reopen", frozenset({_J.EXPIRED}), _J.OPEN, _CLIENT),
        # The hired pro's contract was withdrawn before both signed: the job can hire again.
        Transition("reopen", frozenset({_J.IN_PROGRESS}), _J.OPEN, _SYSTEM),
    ],
    timers={_J.OPEN: [Timer("expire", at=lambda job: job.expires_at)]},
    model=Job,
)
