"""The contract lifecycle: awaiting signatures → active (both parties signed the same
document) → completed (every milestone settled); either party may withdraw before it is
signed, and it ends cancelled if every milestone was cancelled or refunded."""

from __future__ import annotations

from mesteri.contracts.models import Contract, ContractState
from mesteri.kit.statemachine import Actor, StateMachine, Transition

_C = ContractState
_SYSTEM = frozenset({Actor.SYSTEM})

CONTRACT_LIFECYCLE = StateMachine(
    entity="contract",
    states=ContractState,
    initial=_C.AWAITING_SIGNATURES,
    transitions=[
        Transition("activate", frozenset({_C.AWAITING_SIGNATURES}), _C.ACTIVE, _SYSTEM),
        Transition("complete", frozenset({_C.ACTIVE}), _C.COMPLETED, _SYSTEM),
        Transition(
            "withdraw",
            frozenset({_C.AWAITING_SIGNATURES}),
            _C.CANCELLED,
            frozenset({Actor.CLIENT, Actor.PRO, Actor.OPERATOR}),
        ),
        Transition("cancel", frozenset({_C.ACTIVE}), _C.CANCELLED, _SYSTEM),
    ],
    model=Contract,
)
