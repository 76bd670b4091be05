"""The verification lifecycle of a submission (SPEC M3).

none → pending (submitted) → verified | rejected (with a reason shown to the pro);
a verified pro whose verified details change goes back to pending (``reverify``); a new
submission supersedes an open or rejected one. The profile's badge state mirrors the
latest submission.
"""

from __future__ import annotations

from mesteri.kit.statemachine import Actor, StateMachine, Transition
from mesteri.pros.models import SubmissionState, VerificationSubmission

_P, _V, _R = SubmissionState.PENDING, SubmissionState.VERIFIED, SubmissionState.REJECTED

VERIFICATION_LIFECYCLE = StateMachine(
    entity="verification",
    states=SubmissionState,
    initial=_P,
    transitions=[
        Transition("approve", frozenset({_P}), _V, frozenset({Actor.OPERATOR})),
        Transition("reject", frozenset({_P}), _R, frozenset({Actor.OPERATOR})),
        Transition("reverify", frozenset({_V}), _P, frozenset({Actor.SYSTEM})),
        Transition(
            "supersede",
            frozenset({_P, _R, _V}),
            SubmissionState.SUPERSEDED,
            frozenset({Actor.SYSTEM}),
        ),
    ],
    model=VerificationSubmission,
)
