"""Each pro's reputation (SPEC M7), kept current by events and read, never recomputed, by
profiles, search cards and proposals. docs/reputation.md explains it to pros.

- rating: the Bayesian average of published client reviews with recency weights
  (``kit.recency``): a pro with one 5★ review sits near the prior, one with two hundred
  4.8★ reviews near 4.8; per-dimension plain averages beside it;
- on time: the recency-weighted share of delivered milestones first submitted by their due
  date (a milestone refunded because it was never delivered counts as late);
- completion: contracts completed / contracts that ended after signing;
- response time: a moving average of the hours from seeing a lead to proposing.

Each handler locks the pro's row and adds one term to its running sums; the figures
shown are ratios of those sums (``view_of``), and the headline ones are copied to the
pro's profile, which re-ranks them in search (``pros.service.do_set_reputation``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert

from mesteri.config import Settings, get_settings
from mesteri.contracts import service as contracts
from mesteri.contracts.events import ContractEnded
from mesteri.kit import clock, events, recency
from mesteri.kit.db import ReadSession, WriteSession
from mesteri.milestones import service as milestones
from mesteri.milestones.events import MilestoneSettled
from mesteri.milestones.models import Milestone, MilestoneState
from mesteri.proposals.events import ProposalSent
from mesteri.pros import service as pros
from mesteri.reviews.events import ReviewHidden, ReviewPublished
from mesteri.reviews.models import DIMENSIONS, Reputation, Review, ReviewSide

RESPONSE_SMOOTHING = 0.2  # the newest lead's share of the response-time average
# The search signal for delivery starts from this on-time share, worth this many milestones,
# so a pro's first late (or early) delivery does not swing their ranking to an extreme.
DELIVERY_PRIOR = 0.8
DELIVERY_PRIOR_WEIGHT = 2.0


@dataclass(frozen=True)
class ReputationView:
    """What a profile shows."""

    score: float | None  # Bayesian, 1..5
    rating: float | None  # plain average of overall ratings
    reviews_count: int
    dimensions: dict[str, float | None]
    on_time: float | None
    milestones_delivered: int
    completion_rate: float | None
    contracts_ended: int
    response_hours: float | None


def _average(total: int, count: int) -> float | None:
    return round(total / count, 2) if count else None


def _ratio(part: float, whole: float, digits: int) -> float | None:
    return round(part / whole, digits) if whole else None


def view_of(rep: Reputation | None) -> ReputationView:
    if rep is None:
        return ReputationView(None, None, 0, dict.fromkeys(DIMENSIONS), None, 0, None, 0, None)
    score = None
    if rep.reviews_count:
        score = round(_rating_score(rep.weighted_sum, rep.weight, get_settings()), 2)
    return ReputationView(
        score=score,
        rating=_average(rep.overall_sum, rep.reviews_count),
        reviews_count=rep.reviews_count,
        dimensions={
            d: _average(getattr(rep, f"{d}_sum"), getattr(rep, f"{d}_count")) for d in DIMENSIONS
        },
        on_time=_ratio(rep.on_time_weighted, rep.on_time_weight, 3),
        milestones_delivered=rep.milestones_delivered,
        completion_rate=_ratio(rep.contracts_completed, rep.contracts_ended, 3),
        contracts_ended=rep.contracts_ended,
        response_hours=round(rep.response_hours, 1) if rep.response_hours is not None else None,
    )


async def reputation_of(session: ReadSession, pro_id: uuid.UUID) -> ReputationView:
    return view_of(await session.get(Reputation, pro_id))


# ---------------------------------------------------------------- keeping it current


async def _locked(session: WriteSession, pro_id: uuid.UUID) -> Reputation:
    await session.execute(
        insert(Reputation)
        .values(pro_id=pro_id, updated_at=clock.now())
        .on_conflict_do_nothing(index_elements=[Reputation.pro_id])
    )
    rep = await session.get(Reputation, pro_id, with_for_update=True, populate_existing=True)
    assert rep is not None
    return rep


def _rating_score(weighted_sum: float, weight: float, settings: Settings) -> float:
    """The Bayesian, recency-weighted rating at today's weights (docs/reputation.md)."""
    return recency.smoothed(
        weighted_sum,
        weight,
        prior=settings.rank_prior_rating,
        prior_weight=settings.rank_prior_weight,
        factor=recency.decay(clock.now(), settings.reputation_half_life_days),
    )


async def _save(session: WriteSession, rep: Reputation) -> None:
    settings = get_settings()
    rep.updated_at = clock.now()
    delivery = recency.smoothed(
        rep.on_time_weighted,
        rep.on_time_weight,
        prior=DELIVERY_PRIOR,
        prior_weight=DELIVERY_PRIOR_WEIGHT,
        factor=recency.decay(clock.now(), settings.reputation_half_life_days),
    )
    await session.flush()
    await pros.do_set_reputation(
        session,
        rep.pro_id,
        pros.ReputationFigures(
            rating_avg=_average(rep.overall_sum, rep.reviews_count),
            reviews_count=rep.reviews_count,
            rating_weighted_sum=rep.weighted_sum,
            rating_weight=rep.weight,
            delivery_score=delivery,
        ),
    )


def _count_review(rep: Reputation, review: Review, sign: int) -> None:
    """Add (+1) or take back (-1) one published review; its weight is fixed by the day it
    was published, so taking it back removes exactly what was added."""
    assert review.published_at is not None
    weight = recency.growth(review.published_at, get_settings().reputation_half_life_days)
    rep.reviews_count += sign
    rep.overall_sum += sign * review.overall
    rep.weighted_sum += sign * weight * review.overall
    rep.weight += sign * weight
    for dimension in DIMENSIONS:
        rating = getattr(review, dimension)
        if rating is not None:
            setattr(rep, f"{dimension}_count", getattr(rep, f"{dimension}_count") + sign)
            setattr(rep, f"{dimension}_sum", getattr(rep, f"{dimension}_sum") + sign * rating)
    if rep.reviews_count == 0:  # float crumbs of added and removed weights
        rep.weighted_sum = rep.weight = 0.0


@events.subscribe(ReviewPublished)
async def _on_review_published(session: Any, event: ReviewPublished) -> None:
    if event.side != ReviewSide.CLIENT:
        return  # reviews of clients are shown to pros, not ranked
    review = await session.get(Review, event.review_id)
    rep = await _locked(session, event.pro_id)
    _count_review(rep, review, +1)
    await _save(session, rep)


@events.subscribe(ReviewHidden)
async def _on_review_hidden(session: Any, event: ReviewHidden) -> None:
    if event.side != ReviewSide.CLIENT:
        return
    review = await session.get(Review, event.review_id)
    rep = await _locked(session, event.pro_id)
    _count_review(rep, review, -1)
    await _save(session, rep)


async def _first_submitted_at(session: ReadSession, milestone_id: uuid.UUID) -> datetime | None:
    for record in await milestones.history(session, [milestone_id]):
        if record.transition == "submit":
            return record.at  # type: ignore[no-any-return]
    return None


async def _delivery_outcome(session: ReadSession, milestone: Milestone) -> bool | None:
    """On time (True), late (False), or not a delivery at all (None)."""
    if milestone.state == MilestoneState.REFUNDED:
        records = await milestones.history(session, [milestone.id])
        return False if records and records[-1].transition == "expire_overdue" else None
    if milestone.state not in milestones.PAID:
        return None
    submitted = await _first_submitted_at(session, milestone.id)
    if submitted is None:
        return None  # paid by a dispute decision without a delivery
    return milestone.due_date is None or submitted.date() <= milestone.due_date


@events.subscribe(MilestoneSettled)
async def _on_milestone_settled(session: Any, event: MilestoneSettled) -> None:
    milestone = await session.get(Milestone, event.milestone_id)
    on_time = await _delivery_outcome(session, milestone)
    pro_id = await pros.pro_id_of(session, milestone.pro_user_id)
    if on_time is None or pro_id is None:
        return
    rep = await _locked(session, pro_id)
    weight = recency.growth(clock.now(), get_settings().reputation_half_life_days)
    rep.milestones_delivered += 1
    rep.on_time_weighted += weight * on_time
    rep.on_time_weight += weight
    await _save(session, rep)


@events.subscribe(ContractEnded)
async def _on_contract_ended(session: Any, event: ContractEnded) -> None:
    if event.outcome not in ("completed", "cancelled"):
        return  # withdrawn before signing: no work was agreed
    contract = await contracts.get_contract(session, event.contract_id)
    if contract is None:
        return
    rep = await _locked(session, contract.pro_id)
    rep.contracts_ended += 1
    rep.contracts_completed += event.outcome == "completed"
    await _save(session, rep)


@events.subscribe(ProposalSent)
async def _on_proposal_sent(session: Any, event: ProposalSent) -> None:
    hours = max(0.0, (event.sent_at - event.lead_at).total_seconds() / 3600)
    rep = await _locked(session, event.pro_id)
    previous = rep.response_hours
    rep.response_hours = (
        hours
        if previous is None
        else (1 - RESPONSE_SMOOTHING) * previous + RESPONSE_SMOOTHING * hours
    )
    rep.leads_answered += 1
    await _save(session, rep)
