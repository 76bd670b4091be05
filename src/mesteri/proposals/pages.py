"""Proposals pages: the proposal form with its milestone editor, the client's comparison
of proposals, a proposal's page with its history and actions, the counter-offer and
revision forms, and the pro's "My work" list.

They call the same services as the API; nothing here decides a rule.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from mesteri.accounts.deps import WebAuthRequired
from mesteri.accounts.service import Principal
from mesteri.jobs import service as jobs
from mesteri.jobs.models import Job
from mesteri.kit import i18n
from mesteri.kit.db import DbWrite
from mesteri.kit.errors import InvalidInputError
from mesteri.kit.i18n import lazy
from mesteri.kit.money import Money
from mesteri.kit.text import clean_text
from mesteri.kit.web import form_amount, form_errors, render, templates
from mesteri.milestones.schemas import MilestoneTerms
from mesteri.proposals import api as shapes
from mesteri.proposals import service
from mesteri.proposals.models import LIVE_STATES, Proposal, ProposalState
from mesteri.proposals.schemas import (
    MAX_MILESTONES,
    DeclineIn,
    ProposalIn,
    ProposalPatch,
    QuestionIn,
    TermsIn,
)

router = APIRouter()

DEFAULT_ROWS = 3

templates.globals["proposal_states"] = {
    "submitted": lazy("Waiting for the client"),
    "shortlisted": lazy("Shortlisted"),
    "countered": lazy("Counter-offer from the client"),
    "accepted": lazy("Accepted"),
    "declined": lazy("Declined"),
    "withdrawn": lazy("Withdrawn"),
    "expired": lazy("Expired"),
}
templates.globals["proposal_action_names"] = {
    "shortlist": lazy("Shortlist"),
    "counter": lazy("Make a counter-offer"),
    "revise": lazy("Answer with new terms"),
    "accept": lazy("Accept and hire"),
    "accept_counter": lazy("Accept the counter-offer"),
    "decline": lazy("Decline"),
    "withdraw": lazy("Withdraw the proposal"),
    "edit": lazy("Edit"),
}
templates.globals["proposal_system_reasons"] = frozenset(service.SYSTEM_REASONS)
templates.globals["revision_authors"] = {"pro": lazy("Pro"), "client": lazy("Client")}

# The order of the groups on "My work": what needs the pro first.
WORK_GROUPS = (
    ProposalState.COUNTERED,
    ProposalState.SUBMITTED,
    ProposalState.SHORTLISTED,
    ProposalState.ACCEPTED,
    ProposalState.DECLINED,
    ProposalState.EXPIRED,
    ProposalState.WITHDRAWN,
)

FORM_TITLES = {
    "propose": lazy("Send a proposal"),
    "edit": lazy("Edit your proposal"),
    "counter": lazy("Make a counter-offer"),
    "revise": lazy("Answer the counter-offer"),
}


def _redirect(target: str) -> RedirectResponse:
    return RedirectResponse(target, status_code=303)


# ---------------------------------------------------------------- amounts and form rows


def _rows_of(milestones: Sequence[dict[str, Any]], currency: str) -> list[dict[str, str]]:
    return [
        {
            "title": str(m.get("title") or ""),
            "amount": Money(int(m["amount"]), currency).plain() if m.get("amount") else "",
            "due_date": str(m.get("due_date") or ""),
            "dod": "\n".join(m.get("dod") or []),
            "share": "",
        }
        for m in milestones
    ]


def _plan_rows(job: Job, price: int | None) -> list[dict[str, str]]:
    """Rows from the job's milestone plan (titles, Definition of Done, shares of the price)."""
    plan = job.milestone_plan or []
    rows: list[dict[str, str]] = []
    given = 0
    for index, item in enumerate(plan[:MAX_MILESTONES]):
        share = int(item.get("share") or 0)
        amount = ""
        if price:
            part = price - given if index == len(plan) - 1 else price * share // 100
            given += part
            amount = Money(part, job.currency).plain()
        rows.append(
            {
                "title": str(item.get("title") or ""),
                "amount": amount,
                "due_date": "",
                "dod": "\n".join(item.get("dod") or []),
                "share": str(share) if share else "",
            }
        )
    return rows


def _pad(rows: list[dict[str, str]], count: int) -> list[dict[str, str]]:
    blank = {"title": "", "amount": "", "due_date": "", "dod": "", "share": ""}
    wanted = min(MAX_MILESTONES, max(count, len(rows)))
    return rows + [dict(blank) for _ in range(wanted - len(rows))]


def _form_rows(form: FormData) -> list[dict[str, str]]:
    """The editor's rows as typed (blank rows dropped)."""
    columns = [
        [clean_text(str(v)) for v in form.getlist(f"milestone_{name}")]
        for name in ("title", "amount", "due_date", "dod")
    ]
    count = max(len(c) for c in columns)
    rows = []
    for i in range(count):
        title, amount, due, dod = (c[i] if i < len(c) else "" for c in columns)
        if title.strip() or amount.strip() or due.strip() or dod.strip():
            rows.append(
                {"title": title, "amount": amount, "due_date": due, "dod": dod, "share": ""}
            )
    return rows


def _form_values(form: FormData) -> dict[str, str]:
    return {
        name: clean_text(str(form.get(name) or ""))
        for name in ("price", "duration_days", "message", "questions")
    }


def _terms_from_form(values: dict[str, str], rows: list[dict[str, str]], currency: str) -> TermsIn:
    """What the editor holds, as the API's terms; a clear error names the field."""
    if not values["price"].strip():
        raise InvalidInputError(lazy("Enter the price."), field="price")
    price = form_amount(values["price"], currency, "price")
    duration = values["duration_days"].strip()
    if duration and not duration.isdigit():
        raise InvalidInputError(
            lazy("Enter the duration as a number of days."), field="duration_days"
        )
    milestones = []
    for row in rows:
        if not row["amount"].strip():
            raise InvalidInputError(lazy("Give every milestone an amount."), field="milestones")
        try:
            milestones.append(
                MilestoneTerms(
                    title=row["title"],
                    amount=form_amount(row["amount"], currency, "milestones"),
                    due_date=row["due_date"].strip() or None,
                    dod=row["dod"].splitlines(),
                )
            )
        except ValidationError as exc:
            raise InvalidInputError(
                lazy("Each milestone needs a title, an amount and a valid date (YYYY-MM-DD)."),
                field="milestones",
            ) from exc
    try:
        return TermsIn(
            price=price,
            milestones=milestones,
            duration_days=int(duration) if duration else None,
            message=values["message"],
        )
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0]) if exc.errors() else None
        raise InvalidInputError(field=field) from exc


def _questions(values: dict[str, str]) -> list[QuestionIn]:
    lines = [line.strip() for line in values["questions"].splitlines() if line.strip()]
    try:
        return [QuestionIn(question=line) for line in lines[:10]]
    except ValidationError as exc:
        raise InvalidInputError(field="questions") from exc


def _rows_count(rows: str | None) -> int:
    try:
        return max(1, min(MAX_MILESTONES, int(rows))) if rows else DEFAULT_ROWS
    except ValueError:
        return DEFAULT_ROWS


# ---------------------------------------------------------------- contexts


def _form_context(
    *,
    mode: str,
    action: str,
    job: Job | None,
    proposal: Proposal | None,
    currency: str,
    values: dict[str, str],
    rows: list[dict[str, str]],
    row_count: int,
) -> dict[str, Any]:
    return {
        "mode": mode,
        "title": FORM_TITLES[mode],
        "action": action,
        "job": job,
        "proposal": proposal,
        "currency": currency,
        "form": values,
        "rows": _pad(rows, row_count),
        "more_rows": min(MAX_MILESTONES, max(row_count, len(rows)) + 3),
        "max_rows": MAX_MILESTONES,
    }


async def _detail_context(
    session: DbWrite, proposal: Proposal, principal: Principal
) -> dict[str, Any]:
    detail = await shapes.detail_out(session, proposal, principal)
    roles = service.roles_of(proposal, principal)
    return {
        "p": detail,
        "is_client": principal.user_id == proposal.client_id,
        "is_pro": principal.user_id == proposal.pro_user_id,
        "roles": roles,
        "notice": None,
    }


def _terms_values(proposal: Proposal) -> dict[str, str]:
    return {
        "price": Money(proposal.price, proposal.currency).plain(),
        "duration_days": str(proposal.duration_days or ""),
        "message": "",
        "questions": "\n".join(str(q.get("question", "")) for q in proposal.questions),
    }


# ---------------------------------------------------------------- the pro proposes


@router.get("/jobs/{job_id}/propose")
async def propose_form(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    job_id: uuid.UUID,
    rows: str | None = Query(default=None, max_length=3),
    price: str | None = Query(default=None, max_length=20),
) -> Response:
    job = await jobs.access_job(session, job_id, auth[1])
    parsed: int | None = None
    if price:
        try:
            parsed = Money.parse(price, job.currency).amount
        except ValueError:
            parsed = None
    values = {"price": price or "", "duration_days": "", "message": "", "questions": ""}
    context = _form_context(
        mode="propose",
        action=f"/jobs/{job.id}/propose",
        job=job,
        proposal=None,
        currency=job.currency,
        values=values,
        rows=_plan_rows(job, parsed),
        row_count=_rows_count(rows),
    )
    return render(request, "proposals/form.html", context)


@router.post("/jobs/{job_id}/propose")
async def propose_submit(
    request: Request, session: DbWrite, auth: WebAuthRequired, job_id: uuid.UUID
) -> Response:
    job = await jobs.access_job(session, job_id, auth[1])
    form = await request.form()
    values, rows = _form_values(form), _form_rows(form)
    context = _form_context(
        mode="propose",
        action=f"/jobs/{job.id}/propose",
        job=job,
        proposal=None,
        currency=job.currency,
        values=values,
        rows=rows,
        row_count=max(len(rows), 1),
    )
    with form_errors(request, "proposals/form.html", **context):
        terms = _terms_from_form(values, rows, job.currency)
        body = ProposalIn(
            **terms.model_dump(exclude={"milestones"}),
            milestones=terms.milestones,
            currency=job.currency,
            questions=_questions(values),
        )
        proposal = await service.do_create(session, job.id, auth[1], body)
    return _redirect(f"/proposals/{proposal.id}?sent=1")


# ---------------------------------------------------------------- the client compares


@router.get("/jobs/{job_id}/proposals")
async def compare_page(
    request: Request, session: DbWrite, auth: WebAuthRequired, job_id: uuid.UUID
) -> Response:
    job, proposals = await service.list_for_job(session, job_id, auth[1])
    items = await shapes.list_items(session, job, proposals)
    live = [i for i in items if i.state in LIVE_STATES]
    closed = [i for i in items if i.state not in LIVE_STATES]
    actions = {p.id: service.actions_for(p, auth[1]) for p in proposals}
    return render(
        request,
        "proposals/compare.html",
        {
            "job": job,
            "live": live,
            "closed": closed,
            "actions": actions,
            "is_client": job.client_id == auth[1].user_id,
        },
    )


# ---------------------------------------------------------------- one proposal


@router.get("/proposals/{proposal_id}")
async def detail_page(
    request: Request, session: DbWrite, auth: WebAuthRequired, proposal_id: uuid.UUID
) -> Response:
    proposal = await service.access_proposal(session, proposal_id, auth[1])
    context = await _detail_context(session, proposal, auth[1])
    if request.query_params.get("sent"):
        context["notice"] = i18n.gettext("Your proposal was sent. The client is told by e-mail.")
    elif request.query_params.get("done"):
        context["notice"] = i18n.gettext("Done.")
    return render(request, "proposals/detail.html", context)


async def _act(
    request: Request,
    session: DbWrite,
    principal: Principal,
    proposal_id: uuid.UUID,
    name: str,
    reason: str | None = None,
) -> Response:
    proposal = await service.access_proposal(session, proposal_id, principal)
    context = await _detail_context(session, proposal, principal)
    with form_errors(request, "proposals/detail.html", **context):
        if name == "withdraw":
            await service.do_withdraw(session, proposal.id, principal)
        elif name == "shortlist":
            await service.do_shortlist(session, proposal.id, principal)
        else:
            await service.do_decline(session, proposal.id, principal, DeclineIn(reason=reason))
    form = await request.form()
    if form.get("next") == "compare":
        return _redirect(f"/jobs/{proposal.job_id}/proposals?done={name}")
    return _redirect(f"/proposals/{proposal.id}?done={name}")


@router.post("/proposals/{proposal_id}/withdraw")
async def withdraw_submit(
    request: Request, session: DbWrite, auth: WebAuthRequired, proposal_id: uuid.UUID
) -> Response:
    return await _act(request, session, auth[1], proposal_id, "withdraw")


@router.post("/proposals/{proposal_id}/shortlist")
async def shortlist_submit(
    request: Request, session: DbWrite, auth: WebAuthRequired, proposal_id: uuid.UUID
) -> Response:
    return await _act(request, session, auth[1], proposal_id, "shortlist")


@router.post("/proposals/{proposal_id}/decline")
async def decline_submit(
    request: Request, session: DbWrite, auth: WebAuthRequired, proposal_id: uuid.UUID
) -> Response:
    form = await request.form()
    reason = clean_text(str(form.get("reason") or ""))[:2000]
    return await _act(request, session, auth[1], proposal_id, "decline", reason)


# ---------------------------------------------------------------- acceptance


async def _accept_page(
    request: Request,
    session: DbWrite,
    principal: Principal,
    proposal_id: uuid.UUID,
    *,
    counter: bool,
) -> Response:
    proposal = await service.access_proposal(session, proposal_id, principal)
    context = await _detail_context(session, proposal, principal)
    context["counter"] = counter
    return render(request, "proposals/accept.html", context)


async def _accept_submit(
    request: Request,
    session: DbWrite,
    principal: Principal,
    proposal_id: uuid.UUID,
    *,
    counter: bool,
) -> Response:
    proposal = await service.access_proposal(session, proposal_id, principal)
    context = await _detail_context(session, proposal, principal)
    context["counter"] = counter
    with form_errors(request, "proposals/accept.html", **context):
        result = await service.do_accept(session, proposal.id, principal, counter=counter)
    return _redirect(f"/contracts/{result.contract_id}")


# ---------------------------------------------------------------- new terms: edit, counter, revise


async def _terms_page(
    request: Request,
    session: DbWrite,
    principal: Principal,
    proposal_id: uuid.UUID,
    mode: str,
    rows: str | None,
) -> Response:
    proposal = await service.access_proposal(session, proposal_id, principal)
    existing = _rows_of(proposal.milestones, proposal.currency)
    context = _form_context(
        mode=mode,
        action=f"/proposals/{proposal.id}/{mode}",
        job=None,
        proposal=proposal,
        currency=proposal.currency,
        values=_terms_values(proposal),
        rows=existing,
        row_count=max(_rows_count(rows), len(existing)) if rows else len(existing) + 1,
    )
    if mode == "edit":
        context["form"]["message"] = proposal.message
    return render(request, "proposals/form.html", context)


async def _terms_submit(
    request: Request, session: DbWrite, principal: Principal, proposal_id: uuid.UUID, mode: str
) -> Response:
    proposal = await service.access_proposal(session, proposal_id, principal)
    form = await request.form()
    values, rows = _form_values(form), _form_rows(form)
    context = _form_context(
        mode=mode,
        action=f"/proposals/{proposal.id}/{mode}",
        job=None,
        proposal=proposal,
        currency=proposal.currency,
        values=values,
        rows=rows,
        row_count=max(len(rows), 1),
    )
    with form_errors(request, "proposals/form.html", **context):
        terms = _terms_from_form(values, rows, proposal.currency)
        if mode == "edit":
            patch = ProposalPatch(
                price=terms.price,
                milestones=terms.milestones,
                duration_days=terms.duration_days,
                message=terms.message,
                questions=_questions(values),
            )
            await service.do_edit(session, proposal.id, principal, patch)
        elif mode == "counter":
            await service.do_counter(session, proposal.id, principal, terms)
        else:
            await service.do_revise(session, proposal.id, principal, terms)
    return _redirect(f"/proposals/{proposal.id}?done={mode}")


def _accept_routes(path: str, *, counter: bool) -> None:
    """The confirmation page and its post: the client accepts the pro's terms, or the pro
    accepts the client's counter."""

    async def accept_confirm(
        request: Request, session: DbWrite, auth: WebAuthRequired, proposal_id: uuid.UUID
    ) -> Response:
        return await _accept_page(request, session, auth[1], proposal_id, counter=counter)

    async def accept_submit(
        request: Request, session: DbWrite, auth: WebAuthRequired, proposal_id: uuid.UUID
    ) -> Response:
        return await _accept_submit(request, session, auth[1], proposal_id, counter=counter)

    name = path.replace("-", "_")
    full = f"/proposals/{{proposal_id}}/{path}"
    router.add_api_route(full, accept_confirm, methods=["GET"], name=f"proposal_{name}_form")
    router.add_api_route(full, accept_submit, methods=["POST"], name=f"proposal_{name}_submit")


_accept_routes("accept", counter=False)
_accept_routes("accept-counter", counter=True)


def _terms_routes(mode: str) -> None:
    """The form and its post for one way of putting terms on the table: the pro edits or
    revises, the client counters."""

    async def terms_form(
        request: Request,
        session: DbWrite,
        auth: WebAuthRequired,
        proposal_id: uuid.UUID,
        rows: str | None = Query(default=None, max_length=3),
    ) -> Response:
        return await _terms_page(request, session, auth[1], proposal_id, mode, rows)

    async def terms_submit(
        request: Request, session: DbWrite, auth: WebAuthRequired, proposal_id: uuid.UUID
    ) -> Response:
        return await _terms_submit(request, session, auth[1], proposal_id, mode)

    path = f"/proposals/{{proposal_id}}/{mode}"
    router.add_api_route(path, terms_form, methods=["GET"], name=f"proposal_{mode}_form")
    router.add_api_route(path, terms_submit, methods=["POST"], name=f"proposal_{mode}_submit")


for _mode in ("edit", "counter", "revise"):
    _terms_routes(_mode)


# ---------------------------------------------------------------- my work


@router.get("/work")
async def work_page(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    cursor: str | None = Query(default=None, max_length=400),
) -> Response:
    """The pro's proposals grouped by state (what needs them first); contracts are a link."""
    rows, next_cursor = await service.list_mine(session, auth[1], cursor=cursor, limit=100)
    titles = await jobs.titles(session, [p.job_id for p in rows])
    groups = [(state.value, [p for p in rows if p.state == state]) for state in WORK_GROUPS]
    return render(
        request,
        "proposals/work.html",
        {
            "groups": [(state, items) for state, items in groups if items],
            "titles": titles,
            "next_cursor": next_cursor,
            "actions": {p.id: service.actions_for(p, auth[1]) for p in rows},
        },
    )
