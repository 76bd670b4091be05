"""Rules of the jobs domain: posting, publishing, editing and cancelling jobs, invites,
who may see a job, and the contact-details reveal (SPEC M4, 4.4). Services flush; the
request owns the transaction.

Other modules call ``access_job``, ``lock_job``, ``check_open``, ``do_hire``,
``do_count_proposal``, ``is_invited``, ``client_display_name`` and ``job_summary``.
The lead board (a read model of its own) is in ``jobs.leads``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from mesteri.accounts import service as accounts
from mesteri.accounts.service import ClientInfo, Principal
from mesteri.catalog import service as catalog
from mesteri.config import MARKETS, Market, get_settings
from mesteri.contracts.events import ContractEnded
from mesteri.jobs import templates_data
from mesteri.jobs.errors import (
    BudgetRangeError,
    BudgetTooLowError,
    ContactForbiddenError,
    CurrencyMismatchError,
    DateInPastError,
    DateOrderError,
    InvalidCategoryError,
    InvalidInviteeError,
    InvalidMilestonePlanError,
    InvalidPlaceError,
    JobNotEditableError,
    JobNotFoundError,
    JobNotOpenError,
    UnknownTemplateError,
)
from mesteri.jobs.events import JobClosed, ProInvited
from mesteri.jobs.lifecycles import JOB_LIFECYCLE
from mesteri.jobs.models import ContactReveal, Job, JobInvite, JobState
from mesteri.jobs.schemas import JobIn, JobPatch, PlanItem
from mesteri.kit import audit, clock, events, i18n
from mesteri.kit import jobs as background
from mesteri.kit.crypto import FieldCipher
from mesteri.kit.db import ReadSession, WriteSession
from mesteri.kit.i18n import lazy
from mesteri.kit.ids import new_id
from mesteri.kit.money import Money
from mesteri.kit.pagination import keyset, page_of
from mesteri.kit.statemachine import Actor, TransitionNotAllowedError
from mesteri.media import service as media
from mesteri.notifications import service as notifications
from mesteri.pros import service as pros
from mesteri.pros.errors import NoProProfileError, NotAProError, ProNotFoundError
from mesteri.pros.models import ProProfile

EDITABLE = frozenset({JobState.DRAFT, JobState.OPEN})
ATTACHMENT_PURPOSES = frozenset({"attachment", "portfolio"})
CONTACT_FIELDS = ("first_name", "last_name", "email", "phone", "address")
_MARKET_OF_COUNTRY = {m.country: code for code, m in MARKETS.items()}


# ---------------------------------------------------------------- names and shapes


def client_display_name(first_name: str, last_name: str) -> str:
    """What a pro sees of a client before hire: the first name and the surname's
    initial (``"Ana P."``), never the whole surname."""
    first, last = first_name.strip(), last_name.strip()
    return f"{first} {last[:1]}." if last else first


async def client_names(session: ReadSession, user_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Display names (first name + initial) of clients, in one query."""
    names = await accounts.names_of(session, user_ids)
    return {user_id: client_display_name(*name) for user_id, name in names.items()}


def place_ref(place_id: uuid.UUID) -> dict[str, Any]:
    """The job's city or area, in the request's language: never the address."""
    info = catalog.place_info(place_id) or {}
    names = info.get("names") or {}
    assert isinstance(names, dict)
    name = names.get(i18n.get_language()) or info.get("name") or ""
    return {"id": place_id, "name": str(name), "county": str(info.get("county") or "")}


def category_ref(category_id: uuid.UUID) -> dict[str, Any]:
    row = catalog.get_category(category_id)
    return {
        "id": row.id,
        "slug": row.slug,
        "name": catalog.category_name(row, i18n.get_language()),
    }


async def titles(session: ReadSession, job_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Titles of these jobs, in one query (lists in other modules: "My work")."""
    ids = set(job_ids)
    if not ids:
        return {}
    rows = await session.execute(select(Job.id, Job.title).where(Job.id.in_(ids)))
    return {row.id: row.title for row in rows}


async def job_summary(session: ReadSession, job: Job) -> dict[str, Any]:
    """The safe public fields of a job, for proposal and contract pages: title, category,
    place (city and county), budget, dates, the client as "Ana P.". No contact details,
    no address."""
    names = await client_names(session, [job.client_id])
    return {
        "id": job.id,
        "state": job.state,
        "title": job.title,
        "description": job.description,
        "market": job.market,
        "category_id": job.category_id,
        "category": category_ref(job.category_id),
        "place": place_ref(job.place_id),
        "budget_type": job.budget_type,
        "budget_min": job.budget_min,
        "budget_max": job.budget_max,
        "currency": job.currency,
        "start_date": job.start_date,
        "end_date": job.end_date,
        "milestone_plan": job.milestone_plan,
        "proposals_count": job.proposals_count,
        "published_at": job.published_at,
        "client": {"display_name": names.get(job.client_id, "")},
    }


# ---------------------------------------------------------------- checks


def _market_of_place(place_id: uuid.UUID) -> tuple[Market, float, float]:
    info = catalog.place_info(place_id)
    if info is None:
        raise InvalidPlaceError(field="place_id")
    code = _MARKET_OF_COUNTRY.get(str(info["country"]))
    if code is None:
        raise InvalidPlaceError(field="place_id")
    lat, lon = catalog.place_coordinates(place_id)
    return MARKETS[code], lat, lon


def _today(market: Market) -> date:
    return clock.now().astimezone(ZoneInfo(market.time_zone)).date()


def check_dates(start: date | None, end: date | None, market: Market) -> None:
    """Desired dates: none in the past (in the market's time zone), end not before start."""
    today = _today(market)
    if start is not None and start < today:
        raise DateInPastError(field="start_date")
    if end is not None and end < today:
        raise DateInPastError(field="end_date")
    if start is not None and end is not None and end < start:
        raise DateOrderError(field="end_date")


def check_plan(plan: Sequence[PlanItem | dict[str, Any]]) -> list[dict[str, Any]]:
    """A milestone plan's shares are whole percents adding up to 100 (or there is none)."""
    items = [p if isinstance(p, PlanItem) else PlanItem.model_validate(p) for p in plan]
    if items and sum(p.share for p in items) != 100:
        raise InvalidMilestonePlanError(field="milestone_plan")
    return [p.model_dump() for p in items]


@dataclass(frozen=True)
class CheckedFields:
    market: Market
    lat: float
    lon: float


def check_fields(
    *,
    category_id: uuid.UUID,
    place_id: uuid.UUID,
    budget_min: int,
    budget_max: int,
    currency: str,
    start_date: date | None,
    end_date: date | None,
    dates: bool = True,
) -> CheckedFields:
    """The rules a job's core fields follow, whether new, edited or published: a known
    category and place; the market (currency, minimum amount) follows the place's country;
    ``dates`` (when they are new or changed) not in the past."""
    if not catalog.is_category(category_id):
        raise InvalidCategoryError(field="category_id")
    market, lat, lon = _market_of_place(place_id)
    if currency != market.currency:
        raise CurrencyMismatchError(field="currency", currency=market.currency)
    if budget_min < market.min_amount:
        minimum = Money(market.min_amount, market.currency).format(i18n.get_language())
        raise BudgetTooLowError(field="budget_min", minimum=minimum)
    if budget_max < budget_min:
        raise BudgetRangeError(field="budget_max")
    if dates:
        check_dates(start_date, end_date, market)
    return CheckedFields(market, lat, lon)


def check_open(job: Job) -> None:
    """409 ``job_not_open`` unless the job is on the lead board (taking proposals)."""
    if job.state != JobState.OPEN:
        raise JobNotOpenError()


def _check_transition(job: Job, name: str, actor: Actor) -> None:
    """409 when ``actor`` cannot move the job along ``name`` from its state (a client
    cannot cancel a job in progress: its contract decides)."""
    transition = JOB_LIFECYCLE.find(name, JobState(job.state))
    if (
        transition is None
        or actor not in transition.actors
        or (transition.guard is not None and not transition.guard(job))
    ):
        raise TransitionNotAllowedError(transition=name, state=str(job.state))


def _cipher() -> FieldCipher:
    return FieldCipher.from_secret(get_settings().secret_key)


def encrypt_address(address: str, job_id: uuid.UUID) -> str:
    return _cipher().encrypt(address, context=str(job_id))


def decrypt_address(job: Job) -> str | None:
    if not job.address_enc:
        return None
    return _cipher().decrypt(job.address_enc, context=str(job.id))


# ---------------------------------------------------------------- access


@dataclass(frozen=True)
class Viewer:
    """How the caller relates to a job."""

    is_owner: bool
    pro_id: uuid.UUID | None  # the caller's pro profile, if they have one
    invited: bool
    hired: bool
    is_staff: bool


async def _viewer(session: ReadSession, job: Job, principal: Principal) -> Viewer:
    is_owner = job.client_id == principal.user_id
    pro_id = None if is_owner else await pros.pro_id_of(session, principal.user_id)
    invited = pro_id is not None and await is_invited(session, job.id, pro_id)
    hired = pro_id is not None and job.hired_pro_id == pro_id
    return Viewer(
        is_owner=is_owner,
        pro_id=pro_id,
        invited=invited,
        hired=hired,
        is_staff=principal.is_staff and principal.mfa,
    )


def _may_see(job: Job, viewer: Viewer) -> bool:
    if viewer.is_owner or viewer.is_staff:
        return True
    if viewer.pro_id is None:
        return False
    return job.state == JobState.OPEN or viewer.invited or viewer.hired


async def access_job(session: ReadSession, job_id: uuid.UUID, principal: Principal) -> Job:
    """A job the caller may see, else 404 ``job_not_found``.

    The owner always; staff who proved a second factor; a pro while the job is open, or
    when they were invited to it, or hired on it. Nobody else learns the job exists.
    """
    job = await session.get(Job, job_id)
    if job is None:
        raise JobNotFoundError()
    if not _may_see(job, await _viewer(session, job, principal)):
        raise JobNotFoundError()
    return job


async def access_job_view(
    session: ReadSession, job_id: uuid.UUID, principal: Principal
) -> tuple[Job, Viewer]:
    """``access_job`` plus how the caller relates to the job (for shaping answers)."""
    job = await session.get(Job, job_id)
    if job is None:
        raise JobNotFoundError()
    viewer = await _viewer(session, job, principal)
    if not _may_see(job, viewer):
        raise JobNotFoundError()
    return job, viewer


async def lock_job(session: WriteSession, job_id: uuid.UUID) -> Job:
    """The job row locked ``FOR UPDATE`` (404 ``job_not_found`` if missing). Callers that
    change a job and its proposals lock the job first, then the proposals."""
    job = await session.get(Job, job_id, with_for_update=True, populate_existing=True)
    if job is None:
        raise JobNotFoundError()
    return job


async def _own_job(session: WriteSession, job_id: uuid.UUID, principal: Principal) -> Job:
    job = await lock_job(session, job_id)
    if job.client_id != principal.user_id:
        raise JobNotFoundError()
    return job


async def access_lead_profile(session: ReadSession, principal: Principal) -> ProProfile:
    """The caller's pro profile for the lead board; 403 ``not_a_pro`` without one."""
    if "pro" not in principal.roles:
        raise NotAProError()
    try:
        return await pros.access_own_profile(session, principal.user_id)
    except NoProProfileError as exc:
        raise NotAProError() from exc


def actions_for(job: Job, viewer: Viewer) -> list[str]:
    """What the caller may do now: the lifecycle's transitions for their role, plus
    ``edit`` and ``invite`` for the owner and ``propose`` for a pro."""
    state = JobState(job.state)
    if viewer.is_owner:
        out = JOB_LIFECYCLE.available(state, [Actor.CLIENT], job)
        if state in EDITABLE:
            out.append("edit")
        if state == JobState.OPEN:
            out.append("invite")
        return out
    if viewer.is_staff:
        return JOB_LIFECYCLE.available(state, [Actor.OPERATOR], job)
    if viewer.pro_id is not None and state == JobState.OPEN:
        return ["propose"]
    return []


# ---------------------------------------------------------------- create, edit, publish


@dataclass(frozen=True)
class CheckedJob:
    fields: CheckedFields
    plan: list[dict[str, Any]]


def check_new_job(body: JobIn) -> CheckedJob:
    """Every rule a new job follows, without writing anything (pages check before they
    store attachments). Without ``milestone_plan``, a template fills it."""
    checked = check_fields(
        category_id=body.category_id,
        place_id=body.place_id,
        budget_min=body.budget_min,
        budget_max=body.budget_max,
        currency=body.currency,
        start_date=body.start_date,
        end_date=body.end_date,
    )
    if body.template_id is not None:
        template = templates_data.get_template(body.template_id)
        if template is None:
            raise UnknownTemplateError(field="template_id")
        if body.milestone_plan is None:
            return CheckedJob(checked, templates_data.milestone_plan(template))
    return CheckedJob(checked, check_plan(body.milestone_plan or []))


async def do_create_job(session: WriteSession, principal: Principal, body: JobIn) -> Job:
    """A new job (draft, or published at once with ``publish``)."""
    valid = check_new_job(body)
    checked, plan = valid.fields, valid.plan
    attachments = list(dict.fromkeys(body.attachment_ids))
    if attachments:
        await media.do_attach(session, attachments, principal.user_id, purposes=ATTACHMENT_PURPOSES)
    now = clock.now()
    job_id = new_id()
    address = (body.address or "").strip()
    job = Job(
        id=job_id,
        client_id=principal.user_id,
        market=checked.market.code,
        title=body.title,
        description=body.description,
        category_id=body.category_id,
        place_id=body.place_id,
        lat=checked.lat,
        lon=checked.lon,
        address_enc=encrypt_address(address, job_id) if address else None,
        budget_type=body.budget_type,
        budget_min=body.budget_min,
        budget_max=body.budget_max,
        currency=body.currency,
        start_date=body.start_date,
        end_date=body.end_date,
        template_id=body.template_id,
        milestone_plan=plan,
        attachment_ids=attachments,
        state=JobState.DRAFT,
        proposals_count=0,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    await session.flush()
    await JOB_LIFECYCLE.start(session, job)
    if body.publish:
        await _publish(session, job, principal)
    return job


async def do_update_job(
    session: WriteSession, job_id: uuid.UUID, principal: Principal, patch: JobPatch
) -> Job:
    """Change a draft or open job (owner only; 409 ``job_not_editable`` afterwards)."""
    job = await _own_job(session, job_id, principal)
    if job.state not in EDITABLE:
        raise JobNotEditableError()
    sent = patch.model_fields_set
    values: dict[str, Any] = {
        name: getattr(patch, name)
        for name in sent
        if name not in ("address", "milestone_plan", "attachment_ids")
        and (getattr(patch, name) is not None or name in ("start_date", "end_date"))
    }
    merged = {
        name: values.get(name, getattr(job, name))
        for name in (
            "category_id",
            "place_id",
            "budget_min",
            "budget_max",
            "currency",
            "start_date",
            "end_date",
        )
    }
    checked = check_fields(**merged, dates=bool({"start_date", "end_date"} & sent))
    for name, value in values.items():
        setattr(job, name, value)
    job.market, job.lat, job.lon = checked.market.code, checked.lat, checked.lon
    if "address" in sent:
        address = (patch.address or "").strip()
        job.address_enc = encrypt_address(address, job.id) if address else None
    if "milestone_plan" in sent:
        job.milestone_plan = check_plan(patch.milestone_plan or [])
    if "attachment_ids" in sent and patch.attachment_ids is not None:
        attachments = list(dict.fromkeys(patch.attachment_ids))
        new = [a for a in attachments if a not in set(job.attachment_ids)]
        if new:
            await media.do_attach(session, new, principal.user_id, purposes=ATTACHMENT_PURPOSES)
        job.attachment_ids = attachments
    job.updated_at = clock.now()
    await session.flush()
    return job


async def _publish(session: WriteSession, job: Job, principal: Principal) -> None:
    _check_transition(job, "publish", Actor.CLIENT)
    check_dates(job.start_date, job.end_date, MARKETS[job.market])
    now = clock.now()
    job.published_at = now
    # Before the transition: entering ``open`` schedules the expiry timer at this time.
    job.expires_at = now + timedelta(days=get_settings().job_open_days)
    job.updated_at = now
    await JOB_LIFECYCLE.apply(
        session, job, "publish", actor=Actor.CLIENT, actor_id=principal.user_id
    )
    await session.flush()
    from mesteri.jobs.tasks import announce_lead

    await background.defer(session, announce_lead, job_id=str(job.id))


async def do_publish(session: WriteSession, job_id: uuid.UUID, principal: Principal) -> Job:
    """Draft → open: on the lead board until ``job_open_days`` pass without a hire."""
    job = await _own_job(session, job_id, principal)
    await _publish(session, job, principal)
    return job


async def do_reopen(session: WriteSession, job_id: uuid.UUID, principal: Principal) -> Job:
    """Expired → open again, for another ``job_open_days``. Desired dates that have
    passed meanwhile are dropped (the client can set new ones by editing the open job)."""
    job = await _own_job(session, job_id, principal)
    _check_transition(job, "reopen", Actor.CLIENT)
    today = _today(MARKETS[job.market])
    if job.start_date is not None and job.start_date < today:
        job.start_date = None
    if job.end_date is not None and job.end_date < today:
        job.end_date = None
    now = clock.now()
    job.published_at = now
    job.expires_at = now + timedelta(days=get_settings().job_open_days)
    job.updated_at = now
    await JOB_LIFECYCLE.apply(
        session, job, "reopen", actor=Actor.CLIENT, actor_id=principal.user_id
    )
    await session.flush()
    return job


async def do_cancel(session: WriteSession, job_id: uuid.UUID, principal: Principal) -> Job:
    """The client (or staff) withdraws a draft or open job. Its live proposals are
    declined by the proposals module, which hears ``JobClosed``."""
    job = await lock_job(session, job_id)
    if job.client_id == principal.user_id:
        actor = Actor.CLIENT
    elif principal.is_staff and principal.mfa:
        actor = Actor.OPERATOR
    else:
        raise JobNotFoundError()
    _check_transition(job, "cancel", actor)
    job.updated_at = clock.now()
    await JOB_LIFECYCLE.apply(session, job, "cancel", actor=actor, actor_id=principal.user_id)
    if actor == Actor.OPERATOR:
        audit.record(
            session,
            "job.cancelled",
            actor_id=principal.user_id,
            subject_type="job",
            subject_id=job.id,
        )
    await session.flush()
    return job


async def list_my_jobs(
    session: ReadSession,
    principal: Principal,
    *,
    state: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Job], str | None]:
    """The caller's jobs, newest first."""
    query = select(Job).where(Job.client_id == principal.user_id)
    if state:
        query = query.where(Job.state == state)
    rows = (
        await session.scalars(keyset(query, (Job.created_at, Job.id), cursor=cursor, limit=limit))
    ).all()
    return page_of(rows, ["created_at", "id"], limit)


# ---------------------------------------------------------------- hiring (other modules)


async def do_hire(session: WriteSession, job: Job, pro_id: uuid.UUID) -> None:
    """Open → in progress with ``pro_id`` hired (the job is locked by the caller, who
    accepted a proposal). Applied as the system."""
    job.hired_pro_id = pro_id
    job.updated_at = clock.now()
    await JOB_LIFECYCLE.apply(
        session, job, "hire", actor=Actor.SYSTEM, data={"pro_id": str(pro_id)}
    )
    await session.flush()


async def do_count_proposal(session: WriteSession, job_id: uuid.UUID, delta: int) -> None:
    """Move the job's proposal counter by ``delta`` atomically (never read-modify-write)."""
    await session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(proposals_count=Job.proposals_count + delta)
        .execution_options(synchronize_session="fetch")
    )


async def is_invited(session: ReadSession, job_id: uuid.UUID, pro_id: uuid.UUID) -> bool:
    """Whether the client invited this pro (profile id) to propose on the job."""
    found = await session.scalar(
        select(JobInvite.pro_id).where(JobInvite.job_id == job_id, JobInvite.pro_id == pro_id)
    )
    return found is not None


async def lead_seen_at(session: ReadSession, job: Job, pro_id: uuid.UUID) -> datetime:
    """When the pro could first see the job: its publication, or their invitation when
    that came later (an invitation to a draft is seen once it is published)."""
    invited = await session.scalar(
        select(JobInvite.created_at).where(JobInvite.job_id == job.id, JobInvite.pro_id == pro_id)
    )
    published = job.published_at or job.created_at
    return max(published, invited) if invited is not None else published


@events.subscribe(ContractEnded)
async def on_contract_ended(session: Any, event: ContractEnded) -> None:
    """The contract of a job in progress ended: ``completed`` completes the job,
    ``cancelled`` cancels it, ``withdrawn`` (before both signed) reopens it for other
    proposals, with a fresh open period. Idempotent: a job that already left
    ``in_progress`` is left alone."""
    job = await session.get(Job, event.job_id, with_for_update=True, populate_existing=True)
    if job is None or job.state != JobState.IN_PROGRESS:
        return
    now = clock.now()
    data = {"contract_id": str(event.contract_id)}
    if event.outcome == "completed":
        job.updated_at = now
        await JOB_LIFECYCLE.apply(session, job, "complete", actor=Actor.SYSTEM, data=data)
    elif event.outcome == "cancelled":
        job.updated_at = now
        await JOB_LIFECYCLE.apply(session, job, "cancel", actor=Actor.SYSTEM, data=data)
    elif event.outcome == "withdrawn":
        job.hired_pro_id = None
        job.expires_at = now + timedelta(days=get_settings().job_open_days)
        job.updated_at = now
        await JOB_LIFECYCLE.apply(session, job, "reopen", actor=Actor.SYSTEM, data=data)
    await session.flush()


@events.subscribe(JobClosed)
async def on_job_closed(session: Any, event: JobClosed) -> None:
    """Tell the client when their job expired unanswered, with the way to reopen it."""
    if event.reason != "expired":
        return
    job = await session.get(Job, event.job_id)
    if job is None:
        return
    await notifications.do_notify(
        session,
        job.client_id,
        kind="job.expired",
        subject=lazy("Your job “{title}” expired"),
        body=lazy(
            "Your job “{title}” was open for {days} days without a hire, so it left the "
            "lead board. You can reopen it here."
        ),
        title=job.title,
        days=get_settings().job_open_days,
        link=f"/jobs/{job.id}",
    )


# A new job is announced to at most this many matching pros, the nearest first: enough
# for competing proposals, few enough that a lead stays worth reading.
LEAD_ALERTS = 50


async def do_announce_lead(session: WriteSession, job_id: uuid.UUID) -> int:
    """Tell the nearest pros who would see a newly published job on their lead board
    (once per job and pro). How many were told."""
    job = await session.get(Job, job_id)
    if job is None or job.state != JobState.OPEN:
        return 0
    matching = await pros.pros_for_lead(
        session,
        category_id=job.category_id,
        lat=job.lat,
        lon=job.lon,
        market=job.market,
        limit=LEAD_ALERTS,
    )
    budget = Money(job.budget_max, job.currency).format(MARKETS[job.market].default_language)
    told = 0
    for _profile_id, user_id in matching:
        if user_id == job.client_id:
            continue
        told += bool(
            await notifications.do_notify(
                session,
                user_id,
                "lead.new",
                subject=lazy("New job near you: {title}"),
                body=lazy("{place}, up to {budget}. Send a proposal while the client compares."),
                link=f"/jobs/{job.id}",
                dedupe_key=f"lead.new:{job.id}",
                title=job.title,
                place=place_ref(job.place_id)["name"],
                budget=budget,
            )
        )
    return told


# ---------------------------------------------------------------- invites


async def do_invite(
    session: WriteSession,
    job_id: uuid.UUID,
    principal: Principal,
    pro_ids: Sequence[uuid.UUID],
    message: str = "",
) -> list[uuid.UUID]:
    """Invite listed pros to propose on an open job. Idempotent per pro: only pros not
    invited before are e-mailed. Returns the newly invited pro ids."""
    job = await _own_job(session, job_id, principal)
    check_open(job)
    profiles: list[ProProfile] = []
    for pro_id in dict.fromkeys(pro_ids):
        try:
            profile = await pros.access_profile(session, pro_id)
        except ProNotFoundError as exc:
            raise InvalidInviteeError(field="pro_ids") from exc
        if profile.user_id == principal.user_id:
            raise InvalidInviteeError(field="pro_ids")
        profiles.append(profile)
    now = clock.now()
    message = message.strip()
    result = await session.execute(
        insert(JobInvite)
        .values(
            [
                {"job_id": job.id, "pro_id": p.id, "message": message, "created_at": now}
                for p in profiles
            ]
        )
        .on_conflict_do_nothing()
        .returning(JobInvite.pro_id)
    )
    new = set(result.scalars().all())
    link = f"/jobs/{job.id}"
    for profile in profiles:
        if profile.id not in new:
            continue
        await events.publish(
            session, ProInvited(job.id, job.client_id, profile.id, profile.user_id, message)
        )
        await notifications.do_notify(
            session,
            profile.user_id,
            kind="job.invited",
            subject=lazy("You are invited to propose: {title}"),
            body=lazy(
                "A client on Mesteri would like your proposal for “{title}” in {place}. {message}"
            ),
            title=job.title,
            place=place_ref(job.place_id)["name"],
            message=message,
            link=link,
        )
    return [p.id for p in profiles if p.id in new]


@dataclass(frozen=True)
class InviteRow:
    pro_id: uuid.UUID
    display_name: str
    message: str
    created_at: datetime


async def list_invites(
    session: ReadSession, job_id: uuid.UUID, principal: Principal
) -> list[InviteRow]:
    """The pros the owner invited (owner only)."""
    job = await session.get(Job, job_id)
    if job is None or job.client_id != principal.user_id:
        raise JobNotFoundError()
    rows = await session.execute(
        select(JobInvite, ProProfile.display_name)
        .join(ProProfile, ProProfile.id == JobInvite.pro_id)
        .where(JobInvite.job_id == job_id)
        .order_by(JobInvite.created_at, JobInvite.pro_id)
    )
    return [
        InviteRow(invite.pro_id, name, invite.message, invite.created_at) for invite, name in rows
    ]


# ---------------------------------------------------------------- contact details (SPEC 4.4)


@dataclass(frozen=True)
class ContactDetails:
    first_name: str
    last_name: str
    email: str | None
    phone: str | None
    address: str | None


def _staff_role(principal: Principal) -> str:
    for role in ("admin", "support", "finance"):
        if role in principal.roles:
            return role
    return "staff"


async def do_reveal_contact(
    session: WriteSession, job_id: uuid.UUID, principal: Principal, client: ClientInfo
) -> ContactDetails:
    """The client's name, e-mail, phone and exact address, for the client themself, the
    hired pro, and staff who proved a second factor. Every reveal is logged
    (``contact_reveals``: who, what, when, IP, user agent); anyone else gets 403
    ``contact_forbidden`` and nothing is written."""
    job = await session.get(Job, job_id)
    if job is None:
        raise JobNotFoundError()
    role: str | None = None
    if job.client_id == principal.user_id:
        role = "client"
    elif job.hired_pro_id is not None and (
        await pros.pro_id_of(session, principal.user_id) == job.hired_pro_id
    ):
        role = "pro"
    elif principal.is_staff and principal.mfa:
        role = _staff_role(principal)
    if role is None:
        raise ContactForbiddenError()
    contact = await accounts.contact_of(session, job.client_id)
    if contact is None:  # the client deleted their account
        raise JobNotFoundError()
    details = ContactDetails(
        first_name=contact.first_name,
        last_name=contact.last_name,
        email=contact.email,
        phone=contact.phone,
        address=decrypt_address(job),
    )
    fields = [name for name in CONTACT_FIELDS if getattr(details, name)]
    session.add(
        ContactReveal(
            id=new_id(),
            job_id=job.id,
            subject_id=job.client_id,
            viewer_id=principal.user_id,
            viewer_role=role,
            fields=fields,
            ip=client.ip,
            user_agent=(client.user_agent or "")[:400] or None,
            at=clock.now(),
        )
    )
    if role not in ("client", "pro"):
        audit.record(
            session,
            "job.contact_viewed",
            actor_id=principal.user_id,
            subject_type="job",
            subject_id=job.id,
            ip=client.ip,
            user_agent=client.user_agent,
            fields=fields,
        )
    await session.flush()
    return details


@dataclass(frozen=True)
class RevealRow:
    id: uuid.UUID
    viewer_id: uuid.UUID
    viewer_name: str
    viewer_role: str
    fields: list[str]
    at: datetime


async def list_contact_reveals(
    session: ReadSession, job_id: uuid.UUID, principal: Principal, *, limit: int = 200
) -> list[RevealRow]:
    """Who saw the client's contact details, newest first (the owner and staff)."""
    job = await session.get(Job, job_id)
    if job is None or not (
        job.client_id == principal.user_id or (principal.is_staff and principal.mfa)
    ):
        raise JobNotFoundError()
    rows = (
        await session.scalars(
            select(ContactReveal)
            .where(ContactReveal.job_id == job_id)
            .order_by(ContactReveal.at.desc(), ContactReveal.id.desc())
            .limit(limit)
        )
    ).all()
    names = await client_names(session, [r.viewer_id for r in rows])
    return [
        RevealRow(r.id, r.viewer_id, names.get(r.viewer_id, ""), r.viewer_role, r.fields, r.at)
        for r in rows
    ]
