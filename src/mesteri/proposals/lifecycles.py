"""The proposal lifecycle.

submitted ⇄ shortlisted, countered by the client (the pro accepts the counter or revises),
accepted by the client (or the counter by the pro), declined, withdrawn, or expired
14 days after the latest terms were put on the table.
"""

from __future__ import annotations

from mesteri.kit import clock
from mesteri.kit.statemachine import Actor, StateMachine, Timer, Transition
from mesteri.proposals.models import Proposal, ProposalState

_P = ProposalState
_LIVE = frozenset({_P.SUBMITTED, _P.SHORTLISTED, _P.COUNTERED})
_OPEN_TO_CLIENT = frozenset({_P.SUBMITTED, _P.SHORTLISTED})
_CLIENT = frozenset({Actor.CLIENT})
_PRO = frozenset({Actor.PRO})


def _expired(proposal: Proposal) -> bool:
    return clock.now() >= proposal.expires_at


_EXPIRY = [Timer("expire", at=lambda proposal: proposal.expires_at)]

PROPOSAL_LIFECYCLE = StateMachine(
    entity="proposal",
    states=ProposalState,
    initial=_P.SUBMITTED,
    transitions=[
        Transition("shortlist", frozenset({_P.SUBMITTED}), _P.SHORTLISTED, _CLIENT),
        Transition("counter", _OPEN_TO_CLIENT, _P.COUNTERED, _CLIENT),
        Transition("revise", frozenset({_P.COUNTERED}), _P.SUBMITTED, _PRO),
        Transition("accept", _OPEN_TO_CLIENT, _P.ACCEPTED, _CLIENT),
        Transition("accept_counter", frozenset({_P.COUNTERED}), _P.ACCEPTED, _PRO),
        # The system declines the others when one is accepted or the job is withdrawn.
        Transition("decline", _LIVE, _P.DECLINED, _CLIENT | {Actor.SYSTEM}),
        Transition("withdraw", _LIVE, _P.WITHDRAWN, _PRO),
        Transition("expire", _LIVE, _P.EXPIRED, frozenset({Actor.SYSTEM}), guard=_expired),
    ],
    timers=dict.fromkeys(_LIVE, _EXPIRY),
    model=Proposal,
)
