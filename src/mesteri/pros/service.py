"""Rules of the pros domain: profiles, crafts, portfolio, verification, saved pros,
client profiles and search history. Services flush; the request owns the transaction.

Other modules ask this one through its functions only, e.g. payments calls
``is_verified_pro`` before paid proposals and payouts.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select, text, update
from sqlalchemy.dialects.postgresql import insert

from mesteri.accounts.models import Role, User
from mesteri.accounts.service import ClientInfo, Principal, check_staff
from mesteri.catalog import service as catalog
from mesteri.config import SUPPORTED_LANGUAGES, get_settings
from mesteri.kit import audit, clock
from mesteri.kit.db import ReadSession, WriteSession
from mesteri.kit.errors import InvalidInputError
from mesteri.kit.i18n import lazy
from mesteri.kit.ids import new_id
from mesteri.kit.pagination import keyset, page_of
from mesteri.kit.statemachine import Actor
from mesteri.kit.text import clean_text, fold
from mesteri.media import service as media
from mesteri.notifications import service as notifications
from mesteri.pros.errors import (
    AddressNotFoundError,
    BusinessIdRequiredError,
    CertificateRequiredError,
    DocumentsRequiredError,
    InvalidBusinessIdError,
    InvalidBusinessTypeError,
    InvalidCraftsError,
    InvalidLanguageError,
    InvalidRateError,
    NoProProfileError,
    NotAProError,
    ProfileIncompleteError,
    ProNotFoundError,
    RejectionReasonRequiredError,
    SubmissionNotFoundError,
    TooManyAddressesError,
)
from mesteri.pros.lifecycles import VERIFICATION_LIFECYCLE
from mesteri.pros.models import (
    Availability,
    ClientProfile,
    PortfolioItem,
    ProCraft,
    ProProfile,
    ProviderCheck,
    SavedPro,
    SearchHistoryEntry,
    SubmissionState,
    VerificationState,
    VerificationSubmission,
)
from mesteri.pros.schemas import (
    MAX_ADDRESSES,
    AddressIn,
    AddressOut,
    ClientProfilePatch,
    PortfolioIn,
    ProPatch,
    VerificationIn,
)

BUSINESS_TYPES = {
    "ro": ("pfa", "ii", "srl", "individual"),
    "il": ("osek_patur", "osek_murshe", "company", "individual"),
}
# Types that are registered businesses and so need a business id with a check digit.
REGISTERED = frozenset({"pfa", "ii", "srl", "osek_patur", "osek_murshe", "company"})
SPOKEN_LANGUAGES = frozenset({*SUPPORTED_LANGUAGES, "de", "fr", "it", "es", "ru", "ar", "uk"})
MAX_OTHER_CRAFTS = 9


# ---------------------------------------------------------------- checks


def check_business(business_type: str | None, business_id: str | None) -> str | None:
    """Validate the business type for the market and the id's check digit; returns the id
    normalised (no ``RO`` prefix, no spaces)."""
    market = get_settings().market_profile
    if business_type is not None and business_type not in BUSINESS_TYPES[market.code]:
        raise InvalidBusinessTypeError(field="business_type")
    if business_id:
        normalised = business_id.strip().upper().replace(" ", "").replace("-", "")
        normalised = normalised.removeprefix("RO") if market.code == "ro" else normalised
        if not market.business_id_valid(normalised):
            raise InvalidBusinessIdError(field="business_id", name=market.business_id_name)
        return normalised
    if business_type in REGISTERED:
        raise BusinessIdRequiredError(field="business_id", name=market.business_id_name)
    return None


def _check_crafts(crafts: Sequence[Any]) -> None:
    primaries = [c for c in crafts if c.primary]
    ids = [c.category_id for c in crafts]
    if (
        len(primaries) != 1
        or len(crafts) > MAX_OTHER_CRAFTS + 1
        or len(set(ids)) != len(ids)
        or not all(catalog.is_category(i) for i in ids)
    ):
        raise InvalidCraftsError(field="crafts")


# ---------------------------------------------------------------- profiles


async def access_own_profile(session: ReadSession, user_id: uuid.UUID) -> ProProfile:
    profile = await session.scalar(select(ProProfile).where(ProProfile.user_id == user_id))
    if profile is None:
        raise NoProProfileError()
    return profile


async def access_profile(session: ReadSession, pro_id: uuid.UUID) -> ProProfile:
    profile = await session.get(ProProfile, pro_id)
    if profile is None or not profile.listed:
        raise ProNotFoundError()
    return profile


async def listed_profiles(
    session: ReadSession, pro_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, ProProfile]:
    """The listed profiles among these ids, in one query (cards in other modules' lists)."""
    ids = set(pro_ids)
    if not ids:
        return {}
    rows = await session.scalars(
        select(ProProfile).where(ProProfile.id.in_(ids), ProProfile.listed)
    )
    return {profile.id: profile for profile in rows}


async def pros_for_lead(
    session: ReadSession,
    *,
    category_id: uuid.UUID,
    lat: float,
    lon: float,
    market: str,
    limit: int = 200,
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(profile id, user id) of the verified pros who would see this job on their lead
    board: one of their crafts is the job's category or above it, and the job lies in
    their service area; the nearest first, at most ``limit``."""
    from mesteri.pros.search import haversine_sql

    categories = [category_id, *catalog.ancestors(category_id)]
    distance = haversine_sql(lat, lon)
    rows = await session.execute(
        select(ProProfile.id, ProProfile.user_id)
        .where(
            ProProfile.listed,
            ProProfile.market == market,
            ProProfile.verification_state == VerificationState.VERIFIED,
            ProProfile.availability != Availability.VACATION,
            ProProfile.category_ids.overlap(categories),
            ProProfile.lat.is_not(None),
            distance <= ProProfile.radius_km,
        )
        .order_by(distance)
        .limit(limit)
    )
    return [(row.id, row.user_id) for row in rows]


async def display_names(session: ReadSession, pro_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Public names of these pros, listed or not (names in conversations), in one query."""
    ids = set(pro_ids)
    if not ids:
        return {}
    rows = await session.execute(
        select(ProProfile.id, ProProfile.display_name).where(ProProfile.id.in_(ids))
    )
    return {row.id: row.display_name for row in rows}


async def list_crafts(session: ReadSession, pro_id: uuid.UUID) -> Sequence[ProCraft]:
    query = select(ProCraft).where(ProCraft.pro_id == pro_id)
    return (await session.scalars(query.order_by(ProCraft.primary.desc()))).all()


def _search_text(profile: ProProfile, craft_ids: Sequence[uuid.UUID]) -> str:
    names: list[str] = []
    for cid in craft_ids:
        for ref in (cid, *catalog.ancestors(cid)):
            names.extend(catalog.get_category(ref).names.values())
    return " ".join([*dict.fromkeys(names), profile.bio])


def _refresh_listing(profile: ProProfile, craft_ids: Sequence[uuid.UUID]) -> None:
    profile.category_ids = list(craft_ids)
    profile.search_text = _search_text(profile, craft_ids)
    profile.name_key = fold(profile.display_name)
    profile.listed = bool(
        profile.display_name and profile.primary_category_id and profile.lat is not None
    )


async def do_update_profile(session: WriteSession, user: User, patch: ProPatch) -> ProProfile:
    """Create or change the caller's pro profile (``PATCH /pros/me``)."""
    if Role.PRO not in user.roles:
        raise NotAProError()
    settings = get_settings()
    now = clock.now()
    profile = await session.scalar(
        select(ProProfile).where(ProProfile.user_id == user.id).with_for_update()
    )
    if profile is None:
        profile = ProProfile(
            id=new_id(),
            user_id=user.id,
            market=settings.market,
            display_name=f"{user.first_name} {user.last_name[:1]}.".strip(),
            name_key="",
            bio="",
            radius_km=25,
            currency=settings.market_profile.currency,
            availability="available",
            languages=[user.language],
            certifications=[],
            badges=[],
            category_ids=[],
            verification_state=VerificationState.NONE,
            listed=False,
            reviews_count=0,
            rating_weighted_sum=0.0,
            rating_weight=0.0,
            delivery_score=0.0,
            portfolio_count=0,
            tier="standard",
            search_text="",
            created_at=now,
            updated_at=now,
        )
        session.add(profile)
    fields = patch.model_fields_set
    verified_before = (profile.business_type, profile.business_id)
    if "business_type" in fields or "business_id" in fields:
        btype = patch.business_type if "business_type" in fields else profile.business_type
        bid = patch.business_id if "business_id" in fields else profile.business_id
        profile.business_id = check_business(btype, bid)
        profile.business_type = btype
    if patch.display_name is not None:
        profile.display_name = patch.display_name.strip()
    if patch.bio is not None:
        profile.bio = patch.bio.strip()
    if "place_id" in fields and patch.place_id is not None:
        profile.lat, profile.lon = catalog.place_coordinates(patch.place_id)
        profile.place_id = patch.place_id
    if patch.radius_km is not None:
        profile.radius_km = patch.radius_km
    if "rate_min" in fields:
        profile.rate_min = patch.rate_min
    if "rate_max" in fields:
        profile.rate_max = patch.rate_max
    if (
        profile.rate_min is not None
        and profile.rate_max is not None
        and profile.rate_min > profile.rate_max
    ):
        raise InvalidRateError(field="rate_max")
    if patch.languages is not None:
        langs = [lang.lower() for lang in patch.languages]
        if not set(langs) <= SPOKEN_LANGUAGES:
            raise InvalidLanguageError(field="languages")
        profile.languages = list(dict.fromkeys(langs))
    if patch.certifications is not None:
        profile.certifications = [c.model_dump() for c in patch.certifications]
    if "insurance" in fields:
        profile.insurance = patch.insurance.model_dump() if patch.insurance else None
    await session.flush()
    if patch.crafts is not None:
        _check_crafts(patch.crafts)
        await session.execute(delete(ProCraft).where(ProCraft.pro_id == profile.id))
        session.add_all(
            ProCraft(pro_id=profile.id, category_id=c.category_id, primary=c.primary, years=c.years)
            for c in patch.crafts
        )
        profile.primary_category_id = next(c.category_id for c in patch.crafts if c.primary)
        craft_ids = [c.category_id for c in sorted(patch.crafts, key=lambda c: not c.primary)]
    else:
        craft_ids = list(profile.category_ids)
    _refresh_listing(profile, craft_ids)
    profile.updated_at = now
    if (
        profile.verification_state == VerificationState.VERIFIED
        and (profile.business_type, profile.business_id) != verified_before
    ):
        await _reverify(session, profile)
    await do_refresh_rank(session, profile.id)
    return profile


async def do_set_availability(session: WriteSession, user_id: uuid.UUID, value: str) -> ProProfile:
    profile = await access_own_profile(session, user_id)
    profile.availability = value
    profile.updated_at = clock.now()
    await do_refresh_rank(session, profile.id)
    return profile


async def do_refresh_rank(session: WriteSession, pro_id: uuid.UUID | None = None) -> None:
    """Recompute the search data of one pro, or of every pro (daily job: promotions
    expire, weights may have changed): ``rank_base`` (the query-independent part of the
    score) and the pro's rows in the search index (``pro_search_entries``)."""
    from mesteri.pros.search import portfolio_categories_sql, rating_score_sql, static_score_sql

    await session.flush()
    settings = get_settings()
    stmt = update(ProProfile).values(
        portfolio_category_ids=portfolio_categories_sql(),
        rank_base=static_score_sql(settings),
        rating_rank=rating_score_sql(settings),
    )
    if pro_id is not None:
        stmt = stmt.where(ProProfile.id == pro_id)
    await session.execute(stmt.execution_options(synchronize_session=False))
    await session.execute(
        text(REINDEX_DELETE + (" WHERE pro_id = :id" if pro_id else "")),
        {"id": pro_id} if pro_id else {},
    )
    await session.execute(
        text(REINDEX_INSERT + (" AND p.id = :id" if pro_id else "") + REINDEX_CONFLICT),
        {"id": pro_id} if pro_id else {},
    )


REINDEX_DELETE = "DELETE FROM pro_search_entries"
REINDEX_INSERT = (
    "INSERT INTO pro_search_entries (pro_id, category_id, geo_cell, rank_base, rating_rank,"
    " price_key, market, lat, lon, search_vector, rating_avg, rate_min, availability,"
    " verification_state, languages)"
    " SELECT p.id, c.category_id,"
    " (floor((p.lat + 90) * 2)::int * 1000 + floor((p.lon + 180) * 2)::int),"  # GEO_CELL_SQL
    " p.rank_base, p.rating_rank, p.price_key,"
    " p.market, p.lat, p.lon, p.search_vector, p.rating_avg, p.rate_min,"
    " p.availability, p.verification_state, p.languages"
    " FROM pro_profiles AS p CROSS JOIN LATERAL unnest(p.category_ids) AS c(category_id)"
    " WHERE p.listed AND p.lat IS NOT NULL AND p.lon IS NOT NULL"
)
REINDEX_CONFLICT = " ON CONFLICT DO NOTHING"


@dataclass(frozen=True)
class ReputationFigures:
    """What search and cards read from a pro's reputation (kept by the reviews module)."""

    rating_avg: float | None
    reviews_count: int
    rating_weighted_sum: float  # epoch-relative recency weights (kit.recency)
    rating_weight: float
    delivery_score: float


async def do_set_reputation(
    session: WriteSession, pro_id: uuid.UUID, figures: ReputationFigures
) -> None:
    await session.execute(
        update(ProProfile)
        .where(ProProfile.id == pro_id)
        .values(**asdict(figures))
        .execution_options(synchronize_session=False)
    )
    await do_refresh_rank(session, pro_id)


def is_verified(profile: ProProfile) -> bool:
    return profile.verification_state == VerificationState.VERIFIED


async def is_verified_pro(session: ReadSession, user_id: uuid.UUID) -> bool:
    """For other modules (payments: payouts and paid proposals need a verified pro)."""
    state = await session.scalar(
        select(ProProfile.verification_state).where(ProProfile.user_id == user_id)
    )
    return state == VerificationState.VERIFIED


async def pro_id_of(session: ReadSession, user_id: uuid.UUID) -> uuid.UUID | None:
    return await session.scalar(select(ProProfile.id).where(ProProfile.user_id == user_id))


# ---------------------------------------------------------------- portfolio


async def list_portfolio(session: ReadSession, pro_id: uuid.UUID) -> Sequence[PortfolioItem]:
    query = select(PortfolioItem).where(PortfolioItem.pro_id == pro_id)
    return (await session.scalars(query.order_by(PortfolioItem.created_at.desc()))).all()


async def do_add_portfolio_item(
    session: WriteSession, user_id: uuid.UUID, item: PortfolioIn
) -> PortfolioItem:
    profile = await access_own_profile(session, user_id)
    ids = [item.media_id, *([item.after_media_id] if item.after_media_id else [])]
    await media.do_attach(session, ids, user_id, purposes=frozenset({"portfolio"}))
    if item.category_id is not None and not catalog.is_category(item.category_id):
        raise InvalidInputError(field="category_id")
    row = PortfolioItem(
        id=new_id(),
        pro_id=profile.id,
        media_id=item.media_id,
        after_media_id=item.after_media_id,
        caption=item.caption.strip(),
        category_id=item.category_id,
        created_at=clock.now(),
    )
    session.add(row)
    await session.execute(
        update(ProProfile)
        .where(ProProfile.id == profile.id)
        .values(portfolio_count=ProProfile.portfolio_count + 1)
    )
    await do_refresh_rank(session, profile.id)
    return row


# ---------------------------------------------------------------- verification


async def latest_submission(
    session: ReadSession, pro_id: uuid.UUID
) -> VerificationSubmission | None:
    query = (
        select(VerificationSubmission)
        .where(VerificationSubmission.pro_id == pro_id)
        .order_by(VerificationSubmission.submitted_at.desc(), VerificationSubmission.id.desc())
        .limit(1)
    )
    return await session.scalar(query)


async def _reverify(session: WriteSession, profile: ProProfile) -> None:
    """Verified details changed: back to pending until staff look again."""
    current = await latest_submission(session, profile.id)
    if current is not None and current.state == SubmissionState.VERIFIED:
        await VERIFICATION_LIFECYCLE.apply(
            session, current, "reverify", actor=Actor.SYSTEM, data={"reason": "details_changed"}
        )
        current.business_type, current.business_id = profile.business_type, profile.business_id
        current.decided_at, current.decided_by = None, None
    profile.verification_state = VerificationState.PENDING
    profile.verified_at = None
    audit.record(
        session,
        "verification.reverify",
        actor_id=profile.user_id,
        subject_type="pro",
        subject_id=profile.id,
    )


async def do_submit_verification(
    session: WriteSession, user_id: uuid.UUID, body: VerificationIn, client: ClientInfo
) -> VerificationSubmission:
    profile = await session.scalar(
        select(ProProfile).where(ProProfile.user_id == user_id).with_for_update()
    )
    if profile is None:
        raise NoProProfileError()
    if not profile.listed:
        raise ProfileIncompleteError()
    uploads = await media.do_attach(
        session, body.document_ids, user_id, purposes=media.DOCUMENT_PURPOSES
    )
    purposes = {u.purpose for u in uploads}
    if body.kind == "kyc" and "id_document" not in purposes:
        raise DocumentsRequiredError(field="document_ids")
    business_id = None
    if body.kind == "kyb":
        if "registration_certificate" not in purposes:
            raise CertificateRequiredError(field="document_ids")
        business_id = check_business(body.business_type or profile.business_type, body.business_id)
        if business_id is None:
            raise BusinessIdRequiredError(
                field="business_id", name=get_settings().market_profile.business_id_name
            )
        profile.business_type = body.business_type or profile.business_type
        profile.business_id = business_id
    current = await latest_submission(session, profile.id)
    if current is not None and current.state != SubmissionState.SUPERSEDED:
        await VERIFICATION_LIFECYCLE.apply(session, current, "supersede", actor=Actor.SYSTEM)
    submission = VerificationSubmission(
        id=new_id(),
        pro_id=profile.id,
        state=SubmissionState.PENDING,
        kind=body.kind,
        legal_name=body.legal_name.strip(),
        business_type=profile.business_type,
        business_id=business_id or profile.business_id,
        document_ids=[u.id for u in uploads],
        submitted_at=clock.now(),
    )
    session.add(submission)
    check, gated = await _provider_check(session, user_id)
    # Pending until staff decide, unless the provider already refused the account.
    profile.verification_state = combined_state(submission.state, check, gated=gated)
    profile.verified_at = None
    audit.record(
        session,
        "verification.submitted",
        actor_id=user_id,
        subject_type="verification",
        subject_id=submission.id,
        ip=client.ip,
        user_agent=client.user_agent,
        kind=body.kind,
    )
    await do_refresh_rank(session, profile.id)
    return submission


async def list_verification_queue(
    session: ReadSession, *, state: str = "pending", cursor: str | None, limit: int
) -> tuple[list[tuple[VerificationSubmission, ProProfile]], str | None]:
    query = select(VerificationSubmission).where(VerificationSubmission.state == state)
    keys = (VerificationSubmission.submitted_at, VerificationSubmission.id)
    rows = (
        await session.scalars(
            keyset(query, keys, cursor=cursor, limit=limit, descending=state != "pending")
        )
    ).all()
    items, next_cursor = page_of(rows, ["submitted_at", "id"], limit)
    pros = {
        p.id: p
        for p in (
            await session.scalars(
                select(ProProfile).where(ProProfile.id.in_([s.pro_id for s in items]))
            )
        ).all()
    }
    return [(s, pros[s.pro_id]) for s in items], next_cursor


async def access_submission_for_staff(
    session: WriteSession, submission_id: uuid.UUID, principal: Principal, client: ClientInfo
) -> tuple[VerificationSubmission, ProProfile]:
    """A submission with its documents' ids, for staff; every view is audited."""
    check_staff(principal)
    submission = await session.get(VerificationSubmission, submission_id)
    if submission is None:
        raise SubmissionNotFoundError()
    profile = await session.get(ProProfile, submission.pro_id)
    assert profile is not None
    audit.record(
        session,
        "verification.viewed",
        actor_id=principal.user_id,
        subject_type="verification",
        subject_id=submission.id,
        ip=client.ip,
        user_agent=client.user_agent,
    )
    return submission, profile


async def do_decide(
    session: WriteSession,
    submission_id: uuid.UUID,
    principal: Principal,
    client: ClientInfo,
    *,
    approve: bool,
    reason: str | None = None,
) -> VerificationSubmission:
    check_staff(principal)
    submission = await session.get(VerificationSubmission, submission_id, with_for_update=True)
    if submission is None:
        raise SubmissionNotFoundError()
    reason = clean_text(reason or "").strip() or None
    if not approve and not reason:
        raise RejectionReasonRequiredError(field="reason")
    profile = await session.get(ProProfile, submission.pro_id, with_for_update=True)
    assert profile is not None
    name = "approve" if approve else "reject"
    await VERIFICATION_LIFECYCLE.apply(
        session,
        submission,
        name,
        actor=Actor.OPERATOR,
        actor_id=principal.user_id,
        data={"reason": reason} if reason else None,
    )
    now = clock.now()
    submission.decided_at, submission.decided_by = now, principal.user_id
    submission.reason = None if approve else (reason or "").strip()
    check, gated = await _provider_check(session, profile.user_id)
    profile.verification_state = combined_state(submission.state, check, gated=gated)
    profile.verified_at = now if profile.verification_state == VerificationState.VERIFIED else None
    profile.updated_at = now
    await media.do_schedule_deletion(
        session,
        submission.document_ids,
        timedelta(days=get_settings().verification_document_days),
    )
    await _notify_decision(
        session,
        profile,
        approve=approve,
        reason=submission.reason,
        awaiting_provider=approve and profile.verification_state != VerificationState.VERIFIED,
    )
    audit.record(
        session,
        f"verification.{'approved' if approve else 'rejected'}",
        actor_id=principal.user_id,
        subject_type="verification",
        subject_id=submission.id,
        ip=client.ip,
        user_agent=client.user_agent,
        pro_id=str(profile.id),
        **({"reason": submission.reason} if not approve else {}),
    )
    await do_refresh_rank(session, profile.id)
    return submission


async def _notify_decision(
    session: WriteSession,
    profile: ProProfile,
    *,
    approve: bool,
    reason: str | None,
    awaiting_provider: bool = False,
) -> None:
    """Tell the pro, in their language (delivered after commit by the worker)."""
    if awaiting_provider:
        subject = lazy("Your documents were accepted")
        body = lazy(
            "Our team accepted your documents. To be verified, finish the payment "
            "provider's account setup too."
        )
    elif approve:
        subject = lazy("You are verified on Mesteri")
        body = lazy("Your documents were checked and your profile now shows the Verified badge.")
    else:
        subject = lazy("Your Mesteri verification was not accepted")
        body = lazy("We could not verify your profile: {reason} Please send new documents.")
    await notifications.do_notify(
        session,
        profile.user_id,
        "verification.decided",
        subject=subject,
        body=body,
        link="/pro/onboarding#step-verification",
        reason=reason or "",
    )


# ---------------------------------------------------------------- provider checks
#
# The badge needs both sides (docs/architecture.md, "Verification"): our staff approve the
# documents, and, when the installed payment provider checks identity itself (Stripe
# Connect), its onboarding has nothing outstanding. Either side's rejection rejects.


def combined_state(
    staff: str | None, check: ProviderCheck | None, *, gated: bool
) -> VerificationState:
    """The profile's badge state from the latest staff decision (a submission state, or
    ``None``) and the provider's verdict (``gated``: the provider must agree)."""
    provider = check.status if gated and check is not None else None
    if provider == "rejected" or staff == SubmissionState.REJECTED:
        return VerificationState.REJECTED
    if staff == SubmissionState.VERIFIED:
        if not gated or provider == "verified":
            return VerificationState.VERIFIED
        return VerificationState.PENDING  # approved by us, the provider still needs things
    if staff == SubmissionState.PENDING:
        return VerificationState.PENDING
    return VerificationState.NONE


async def _provider_check(
    session: ReadSession, user_id: uuid.UUID
) -> tuple[ProviderCheck | None, bool]:
    """The installed provider's verdict on this user (if it reported one) and whether the
    provider must agree before the pro is verified."""
    from mesteri.payments import service as payments  # payments depends on this module

    provider = payments.identity_provider()
    if provider is None:
        return await session.get(ProviderCheck, user_id), False
    check = await session.get(ProviderCheck, user_id)
    return (check if check is not None and check.provider == provider else None), True


@dataclass(frozen=True)
class ProviderReport:
    """What the provider's onboarding reported (``payments.events.PayoutAccountChanged``)."""

    user_id: uuid.UUID
    provider: str
    checks_identity: bool
    status: str
    requirements_due: Sequence[str]
    past_due: Sequence[str]
    disabled_reason: str | None
    observed_at: int


async def do_record_provider_check(session: WriteSession, report: ProviderReport) -> None:
    """Keep the provider's latest verdict and re-derive the pro's badge state from it.
    Idempotent: a replayed or older report changes nothing."""
    now = clock.now()
    values = {
        "provider": report.provider,
        "checks_identity": report.checks_identity,
        "status": report.status,
        "requirements_due": list(report.requirements_due),
        "past_due": list(report.past_due),
        "disabled_reason": report.disabled_reason,
        "observed_at": report.observed_at,
        "updated_at": now,
    }
    stmt = insert(ProviderCheck).values(user_id=report.user_id, **values)
    stmt = stmt.on_conflict_do_update(
        index_elements=[ProviderCheck.user_id],
        set_=values,
        # A different provider's report replaces the old one; the same provider's only
        # when it is not older (providers deliver out of order).
        where=(ProviderCheck.provider != report.provider)
        | (ProviderCheck.observed_at <= report.observed_at),
    )
    await session.execute(stmt.execution_options(synchronize_session=False))
    await session.flush()
    await _apply_provider_check(session, report.user_id, report.observed_at)


async def _apply_provider_check(
    session: WriteSession, user_id: uuid.UUID, observed_at: int
) -> None:
    profile = await session.scalar(
        select(ProProfile).where(ProProfile.user_id == user_id).with_for_update()
    )
    if profile is None:
        return  # no profile yet: the check is applied when staff decide
    check, gated = await _provider_check(session, user_id)
    if not gated:
        return  # this provider checks no identity: our staff's decision alone counts
    if check is not None:
        await session.refresh(check)  # the upsert bypassed the identity map
    submission = await latest_submission(session, profile.id)
    before = profile.verification_state
    after = combined_state(submission.state if submission else None, check, gated=gated)
    if after == before:
        return
    profile.verification_state = after
    profile.verified_at = clock.now() if after == VerificationState.VERIFIED else None
    profile.updated_at = clock.now()
    audit.record(
        session,
        "verification.provider_changed",
        actor_id=None,
        subject_type="pro",
        subject_id=profile.id,
        before=before,
        after=after,
        provider=check.provider if check else "",
    )
    await _notify_provider_change(
        session, profile, before=before, after=after, dedupe=f"{after}:{observed_at}"
    )
    await do_refresh_rank(session, profile.id)


async def _notify_provider_change(
    session: WriteSession, profile: ProProfile, *, before: str, after: str, dedupe: str
) -> None:
    if after == VerificationState.VERIFIED:
        subject = lazy("You are verified on Mesteri")
        body = lazy("The payment provider confirmed your account; your profile shows the badge.")
    elif after == VerificationState.REJECTED:
        subject = lazy("Your Mesteri verification was not accepted")
        body = lazy("The payment provider could not verify your account.")
    elif before == VerificationState.VERIFIED:
        subject = lazy("The payment provider needs more information")
        body = lazy("Until you give it, clients cannot hire you for paid work.")
    else:
        return
    await notifications.do_notify(
        session,
        profile.user_id,
        "verification.provider",
        subject=subject,
        body=body,
        link="/pro/onboarding#step-verification",
        dedupe_key=f"verification.provider:{profile.id}:{dedupe}",
    )


@dataclass(frozen=True)
class VerificationStatus:
    """The pro's whole verification picture: our review and the provider's onboarding."""

    submission: VerificationSubmission | None
    state: str  # the profile's badge state (combined_state)
    provider_required: bool  # the installed provider must agree (it checks identity)
    provider_check: ProviderCheck | None


async def verification_status(session: ReadSession, profile: ProProfile) -> VerificationStatus:
    check, gated = await _provider_check(session, profile.user_id)
    return VerificationStatus(
        submission=await latest_submission(session, profile.id),
        state=profile.verification_state,
        provider_required=gated,
        provider_check=check,
    )


# ---------------------------------------------------------------- saved pros, client profile


async def do_save_pro(session: WriteSession, user_id: uuid.UUID, pro_id: uuid.UUID) -> None:
    await access_profile(session, pro_id)
    await session.execute(
        insert(SavedPro)
        .values(user_id=user_id, pro_id=pro_id, created_at=clock.now())
        .on_conflict_do_nothing()
    )


async def do_unsave_pro(session: WriteSession, user_id: uuid.UUID, pro_id: uuid.UUID) -> None:
    await session.execute(
        delete(SavedPro).where(SavedPro.user_id == user_id, SavedPro.pro_id == pro_id)
    )


async def list_saved(session: ReadSession, user_id: uuid.UUID) -> Sequence[ProProfile]:
    query = (
        select(ProProfile)
        .join(SavedPro, SavedPro.pro_id == ProProfile.id)
        .where(SavedPro.user_id == user_id)
        .order_by(SavedPro.created_at.desc())
        .limit(200)
    )
    return (await session.scalars(query)).all()


async def saved_ids(session: ReadSession, user_id: uuid.UUID) -> set[uuid.UUID]:
    rows = await session.scalars(select(SavedPro.pro_id).where(SavedPro.user_id == user_id))
    return set(rows.all())


async def access_client_profile(session: ReadSession, user_id: uuid.UUID) -> ClientProfile:
    profile = await session.get(ClientProfile, user_id)
    return profile or ClientProfile(
        user_id=user_id, addresses=[], search_history=False, updated_at=clock.now()
    )


async def do_update_client_profile(
    session: WriteSession, user_id: uuid.UUID, patch: ClientProfilePatch
) -> ClientProfile:
    profile = await session.get(ClientProfile, user_id, with_for_update=True)
    if profile is None:
        profile = ClientProfile(
            user_id=user_id, addresses=[], search_history=False, updated_at=clock.now()
        )
        session.add(profile)
    if patch.addresses is not None:
        profile.addresses = _address_rows(patch.addresses)
    if patch.search_history is not None:
        profile.search_history = patch.search_history
        if not patch.search_history:  # opting out forgets what was kept
            await session.execute(
                delete(SearchHistoryEntry).where(SearchHistoryEntry.user_id == user_id)
            )
    profile.updated_at = clock.now()
    await session.flush()
    return profile


# ---------------------------------------------------------------- saved addresses
#
# A client's addresses live in ``client_profiles.addresses`` (JSONB, at most ten), each
# with a stable id and exactly one default when there are any.


def _address_rows(addresses: Sequence[AddressIn | AddressOut]) -> list[dict[str, Any]]:
    """Stored rows for these addresses: places checked, ids kept or given, one default
    (the last one asked for, else the first)."""
    if len(addresses) > MAX_ADDRESSES:
        raise TooManyAddressesError(field="addresses")
    for address in addresses:
        catalog.place_coordinates(address.place_id)
    chosen = next((i for i, a in reversed(list(enumerate(addresses))) if a.default), 0)
    return [
        {
            "id": str(a.id or new_id()),
            "label": a.label.strip(),
            "place_id": str(a.place_id),
            "street": a.street.strip(),
            "default": i == chosen,
        }
        for i, a in enumerate(addresses)
    ]


def list_addresses(profile: ClientProfile) -> list[AddressOut]:
    """The saved addresses, each with its id. Rows saved before addresses had ids get one
    derived from the row, so it stays the same until the list is next written."""
    rows = profile.addresses
    has_default = any(row.get("default") for row in rows)
    return [
        AddressOut(
            id=row.get("id")
            or uuid.uuid5(uuid.NAMESPACE_URL, f"{profile.user_id}:{i}:{row.get('label')}"),
            label=row.get("label") or "—",
            place_id=row["place_id"],
            place_name=catalog.place_name(uuid.UUID(str(row["place_id"]))),
            street=row.get("street", ""),
            default=bool(row.get("default")) if has_default else i == 0,
        )
        for i, row in enumerate(rows)
    ]


async def _lock_client_profile(session: WriteSession, user_id: uuid.UUID) -> ClientProfile:
    profile = await session.get(ClientProfile, user_id, with_for_update=True)
    if profile is None:
        profile = ClientProfile(
            user_id=user_id, addresses=[], search_history=False, updated_at=clock.now()
        )
        session.add(profile)
    return profile


async def _save_addresses(
    session: WriteSession, profile: ClientProfile, addresses: Sequence[AddressIn | AddressOut]
) -> ClientProfile:
    profile.addresses = _address_rows(addresses)
    profile.updated_at = clock.now()
    await session.flush()
    return profile


def _index_of(addresses: Sequence[AddressOut], address_id: uuid.UUID) -> int:
    index = next((i for i, a in enumerate(addresses) if a.id == address_id), None)
    if index is None:
        raise AddressNotFoundError()
    return index


async def do_add_address(
    session: WriteSession, user_id: uuid.UUID, address: AddressIn
) -> ClientProfile:
    profile = await _lock_client_profile(session, user_id)
    current = list_addresses(profile)
    if len(current) >= MAX_ADDRESSES:
        raise TooManyAddressesError()
    added = address.model_copy(update={"id": None})  # a new address gets a new id
    return await _save_addresses(session, profile, [*current, added])


async def do_edit_address(
    session: WriteSession, user_id: uuid.UUID, address_id: uuid.UUID, address: AddressIn
) -> ClientProfile:
    """Change an address's label, place or street; it stays the default if it was."""
    profile = await _lock_client_profile(session, user_id)
    current: list[AddressIn | AddressOut] = list(list_addresses(profile))
    index = _index_of(list_addresses(profile), address_id)
    default = current[index].default or address.default
    current = [
        address.model_copy(update={"id": address_id, "default": default})
        if i == index
        else a.model_copy(update={"default": a.default and not default})
        for i, a in enumerate(current)
    ]
    return await _save_addresses(session, profile, current)


async def do_delete_address(
    session: WriteSession, user_id: uuid.UUID, address_id: uuid.UUID
) -> ClientProfile:
    """Forget an address; when it was the default, the first remaining one becomes it."""
    profile = await _lock_client_profile(session, user_id)
    current = list_addresses(profile)
    del current[_index_of(current, address_id)]
    return await _save_addresses(session, profile, current)


async def do_set_default_address(
    session: WriteSession, user_id: uuid.UUID, address_id: uuid.UUID
) -> ClientProfile:
    profile = await _lock_client_profile(session, user_id)
    current = list_addresses(profile)
    index = _index_of(current, address_id)
    return await _save_addresses(
        session,
        profile,
        [a.model_copy(update={"default": i == index}) for i, a in enumerate(current)],
    )


async def do_record_search(
    session: WriteSession, user_id: uuid.UUID, query: dict[str, Any]
) -> bool:
    """Keep the search only for users who opted in. Returns whether it was kept."""
    opted_in = await session.scalar(
        select(ClientProfile.search_history).where(ClientProfile.user_id == user_id)
    )
    if not opted_in:
        return False
    session.add(SearchHistoryEntry(id=new_id(), user_id=user_id, query=query, at=clock.now()))
    return True


async def list_search_history(
    session: ReadSession, user_id: uuid.UUID, limit: int = 50
) -> Sequence[SearchHistoryEntry]:
    query = (
        select(SearchHistoryEntry)
        .where(SearchHistoryEntry.user_id == user_id)
        .order_by(SearchHistoryEntry.at.desc())
        .limit(limit)
    )
    return (await session.scalars(query)).all()


@dataclass(frozen=True)
class Counts:
    listed: int
    verified: int


async def counts(session: ReadSession) -> Counts:
    row = (
        await session.execute(
            select(
                func.count().filter(ProProfile.listed),
                func.count().filter(ProProfile.verification_state == VerificationState.VERIFIED),
            )
        )
    ).one()
    return Counts(int(row[0]), int(row[1]))
