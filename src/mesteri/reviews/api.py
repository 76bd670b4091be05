"""Reviews API: a contract's reviews (write, edit, read), a pro's public reviews, the
pro's answer, helpful votes, reports, and the staff moderation queue. Thin: parse, call,
shape."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, status

from mesteri.accounts.deps import Client, CurrentPrincipal, StaffPrincipal
from mesteri.kit.db import DbRead, DbWrite
from mesteri.kit.pagination import Page
from mesteri.reviews import service
from mesteri.reviews.models import Review, ReviewReport
from mesteri.reviews.schemas import (
    ContractReviewsOut,
    DecisionIn,
    DecisionOut,
    HelpfulOut,
    PublicReviewOut,
    QueueItemOut,
    QueueReviewOut,
    ReportIn,
    ReportOut,
    ResponseIn,
    ReviewIn,
    ReviewOut,
    ReviewPatch,
    Sort,
)

router = APIRouter(tags=["reviews"])
admin = APIRouter(prefix="/admin", tags=["reviews"])


def review_out(review: Review) -> ReviewOut:
    return ReviewOut(
        id=review.id,
        contract_id=review.contract_id,
        side=review.side,
        state=review.state,
        ratings=service.ratings_of(review),
        comment=review.comment,
        photos=service.photos_of(review),
        helpful_count=review.helpful_count,
        response=service.response_of(review),
        verified_job=service.verified_job(review),
        published_at=review.published_at,
        created_at=review.created_at,
        updated_at=review.updated_at,
    )


def contract_reviews_out(view: service.ContractReviews) -> ContractReviewsOut:
    window = view.window
    return ContractReviewsOut(
        contract_id=view.contract_id,
        my_side=view.my_side,
        open=view.open,
        can_write=view.can_write,
        can_edit=view.can_edit,
        opened_at=window.opened_at if window else None,
        closes_at=window.closes_at if window else None,
        closed_at=window.closed_at if window else None,
        mine=review_out(view.mine) if view.mine else None,
        theirs=review_out(view.theirs) if view.theirs else None,
    )


def report_out(report: ReviewReport) -> ReportOut:
    return ReportOut(
        id=report.id,
        review_id=report.review_id,
        reason=report.reason,
        details=report.details,
        state=report.state,
        created_at=report.created_at,
    )


def queue_item_out(item: service.QueueItem) -> QueueItemOut:
    review = item.review
    return QueueItemOut(
        report=report_out(item.report),
        review=QueueReviewOut(
            id=review.id,
            pro_id=review.pro_id,
            side=review.side,
            state=review.state,
            ratings=service.ratings_of(review),
            comment=review.comment,
            author=item.author,
            response=service.response_of(review),
            published_at=review.published_at,
        ),
        open_reports=item.open_reports,
    )


# ---------------------------------------------------------------- a contract's reviews


@router.post(
    "/contracts/{contract_id}/reviews",
    response_model=ReviewOut,
    status_code=status.HTTP_201_CREATED,
)
async def write_review(
    contract_id: uuid.UUID, body: ReviewIn, session: DbWrite, principal: CurrentPrincipal
) -> ReviewOut:
    """The caller's review of the other party (the side follows from who calls). It stays
    sealed until the other side has written theirs or the review window closes."""
    review = await service.do_write(session, contract_id, principal, body)
    return review_out(review)


@router.get("/contracts/{contract_id}/reviews", response_model=ContractReviewsOut)
async def contract_reviews(
    contract_id: uuid.UUID, session: DbRead, principal: CurrentPrincipal
) -> ContractReviewsOut:
    """The caller's own review (any state), the other's once published, and whether the
    caller may still write one (until ``closes_at``)."""
    return contract_reviews_out(await service.load_for_contract(session, contract_id, principal))


@router.patch("/reviews/{review_id}", response_model=ReviewOut)
async def edit_review(
    review_id: uuid.UUID, body: ReviewPatch, session: DbWrite, principal: CurrentPrincipal
) -> ReviewOut:
    return review_out(await service.do_edit(session, review_id, principal, body))


# ---------------------------------------------------------------- public reviews of a pro


@router.get("/pros/{pro_id}/reviews", response_model=Page[PublicReviewOut])
async def pro_reviews(
    pro_id: uuid.UUID,
    session: DbRead,
    sort: Sort = Sort.NEWEST,
    cursor: str | None = Query(default=None, max_length=400),
    limit: int = Query(default=20, ge=1, le=50),
) -> Page[PublicReviewOut]:
    """Published reviews by clients, with the verified-job label and the pro's answer."""
    items, next_cursor = await service.list_for_pro(session, pro_id, sort, cursor, limit)
    return Page(items=items, next_cursor=next_cursor)


@router.post(
    "/reviews/{review_id}/response",
    response_model=ReviewOut,
    status_code=status.HTTP_201_CREATED,
)
async def respond(
    review_id: uuid.UUID, body: ResponseIn, session: DbWrite, principal: CurrentPrincipal
) -> ReviewOut:
    """The reviewed pro answers, once."""
    return review_out(await service.do_respond(session, review_id, principal, body))


@router.post("/reviews/{review_id}/helpful", response_model=HelpfulOut)
async def vote_helpful(
    review_id: uuid.UUID, session: DbWrite, principal: CurrentPrincipal
) -> HelpfulOut:
    return await service.do_vote(session, review_id, principal)


@router.delete("/reviews/{review_id}/helpful", response_model=HelpfulOut)
async def unvote_helpful(
    review_id: uuid.UUID, session: DbWrite, principal: CurrentPrincipal
) -> HelpfulOut:
    return await service.do_unvote(session, review_id, principal)


@router.post(
    "/reviews/{review_id}/report", response_model=ReportOut, status_code=status.HTTP_201_CREATED
)
async def report_review(
    review_id: uuid.UUID, body: ReportIn, session: DbWrite, principal: CurrentPrincipal
) -> ReportOut:
    return report_out(await service.do_report(session, review_id, principal, body))


# ---------------------------------------------------------------- moderation


@admin.get("/review-reports", response_model=Page[QueueItemOut])
async def report_queue(
    session: DbRead,
    staff: StaffPrincipal,
    cursor: str | None = Query(default=None, max_length=400),
    limit: int = Query(default=50, ge=1, le=200),
) -> Page[QueueItemOut]:
    """Open reports, oldest first."""
    items, next_cursor = await service.list_reports(session, staff, cursor=cursor, limit=limit)
    return Page(items=[queue_item_out(i) for i in items], next_cursor=next_cursor)


@admin.post("/review-reports/{report_id}/decide", response_model=DecisionOut)
async def decide_report(
    report_id: uuid.UUID, body: DecisionIn, session: DbWrite, staff: StaffPrincipal, client: Client
) -> DecisionOut:
    """``hide`` (with a reason) hides the review and closes every open report on it;
    ``keep`` closes this report. Both are written to the audit log."""
    result = await service.do_decide(session, report_id, staff, client, body)
    return DecisionOut(
        report=report_out(result.report),
        review_state=result.review.state,
        closed_reports=result.closed_reports,
    )
