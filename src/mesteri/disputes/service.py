"""Disputes: the ladder over a disputed milestone (SPEC M8).

Parties open a dispute (``do_open``: the milestone's escrow is frozen through the
milestones service), add evidence, exchange split offers and accept the other side's
(``do_offer``, ``do_accept``), escalate, and may ask for a paid expert; staff mediate
(questions, a proposed split), and decide (``do_resolve``). The money moves exactly once,
when the dispute ends, through ``milestones.do_resolve``. The API and the pages call these
functions; nothing else decides a rule.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Uuid, any_, literal, or_, select

from mesteri.accounts import repository as accounts_repo
from mesteri.accounts import service as accounts
from mesteri.accounts.service import ClientInfo, Principal
from mesteri.config import Settings, get_settings
from mesteri.disputes.errors import (
    AmountOutOfRangeError,
    AttachmentNotUsableError,
    DisputeClosedError,
    DisputeDecidedError,
    DisputeExistsError,
    DisputeNotFoundError,
    ExpertFeeUnpaidError,
    ExpertMissingError,
    FeeChangedError,
    InvalidExpertError,
    MediationNotStartedError,
    NotAPartyError,
    NotTheExpertError,
    OfferNotFoundError,
    OfferNotOpenError,
    OwnOfferError,
    SplitMismatchError,
)
from mesteri.disputes.events import DisputeOpened
from mesteri.disputes.lifecycles import (
    DECIDABLE,
    DISPUTE_LIFECYCLE,
    notify,
    record,
    start_clock,
)
from mesteri.disputes.models import (
    OPEN_STAGES,
    Dispute,
    DisputeEvent,
    DisputeOffer,
    DisputeStage,
    ExpertFeeState,
    OfferState,
)
from mesteri.disputes.schemas import (
    DisputeIn,
    EvidenceIn,
    ExpertRequestIn,
    OfferIn,
    QuestionIn,
    ResolveIn,
)
from mesteri.kit import audit, clock, events
from mesteri.kit.db import ReadSession, WriteSession
from mesteri.kit.errors import ConflictError, PermissionDeniedError
from mesteri.kit.i18n import lazy
from mesteri.kit.ids import new_id
from mesteri.kit.money import Money
from mesteri.kit.pagination import keyset, page_of
from mesteri.kit.statemachine import Actor, TransitionNotAllowedError
from mesteri.media import service as media
from mesteri.milestones import service as milestones
from mesteri.milestones.models import Milestone
from mesteri.payments import service as payments
from mesteri.payments.events import HoldFunded

_D = DisputeStage
EXPERT_REFERENCE = "dispute-expert:"
ATTACHMENT_PURPOSES = frozenset({"attachment", "portfolio"})
Role = Literal["client", "pro", "staff"]


# ---------------------------------------------------------------- who is asking


def roles_of(dispute: Dispute, principal: Principal) -> set[Actor]:
    roles: set[Actor] = set()
    if principal.user_id == dispute.client_id:
        roles.add(Actor.CLIENT)
    if principal.user_id == dispute.pro_user_id:
        roles.add(Actor.PRO)
    if principal.is_staff and principal.mfa:
        roles.add(Actor.OPERATOR)
    return roles


def role_of(dispute: Dispute, principal: Principal) -> Role:
    """The role this user acts in: a party before staff."""
    roles = roles_of(dispute, principal)
    if Actor.CLIENT in roles:
        return "client"
    if Actor.PRO in roles:
        return "pro"
    if Actor.OPERATOR in roles:
        return "staff"
    raise DisputeNotFoundError()


def _party(dispute: Dispute, principal: Principal) -> Literal["client", "pro"]:
    role = role_of(dispute, principal)
    if role == "staff":
        raise NotAPartyError()
    return role


def _check_staff(dispute: Dispute, principal: Principal) -> None:
    accounts.check_staff(principal)
    if principal.user_id in (dispute.client_id, dispute.pro_user_id):
        raise PermissionDeniedError(lazy("Staff cannot act on a dispute they are a party to."))


def _check_open(dispute: Dispute) -> None:
    if dispute.stage not in OPEN_STAGES:
        raise DisputeClosedError()


async def access_dispute(
    session: ReadSession, dispute_id: uuid.UUID, principal: Principal
) -> Dispute:
    """The dispute for one of its parties or staff; anyone else is told it does not exist."""
    dispute = await session.get(Dispute, dispute_id)
    if dispute is None or not roles_of(dispute, principal):
        raise DisputeNotFoundError()
    return dispute


async def lock_dispute(
    session: WriteSession, dispute_id: uuid.UUID, principal: Principal
) -> Dispute:
    """The dispute row locked for a change (concurrent accepts settle once), for the same
    people as ``access_dispute``."""
    dispute = await session.get(Dispute, dispute_id, with_for_update=True, populate_existing=True)
    if dispute is None or not roles_of(dispute, principal):
        raise DisputeNotFoundError()
    return dispute


def actions_for(dispute: Dispute, principal: Principal) -> list[str]:
    """What this user may do now: the ladder's transitions plus the dispute's own steps."""
    roles = roles_of(dispute, principal)
    stage = _D(dispute.stage)
    if stage not in OPEN_STAGES:
        return []
    parties = roles & {Actor.CLIENT, Actor.PRO}
    staff = not parties and Actor.OPERATOR in roles
    actions = ["evidence"]
    if parties:
        names = DISPUTE_LIFECYCLE.available(stage, parties)
        actions += ["offer", *(n for n in names if n != "settle")]
        if (
            stage == _D.EXPERT_REVIEW
            and dispute.expert_requested_by == principal.user_id
            and dispute.expert_fee_state == ExpertFeeState.AWAITING_PAYMENT
            and dispute.expert_id is not None
        ):
            actions.append("pay_expert")
    if staff:
        actions.append("assign")
        if stage in DECIDABLE:
            actions += ["offer", "question", "resolve"]
        if stage == _D.EXPERT_REVIEW:
            actions.append("assign_expert")
            if dispute.expert_id == principal.user_id:
                actions.append("expert_report")
    return actions


def expert_quote(dispute: Dispute) -> int:
    """The expert's fee: a share of the disputed amount, within the market's bounds."""
    settings = get_settings()
    fee = dispute.amount_disputed * settings.expert_fee_bps // 10_000
    return max(settings.expert_fee_min, min(settings.expert_fee_max, fee))


def _format(amount: int, currency: str) -> str:
    return Money(amount, currency).format(get_settings().market_profile.default_language)


def _outcome(pro_amount: int, client_amount: int) -> str:
    if client_amount == 0:
        return "release"
    if pro_amount == 0:
        return "refund"
    return "split"


async def _attach(
    session: WriteSession, attachment_ids: Sequence[uuid.UUID], owner_id: uuid.UUID
) -> None:
    if not attachment_ids:
        return
    try:
        await media.do_attach(session, attachment_ids, owner_id, purposes=ATTACHMENT_PURPOSES)
    except Exception as error:
        raise AttachmentNotUsableError(field="attachment_ids") from error


# ---------------------------------------------------------------- opening


async def latest_for_milestone(session: ReadSession, milestone_id: uuid.UUID) -> Dispute | None:
    """The milestone's newest dispute: its open one, if any (one at a time)."""
    query = (
        select(Dispute)
        .where(Dispute.milestone_id == milestone_id)
        .order_by(Dispute.opened_at.desc(), Dispute.id.desc())
        .limit(1)
    )
    found: Dispute | None = await session.scalar(query)
    return found


async def has_dispute(session: ReadSession, contract_id: uuid.UUID) -> bool:
    """Whether a milestone of this contract was ever disputed (staff may then read the
    parties' conversation as evidence)."""
    found = await session.scalar(
        select(Dispute.id).where(Dispute.contract_id == contract_id).limit(1)
    )
    return found is not None


async def held_of(session: ReadSession, milestone: Milestone) -> int:
    """What the milestone's escrow still holds (0 before it is funded)."""
    if milestone.hold_id is None:
        return 0
    return payments.remaining(await payments.get_hold(session, milestone.hold_id))


async def do_open(
    session: WriteSession, milestone_id: uuid.UUID, principal: Principal, body: DisputeIn
) -> Dispute:
    """A party disputes a funded, unreleased milestone: its escrow is frozen and the
    ladder starts at negotiation."""
    milestone = await milestones.access_milestone(session, milestone_id, principal)
    if principal.user_id not in (milestone.client_id, milestone.pro_user_id):
        raise NotAPartyError()
    milestone = await milestones.lock_milestone(session, milestone_id)
    latest = await latest_for_milestone(session, milestone_id)
    if latest is not None and latest.stage in OPEN_STAGES:
        raise DisputeExistsError()
    state_before = milestone.state
    milestone = await milestones.do_dispute(session, milestone_id, principal, body.reason)
    assert milestone.hold_id is not None
    held = await held_of(session, milestone)
    amount = held if body.amount is None else body.amount
    if not 0 < amount <= held:
        raise AmountOutOfRangeError(
            field="amount",
            minimum=_format(1, milestone.currency),
            maximum=_format(held, milestone.currency),
        )
    role = "client" if principal.user_id == milestone.client_id else "pro"
    dispute = Dispute(
        id=new_id(),
        milestone_id=milestone.id,
        contract_id=milestone.contract_id,
        hold_id=milestone.hold_id,
        client_id=milestone.client_id,
        pro_user_id=milestone.pro_user_id,
        opened_by=principal.user_id,
        opened_by_role=role,
        reason=body.reason,
        currency=milestone.currency,
        amount_held=held,
        amount_disputed=amount,
        milestone_state=state_before,
        stage=_D.NEGOTIATION,
    )
    start_clock(dispute)
    dispute.opened_at = dispute.stage_started_at
    session.add(dispute)
    await session.flush()
    record(
        session,
        dispute,
        "opened",
        actor_role=role,
        actor_id=principal.user_id,
        body=body.reason,
        amount=amount,
    )
    if body.evidence is not None:
        await _attach(session, body.evidence.attachment_ids, principal.user_id)
        record(
            session,
            dispute,
            "evidence",
            actor_role=role,
            actor_id=principal.user_id,
            body=body.evidence.body,
            attachment_ids=body.evidence.attachment_ids,
        )
    await DISPUTE_LIFECYCLE.start(session, dispute)
    await events.publish(
        session, DisputeOpened(dispute.id, dispute.milestone_id, dispute.contract_id)
    )
    await notify(session, dispute, "opened")
    await session.flush()
    return dispute


# ---------------------------------------------------------------- evidence and mediation


async def do_add_evidence(
    session: WriteSession, dispute_id: uuid.UUID, principal: Principal, body: EvidenceIn
) -> DisputeEvent:
    """A party (or staff) adds words and files; with ``question_id`` it answers the mediator."""
    dispute = await lock_dispute(session, dispute_id, principal)
    _check_open(dispute)
    role = role_of(dispute, principal)
    kind = "evidence"
    data: dict[str, Any] = {}
    if body.question_id is not None:
        question = await session.get(DisputeEvent, body.question_id)
        if question is None or question.dispute_id != dispute.id or question.kind != "question":
            raise DisputeNotFoundError(
                lazy("This dispute has no such question."), field="question_id"
            )
        kind, data = "answer", {"question_id": str(question.id)}
    await _attach(session, body.attachment_ids, principal.user_id)
    event = record(
        session,
        dispute,
        kind,
        actor_role=role,
        actor_id=principal.user_id,
        body=body.body,
        attachment_ids=body.attachment_ids,
        **data,
    )
    await session.flush()
    return event


async def do_ask(
    session: WriteSession, dispute_id: uuid.UUID, principal: Principal, body: QuestionIn
) -> DisputeEvent:
    """The mediator asks one or both parties; they answer with evidence."""
    dispute = await lock_dispute(session, dispute_id, principal)
    _check_staff(dispute, principal)
    _check_open(dispute)
    if dispute.stage not in DECIDABLE:
        raise MediationNotStartedError()
    if dispute.mediator_id is None:
        dispute.mediator_id = principal.user_id
    event = record(
        session,
        dispute,
        "question",
        actor_role="staff",
        actor_id=principal.user_id,
        body=body.body,
        to=body.to,
    )
    to = {
        "client": [dispute.client_id],
        "pro": [dispute.pro_user_id],
        "both": [dispute.client_id, dispute.pro_user_id],
    }[body.to]
    await notify(session, dispute, "question", to=to)
    await session.flush()
    return event


async def do_assign_mediator(
    session: WriteSession, dispute_id: uuid.UUID, principal: Principal
) -> Dispute:
    """A member of staff claims the dispute as its mediator."""
    dispute = await lock_dispute(session, dispute_id, principal)
    _check_staff(dispute, principal)
    _check_open(dispute)
    if dispute.mediator_id != principal.user_id:
        dispute.mediator_id = principal.user_id
        record(
            session, dispute, "mediator_assigned", actor_role="staff", actor_id=principal.user_id
        )
    await session.flush()
    return dispute


async def do_escalate(
    session: WriteSession, dispute_id: uuid.UUID, principal: Principal
) -> Dispute:
    """A party moves the dispute up the ladder before the stage's time is up."""
    dispute = await lock_dispute(session, dispute_id, principal)
    role = _party(dispute, principal)
    _check_open(dispute)
    before = dispute.stage
    await DISPUTE_LIFECYCLE.apply(
        session, dispute, "escalate", actor=Actor(role), actor_id=principal.user_id
    )
    record(
        session,
        dispute,
        "escalated",
        actor_role=role,
        actor_id=principal.user_id,
        from_stage=before,
    )
    await session.flush()
    return dispute


# ---------------------------------------------------------------- offers


async def do_offer(
    session: WriteSession, dispute_id: uuid.UUID, principal: Principal, body: OfferIn
) -> DisputeOffer:
    """A split of the held amount: by a party (the other accepts) or by the mediator (both
    accept). A new offer from the same side replaces its open one."""
    dispute = await lock_dispute(session, dispute_id, principal)
    _check_open(dispute)
    role = role_of(dispute, principal)
    if role == "staff":
        _check_staff(dispute, principal)
        if dispute.stage not in DECIDABLE:
            raise MediationNotStartedError()
        if dispute.mediator_id is None:
            dispute.mediator_id = principal.user_id
    made_by_role = "mediator" if role == "staff" else role
    if body.pro_amount + body.client_amount != dispute.amount_held:
        raise SplitMismatchError(
            field="pro_amount", held=_format(dispute.amount_held, dispute.currency)
        )
    previous = await session.scalars(
        select(DisputeOffer).where(
            DisputeOffer.dispute_id == dispute.id,
            DisputeOffer.made_by_role == made_by_role,
            DisputeOffer.state == OfferState.OPEN,
        )
    )
    for old in previous:
        old.state = OfferState.SUPERSEDED
    now = clock.now()
    offer = DisputeOffer(
        id=new_id(),
        dispute_id=dispute.id,
        made_by=principal.user_id,
        made_by_role=made_by_role,
        stage=dispute.stage,
        pro_amount=body.pro_amount,
        client_amount=body.client_amount,
        note=body.note.strip(),
        state=OfferState.OPEN,
        created_at=now,
    )
    session.add(offer)
    record(
        session,
        dispute,
        "proposal" if made_by_role == "mediator" else "offer",
        actor_role=role,
        actor_id=principal.user_id,
        body=offer.note,
        offer_id=str(offer.id),
        pro_amount=offer.pro_amount,
        client_amount=offer.client_amount,
    )
    others = {"client": [dispute.pro_user_id], "pro": [dispute.client_id]}.get(
        role, [dispute.client_id, dispute.pro_user_id]
    )
    await notify(session, dispute, "offer", to=others)
    await session.flush()
    return offer


async def offers_of(session: ReadSession, dispute_id: uuid.UUID) -> list[DisputeOffer]:
    query = (
        select(DisputeOffer)
        .where(DisputeOffer.dispute_id == dispute_id)
        .order_by(DisputeOffer.created_at, DisputeOffer.id)
    )
    return list((await session.scalars(query)).all())


async def do_accept(
    session: WriteSession, dispute_id: uuid.UUID, offer_id: uuid.UUID, principal: Principal
) -> Dispute:
    """The other party accepts a party's offer, or each party accepts the mediator's; the
    dispute then settles and the escrow is split exactly so, once. A repeat answers the
    settled dispute."""
    dispute = await lock_dispute(session, dispute_id, principal)
    offer = await session.get(DisputeOffer, offer_id, populate_existing=True)
    if offer is None or offer.dispute_id != dispute.id:
        raise OfferNotFoundError()
    if offer.state == OfferState.ACCEPTED and dispute.stage == _D.SETTLED:
        return dispute  # a repeated accept: already settled, nothing moves
    role = _party(dispute, principal)
    _check_open(dispute)
    if offer.state != OfferState.OPEN:
        raise OfferNotOpenError()
    if offer.made_by_role == role:
        raise OwnOfferError()
    now = clock.now()
    if role == "client":
        offer.client_accepted_at = offer.client_accepted_at or now
    else:
        offer.pro_accepted_at = offer.pro_accepted_at or now
    if offer.made_by_role == "mediator" and (
        offer.client_accepted_at is None or offer.pro_accepted_at is None
    ):
        record(
            session,
            dispute,
            "proposal_accepted",
            actor_role=role,
            actor_id=principal.user_id,
            offer_id=str(offer.id),
        )
        await session.flush()
        return dispute  # the other party still has to accept
    offer.state = OfferState.ACCEPTED
    dispute.pro_amount, dispute.client_amount = offer.pro_amount, offer.client_amount
    dispute.outcome = _outcome(offer.pro_amount, offer.client_amount)
    record(
        session,
        dispute,
        "offer_accepted",
        actor_role=role,
        actor_id=principal.user_id,
        offer_id=str(offer.id),
        pro_amount=offer.pro_amount,
        client_amount=offer.client_amount,
    )
    await DISPUTE_LIFECYCLE.apply(
        session,
        dispute,
        "settle",
        actor=Actor(role),
        actor_id=principal.user_id,
        data={"offer_id": str(offer.id)},
    )
    await session.flush()
    return dispute


# ---------------------------------------------------------------- expert review


async def do_request_expert(
    session: WriteSession, dispute_id: uuid.UUID, principal: Principal, body: ExpertRequestIn
) -> Dispute:
    """A party in mediation asks for an independent expert and owes the quoted fee."""
    dispute = await lock_dispute(session, dispute_id, principal)
    role = _party(dispute, principal)
    _check_open(dispute)
    fee = expert_quote(dispute)
    if not DISPUTE_LIFECYCLE.allows(dispute, "request_expert"):
        raise TransitionNotAllowedError(transition="request_expert", state=dispute.stage)
    if body.confirm_fee != fee:
        raise FeeChangedError(fee=_format(fee, dispute.currency))
    await DISPUTE_LIFECYCLE.apply(
        session, dispute, "request_expert", actor=Actor(role), actor_id=principal.user_id
    )
    dispute.expert_requested_by = principal.user_id
    dispute.expert_fee = fee
    dispute.expert_fee_state = ExpertFeeState.AWAITING_PAYMENT if fee else ExpertFeeState.PAID
    record(
        session,
        dispute,
        "expert_requested",
        actor_role=role,
        actor_id=principal.user_id,
        fee=fee,
    )
    await session.flush()
    return dispute


async def do_assign_expert(
    session: WriteSession, dispute_id: uuid.UUID, principal: Principal, expert_id: uuid.UUID
) -> Dispute:
    dispute = await lock_dispute(session, dispute_id, principal)
    _check_staff(dispute, principal)
    _check_open(dispute)
    if dispute.stage != _D.EXPERT_REVIEW:
        raise TransitionNotAllowedError(transition="assign_expert", state=dispute.stage)
    if expert_id in (dispute.client_id, dispute.pro_user_id):
        raise InvalidExpertError(field="expert_id")
    expert = await accounts_repo.lock_user(session, expert_id)
    if expert is None or not expert.is_staff:
        raise InvalidExpertError(field="expert_id")
    if dispute.expert_id != expert_id:
        if dispute.expert_fee_state == ExpertFeeState.PAID and dispute.expert_fee:
            # The fee was paid to the first expert's escrow; it stays with that hold.
            raise ConflictError(lazy("The fee is paid: the expert can no longer change."))
        if dispute.expert_fee_hold_id is not None:
            await payments.cancel(session, dispute.expert_fee_hold_id, actor=Actor.SYSTEM)
            dispute.expert_fee_hold_id = None
        dispute.expert_id = expert_id
        record(
            session,
            dispute,
            "expert_assigned",
            actor_role="staff",
            actor_id=principal.user_id,
            expert_id=str(expert_id),
        )
        await notify(session, dispute, "expert")
    await session.flush()
    return dispute


async def do_pay_expert(
    session: WriteSession,
    dispute_id: uuid.UUID,
    principal: Principal,
    *,
    settings: Settings | None = None,
) -> payments.FundResult:
    """The requester pays the expert's fee into escrow (released to the expert with the
    report); calling again returns the open checkout."""
    dispute = await lock_dispute(session, dispute_id, principal)
    _party(dispute, principal)
    _check_open(dispute)
    if dispute.expert_requested_by != principal.user_id:
        raise PermissionDeniedError(lazy("Only the party who asked for the expert pays the fee."))
    if dispute.stage != _D.EXPERT_REVIEW:
        raise TransitionNotAllowedError(transition="pay_expert", state=dispute.stage)
    if dispute.expert_fee_state == ExpertFeeState.PAID:
        raise ConflictError(lazy("The expert's fee is already paid."))
    if dispute.expert_id is None:
        raise ExpertMissingError()
    assert dispute.expert_fee is not None
    settings = settings or get_settings()
    contact = await accounts.contact_of(session, principal.user_id)
    funding = await payments.fund_hold(
        session,
        reference=f"{EXPERT_REFERENCE}{dispute.id}",
        payer_id=principal.user_id,
        payee_id=dispute.expert_id,
        amount=Money(dispute.expert_fee, dispute.currency),
        description="Expert review of a dispute",
        payer_email=contact.email if contact else None,
        return_url=f"{settings.public_url}/disputes/{dispute.id}",
        settings=settings,
    )
    dispute.expert_fee_hold_id = funding.hold.id
    dispute.updated_at = clock.now()
    await session.flush()
    return funding


@events.subscribe(HoldFunded)
async def _on_hold_funded(session: Any, event: HoldFunded) -> None:
    """The expert's fee was paid (once)."""
    if not event.reference.startswith(EXPERT_REFERENCE):
        return
    try:
        dispute_id = uuid.UUID(event.reference.removeprefix(EXPERT_REFERENCE))
    except ValueError:
        return
    dispute = await session.get(Dispute, dispute_id, with_for_update=True)
    if dispute is None or dispute.expert_fee_state != ExpertFeeState.AWAITING_PAYMENT:
        return
    hold = await payments.get_hold(session, event.hold_id)
    if (hold.payer_id, hold.payee_id, hold.amount) != (
        dispute.expert_requested_by,
        dispute.expert_id,
        dispute.expert_fee,
    ):
        return  # not this dispute's fee (a hand-made hold naming it)
    dispute.expert_fee_hold_id = hold.id
    dispute.expert_fee_state = ExpertFeeState.PAID
    record(session, dispute, "expert_fee_paid", actor_role="system", fee=hold.amount)
    await notify(session, dispute, "expert")


async def do_expert_report(
    session: WriteSession, dispute_id: uuid.UUID, principal: Principal, body: str
) -> Dispute:
    """The assigned expert files the report: their fee is released and staff decide."""
    dispute = await lock_dispute(session, dispute_id, principal)
    _check_open(dispute)
    if dispute.expert_id != principal.user_id:
        raise NotTheExpertError()
    accounts.check_staff(principal)
    if not DISPUTE_LIFECYCLE.allows(dispute, "expert_report"):
        raise TransitionNotAllowedError(transition="expert_report", state=dispute.stage)
    if dispute.expert_fee_state != ExpertFeeState.PAID:
        raise ExpertFeeUnpaidError()
    if dispute.expert_fee_hold_id is not None:
        await payments.release(
            session, dispute.expert_fee_hold_id, actor=Actor.SYSTEM, actor_id=principal.user_id
        )
    dispute.expert_report = body
    record(
        session,
        dispute,
        "expert_report",
        actor_role="expert",
        actor_id=principal.user_id,
        body=body,
    )
    await DISPUTE_LIFECYCLE.apply(
        session, dispute, "expert_report", actor=Actor.OPERATOR, actor_id=principal.user_id
    )
    await session.flush()
    return dispute


# ---------------------------------------------------------------- the decision


async def do_resolve(
    session: WriteSession,
    dispute_id: uuid.UUID,
    principal: Principal,
    body: ResolveIn,
    client: ClientInfo | None = None,
) -> Dispute:
    """Staff (two-factor) decide: release, refund or split. Final and executed once; the
    same decision again answers the resolved dispute, a different one is refused."""
    accounts.check_staff(principal)
    dispute = await lock_dispute(session, dispute_id, principal)
    _check_staff(dispute, principal)
    held = dispute.amount_held
    if body.outcome == "release":
        pro_amount, client_amount = held, 0
    elif body.outcome == "refund":
        pro_amount, client_amount = 0, held
    else:
        if (
            body.pro_amount is None
            or body.client_amount is None
            or body.pro_amount + body.client_amount != held
        ):
            raise SplitMismatchError(field="pro_amount", held=_format(held, dispute.currency))
        pro_amount, client_amount = body.pro_amount, body.client_amount
    outcome = _outcome(pro_amount, client_amount)
    if dispute.stage == _D.RESOLVED:
        if (dispute.outcome, dispute.pro_amount, dispute.client_amount) == (
            outcome,
            pro_amount,
            client_amount,
        ):
            return dispute
        raise DisputeDecidedError()
    _check_open(dispute)
    if not DISPUTE_LIFECYCLE.allows(dispute, "resolve"):
        raise TransitionNotAllowedError(transition="resolve", state=dispute.stage)
    dispute.outcome = outcome
    dispute.pro_amount, dispute.client_amount = pro_amount, client_amount
    dispute.resolved_by = principal.user_id
    dispute.resolution_note = body.note
    record(
        session,
        dispute,
        "decision",
        actor_role="staff",
        actor_id=principal.user_id,
        body=body.note,
        outcome=outcome,
        pro_amount=pro_amount,
        client_amount=client_amount,
    )
    await DISPUTE_LIFECYCLE.apply(
        session,
        dispute,
        "resolve",
        actor=Actor.OPERATOR,
        actor_id=principal.user_id,
        data={"outcome": outcome, "pro_amount": pro_amount, "client_amount": client_amount},
    )
    audit.record(
        session,
        "dispute.resolved",
        actor_id=principal.user_id,
        subject_type="dispute",
        subject_id=dispute.id,
        ip=client.ip if client else None,
        user_agent=client.user_agent if client else None,
        outcome=outcome,
        pro_amount=pro_amount,
        client_amount=client_amount,
    )
    await session.flush()
    return dispute


# ---------------------------------------------------------------- reading


@dataclass
class TimelineItem:
    at: datetime
    source: str
    kind: str
    actor_role: str
    body: str = ""
    attachment_ids: list[uuid.UUID] | None = None
    data: dict[str, Any] | None = None
    id: uuid.UUID | None = None


@dataclass
class DisputeView:
    dispute: Dispute
    milestone: Milestone
    offers: list[DisputeOffer]
    timeline: list[TimelineItem]
    my_role: Role
    actions: list[str]
    names: dict[uuid.UUID, tuple[str, str]]

    @property
    def open_offers(self) -> list[DisputeOffer]:
        return [o for o in self.offers if o.state == OfferState.OPEN]


def _delivery(milestone: Milestone) -> TimelineItem | None:
    """The pro's delivery with its files, as the evidence timeline shows it."""
    if milestone.submitted_at is None or milestone.submission_note is None:
        return None
    return TimelineItem(
        milestone.submitted_at,
        "milestone",
        "delivery",
        "pro",
        milestone.submission_note,
        list(milestone.submission_attachment_ids),
        {"submission": milestone.submissions},
    )


async def load_view(
    session: WriteSession,
    dispute_id: uuid.UUID,
    principal: Principal,
    client: ClientInfo | None = None,
) -> DisputeView:
    """The dispute with its evidence timeline: its own steps merged with the milestone's
    history and delivery. Staff reads are audited (they see both sides' files)."""
    dispute = await access_dispute(session, dispute_id, principal)
    my_role = role_of(dispute, principal)
    milestone = await milestones.access_milestone(session, dispute.milestone_id, principal)
    own = await session.scalars(
        select(DisputeEvent)
        .where(DisputeEvent.dispute_id == dispute.id)
        .order_by(DisputeEvent.at, DisputeEvent.id)
    )
    timeline = [
        TimelineItem(
            e.at, "dispute", e.kind, e.actor_role, e.body, list(e.attachment_ids), e.data, e.id
        )
        for e in own
    ]
    for r in await milestones.history(session, [milestone.id]):
        timeline.append(TimelineItem(r.at, "milestone", r.transition, r.actor, data=dict(r.data)))
    delivery = _delivery(milestone)
    if delivery is not None:
        timeline.append(delivery)
    timeline.sort(key=lambda item: (item.at, item.source == "dispute"))
    offers = await offers_of(session, dispute.id)
    # The people the desk names: the parties and the mediator.
    people = (dispute.client_id, dispute.pro_user_id, dispute.mediator_id)
    names = await accounts.names_of(session, (p for p in people if p is not None))
    if my_role == "staff":
        audit.record(
            session,
            "dispute.viewed",
            actor_id=principal.user_id,
            subject_type="dispute",
            subject_id=dispute.id,
            ip=client.ip if client else None,
            user_agent=client.user_agent if client else None,
        )
    return DisputeView(
        dispute, milestone, offers, timeline, my_role, actions_for(dispute, principal), names
    )


async def check_file(
    session: ReadSession, dispute_id: uuid.UUID, upload_id: uuid.UUID, principal: Principal
) -> None:
    """A file of the evidence timeline (the dispute's steps or the milestone's delivery)
    may be opened by both parties and staff."""
    dispute = await access_dispute(session, dispute_id, principal)
    milestone = await milestones.access_milestone(session, dispute.milestone_id, principal)
    delivery = _delivery(milestone)
    if delivery is not None and upload_id in (delivery.attachment_ids or ()):
        return
    shown = await session.scalar(
        select(DisputeEvent.id)
        .where(
            DisputeEvent.dispute_id == dispute.id,
            literal(upload_id, Uuid) == any_(DisputeEvent.attachment_ids),
        )
        .limit(1)
    )
    if shown is None:
        raise DisputeNotFoundError(lazy("This file is not part of the dispute."))


async def list_mine(
    session: ReadSession, principal: Principal, *, cursor: str | None, limit: int
) -> tuple[list[Dispute], str | None]:
    query = select(Dispute).where(
        or_(Dispute.client_id == principal.user_id, Dispute.pro_user_id == principal.user_id)
    )
    query = keyset(query, [Dispute.opened_at, Dispute.id], cursor=cursor, limit=limit)
    rows = (await session.scalars(query)).all()
    return page_of(rows, ["opened_at", "id"], limit)


async def list_queue(
    session: ReadSession,
    principal: Principal,
    *,
    stage: DisputeStage | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Dispute], str | None]:
    """The desk: open disputes (or those of ``stage``), the oldest first."""
    accounts.check_staff(principal)
    stages = [stage] if stage is not None else list(OPEN_STAGES)
    query = select(Dispute).where(Dispute.stage.in_(stages))
    query = keyset(
        query, [Dispute.opened_at, Dispute.id], cursor=cursor, limit=limit, descending=False
    )
    rows = (await session.scalars(query)).all()
    return page_of(rows, ["opened_at", "id"], limit)


async def staff_expert_id(session: ReadSession, email: str) -> uuid.UUID:
    """The staff member with this e-mail (the desk's expert field)."""
    login = accounts.normalise_login(email, get_settings().market_profile.phone_region)
    user = await accounts_repo.user_by_login(session, login) if login else None
    if user is None or not user.is_staff:
        raise InvalidExpertError(field="expert_email")
    return user.id
