"""JSON API of jobs: posting and managing jobs, invites, the lead board, job templates
and the contact-details reveal (SPEC 5.1 "jobs"). Thin: parse, call a service, shape."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, status

from mesteri.accounts.deps import Client, CurrentPrincipal
from mesteri.accounts.service import Principal
from mesteri.catalog import service as catalog
from mesteri.config import get_settings
from mesteri.jobs import leads as leads_mod
from mesteri.jobs import service, templates_data
from mesteri.jobs.errors import InvalidCategoryError
from mesteri.jobs.models import Job
from mesteri.jobs.schemas import (
    MAX_BUDGET,
    CategoryRef,
    ClientRef,
    ContactOut,
    ContactRevealOut,
    InviteOut,
    InvitesIn,
    JobIn,
    JobListItem,
    JobOut,
    JobPatch,
    LeadOut,
    PlaceRef,
    TemplateMilestoneOut,
    TemplateOut,
)
from mesteri.kit.db import DbRead, DbWrite, ReadSession
from mesteri.kit.i18n import get_language, gettext
from mesteri.kit.pagination import Page
from mesteri.kit.text import Clean

router = APIRouter(tags=["jobs"])

StateFilter = Annotated[
    str | None,
    Query(pattern="^(draft|open|in_progress|completed|cancelled|expired)$"),
]


# ---------------------------------------------------------------- shaping


def job_out(job: Job, viewer: service.Viewer, client_name: str) -> JobOut:
    """The job as the caller may see it: the address only for the owner."""
    return JobOut(
        id=job.id,
        state=job.state,
        title=job.title,
        description=job.description,
        category_id=job.category_id,
        category=CategoryRef(**service.category_ref(job.category_id)),
        place=PlaceRef(**service.place_ref(job.place_id)),
        market=job.market,
        budget_type=job.budget_type,
        budget_min=job.budget_min,
        budget_max=job.budget_max,
        currency=job.currency,
        start_date=job.start_date,
        end_date=job.end_date,
        template_id=job.template_id,
        milestone_plan=job.milestone_plan,
        attachment_ids=job.attachment_ids,
        proposals_count=job.proposals_count,
        client=ClientRef(display_name=client_name),
        published_at=job.published_at,
        expires_at=job.expires_at,
        created_at=job.created_at,
        updated_at=job.updated_at,
        actions=service.actions_for(job, viewer),
        is_owner=viewer.is_owner,
        address=service.decrypt_address(job) if viewer.is_owner else None,
        hired_pro_id=job.hired_pro_id if viewer.is_owner or viewer.is_staff else None,
        invited=viewer.invited if viewer.pro_id is not None else None,
    )


async def shaped(session: ReadSession, job: Job, principal: Principal) -> JobOut:
    job, viewer = await service.access_job_view(session, job.id, principal)
    names = await service.client_names(session, [job.client_id])
    return job_out(job, viewer, names.get(job.client_id, ""))


def list_item(job: Job) -> JobListItem:
    return JobListItem(
        id=job.id,
        state=job.state,
        title=job.title,
        category_id=job.category_id,
        place=PlaceRef(**service.place_ref(job.place_id)),
        budget_type=job.budget_type,
        budget_min=job.budget_min,
        budget_max=job.budget_max,
        currency=job.currency,
        proposals_count=job.proposals_count,
        published_at=job.published_at,
        expires_at=job.expires_at,
        created_at=job.created_at,
    )


def lead_out(lead: leads_mod.Lead) -> LeadOut:
    category = catalog.get_category(lead.category_id)
    initial = f" {lead.client_initial}." if lead.client_initial else ""
    return LeadOut(
        id=lead.id,
        title=lead.title,
        category_id=lead.category_id,
        category_name=catalog.category_name(category, get_language()),
        place=PlaceRef(**service.place_ref(lead.place_id)),
        distance_km=round(lead.distance_km, 1) if lead.distance_km is not None else None,
        budget_type=lead.budget_type,
        budget_min=lead.budget_min,
        budget_max=lead.budget_max,
        currency=lead.currency,
        published_at=lead.published_at,
        client=ClientRef(display_name=f"{lead.client_first_name.strip()}{initial}"),
        invited=lead.invited,
        proposed=lead.proposed,
        proposals_count=lead.proposals_count,
        score=lead.score,
    )


def template_out(template: templates_data.JobTemplate) -> TemplateOut:
    currency = get_settings().market_profile.currency
    budget = templates_data.budget_for(template, currency)
    category = catalog.get_category(template.category_id)
    return TemplateOut(
        id=template.id,
        title=gettext(template.title),
        description=gettext(template.description),
        category_id=template.category_id,
        category_slug=template.category_slug,
        category_name=catalog.category_name(category, get_language()),
        budget_type=template.budget_type,
        budget_min=budget[0] if budget else None,
        budget_max=budget[1] if budget else None,
        currency=currency,
        milestones=[TemplateMilestoneOut(**m) for m in templates_data.milestone_plan(template)],
    )


def category_param(value: str | None) -> uuid.UUID | None:
    """A category filter given as id or slug (422 ``invalid_category`` when unknown)."""
    if not value:
        return None
    try:
        return catalog.get_category(value).id
    except catalog.UnknownCategoryError as exc:
        raise InvalidCategoryError(field="category") from exc


# ---------------------------------------------------------------- templates


@router.get("/job-templates", response_model=Page[TemplateOut])
async def job_templates(
    category: Clean | None = Query(default=None, max_length=60, description="id or slug"),
) -> Page[TemplateOut]:
    """Ready-made scopes with milestones (share of the price, Definition of Done), in the
    request's language; ``category`` keeps those in it or below it."""
    items = templates_data.list_templates(category_param(category))
    return Page(items=[template_out(t) for t in items])


# ---------------------------------------------------------------- jobs


@router.post("/jobs", status_code=status.HTTP_201_CREATED, response_model=JobOut)
async def create_job(body: JobIn, session: DbWrite, principal: CurrentPrincipal) -> JobOut:
    """Post a job: a draft, or published on the lead board at once with ``publish``.
    Without ``milestone_plan``, a ``template_id`` fills it from the template."""
    job = await service.do_create_job(session, principal, body)
    return await shaped(session, job, principal)


@router.get("/jobs", response_model=Page[JobListItem])
async def my_jobs(
    session: DbRead,
    principal: CurrentPrincipal,
    state: StateFilter = None,
    cursor: str | None = Query(default=None, max_length=400),
    limit: int = Query(default=20, ge=1, le=100),
) -> Page[JobListItem]:
    """The caller's own jobs, newest first."""
    rows, next_cursor = await service.list_my_jobs(
        session, principal, state=state, cursor=cursor, limit=limit
    )
    return Page(items=[list_item(j) for j in rows], next_cursor=next_cursor)


@router.get("/jobs/{job_id}", response_model=JobOut)
async def get_job(job_id: uuid.UUID, session: DbRead, principal: CurrentPrincipal) -> JobOut:
    """The owner sees everything, their address included. A pro sees an open job, or one
    they were invited to or hired on, with the client as "Ana P." and the city only."""
    job, viewer = await service.access_job_view(session, job_id, principal)
    names = await service.client_names(session, [job.client_id])
    return job_out(job, viewer, names.get(job.client_id, ""))


@router.patch("/jobs/{job_id}", response_model=JobOut)
async def update_job(
    job_id: uuid.UUID, body: JobPatch, session: DbWrite, principal: CurrentPrincipal
) -> JobOut:
    """Change a draft or open job (owner)."""
    job = await service.do_update_job(session, job_id, principal, body)
    return await shaped(session, job, principal)


@router.post("/jobs/{job_id}/publish", response_model=JobOut)
async def publish_job(job_id: uuid.UUID, session: DbWrite, principal: CurrentPrincipal) -> JobOut:
    """Draft → open, for ``job_open_days`` (then it expires unless someone was hired)."""
    job = await service.do_publish(session, job_id, principal)
    return await shaped(session, job, principal)


@router.post("/jobs/{job_id}/reopen", response_model=JobOut)
async def reopen_job(job_id: uuid.UUID, session: DbWrite, principal: CurrentPrincipal) -> JobOut:
    """Expired → open again, for another ``job_open_days``."""
    job = await service.do_reopen(session, job_id, principal)
    return await shaped(session, job, principal)


@router.post("/jobs/{job_id}/cancel", response_model=JobOut)
async def cancel_job(job_id: uuid.UUID, session: DbWrite, principal: CurrentPrincipal) -> JobOut:
    """Withdraw a draft or open job; its live proposals are declined."""
    job = await service.do_cancel(session, job_id, principal)
    return await shaped(session, job, principal)


@router.post("/jobs/{job_id}/invites", response_model=Page[InviteOut])
async def invite_pros(
    job_id: uuid.UUID, body: InvitesIn, session: DbWrite, principal: CurrentPrincipal
) -> Page[InviteOut]:
    """Invite listed pros to propose (owner, open job). Inviting a pro twice changes
    nothing and sends no second e-mail. Answers every invite of the job."""
    await service.do_invite(session, job_id, principal, body.pro_ids, body.message)
    return Page(items=await _invites(session, job_id, principal))


@router.get("/jobs/{job_id}/invites", response_model=Page[InviteOut])
async def list_invites(
    job_id: uuid.UUID, session: DbRead, principal: CurrentPrincipal
) -> Page[InviteOut]:
    return Page(items=await _invites(session, job_id, principal))


async def _invites(
    session: ReadSession, job_id: uuid.UUID, principal: Principal
) -> list[InviteOut]:
    rows = await service.list_invites(session, job_id, principal)
    return [
        InviteOut(
            pro_id=r.pro_id, display_name=r.display_name, message=r.message, created_at=r.created_at
        )
        for r in rows
    ]


# ---------------------------------------------------------------- contact details


@router.get("/jobs/{job_id}/contact", response_model=ContactOut)
async def job_contact(
    job_id: uuid.UUID, session: DbWrite, principal: CurrentPrincipal, client: Client
) -> ContactOut:
    """The client's name, e-mail, phone and exact address (SPEC 4.4): for the client and
    the hired pro (and staff with two-factor), each reveal logged; anyone else gets 403
    and no log entry."""
    details = await service.do_reveal_contact(session, job_id, principal, client)
    return ContactOut(
        first_name=details.first_name,
        last_name=details.last_name,
        email=details.email,
        phone=details.phone,
        address=details.address,
    )


@router.get("/jobs/{job_id}/contact-reveals", response_model=Page[ContactRevealOut])
async def contact_reveals(
    job_id: uuid.UUID, session: DbRead, principal: CurrentPrincipal
) -> Page[ContactRevealOut]:
    """Who saw the contact details of this job's client (the owner, staff)."""
    rows = await service.list_contact_reveals(session, job_id, principal)
    return Page(
        items=[
            ContactRevealOut(
                id=r.id,
                viewer_id=r.viewer_id,
                viewer_name=r.viewer_name,
                viewer_role=r.viewer_role,
                fields=r.fields,
                at=r.at,
            )
            for r in rows
        ]
    )


# ---------------------------------------------------------------- lead board


@router.get("/leads", response_model=Page[LeadOut])
async def lead_board(
    session: DbRead,
    principal: CurrentPrincipal,
    category: Clean | None = Query(default=None, max_length=60, description="id or slug"),
    max_distance_km: float | None = Query(default=None, gt=0, le=1000),
    budget_min: int | None = Query(default=None, ge=0, le=MAX_BUDGET),
    budget_max: int | None = Query(default=None, ge=0, le=MAX_BUDGET),
    cursor: str | None = Query(default=None, max_length=400),
    limit: int = Query(default=20, ge=1, le=50),
) -> Page[LeadOut]:
    """Open jobs in the pro's crafts and service area, plus those they were invited to:
    invited first, then by score (distance, recency, budget fit; see ``jobs.leads``).
    Clients appear as "Ana P." with the city only. Not a pro: 403 ``not_a_pro``."""
    profile = await service.access_lead_profile(session, principal)
    query = leads_mod.LeadQuery(
        category=category_param(category),
        max_distance_km=max_distance_km,
        budget_min=budget_min,
        budget_max=budget_max,
        cursor=cursor,
        limit=limit,
    )
    rows, next_cursor = await leads_mod.lead_board(session, profile, query)
    return Page(items=[lead_out(r) for r in rows], next_cursor=next_cursor)
