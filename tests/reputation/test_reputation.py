"""Reputation: the Bayesian, recency-weighted rating orders pros fairly in search, and
the other signals follow the events that feed them."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
import pytest

from mesteri.kit import clock, recency
from mesteri.kit.db import WriteSession
from mesteri.reviews import reputation
from mesteri.reviews.models import Review
from tests.fixtures.market import insert_job, make_client, make_verified_pro
from tests.fixtures.proposals import send_proposal
from tests.fixtures.pros import API, PLUMBING, make_pro
from tests.milestones.conftest import Room, room

__all__ = ["room"]


async def _review(db: WriteSession, pro_id: str, *ratings: int, days_ago: int = 0) -> None:
    """Count published reviews with these overall ratings, as the event handler does."""
    rep = await reputation._locked(db, uuid.UUID(pro_id))
    for overall in ratings:
        review = Review(overall=overall, published_at=clock.now() - timedelta(days=days_ago))
        for dimension in ("quality", "punctuality", "communication", "value"):
            setattr(review, dimension, None)
        reputation._count_review(rep, review, +1)
    await reputation._save(db, rep)


async def _order(client: httpx.AsyncClient, sort: str) -> list[str]:
    response = await client.get(
        f"{API}/pros", params={"category": str(PLUMBING), "sort": sort, "limit": 20}
    )
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_many_good_reviews_outrank_one_perfect_review(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    _, lucky = await make_pro(client, display_name="Unu Perfect")
    _, steady = await make_pro(client, display_name="Două Sute")
    _, middling = await make_pro(client, display_name="Douăzeci Medii")
    _, newcomer = await make_pro(client, display_name="Fără Recenzii")
    await _review(db, lucky["id"], 5)
    await _review(db, steady["id"], *([5] * 160 + [4] * 40))  # 4.8 from 200
    await _review(db, middling["id"], *([5] * 10 + [4] * 10))  # 4.5 from 20

    shown = {p: (await client.get(f"{API}/pros/{p}")).json() for p in (lucky["id"], steady["id"])}
    assert shown[lucky["id"]]["rating"] == 5.0  # the stars shown are the plain average
    assert shown[steady["id"]]["rating"] == 4.8
    assert shown[steady["id"]]["reputation"]["reviews_count"] == 200
    # The smoothed score: (5·4.0 + 5) / 6 for one review; close to 4.8 for two hundred.
    assert shown[lucky["id"]]["reputation"]["score"] == pytest.approx(25 / 6, abs=0.01)
    assert shown[steady["id"]]["reputation"]["score"] == pytest.approx(980 / 205, abs=0.01)

    order = await _order(client, "rating")
    assert order.index(steady["id"]) < order.index(middling["id"]) < order.index(lucky["id"])
    assert order.index(lucky["id"]) < order.index(newcomer["id"])  # 4.17 over the 4.0 prior
    relevance = await _order(client, "relevance")
    assert relevance.index(steady["id"]) < relevance.index(lucky["id"])


async def test_recent_reviews_weigh_more_than_old_ones(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    _, improved = await make_pro(client, display_name="S-a Îndreptat")
    _, declined = await make_pro(client, display_name="S-a Stricat")
    half_life = 365
    # The same ten ratings, in opposite order over time.
    await _review(db, improved["id"], *([2] * 5), days_ago=3 * half_life)
    await _review(db, improved["id"], *([5] * 5))
    await _review(db, declined["id"], *([5] * 5), days_ago=3 * half_life)
    await _review(db, declined["id"], *([2] * 5))

    a = (await client.get(f"{API}/pros/{improved['id']}")).json()
    b = (await client.get(f"{API}/pros/{declined['id']}")).json()
    assert a["rating"] == b["rating"] == 3.5  # plain averages are equal
    assert a["reputation"]["score"] > 4.3 > 3.2 > b["reputation"]["score"]
    order = await _order(client, "rating")
    assert order.index(improved["id"]) < order.index(declined["id"])


def test_stored_weights_age_without_rewriting() -> None:
    """A review's stored weight never changes; today's weight halves every half-life."""
    now = clock.now()
    year_old = recency.growth(now - timedelta(days=365), 365) * recency.decay(now, 365)
    fresh = recency.growth(now, 365) * recency.decay(now, 365)
    assert fresh == pytest.approx(1.0)
    assert year_old == pytest.approx(0.5)


async def test_taking_a_review_back_restores_the_reputation(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    _, pro = await make_pro(client, display_name="Moderat")
    await _review(db, pro["id"], 4, 4, days_ago=30)
    before = (await client.get(f"{API}/pros/{pro['id']}")).json()["reputation"]
    rep = await reputation._locked(db, uuid.UUID(pro["id"]))
    spam = Review(
        overall=1,
        quality=1,
        punctuality=None,
        communication=None,
        value=None,
        published_at=clock.now(),
    )
    reputation._count_review(rep, spam, +1)
    await reputation._save(db, rep)
    assert (await client.get(f"{API}/pros/{pro['id']}")).json()["reputation"]["reviews_count"] == 3
    reputation._count_review(rep, spam, -1)
    await reputation._save(db, rep)
    after = (await client.get(f"{API}/pros/{pro['id']}")).json()["reputation"]
    assert after["score"] == pytest.approx(before["score"])
    assert {**after, "score": None} == {**before, "score": None}


async def test_deliveries_and_contracts_feed_the_reputation(room: Room) -> None:
    """On time and late deliveries, the contract's end: through the real lifecycle."""
    early, late = await room.contract(40_000, 60_000, due=clock.now().date() + timedelta(days=3))
    await room.fund(early)
    await room.fund(late)
    await room.deliver(early)
    await room.ok(early, "accept", room.client)
    await room.advance("P5D")  # past the due date
    await room.deliver(late)
    await room.ok(late, "accept", room.client)

    shown = await room.http.get(f"{API}/pros/{room.pro_id}")
    rep = shown.json()["reputation"]
    assert rep["milestones_delivered"] == 2
    assert 0.4 < rep["on_time"] < 0.6  # one of two, the later one weighing a little more
    assert (rep["contracts_ended"], rep["completion_rate"]) == (1, 1.0)
    assert rep["reviews_count"] == 0


async def test_response_time_follows_the_leads_answered(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    owner = await make_client(client)
    pro = await make_verified_pro(client, db)
    # Seen 10 hours ago, then another published 2 hours ago: 10, then 0.8·10 + 0.2·2.
    first = await insert_job(db, owner.user_id, published_at=clock.now() - timedelta(hours=10))
    second = await insert_job(db, owner.user_id, published_at=clock.now() - timedelta(hours=2))
    await send_proposal(client, pro.headers, first.id)
    rep = (await client.get(f"{API}/pros/{pro.pro_id}")).json()["reputation"]
    assert rep["response_hours"] == pytest.approx(10.0, abs=0.1)
    await send_proposal(client, pro.headers, second.id)
    rep = (await client.get(f"{API}/pros/{pro.pro_id}")).json()["reputation"]
    assert rep["response_hours"] == pytest.approx(8.4, abs=0.1)
