"""The declared lifecycles of accounts and one-time codes."""

from __future__ import annotations

from datetime import timedelta

from mesteri.accounts.models import OtpChallenge, OtpState, UserState
from mesteri.kit.statemachine import Actor, StateMachine, Timer, Transition

OTP_TTL = timedelta(minutes=10)

_P = OtpState.PENDING

USER_LIFECYCLE = StateMachine(
    entity="user",
    states=UserState,
    initial=UserState.ACTIVE,
    transitions=[
        Transition(
            "suspend",
            frozenset({UserState.ACTIVE}),
            UserState.SUSPENDED,
            frozenset({Actor.OPERATOR}),
        ),
        Transition(
            "reinstate",
            frozenset({UserState.SUSPENDED}),
            UserState.ACTIVE,
            frozenset({Actor.OPERATOR}),
        ),
        Transition(
            "delete",
            frozenset({UserState.ACTIVE, UserState.SUSPENDED}),
            UserState.DELETED,
            frozenset({Actor.USER, Actor.OPERATOR}),
        ),
    ],
)

OTP_LIFECYCLE = StateMachine(
    entity="otp",
    states=OtpState,
    initial=OtpState.PENDING,
    transitions=[
        Transition("use", frozenset({_P}), OtpState.USED, frozenset({Actor.USER})),
        Transition("exhaust", frozenset({_P}), OtpState.EXHAUSTED, frozenset({Actor.SYSTEM})),
        Transition("expire", frozenset({_P}), OtpState.EXPIRED, frozenset({Actor.SYSTEM})),
        Transition("supersede", frozenset({_P}), OtpState.SUPERSEDED, frozenset({Actor.SYSTEM})),
    ],
    # A code nobody used expires by itself (checks also refuse it once its time is up).
    timers={OtpState.PENDING: [Timer("expire", OTP_TTL)]},
    model=OtpChallenge,
)
