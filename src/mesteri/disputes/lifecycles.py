"""The dispute ladder (SPEC M8), declared once: the API, the pages' buttons, the timers
and the tests all read this table.

    negotiation ──escalate (a party) / stage_timeout (day 7)──▶ mediation
    mediation ──escalate (a party) / stage_timeout (day 7)──▶ decision
    mediation ──request_expert (a party, fee confirmed)──▶ expert_review
    expert_review ──expert_report (the expert, fee paid)──▶ decision
    expert_review ──expert_timeout (fee unpaid by day 7)──▶ decision
    negotiation, mediation, expert_review, decision ──settle (an offer accepted)──▶ settled
    mediation, expert_review, decision ──resolve (staff)──▶ resolved

Ending moves the frozen escrow exactly once, through the milestones service (which
settles the hold: release, refund or split), inside the same transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update

from mesteri.config import get_settings
from mesteri.disputes.events import DisputeEnded
from mesteri.disputes.models import (
    Dispute,
    DisputeEvent,
    DisputeOffer,
    DisputeStage,
    ExpertFeeState,
    OfferState,
)
from mesteri.kit import clock, events
from mesteri.kit.db import WriteSession
from mesteri.kit.i18n import lazy
from mesteri.kit.ids import new_id
from mesteri.kit.statemachine import Actor, StateMachine, Timer, Transition
from mesteri.milestones import service as milestones
from mesteri.notifications import service as notifications
from mesteri.payments import service as payments
from mesteri.payments.models import HoldState

_D = DisputeStage
_PARTIES = frozenset({Actor.CLIENT, Actor.PRO})
_SYSTEM = frozenset({Actor.SYSTEM})
_STAFF = frozenset({Actor.OPERATOR})
TIMED_STAGES = frozenset({_D.NEGOTIATION, _D.MEDIATION, _D.EXPERT_REVIEW})
# Where staff may decide: after the parties had their own week (mediation onwards).
DECIDABLE = frozenset({_D.MEDIATION, _D.EXPERT_REVIEW, _D.DECISION})


def stage_deadline(dispute: Dispute) -> datetime:
    assert dispute.stage_deadline is not None
    return dispute.stage_deadline


def _deadline_passed(dispute: Dispute) -> bool:
    return dispute.stage_deadline is not None and clock.now() >= dispute.stage_deadline


def _fee_unpaid_in_time(dispute: Dispute) -> bool:
    return dispute.expert_fee_state != ExpertFeeState.PAID and _deadline_passed(dispute)


# ---------------------------------------------------------------- the record and mail


def record(
    session: WriteSession,
    dispute: Dispute,
    kind: str,
    *,
    actor_role: str,
    actor_id: uuid.UUID | None = None,
    body: str = "",
    attachment_ids: Iterable[uuid.UUID] = (),
    **data: Any,
) -> DisputeEvent:
    """One step of the dispute's history (both sides see it)."""
    event = DisputeEvent(
        id=new_id(),
        dispute_id=dispute.id,
        kind=kind,
        actor_id=actor_id,
        actor_role=actor_role,
        stage=dispute.stage,
        body=body,
        attachment_ids=list(attachment_ids),
        data=data,
        at=clock.now(),
    )
    session.add(event)
    dispute.updated_at = event.at
    return event


SUBJECT = lazy("Your dispute has an update")
NEWS = {
    "opened": lazy(
        "A dispute was opened about a milestone of your contract. The payment is frozen until "
        "it ends. Read it and answer."
    ),
    "stage": lazy("Your dispute moved to the next step. See where it stands and what you can do."),
    "offer": lazy("There is a new offer to settle your dispute. Read it and answer."),
    "question": lazy("The mediator asked a question in your dispute. Please answer."),
    "expert": lazy("There is news about the expert review in your dispute."),
    "ended": lazy("Your dispute has ended and the payment was settled. See the outcome."),
}


async def notify(
    session: WriteSession, dispute: Dispute, news: str, *, to: Iterable[uuid.UUID] | None = None
) -> None:
    """E-mail the parties (or ``to``) through the outbox, with a link to the dispute."""
    link = f"/disputes/{dispute.id}"
    for user_id in to if to is not None else (dispute.client_id, dispute.pro_user_id):
        await notifications.do_notify(
            session, user_id, kind="dispute.update", subject=SUBJECT, body=NEWS[news], link=link
        )


async def _supersede_open_offers(session: WriteSession, dispute: Dispute) -> None:
    await session.execute(
        update(DisputeOffer)
        .where(DisputeOffer.dispute_id == dispute.id, DisputeOffer.state == OfferState.OPEN)
        .values(state=OfferState.SUPERSEDED)
        .execution_options(synchronize_session="fetch")
    )


# ---------------------------------------------------------------- effects


def start_clock(dispute: Dispute) -> None:
    """The current rung starts now; the timed ones end after the stage's days."""
    now = clock.now()
    dispute.stage_started_at = dispute.updated_at = now
    days = timedelta(days=get_settings().dispute_stage_days)
    dispute.stage_deadline = now + days if dispute.stage in TIMED_STAGES else None


async def _stage_started(session: WriteSession, dispute: Dispute) -> None:
    """A new rung: its clock starts; offers made on the last rung no longer stand."""
    start_clock(dispute)
    await _supersede_open_offers(session, dispute)
    await notify(session, dispute, "stage")


async def _timed_out(session: WriteSession, dispute: Dispute) -> None:
    record(session, dispute, "escalated", actor_role="system", timer=True)
    await _stage_started(session, dispute)


async def cancel_expert_fee(session: WriteSession, dispute: Dispute) -> None:
    """An expert fee that was never paid is dropped (a late payment is refunded)."""
    if dispute.expert_fee_state != ExpertFeeState.AWAITING_PAYMENT:
        return
    if dispute.expert_fee_hold_id is not None:
        hold = await payments.lock_hold(session, dispute.expert_fee_hold_id)
        if hold.state == HoldState.AWAITING_PAYMENT:
            await payments.cancel(session, hold.id, actor=Actor.SYSTEM)
    dispute.expert_fee_state = ExpertFeeState.CANCELLED


async def _expert_timed_out(session: WriteSession, dispute: Dispute) -> None:
    await cancel_expert_fee(session, dispute)
    record(session, dispute, "expert_cancelled", actor_role="system", timer=True)
    await _stage_started(session, dispute)


async def _end(session: WriteSession, dispute: Dispute, actor: Actor) -> None:
    assert dispute.pro_amount is not None
    assert dispute.client_amount is not None
    assert dispute.outcome is not None
    await milestones.do_resolve(
        session,
        dispute.milestone_id,
        pro_amount=dispute.pro_amount,
        client_amount=dispute.client_amount,
        actor=actor,
        actor_id=dispute.resolved_by,
    )
    await cancel_expert_fee(session, dispute)
    now = clock.now()
    dispute.resolved_at = dispute.updated_at = now
    dispute.stage_deadline = None
    await _supersede_open_offers(session, dispute)
    await events.publish(
        session,
        DisputeEnded(
            dispute.id,
            dispute.milestone_id,
            dispute.contract_id,
            dispute.stage,
            dispute.outcome,
            dispute.pro_amount,
            dispute.client_amount,
        ),
    )
    await notify(session, dispute, "ended")


async def _settled(session: WriteSession, dispute: Dispute) -> None:
    # The parties agreed: the milestone's desk transition runs as the system.
    await _end(session, dispute, Actor.SYSTEM)


async def _resolved(session: WriteSession, dispute: Dispute) -> None:
    await _end(session, dispute, Actor.OPERATOR)


DISPUTE_LIFECYCLE = StateMachine(
    entity="dispute",
    states=DisputeStage,
    initial=_D.NEGOTIATION,
    transitions=[
        Transition(
            "escalate",
            frozenset({_D.NEGOTIATION}),
            _D.MEDIATION,
            _PARTIES,
            effect=_stage_started,
            description="A party asks the platform to mediate.",
        ),
        Transition(
            "escalate",
            frozenset({_D.MEDIATION}),
            _D.DECISION,
            _PARTIES,
            effect=_stage_started,
            description="A party asks for a decision.",
        ),
        Transition(
            "stage_timeout",
            frozenset({_D.NEGOTIATION}),
            _D.MEDIATION,
            _SYSTEM,
            guard=_deadline_passed,
            effect=_timed_out,
            description="The parties did not settle within the stage's days.",
        ),
        Transition(
            "stage_timeout",
            frozenset({_D.MEDIATION}),
            _D.DECISION,
            _SYSTEM,
            guard=_deadline_passed,
            effect=_timed_out,
            description="Mediation did not settle within the stage's days.",
        ),
        Transition(
            "request_expert",
            frozenset({_D.MEDIATION}),
            _D.EXPERT_REVIEW,
            _PARTIES,
            effect=_stage_started,
            description="A party asks for an independent expert and owes the fee.",
        ),
        Transition(
            "expert_report",
            frozenset({_D.EXPERT_REVIEW}),
            _D.DECISION,
            _STAFF,
            effect=_stage_started,
            description="The expert filed the report; the fee is paid to the expert.",
        ),
        Transition(
            "expert_timeout",
            frozenset({_D.EXPERT_REVIEW}),
            _D.DECISION,
            _SYSTEM,
            guard=_fee_unpaid_in_time,
            effect=_expert_timed_out,
            description="The expert's fee was not paid in time: a decision without it.",
        ),
        Transition(
            "settle",
            frozenset({_D.NEGOTIATION, _D.MEDIATION, _D.EXPERT_REVIEW, _D.DECISION}),
            _D.SETTLED,
            _PARTIES,
            effect=_settled,
            description="An offer was accepted: the money is split as agreed.",
        ),
        Transition(
            "resolve",
            DECIDABLE,
            _D.RESOLVED,
            _STAFF,
            effect=_resolved,
            description="Staff decide: release, refund or split. Final.",
        ),
    ],
    timers={
        _D.NEGOTIATION: [Timer("stage_timeout", at=stage_deadline)],
        _D.MEDIATION: [Timer("stage_timeout", at=stage_deadline)],
        _D.EXPERT_REVIEW: [Timer("expert_timeout", at=stage_deadline)],
    },
    model=Dispute,
)
