"""Pages of jobs: "my jobs", post a job (template picker, attachments with progress),
the job page (owner and pro views), editing, invites, the contact reveal and the lead
board. They call the same services as the API; nothing here decides a rule.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from babel.dates import format_date, format_timedelta
from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from mesteri.accounts.deps import Client, WebAuthRequired
from mesteri.accounts.service import Principal
from mesteri.catalog import service as catalog
from mesteri.config import get_settings
from mesteri.jobs import api as shapes
from mesteri.jobs import leads as leads_mod
from mesteri.jobs import service, templates_data
from mesteri.jobs.errors import JobNotEditableError, JobNotFoundError
from mesteri.jobs.models import Job, JobState
from mesteri.jobs.schemas import JobIn, JobPatch
from mesteri.kit import clock, i18n
from mesteri.kit.db import DbWrite, WriteSession
from mesteri.kit.errors import DomainError, InvalidInputError
from mesteri.kit.i18n import get_language
from mesteri.kit.money import Money
from mesteri.kit.text import Clean, clean_text
from mesteri.kit.web import form_amount, form_errors, render, templates
from mesteri.media import service as media
from mesteri.pros import search as search_mod
from mesteri.pros import service as pros

router = APIRouter()

templates.globals["job_state_names"] = {
    JobState.DRAFT: i18n.lazy("Draft"),
    JobState.OPEN: i18n.lazy("Open for proposals"),
    JobState.IN_PROGRESS: i18n.lazy("In progress"),
    JobState.COMPLETED: i18n.lazy("Completed"),
    JobState.CANCELLED: i18n.lazy("Cancelled"),
    JobState.EXPIRED: i18n.lazy("Expired"),
}

Text = Annotated[Clean, Form(max_length=5000)]
MAX_FILES = 10
MAX_PAGE_UPLOAD = 20 * 1024 * 1024


def _redirect(target: str) -> RedirectResponse:
    return RedirectResponse(target, status_code=303)


# ---------------------------------------------------------------- helpers for templates


def money(amount: int | None, currency: str) -> str:
    if amount is None:
        return ""
    return Money(amount, currency).format(get_language())


def fdate(value: date | datetime | None) -> str:
    if value is None:
        return ""
    return format_date(value, format="medium", locale=get_language())


def ago(value: datetime | None) -> str:
    """``"3 hours ago"`` in the page's language."""
    if value is None:
        return ""
    return format_timedelta(
        value - clock.now(), add_direction=True, threshold=1.1, locale=get_language()
    )


HELPERS = {"money": money, "fdate": fdate, "ago": ago}


def _template_choices() -> list[dict[str, str]]:
    return [{"id": t.id, "title": i18n.gettext(t.title)} for t in templates_data.TEMPLATES]


def _form_of(job: Job | None = None) -> dict[str, Any]:
    """The post/edit form's values (strings, as the browser sends them)."""
    if job is None:
        return {
            "title": "",
            "description": "",
            "category_id": "",
            "place_id": "",
            "address": "",
            "budget_type": "fixed",
            "budget_min": "",
            "budget_max": "",
            "start_date": "",
            "end_date": "",
            "template_id": "",
        }
    return {
        "title": job.title,
        "description": job.description,
        "category_id": str(job.category_id),
        "place_id": str(job.place_id),
        "address": service.decrypt_address(job) or "",
        "budget_type": job.budget_type,
        "budget_min": Money(job.budget_min, job.currency).plain(),
        "budget_max": Money(job.budget_max, job.currency).plain(),
        "start_date": job.start_date.isoformat() if job.start_date else "",
        "end_date": job.end_date.isoformat() if job.end_date else "",
        "template_id": job.template_id or "",
    }


def _job_values(form: dict[str, str], currency: str) -> dict[str, Any]:
    """The form as API fields; a value that cannot be read names its field."""
    values: dict[str, Any] = {
        "title": form["title"],
        "description": form["description"],
        "address": form["address"] or None,
        "budget_type": form["budget_type"] or "fixed",
        "currency": currency,
        "start_date": form["start_date"] or None,
        "end_date": form["end_date"] or None,
    }
    for name in ("category_id", "place_id"):
        try:
            values[name] = uuid.UUID(form[name])
        except ValueError as exc:
            raise InvalidInputError(field=name) from exc
    values["budget_min"] = form_amount(form["budget_min"], currency, "budget_min")
    values["budget_max"] = form_amount(
        form["budget_max"] or form["budget_min"], currency, "budget_max"
    )
    return values


def _validated(model: type[JobIn] | type[JobPatch], values: dict[str, Any]) -> Any:
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ()))
        raise InvalidInputError(field=field.split(".")[0] or None) from exc


async def _read_files(files: list[UploadFile] | None) -> list[tuple[bytes, str, str | None]]:
    out: list[tuple[bytes, str, str | None]] = []
    for upload in files or []:
        if not upload.filename:
            continue  # the browser sends an empty part when no file was chosen
        data = await upload.read(MAX_PAGE_UPLOAD + 1)
        if data:
            out.append((data, upload.content_type or "application/octet-stream", upload.filename))
    if len(out) > MAX_FILES:
        raise InvalidInputError(field="attachments")
    return out


async def _store_files(
    session: WriteSession, user_id: uuid.UUID, files: list[tuple[bytes, str, str | None]]
) -> list[uuid.UUID]:
    ids = []
    for data, content_type, filename in files:
        stored = await media.do_store(
            session,
            user_id,
            purpose="attachment",
            data=data,
            content_type=content_type,
            filename=filename,
        )
        ids.append(stored.id)
    return ids


# ---------------------------------------------------------------- my jobs


@router.get("/jobs")
async def my_jobs(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    state: str = Query(default="", max_length=20),
    cursor: str | None = Query(default=None, max_length=400),
) -> Response:
    state = state if state in set(JobState) else ""
    rows, next_cursor = await service.list_my_jobs(
        session, auth[1], state=state or None, cursor=cursor, limit=20
    )
    return render(
        request,
        "jobs/list.html",
        {
            "jobs": [shapes.list_item(j) for j in rows],
            "next_cursor": next_cursor,
            "state": state,
            "states": list(JobState),
            **HELPERS,
        },
    )


# ---------------------------------------------------------------- post a job


def _new_context(
    form: dict[str, Any], template: templates_data.JobTemplate | None
) -> dict[str, Any]:
    return {
        "form": form,
        "categories": catalog.category_options(get_language()),
        "places": catalog.place_options(get_settings().market_profile.country, get_language()),
        "template_choices": _template_choices(),
        "chosen_template": shapes.template_out(template) if template else None,
        "currency": get_settings().market_profile.currency,
        "editing": None,
        **HELPERS,
    }


@router.get("/jobs/new")
async def new_job(
    request: Request,
    auth: WebAuthRequired,
    template: str = Query(default="", max_length=40),
) -> Response:
    """Works without JavaScript: choosing a template reloads with ``?template=slug``."""
    chosen = templates_data.get_template(clean_text(template)) if template else None
    form = _form_of()
    if chosen is not None:
        currency = get_settings().market_profile.currency
        budget = templates_data.budget_for(chosen, currency)
        form.update(
            title=i18n.gettext(chosen.title),
            description=i18n.gettext(chosen.description),
            category_id=str(chosen.category_id),
            budget_type=chosen.budget_type,
            budget_min=Money(budget[0], currency).plain() if budget else "",
            budget_max=Money(budget[1], currency).plain() if budget else "",
            template_id=chosen.id,
        )
    return render(request, "jobs/new.html", _new_context(form, chosen))


@router.post("/jobs/new")
async def create_job(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    title: Text = "",
    description: Text = "",
    category_id: Text = "",
    place_id: Text = "",
    address: Text = "",
    budget_type: Text = "fixed",
    budget_min: Text = "",
    budget_max: Text = "",
    start_date: Text = "",
    end_date: Text = "",
    template_id: Text = "",
    action: Text = "draft",
    attachments: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    form = {
        "title": title,
        "description": description,
        "category_id": category_id,
        "place_id": place_id,
        "address": address,
        "budget_type": budget_type,
        "budget_min": budget_min,
        "budget_max": budget_max,
        "start_date": start_date,
        "end_date": end_date,
        "template_id": template_id,
    }
    chosen = templates_data.get_template(template_id) if template_id else None
    with form_errors(request, "jobs/new.html", **_new_context(form, chosen)):
        values = _job_values(form, get_settings().market_profile.currency)
        values["template_id"] = template_id or None
        values["publish"] = action == "publish"
        body: JobIn = _validated(JobIn, values)
        # The rules first, so files are stored only for a job that will exist.
        service.check_new_job(body)
        files = await _read_files(attachments)
        body.attachment_ids = await _store_files(session, auth[0].id, files)
        job = await service.do_create_job(session, auth[1], body)
    return _redirect(f"/jobs/{job.id}?saved={'published' if body.publish else 'draft'}")


# ---------------------------------------------------------------- the job page


async def _job_context(
    session: DbWrite, job: Job, viewer: service.Viewer, principal: Principal, q: str = ""
) -> dict[str, Any]:
    names = await service.client_names(session, [job.client_id])
    context: dict[str, Any] = {
        "job": shapes.job_out(job, viewer, names.get(job.client_id, "")),
        "viewer": viewer,
        "invites": [],
        "reveals": [],
        "saved_pros": [],
        "found_pros": [],
        "q": q,
        "hired_name": None,
        **HELPERS,
    }
    if viewer.is_owner:
        context["invites"] = await service.list_invites(session, job.id, principal)
        context["reveals"] = await service.list_contact_reveals(session, job.id, principal)
        if job.state == JobState.OPEN:
            invited = {i.pro_id for i in context["invites"]}
            saved = await pros.list_saved(session, principal.user_id)
            context["saved_pros"] = [p for p in saved if p.id not in invited]
            if q:
                hits, _ = await search_mod.search(
                    session, search_mod.SearchQuery(q=q, limit=10), get_settings()
                )
                context["found_pros"] = [
                    h for h in hits if h.id not in invited and h.id != viewer.pro_id
                ]
        if job.hired_pro_id is not None:
            try:
                context["hired_name"] = (
                    await pros.access_profile(session, job.hired_pro_id)
                ).display_name
            except DomainError:
                context["hired_name"] = None
    return context


@router.get("/jobs/{job_id}")
async def job_page(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    job_id: uuid.UUID,
    q: str = Query(default="", max_length=100),
) -> Response:
    job, viewer = await service.access_job_view(session, job_id, auth[1])
    context = await _job_context(session, job, viewer, auth[1], clean_text(q).strip())
    return render(request, "jobs/detail.html", context)


async def _owner_action(
    request: Request, session: DbWrite, auth: WebAuthRequired, job_id: uuid.UUID, action: str
) -> Response:
    job, viewer = await service.access_job_view(session, job_id, auth[1])
    context = await _job_context(session, job, viewer, auth[1])
    with form_errors(request, "jobs/detail.html", **context):
        if action == "publish":
            await service.do_publish(session, job_id, auth[1])
        elif action == "cancel":
            await service.do_cancel(session, job_id, auth[1])
        else:
            await service.do_reopen(session, job_id, auth[1])
    return _redirect(f"/jobs/{job_id}?saved={action}")


@router.post("/jobs/{job_id}/publish")
async def publish(
    request: Request, session: DbWrite, auth: WebAuthRequired, job_id: uuid.UUID
) -> Response:
    return await _owner_action(request, session, auth, job_id, "publish")


@router.post("/jobs/{job_id}/cancel")
async def cancel(
    request: Request, session: DbWrite, auth: WebAuthRequired, job_id: uuid.UUID
) -> Response:
    return await _owner_action(request, session, auth, job_id, "cancel")


@router.post("/jobs/{job_id}/reopen")
async def reopen(
    request: Request, session: DbWrite, auth: WebAuthRequired, job_id: uuid.UUID
) -> Response:
    return await _owner_action(request, session, auth, job_id, "reopen")


@router.post("/jobs/{job_id}/invites")
async def invite(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    job_id: uuid.UUID,
    pro_ids: Annotated[list[str] | None, Form()] = None,
    message: Text = "",
) -> Response:
    job, viewer = await service.access_job_view(session, job_id, auth[1])
    context = await _job_context(session, job, viewer, auth[1])
    with form_errors(request, "jobs/detail.html", **context):
        try:
            ids = [uuid.UUID(p) for p in pro_ids or [] if p]
        except ValueError as exc:
            raise InvalidInputError(field="pro_ids") from exc
        if not ids:
            raise InvalidInputError(field="pro_ids")
        await service.do_invite(session, job_id, auth[1], ids[:20], message[:2000])
    return _redirect(f"/jobs/{job_id}?saved=invited#invites")


@router.get("/jobs/{job_id}/attachments/{upload_id}")
async def attachment(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    client: Client,
    job_id: uuid.UUID,
    upload_id: uuid.UUID,
) -> Response:
    """A job's attachment for whoever may see the job (a short-lived signed link)."""
    job = await service.access_job(session, job_id, auth[1])
    if upload_id not in job.attachment_ids:
        raise JobNotFoundError()
    link = await media.access_download(session, upload_id, auth[1], client=client, may_view=True)
    return _redirect(link.url)


@router.get("/jobs/{job_id}/contact")
async def contact_page(
    request: Request, session: DbWrite, auth: WebAuthRequired, client: Client, job_id: uuid.UUID
) -> Response:
    """The client's contact details for the hired pro (each opening is logged)."""
    details = await service.do_reveal_contact(session, job_id, auth[1], client)
    job = await service.access_job(session, job_id, auth[1])
    return render(request, "jobs/contact.html", {"job": job, "contact": details, **HELPERS})


# ---------------------------------------------------------------- edit


def _edit_context(job: Job, form: dict[str, Any]) -> dict[str, Any]:
    template = templates_data.get_template(job.template_id) if job.template_id else None
    context = _new_context(form, template)
    context["editing"] = job
    return context


@router.get("/jobs/{job_id}/edit")
async def edit_page(
    request: Request, session: DbWrite, auth: WebAuthRequired, job_id: uuid.UUID
) -> Response:
    job, viewer = await service.access_job_view(session, job_id, auth[1])
    if not viewer.is_owner:
        raise JobNotFoundError()
    if job.state not in service.EDITABLE:
        raise JobNotEditableError()
    return render(request, "jobs/new.html", _edit_context(job, _form_of(job)))


@router.post("/jobs/{job_id}/edit")
async def edit_submit(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    job_id: uuid.UUID,
    title: Text = "",
    description: Text = "",
    category_id: Text = "",
    place_id: Text = "",
    address: Text = "",
    budget_type: Text = "fixed",
    budget_min: Text = "",
    budget_max: Text = "",
    start_date: Text = "",
    end_date: Text = "",
    action: Text = "save",
    attachments: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    job, viewer = await service.access_job_view(session, job_id, auth[1])
    if not viewer.is_owner:
        raise JobNotFoundError()
    form = {
        "title": title,
        "description": description,
        "category_id": category_id,
        "place_id": place_id,
        "address": address,
        "budget_type": budget_type,
        "budget_min": budget_min,
        "budget_max": budget_max,
        "start_date": start_date,
        "end_date": end_date,
        "template_id": job.template_id or "",
    }
    with form_errors(request, "jobs/new.html", **_edit_context(job, form)):
        values = _job_values(form, job.currency)
        if values["start_date"] == (job.start_date.isoformat() if job.start_date else None):
            values.pop("start_date")
        if values["end_date"] == (job.end_date.isoformat() if job.end_date else None):
            values.pop("end_date")
        patch: JobPatch = _validated(JobPatch, values)
        files = await _read_files(attachments)
        if files:
            patch.attachment_ids = [
                *job.attachment_ids,
                *await _store_files(session, auth[0].id, files),
            ][:MAX_FILES]
        await service.do_update_job(session, job_id, auth[1], patch)
        if action == "publish" and job.state == JobState.DRAFT:
            await service.do_publish(session, job_id, auth[1])
    return _redirect(f"/jobs/{job_id}?saved=edited")


# ---------------------------------------------------------------- lead board


@router.get("/leads")
async def leads_page(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    category: str = Query(default="", max_length=60),
    max_distance_km: str = Query(default="", max_length=6),
    budget_min: str = Query(default="", max_length=14),
    budget_max: str = Query(default="", max_length=14),
    cursor: str = Query(default="", max_length=400),
) -> Response:
    """Filters live in the URL, so the board can be bookmarked and paged."""
    form = {
        "category": clean_text(category),
        "max_distance_km": clean_text(max_distance_km),
        "budget_min": clean_text(budget_min),
        "budget_max": clean_text(budget_max),
    }
    context: dict[str, Any] = {
        "form": form,
        "categories": catalog.category_options(get_language()),
        "leads": [],
        "next_cursor": None,
        "profile": None,
        "error": None,
        **HELPERS,
    }
    try:
        profile = await service.access_lead_profile(session, auth[1])
    except DomainError as exc:
        context["error"] = exc.msgid
        context["not_a_pro"] = True
        return render(request, "jobs/leads.html", context, status_code=exc.status)
    context["profile"] = profile
    currency = profile.currency
    try:
        distance = float(form["max_distance_km"]) if form["max_distance_km"] else None
        if distance is not None and not 0 < distance <= 1000:
            raise ValueError
        query = leads_mod.LeadQuery(
            category=shapes.category_param(form["category"]),
            max_distance_km=distance,
            budget_min=form_amount(form["budget_min"], currency, "budget_min")
            if form["budget_min"]
            else None,
            budget_max=form_amount(form["budget_max"], currency, "budget_max")
            if form["budget_max"]
            else None,
            cursor=clean_text(cursor) or None,
            limit=20,
        )
        rows, next_cursor = await leads_mod.lead_board(session, profile, query)
        context.update(leads=[shapes.lead_out(r) for r in rows], next_cursor=next_cursor)
    except ValueError:
        context["error"] = InvalidInputError.message
    except DomainError as exc:
        context["error"] = exc.msgid
    return render(request, "jobs/leads.html", context)
