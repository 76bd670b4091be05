"""A pro's public reviews: the three sorts, keyset pages that neither repeat nor skip,
the partial index each sort reads, and the number of queries a page costs."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from mesteri.kit import clock
from mesteri.kit.pagination import encode_cursor
from mesteri.reviews import service
from tests.conftest import count_queries
from tests.fixtures.accounts import bearer, register
from tests.fixtures.reviews import listed, published_review
from tests.milestones.conftest import API, Room

pytestmark = pytest.mark.asyncio

# (overall, days ago, helpful votes already counted)
SHAPE = [(5, 1, 0), (2, 2, 3), (4, 3, 1), (2, 4, 0), (1, 5, 1), (5, 6, 3)]


async def _seed(room: Room) -> list[uuid.UUID]:
    now = clock.now()
    return [
        await published_review(room, overall=o, published_at=now - timedelta(days=d), helpful=h)
        for o, d, h in SHAPE
    ]


async def _all_pages(room: Room, sort: str, limit: int) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    for _ in range(20):
        params: dict[str, Any] = {"sort": sort, "limit": limit}
        if cursor:
            params["cursor"] = cursor
        page = await listed(room, **params)
        assert len(page["items"]) <= limit
        ids += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("pagination does not end")


async def test_sorts_and_cursor_pages(room: Room) -> None:
    ids = [str(i) for i in await _seed(room)]
    newest = [item["id"] for item in (await listed(room, limit=50))["items"]]
    assert newest == ids  # seeded newest first
    helpful = [item["id"] for item in (await listed(room, sort="helpful"))["items"]]
    # 3 votes (day 2, then day 6), 1 vote (day 3, then day 5), none (day 1, then day 4)
    assert helpful == [ids[1], ids[5], ids[2], ids[4], ids[0], ids[3]]
    lowest_items = (await listed(room, sort="lowest"))["items"]
    assert [i["ratings"]["overall"] for i in lowest_items] == [1, 2, 2, 4, 5, 5]
    lowest = [i["id"] for i in lowest_items]
    assert lowest == [ids[4], ids[1], ids[3], ids[2], ids[0], ids[5]]

    for sort, full in (("newest", newest), ("helpful", helpful), ("lowest", lowest)):
        for limit in (1, 2, 4):
            assert await _all_pages(room, sort, limit) == full, (sort, limit)
    last = await listed(room, limit=6)
    assert last["next_cursor"] is None


async def test_votes_reorder_the_helpful_sort(room: Room) -> None:
    now = clock.now()
    older = await published_review(room, overall=4, published_at=now - timedelta(days=2))
    newer = await published_review(room, overall=4, published_at=now - timedelta(days=1))
    assert [i["id"] for i in (await listed(room, sort="helpful"))["items"]] == [
        str(newer),
        str(older),
    ]
    voter = await register(room.http, first_name="Vlad", last_name="Dinu")
    voted = await room.http.post(f"{API}/reviews/{older}/helpful", headers=bearer(voter))
    assert voted.status_code == 200, voted.text
    items = (await listed(room, sort="helpful"))["items"]
    assert [(i["id"], i["helpful_count"]) for i in items] == [(str(older), 1), (str(newer), 0)]


async def test_bad_sort_and_cursor_are_422_not_500(room: Room) -> None:
    await published_review(room, overall=3, published_at=clock.now())
    url = f"{API}/pros/{room.pro_id}/reviews"
    assert (await room.http.get(url, params={"sort": "best"})).status_code == 422
    assert (await room.http.get(url, params={"cursor": "%%%"})).status_code == 422
    forged = encode_cursor(["yesterday", "not-an-id"])
    assert (await room.http.get(url, params={"cursor": forged})).status_code == 422
    wrong_shape = encode_cursor([clock.now(), uuid.uuid4()])
    response = await room.http.get(url, params={"cursor": wrong_shape, "sort": "lowest"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_cursor"
    assert (await room.http.get(url, params={"limit": 0})).status_code == 422


async def test_a_page_costs_one_query_plus_one_for_names(room: Room) -> None:
    for days in range(5):
        await published_review(room, overall=4, published_at=clock.now() - timedelta(days=days))
    with count_queries(room.live.engine) as statements:
        page = await listed(room, limit=5)
    assert len(page["items"]) == 5
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len([s for s in selects if "FROM reviews" in s]) == 1
    assert len([s for s in selects if "FROM users" in s]) == 1
    assert len(selects) == 2, selects


@pytest.mark.parametrize(
    ("sort", "index"),
    [
        ("newest", "ix_reviews_pro_newest"),
        ("helpful", "ix_reviews_pro_helpful"),
        ("lowest", "ix_reviews_pro_lowest"),
    ],
)
async def test_each_sort_reads_its_partial_index(room: Room, sort: str, index: str) -> None:
    for days in (1, 2):
        await published_review(room, overall=3, published_at=clock.now() - timedelta(days=days))
    first = await listed(room, sort=sort, limit=1)
    assert first["next_cursor"] is not None  # the second query starts after a cursor
    assert room.pro_id is not None
    for cursor in (None, first["next_cursor"]):
        query = service.page_query(room.pro_id, sort, cursor, 20)
        async with room.live.engine.connect() as conn:
            await conn.exec_driver_sql("SET enable_seqscan = off")
            await conn.exec_driver_sql("SET enable_bitmapscan = off")
            compiled = query.compile(dialect=conn.dialect)
            params = tuple(compiled.params[k] for k in compiled.positiontup or ())
            rows = await conn.exec_driver_sql(f"EXPLAIN {compiled}", params)
            plan = "\n".join(r[0] for r in rows)
        assert index in plan, plan
        assert "Sort" not in plan.replace("Sort Key", ""), plan
