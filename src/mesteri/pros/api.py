"""JSON API of pros: search, profiles, portfolio, verification, saved pros, client
profiles and the staff verification desk (``/admin/verifications``). Thin: parse, call, shape."""

from __future__ import annotations

import uuid
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, status
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mesteri.accounts import service as accounts
from mesteri.accounts.deps import Client, CurrentPrincipal, CurrentUser, StaffPrincipal
from mesteri.accounts.service import Identity
from mesteri.catalog import service as catalog
from mesteri.config import get_settings
from mesteri.kit.db import DbRead, DbWrite, FastStatements
from mesteri.kit.errors import DomainError
from mesteri.kit.i18n import get_language
from mesteri.kit.pagination import Page
from mesteri.kit.text import Clean, clean_text
from mesteri.media import service as media
from mesteri.pros import search as search_mod
from mesteri.pros import service
from mesteri.pros.models import (
    ClientProfile,
    PortfolioItem,
    ProCraft,
    ProProfile,
    VerificationState,
    VerificationSubmission,
)
from mesteri.pros.schemas import (
    AddressIn,
    AdminVerificationOut,
    AvailabilityPut,
    ClientProfileOut,
    ClientProfilePatch,
    CraftOut,
    PlaceRef,
    PortfolioIn,
    PortfolioItemOut,
    ProDetailOut,
    ProMeOut,
    ProOut,
    ProPatch,
    ProSearchItem,
    ProviderCheckOut,
    RejectIn,
    ReputationOut,
    SearchHistoryOut,
    Sort,
    SuggestItem,
    VerificationIn,
    VerificationOut,
)
from mesteri.reviews import reputation

router = APIRouter(tags=["pros"])
admin = APIRouter(prefix="/admin/verifications", tags=["back-office"])

_optional_bearer = HTTPBearer(auto_error=False)


async def optional_identity(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_optional_bearer)],
) -> Identity | None:
    """Search is public; a signed-in caller's search may be kept (opt-in history)."""
    if credentials is None:
        return None
    reader: FastStatements = request.app.state.fast_statements
    try:
        return await accounts.access_identity(reader, credentials.credentials)
    except DomainError:
        return None


MaybeUser = Annotated[Identity | None, Depends(optional_identity)]


# ---------------------------------------------------------------- shaping


def craft_out(category_id: uuid.UUID, primary: bool, years: int | None = None) -> CraftOut:
    row = catalog.get_category(category_id)
    return CraftOut(
        category_id=row.id,
        slug=row.slug,
        name=catalog.category_name(row, get_language()),
        primary=primary,
        years=years,
    )


def place_ref(place_id: uuid.UUID | None) -> PlaceRef | None:
    info = catalog.place_info(place_id)
    if info is None:
        return None
    return PlaceRef(id=info["id"], name=str(info["name"]), county=str(info["county"]))


def pro_fields(profile: ProProfile, crafts: list[ProCraft]) -> dict[str, Any]:
    return {
        "id": profile.id,
        "display_name": profile.display_name,
        "bio": profile.bio,
        "business_type": profile.business_type,
        "crafts": [craft_out(c.category_id, c.primary, c.years) for c in crafts],
        "place": place_ref(profile.place_id),
        "radius_km": profile.radius_km,
        "rate_min": profile.rate_min,
        "rate_max": profile.rate_max,
        "currency": profile.currency,
        "availability": profile.availability,
        "languages": profile.languages,
        "certifications": profile.certifications,
        "insured": profile.insurance is not None,
        "tier": profile.tier,
        "badges": [*profile.badges, *(["verified"] if service.is_verified(profile) else [])],
        "verified": service.is_verified(profile),
        "rating": profile.rating_avg,
        "reviews_count": profile.reviews_count,
        "delivery_score": profile.delivery_score,
        "portfolio_count": profile.portfolio_count,
        "member_since": profile.created_at,
    }


def me_out(profile: ProProfile, crafts: list[ProCraft]) -> ProMeOut:
    return ProMeOut(
        **pro_fields(profile, crafts),
        business_id=profile.business_id,
        insurance=profile.insurance,
        verification_state=profile.verification_state,
        listed=profile.listed,
    )


def hit_out(hit: search_mod.Hit) -> ProSearchItem:
    crafts = [craft_out(c, c == hit.primary_category_id) for c in hit.category_ids]
    return ProSearchItem(
        id=hit.id,
        display_name=hit.display_name,
        crafts=crafts,
        rating=hit.rating_avg,
        reviews_count=hit.reviews_count,
        verified=hit.verification_state == VerificationState.VERIFIED,
        distance_km=round(hit.distance_km, 1) if hit.distance_km is not None else None,
        availability=hit.availability,
        rate_min=hit.rate_min,
        rate_max=hit.rate_max,
        currency=hit.currency,
        place_name=catalog.place_name(hit.place_id),
        portfolio_count=hit.portfolio_count,
        score=round(hit.score, 4),
    )


def portfolio_out(item: PortfolioItem) -> PortfolioItemOut:
    return PortfolioItemOut(
        id=item.id,
        caption=item.caption,
        image_url=media.public_url(item.media_id),
        thumbnail_url=media.public_url(item.media_id, thumb=True),
        after_image_url=media.public_url(item.after_media_id) if item.after_media_id else None,
        category_id=item.category_id,
        created_at=item.created_at,
    )


def verification_out(sub: VerificationSubmission | None) -> VerificationOut:
    if sub is None:
        return VerificationOut(
            id=None, state="none", kind=None, reason=None, submitted_at=None, decided_at=None
        )
    return VerificationOut(
        id=sub.id,
        state=sub.state,
        kind=sub.kind,
        reason=sub.reason,
        submitted_at=sub.submitted_at,
        decided_at=sub.decided_at,
    )


def verification_status_out(status: service.VerificationStatus) -> VerificationOut:
    check = status.provider_check
    provider = None
    if check is not None:
        provider = ProviderCheckOut(
            provider=check.provider,
            status=check.status,  # an OnboardingStatus value
            requirements_due=list(check.requirements_due),
            past_due=list(check.past_due),
            disabled_reason=check.disabled_reason,
        )
    return verification_out(status.submission).model_copy(
        update={
            "profile_state": status.state,
            "provider_required": status.provider_required,
            "provider": provider,
        }
    )


def admin_out(sub: VerificationSubmission, profile: ProProfile) -> AdminVerificationOut:
    bid_valid = None
    if sub.business_id:
        bid_valid = get_settings().market_profile.business_id_valid(sub.business_id)
    return AdminVerificationOut(
        id=sub.id,
        pro_id=profile.id,
        display_name=profile.display_name,
        state=sub.state,
        kind=sub.kind,
        legal_name=sub.legal_name,
        business_type=sub.business_type,
        business_id=sub.business_id,
        business_id_valid=bid_valid,
        document_ids=sub.document_ids,
        reason=sub.reason,
        submitted_at=sub.submitted_at,
        decided_at=sub.decided_at,
    )


# ---------------------------------------------------------------- search


@router.get("/pros", response_model=Page[ProSearchItem])
async def search_pros(
    session: DbRead,
    request: Request,
    identity: MaybeUser,
    background: BackgroundTasks,
    q: Clean | None = Query(default=None, max_length=100),
    category: Clean | None = Query(default=None, max_length=60, description="id or slug"),
    place_id: uuid.UUID | None = None,
    lat: float | None = Query(default=None, ge=-90, le=90),
    lon: float | None = Query(default=None, ge=-180, le=180),
    radius_km: float | None = Query(default=None, gt=0, le=500),
    min_rating: float | None = Query(default=None, ge=1, le=5),
    max_rate: int | None = Query(
        default=None, ge=0, le=100_000_000, description="minor units per hour"
    ),
    available: bool | None = None,
    verified: bool | None = None,
    language: str | None = Query(default=None, pattern="^[a-zA-Z]{2}$"),
    sort: Sort = "relevance",
    cursor: str | None = Query(default=None, max_length=400),
    limit: int = Query(default=20, ge=1, le=50),
) -> Page[ProSearchItem]:
    """Search listed pros. With a place (``place_id`` or ``lat``+``lon``) every result has
    ``distance_km``; ``radius_km`` (default 50 with a place) keeps only pros that near."""
    has_origin = place_id is not None or (lat is not None and lon is not None)
    query = search_mod.SearchQuery(
        q=q,
        category=category,
        place_id=place_id,
        lat=lat,
        lon=lon,
        radius_km=(radius_km or 50.0) if has_origin else None,
        min_rating=min_rating,
        max_rate=max_rate,
        available=available,
        verified=verified,
        language=language,
        sort=sort,
        cursor=cursor,
        limit=limit,
    )
    hits, next_cursor = await search_mod.search(session, query, get_settings())
    if identity is not None and cursor is None:
        params = {k: clean_text(v) for k, v in request.query_params.items()}
        background.add_task(_remember, request, identity.id, params)
    return Page(items=[hit_out(h) for h in hits], next_cursor=next_cursor)


async def _remember(request: Request, user_id: uuid.UUID, params: dict[str, str]) -> None:
    """Opt-in history: its own short transaction after the answer was sent, so the
    search itself stays read-only and fast."""
    from mesteri.kit.db import unit_of_work

    async with unit_of_work(request.app.state.write_sessions) as session:
        await service.do_record_search(session, user_id, params)


@router.get("/search/suggest", response_model=Page[SuggestItem])
async def suggest(
    session: DbRead, q: Clean = Query(min_length=1, max_length=60)
) -> Page[SuggestItem]:
    """Autocomplete over categories, crafts, pro names and places."""
    rows = await search_mod.suggest(session, q, get_language())
    return Page(items=[SuggestItem(**r) for r in rows])


# ---------------------------------------------------------------- my profile (pro)


@router.get("/pros/me", response_model=ProMeOut)
async def my_profile(session: DbRead, principal: CurrentPrincipal) -> ProMeOut:
    profile = await service.access_own_profile(session, principal.user_id)
    return me_out(profile, list(await service.list_crafts(session, profile.id)))


@router.patch("/pros/me", response_model=ProMeOut)
async def update_my_profile(body: ProPatch, session: DbWrite, user: CurrentUser) -> ProMeOut:
    """Create or change the pro profile. A verified pro who changes business details
    goes back to ``pending`` until staff check them again."""
    profile = await service.do_update_profile(session, user, body)
    return me_out(profile, list(await service.list_crafts(session, profile.id)))


@router.put("/pros/me/availability", response_model=ProMeOut)
async def set_availability(
    body: AvailabilityPut, session: DbWrite, principal: CurrentPrincipal
) -> ProMeOut:
    profile = await service.do_set_availability(session, principal.user_id, body.availability)
    return me_out(profile, list(await service.list_crafts(session, profile.id)))


@router.post(
    "/pros/me/portfolio", status_code=status.HTTP_201_CREATED, response_model=PortfolioItemOut
)
async def add_portfolio_item(
    body: PortfolioIn, session: DbWrite, principal: CurrentPrincipal
) -> PortfolioItemOut:
    """Add a completed ``portfolio`` upload (and optionally its "after" picture)."""
    return portfolio_out(await service.do_add_portfolio_item(session, principal.user_id, body))


@router.post(
    "/pros/me/verification", status_code=status.HTTP_201_CREATED, response_model=VerificationOut
)
async def submit_verification(
    body: VerificationIn, session: DbWrite, principal: CurrentPrincipal, client: Client
) -> VerificationOut:
    """KYC (``id_document``, optional ``selfie``) or KYB (``registration_certificate`` and
    the business id) from completed uploads; the profile becomes ``pending``."""
    sub = await service.do_submit_verification(session, principal.user_id, body, client)
    return verification_out(sub)


@router.get("/pros/me/verification", response_model=VerificationOut)
async def my_verification(session: DbRead, principal: CurrentPrincipal) -> VerificationOut:
    """Our review of the latest submission, the badge state and, when the payment
    provider checks identity too (Stripe), what its onboarding still needs."""
    profile = await service.access_own_profile(session, principal.user_id)
    return verification_status_out(await service.verification_status(session, profile))


# ---------------------------------------------------------------- public profiles


@router.get("/pros/{pro_id}", response_model=ProDetailOut)
async def get_pro(pro_id: uuid.UUID, session: DbRead) -> ProDetailOut:
    """The public profile with the pro's reputation: no phone, e-mail or address."""
    profile = await service.access_profile(session, pro_id)
    crafts = list(await service.list_crafts(session, profile.id))
    view = await reputation.reputation_of(session, profile.id)
    return ProDetailOut(**pro_fields(profile, crafts), reputation=ReputationOut(**asdict(view)))


@router.get("/pros/{pro_id}/portfolio", response_model=Page[PortfolioItemOut])
async def get_portfolio(pro_id: uuid.UUID, session: DbRead) -> Page[PortfolioItemOut]:
    await service.access_profile(session, pro_id)
    items = await service.list_portfolio(session, pro_id)
    return Page(items=[portfolio_out(i) for i in items])


# ---------------------------------------------------------------- saved pros, client profile


@router.get("/saved-pros", response_model=Page[ProOut])
async def saved_pros(session: DbRead, principal: CurrentPrincipal) -> Page[ProOut]:
    profiles = await service.list_saved(session, principal.user_id)
    return Page(items=[ProOut(**pro_fields(p, [])) for p in profiles])


@router.post("/saved-pros/{pro_id}", status_code=status.HTTP_204_NO_CONTENT)
async def save_pro(pro_id: uuid.UUID, session: DbWrite, principal: CurrentPrincipal) -> Response:
    await service.do_save_pro(session, principal.user_id, pro_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/saved-pros/{pro_id}", status_code=status.HTTP_204_NO_CONTENT)
async def unsave_pro(pro_id: uuid.UUID, session: DbWrite, principal: CurrentPrincipal) -> Response:
    await service.do_unsave_pro(session, principal.user_id, pro_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def client_profile_out(profile: ClientProfile) -> ClientProfileOut:
    return ClientProfileOut(
        addresses=service.list_addresses(profile), search_history=profile.search_history
    )


@router.get("/clients/me", response_model=ClientProfileOut)
async def my_client_profile(session: DbRead, principal: CurrentPrincipal) -> ClientProfileOut:
    profile = await service.access_client_profile(session, principal.user_id)
    return client_profile_out(profile)


@router.patch("/clients/me", response_model=ClientProfileOut)
async def update_client_profile(
    body: ClientProfilePatch, session: DbWrite, principal: CurrentPrincipal
) -> ClientProfileOut:
    """Saved addresses (the whole list) and the search-history opt-in (turning it off
    forgets the history)."""
    profile = await service.do_update_client_profile(session, principal.user_id, body)
    return client_profile_out(profile)


@router.post(
    "/clients/me/addresses", status_code=status.HTTP_201_CREATED, response_model=ClientProfileOut
)
async def add_address(
    body: AddressIn, session: DbWrite, principal: CurrentPrincipal
) -> ClientProfileOut:
    """Add a saved address (at most ten); the first one is the default."""
    return client_profile_out(await service.do_add_address(session, principal.user_id, body))


@router.put("/clients/me/addresses/{address_id}", response_model=ClientProfileOut)
async def edit_address(
    address_id: uuid.UUID, body: AddressIn, session: DbWrite, principal: CurrentPrincipal
) -> ClientProfileOut:
    profile = await service.do_edit_address(session, principal.user_id, address_id, body)
    return client_profile_out(profile)


@router.delete("/clients/me/addresses/{address_id}", response_model=ClientProfileOut)
async def delete_address(
    address_id: uuid.UUID, session: DbWrite, principal: CurrentPrincipal
) -> ClientProfileOut:
    """Forget an address; if it was the default, the first remaining one becomes it."""
    profile = await service.do_delete_address(session, principal.user_id, address_id)
    return client_profile_out(profile)


@router.post("/clients/me/addresses/{address_id}/default", response_model=ClientProfileOut)
async def set_default_address(
    address_id: uuid.UUID, session: DbWrite, principal: CurrentPrincipal
) -> ClientProfileOut:
    profile = await service.do_set_default_address(session, principal.user_id, address_id)
    return client_profile_out(profile)


@router.get("/me/search-history", response_model=Page[SearchHistoryOut])
async def search_history(session: DbRead, principal: CurrentPrincipal) -> Page[SearchHistoryOut]:
    rows = await service.list_search_history(session, principal.user_id)
    return Page(items=[SearchHistoryOut.model_validate(r, from_attributes=True) for r in rows])


# ---------------------------------------------------------------- staff


@admin.get("", response_model=Page[AdminVerificationOut])
async def verification_queue(
    session: DbRead,
    _staff: StaffPrincipal,
    state: str = Query(default="pending", pattern="^(pending|verified|rejected|superseded)$"),
    cursor: str | None = Query(default=None, max_length=400),
    limit: int = Query(default=50, ge=1, le=200),
) -> Page[AdminVerificationOut]:
    """Oldest pending first (other states newest first)."""
    rows, next_cursor = await service.list_verification_queue(
        session, state=state, cursor=cursor, limit=limit
    )
    return Page(items=[admin_out(s, p) for s, p in rows], next_cursor=next_cursor)


@admin.get("/{submission_id}", response_model=AdminVerificationOut)
async def verification_detail(
    submission_id: uuid.UUID, session: DbWrite, staff: StaffPrincipal, client: Client
) -> AdminVerificationOut:
    """One request; the view is audited. Documents: ``GET /media/{id}`` (audited too)."""
    sub, profile = await service.access_submission_for_staff(session, submission_id, staff, client)
    return admin_out(sub, profile)


@admin.post("/{submission_id}/approve", response_model=AdminVerificationOut)
async def approve(
    submission_id: uuid.UUID, session: DbWrite, staff: StaffPrincipal, client: Client
) -> AdminVerificationOut:
    sub = await service.do_decide(session, submission_id, staff, client, approve=True)
    profile = await session.get(ProProfile, sub.pro_id)
    assert profile is not None
    return admin_out(sub, profile)


@admin.post("/{submission_id}/reject", response_model=AdminVerificationOut)
async def reject(
    submission_id: uuid.UUID,
    body: RejectIn,
    session: DbWrite,
    staff: StaffPrincipal,
    client: Client,
) -> AdminVerificationOut:
    sub = await service.do_decide(
        session, submission_id, staff, client, approve=False, reason=body.reason
    )
    profile = await session.get(ProProfile, sub.pro_id)
    assert profile is not None
    return admin_out(sub, profile)
