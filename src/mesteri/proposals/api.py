"""Proposals API: a pro proposes, the client compares and answers, acceptance creates the
contract. Thin: parse, call one service function, shape the answer."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from fastapi import APIRouter, Query, Request, status

from mesteri.accounts.deps import CurrentPrincipal
from mesteri.accounts.service import Principal
from mesteri.config import get_settings
from mesteri.jobs.models import Job
from mesteri.kit.db import DbRead, DbWrite, ReadSession
from mesteri.kit.idempotency import IdempotencyKey, idempotent
from mesteri.kit.pagination import Page
from mesteri.messaging.masking import mask_contacts
from mesteri.payments.schemas import FeeQuoteOut
from mesteri.proposals import service
from mesteri.proposals.models import Proposal, ProposalRevision, ProposalState
from mesteri.proposals.schemas import (
    AcceptOut,
    DeclineIn,
    MilestoneTermsOut,
    ProCardOut,
    ProposalDetailOut,
    ProposalIn,
    ProposalListItem,
    ProposalOut,
    ProposalPatch,
    QuestionOut,
    RevisionOut,
    TermsIn,
)

router = APIRouter(tags=["proposals"])

STATE_PATTERN = "^(" + "|".join(s.value for s in ProposalState) + ")$"


# ---------------------------------------------------------------- shaping


def shown_message(proposal: Proposal, text: str) -> str:
    """A proposal's words as the parties see them: contact details hidden until the
    client accepts it (the same rule as the conversation, ``messaging.masking``)."""
    if proposal.state == ProposalState.ACCEPTED:
        return text
    return mask_contacts(text).text


def proposal_fields(proposal: Proposal) -> dict[str, object]:
    return {
        "id": proposal.id,
        "job_id": proposal.job_id,
        "pro_id": proposal.pro_id,
        "state": proposal.state,
        "price": proposal.price,
        "currency": proposal.currency,
        "duration_days": proposal.duration_days,
        "message": shown_message(proposal, proposal.message),
        "questions": [QuestionOut(**q) for q in proposal.questions],
        "milestones": [MilestoneTermsOut(**m) for m in proposal.milestones],
        "revision": proposal.revision,
        "decline_reason": proposal.decline_reason,
        "contract_id": proposal.contract_id,
        "expires_at": proposal.expires_at,
        "answered_at": proposal.answered_at,
        "created_at": proposal.created_at,
        "updated_at": proposal.updated_at,
    }


def proposal_out(proposal: Proposal) -> ProposalOut:
    return ProposalOut.model_validate(proposal_fields(proposal))


def fees_out(job: Job, amount: int) -> FeeQuoteOut:
    split = service.fee_quote(job, amount)
    return FeeQuoteOut(
        amount=split.amount,
        platform_fee=split.platform_fee,
        referral_fee=split.referral_fee,
        pro_net=split.pro_net,
        vat_on_fee=split.vat_on_fee,
        currency=split.currency,
        fee_rate_bps=split.fee_bps,
        vat_rate_bps=get_settings().market_profile.vat_basis_points,
    )


def card_out(card: service.ProCard) -> ProCardOut:
    return ProCardOut(
        id=card.id,
        display_name=card.display_name,
        rating=card.rating,
        reviews_count=card.reviews_count,
        verified=card.verified,
    )


def revision_out(proposal: Proposal, revision: ProposalRevision) -> RevisionOut:
    return RevisionOut(
        number=revision.number,
        author=revision.author,
        price=revision.price,
        duration_days=revision.duration_days,
        message=shown_message(proposal, revision.message),
        milestones=[MilestoneTermsOut(**m) for m in revision.milestones],
        created_at=revision.created_at,
    )


async def list_items(
    session: ReadSession, job: Job, proposals: Sequence[Proposal]
) -> list[ProposalListItem]:
    cards = await service.pro_cards(session, [p.pro_id for p in proposals])
    return [
        ProposalListItem(
            **proposal_fields(p), pro=card_out(cards[p.pro_id]), fees=fees_out(job, p.price)
        )
        for p in proposals
    ]


async def detail_out(
    session: ReadSession, proposal: Proposal, principal: Principal
) -> ProposalDetailOut:
    cards = await service.pro_cards(session, [proposal.pro_id])
    return ProposalDetailOut(
        **proposal_fields(proposal),
        pro=card_out(cards[proposal.pro_id]),
        actions=service.actions_for(proposal, principal),
        revisions=[
            revision_out(proposal, r) for r in await service.list_revisions(session, proposal.id)
        ],
    )


# ---------------------------------------------------------------- proposing


@router.post(
    "/jobs/{job_id}/proposals",
    status_code=status.HTTP_201_CREATED,
    response_model=ProposalOut,
    responses={403: {"description": "pro_not_verified, own_job"}, 409: {}, 422: {}},
)
async def create_proposal(
    job_id: uuid.UUID,
    body: ProposalIn,
    request: Request,
    session: DbWrite,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> object:
    """A verified pro proposes: the milestones must add up exactly to the price
    (``milestones_sum_mismatch``); one live proposal per pro and job (``proposal_exists``)."""

    async def call() -> ProposalOut:
        return proposal_out(await service.do_create(session, job_id, principal, body))

    return await idempotent(
        session,
        request,
        user_id=principal.user_id,
        key=idempotency_key,
        body=body,
        call=call,
        status_code=201,
    )


@router.get("/jobs/{job_id}/proposals", response_model=Page[ProposalListItem])
async def job_proposals(
    job_id: uuid.UUID, session: DbRead, principal: CurrentPrincipal
) -> Page[ProposalListItem]:
    """The job's client sees every proposal with the pro's public card and the fee split;
    a pro sees only their own."""
    job, proposals = await service.list_for_job(session, job_id, principal)
    return Page(items=await list_items(session, job, proposals))


@router.get("/proposals", response_model=Page[ProposalOut])
async def my_proposals(
    session: DbRead,
    principal: CurrentPrincipal,
    state: str | None = Query(default=None, pattern=STATE_PATTERN),
    cursor: str | None = Query(default=None, max_length=400),
    limit: int = Query(default=20, ge=1, le=100),
) -> Page[ProposalOut]:
    """The caller's proposals as a pro, newest first."""
    rows, next_cursor = await service.list_mine(
        session, principal, state=state, cursor=cursor, limit=limit
    )
    return Page(items=[proposal_out(p) for p in rows], next_cursor=next_cursor)


@router.get("/proposals/{proposal_id}", response_model=ProposalDetailOut)
async def get_proposal(
    proposal_id: uuid.UUID, session: DbRead, principal: CurrentPrincipal
) -> ProposalDetailOut:
    """For the job's client and the pro: terms, ``actions`` the caller may take now, and
    every revision of the terms."""
    proposal = await service.access_proposal(session, proposal_id, principal)
    return await detail_out(session, proposal, principal)


@router.patch("/proposals/{proposal_id}", response_model=ProposalDetailOut)
async def edit_proposal(
    proposal_id: uuid.UUID, body: ProposalPatch, session: DbWrite, principal: CurrentPrincipal
) -> ProposalDetailOut:
    """The pro edits until the client answers (then ``proposal_answered``)."""
    proposal = await service.do_edit(session, proposal_id, principal, body)
    return await detail_out(session, proposal, principal)


# ---------------------------------------------------------------- answers


@router.post("/proposals/{proposal_id}/withdraw", response_model=ProposalDetailOut)
async def withdraw(
    proposal_id: uuid.UUID, session: DbWrite, principal: CurrentPrincipal
) -> ProposalDetailOut:
    proposal = await service.do_withdraw(session, proposal_id, principal)
    return await detail_out(session, proposal, principal)


@router.post("/proposals/{proposal_id}/shortlist", response_model=ProposalDetailOut)
async def shortlist(
    proposal_id: uuid.UUID, session: DbWrite, principal: CurrentPrincipal
) -> ProposalDetailOut:
    proposal = await service.do_shortlist(session, proposal_id, principal)
    return await detail_out(session, proposal, principal)


@router.post("/proposals/{proposal_id}/decline", response_model=ProposalDetailOut)
async def decline(
    proposal_id: uuid.UUID,
    session: DbWrite,
    principal: CurrentPrincipal,
    body: DeclineIn | None = None,
) -> ProposalDetailOut:
    proposal = await service.do_decline(session, proposal_id, principal, body or DeclineIn())
    return await detail_out(session, proposal, principal)


@router.post("/proposals/{proposal_id}/counter", response_model=ProposalDetailOut)
async def counter(
    proposal_id: uuid.UUID,
    body: TermsIn,
    request: Request,
    session: DbWrite,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> object:
    """The client offers other terms (the milestones must add up to the new price)."""

    async def call() -> ProposalDetailOut:
        proposal = await service.do_counter(session, proposal_id, principal, body)
        return await detail_out(session, proposal, principal)

    return await idempotent(
        session, request, user_id=principal.user_id, key=idempotency_key, body=body, call=call
    )


@router.post("/proposals/{proposal_id}/revise", response_model=ProposalDetailOut)
async def revise(
    proposal_id: uuid.UUID,
    body: TermsIn,
    request: Request,
    session: DbWrite,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> object:
    """The pro answers a counter-offer with new terms."""

    async def call() -> ProposalDetailOut:
        proposal = await service.do_revise(session, proposal_id, principal, body)
        return await detail_out(session, proposal, principal)

    return await idempotent(
        session, request, user_id=principal.user_id, key=idempotency_key, body=body, call=call
    )


async def _accept(
    proposal_id: uuid.UUID,
    request: Request,
    session: DbWrite,
    principal: Principal,
    idempotency_key: str | None,
    *,
    counter: bool,
) -> object:
    async def call() -> AcceptOut:
        result = await service.do_accept(session, proposal_id, principal, counter=counter)
        return AcceptOut(contract_id=result.contract_id, proposal=proposal_out(result.proposal))

    return await idempotent(
        session, request, user_id=principal.user_id, key=idempotency_key, body=None, call=call
    )


@router.post("/proposals/{proposal_id}/accept", response_model=AcceptOut)
async def accept(
    proposal_id: uuid.UUID,
    request: Request,
    session: DbWrite,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> object:
    """The client hires the pro: the contract is created (``contract_id``), the other
    proposals are declined. Accepting again answers with the same contract."""
    return await _accept(proposal_id, request, session, principal, idempotency_key, counter=False)


@router.post("/proposals/{proposal_id}/accept-counter", response_model=AcceptOut)
async def accept_counter(
    proposal_id: uuid.UUID,
    request: Request,
    session: DbWrite,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> object:
    """The pro accepts the client's counter-offer: the same as the client accepting."""
    return await _accept(proposal_id, request, session, principal, idempotency_key, counter=True)
