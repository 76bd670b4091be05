"""Reviews of paid work: the window opened by the first release to the pro, double-blind
reviews by both sides, the pro's one answer, helpful votes, reports and moderation.

Other modules call ``list_for_pro`` (the pro profile) and listen for ``ReviewPublished`` /
``ReviewHidden`` (reputation); the API and pages call ``load_for_contract``, ``do_write``,
``do_edit``, ``do_respond``, ``do_vote`` / ``do_unvote``, ``do_report``, ``list_reports``
and ``do_decide``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert

from mesteri.accounts.service import ClientInfo, Principal, check_staff
from mesteri.catalog import service as catalog
from mesteri.config import get_settings
from mesteri.contracts import service as contracts
from mesteri.contracts.errors import ContractNotFoundError
from mesteri.jobs.service import client_names
from mesteri.kit import audit, clock, events, jobs
from mesteri.kit.db import ReadSession, WriteSession
from mesteri.kit.errors import DomainError
from mesteri.kit.i18n import get_language, lazy
from mesteri.kit.ids import new_id
from mesteri.kit.pagination import (
    InvalidCursorError,
    decode_cursor,
    encode_cursor,
    keyset,
    page_of,
)
from mesteri.media import service as media
from mesteri.milestones import service as milestones
from mesteri.milestones.events import MilestoneSettled
from mesteri.notifications import service as notifications
from mesteri.reviews.errors import (
    AlreadyReportedError,
    NotAPartyError,
    NotTheAuthorError,
    NotTheProError,
    OwnReviewError,
    PhotoNotUsableError,
    ReasonRequiredError,
    ReportDecidedError,
    ReportNotFoundError,
    ResponseExistsError,
    ReviewExistsError,
    ReviewNotFoundError,
    ReviewNotOpenError,
    ReviewPublishedError,
    ReviewWindowClosedError,
)
from mesteri.reviews.events import ReviewHidden, ReviewPublished
from mesteri.reviews.models import (
    ReportState,
    Review,
    ReviewReport,
    ReviewSide,
    ReviewState,
    ReviewVote,
    ReviewWindow,
)
from mesteri.reviews.schemas import (
    Decision,
    DecisionIn,
    HelpfulOut,
    PhotoOut,
    PublicReviewOut,
    Ratings,
    ReportIn,
    ResponseIn,
    ResponseOut,
    ReviewIn,
    ReviewPatch,
    Sort,
    VerifiedJobOut,
)

_S = ReviewState
# Uploads a review may show: public pictures (reviews are public once published).
PHOTO_PURPOSES = frozenset({"portfolio"})
# The predicate of the partial indexes ix_reviews_pro_*, written as they are so the planner
# matches them (a bound parameter would not prove the implication).
_PUBLIC = text("reviews.state = 'published' AND reviews.side = 'client'")
_OPEN_REPORT = text("review_reports.state = 'open'")
# Keyset columns of each sort of a pro's reviews: the columns of its partial index.
SORT_KEYS: dict[Sort, tuple[str, ...]] = {
    Sort.NEWEST: ("published_at", "id"),
    Sort.HELPFUL: ("helpful_count", "published_at", "id"),
    Sort.LOWEST: ("overall", "published_at", "id"),
}
_KEY_TYPES: dict[str, type] = {
    "published_at": datetime,
    "id": uuid.UUID,
    "helpful_count": int,
    "overall": int,
}


# ---------------------------------------------------------------- shapes shared by API and pages


def ratings_of(review: Review) -> Ratings:
    return Ratings(
        overall=review.overall,
        quality=review.quality,
        punctuality=review.punctuality,
        communication=review.communication,
        value=review.value,
    )


def photos_of(review: Review) -> list[PhotoOut]:
    return [
        PhotoOut(id=i, url=media.public_url(i), thumbnail_url=media.public_url(i, thumb=True))
        for i in review.photo_ids
    ]


def verified_job(review: Review, language: str | None = None) -> VerifiedJobOut:
    row = catalog.get_category(review.category_id)
    return VerifiedJobOut(
        category=catalog.category_name(row, language or get_language()), month=review.work_month
    )


def response_of(review: Review) -> ResponseOut | None:
    if review.response is None or review.responded_at is None:
        return None
    return ResponseOut(body=review.response, at=review.responded_at)


def review_page_path(contract_id: uuid.UUID) -> str:
    return f"/contracts/{contract_id}/review"


# ---------------------------------------------------------------- the window


async def do_open_window(session: WriteSession, contract_id: uuid.UUID) -> ReviewWindow | None:
    """Money was first released to the pro: reviews open for ``review_window_days``.
    Idempotent (``None`` when the window already exists)."""
    if await session.get(ReviewWindow, contract_id) is not None:
        return None
    contract = await contracts.get_contract(session, contract_id)
    if contract is None:
        return None
    settings = get_settings()
    now = clock.now()
    closes_at = now + timedelta(days=settings.review_window_days)
    opened = await session.scalar(
        insert(ReviewWindow)
        .values(
            contract_id=contract.id,
            job_id=contract.job_id,
            client_id=contract.client_id,
            pro_user_id=contract.pro_user_id,
            pro_id=contract.pro_id,
            category_id=contract.category_id,
            opened_at=now,
            closes_at=closes_at,
        )
        .on_conflict_do_nothing()
        .returning(ReviewWindow.contract_id)
    )
    if opened is None:
        return None  # opened meanwhile by another release
    from mesteri.reviews.tasks import close_window, remind

    await jobs.defer(session, close_window, run_at=closes_at, contract_id=str(contract.id))
    for day in settings.review_reminder_days:
        if 0 < day < settings.review_window_days:
            await jobs.defer(
                session, remind, run_at=now + timedelta(days=day), contract_id=str(contract.id)
            )
    return await session.get(ReviewWindow, contract_id)


@events.subscribe(MilestoneSettled)
async def _on_milestone_settled(session: Any, event: MilestoneSettled) -> None:
    if event.state in milestones.PAID:
        await do_open_window(session, event.contract_id)


def is_open(window: ReviewWindow | None) -> bool:
    return window is not None and window.closed_at is None and clock.now() < window.closes_at


async def _reviews_of(
    session: ReadSession, contract_id: uuid.UUID, *, lock: bool = False
) -> list[Review]:
    query = select(Review).where(Review.contract_id == contract_id).order_by(Review.id)
    if lock:
        query = query.with_for_update().execution_options(populate_existing=True)
    return list((await session.scalars(query)).all())


async def _publish(session: WriteSession, window: ReviewWindow, reviews: Sequence[Review]) -> None:
    """Both sides wrote, or the window closed: every sealed review becomes public at once."""
    now = clock.now()
    published = [r for r in reviews if r.state == _S.SUBMITTED]
    for review in published:
        review.state = _S.PUBLISHED
        review.published_at = review.updated_at = now
    window.closed_at = now
    await session.flush()
    for review in published:
        await events.publish(
            session, ReviewPublished(review.id, review.contract_id, review.side, review.pro_id)
        )
        await notifications.do_notify(
            session,
            review.subject_id,
            kind="review.published",
            subject=lazy("You received a review"),
            body=lazy("A review about you was published on Mesteri. Read it."),
            link=(
                f"/pros/{review.pro_id}/reviews"
                if review.side == ReviewSide.CLIENT
                else review_page_path(review.contract_id)
            ),
        )


async def do_close_window(session: WriteSession, contract_id: uuid.UUID) -> bool:
    """The window's time is over: publish whatever was written. Idempotent."""
    window = await session.get(
        ReviewWindow, contract_id, with_for_update=True, populate_existing=True
    )
    if window is None or window.closed_at is not None:
        return False
    await _publish(session, window, await _reviews_of(session, contract_id, lock=True))
    return True


async def do_remind(session: WriteSession, contract_id: uuid.UUID) -> int:
    """E-mail each party who has not reviewed yet while the window is open."""
    window = await session.get(ReviewWindow, contract_id)
    if not is_open(window):
        return 0
    assert window is not None
    written = {r.side for r in await _reviews_of(session, contract_id)}
    sent = 0
    parties = ((ReviewSide.CLIENT, window.client_id), (ReviewSide.PRO, window.pro_user_id))
    for side, user_id in parties:
        if side in written:
            continue
        sent += bool(
            await notifications.do_notify(
                session,
                user_id,
                kind="review.reminder",
                subject=lazy("How did it go? Leave a review"),
                body=lazy(
                    "Money was paid on your contract, so you can now review the other side. "
                    "Reviews stay hidden until both of you have written yours, or until {date}."
                ),
                date=window.closes_at.date().isoformat(),
                link=review_page_path(contract_id),
                dedupe_key=f"review.reminder:{contract_id}:{side}:{clock.now().date()}",
            )
        )
    return sent


# ---------------------------------------------------------------- a contract's reviews


@dataclass(frozen=True)
class ContractReviews:
    """What one party of a contract sees of its reviews."""

    contract_id: uuid.UUID
    my_side: str
    window: ReviewWindow | None
    mine: Review | None
    theirs: Review | None  # only once published

    @property
    def open(self) -> bool:
        return self.window is not None

    @property
    def can_write(self) -> bool:
        return is_open(self.window) and self.mine is None

    @property
    def can_edit(self) -> bool:
        return is_open(self.window) and self.mine is not None and self.mine.state == _S.SUBMITTED


async def _side_of(session: ReadSession, contract_id: uuid.UUID, principal: Principal) -> str:
    contract = await contracts.get_contract(session, contract_id)
    if contract is None:
        raise ContractNotFoundError()
    side = contracts.party_of(contract, principal)
    if side is None:
        raise NotAPartyError()
    return ReviewSide(side)


async def load_for_contract(
    session: ReadSession, contract_id: uuid.UUID, principal: Principal
) -> ContractReviews:
    side = await _side_of(session, contract_id, principal)
    window = await session.get(ReviewWindow, contract_id)
    reviews = await _reviews_of(session, contract_id) if window is not None else []
    mine = next((r for r in reviews if r.side == side), None)
    theirs = next((r for r in reviews if r.side != side and r.state == _S.PUBLISHED), None)
    return ContractReviews(contract_id, side, window, mine, theirs)


async def _attach_photos(
    session: WriteSession, photo_ids: Sequence[uuid.UUID], owner_id: uuid.UUID
) -> list[uuid.UUID]:
    ids = list(dict.fromkeys(photo_ids))
    if ids:
        try:
            await media.do_attach(session, ids, owner_id, purposes=PHOTO_PURPOSES)
        except DomainError as error:
            raise PhotoNotUsableError(field="photo_ids") from error
    return ids


async def do_write(
    session: WriteSession, contract_id: uuid.UUID, principal: Principal, body: ReviewIn
) -> Review:
    """The caller's review of the other side, sealed until both wrote or the window ends."""
    side = await _side_of(session, contract_id, principal)
    window = await session.get(
        ReviewWindow, contract_id, with_for_update=True, populate_existing=True
    )
    if window is None:
        raise ReviewNotOpenError()
    if not is_open(window):
        raise ReviewWindowClosedError()
    reviews = await _reviews_of(session, contract_id, lock=True)
    if any(r.side == side for r in reviews):
        raise ReviewExistsError()
    photo_ids = await _attach_photos(session, body.photo_ids, principal.user_id)
    now = clock.now()
    review = Review(
        id=new_id(),
        contract_id=contract_id,
        side=side,
        author_id=principal.user_id,
        subject_id=window.pro_user_id if side == ReviewSide.CLIENT else window.client_id,
        pro_id=window.pro_id,
        category_id=window.category_id,
        work_month=window.opened_at.strftime("%Y-%m"),
        state=_S.SUBMITTED,
        comment=body.comment,
        photo_ids=photo_ids,
        helpful_count=0,
        created_at=now,
        updated_at=now,
        **body.ratings.model_dump(),
    )
    session.add(review)
    await session.flush()
    if any(r.side != side for r in reviews):
        await _publish(session, window, [*reviews, review])
    return review


async def do_edit(
    session: WriteSession, review_id: uuid.UUID, principal: Principal, body: ReviewPatch
) -> Review:
    """The author changes their review while it is sealed."""
    review = await session.get(Review, review_id, with_for_update=True, populate_existing=True)
    if review is None or (review.author_id != principal.user_id and review.state != _S.PUBLISHED):
        raise ReviewNotFoundError()
    if review.author_id != principal.user_id:
        raise NotTheAuthorError()
    if review.state != _S.SUBMITTED:
        raise ReviewPublishedError()
    if not is_open(await session.get(ReviewWindow, review.contract_id)):
        raise ReviewWindowClosedError()
    if body.ratings is not None:
        for name, stars in body.ratings.model_dump().items():
            setattr(review, name, stars)
    if body.comment is not None:
        review.comment = body.comment
    if body.photo_ids is not None:
        review.photo_ids = await _attach_photos(session, body.photo_ids, principal.user_id)
    review.updated_at = clock.now()
    await session.flush()
    return review


# ---------------------------------------------------------------- public reviews of a pro


def _check_cursor(cursor: str | None, types: Sequence[type]) -> list[Any] | None:
    """The cursor's values, each of the type its column holds (a forged cursor is a 422,
    not a database error)."""
    if not cursor:
        return None
    values = decode_cursor(cursor, len(types))
    for expected, value in zip(types, values, strict=True):
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise InvalidCursorError(field="cursor")
    return values


def _sort(sort: Sort | str) -> Sort:
    try:
        return Sort(sort)
    except ValueError as error:
        raise InvalidCursorError("Unknown sort.", field="sort") from error


def page_query(pro_id: uuid.UUID, sort: Sort | str, cursor: str | None, limit: int) -> Any:
    """One page of a pro's public reviews in the order of the sort's partial index
    (``ix_reviews_pro_newest`` / ``_helpful`` / ``_lowest``), after ``cursor``."""
    order = _sort(sort)
    keys = SORT_KEYS[order]
    after = _check_cursor(cursor, [_KEY_TYPES[k] for k in keys])
    query = select(Review).where(Review.pro_id == pro_id, _PUBLIC)
    if order != Sort.LOWEST:
        return keyset(query, [getattr(Review, k) for k in keys], cursor=cursor, limit=limit)
    # Lowest stars first, newest first among equals: the index order (overall ASC,
    # published_at DESC, id DESC), so the keyset mixes directions.
    if after is not None:
        overall, at, review_id = after
        query = query.where(
            or_(
                Review.overall > overall,
                and_(
                    Review.overall == overall,
                    tuple_(Review.published_at, Review.id) < tuple_(at, review_id),
                ),
            )
        )
    return query.order_by(Review.overall.asc(), Review.published_at.desc(), Review.id.desc()).limit(
        limit + 1
    )


async def list_for_pro(
    session: ReadSession,
    pro_id: uuid.UUID,
    sort: Sort | str = Sort.NEWEST,
    cursor: str | None = None,
    limit: int = 20,
) -> tuple[list[PublicReviewOut], str | None]:
    """A pro's published reviews by clients, a page at a time: one query on the sort's
    partial index (keyset on its columns) plus one for the authors' names."""
    rows = (await session.scalars(page_query(pro_id, sort, cursor, limit))).all()
    page, next_cursor = page_of(rows, SORT_KEYS[_sort(sort)], limit)
    names = await client_names(session, {r.author_id for r in page})
    language = get_language()
    items = [
        PublicReviewOut(
            id=r.id,
            ratings=ratings_of(r),
            comment=r.comment,
            photos=photos_of(r),
            author=names.get(r.author_id, ""),
            verified_job=verified_job(r, language),
            helpful_count=r.helpful_count,
            response=response_of(r),
            published_at=r.published_at or r.updated_at,
        )
        for r in page
    ]
    return items, next_cursor


async def voted_ids(
    session: ReadSession, user_id: uuid.UUID | None, review_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of these reviews this user found helpful (pages show the button pressed)."""
    if user_id is None or not review_ids:
        return set()
    query = select(ReviewVote.review_id).where(
        ReviewVote.user_id == user_id, ReviewVote.review_id.in_(review_ids)
    )
    return set((await session.scalars(query)).all())


# ---------------------------------------------------------------- answer, votes, reports


async def _published(session: ReadSession, review_id: uuid.UUID, *, lock: bool = False) -> Review:
    """A review anyone may see (published); the rest do not exist for them."""
    review = await session.get(
        Review, review_id, with_for_update=lock or None, populate_existing=lock
    )
    if review is None or review.state != _S.PUBLISHED:
        raise ReviewNotFoundError()
    return review


async def do_respond(
    session: WriteSession, review_id: uuid.UUID, principal: Principal, body: ResponseIn
) -> Review:
    """The reviewed pro answers a client's review, once."""
    review = await _published(session, review_id, lock=True)
    if review.side != ReviewSide.CLIENT or review.subject_id != principal.user_id:
        raise NotTheProError()
    if review.response is not None:
        raise ResponseExistsError()
    review.response = body.body
    review.responded_at = review.updated_at = clock.now()
    await session.flush()
    await notifications.do_notify(
        session,
        review.author_id,
        kind="review.response",
        subject=lazy("The professional answered your review"),
        body=lazy("The professional answered your review. Read it."),
        link=f"/pros/{review.pro_id}/reviews",
    )
    return review


async def do_vote(session: WriteSession, review_id: uuid.UUID, principal: Principal) -> HelpfulOut:
    """Mark a review helpful (once per user; repeating changes nothing)."""
    review = await _published(session, review_id)
    if review.author_id == principal.user_id:
        raise OwnReviewError()
    added = await session.scalar(
        insert(ReviewVote)
        .values(review_id=review.id, user_id=principal.user_id, created_at=clock.now())
        .on_conflict_do_nothing()
        .returning(ReviewVote.user_id)
    )
    count = await _bump(session, review.id, 1) if added is not None else review.helpful_count
    return HelpfulOut(review_id=review.id, helpful_count=count, voted=True)


async def do_unvote(
    session: WriteSession, review_id: uuid.UUID, principal: Principal
) -> HelpfulOut:
    review = await _published(session, review_id)
    removed = await session.scalar(
        delete(ReviewVote)
        .where(ReviewVote.review_id == review.id, ReviewVote.user_id == principal.user_id)
        .returning(ReviewVote.user_id)
    )
    count = await _bump(session, review.id, -1) if removed is not None else review.helpful_count
    return HelpfulOut(review_id=review.id, helpful_count=count, voted=False)


async def _bump(session: WriteSession, review_id: uuid.UUID, by: int) -> int:
    count = await session.scalar(
        update(Review)
        .where(Review.id == review_id)
        .values(helpful_count=Review.helpful_count + by)
        .returning(Review.helpful_count)
        .execution_options(synchronize_session=False)
    )
    assert count is not None
    return int(count)


async def do_report(
    session: WriteSession, review_id: uuid.UUID, principal: Principal, body: ReportIn
) -> ReviewReport:
    """Anyone signed in can report a published review to moderation, once."""
    review = await _published(session, review_id)
    report: ReviewReport | None = await session.scalar(
        insert(ReviewReport)
        .values(
            id=new_id(),
            review_id=review.id,
            reporter_id=principal.user_id,
            reason=body.reason.value,
            details=body.details,
            state=ReportState.OPEN,
            created_at=clock.now(),
        )
        .on_conflict_do_nothing()
        .returning(ReviewReport)
    )
    if report is None:
        raise AlreadyReportedError()
    return report


# ---------------------------------------------------------------- moderation (staff)


@dataclass(frozen=True)
class QueueItem:
    report: ReviewReport
    review: Review
    author: str
    open_reports: int


async def list_reports(
    session: ReadSession, principal: Principal, *, cursor: str | None, limit: int
) -> tuple[list[QueueItem], str | None]:
    """Open reports, oldest first, each with its review."""
    check_staff(principal)
    after = _check_cursor(cursor, (datetime, uuid.UUID))  # (created_at, id)
    query = select(ReviewReport, Review).join(Review, Review.id == ReviewReport.review_id)
    query = query.where(_OPEN_REPORT)
    if after is not None:
        query = query.where(tuple_(ReviewReport.created_at, ReviewReport.id) > tuple_(*after))
    query = query.order_by(ReviewReport.created_at, ReviewReport.id).limit(limit + 1)
    rows = (await session.execute(query)).all()
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit and page:
        next_cursor = encode_cursor([page[-1][0].created_at, page[-1][0].id])
    review_ids = {review.id for _, review in page}
    counts: dict[uuid.UUID, int] = {}
    if review_ids:
        counted = await session.execute(
            select(ReviewReport.review_id, func.count())
            .where(_OPEN_REPORT, ReviewReport.review_id.in_(review_ids))
            .group_by(ReviewReport.review_id)
        )
        counts = {row[0]: int(row[1]) for row in counted}
    names = await client_names(session, {review.author_id for _, review in page})
    items = [
        QueueItem(report, review, names.get(review.author_id, ""), counts.get(review.id, 0))
        for report, review in page
    ]
    return items, next_cursor


@dataclass(frozen=True)
class DecisionResult:
    report: ReviewReport
    review: Review
    closed_reports: int


async def do_decide(
    session: WriteSession,
    report_id: uuid.UUID,
    principal: Principal,
    client: ClientInfo,
    body: DecisionIn,
) -> DecisionResult:
    """Staff hide the reported review (every open report on it is closed) or keep it
    (this report is closed). Audited."""
    check_staff(principal)
    report = await session.get(
        ReviewReport, report_id, with_for_update=True, populate_existing=True
    )
    if report is None:
        raise ReportNotFoundError()
    if report.state != ReportState.OPEN:
        raise ReportDecidedError()
    reason = body.reason
    if body.action == Decision.HIDE and not reason:
        raise ReasonRequiredError(field="reason")
    review = await session.get(
        Review, report.review_id, with_for_update=True, populate_existing=True
    )
    assert review is not None
    now = clock.now()
    decided = {
        "decided_by": principal.user_id,
        "decided_at": now,
        "decision_reason": reason or None,
    }
    if body.action == Decision.HIDE:
        was_published = review.state == _S.PUBLISHED
        review.state = _S.HIDDEN
        review.hidden_reason = reason
        review.updated_at = now
        closed = await session.execute(
            update(ReviewReport)
            .where(ReviewReport.review_id == review.id, _OPEN_REPORT)
            .values(state=ReportState.HIDDEN, **decided)
            .returning(ReviewReport.id)
            .execution_options(synchronize_session=False)
        )
        closed_count = len(closed.all())
        await session.refresh(report)
        if was_published:
            await events.publish(session, ReviewHidden(review.id, review.side, review.pro_id))
        await notifications.do_notify(
            session,
            review.author_id,
            kind="review.hidden",
            subject=lazy("Your review was removed"),
            body=lazy("Our team removed your review after a report. The reason: {reason}"),
            reason=reason,
        )
    else:
        report.state = ReportState.KEPT
        for name, value in decided.items():
            setattr(report, name, value)
        closed_count = 1
    await session.flush()
    audit.record(
        session,
        "review.hidden" if body.action == Decision.HIDE else "review.kept",
        actor_id=principal.user_id,
        subject_type="review",
        subject_id=review.id,
        ip=client.ip,
        user_agent=client.user_agent,
        report_id=str(report.id),
        reason=reason,
        closed_reports=closed_count,
    )
    return DecisionResult(report, review, closed_count)
