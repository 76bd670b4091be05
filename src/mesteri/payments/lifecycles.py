"""The declared lifecycles of escrow holds, wallet credits and payouts."""

from __future__ import annotations

from mesteri.kit.db import WriteSession
from mesteri.kit.statemachine import Actor, StateMachine, Timer, Transition
from mesteri.payments import ledger
from mesteri.payments.models import (
    AccountKind,
    CreditState,
    EntryKind,
    HoldState,
    PayoutState,
    WalletCredit,
)

_ANYONE_SYSTEMIC = frozenset({Actor.SYSTEM, Actor.OPERATOR})
_STAFF = frozenset({Actor.OPERATOR})
_H = HoldState

HOLD_LIFECYCLE = StateMachine(
    entity="hold",
    states=HoldState,
    initial=HoldState.AWAITING_PAYMENT,
    transitions=[
        Transition(
            "fund",
            frozenset({_H.AWAITING_PAYMENT}),
            _H.HELD,
            frozenset({Actor.SYSTEM}),
            description="The payer's payment was captured into escrow.",
        ),
        Transition("cancel", frozenset({_H.AWAITING_PAYMENT}), _H.CANCELLED, _ANYONE_SYSTEMIC),
        Transition(
            "release",
            frozenset({_H.HELD}),
            _H.RELEASED,
            _ANYONE_SYSTEMIC | {Actor.CLIENT},
            description="The payee's share to their pending balance, fees to the platform.",
        ),
        # A dispute decision may release or refund a frozen hold; only staff decide it, so
        # no timer (auto-accept, overdue refund) can move disputed money.
        Transition("release", frozenset({_H.FROZEN}), _H.RELEASED, _STAFF),
        Transition("refund", frozenset({_H.HELD}), _H.REFUNDED, _ANYONE_SYSTEMIC),
        Transition("refund", frozenset({_H.FROZEN}), _H.REFUNDED, _STAFF),
        Transition(
            "freeze",
            frozenset({_H.HELD}),
            _H.FROZEN,
            _ANYONE_SYSTEMIC | {Actor.CLIENT, Actor.PRO},
            description="A dispute holds the money until it is resolved.",
        ),
        Transition("unfreeze", frozenset({_H.FROZEN}), _H.HELD, _ANYONE_SYSTEMIC),
        Transition("settle_split", frozenset({_H.FROZEN}), _H.SPLIT, _ANYONE_SYSTEMIC),
    ],
)


async def _make_available(session: WriteSession, credit: WalletCredit) -> None:
    """The hold period ended: pending → available, exactly once per credit."""
    await ledger.post(
        session,
        EntryKind.MATURE,
        [
            (
                ledger.owned(AccountKind.WALLET_PENDING, credit.user_id, credit.currency),
                -credit.amount,
            ),
            (
                ledger.owned(AccountKind.WALLET_AVAILABLE, credit.user_id, credit.currency),
                credit.amount,
            ),
        ],
        cause=ledger.Cause("credit", credit.id, hold_id=credit.hold_id),
        idempotency_key=f"mature:{credit.id}",
        memo="Hold period ended",
    )


CREDIT_LIFECYCLE = StateMachine(
    entity="wallet_credit",
    states=CreditState,
    initial=CreditState.PENDING,
    transitions=[
        Transition(
            "mature",
            frozenset({CreditState.PENDING}),
            CreditState.AVAILABLE,
            frozenset({Actor.SYSTEM}),
            effect=_make_available,
        ),
    ],
    timers={CreditState.PENDING: [Timer("mature", at=lambda credit: credit.available_at)]},
    model=WalletCredit,
)

PAYOUT_LIFECYCLE = StateMachine(
    entity="payout",
    states=PayoutState,
    initial=PayoutState.REQUESTED,
    transitions=[
        Transition(
            "send",
            frozenset({PayoutState.REQUESTED}),
            PayoutState.IN_TRANSIT,
            frozenset({Actor.SYSTEM}),
        ),
        Transition(
            "pay", frozenset({PayoutState.IN_TRANSIT}), PayoutState.PAID, frozenset({Actor.SYSTEM})
        ),
        # A bank can return a payout even after it was reported paid.
        Transition(
            "fail",
            frozenset({PayoutState.REQUESTED, PayoutState.IN_TRANSIT, PayoutState.PAID}),
            PayoutState.FAILED,
            frozenset({Actor.SYSTEM}),
        ),
    ],
)
