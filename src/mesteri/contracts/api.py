"""Contracts API: my contracts, one contract with its versions and milestones, the PDF of
a version, signing, amendments and withdrawal. Thin: parse, call the service, shape."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import Response

from mesteri.accounts.deps import Client, CurrentPrincipal
from mesteri.accounts.service import Principal
from mesteri.contracts import service
from mesteri.contracts.schemas import (
    AmendmentIn,
    ContractListItem,
    ContractMilestoneOut,
    ContractOut,
    HistoryOut,
    PartyOut,
    SignatureOut,
    SignIn,
    VersionOut,
)
from mesteri.kit.db import DbRead, DbWrite, ReadSession
from mesteri.kit.pagination import Page
from mesteri.milestones import service as milestones

router = APIRouter(tags=["contracts"])


def document_url(contract_id: uuid.UUID, number: int) -> str:
    return f"/api/v1/contracts/{contract_id}/document.pdf?version={number}"


def contract_out(view: service.ContractView, principal: Principal) -> ContractOut:
    contract, terms = view.contract, view.terms
    client, pro = terms["client"], terms["pro"]
    pending = view.pending
    return ContractOut(
        id=contract.id,
        state=contract.state,
        job_id=contract.job_id,
        proposal_id=contract.proposal_id,
        title=contract.title,
        price=contract.price,
        currency=contract.currency,
        market=contract.market,
        client=PartyOut(user_id=contract.client_id, name=client["name"], city=client.get("city")),
        pro=PartyOut(
            user_id=contract.pro_user_id,
            name=pro["name"],
            pro_id=contract.pro_id,
            display_name=pro.get("display_name"),
            business_type=pro.get("business_type"),
            business_id=pro.get("business_id"),
            verified_at=pro.get("verified_at"),
        ),
        versions=[
            VersionOut(
                number=v.number,
                state=v.state,
                language=v.language,
                document_sha256=v.document_sha256,
                reason=v.reason,
                price=int(v.terms["price"]),
                created_at=v.created_at,
                signed_at=v.signed_at,
                document_url=document_url(contract.id, v.number),
                signatures=[
                    SignatureOut(
                        party=s.party,
                        full_name=s.full_name,
                        signed_at=s.signed_at,
                        document_sha256=s.document_sha256,
                    )
                    for s in view.signatures_of(v)
                ],
            )
            for v in view.versions
        ],
        current_version=contract.latest_version,
        signed_version=contract.signed_version,
        pending_version=pending.number if pending else None,
        my_party=view.my_party,
        actions=view.actions,
        milestones=[
            ContractMilestoneOut(
                id=m.id,
                position=m.position,
                title=m.title,
                amount=m.amount,
                currency=m.currency,
                state=m.state,
                due_date=m.due_date,
                dod=m.dod,
                actions=milestones.actions_for(m, principal),
            )
            for m in view.milestones
        ],
        history=[
            HistoryOut(
                transition=r.transition,
                from_state=r.from_state,
                to_state=r.to_state,
                actor=r.actor,
                at=r.at,
            )
            for r in view.history
        ],
        created_at=contract.created_at,
        activated_at=contract.activated_at,
        completed_at=contract.completed_at,
    )


async def _answer(
    session: ReadSession, contract_id: uuid.UUID, principal: Principal
) -> ContractOut:
    return contract_out(await service.load_view(session, contract_id, principal), principal)


@router.get("/contracts", response_model=Page[ContractListItem])
async def my_contracts(
    session: DbRead,
    principal: CurrentPrincipal,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> Page[ContractListItem]:
    """Contracts where I am the client or the pro, newest first."""
    items, next_cursor = await service.list_mine(session, principal, cursor=cursor, limit=limit)
    return Page(
        items=[
            ContractListItem(
                id=i.contract.id,
                state=i.contract.state,
                job_id=i.contract.job_id,
                title=i.contract.title,
                price=i.contract.price,
                currency=i.contract.currency,
                my_party=i.my_party,
                counterpart=i.counterpart,
                current_version=i.contract.latest_version,
                signed_version=i.contract.signed_version,
                awaiting_my_signature=i.awaiting_my_signature,
                created_at=i.contract.created_at,
            )
            for i in items
        ],
        next_cursor=next_cursor,
    )


@router.get("/contracts/{contract_id}", response_model=ContractOut)
async def get_contract(
    contract_id: uuid.UUID, session: DbRead, principal: CurrentPrincipal
) -> ContractOut:
    """For the two parties and staff who proved two-factor; anyone else gets 404."""
    return await _answer(session, contract_id, principal)


@router.get(
    "/contracts/{contract_id}/document.pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}}, 304: {"description": "Not modified"}},
)
async def get_document(
    contract_id: uuid.UUID,
    request: Request,
    session: DbRead,
    principal: CurrentPrincipal,
    version: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> Response:
    """The exact PDF of a version (the latest by default); ``ETag`` is its SHA-256."""
    row = await service.access_document(session, contract_id, principal, version)
    etag = f'"{row.document_sha256}"'
    headers = {
        "ETag": etag,
        "Cache-Control": "private, no-cache",
        "Content-Disposition": (
            f'inline; filename="contract-{str(contract_id)[:8]}-v{row.number}.pdf"'
        ),
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(row.document, media_type="application/pdf", headers=headers)


@router.post("/contracts/{contract_id}/sign", response_model=ContractOut)
async def sign(
    contract_id: uuid.UUID,
    body: SignIn,
    session: DbWrite,
    principal: CurrentPrincipal,
    client: Client,
) -> ContractOut:
    """Sign the version waiting for signatures by typing your full name (``agree`` must be
    true). Naming the ``version`` or ``document_sha256`` you read makes a changed document
    fail with 409 ``stale_document``. Signing again answers the same."""
    await service.do_sign(session, contract_id, principal, body, client)
    return await _answer(session, contract_id, principal)


@router.post(
    "/contracts/{contract_id}/amendments",
    status_code=status.HTTP_201_CREATED,
    response_model=ContractOut,
)
async def propose_amendment(
    contract_id: uuid.UUID, body: AmendmentIn, session: DbWrite, principal: CurrentPrincipal
) -> ContractOut:
    """A new version changing the unfunded milestones; both parties then sign it."""
    await service.do_propose_amendment(session, contract_id, principal, body)
    return await _answer(session, contract_id, principal)


@router.post("/contracts/{contract_id}/withdraw", response_model=ContractOut)
async def withdraw(
    contract_id: uuid.UUID, session: DbWrite, principal: CurrentPrincipal
) -> ContractOut:
    """Walk away before both parties signed; the job can hire again."""
    await service.do_withdraw(session, contract_id, principal)
    return await _answer(session, contract_id, principal)
