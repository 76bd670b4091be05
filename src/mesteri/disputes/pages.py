"""Dispute pages: the open form of a milestone, the dispute page of the parties (timeline,
evidence, offers, escalation, expert review) and the staff desk (queue, mediation,
decision). They call the same services as the API; nothing here decides a rule."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from mesteri.accounts import service as accounts
from mesteri.accounts.deps import Client, WebAuthRequired
from mesteri.accounts.service import Principal
from mesteri.disputes import service
from mesteri.disputes.errors import NotAPartyError
from mesteri.disputes.models import DisputeStage
from mesteri.disputes.schemas import (
    DisputeIn,
    EvidenceIn,
    ExpertRequestIn,
    OfferIn,
    QuestionIn,
    ResolveIn,
)
from mesteri.kit import i18n
from mesteri.kit.db import DbWrite, WriteSession
from mesteri.kit.errors import InvalidInputError
from mesteri.kit.i18n import lazy
from mesteri.kit.money import Money
from mesteri.kit.text import Clean
from mesteri.kit.web import form_amount, form_errors, render, templates
from mesteri.media import service as media
from mesteri.milestones import service as milestones
from mesteri.milestones.models import Milestone

router = APIRouter()

Text = Annotated[Clean, Form(max_length=5000)]
Short = Annotated[Clean, Form(max_length=40)]
Files = Annotated[list[UploadFile] | None, File()]

STAGE_NAMES = {
    "negotiation": i18n.lazy("1. Negotiation between the parties"),
    "mediation": i18n.lazy("2. Mediation by Mesteri staff"),
    "expert_review": i18n.lazy("3. Independent expert review"),
    "decision": i18n.lazy("4. Waiting for a decision by Mesteri staff"),
    "settled": i18n.lazy("Settled by agreement"),
    "resolved": i18n.lazy("Decided by Mesteri staff"),
}
EVENT_NAMES = {
    "opened": i18n.lazy("Dispute opened"),
    "evidence": i18n.lazy("Evidence added"),
    "answer": i18n.lazy("Answer to the mediator"),
    "question": i18n.lazy("Question from the mediator"),
    "offer": i18n.lazy("Offer to settle"),
    "proposal": i18n.lazy("Mediator's proposal"),
    "proposal_accepted": i18n.lazy("Proposal accepted by one party"),
    "offer_accepted": i18n.lazy("Offer accepted: dispute settled"),
    "escalated": i18n.lazy("Moved to the next step"),
    "mediator_assigned": i18n.lazy("A mediator took the case"),
    "expert_requested": i18n.lazy("Expert review requested"),
    "expert_assigned": i18n.lazy("Expert assigned"),
    "expert_fee_paid": i18n.lazy("Expert's fee paid"),
    "expert_cancelled": i18n.lazy("Expert's fee not paid in time: review dropped"),
    "expert_report": i18n.lazy("Expert's report"),
    "decision": i18n.lazy("Decision"),
    "delivery": i18n.lazy("Delivery sent by the pro"),
}
ROLE_NAMES = {
    "client": i18n.lazy("client"),
    "pro": i18n.lazy("pro"),
    "staff": i18n.lazy("Mesteri staff"),
    "operator": i18n.lazy("Mesteri staff"),
    "mediator": i18n.lazy("mediator"),
    "expert": i18n.lazy("expert"),
    "system": i18n.lazy("automatic"),
}
OUTCOME_NAMES = {
    "release": i18n.lazy("Paid to the pro"),
    "refund": i18n.lazy("Refunded to the client"),
    "split": i18n.lazy("Split between the pro and the client"),
}

templates.globals.update(
    dispute_stage_names=STAGE_NAMES,
    dispute_event_names=EVENT_NAMES,
    dispute_role_names=ROLE_NAMES,
    dispute_outcome_names=OUTCOME_NAMES,
)


def _redirect(target: str) -> RedirectResponse:
    return RedirectResponse(target, status_code=303)


M = TypeVar("M", bound=BaseModel)


def _parsed(model: type[M], values: dict[str, Any], messages: dict[str, str] | None = None) -> M:
    """The form's values as the API's body; past its bounds, a 422 naming the first field
    (with its message from ``messages``), never a server error."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        loc = exc.errors()[0]["loc"]
        field = str(loc[0]) if loc else None
        raise InvalidInputError((messages or {}).get(field or ""), field=field) from exc


async def _context(
    session: WriteSession,
    dispute_id: uuid.UUID,
    principal: Principal,
    client: Any = None,
    **extra: Any,
) -> dict[str, Any]:
    view = await service.load_view(session, dispute_id, principal, client)
    d = view.dispute
    return {
        "view": view,
        "d": d,
        "milestone": view.milestone,
        "quote": service.expert_quote(d),
        "form": {},
        **extra,
    }


def _page_of(context: dict[str, Any]) -> str:
    return "disputes/desk.html" if context["view"].my_role == "staff" else "disputes/dispute.html"


def _back(context: dict[str, Any], anchor: str = "") -> RedirectResponse:
    d = context["d"]
    base = f"/admin/disputes/{d.id}" if context["view"].my_role == "staff" else f"/disputes/{d.id}"
    return _redirect(base + anchor)


# ---------------------------------------------------------------- opening


@router.get("/milestones/{milestone_id}/dispute")
async def open_page(
    request: Request, milestone_id: uuid.UUID, session: DbWrite, auth: WebAuthRequired
) -> Response:
    """The open form for a party, or the milestone's dispute when there is one."""
    milestone = await milestones.access_milestone(session, milestone_id, auth[1])
    existing = await service.latest_for_milestone(session, milestone_id)
    if existing is not None:
        party = auth[1].user_id in (milestone.client_id, milestone.pro_user_id)
        return _redirect(f"{'' if party else '/admin'}/disputes/{existing.id}")
    return render(request, "disputes/open.html", await _open_context(session, milestone, auth[1]))


async def _open_context(
    session: WriteSession, milestone: Milestone, principal: Principal
) -> dict[str, Any]:
    if principal.user_id not in (milestone.client_id, milestone.pro_user_id):
        raise NotAPartyError()
    held = await service.held_of(session, milestone)
    return {
        "milestone": milestone,
        "held": held,
        "can_open": "dispute" in milestones.actions_for(milestone, principal),
        "form": {"amount": Money(held, milestone.currency).plain() if held else ""},
    }


@router.post("/milestones/{milestone_id}/dispute")
async def open_form(
    request: Request,
    milestone_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
    reason: Text = "",
    amount: Short = "",
    evidence: Text = "",
    files: Files = None,
) -> Response:
    principal = auth[1]
    milestone = await milestones.access_milestone(session, milestone_id, principal)
    context = await _open_context(session, milestone, principal)
    context["form"] = {"reason": reason, "amount": amount, "evidence": evidence}
    with form_errors(request, "disputes/open.html", **context):
        if not reason.strip():
            raise InvalidInputError(lazy("Tell us what went wrong."), field="reason")
        value = form_amount(amount, milestone.currency, "amount") if amount.strip() else None
        attachment_ids = await media.do_store_form_files(session, principal.user_id, files or [])
        proof = None
        if evidence.strip() or attachment_ids:
            proof = {"body": evidence.strip() or reason.strip(), "attachment_ids": attachment_ids}
        body = _parsed(DisputeIn, {"reason": reason, "amount": value, "evidence": proof})
        dispute = await service.do_open(session, milestone_id, principal, body)
    return _redirect(f"/disputes/{dispute.id}?opened=1")


# ---------------------------------------------------------------- the parties' page


@router.get("/disputes/{dispute_id}")
async def dispute_page(
    request: Request, dispute_id: uuid.UUID, session: DbWrite, auth: WebAuthRequired, client: Client
) -> Response:
    dispute = await service.access_dispute(session, dispute_id, auth[1])
    if service.role_of(dispute, auth[1]) == "staff":
        return _redirect(f"/admin/disputes/{dispute_id}")
    context = await _context(session, dispute_id, auth[1], client)
    return render(request, "disputes/dispute.html", context)


@router.get("/disputes/{dispute_id}/files/{upload_id}")
async def dispute_file(
    dispute_id: uuid.UUID,
    upload_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
    client: Client,
) -> Response:
    """A file of the evidence timeline, for either party and staff."""
    await service.check_file(session, dispute_id, upload_id, auth[1])
    link = await media.access_download(session, upload_id, auth[1], client=client, may_view=True)
    return _redirect(link.url)


@router.post("/disputes/{dispute_id}/evidence")
async def evidence_form(
    request: Request,
    dispute_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
    body: Text = "",
    question_id: Short = "",
    files: Files = None,
) -> Response:
    principal = auth[1]
    context = await _context(session, dispute_id, principal, form={"body": body})
    with form_errors(request, _page_of(context), **context):
        if not body.strip():
            raise InvalidInputError(lazy("Write what you want to add."), field="body")
        attachment_ids = await media.do_store_form_files(session, principal.user_id, files or [])
        values = {
            "body": body,
            "attachment_ids": attachment_ids,
            "question_id": question_id or None,
        }
        data = _parsed(EvidenceIn, values)
        await service.do_add_evidence(session, dispute_id, principal, data)
    return _back(context, "#timeline")


@router.post("/disputes/{dispute_id}/offers")
async def offer_form(
    request: Request,
    dispute_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
    pro_amount: Short = "",
    client_amount: Short = "",
    note: Text = "",
) -> Response:
    principal = auth[1]
    form = {"pro_amount": pro_amount, "client_amount": client_amount, "note": note}
    context = await _context(session, dispute_id, principal, form=form)
    with form_errors(request, _page_of(context), **context):
        currency = context["d"].currency
        values = {
            "pro_amount": form_amount(pro_amount, currency, "pro_amount"),
            "client_amount": form_amount(client_amount, currency, "client_amount"),
            "note": note,
        }
        data = _parsed(OfferIn, values)
        await service.do_offer(session, dispute_id, principal, data)
    return _back(context, "#offers")


@router.post("/disputes/{dispute_id}/offers/{offer_id}/accept")
async def accept_form(
    request: Request,
    dispute_id: uuid.UUID,
    offer_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
) -> Response:
    context = await _context(session, dispute_id, auth[1])
    with form_errors(request, _page_of(context), **context):
        await service.do_accept(session, dispute_id, offer_id, auth[1])
    return _back(context)


@router.post("/disputes/{dispute_id}/escalate")
async def escalate_form(
    request: Request, dispute_id: uuid.UUID, session: DbWrite, auth: WebAuthRequired
) -> Response:
    context = await _context(session, dispute_id, auth[1])
    with form_errors(request, _page_of(context), **context):
        await service.do_escalate(session, dispute_id, auth[1])
    return _back(context)


@router.post("/disputes/{dispute_id}/expert")
async def expert_form(
    request: Request,
    dispute_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
    confirm_fee: Short = "",
) -> Response:
    context = await _context(session, dispute_id, auth[1])
    with form_errors(request, _page_of(context), **context):
        data = _parsed(
            ExpertRequestIn,
            {"confirm_fee": confirm_fee},
            {"confirm_fee": lazy("Confirm the expert's fee.")},
        )
        await service.do_request_expert(session, dispute_id, auth[1], data)
    return _back(context)


@router.post("/disputes/{dispute_id}/expert/pay")
async def pay_expert_form(
    request: Request, dispute_id: uuid.UUID, session: DbWrite, auth: WebAuthRequired
) -> Response:
    context = await _context(session, dispute_id, auth[1])
    with form_errors(request, _page_of(context), **context):
        funding = await service.do_pay_expert(session, dispute_id, auth[1])
    return _redirect(funding.checkout_url)


# ---------------------------------------------------------------- the staff desk


@router.get("/admin/disputes")
async def desk_queue(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    stage: str = Query(default="", max_length=20),
    cursor: str | None = Query(default=None, max_length=400),
) -> Response:
    accounts.check_staff(auth[1])
    chosen = DisputeStage(stage) if stage in DisputeStage.__members__.values() else None
    rows, next_cursor = await service.list_queue(
        session, auth[1], stage=chosen, cursor=cursor, limit=50
    )
    return render(
        request,
        "disputes/queue.html",
        {"rows": rows, "next_cursor": next_cursor, "stage": chosen.value if chosen else ""},
    )


@router.get("/admin/disputes/{dispute_id}")
async def desk_page(
    request: Request, dispute_id: uuid.UUID, session: DbWrite, auth: WebAuthRequired, client: Client
) -> Response:
    accounts.check_staff(auth[1])
    dispute = await service.access_dispute(session, dispute_id, auth[1])
    if service.role_of(dispute, auth[1]) != "staff":
        return _redirect(f"/disputes/{dispute_id}")
    context = await _context(session, dispute_id, auth[1], client)
    return render(request, "disputes/desk.html", context)


async def _staff_context(
    session: WriteSession, dispute_id: uuid.UUID, principal: Principal, **extra: Any
) -> dict[str, Any]:
    accounts.check_staff(principal)
    return await _context(session, dispute_id, principal, **extra)


@router.post("/admin/disputes/{dispute_id}/assign")
async def assign_form(
    request: Request, dispute_id: uuid.UUID, session: DbWrite, auth: WebAuthRequired
) -> Response:
    context = await _staff_context(session, dispute_id, auth[1])
    with form_errors(request, "disputes/desk.html", **context):
        await service.do_assign_mediator(session, dispute_id, auth[1])
    return _back(context)


@router.post("/admin/disputes/{dispute_id}/questions")
async def question_form(
    request: Request,
    dispute_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
    body: Text = "",
    to: Short = "both",
) -> Response:
    context = await _staff_context(session, dispute_id, auth[1], form={"question": body})
    with form_errors(request, "disputes/desk.html", **context):
        data = _parsed(QuestionIn, {"body": body, "to": to}, {"body": lazy("Write the question.")})
        await service.do_ask(session, dispute_id, auth[1], data)
    return _back(context, "#timeline")


@router.post("/admin/disputes/{dispute_id}/expert")
async def assign_expert_form(
    request: Request,
    dispute_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
    expert_email: Annotated[Clean, Form(max_length=254)] = "",
) -> Response:
    context = await _staff_context(session, dispute_id, auth[1])
    with form_errors(request, "disputes/desk.html", **context):
        expert_id = (
            await service.staff_expert_id(session, expert_email)
            if expert_email.strip()
            else auth[1].user_id
        )
        await service.do_assign_expert(session, dispute_id, auth[1], expert_id)
    return _back(context)


@router.post("/admin/disputes/{dispute_id}/expert-report")
async def expert_report_form(
    request: Request,
    dispute_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
    body: Annotated[Clean, Form(max_length=20000)] = "",
) -> Response:
    context = await _staff_context(session, dispute_id, auth[1])
    with form_errors(request, "disputes/desk.html", **context):
        if not body.strip():
            raise InvalidInputError(lazy("Write the report."), field="report")
        await service.do_expert_report(session, dispute_id, auth[1], body.strip())
    return _back(context)


@router.post("/admin/disputes/{dispute_id}/resolve")
async def resolve_form(
    request: Request,
    dispute_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
    client: Client,
    outcome: Short = "",
    pro_amount: Short = "",
    client_amount: Short = "",
    note: Text = "",
    confirm: Short = "",
) -> Response:
    form = {
        "outcome": outcome,
        "pro_amount": pro_amount,
        "client_amount": client_amount,
        "note": note,
    }
    context = await _staff_context(session, dispute_id, auth[1], form=form)
    with form_errors(request, "disputes/desk.html", **context):
        if confirm != "1":
            raise InvalidInputError(
                lazy("Tick the box to confirm: the decision is final."), field="confirm"
            )
        if not note.strip():
            raise InvalidInputError(lazy("Explain the decision to the parties."), field="note")
        currency = context["d"].currency
        values: dict[str, Any] = {"outcome": outcome, "note": note}
        if outcome == "split":
            values["pro_amount"] = form_amount(pro_amount, currency, "pro_amount")
            values["client_amount"] = form_amount(client_amount, currency, "client_amount")
        data = _parsed(ResolveIn, values, {"outcome": lazy("Choose a decision.")})
        await service.do_resolve(session, dispute_id, auth[1], data, client)
    return _back(context)
