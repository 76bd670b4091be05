"""Pages of pros: search, public profile, onboarding wizard, staff verification queue.

They call the same services as the API; nothing here decides a rule.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from mesteri.accounts import service as accounts
from mesteri.accounts.deps import Client, WebAuth, WebAuthRequired
from mesteri.catalog import service as catalog
from mesteri.config import get_settings
from mesteri.kit import i18n
from mesteri.kit.db import DbWrite
from mesteri.kit.errors import DomainError, InvalidInputError
from mesteri.kit.i18n import get_language
from mesteri.kit.text import Clean, clean_text
from mesteri.kit.web import form_errors, render, templates
from mesteri.media import service as media
from mesteri.pros import api as shapes
from mesteri.pros import search as search_mod
from mesteri.pros import service
from mesteri.pros.schemas import (
    AddressIn,
    ClientProfilePatch,
    CraftIn,
    PortfolioIn,
    ProOut,
    ProPatch,
    VerificationIn,
)
from mesteri.reviews import reputation
from mesteri.reviews import service as reviews

router = APIRouter()

templates.globals["business_type_names"] = {
    "pfa": i18n.lazy("PFA (authorised person)"),
    "ii": i18n.lazy("II (sole proprietorship)"),
    "srl": i18n.lazy("SRL (limited company)"),
    "individual": i18n.lazy("Individual"),
    "osek_patur": i18n.lazy("Exempt dealer (osek patur)"),
    "osek_murshe": i18n.lazy("Licensed dealer (osek murshe)"),
    "company": i18n.lazy("Company (Ltd.)"),
}

# Stripe's requirement names, by prefix, in words a pro understands; anything else is
# shown as the provider names it.
REQUIREMENT_LABELS = (
    ("external_account", i18n.lazy("Bank account for payouts")),
    ("individual.verification", i18n.lazy("Identity document")),
    ("individual.dob", i18n.lazy("Date of birth")),
    ("individual.address", i18n.lazy("Home address")),
    ("individual.id_number", i18n.lazy("Personal identification number")),
    ("individual.", i18n.lazy("Personal details")),
    ("company.", i18n.lazy("Company details")),
    ("business_profile", i18n.lazy("Business details")),
    ("tos_acceptance", i18n.lazy("Acceptance of the provider's terms")),
)


def requirement_labels(codes: list[str]) -> list[str]:
    """Each requirement's label once, in the provider's order."""
    labels: dict[str, None] = {}
    for code in codes:
        label = next(
            (str(lb) for prefix, lb in REQUIREMENT_LABELS if code.startswith(prefix)), code
        )
        labels.setdefault(label, None)
    return list(labels)


templates.globals["requirement_labels"] = requirement_labels

Text = Annotated[Clean, Form(max_length=4000)]
MAX_PAGE_UPLOAD = 20 * 1024 * 1024


def _redirect(target: str) -> RedirectResponse:
    return RedirectResponse(target, status_code=303)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


# ---------------------------------------------------------------- search


@router.get("/pros")
async def search_page(
    request: Request,
    session: DbWrite,
    auth: WebAuth,
    q: Clean = Query(default="", max_length=100),
    category: str = Query(default="", max_length=60),
    place_id: str = Query(default="", max_length=40),
    radius_km: str = Query(default="", max_length=5),
    min_rating: str = Query(default="", max_length=4),
    verified: str = Query(default="", max_length=5),
    available: str = Query(default="", max_length=5),
    sort: str = Query(default="relevance", max_length=12),
    cursor: str = Query(default="", max_length=400),
) -> Response:
    """Filters live in the URL, so a search can be shared, bookmarked and paged."""
    q, category, place_id = clean_text(q), clean_text(category), clean_text(place_id)
    form = {
        "q": q,
        "category": category,
        "place_id": place_id,
        "radius_km": radius_km,
        "min_rating": min_rating,
        "verified": verified,
        "available": available,
        "sort": sort if sort in ("relevance", "distance", "rating", "price") else "relevance",
    }
    context: dict[str, Any] = {
        "form": form,
        "categories": catalog.category_options(get_language()),
        "places": catalog.place_options(get_settings().market_profile.country, get_language()),
        "hits": [],
        "next_cursor": None,
        "error": None,
        "searched": False,
    }
    try:
        place = uuid.UUID(place_id) if place_id else None
        query = search_mod.SearchQuery(
            q=q or None,
            category=category or None,
            place_id=place,
            radius_km=(_float(radius_km) or 50.0) if place else None,
            min_rating=_float(min_rating),
            verified=verified == "1" or None,
            available=available == "1" or None,
            sort=form["sort"],
            cursor=cursor or None,
            limit=20,
        )
        hits, next_cursor = await search_mod.search(session, query, get_settings())
        context.update(
            hits=[shapes.hit_out(h) for h in hits], next_cursor=next_cursor, searched=True
        )
        if auth is not None and not cursor and (q or category or place_id):
            # opt-in history (kept only when the person asked for it)
            await service.do_record_search(
                session, auth[0].id, {k: v for k, v in form.items() if v}
            )
    except ValueError:
        context["error"] = InvalidInputError.message
    except DomainError as exc:
        context["error"] = exc.msgid
    return render(request, "pros/search.html", context)


# ---------------------------------------------------------------- public profile


PROFILE_REVIEWS = 5  # the newest; the rest on /pros/{id}/reviews


@router.get("/pros/{pro_id}")
async def profile_page(
    request: Request, session: DbWrite, pro_id: uuid.UUID, auth: WebAuth
) -> Response:
    profile = await service.access_profile(session, pro_id)
    crafts = list(await service.list_crafts(session, profile.id))
    saved = auth is not None and pro_id in await service.saved_ids(session, auth[0].id)
    viewer_id = auth[0].id if auth else None
    latest, more = await reviews.list_for_pro(session, profile.id, limit=PROFILE_REVIEWS)
    return render(
        request,
        "pros/profile.html",
        {
            "pro": ProOut(**shapes.pro_fields(profile, crafts)),
            "portfolio": [
                shapes.portfolio_out(i) for i in await service.list_portfolio(session, pro_id)
            ],
            "saved": saved,
            "reputation": await reputation.reputation_of(session, profile.id),
            "reviews": latest,
            "more_reviews": more is not None,
            "viewer_id": viewer_id,
            "pro_user_id": profile.user_id,
            "voted": await reviews.voted_ids(session, viewer_id, [r.id for r in latest]),
        },
    )


@router.post("/pros/{pro_id}/save")
async def save_toggle(
    session: DbWrite, pro_id: uuid.UUID, auth: WebAuthRequired, action: Text = "save"
) -> Response:
    if action == "unsave":
        await service.do_unsave_pro(session, auth[0].id, pro_id)
    else:
        await service.do_save_pro(session, auth[0].id, pro_id)
    return _redirect(f"/pros/{pro_id}")


# ---------------------------------------------------------------- saved pros, search history


@router.get("/saved")
async def saved_page(request: Request, session: DbWrite, auth: WebAuthRequired) -> Response:
    pros = await service.list_saved(session, auth[0].id)
    client_profile = await service.access_client_profile(session, auth[0].id)
    history = await service.list_search_history(session, auth[0].id, limit=20)
    return render(
        request,
        "pros/saved.html",
        {
            "pros": [ProOut(**shapes.pro_fields(p, [])) for p in pros],
            "history_on": client_profile.search_history,
            "history": history,
        },
    )


@router.post("/saved/history")
async def saved_history(session: DbWrite, auth: WebAuthRequired, enabled: Text = "") -> Response:
    await service.do_update_client_profile(
        session, auth[0].id, ClientProfilePatch(search_history=enabled == "1")
    )
    return _redirect("/saved#history")


@router.post("/saved/{pro_id}/remove")
async def saved_remove(session: DbWrite, auth: WebAuthRequired, pro_id: uuid.UUID) -> Response:
    await service.do_unsave_pro(session, auth[0].id, pro_id)
    return _redirect("/saved")


# ---------------------------------------------------------------- saved addresses


async def _addresses_context(session: DbWrite, user_id: uuid.UUID) -> dict[str, Any]:
    profile = await service.access_client_profile(session, user_id)
    return {
        "addresses": service.list_addresses(profile),
        "places": catalog.place_options(get_settings().market_profile.country, get_language()),
    }


def _address_in(label: str, place_id: str, street: str, default: str) -> AddressIn:
    """The form's fields as the API's body; a missing or malformed field names itself."""
    try:
        place = uuid.UUID(place_id)
    except ValueError as exc:
        raise InvalidInputError(field="place_id") from exc
    if not label.strip():
        raise InvalidInputError(field="label")
    return AddressIn(label=label, place_id=place, street=street, default=default == "1")


@router.get("/account/addresses")
async def addresses_page(request: Request, session: DbWrite, auth: WebAuthRequired) -> Response:
    context = await _addresses_context(session, auth[0].id)
    return render(request, "pros/addresses.html", context)


@router.post("/account/addresses")
async def address_add(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    label: Annotated[Clean, Form(max_length=60)] = "",
    place_id: Annotated[str, Form(max_length=40)] = "",
    street: Annotated[Clean, Form(max_length=200)] = "",
    default: Annotated[str, Form(max_length=1)] = "",
) -> Response:
    context = await _addresses_context(session, auth[0].id)
    form = {"label": label, "place_id": place_id, "street": street, "default": default}
    with form_errors(request, "pros/addresses.html", **context, form=form):
        await service.do_add_address(
            session, auth[0].id, _address_in(label, place_id, street, default)
        )
    return _redirect("/account/addresses?saved=added")


@router.post("/account/addresses/{address_id}")
async def address_edit(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    address_id: uuid.UUID,
    label: Annotated[Clean, Form(max_length=60)] = "",
    place_id: Annotated[str, Form(max_length=40)] = "",
    street: Annotated[Clean, Form(max_length=200)] = "",
) -> Response:
    context = await _addresses_context(session, auth[0].id)
    with form_errors(request, "pros/addresses.html", **context, editing=address_id):
        await service.do_edit_address(
            session, auth[0].id, address_id, _address_in(label, place_id, street, "")
        )
    return _redirect("/account/addresses?saved=changed")


@router.post("/account/addresses/{address_id}/delete")
async def address_delete(
    request: Request, session: DbWrite, auth: WebAuthRequired, address_id: uuid.UUID
) -> Response:
    context = await _addresses_context(session, auth[0].id)
    with form_errors(request, "pros/addresses.html", **context):
        await service.do_delete_address(session, auth[0].id, address_id)
    return _redirect("/account/addresses?saved=deleted")


@router.post("/account/addresses/{address_id}/default")
async def address_default(
    request: Request, session: DbWrite, auth: WebAuthRequired, address_id: uuid.UUID
) -> Response:
    context = await _addresses_context(session, auth[0].id)
    with form_errors(request, "pros/addresses.html", **context):
        await service.do_set_default_address(session, auth[0].id, address_id)
    return _redirect("/account/addresses?saved=default")


# ---------------------------------------------------------------- onboarding wizard


async def _wizard_context(session: DbWrite, user_id: uuid.UUID) -> dict[str, Any]:
    try:
        profile = await service.access_own_profile(session, user_id)
    except DomainError:
        profile = None
    crafts = list(await service.list_crafts(session, profile.id)) if profile else []
    status = await service.verification_status(session, profile) if profile else None
    submission = status.submission if status else None
    portfolio = await service.list_portfolio(session, profile.id) if profile else []
    primary = next((c.category_id for c in crafts if c.primary), None)
    return {
        "profile": profile,
        "primary": primary,
        "others": [c.category_id for c in crafts if not c.primary],
        "years": next((c.years for c in crafts if c.primary), 0),
        "submission": submission,
        "verification": status,
        "portfolio": [shapes.portfolio_out(i) for i in portfolio],
        "categories": catalog.category_options(get_language()),
        "places": catalog.place_options(get_settings().market_profile.country, get_language()),
        "business_types": service.BUSINESS_TYPES[get_settings().market],
        "id_name": get_settings().market_profile.business_id_name,
    }


@router.get("/pro/onboarding")
async def onboarding(request: Request, session: DbWrite, auth: WebAuthRequired) -> Response:
    if "pro" not in auth[0].roles:
        await accounts.do_add_role(session, auth[0], "pro")
    return render(request, "pros/onboarding.html", await _wizard_context(session, auth[0].id))


@router.post("/pro/onboarding/profile")
async def onboarding_profile(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    display_name: Text = "",
    bio: Text = "",
    business_type: Text = "",
    business_id: Text = "",
    primary_category: Text = "",
    years: Text = "0",
    other_categories: Annotated[list[str] | None, Form()] = None,
    place_id: Text = "",
    radius_km: Text = "25",
    rate_min: Text = "",
    rate_max: Text = "",
    languages: Annotated[list[str] | None, Form()] = None,
) -> Response:
    context = await _wizard_context(session, auth[0].id)
    with form_errors(request, "pros/onboarding.html", **context):
        try:
            crafts = []
            if primary_category:
                crafts.append(
                    CraftIn(
                        category_id=uuid.UUID(primary_category), primary=True, years=int(years or 0)
                    )
                )
            for other in other_categories or []:
                if other and other != primary_category:
                    crafts.append(CraftIn(category_id=uuid.UUID(other)))
            patch = ProPatch(
                display_name=display_name.strip() or None,
                bio=bio,
                business_type=business_type or None,
                business_id=business_id or None,
                crafts=crafts or None,
                place_id=uuid.UUID(place_id) if place_id else None,
                radius_km=int(radius_km or 25),
                rate_min=int(float(rate_min) * 100) if rate_min else None,
                rate_max=int(float(rate_max) * 100) if rate_max else None,
                languages=languages or None,
            )
        except ValueError as exc:
            raise InvalidInputError() from exc
        if not business_type:
            patch.model_fields_set.discard("business_type")
            patch.model_fields_set.discard("business_id")
        await service.do_update_profile(session, auth[0], patch)
    return _redirect("/pro/onboarding?saved=profile#step-photos")


async def _read_file(file: UploadFile) -> bytes:
    data = await file.read(MAX_PAGE_UPLOAD + 1)
    return data


@router.post("/pro/onboarding/photo")
async def onboarding_photo(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    photo: Annotated[UploadFile, File()],
    caption: Text = "",
) -> Response:
    context = await _wizard_context(session, auth[0].id)
    with form_errors(request, "pros/onboarding.html", **context):
        data = await _read_file(photo)
        stored = await media.do_store(
            session,
            auth[0].id,
            purpose="portfolio",
            data=data,
            content_type=photo.content_type or "image/jpeg",
            filename=photo.filename,
        )
        await service.do_add_portfolio_item(
            session, auth[0].id, PortfolioIn(media_id=stored.id, caption=caption[:300])
        )
    return _redirect("/pro/onboarding?saved=photo#step-photos")


@router.post("/pro/onboarding/verification")
async def onboarding_verification(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    client: Client,
    document: Annotated[UploadFile, File()],
    legal_name: Text = "",
    kind: Text = "kyc",
) -> Response:
    context = await _wizard_context(session, auth[0].id)
    with form_errors(request, "pros/onboarding.html", **context):
        purpose = "registration_certificate" if kind == "kyb" else "id_document"
        data = await _read_file(document)
        stored = await media.do_store(
            session,
            auth[0].id,
            purpose=purpose,
            data=data,
            content_type=document.content_type or "application/pdf",
            filename=document.filename,
        )
        profile = context["profile"]
        await service.do_submit_verification(
            session,
            auth[0].id,
            VerificationIn(
                kind="kyb" if kind == "kyb" else "kyc",
                legal_name=legal_name.strip() or "—",
                business_type=profile.business_type if profile else None,
                business_id=profile.business_id if profile else None,
                document_ids=[stored.id],
            ),
            client,
        )
    return _redirect("/pro/onboarding?saved=verification#step-verification")


# ---------------------------------------------------------------- staff queue


@router.get("/admin/verifications")
async def queue_page(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    state: str = Query(default="pending", pattern="^(pending|verified|rejected)$"),
    cursor: str | None = Query(default=None, max_length=400),
) -> Response:
    accounts.check_staff(auth[1])
    rows, next_cursor = await service.list_verification_queue(
        session, state=state, cursor=cursor, limit=50
    )
    return render(
        request, "pros/queue.html", {"rows": rows, "next_cursor": next_cursor, "state": state}
    )


async def _review_context(
    session: DbWrite, submission_id: uuid.UUID, auth: WebAuthRequired, client: Client
) -> dict[str, Any]:
    sub, profile = await service.access_submission_for_staff(
        session, submission_id, auth[1], client
    )
    documents = []
    for doc_id in sub.document_ids:
        try:
            link = await media.access_download(session, doc_id, auth[1], client=client)
            documents.append(
                {
                    "id": doc_id,
                    "url": link.url,
                    "purpose": link.upload.purpose,
                    "content_type": link.upload.content_type,
                    "thumb": link.thumbnail_url,
                }
            )
        except DomainError:
            documents.append(
                {"id": doc_id, "url": None, "purpose": None, "content_type": None, "thumb": None}
            )
    return {
        "sub": shapes.admin_out(sub, profile),
        "documents": documents,
        "pro": profile,
        "place": catalog.place_name(profile.place_id),
    }


@router.get("/admin/verifications/{submission_id}")
async def review_page(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    client: Client,
    submission_id: uuid.UUID,
) -> Response:
    """Every opening of this page and of each document is audited."""
    return render(
        request, "pros/review.html", await _review_context(session, submission_id, auth, client)
    )


@router.post("/admin/verifications/{submission_id}/decide")
async def decide(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    client: Client,
    submission_id: uuid.UUID,
    decision: Text = "",
    reason: Text = "",
) -> Response:
    context = await _review_context(session, submission_id, auth, client)
    with form_errors(request, "pros/review.html", **context):
        await service.do_decide(
            session, submission_id, auth[1], client, approve=decision == "approve", reason=reason
        )
    return _redirect("/admin/verifications?decided=1")
