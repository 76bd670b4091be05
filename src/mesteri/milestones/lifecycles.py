"""The milestone lifecycle (SPEC 4.3), declared once: the API, the contract page's
buttons, the timers and the tests all read this table.

    draft ──activate──▶ awaiting_funding ──fund (checkout)──▶ awaiting_funding
    awaiting_funding ──confirm_funding (webhook)──▶ funded ──submit──▶ submitted
    submitted ──request_changes──▶ changes_requested ──submit──▶ submitted
    submitted ──accept / auto_accept (day 14)──▶ accepted ──release──▶ released
    funded, submitted, changes_requested ──dispute──▶ disputed
    disputed ──resolve_release / resolve_refund / resolve_split──▶ released / refunded / split
        (the dispute desk: an admin decision, or a split both parties accepted)
    draft, awaiting_funding ──cancel──▶ cancelled (free)
    funded, changes_requested ──cancel (pro) / expire_overdue (day 60 after due)──▶ refunded

Money moves in the effects, through the payments service, inside the same transaction.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from mesteri.config import get_settings
from mesteri.kit import clock, events
from mesteri.kit.db import WriteSession
from mesteri.kit.statemachine import Actor, StateMachine, Timer, Transition
from mesteri.milestones.events import MilestoneSettled
from mesteri.milestones.models import Milestone, MilestoneState
from mesteri.payments import service as payments

_M = MilestoneState
_CLIENT = frozenset({Actor.CLIENT})
_PRO = frozenset({Actor.PRO})
_SYSTEM = frozenset({Actor.SYSTEM})
_STAFF = frozenset({Actor.OPERATOR})
_DESK = _STAFF | _SYSTEM  # a dispute's end: decided by staff or agreed by the parties
_WORKING = frozenset({_M.FUNDED, _M.CHANGES_REQUESTED})  # money held, nothing to review


def auto_accept_at(milestone: Milestone) -> datetime:
    assert milestone.submitted_at is not None
    return milestone.submitted_at + timedelta(days=get_settings().auto_accept_days)


def overdue_at(milestone: Milestone) -> datetime:
    """When a funded milestone that was never delivered is refunded: days after its due
    date, or after funding when it has none."""
    if milestone.due_date is not None:
        start = datetime.combine(milestone.due_date, time.max, tzinfo=UTC)
    else:
        assert milestone.funded_at is not None
        start = milestone.funded_at
    return start + timedelta(days=get_settings().overdue_refund_days)


def _auto_accept_due(milestone: Milestone) -> bool:
    return clock.now() >= auto_accept_at(milestone)


def _overdue(milestone: Milestone) -> bool:
    return clock.now() >= overdue_at(milestone)


async def _settled(session: WriteSession, milestone: Milestone) -> None:
    milestone.updated_at = clock.now()
    await events.publish(
        session, MilestoneSettled(milestone.id, milestone.contract_id, milestone.state)
    )


async def _accepted(session: WriteSession, milestone: Milestone) -> None:
    milestone.accepted_at = clock.now()
    await MILESTONE_LIFECYCLE.apply(session, milestone, "release", actor=Actor.SYSTEM)


async def _release(session: WriteSession, milestone: Milestone) -> None:
    assert milestone.hold_id is not None
    await payments.release(session, milestone.hold_id, actor=Actor.SYSTEM)
    milestone.released_at = clock.now()
    await _settled(session, milestone)


async def _refund(session: WriteSession, milestone: Milestone) -> None:
    assert milestone.hold_id is not None
    await payments.refund(session, milestone.hold_id, actor=Actor.SYSTEM, reason="cancelled")
    await _settled(session, milestone)


async def _cancel_unfunded(session: WriteSession, milestone: Milestone) -> None:
    if milestone.hold_id is not None:
        # An abandoned checkout: the hold is cancelled so a late payment is refunded.
        await payments.cancel(session, milestone.hold_id, actor=Actor.SYSTEM)
    await _settled(session, milestone)


async def _freeze(session: WriteSession, milestone: Milestone) -> None:
    assert milestone.hold_id is not None
    await payments.freeze(session, milestone.hold_id, actor=Actor.SYSTEM)


# A dispute's end moves frozen money: only the desk's decision (operator) may, so the
# effects act as the operator whoever closed the dispute (a staff member, or the parties
# agreeing on a split).


async def _resolve_release(session: WriteSession, milestone: Milestone) -> None:
    assert milestone.hold_id is not None
    await payments.release(session, milestone.hold_id, actor=Actor.OPERATOR)
    milestone.released_at = clock.now()
    await _settled(session, milestone)


async def _resolve_refund(session: WriteSession, milestone: Milestone) -> None:
    assert milestone.hold_id is not None
    await payments.refund(
        session, milestone.hold_id, actor=Actor.OPERATOR, reason="dispute decision"
    )
    await _settled(session, milestone)


async def _resolve_split(session: WriteSession, milestone: Milestone) -> None:
    assert milestone.hold_id is not None
    assert milestone.resolution is not None
    await payments.settle_split(
        session,
        milestone.hold_id,
        pro_amount=milestone.resolution["pro_amount"],
        client_amount=milestone.resolution["client_amount"],
        actor=Actor.OPERATOR,
    )
    milestone.released_at = clock.now()
    await _settled(session, milestone)


MILESTONE_LIFECYCLE = StateMachine(
    entity="milestone",
    states=MilestoneState,
    initial=_M.DRAFT,
    transitions=[
        Transition(
            "activate",
            frozenset({_M.DRAFT}),
            _M.AWAITING_FUNDING,
            _SYSTEM,
            description="Both parties signed the contract.",
        ),
        Transition(
            "fund",
            frozenset({_M.AWAITING_FUNDING}),
            _M.AWAITING_FUNDING,
            _CLIENT,
            description="Checkout started; the milestone is funded when the payment is confirmed.",
        ),
        Transition(
            "confirm_funding",
            frozenset({_M.AWAITING_FUNDING}),
            _M.FUNDED,
            _SYSTEM,
            description="The payment provider confirmed the payment into escrow.",
        ),
        Transition("submit", _WORKING, _M.SUBMITTED, _PRO),
        Transition("request_changes", frozenset({_M.SUBMITTED}), _M.CHANGES_REQUESTED, _CLIENT),
        Transition("accept", frozenset({_M.SUBMITTED}), _M.ACCEPTED, _CLIENT, effect=_accepted),
        Transition(
            "auto_accept",
            frozenset({_M.SUBMITTED}),
            _M.ACCEPTED,
            _SYSTEM,
            guard=_auto_accept_due,
            effect=_accepted,
            description="The client did not answer within the review period.",
        ),
        Transition(
            "release",
            frozenset({_M.ACCEPTED}),
            _M.RELEASED,
            _SYSTEM,
            effect=_release,
            description="The pro's share to their pending balance, the fee to the platform.",
        ),
        Transition(
            "dispute",
            frozenset({_M.FUNDED, _M.SUBMITTED, _M.CHANGES_REQUESTED}),
            _M.DISPUTED,
            _CLIENT | _PRO,
            effect=_freeze,
        ),
        Transition(
            "resolve_release",
            frozenset({_M.DISPUTED}),
            _M.RELEASED,
            _DESK,
            effect=_resolve_release,
        ),
        Transition(
            "resolve_refund",
            frozenset({_M.DISPUTED}),
            _M.REFUNDED,
            _DESK,
            effect=_resolve_refund,
        ),
        Transition(
            "resolve_split",
            frozenset({_M.DISPUTED}),
            _M.SPLIT,
            _DESK,
            effect=_resolve_split,
            description="Part released to the pro, the rest refunded to the client.",
        ),
        Transition(
            "cancel",
            frozenset({_M.DRAFT, _M.AWAITING_FUNDING}),
            _M.CANCELLED,
            _CLIENT | _PRO | _SYSTEM | _STAFF,
            effect=_cancel_unfunded,
        ),
        # Funded work can be given up by the pro (the client is refunded in full); the
        # client cannot take funded money back alone: they request changes or dispute.
        Transition("cancel", _WORKING, _M.REFUNDED, _PRO | _STAFF, effect=_refund),
        Transition(
            "expire_overdue",
            _WORKING,
            _M.REFUNDED,
            _SYSTEM,
            guard=_overdue,
            effect=_refund,
            description="Not delivered long after the due date.",
        ),
    ],
    timers={
        _M.SUBMITTED: [Timer("auto_accept", at=auto_accept_at)],
        _M.FUNDED: [Timer("expire_overdue", at=overdue_at)],
        _M.CHANGES_REQUESTED: [Timer("expire_overdue", at=overdue_at)],
    },
    model=Milestone,
)
