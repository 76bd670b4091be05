"""The proposal lifecycle.

submitted ⇄ shortlisted, countered by the client (the pro accepts the counter or revises),
accepted by the client (or the counter by the pro), declined, withdrawn, or expired
14 days after the latest terms were put on the table.
"""

from __future__ import annotations

from typing import Any

from mesteri.config import get_settings
from mesteri.kit import clock
from mesteri.kit.i18n import lazy
from mesteri.kit.statemachine import Actor, StateMachine, Timer, Transition
from mesteri.notifications import service as notifications
from mesteri.proposals.models import Proposal, ProposalState

_P = ProposalState
_LIVE = frozenset({_P.SUBMITTED, _P.SHORTLISTED, _P.COUNTERED})
_OPEN_TO_CLIENT = frozenset({_P.SUBMITTED, _P.SHORTLISTED})
_CLIENT = frozenset({Actor.CLIENT})
_PRO = frozenset({Actor.PRO})


def _expired(proposal: Proposal) -> bool:
    return clock.now() >= proposal.expires_at


def _current(proposal: Proposal) -> bool:
    """Terms past their expiry cannot be accepted, even before the timer has run."""
    return clock.now() < proposal.expires_at


async def _tell_author_expired(session: Any, proposal: Proposal) -> None:
    """The expiry timer's effect: the pro hears that their proposal lapsed."""

    proposal.updated_at = clock.now()
    await notifications.do_notify(
        session,
        proposal.pro_user_id,
        kind="proposal.expired",
        subject=lazy("Your proposal expired"),
        body=lazy(
            "The client did not answer your proposal within {days} days, so it expired. "
            "You can send a new one while the job is open."
        ),
        days=get_settings().proposal_expiry_days,
        link=f"/proposals/{proposal.id}",
    )


_EXPIRY = [Timer("expire", at=lambda proposal: proposal.expires_at)]

PROPOSAL_LIFECYCLE = StateMachine(
    entity="proposal",
    states=ProposalState,
    initial=_P.SUBMITTED,
    transitions=[
        Transition("shortlist", frozenset({_P.SUBMITTED}), _P.SHORTLISTED, _CLIENT),
        Transition("counter", _OPEN_TO_CLIENT, _P.COUNTERED, _CLIENT),
        Transition("revise", frozenset({_P.COUNTERED}), _P.SUBMITTED, _PRO),
        Transition("accept", _OPEN_TO_CLIENT, _P.ACCEPTED, _CLIENT, guard=_current),
        Transition("accept_counter", frozenset({_P.COUNTERED}), _P.ACCEPTED, _PRO, guard=_current),
        # The system declines the others when one is accepted or the job is withdrawn.
        Transition("decline", _LIVE, _P.DECLINED, _CLIENT | {Actor.SYSTEM}),
        Transition("withdraw", _LIVE, _P.WITHDRAWN, _PRO),
        Transition(
            "expire",
            _LIVE,
            _P.EXPIRED,
            frozenset({Actor.SYSTEM}),
            guard=_expired,
            effect=_tell_author_expired,
        ),
    ],
    timers=dict.fromkeys(_LIVE, _EXPIRY),
    model=Proposal,
)
