"""Milestones: created from a contract's terms, moved along the declared lifecycle, funded
and paid through the payments service.

Other modules call ``do_create_for_contract``, ``do_activate``, ``check_amendment`` /
``do_amend`` and ``list_for_contract``; the API and pages call ``access_milestone`` and
``do_transition``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from mesteri.accounts import service as accounts
from mesteri.accounts.service import Principal
from mesteri.config import Settings, get_settings
from mesteri.kit import clock, events, jobs
from mesteri.kit.db import ReadSession, WriteSession
from mesteri.kit.i18n import lazy
from mesteri.kit.ids import new_id
from mesteri.kit.money import Money
from mesteri.kit.statemachine import Actor, StateTransitionRecord
from mesteri.media import service as media
from mesteri.milestones.errors import (
    AttachmentNotUsableError,
    InvalidDodItemError,
    MilestoneLockedError,
    MilestoneNotFoundError,
    UnknownMilestoneError,
    UnknownTransitionError,
    UseDisputeDeskError,
)
from mesteri.milestones.lifecycles import MILESTONE_LIFECYCLE, auto_accept_at
from mesteri.milestones.models import Milestone, MilestoneState
from mesteri.milestones.schemas import MilestoneTerms, SubmitIn
from mesteri.notifications import service as notifications
from mesteri.payments import service as payments
from mesteri.payments.events import HoldFunded

_M = MilestoneState
REFERENCE_PREFIX = "milestone:"
# Not yet funded: an amendment may change, add or drop these.
UNFUNDED = frozenset({_M.DRAFT, _M.AWAITING_FUNDING})
SETTLED = frozenset({_M.RELEASED, _M.REFUNDED, _M.CANCELLED, _M.SPLIT})
PAID = frozenset({_M.RELEASED, _M.SPLIT})  # the pro received money for it
TRANSITION_NAMES = frozenset(t.name for t in MILESTONE_LIFECYCLE.transitions)
# Opened and ended through the dispute desk (disputes.service), which keeps the record.
DESK_TRANSITIONS = frozenset({"dispute", "resolve_release", "resolve_refund", "resolve_split"})


# ---------------------------------------------------------------- created by contracts


@dataclass(frozen=True)
class Parties:
    contract_id: uuid.UUID
    job_id: uuid.UUID
    client_id: uuid.UUID
    pro_user_id: uuid.UUID
    currency: str


def _new(parties: Parties, position: int, terms: MilestoneTerms, state: _M) -> Milestone:
    now = clock.now()
    return Milestone(
        id=new_id(),
        contract_id=parties.contract_id,
        job_id=parties.job_id,
        client_id=parties.client_id,
        pro_user_id=parties.pro_user_id,
        position=position,
        title=terms.title,
        amount=terms.amount,
        currency=parties.currency,
        due_date=terms.due_date,
        dod=[{"text": item, "done": False} for item in terms.dod],
        state=state,
        submission_attachment_ids=[],
        created_at=now,
        updated_at=now,
    )


async def do_create_for_contract(
    session: WriteSession, parties: Parties, items: Sequence[MilestoneTerms]
) -> list[Milestone]:
    """The contract's milestones, in draft until both parties have signed."""
    created = [_new(parties, i, terms, _M.DRAFT) for i, terms in enumerate(items, start=1)]
    session.add_all(created)
    await session.flush()
    return created


async def list_for_contract(session: ReadSession, contract_id: uuid.UUID) -> Sequence[Milestone]:
    query = select(Milestone).where(Milestone.contract_id == contract_id)
    return (await session.scalars(query.order_by(Milestone.position))).all()


async def _lock_for_contract(session: WriteSession, contract_id: uuid.UUID) -> list[Milestone]:
    query = (
        select(Milestone)
        .where(Milestone.contract_id == contract_id)
        .order_by(Milestone.id)
        .with_for_update()
    )
    rows = list((await session.scalars(query)).all())
    return sorted(rows, key=lambda m: m.position)


async def do_activate(session: WriteSession, contract_id: uuid.UUID) -> None:
    """Both parties signed: every draft milestone can now be funded."""
    for milestone in await _lock_for_contract(session, contract_id):
        if milestone.state == _M.DRAFT:
            await MILESTONE_LIFECYCLE.apply(session, milestone, "activate", actor=Actor.SYSTEM)


async def check_amendment(
    session: ReadSession, contract_id: uuid.UUID, items: Sequence[MilestoneTerms]
) -> None:
    """An amendment lists every milestone: the funded (or later) ones exactly as they are,
    the unfunded ones changed, new ones without an id; unfunded ones left out are dropped."""
    current = {m.id: m for m in await list_for_contract(session, contract_id)}
    listed = {item.id for item in items if item.id is not None}
    for item in items:
        if item.id is not None and item.id not in current:
            raise UnknownMilestoneError(field="milestones")
    for milestone in current.values():
        if milestone.state in UNFUNDED or milestone.state == _M.CANCELLED:
            continue
        kept = next((item for item in items if item.id == milestone.id), None)
        if milestone.id not in listed or kept is None or not _same_terms(milestone, kept):
            raise MilestoneLockedError(field="milestones", title=milestone.title)


def _same_terms(milestone: Milestone, terms: MilestoneTerms) -> bool:
    return (
        milestone.title == terms.title
        and milestone.amount == terms.amount
        and milestone.due_date == terms.due_date
        and [item["text"] for item in milestone.dod] == terms.dod
    )


async def do_amend(
    session: WriteSession, parties: Parties, items: Sequence[MilestoneTerms]
) -> list[Milestone]:
    """Apply a signed amendment (already checked by ``check_amendment``)."""
    current = {m.id: m for m in await _lock_for_contract(session, parties.contract_id)}
    listed = {item.id for item in items if item.id is not None}
    for milestone in current.values():
        if milestone.state in UNFUNDED and milestone.id not in listed:
            await MILESTONE_LIFECYCLE.apply(
                session, milestone, "cancel", actor=Actor.SYSTEM, data={"amendment": True}
            )
    result = []
    for position, item in enumerate(items, start=1):
        found = current.get(item.id) if item.id is not None else None
        if found is None:
            milestone = _new(parties, position, item, _M.AWAITING_FUNDING)
            session.add(milestone)
        else:
            milestone = found
        if found is not None and milestone.state in UNFUNDED:
            if milestone.amount != item.amount and milestone.hold_id is not None:
                # An open checkout was for the old amount.
                await payments.cancel(session, milestone.hold_id, actor=Actor.SYSTEM)
                milestone.hold_id = None
            milestone.title, milestone.amount = item.title, item.amount
            milestone.due_date = item.due_date
            milestone.dod = [{"text": text, "done": False} for text in item.dod]
        milestone.position = position
        milestone.updated_at = clock.now()
        result.append(milestone)
    await session.flush()
    return result


# ---------------------------------------------------------------- access and actions


def roles_of(milestone: Milestone, principal: Principal) -> set[Actor]:
    roles: set[Actor] = set()
    if principal.user_id == milestone.client_id:
        roles.add(Actor.CLIENT)
    if principal.user_id == milestone.pro_user_id:
        roles.add(Actor.PRO)
    if principal.is_staff and principal.mfa:
        roles.add(Actor.OPERATOR)
    return roles


async def access_milestone(
    session: ReadSession, milestone_id: uuid.UUID, principal: Principal
) -> Milestone:
    """The milestone for one of its parties or staff; anyone else is told it does not exist."""
    milestone = await session.get(Milestone, milestone_id)
    if milestone is None or not roles_of(milestone, principal):
        raise MilestoneNotFoundError()
    return milestone


async def get_milestone(session: ReadSession, milestone_id: uuid.UUID) -> Milestone | None:
    """A milestone without a permission check, for modules reacting to its events."""
    return await session.get(Milestone, milestone_id)


async def lock_milestone(session: WriteSession, milestone_id: uuid.UUID) -> Milestone:
    milestone = await session.get(
        Milestone, milestone_id, with_for_update=True, populate_existing=True
    )
    if milestone is None:
        raise MilestoneNotFoundError()
    return milestone


def actions_for(milestone: Milestone, principal: Principal) -> list[str]:
    """What this user may do now, straight from the lifecycle table (buttons, ``actions``)."""
    roles = roles_of(milestone, principal) - {Actor.SYSTEM}
    names = MILESTONE_LIFECYCLE.available(_M(milestone.state), roles, milestone)
    # Disputes are decided on the desk, with a record, not by a milestone button.
    return [n for n in names if n == "dispute" or n not in DESK_TRANSITIONS]


def review_deadline(milestone: Milestone) -> Any:
    return auto_accept_at(milestone) if milestone.state == _M.SUBMITTED else None


async def history(session: ReadSession, milestone_ids: Sequence[uuid.UUID]) -> list[Any]:
    query = (
        select(StateTransitionRecord)
        .where(
            StateTransitionRecord.entity == MILESTONE_LIFECYCLE.entity,
            StateTransitionRecord.entity_id.in_(milestone_ids),
        )
        .order_by(StateTransitionRecord.id)
    )
    return list((await session.scalars(query)).all())


def _acting_role(milestone: Milestone, principal: Principal, name: str) -> Actor:
    """The role this user acts in for ``name`` (a party before staff)."""
    roles = roles_of(milestone, principal)
    transition = MILESTONE_LIFECYCLE.find(name, _M(milestone.state))
    allowed = transition.actors if transition else frozenset()
    for role in (Actor.CLIENT, Actor.PRO, Actor.OPERATOR):
        if role in roles and role in allowed:
            return role
    return next(iter(sorted(roles)), Actor.USER)


@dataclass(frozen=True)
class TransitionResult:
    milestone: Milestone
    funding: payments.FundResult | None = None


async def do_transition(
    session: WriteSession,
    milestone_id: uuid.UUID,
    name: str,
    principal: Principal,
    *,
    data: dict[str, Any] | None = None,
    return_url: str | None = None,
    settings: Settings | None = None,
) -> TransitionResult:
    """Apply ``name`` for this user, with its side effects, under the milestone's row lock."""
    if name not in TRANSITION_NAMES:
        raise UnknownTransitionError(name=name)
    if name in DESK_TRANSITIONS:
        raise UseDisputeDeskError()
    await access_milestone(session, milestone_id, principal)
    milestone = await lock_milestone(session, milestone_id)
    actor = _acting_role(milestone, principal, name)
    data = data or {}
    if name == "accept" and actor == Actor.CLIENT and milestone.state in (_M.ACCEPTED, _M.RELEASED):
        return TransitionResult(milestone)  # a repeated accept: already paid, nothing moves
    if name == "fund":
        return await _fund(session, milestone, principal, actor, return_url, settings)
    record: dict[str, Any] = {}
    if name == "submit":
        record = await _prepare_submit(session, milestone, SubmitIn.model_validate(data))
    elif name in ("request_changes", "cancel") and data.get("reason"):
        record = {"reason": str(data["reason"])[:2000]}
        if name == "request_changes":
            milestone.change_request = record["reason"]
    await MILESTONE_LIFECYCLE.apply(
        session, milestone, name, actor=actor, actor_id=principal.user_id, data=record
    )
    milestone.updated_at = clock.now()
    if name == "submit":
        await _schedule_reminders(session, milestone)
    await session.flush()
    return TransitionResult(milestone)


async def _fund(
    session: WriteSession,
    milestone: Milestone,
    principal: Principal,
    actor: Actor,
    return_url: str | None,
    settings: Settings | None,
) -> TransitionResult:
    await MILESTONE_LIFECYCLE.apply(
        session, milestone, "fund", actor=actor, actor_id=principal.user_id
    )
    settings = settings or get_settings()
    # Back from the checkout, the payer lands on the contract at this milestone.
    return_url = return_url or (
        f"{settings.public_url}/contracts/{milestone.contract_id}"
        f"?funding={milestone.id}#milestone-{milestone.id}"
    )
    contact = await accounts.contact_of(session, milestone.client_id)
    funding = await payments.fund_hold(
        session,
        reference=f"{REFERENCE_PREFIX}{milestone.id}",
        payer_id=milestone.client_id,
        payee_id=milestone.pro_user_id,
        amount=Money(milestone.amount, milestone.currency),
        description=milestone.title,
        payer_email=contact.email if contact else None,
        return_url=return_url,
        settings=settings,
    )
    milestone.hold_id = funding.hold.id
    milestone.updated_at = clock.now()
    await session.flush()
    return TransitionResult(milestone, funding)


async def _prepare_submit(
    session: WriteSession, milestone: Milestone, body: SubmitIn
) -> dict[str, Any]:
    if not MILESTONE_LIFECYCLE.allows(milestone, "submit"):
        return {}  # the runner reports the refusal
    for index in body.dod_done:
        if not 0 <= index < len(milestone.dod):
            raise InvalidDodItemError(field="dod_done", index=index + 1)
    if body.attachment_ids:
        try:
            await media.do_attach(
                session,
                body.attachment_ids,
                milestone.pro_user_id,
                purposes=frozenset({"attachment", "portfolio"}),
            )
        except Exception as error:
            raise AttachmentNotUsableError(field="attachment_ids") from error
    done = set(body.dod_done)
    milestone.dod = [
        {"text": item["text"], "done": i in done} for i, item in enumerate(milestone.dod)
    ]
    milestone.submission_note = body.note
    milestone.submission_attachment_ids = list(body.attachment_ids)
    milestone.change_request = None
    milestone.submitted_at = clock.now()
    milestone.submissions += 1
    return {"submission": milestone.submissions, "dod_done": sorted(done)}


# ---------------------------------------------------------------- the dispute desk


async def do_dispute(
    session: WriteSession, milestone_id: uuid.UUID, principal: Principal, reason: str
) -> Milestone:
    """A party disputes the milestone: its hold is frozen and its timers stop applying
    (they fire, find the milestone disputed and do nothing)."""
    await access_milestone(session, milestone_id, principal)
    milestone = await lock_milestone(session, milestone_id)
    actor = _acting_role(milestone, principal, "dispute")
    await MILESTONE_LIFECYCLE.apply(
        session,
        milestone,
        "dispute",
        actor=actor,
        actor_id=principal.user_id,
        data={"reason": reason[:2000]},
    )
    milestone.updated_at = clock.now()
    return milestone


async def do_resolve(
    session: WriteSession,
    milestone_id: uuid.UUID,
    *,
    pro_amount: int,
    client_amount: int,
    actor: Actor,
    actor_id: uuid.UUID | None,
) -> Milestone:
    """End a dispute by moving the frozen money exactly so: all to the pro, all back to
    the client, or split. The caller (disputes) has checked the parts sum to the hold."""
    milestone = await lock_milestone(session, milestone_id)
    if client_amount == 0:
        name = "resolve_release"
    elif pro_amount == 0:
        name = "resolve_refund"
    else:
        name = "resolve_split"
    milestone.resolution = {"pro_amount": pro_amount, "client_amount": client_amount}
    await MILESTONE_LIFECYCLE.apply(
        session, milestone, name, actor=actor, actor_id=actor_id, data=milestone.resolution
    )
    return milestone


# ---------------------------------------------------------------- reminders and funding


async def _schedule_reminders(session: WriteSession, milestone: Milestone) -> None:
    from mesteri.milestones.tasks import remind_review

    assert milestone.submitted_at is not None
    for day in get_settings().auto_accept_reminder_days:
        await jobs.defer(
            session,
            remind_review,
            run_at=milestone.submitted_at + timedelta(days=day),
            milestone_id=str(milestone.id),
            submission=milestone.submissions,
        )


async def do_remind_review(session: WriteSession, milestone_id: uuid.UUID, submission: int) -> bool:
    """Remind the client that a delivery waits for them, unless they answered meanwhile."""
    milestone = await session.get(Milestone, milestone_id)
    if milestone is None or milestone.state != _M.SUBMITTED or milestone.submissions != submission:
        return False
    deadline = auto_accept_at(milestone)
    link = f"/contracts/{milestone.contract_id}#milestone-{milestone.id}"
    sent = await notifications.do_notify(
        session,
        milestone.client_id,
        kind="milestone.review_reminder",
        subject=lazy("A delivery is waiting for your review"),
        body=lazy(
            "“{title}” was delivered. Please accept it or ask for changes. If you do "
            "nothing, it is accepted automatically on {date} and the pro is paid."
        ),
        title=milestone.title,
        date=deadline.date().isoformat(),
        link=link,
        dedupe_key=f"milestone.review_reminder:{milestone.id}:{submission}:{clock.now().date()}",
    )
    return sent is not None


@events.subscribe(HoldFunded)
async def _on_hold_funded(session: Any, event: HoldFunded) -> None:
    """The provider confirmed the payment: the milestone is funded (once)."""
    if not event.reference.startswith(REFERENCE_PREFIX):
        return
    try:
        milestone_id = uuid.UUID(event.reference.removeprefix(REFERENCE_PREFIX))
    except ValueError:
        return  # a staff hold that only looks like ours
    milestone = await session.get(Milestone, milestone_id, with_for_update=True)
    if milestone is None or milestone.state != _M.AWAITING_FUNDING:
        return
    hold = await payments.get_hold(session, event.hold_id)
    if (hold.payer_id, hold.payee_id, hold.amount) != (
        milestone.client_id,
        milestone.pro_user_id,
        milestone.amount,
    ):
        return  # not this milestone's escrow (a hand-made hold naming it)
    milestone.hold_id = event.hold_id
    milestone.funded_at = clock.now()
    milestone.updated_at = milestone.funded_at
    await MILESTONE_LIFECYCLE.apply(
        session,
        milestone,
        "confirm_funding",
        actor=Actor.SYSTEM,
        data={"payment_id": str(event.payment_id)},
    )
