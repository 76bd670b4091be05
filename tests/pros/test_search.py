"""Search correctness on a constructed data set, and the documented score."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from mesteri.config import get_settings
from mesteri.kit import clock, recency
from mesteri.kit.db import WriteSession
from mesteri.pros import service
from mesteri.pros.models import ProProfile
from tests.fixtures.accounts import bearer, register
from tests.fixtures.pros import (
    API,
    BRASOV,
    BUCHAREST,
    DRAIN_CLEANING,
    INSTALLATIONS,
    PAINTING,
    PLOIESTI,
    PLUMBING,
    make_pro,
    png_bytes,
    upload,
)

TODAY = recency.growth(clock.now(), get_settings().reputation_half_life_days)


async def _set(db: WriteSession, pro_id: str, **values: Any) -> None:
    """Change a pro as the reviews and delivery modules will, then refresh its rank."""
    await db.execute(update(ProProfile).where(ProProfile.id == pro_id).values(**values))
    await service.do_refresh_rank(db, uuid.UUID(pro_id))


@pytest.fixture
async def market(client: httpx.AsyncClient, db: WriteSession) -> dict[str, str]:
    """Five pros: a Bucharest plumber (verified), a Bucharest drain specialist (pending),
    a Ploiești plumber 56 km away, a Brașov painter with diacritics, a busy painter."""
    _, near = await make_pro(client, display_name="Ion Țurcanu Instalații")
    _, drain = await make_pro(
        client,
        display_name="Desfundări Rapid",
        crafts=[{"category_id": str(DRAIN_CLEANING), "primary": True, "years": 3}],
    )
    _, far = await make_pro(client, display_name="Ploiești Instal", place_id=str(PLOIESTI))
    _, painter = await make_pro(
        client,
        display_name="Zugrav Brașovean",
        bio="Zugrăveli decorative și vopsitorie în Brașov.",
        crafts=[{"category_id": str(PAINTING), "primary": True, "years": 12}],
        place_id=str(BRASOV),
    )
    _, busy = await make_pro(
        client,
        display_name="Maria Vopsitoria",
        crafts=[
            {"category_id": str(PAINTING), "primary": True, "years": 2},
            {"category_id": str(PLUMBING), "primary": False, "years": 1},
        ],
    )
    await _set(
        db,
        near["id"],
        verification_state="verified",
        rating_avg=4.9,
        reviews_count=20,
        # twenty reviews published today (sums are kept in epoch-relative weights)
        rating_weighted_sum=98.0 * TODAY,
        rating_weight=20.0 * TODAY,
        delivery_score=0.95,
    )
    await _set(db, drain["id"], verification_state="pending")
    await _set(db, busy["id"], availability="busy")
    return {
        "near": near["id"],
        "drain": drain["id"],
        "far": far["id"],
        "painter": painter["id"],
        "busy": busy["id"],
    }


async def _ids(client: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await client.get(f"{API}/pros", params=params)
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_radius_excludes_the_pro_60_km_away(
    client: httpx.AsyncClient, market: dict[str, str]
) -> None:
    response = await client.get(
        f"{API}/pros", params={"place_id": str(BUCHAREST), "radius_km": 40, "category": "plumbing"}
    )
    items = response.json()["items"]
    ids = {i["id"] for i in items}
    assert market["far"] not in ids
    assert {market["near"], market["drain"], market["busy"]} <= ids
    assert all(i["distance_km"] is not None and i["distance_km"] <= 40 for i in items)
    wider = await _ids(client, place_id=str(BUCHAREST), radius_km=80, category="plumbing")
    assert market["far"] in wider
    far = next(
        i
        for i in (
            await client.get(
                f"{API}/pros",
                params={"place_id": str(BUCHAREST), "radius_km": 80, "category": "plumbing"},
            )
        ).json()["items"]
        if i["id"] == market["far"]
    )
    assert 50 < far["distance_km"] < 65


async def test_sub_category_search_finds_the_child_craft(
    client: httpx.AsyncClient, market: dict[str, str]
) -> None:
    by_parent = await _ids(client, category="plumbing")
    assert market["drain"] in by_parent  # drain-cleaning sits under plumbing
    by_grandparent = await _ids(client, category=str(INSTALLATIONS))
    assert market["drain"] in by_grandparent
    assert market["painter"] not in by_grandparent
    assert await _ids(client, category="drain-cleaning") == [market["drain"]]


async def test_text_match_ignores_diacritics_and_matches_prefixes(
    client: httpx.AsyncClient, market: dict[str, str]
) -> None:
    assert market["painter"] in await _ids(client, q="brasovean")
    assert market["painter"] in await _ids(client, q="Brașovean")
    assert market["painter"] in await _ids(client, q="zugraveli decor")
    assert market["near"] in await _ids(client, q="turc")  # "Țurcanu", typed as you go
    # craft names in every language are searchable: "Vízszerelés" (hu) is plumbing
    assert market["near"] in await _ids(client, q="vizszer")
    assert await _ids(client, q="zzzz-nothing") == []


async def test_verified_only(client: httpx.AsyncClient, market: dict[str, str]) -> None:
    assert await _ids(client, category="plumbing", verified="true") == [market["near"]]
    response = await client.get(f"{API}/pros", params={"verified": "true"})
    assert all(i["verified"] for i in response.json()["items"])


async def test_filters(client: httpx.AsyncClient, market: dict[str, str]) -> None:
    available = await _ids(client, category="painting", available="true")
    assert market["painter"] in available
    assert market["busy"] not in available
    assert await _ids(client, category="plumbing", min_rating=4.5) == [market["near"]]
    assert market["near"] not in await _ids(client, max_rate=7000)
    assert market["near"] in await _ids(client, language="en", category="plumbing")
    assert await _ids(client, language="hu") == []


async def test_ordering_follows_the_documented_score(
    client: httpx.AsyncClient, market: dict[str, str]
) -> None:
    response = await client.get(f"{API}/pros", params={"category": "plumbing"})
    items = response.json()["items"]
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)
    s = get_settings()
    prior = ((s.rank_prior_weight * s.rank_prior_rating) / s.rank_prior_weight - 1) / 4
    by_id = {i["id"]: i for i in items}
    # the verified, well-reviewed, punctual plumber whose primary craft matches ranks first
    expected_near = (
        s.rank_skill * 1.0
        + s.rank_reviews
        * ((s.rank_prior_weight * s.rank_prior_rating + 98.0) / (s.rank_prior_weight + 20.0) - 1)
        / 4
        + s.rank_delivery * 0.95
        + s.rank_availability * 1.0
        + s.rank_verified_boost
    )
    assert items[0]["id"] == market["near"]
    assert by_id[market["near"]]["score"] == pytest.approx(expected_near, abs=1e-3)
    # a busy pro for whom plumbing is a secondary craft: 0.6 skill, 0.3 availability
    expected_busy = s.rank_skill * 0.6 + s.rank_reviews * prior + s.rank_availability * 0.3
    assert by_id[market["busy"]]["score"] == pytest.approx(expected_busy, abs=1e-3)
    assert items[-1]["id"] == market["busy"]


async def test_cursor_pages_cover_everything_once(
    client: httpx.AsyncClient, market: dict[str, str]
) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {
            "limit": 2,
            "place_id": str(BUCHAREST),
            "radius_km": 500,
            "sort": "distance",
        }
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(f"{API}/pros", params=params)).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted(set(seen))
    assert set(market.values()) <= set(seen)
    assert (await client.get(f"{API}/pros", params={"sort": "distance"})).status_code == 422


async def test_results_and_profiles_carry_no_contact_details(
    client: httpx.AsyncClient, market: dict[str, str]
) -> None:
    profile = await client.get(f"{API}/pros/{market['near']}")
    assert profile.status_code == 200
    body = profile.text
    assert "@" not in body
    assert "+40" not in body
    assert "business_id" not in profile.json()
    assert profile.json()["verified"] is True
    assert "verified" in profile.json()["badges"]


async def test_suggest(client: httpx.AsyncClient, market: dict[str, str]) -> None:
    response = await client.get(f"{API}/search/suggest", params={"q": "zug"})
    items = response.json()["items"]
    types = {i["type"] for i in items}
    assert "category" in types  # "Zugrăveli și vopsitorie"
    assert any(i["type"] == "pro" and i["id"] == market["painter"] for i in items)
    places = (await client.get(f"{API}/search/suggest", params={"q": "brasov"})).json()["items"]
    assert any(i["type"] == "place" and i["label"] == "Brașov" for i in places)


async def test_saved_pros_and_opt_in_history(
    client: httpx.AsyncClient, market: dict[str, str]
) -> None:
    auth = bearer(await register(client))
    assert (
        await client.post(f"{API}/saved-pros/{market['painter']}", headers=auth)
    ).status_code == 204
    assert (
        await client.post(f"{API}/saved-pros/{market['painter']}", headers=auth)
    ).status_code == 204
    saved = (await client.get(f"{API}/saved-pros", headers=auth)).json()["items"]
    assert [p["id"] for p in saved] == [market["painter"]]
    await client.delete(f"{API}/saved-pros/{market['painter']}", headers=auth)
    assert (await client.get(f"{API}/saved-pros", headers=auth)).json()["items"] == []

    await client.get(f"{API}/pros", params={"q": "instal"}, headers=auth)
    assert (await client.get(f"{API}/me/search-history", headers=auth)).json()["items"] == []
    opted = await client.patch(f"{API}/clients/me", json={"search_history": True}, headers=auth)
    assert opted.json()["search_history"] is True
    await client.get(f"{API}/pros", params={"q": "instal"}, headers=auth)
    history = (await client.get(f"{API}/me/search-history", headers=auth)).json()["items"]
    assert [h["query"]["q"] for h in history] == ["instal"]
    await client.patch(f"{API}/clients/me", json={"search_history": False}, headers=auth)
    assert (await client.get(f"{API}/me/search-history", headers=auth)).json()["items"] == []


@pytest.mark.parametrize("window", [2, 3, 100])
@pytest.mark.parametrize("near", [False, True])
async def test_relevance_pages_cover_every_match_once_past_the_window(
    client: httpx.AsyncClient,
    market: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    window: int,
    near: bool,
) -> None:
    """The default sort re-ranks the best ``search_window`` candidates, then continues in
    rank order: whatever the window, paging shows every match exactly once."""
    monkeypatch.setattr(get_settings(), "search_window", window)
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        params: dict[str, Any] = {"limit": 2}
        if near:  # through the search index (craft + radius)
            params.update(category="installations", place_id=str(BUCHAREST), radius_km=200)
        if cursor:
            params["cursor"] = cursor
        page = (await client.get(f"{API}/pros", params=params)).json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen))
    expected = (
        {market[k] for k in ("near", "drain", "far", "busy")} if near else set(market.values())
    )
    assert expected <= set(seen)
    if near:
        assert market["painter"] not in seen
    bad = await client.get(f"{API}/pros", params={"cursor": "bm90LWEtY3Vyc29y"})
    assert bad.status_code == 422


async def test_search_index_path_agrees_with_the_plain_path(
    client: httpx.AsyncClient, market: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Craft + radius queries read the (craft x map cell) search index; the same query
    through the profile table's indexes gives the same answer."""
    from mesteri.pros import search

    params = {"category": "plumbing", "place_id": str(BUCHAREST), "radius_km": 80, "q": "instal"}
    fast = (await client.get(f"{API}/pros", params=params)).json()["items"]
    monkeypatch.setattr(search, "MAX_INDEX_LISTS", 0)
    plain = (await client.get(f"{API}/pros", params=params)).json()["items"]
    assert [(i["id"], i["score"], i["distance_km"]) for i in fast] == [
        (i["id"], i["score"], i["distance_km"]) for i in plain
    ]
    assert {market["near"], market["far"]} <= {i["id"] for i in fast}


async def test_hot_endpoints_run_a_fixed_number_of_queries(
    client: httpx.AsyncClient, market: dict[str, str], engine: Any
) -> None:
    from tests.conftest import count_queries

    params = {"category": "plumbing", "place_id": str(BUCHAREST), "radius_km": 30, "q": "ins"}
    await client.get(f"{API}/pros", params=params)  # warm caches
    with count_queries(engine) as statements:
        response = await client.get(f"{API}/pros", params=params)
    assert response.status_code == 200
    selects = [s for s in statements if s.lstrip().upper().startswith(("SELECT", "WITH"))]
    assert len(selects) == 2, selects  # candidates from the search index, then those rows
    with count_queries(engine) as statements:
        profile = await client.get(f"{API}/pros/{market['near']}")
    assert profile.status_code == 200
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 3, selects  # the profile, its crafts, its reputation


async def test_nul_characters_never_reach_the_database(client: httpx.AsyncClient) -> None:
    # In a query string: a clear 422 (every endpoint); in stored text: dropped.
    for path, q in (("search/suggest", "\x00ab"), ("places", "bra\x00"), ("pros", "in\x00st")):
        refused = await client.get(f"{API}/{path}", params={"q": q})
        assert (refused.status_code, refused.json()["code"]) == (422, "invalid_input")
    headers, _ = await make_pro(client)
    patched = await client.patch(
        f"{API}/pros/me",
        json={"bio": "Bună\x00 ziua", "display_name": "Ana\x00 B"},
        headers=headers,
    )
    assert patched.status_code == 200
    assert patched.json()["bio"] == "Bună ziua"


async def _portfolio(client: httpx.AsyncClient, headers: dict[str, str], *cats: Any) -> None:
    for category in cats:
        done = await upload(client, headers, png_bytes(), content_type="image/png")
        assert done.status_code == 200, done.text
        body = {"media_id": done.json()["id"], "category_id": str(category) if category else None}
        added = await client.post(f"{API}/pros/me/portfolio", json=body, headers=headers)
        assert added.status_code == 201, added.text


async def test_portfolio_fit_counts_work_in_the_searched_category(
    client: httpx.AsyncClient,
) -> None:
    """Two plumbers alike but for their portfolios: plumbing work (one item untagged, which
    counts as the primary craft) against painting work. Searching plumbing, the first
    gains 2/10 of the portfolio weight over the second; without a category, size alone
    counts and they tie; both search paths compute the same score."""
    s = get_settings()
    crafts = [
        {"category_id": str(PLUMBING), "primary": True, "years": 4},
        {"category_id": str(PAINTING), "primary": False, "years": 2},
    ]
    plumber_headers, plumber = await make_pro(client, display_name="Fit Plumber", crafts=crafts)
    painter_headers, painter = await make_pro(client, display_name="Fit Painter", crafts=crafts)
    await _portfolio(client, plumber_headers, DRAIN_CLEANING, None)
    await _portfolio(client, painter_headers, PAINTING, PAINTING)

    def scores(items: list[dict[str, Any]]) -> dict[str, float]:
        return {i["id"]: i["score"] for i in items if i["id"] in (plumber["id"], painter["id"])}

    plumbing = scores(
        (await client.get(f"{API}/pros", params={"category": "plumbing"})).json()["items"]
    )
    assert plumbing[plumber["id"]] - plumbing[painter["id"]] == pytest.approx(
        s.rank_portfolio * 0.2, abs=1e-6
    )
    painting = scores(
        (await client.get(f"{API}/pros", params={"category": "painting"})).json()["items"]
    )
    assert painting[painter["id"]] - painting[plumber["id"]] == pytest.approx(
        s.rank_portfolio * 0.2, abs=1e-6
    )
    anything = scores((await client.get(f"{API}/pros", params={"q": "Fit"})).json()["items"])
    assert anything[plumber["id"]] == pytest.approx(anything[painter["id"]], abs=1e-6)
    by_rating = scores(
        (await client.get(f"{API}/pros", params={"category": "plumbing", "sort": "rating"})).json()[
            "items"
        ]
    )
    assert by_rating == pytest.approx(plumbing, abs=1e-6)


@pytest.mark.parametrize("near", [False, True])
async def test_every_window_is_ordered_by_the_full_score(
    client: httpx.AsyncClient,
    market: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    near: bool,
) -> None:
    """Past the first window, pages are re-ranked the same way: each block of
    ``search_window`` results is ordered by the full score (craft match included), and
    one-result pages give the same sequence as one big page."""
    monkeypatch.setattr(get_settings(), "search_window", 2)
    params: dict[str, Any] = {"category": "installations"}
    if near:
        params.update(place_id=str(BUCHAREST), radius_km=200)
    one_page = (await client.get(f"{API}/pros", params={**params, "limit": 50})).json()
    assert one_page["next_cursor"] is None
    sequence, cursor = [], None
    for _ in range(20):
        page = (
            await client.get(
                f"{API}/pros",
                params={**params, "limit": 1, **({"cursor": cursor} if cursor else {})},
            )
        ).json()
        sequence += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [i["id"] for i in sequence] == [i["id"] for i in one_page["items"]]
    scores = [i["score"] for i in sequence]
    assert len(scores) >= 4
    for block in range(0, len(scores), 2):
        assert scores[block : block + 2] == sorted(scores[block : block + 2], reverse=True)


@pytest.mark.parametrize("sort", ["rating", "price"])
async def test_rating_and_price_pages_walk_their_index(
    client: httpx.AsyncClient, db: WriteSession, market: dict[str, str], sort: str
) -> None:
    """Keyset pages in the stored key's order cover every match once; the statement's
    order is the one its index gives (PostgreSQL can answer it without sorting)."""
    from sqlalchemy import text
    from sqlalchemy.dialects import postgresql

    from mesteri.pros import search

    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(10):
        params: dict[str, Any] = {
            "sort": sort,
            "limit": 2,
            **({"cursor": cursor} if cursor else {}),
        }
        page = (await client.get(f"{API}/pros", params=params)).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    ids = [i["id"] for i in seen]
    assert len(ids) == len(set(ids))
    assert set(market.values()) <= set(ids)
    if sort == "price":
        keys = [i["rate_min"] if i["rate_min"] is not None else 2**31 - 1 for i in seen]
        assert keys == sorted(keys)

    stmt = search.statement(search.SearchQuery(sort=sort), get_settings())
    sql = str(stmt.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))
    await db.execute(text("SET LOCAL enable_sort = off"))
    plan = "\n".join(r[0] for r in (await db.execute(text(f"EXPLAIN {sql}"))).all())
    assert f"ix_pro_profiles_{sort}" in plan, plan
    assert "Sort" not in plan, plan


@pytest.mark.parametrize("sort", ["rating", "price"])
async def test_sorted_search_index_path_agrees_with_the_plain_path(
    client: httpx.AsyncClient,
    market: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    sort: str,
) -> None:
    """Rating and price sorts within a craft and a radius read the search index's sorted
    lists; page by page they answer what the profile table's indexes answer."""
    from mesteri.pros import search

    params = {"category": "installations", "place_id": str(BUCHAREST), "radius_km": 80}

    async def pages() -> list[tuple[str, float, float | None]]:
        seen: list[tuple[str, float, float | None]] = []
        cursor = None
        for _ in range(10):
            extra = {"cursor": cursor} if cursor else {}
            page = (
                await client.get(
                    f"{API}/pros", params={**params, "sort": sort, "limit": 1, **extra}
                )
            ).json()
            seen += [(i["id"], i["score"], i["distance_km"]) for i in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        return seen

    fast = await pages()
    monkeypatch.setattr(search, "MAX_INDEX_LISTS", 0)
    plain = await pages()
    assert fast == plain
    assert {market["near"], market["drain"], market["far"]} <= {i for i, _, _ in fast}
