"""Proposals: a verified pro's offer for an open job, the client's answers (shortlist,
decline, counter-offer, accept) and the pro's (revise, accept the counter, withdraw).
Accepting hires the pro and creates the contract in the same transaction.

Services flush; the request owns the transaction. Lock order: the job row (through
``jobs.service.lock_job``), then proposal rows by id.

Other modules call ``access_proposal``, ``list_mine`` and ``do_decline_live``; jobs closes
a job with the ``JobClosed`` event, which declines the live proposals here.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from mesteri.accounts.service import Principal
from mesteri.catalog import service as catalog
from mesteri.config import MARKETS, get_settings
from mesteri.contracts import service as contracts
from mesteri.jobs import service as jobs
from mesteri.jobs.events import JobClosed
from mesteri.jobs.models import Job
from mesteri.kit import clock, events
from mesteri.kit.db import ReadSession, WriteSession
from mesteri.kit.errors import DomainError, NotFoundError
from mesteri.kit.i18n import get_language, lazy
from mesteri.kit.ids import new_id
from mesteri.kit.money import Money
from mesteri.kit.pagination import keyset, page_of
from mesteri.kit.statemachine import Actor, ActorNotAllowedError
from mesteri.milestones.schemas import MilestoneTerms
from mesteri.notifications import service as notifications
from mesteri.payments import fees
from mesteri.payments.fees import Split
from mesteri.proposals.errors import (
    CurrencyMismatchError,
    DueDateInPastError,
    MilestonesSumMismatchError,
    MilestoneTooSmallError,
    NoMilestonesError,
    OwnJobError,
    ProNotVerifiedError,
    ProposalAnsweredError,
    ProposalClosedError,
    ProposalExistsError,
    ProposalNotFoundError,
    TooManyMilestonesError,
)
from mesteri.proposals.events import ProposalEdited, ProposalSent
from mesteri.proposals.lifecycles import PROPOSAL_LIFECYCLE
from mesteri.proposals.models import LIVE_STATES, Proposal, ProposalRevision, ProposalState
from mesteri.proposals.schemas import (
    MAX_MILESTONES,
    DeclineIn,
    ProposalIn,
    ProposalPatch,
    QuestionIn,
    TermsIn,
)
from mesteri.pros import service as pros

_P = ProposalState
# Stored on the declined proposals (the author reads it on the proposal page).
REASON_OTHER_ACCEPTED = lazy("another proposal was accepted")
REASON_JOB_CANCELLED = lazy("the client cancelled the job")
REASON_JOB_EXPIRED = lazy("the job expired without a hire")
SYSTEM_REASONS = (REASON_OTHER_ACCEPTED, REASON_JOB_CANCELLED, REASON_JOB_EXPIRED)
# What the authors of proposals the system declines are told, by reason.
_CLOSED_BODIES = {
    REASON_OTHER_ACCEPTED: lazy(
        "The client hired another pro for this job, so your proposal of {price} was "
        "declined. Thank you for proposing."
    ),
    REASON_JOB_CANCELLED: lazy(
        "The client cancelled the job, so your proposal of {price} was closed."
    ),
    REASON_JOB_EXPIRED: lazy(
        "The job expired without a hire, so your proposal of {price} was closed."
    ),
}


# ---------------------------------------------------------------- checks


def _today(market: str) -> date:
    return clock.now().astimezone(ZoneInfo(MARKETS[market].time_zone)).date()


def _money(amount: int, currency: str) -> str:
    return Money(amount, currency).format(get_language())


def check_terms(
    *, market: str, currency: str, price: int, milestones: Sequence[MilestoneTerms]
) -> None:
    """Milestones (1 to 20) add up exactly to the price, each at least the market's
    minimum amount, none due in the past."""
    if not milestones:
        raise NoMilestonesError(field="milestones")
    if len(milestones) > MAX_MILESTONES:
        raise TooManyMilestonesError(field="milestones", limit=MAX_MILESTONES)
    total = sum(m.amount for m in milestones)
    if total != price:
        raise MilestonesSumMismatchError(
            field="milestones", total=_money(total, currency), price=_money(price, currency)
        )
    minimum = MARKETS[market].min_amount
    if any(m.amount < minimum for m in milestones):
        raise MilestoneTooSmallError(field="milestones", minimum=_money(minimum, currency))
    today = _today(market)
    for m in milestones:
        if m.due_date is not None and m.due_date < today:
            raise DueDateInPastError(field="milestones", title=m.title)


def terms_of(proposal: Proposal) -> list[MilestoneTerms]:
    """The milestones on the table, as terms (what contracts are made from)."""
    return [MilestoneTerms.model_validate(item) for item in proposal.milestones]


def _terms_json(milestones: Sequence[MilestoneTerms]) -> list[dict[str, Any]]:
    return [m.model_dump(mode="json", exclude={"id"}) for m in milestones]


def _questions_json(questions: Sequence[QuestionIn]) -> list[dict[str, Any]]:
    return [q.model_dump() for q in questions]


# ---------------------------------------------------------------- access


def roles_of(proposal: Proposal, principal: Principal) -> set[Actor]:
    roles: set[Actor] = set()
    if principal.user_id == proposal.client_id:
        roles.add(Actor.CLIENT)
    if principal.user_id == proposal.pro_user_id:
        roles.add(Actor.PRO)
    return roles


async def access_proposal(
    session: ReadSession, proposal_id: uuid.UUID, principal: Principal
) -> Proposal:
    """The proposal for the job's client or its pro; anyone else is told it does not exist."""
    proposal = await session.get(Proposal, proposal_id)
    if proposal is None or not roles_of(proposal, principal):
        raise ProposalNotFoundError()
    return proposal


def is_editable(proposal: Proposal) -> bool:
    return proposal.state == _P.SUBMITTED and proposal.answered_at is None


def actions_for(proposal: Proposal, principal: Principal) -> list[str]:
    """What this user may do now, from the lifecycle table (plus ``edit`` for the pro)."""
    roles = roles_of(proposal, principal) - {Actor.SYSTEM}
    actions = PROPOSAL_LIFECYCLE.available(_P(proposal.state), roles, proposal)
    if Actor.PRO in roles and is_editable(proposal):
        actions.append("edit")
    return actions


async def list_revisions(
    session: ReadSession, proposal_id: uuid.UUID
) -> Sequence[ProposalRevision]:
    query = select(ProposalRevision).where(ProposalRevision.proposal_id == proposal_id)
    return (await session.scalars(query.order_by(ProposalRevision.number))).all()


async def list_for_job(
    session: ReadSession, job_id: uuid.UUID, principal: Principal
) -> tuple[Job, list[Proposal]]:
    """The job's client sees every proposal; a pro sees their own; anyone else gets 404."""
    job = await jobs.access_job(session, job_id, principal)
    query = select(Proposal).where(Proposal.job_id == job.id)
    if job.client_id != principal.user_id:
        pro_id = await pros.pro_id_of(session, principal.user_id)
        if pro_id is None:
            raise NotFoundError()
        query = query.where(Proposal.pro_id == pro_id)
    rows = await session.scalars(query.order_by(Proposal.created_at, Proposal.id).limit(500))
    return job, list(rows.all())


async def list_mine(
    session: ReadSession,
    principal: Principal,
    *,
    state: str | None = None,
    cursor: str | None = None,
    limit: int = 20,
) -> tuple[list[Proposal], str | None]:
    """The caller's proposals as a pro, newest first."""
    query = select(Proposal).where(Proposal.pro_user_id == principal.user_id)
    if state:
        query = query.where(Proposal.state == state)
    keys = (Proposal.created_at, Proposal.id)
    rows = (await session.scalars(keyset(query, keys, cursor=cursor, limit=limit))).all()
    return page_of(rows, ["created_at", "id"], limit)


@dataclass(frozen=True)
class ProCard:
    id: uuid.UUID
    display_name: str
    rating: float | None
    reviews_count: int
    verified: bool


async def pro_cards(session: ReadSession, pro_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ProCard]:
    """The public card of each pro (name, rating, reviews, verified)."""
    profiles = await pros.listed_profiles(session, pro_ids)
    cards: dict[uuid.UUID, ProCard] = {}
    for pro_id in dict.fromkeys(pro_ids):
        profile = profiles.get(pro_id)
        if profile is None:  # no longer listed: still shown, without a rating
            cards[pro_id] = ProCard(pro_id, "—", None, 0, False)
            continue
        cards[pro_id] = ProCard(
            id=profile.id,
            display_name=profile.display_name,
            rating=profile.rating_avg,
            reviews_count=profile.reviews_count,
            verified=pros.is_verified(profile),
        )
    return cards


def fee_quote(job: Job, amount: int) -> Split:
    """How a payment of ``amount`` for this job splits (platform fee, pro's net)."""
    slug = (
        catalog.get_category(job.category_id).slug if catalog.is_category(job.category_id) else None
    )
    return fees.quote(get_settings(), amount, category=slug)


# ---------------------------------------------------------------- locking and roles


async def _lock(session: WriteSession, proposal_id: uuid.UUID) -> Proposal:
    proposal = await session.get(
        Proposal, proposal_id, with_for_update=True, populate_existing=True
    )
    if proposal is None:  # deleted meanwhile; never happens with foreign keys, but be safe
        raise ProposalNotFoundError()
    return proposal


def _acting_role(proposal: Proposal, principal: Principal, name: str) -> Actor:
    """The role this user acts in for ``name``; 403 when no transition of that name is theirs."""
    allowed = {a for t in PROPOSAL_LIFECYCLE.transitions if t.name == name for a in t.actors}
    for role in (Actor.CLIENT, Actor.PRO):
        if role in roles_of(proposal, principal) and role in allowed:
            return role
    raise ActorNotAllowedError(transition=name)


def _put_terms(
    session: WriteSession,
    proposal: Proposal,
    *,
    author: Actor,
    author_id: uuid.UUID,
    terms: TermsIn,
) -> ProposalRevision:
    """New terms on the table: a revision, and 14 more days before they expire."""
    now = clock.now()
    proposal.revision += 1
    proposal.price = terms.price
    proposal.duration_days = terms.duration_days
    proposal.message = terms.message
    proposal.milestones = _terms_json(terms.milestones)
    proposal.expires_at = now + timedelta(days=get_settings().proposal_expiry_days)
    proposal.updated_at = now
    revision = _revision(proposal, author, author_id)
    session.add(revision)
    return revision


def _revision(proposal: Proposal, author: Actor, author_id: uuid.UUID) -> ProposalRevision:
    return ProposalRevision(
        id=new_id(),
        proposal_id=proposal.id,
        number=proposal.revision,
        author=str(author),
        author_id=author_id,
        price=proposal.price,
        duration_days=proposal.duration_days,
        message=proposal.message,
        milestones=proposal.milestones,
        created_at=proposal.updated_at,
    )


def _mail_money(proposal: Proposal) -> str:
    language = get_settings().market_profile.default_language
    return Money(proposal.price, proposal.currency).format(language)


# ---------------------------------------------------------------- the pro proposes


async def do_create(
    session: WriteSession, job_id: uuid.UUID, principal: Principal, body: ProposalIn
) -> Proposal:
    """A verified pro's proposal for an open job they can see (``POST /jobs/{id}/proposals``)."""
    job = await jobs.access_job(session, job_id, principal)
    try:
        profile = await pros.access_own_profile(session, principal.user_id)
    except DomainError as error:
        raise ProNotVerifiedError() from error
    if not pros.is_verified(profile):
        raise ProNotVerifiedError()
    if job.client_id == principal.user_id:
        raise OwnJobError()
    # Under the job's lock: a proposal cannot slip in while another is being accepted.
    job = await jobs.lock_job(session, job.id)
    jobs.check_open(job)
    existing = await session.scalar(
        select(Proposal.id).where(
            Proposal.job_id == job.id,
            Proposal.pro_id == profile.id,
            Proposal.state.in_(LIVE_STATES),
        )
    )
    if existing is not None:
        raise ProposalExistsError()
    if body.currency.upper() != job.currency:
        raise CurrencyMismatchError(field="currency", currency=job.currency)
    check_terms(
        market=job.market, currency=job.currency, price=body.price, milestones=body.milestones
    )
    now = clock.now()
    proposal = Proposal(
        id=new_id(),
        job_id=job.id,
        pro_id=profile.id,
        pro_user_id=principal.user_id,
        client_id=job.client_id,
        state=_P.SUBMITTED,
        price=body.price,
        currency=job.currency,
        duration_days=body.duration_days,
        message=body.message,
        questions=_questions_json(body.questions),
        milestones=_terms_json(body.milestones),
        revision=1,
        expires_at=now + timedelta(days=get_settings().proposal_expiry_days),
        created_at=now,
        updated_at=now,
    )
    try:
        async with session.begin_nested():
            session.add(proposal)
            await session.flush()
    except IntegrityError as error:  # the partial unique index: one live proposal per job
        if "uq_proposals_live" in str(error.orig):
            raise ProposalExistsError() from error
        raise
    session.add(_revision(proposal, Actor.PRO, principal.user_id))
    await PROPOSAL_LIFECYCLE.start(session, proposal)
    await jobs.do_count_proposal(session, job.id, 1)
    lead_at = await jobs.lead_seen_at(session, job, profile.id)
    await events.publish(session, ProposalSent(proposal.id, profile.id, lead_at, now))
    await notifications.do_notify(
        session,
        job.client_id,
        kind="proposal.received",
        subject=lazy("New proposal for “{title}”"),
        body=lazy(
            "{pro} sent you a proposal of {price} for “{title}”. Compare the proposals and answer."
        ),
        title=job.title,
        pro=profile.display_name,
        price=_mail_money(proposal),
        link=f"/jobs/{job.id}/proposals",
    )
    await session.flush()
    return proposal


async def do_edit(
    session: WriteSession, proposal_id: uuid.UUID, principal: Principal, patch: ProposalPatch
) -> Proposal:
    """The pro changes their terms until the client first answers (new revision, new expiry)."""
    found = await access_proposal(session, proposal_id, principal)
    if Actor.PRO not in roles_of(found, principal):
        raise ActorNotAllowedError(transition="edit")
    job = await jobs.lock_job(session, found.job_id)
    proposal = await _lock(session, found.id)
    if proposal.answered_at is not None or proposal.state in (_P.SHORTLISTED, _P.COUNTERED):
        raise ProposalAnsweredError()
    if proposal.state != _P.SUBMITTED:
        raise ProposalClosedError()
    jobs.check_open(job)
    terms = TermsIn(
        price=patch.price if patch.price is not None else proposal.price,
        milestones=patch.milestones if patch.milestones is not None else terms_of(proposal),
        duration_days=(
            patch.duration_days
            if "duration_days" in patch.model_fields_set
            else proposal.duration_days
        ),
        message=patch.message if patch.message is not None else proposal.message,
    )
    check_terms(
        market=job.market,
        currency=proposal.currency,
        price=terms.price,
        milestones=terms.milestones,
    )
    if patch.questions is not None:
        proposal.questions = _questions_json(patch.questions)
    _put_terms(session, proposal, author=Actor.PRO, author_id=principal.user_id, terms=terms)
    # The expiry timer for the new deadline (the old one finds the guard false and stops).
    await PROPOSAL_LIFECYCLE.start(session, proposal)
    await session.flush()
    await events.publish(session, ProposalEdited(proposal.id))
    return proposal


# ---------------------------------------------------------------- answers


async def _apply(
    session: WriteSession,
    proposal_id: uuid.UUID,
    principal: Principal,
    name: str,
    *,
    data: dict[str, Any] | None = None,
) -> Proposal:
    found = await access_proposal(session, proposal_id, principal)
    actor = _acting_role(found, principal, name)
    proposal = await _lock(session, found.id)
    await PROPOSAL_LIFECYCLE.apply(
        session, proposal, name, actor=actor, actor_id=principal.user_id, data=data
    )
    now = clock.now()
    proposal.updated_at = now
    if actor == Actor.CLIENT and proposal.answered_at is None:
        proposal.answered_at = now
    return proposal


async def do_withdraw(
    session: WriteSession, proposal_id: uuid.UUID, principal: Principal
) -> Proposal:
    proposal = await _apply(session, proposal_id, principal, "withdraw")
    await session.flush()
    return proposal


async def do_shortlist(
    session: WriteSession, proposal_id: uuid.UUID, principal: Principal
) -> Proposal:
    proposal = await _apply(session, proposal_id, principal, "shortlist")
    await session.flush()
    return proposal


async def do_decline(
    session: WriteSession, proposal_id: uuid.UUID, principal: Principal, body: DeclineIn
) -> Proposal:
    """The client says no (optionally why); the pro is told by e-mail."""
    reason = (body.reason or "").strip() or None
    proposal = await _apply(
        session, proposal_id, principal, "decline", data={"reason": reason} if reason else None
    )
    proposal.decline_reason = reason
    await _tell_declined(session, proposal, reason)
    await session.flush()
    return proposal


async def _tell_declined(session: WriteSession, proposal: Proposal, reason: str | None) -> None:
    await notifications.do_notify(
        session,
        proposal.pro_user_id,
        kind="proposal.declined",
        subject=lazy("Your proposal was declined"),
        body=lazy("Your proposal of {price} was declined. {reason}"),
        price=_mail_money(proposal),
        reason=reason or "",
        link=f"/proposals/{proposal.id}",
    )


async def _change_terms(
    session: WriteSession,
    proposal_id: uuid.UUID,
    principal: Principal,
    name: str,
    terms: TermsIn,
) -> Proposal:
    """A counter-offer (client) or a revision answering one (pro), under the job's lock."""
    found = await access_proposal(session, proposal_id, principal)
    actor = _acting_role(found, principal, name)
    job = await jobs.lock_job(session, found.job_id)
    proposal = await _lock(session, found.id)
    if not PROPOSAL_LIFECYCLE.allows(proposal, name):
        # The runner explains the refusal (state) before anything is checked.
        await PROPOSAL_LIFECYCLE.apply(session, proposal, name, actor=actor)
    jobs.check_open(job)
    check_terms(
        market=job.market,
        currency=proposal.currency,
        price=terms.price,
        milestones=terms.milestones,
    )
    # The new deadline first: entering the state schedules its expiry timer from it.
    revision = _put_terms(session, proposal, author=actor, author_id=principal.user_id, terms=terms)
    await PROPOSAL_LIFECYCLE.apply(
        session,
        proposal,
        name,
        actor=actor,
        actor_id=principal.user_id,
        data={"revision": revision.number, "price": terms.price},
    )
    if actor == Actor.CLIENT and proposal.answered_at is None:
        proposal.answered_at = proposal.updated_at
    return proposal


async def do_counter(
    session: WriteSession, proposal_id: uuid.UUID, principal: Principal, terms: TermsIn
) -> Proposal:
    """The client offers other terms; the pro accepts them or answers with new ones."""
    proposal = await _change_terms(session, proposal_id, principal, "counter", terms)
    await notifications.do_notify(
        session,
        proposal.pro_user_id,
        kind="proposal.countered",
        subject=lazy("The client made a counter-offer"),
        body=lazy(
            "The client answered your proposal with a counter-offer of {price}. "
            "Accept it or answer with new terms."
        ),
        price=_mail_money(proposal),
        link=f"/proposals/{proposal.id}",
    )
    await session.flush()
    return proposal


async def do_revise(
    session: WriteSession, proposal_id: uuid.UUID, principal: Principal, terms: TermsIn
) -> Proposal:
    """The pro answers a counter-offer with new terms; the client is asked again."""
    proposal = await _change_terms(session, proposal_id, principal, "revise", terms)
    await notifications.do_notify(
        session,
        proposal.client_id,
        kind="proposal.revised",
        subject=lazy("The pro answered your counter-offer"),
        body=lazy("The pro answered your counter-offer with new terms: {price}."),
        price=_mail_money(proposal),
        link=f"/proposals/{proposal.id}",
    )
    await session.flush()
    return proposal


# ---------------------------------------------------------------- acceptance


@dataclass(frozen=True)
class AcceptResult:
    contract_id: uuid.UUID
    proposal: Proposal


async def do_accept(
    session: WriteSession,
    proposal_id: uuid.UUID,
    principal: Principal,
    *,
    counter: bool = False,
) -> AcceptResult:
    """The client accepts a proposal (or the pro the client's counter): the job hires the
    pro, the contract is created from the terms and every other live proposal is declined.
    Accepting again answers with the same contract."""
    name = "accept_counter" if counter else "accept"
    found = await access_proposal(session, proposal_id, principal)
    actor = _acting_role(found, principal, name)
    job = await jobs.lock_job(session, found.job_id)
    proposal = await _lock(session, found.id)
    if proposal.state == _P.ACCEPTED and proposal.contract_id is not None:
        return AcceptResult(proposal.contract_id, proposal)
    if PROPOSAL_LIFECYCLE.allows(proposal, name):
        jobs.check_open(job)
    await PROPOSAL_LIFECYCLE.apply(session, proposal, name, actor=actor, actor_id=principal.user_id)
    now = clock.now()
    proposal.updated_at = now
    if proposal.answered_at is None:
        proposal.answered_at = now
    await jobs.do_hire(session, job, proposal.pro_id)
    contract = await contracts.do_create_from_proposal(session, job=job, proposal=proposal)
    proposal.contract_id = contract.id
    await do_decline_live(session, job.id, reason=REASON_OTHER_ACCEPTED, keep=proposal.id)
    # Both parties are e-mailed by contracts: the contract is ready to sign.
    await session.flush()
    return AcceptResult(contract.id, proposal)


async def do_decline_live(
    session: WriteSession,
    job_id: uuid.UUID,
    *,
    reason: str,
    keep: uuid.UUID | None = None,
) -> list[Proposal]:
    """The system declines every live proposal of a job (but ``keep``) and tells the authors."""
    query = (
        select(Proposal)
        .where(Proposal.job_id == job_id, Proposal.state.in_(LIVE_STATES))
        .order_by(Proposal.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if keep is not None:
        query = query.where(Proposal.id != keep)
    declined = list((await session.scalars(query)).all())
    now = clock.now()
    for proposal in declined:
        await PROPOSAL_LIFECYCLE.apply(
            session, proposal, "decline", actor=Actor.SYSTEM, data={"reason": reason}
        )
        proposal.decline_reason = reason
        proposal.updated_at = now
        await notifications.do_notify(
            session,
            proposal.pro_user_id,
            kind="proposal.declined",
            subject=lazy("Your proposal was declined"),
            body=_CLOSED_BODIES.get(reason, _CLOSED_BODIES[REASON_JOB_CANCELLED]),
            price=_mail_money(proposal),
            link=f"/proposals/{proposal.id}",
        )
    await session.flush()
    return declined


@events.subscribe(JobClosed)
async def _on_job_closed(session: Any, event: JobClosed) -> None:
    """The client cancelled the job or it expired: its live proposals are declined."""
    reason = REASON_JOB_EXPIRED if event.reason == "expired" else REASON_JOB_CANCELLED
    await do_decline_live(session, event.job_id, reason=reason)


async def has_proposed(session: ReadSession, job_id: uuid.UUID, pro_id: uuid.UUID) -> bool:
    """Whether this pro (profile id) ever sent a proposal on the job."""
    found = await session.scalar(
        select(Proposal.id).where(Proposal.job_id == job_id, Proposal.pro_id == pro_id).limit(1)
    )
    return found is not None


async def get_proposal(session: ReadSession, proposal_id: uuid.UUID) -> Proposal | None:
    """A proposal without a permission check, for modules reacting to its events."""
    return await session.get(Proposal, proposal_id)


async def count_live(session: ReadSession, job_id: uuid.UUID) -> int:
    query = select(func.count()).where(Proposal.job_id == job_id, Proposal.state.in_(LIVE_STATES))
    return int(await session.scalar(query) or 0)
