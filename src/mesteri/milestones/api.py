"""Milestones API: read a milestone (with the actions the caller may take), its history,
and apply a transition of the declared lifecycle."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from mesteri.accounts.deps import CurrentPrincipal
from mesteri.accounts.service import Principal
from mesteri.config import Settings, get_settings
from mesteri.kit.db import DbRead, DbWrite
from mesteri.kit.idempotency import IdempotencyKey, idempotent
from mesteri.milestones import service
from mesteri.milestones.errors import MilestoneNotFoundError
from mesteri.milestones.models import Milestone
from mesteri.milestones.schemas import (
    DodItemOut,
    FundOut,
    MilestoneOut,
    ReasonIn,
    SubmitIn,
    TransitionOut,
)

router = APIRouter(tags=["milestones"])

# The body each transition takes; the others take none.
BODIES: dict[str, type[BaseModel]] = {
    "submit": SubmitIn,
    "request_changes": ReasonIn,
}


def milestone_out(milestone: Milestone, principal: Principal) -> MilestoneOut:
    return MilestoneOut(
        id=milestone.id,
        contract_id=milestone.contract_id,
        position=milestone.position,
        title=milestone.title,
        amount=milestone.amount,
        currency=milestone.currency,
        state=milestone.state,
        due_date=milestone.due_date,
        dod=[DodItemOut(text=item["text"], done=item["done"]) for item in milestone.dod],
        submission_note=milestone.submission_note,
        submission_attachment_ids=milestone.submission_attachment_ids,
        change_request=milestone.change_request,
        hold_id=milestone.hold_id,
        funded_at=milestone.funded_at,
        submitted_at=milestone.submitted_at,
        auto_accept_at=service.review_deadline(milestone),
        released_at=milestone.released_at,
        actions=service.actions_for(milestone, principal),
    )


def _settings(request: Request) -> Settings:
    settings: Settings = getattr(request.app.state, "settings", None) or get_settings()
    return settings


@router.get("/contracts/{contract_id}/milestones", response_model=dict[str, list[MilestoneOut]])
async def list_milestones(
    contract_id: uuid.UUID, session: DbRead, principal: CurrentPrincipal
) -> dict[str, list[MilestoneOut]]:
    rows = await service.list_for_contract(session, contract_id)
    if not rows or not service.roles_of(rows[0], principal):
        raise MilestoneNotFoundError()
    return {"items": [milestone_out(m, principal) for m in rows]}


@router.get("/milestones/{milestone_id}", response_model=MilestoneOut)
async def get_milestone(
    milestone_id: uuid.UUID, session: DbRead, principal: CurrentPrincipal
) -> MilestoneOut:
    milestone = await service.access_milestone(session, milestone_id, principal)
    return milestone_out(milestone, principal)


@router.get("/milestones/{milestone_id}/history", response_model=dict[str, list[TransitionOut]])
async def milestone_history(
    milestone_id: uuid.UUID, session: DbRead, principal: CurrentPrincipal
) -> dict[str, list[TransitionOut]]:
    await service.access_milestone(session, milestone_id, principal)
    records = await service.history(session, [milestone_id])
    return {
        "items": [
            TransitionOut(
                transition=r.transition,
                from_state=r.from_state,
                to_state=r.to_state,
                actor=r.actor,
                at=r.at,
                data=r.data,
            )
            for r in records
        ]
    }


def _parse(name: str, body: dict[str, Any] | None) -> BaseModel | None:
    schema = BODIES.get(name)
    if schema is None:
        return None
    try:
        return schema.model_validate(body or {})
    except ValidationError as error:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in error.errors()]
        ) from error


@router.post(
    "/milestones/{milestone_id}/transitions/{name}",
    response_model=MilestoneOut | FundOut,
    responses={200: {"description": "The milestone; for ``fund``: the checkout to pay it."}},
)
async def apply_transition(
    milestone_id: uuid.UUID,
    name: str,
    request: Request,
    session: DbWrite,
    principal: CurrentPrincipal,
    body: Annotated[dict[str, Any] | None, Body()] = None,
    idempotency_key: IdempotencyKey = None,
) -> object:
    """Apply ``name`` (fund, submit, request_changes, accept, cancel, dispute, …).

    ``fund`` answers ``{payment_id, checkout_url}``: the milestone is funded once the
    provider confirms the payment by webhook.
    """
    parsed = _parse(name, body)

    async def call() -> BaseModel:
        result = await service.do_transition(
            session,
            milestone_id,
            name,
            principal,
            data=parsed.model_dump(mode="json") if parsed is not None else None,
            settings=_settings(request),
        )
        out = milestone_out(result.milestone, principal)
        if result.funding is None:
            return out
        return FundOut(
            payment_id=result.funding.payment.id,
            checkout_url=result.funding.checkout_url,
            milestone=out,
        )

    return await idempotent(
        session, request, user_id=principal.user_id, key=idempotency_key, body=parsed, call=call
    )
