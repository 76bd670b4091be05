"""Reviews pages: a contract's review form (double-blind), a pro's public reviews (the
``reviews/_list.html`` partial the profile includes, and a page of its own), the form
posts of the list (helpful, report, answer), and the staff moderation queue. They call
the same services as the API; nothing here decides a rule."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from mesteri.accounts.deps import Client, WebAuth, WebAuthRequired
from mesteri.accounts.service import Principal
from mesteri.contracts import service as contracts
from mesteri.kit import i18n
from mesteri.kit.db import DbWrite, WriteSession
from mesteri.kit.errors import InvalidInputError
from mesteri.kit.text import Clean
from mesteri.kit.web import form_errors, local_path, render, templates
from mesteri.media import service as media
from mesteri.pros import service as pros
from mesteri.reviews import api as shapes
from mesteri.reviews import service
from mesteri.reviews.models import DIMENSIONS
from mesteri.reviews.schemas import (
    MAX_PHOTOS,
    DecisionIn,
    Ratings,
    ReportIn,
    ResponseIn,
    ReviewIn,
    ReviewPatch,
    Sort,
)

router = APIRouter()

Text = Annotated[Clean, Form(max_length=5000)]

templates.globals.update(
    review_dimension_names={
        "overall": i18n.lazy("Overall"),
        "quality": i18n.lazy("Quality of the work"),
        "punctuality": i18n.lazy("Punctuality"),
        "communication": i18n.lazy("Communication"),
        "value": i18n.lazy("Value for money"),
    },
    review_dimensions=DIMENSIONS,
    review_report_reasons={
        "fake": i18n.lazy("Fake: this work did not happen"),
        "offensive": i18n.lazy("Offensive or abusive"),
        "personal_data": i18n.lazy("Shares personal data"),
        "spam": i18n.lazy("Spam or advertising"),
        "other": i18n.lazy("Something else"),
    },
    review_sort_names={
        "newest": i18n.lazy("Newest"),
        "helpful": i18n.lazy("Most helpful"),
        "lowest": i18n.lazy("Lowest rated"),
    },
)


def _redirect(target: str) -> RedirectResponse:
    return RedirectResponse(target, status_code=303)


# ---------------------------------------------------------------- a contract's review page


async def _contract_context(
    session: WriteSession, contract_id: uuid.UUID, principal: Principal
) -> dict[str, Any]:
    view = await service.load_for_contract(session, contract_id, principal)
    contract = await contracts.access_contract(session, contract_id, principal)
    return {
        "view": view,
        "contract": contract,
        "mine": shapes.review_out(view.mine) if view.mine else None,
        "theirs": shapes.review_out(view.theirs) if view.theirs else None,
        "form": {},
    }


@router.get("/contracts/{contract_id}/review")
async def contract_review_page(
    request: Request, contract_id: uuid.UUID, session: DbWrite, auth: WebAuthRequired
) -> Response:
    context = await _contract_context(session, contract_id, auth[1])
    return render(request, "reviews/contract.html", context)


def _stars(value: str) -> int | None:
    value = value.strip()
    return int(value) if value.isdecimal() else None


@router.post("/contracts/{contract_id}/review")
async def contract_review_form(
    request: Request,
    contract_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
    overall: Annotated[str, Form(max_length=2)] = "",
    quality: Annotated[str, Form(max_length=2)] = "",
    punctuality: Annotated[str, Form(max_length=2)] = "",
    communication: Annotated[str, Form(max_length=2)] = "",
    value: Annotated[str, Form(max_length=2)] = "",
    comment: Text = "",
    files: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    """Write the review, or change it while it is sealed; errors show the form again."""
    principal = auth[1]
    context = await _contract_context(session, contract_id, principal)
    stars = {
        "overall": _stars(overall),
        "quality": _stars(quality),
        "punctuality": _stars(punctuality),
        "communication": _stars(communication),
        "value": _stars(value),
    }
    context["form"] = {**stars, "comment": comment}
    view: service.ContractReviews = context["view"]
    with form_errors(request, "reviews/contract.html", **context):
        try:
            ratings = Ratings.model_validate(stars)
        except ValidationError as error:
            raise InvalidInputError(
                "Choose from 1 to 5 stars for the overall rating.", field="overall"
            ) from error
        attached = len(view.mine.photo_ids) if view.mine is not None else 0
        photo_ids = await media.do_store_form_files(
            session,
            principal.user_id,
            files or [],
            purpose="portfolio",
            limit=MAX_PHOTOS - attached,
        )
        if view.mine is not None:
            await service.do_edit(
                session,
                view.mine.id,
                principal,
                ReviewPatch(
                    ratings=ratings,
                    comment=comment,
                    photo_ids=[*view.mine.photo_ids, *photo_ids] if photo_ids else None,
                ),
            )
        else:
            body = ReviewIn(ratings=ratings, comment=comment, photo_ids=photo_ids)
            await service.do_write(session, contract_id, principal, body)
    return _redirect(f"/contracts/{contract_id}/review?saved=1")


# ---------------------------------------------------------------- a pro's public reviews


@router.get("/pros/{pro_id}/reviews")
async def pro_reviews_page(
    request: Request,
    pro_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuth,
    sort: Sort = Sort.NEWEST,
    cursor: str | None = Query(default=None, max_length=400),
) -> Response:
    profile = await pros.access_profile(session, pro_id)
    reviews, next_cursor = await service.list_for_pro(session, pro_id, sort, cursor, 20)
    viewer_id = auth[0].id if auth else None
    voted = await service.voted_ids(session, viewer_id, [r.id for r in reviews])
    return render(
        request,
        "reviews/pro.html",
        {
            "pro": profile,
            "reviews": reviews,
            "viewer_id": viewer_id,
            "pro_user_id": profile.user_id,
            "voted": voted,
            "sort": sort.value,
            "next_cursor": next_cursor,
            "reviews_url": f"/pros/{pro_id}/reviews",
            "back": str(request.url.path) + (f"?{request.url.query}" if request.url.query else ""),
        },
    )


@router.post("/reviews/{review_id}/helpful")
async def helpful_form(
    review_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
    action: Annotated[str, Form(max_length=10)] = "add",
    back: Annotated[str, Form(alias="next", max_length=500)] = "/",
) -> Response:
    if action == "remove":
        await service.do_unvote(session, review_id, auth[1])
    else:
        await service.do_vote(session, review_id, auth[1])
    return _redirect(local_path(back) + f"#review-{review_id}")


@router.post("/reviews/{review_id}/report")
async def report_form(
    review_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
    reason: Annotated[str, Form(max_length=30)] = "",
    details: Annotated[Clean, Form(max_length=2000)] = "",
    back: Annotated[str, Form(alias="next", max_length=500)] = "/",
) -> Response:
    try:
        body = ReportIn.model_validate({"reason": reason, "details": details})
    except ValidationError as error:
        raise InvalidInputError("Choose why you report this review.", field="reason") from error
    await service.do_report(session, review_id, auth[1], body)
    target = local_path(back)
    joiner = "&" if "?" in target else "?"
    return _redirect(f"{target}{joiner}reported=1#review-{review_id}")


@router.post("/reviews/{review_id}/response")
async def response_form(
    review_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
    body: Annotated[Clean, Form(max_length=3000)] = "",
    back: Annotated[str, Form(alias="next", max_length=500)] = "/",
) -> Response:
    if not body.strip():
        raise InvalidInputError("Write an answer.", field="body")
    await service.do_respond(session, review_id, auth[1], ResponseIn(body=body))
    return _redirect(local_path(back) + f"#review-{review_id}")


# ---------------------------------------------------------------- moderation (staff)


async def _queue_context(
    session: WriteSession, principal: Principal, cursor: str | None
) -> dict[str, Any]:
    items, next_cursor = await service.list_reports(session, principal, cursor=cursor, limit=50)
    return {"items": [shapes.queue_item_out(i) for i in items], "next_cursor": next_cursor}


@router.get("/admin/reviews")
async def moderation_page(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    cursor: str | None = Query(default=None, max_length=400),
) -> Response:
    return render(request, "reviews/admin.html", await _queue_context(session, auth[1], cursor))


@router.post("/admin/reviews/reports/{report_id}/decide")
async def moderation_decide(
    request: Request,
    report_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
    client: Client,
    action: Annotated[str, Form(max_length=10)] = "",
    reason: Annotated[Clean, Form(max_length=500)] = "",
) -> Response:
    context = await _queue_context(session, auth[1], None)
    with form_errors(request, "reviews/admin.html", **context):
        try:
            body = DecisionIn.model_validate({"action": action, "reason": reason})
        except ValidationError as error:
            raise InvalidInputError("Choose to hide or keep the review.", field="action") from error
        await service.do_decide(session, report_id, auth[1], client, body)
    return _redirect("/admin/reviews?decided=1")
