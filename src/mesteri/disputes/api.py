"""Disputes API: open a dispute on a milestone, read it with its evidence timeline, add
evidence, exchange and accept split offers, escalate, the expert review, and the staff
desk (queue, mediation, decision). Thin: parse, call the service, shape."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import JSONResponse

from mesteri.accounts.deps import Client, CurrentPrincipal, StaffPrincipal
from mesteri.accounts.service import Principal
from mesteri.config import Settings, get_settings
from mesteri.disputes import service
from mesteri.disputes.models import Dispute, DisputeOffer, DisputeStage
from mesteri.disputes.schemas import (
    DisputeIn,
    DisputeListItem,
    DisputeOut,
    EvidenceIn,
    ExpertAssignIn,
    ExpertPayOut,
    ExpertReportIn,
    ExpertRequestIn,
    OfferIn,
    OfferOut,
    QuestionIn,
    QuoteOut,
    ResolveIn,
    TimelineItemOut,
)
from mesteri.kit.db import DbRead, DbWrite, WriteSession
from mesteri.kit.errors import InvalidInputError
from mesteri.kit.idempotency import IdempotencyKey, idempotent
from mesteri.kit.pagination import Page
from mesteri.media import service as media
from mesteri.media.schemas import MediaLinkOut

router = APIRouter(tags=["disputes"])
admin = APIRouter(prefix="/admin", tags=["disputes"])

Cursor = Annotated[str | None, Query(max_length=400)]
Limit = Annotated[int, Query(ge=1, le=100)]


def offer_out(offer: DisputeOffer, currency: str) -> OfferOut:
    return OfferOut(
        id=offer.id,
        made_by=offer.made_by,
        made_by_role=offer.made_by_role,
        stage=offer.stage,
        pro_amount=offer.pro_amount,
        client_amount=offer.client_amount,
        currency=currency,
        note=offer.note,
        state=offer.state,
        client_accepted_at=offer.client_accepted_at,
        pro_accepted_at=offer.pro_accepted_at,
        created_at=offer.created_at,
    )


def list_item(d: Dispute) -> DisputeListItem:
    return DisputeListItem(
        id=d.id,
        milestone_id=d.milestone_id,
        contract_id=d.contract_id,
        stage=d.stage,
        opened_by_role=d.opened_by_role,
        reason=d.reason,
        currency=d.currency,
        amount_held=d.amount_held,
        amount_disputed=d.amount_disputed,
        stage_deadline=d.stage_deadline,
        mediator_id=d.mediator_id,
        opened_at=d.opened_at,
        outcome=d.outcome,
    )


def dispute_out(view: service.DisputeView) -> DisputeOut:
    d = view.dispute
    return DisputeOut(
        **list_item(d).model_dump(),
        client_id=d.client_id,
        pro_user_id=d.pro_user_id,
        milestone_state=d.milestone_state,
        stage_started_at=d.stage_started_at,
        expert_id=d.expert_id,
        expert_requested_by=d.expert_requested_by,
        expert_fee=d.expert_fee,
        expert_fee_state=d.expert_fee_state,
        expert_report=d.expert_report,
        pro_amount=d.pro_amount,
        client_amount=d.client_amount,
        resolved_by=d.resolved_by,
        resolution_note=d.resolution_note,
        resolved_at=d.resolved_at,
        my_role=view.my_role,
        actions=view.actions,
        offers=[offer_out(o, d.currency) for o in view.offers],
        timeline=[
            TimelineItemOut(
                at=item.at,
                source="dispute" if item.source == "dispute" else "milestone",
                kind=item.kind,
                actor_role=item.actor_role,
                body=item.body,
                attachment_ids=item.attachment_ids or [],
                data=item.data or {},
                id=item.id,
            )
            for item in view.timeline
        ],
    )


async def _answer(
    session: WriteSession, dispute_id: uuid.UUID, principal: Principal, client: Client
) -> DisputeOut:
    return dispute_out(await service.load_view(session, dispute_id, principal, client))


def _absolute(request: Request, url: str) -> str:
    """A local link (``/media/...``) made absolute, as ``media.api`` answers it."""
    return str(request.base_url).rstrip("/") + url if url.startswith("/") else url


def _settings(request: Request) -> Settings:
    settings: Settings = getattr(request.app.state, "settings", None) or get_settings()
    return settings


# ---------------------------------------------------------------- parties


@router.post(
    "/milestones/{milestone_id}/disputes",
    status_code=status.HTTP_201_CREATED,
    response_model=DisputeOut,
)
async def open_dispute(
    milestone_id: uuid.UUID,
    body: DisputeIn,
    session: DbWrite,
    principal: CurrentPrincipal,
    client: Client,
) -> DisputeOut:
    """The client or the pro disputes a funded, submitted or changes-requested milestone:
    its escrow is frozen. ``amount`` (what is contested) defaults to the held amount."""
    dispute = await service.do_open(session, milestone_id, principal, body)
    return await _answer(session, dispute.id, principal, client)


@router.get("/disputes", response_model=Page[DisputeListItem])
async def my_disputes(
    session: DbRead, principal: CurrentPrincipal, cursor: Cursor = None, limit: Limit = 20
) -> Page[DisputeListItem]:
    """Disputes where I am the client or the pro, newest first."""
    rows, next_cursor = await service.list_mine(session, principal, cursor=cursor, limit=limit)
    return Page(items=[list_item(d) for d in rows], next_cursor=next_cursor)


@router.get("/disputes/{dispute_id}", response_model=DisputeOut)
async def get_dispute(
    dispute_id: uuid.UUID, session: DbWrite, principal: CurrentPrincipal, client: Client
) -> DisputeOut:
    """For the parties and staff (staff reads are audited); anyone else gets 404."""
    return await _answer(session, dispute_id, principal, client)


@router.get("/disputes/{dispute_id}/files/{upload_id}", response_model=MediaLinkOut)
async def dispute_file(
    dispute_id: uuid.UUID,
    upload_id: uuid.UUID,
    request: Request,
    session: DbWrite,
    principal: CurrentPrincipal,
    client: Client,
) -> MediaLinkOut:
    """A download link for a file of the evidence timeline (either side's)."""
    await service.check_file(session, dispute_id, upload_id, principal)
    link = await media.access_download(session, upload_id, principal, client=client, may_view=True)
    return MediaLinkOut(
        id=link.upload.id,
        url=_absolute(request, link.url),
        thumbnail_url=_absolute(request, link.thumbnail_url) if link.thumbnail_url else None,
        content_type=link.upload.content_type,
        expires_at=link.expires_at,
    )


@router.post(
    "/disputes/{dispute_id}/evidence",
    status_code=status.HTTP_201_CREATED,
    response_model=DisputeOut,
)
async def add_evidence(
    dispute_id: uuid.UUID,
    body: EvidenceIn,
    session: DbWrite,
    principal: CurrentPrincipal,
    client: Client,
) -> DisputeOut:
    """Words and files (uploaded first through ``/uploads``); ``question_id`` answers the
    mediator's question."""
    await service.do_add_evidence(session, dispute_id, principal, body)
    return await _answer(session, dispute_id, principal, client)


@router.post(
    "/disputes/{dispute_id}/answers",
    status_code=status.HTTP_201_CREATED,
    response_model=DisputeOut,
)
async def answer_question(
    dispute_id: uuid.UUID,
    body: EvidenceIn,
    session: DbWrite,
    principal: CurrentPrincipal,
    client: Client,
) -> DisputeOut:
    """Evidence that answers the mediator's question (``question_id`` required)."""
    if body.question_id is None:
        raise InvalidInputError("Say which question you answer.", field="question_id")
    await service.do_add_evidence(session, dispute_id, principal, body)
    return await _answer(session, dispute_id, principal, client)


@router.post(
    "/disputes/{dispute_id}/offers",
    status_code=status.HTTP_201_CREATED,
    response_model=OfferOut,
)
async def make_offer(
    dispute_id: uuid.UUID, body: OfferIn, session: DbWrite, principal: CurrentPrincipal
) -> OfferOut:
    """A split of the held amount (the parts must add up to it exactly). By a party, or by
    the mediator (staff) from mediation on; it replaces the same side's open offer."""
    offer = await service.do_offer(session, dispute_id, principal, body)
    dispute = await service.access_dispute(session, dispute_id, principal)
    return offer_out(offer, dispute.currency)


@router.post("/disputes/{dispute_id}/offers/{offer_id}/accept", response_model=DisputeOut)
async def accept_offer(
    dispute_id: uuid.UUID,
    offer_id: uuid.UUID,
    request: Request,
    session: DbWrite,
    principal: CurrentPrincipal,
    client: Client,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """The other party accepts (both parties, for the mediator's proposal): the dispute is
    settled and the escrow split exactly so, once. A repeat answers the settled dispute."""

    async def call() -> DisputeOut:
        await service.do_accept(session, dispute_id, offer_id, principal)
        return await _answer(session, dispute_id, principal, client)

    return await idempotent(
        session, request, user_id=principal.user_id, key=idempotency_key, body=None, call=call
    )


@router.post("/disputes/{dispute_id}/escalate", response_model=DisputeOut)
async def escalate(
    dispute_id: uuid.UUID, session: DbWrite, principal: CurrentPrincipal, client: Client
) -> DisputeOut:
    """Negotiation → mediation, or mediation → decision, before the stage's time is up."""
    await service.do_escalate(session, dispute_id, principal)
    return await _answer(session, dispute_id, principal, client)


@router.get("/disputes/{dispute_id}/expert-quote", response_model=QuoteOut)
async def expert_quote(
    dispute_id: uuid.UUID, session: DbRead, principal: CurrentPrincipal
) -> QuoteOut:
    """The expert's fee for this dispute: a share of the disputed amount, within bounds."""
    dispute = await service.access_dispute(session, dispute_id, principal)
    return QuoteOut(fee=service.expert_quote(dispute), currency=dispute.currency)


@router.post("/disputes/{dispute_id}/expert", response_model=DisputeOut)
async def request_expert(
    dispute_id: uuid.UUID,
    body: ExpertRequestIn,
    session: DbWrite,
    principal: CurrentPrincipal,
    client: Client,
) -> DisputeOut:
    """A party in mediation asks for an expert, confirming the quoted fee (409
    ``fee_changed`` when it differs); the fee is owed by the requester."""
    await service.do_request_expert(session, dispute_id, principal, body)
    return await _answer(session, dispute_id, principal, client)


@router.post("/disputes/{dispute_id}/expert/pay", response_model=ExpertPayOut)
async def pay_expert(
    dispute_id: uuid.UUID,
    request: Request,
    session: DbWrite,
    principal: CurrentPrincipal,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """The requester's checkout for the expert's fee (held, then released to the expert
    with the report)."""

    async def call() -> ExpertPayOut:
        funding = await service.do_pay_expert(
            session, dispute_id, principal, settings=_settings(request)
        )
        return ExpertPayOut(payment_id=funding.payment.id, checkout_url=funding.checkout_url)

    return await idempotent(
        session, request, user_id=principal.user_id, key=idempotency_key, body=None, call=call
    )


@router.post("/disputes/{dispute_id}/expert-report", response_model=DisputeOut)
async def expert_report(
    dispute_id: uuid.UUID,
    body: ExpertReportIn,
    session: DbWrite,
    principal: CurrentPrincipal,
    client: Client,
) -> DisputeOut:
    """The assigned expert's report (once the fee is paid): the fee is released to the
    expert and the dispute moves to a decision."""
    await service.do_expert_report(session, dispute_id, principal, body.body)
    return await _answer(session, dispute_id, principal, client)


# ---------------------------------------------------------------- staff desk


@admin.get("/disputes", response_model=Page[DisputeListItem])
async def queue(
    session: DbRead,
    principal: StaffPrincipal,
    stage: DisputeStage | None = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[DisputeListItem]:
    """Open disputes (or those of ``stage``), the oldest first."""
    rows, next_cursor = await service.list_queue(
        session, principal, stage=stage, cursor=cursor, limit=limit
    )
    return Page(items=[list_item(d) for d in rows], next_cursor=next_cursor)


@admin.post("/disputes/{dispute_id}/assign", response_model=DisputeOut)
async def assign_mediator(
    dispute_id: uuid.UUID, session: DbWrite, principal: StaffPrincipal, client: Client
) -> DisputeOut:
    """Claim the dispute as its mediator."""
    await service.do_assign_mediator(session, dispute_id, principal)
    return await _answer(session, dispute_id, principal, client)


@admin.post(
    "/disputes/{dispute_id}/questions",
    status_code=status.HTTP_201_CREATED,
    response_model=DisputeOut,
)
async def ask(
    dispute_id: uuid.UUID,
    body: QuestionIn,
    session: DbWrite,
    principal: StaffPrincipal,
    client: Client,
) -> DisputeOut:
    """The mediator asks the client, the pro or both; they answer with evidence."""
    await service.do_ask(session, dispute_id, principal, body)
    return await _answer(session, dispute_id, principal, client)


# The same question, as the dispute's own resource (SPEC lists it next to the evidence).
router.add_api_route(
    "/disputes/{dispute_id}/questions",
    ask,
    methods=["POST"],
    status_code=status.HTTP_201_CREATED,
    response_model=DisputeOut,
)


@admin.post("/disputes/{dispute_id}/expert", response_model=DisputeOut)
async def assign_expert(
    dispute_id: uuid.UUID,
    body: ExpertAssignIn,
    session: DbWrite,
    principal: StaffPrincipal,
    client: Client,
) -> DisputeOut:
    """Assign the expert (a member of staff) of a dispute in expert review."""
    await service.do_assign_expert(session, dispute_id, principal, body.expert_id)
    return await _answer(session, dispute_id, principal, client)


@admin.post("/disputes/{dispute_id}/resolve", response_model=DisputeOut)
async def resolve(
    dispute_id: uuid.UUID,
    body: ResolveIn,
    request: Request,
    session: DbWrite,
    principal: CurrentPrincipal,
    client: Client,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    """The decision (staff with two-factor): release, refund or split (the parts add up to
    the held amount). Final and executed once; the same decision again answers the same,
    a different one is 409 ``dispute_decided``. Audit-logged."""

    async def call() -> DisputeOut:
        await service.do_resolve(session, dispute_id, principal, body, client)
        return await _answer(session, dispute_id, principal, client)

    return await idempotent(
        session, request, user_id=principal.user_id, key=idempotency_key, body=body, call=call
    )
