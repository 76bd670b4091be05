"""Categories and places: the reference data and its API."""

from __future__ import annotations

import httpx

from mesteri.catalog import reference

API = "/api/v1"


async def test_categories_are_a_multilingual_tree(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/categories", headers={"accept-language": "ro"})
    items = response.json()["items"]
    assert {"id", "slug", "name", "parent_id"} <= set(items[0])
    by_slug = {c["slug"]: c for c in items}
    assert by_slug["plumbing"]["name"] == "Instalații sanitare"
    assert by_slug["drain-cleaning"]["parent_id"] == by_slug["plumbing"]["id"]
    home_crafts = [c for c in items if c["kind"] == "home" and c["parent_id"]]
    assert len(home_crafts) >= 40
    software = [c["slug"] for c in items if c["kind"] == "software"]
    assert {"saas-mvp", "rest-api", "mobile-apps"} <= set(software)
    assert all(set(c["names"]) == {"en", "ro", "hu", "he"} for c in items)
    hu = await client.get(f"{API}/categories", headers={"accept-language": "hu"})
    assert {c["slug"]: c["name"] for c in hu.json()["items"]}["plumbing"] == "Vízszerelés"


def test_gazetteer_has_every_county_and_israeli_cities() -> None:
    places = reference.places()
    counties = {p["county"] for p in places if p["country"] == "RO" and p["kind"] == "county"}
    assert len(counties) == 41
    assert any(p["name"] == "București" for p in places)
    assert sum(1 for p in places if p["country"] == "IL") >= 20


async def test_places_prefix_match_ignores_diacritics(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{API}/places", params={"q": "brasov"})
    items = response.json()["items"]
    assert items[0]["name"] == "Brașov"
    assert set(items[0]) >= {"id", "name", "county", "lat", "lon"}
    assert abs(items[0]["lat"] - 45.64) < 0.1
    assert [
        p["name"]
        for p in (await client.get(f"{API}/places", params={"q": "Târgu"})).json()["items"]
    ][:2] == ["Târgu Mureș", "Târgu Jiu"]
    assert (await client.get(f"{API}/places", params={"q": "timis"})).json()["items"][0][
        "name"
    ] == "Timișoara"
    il = await client.get(f"{API}/places", params={"q": "tel", "country": "IL"})
    assert il.json()["items"][0]["name"] == "Tel Aviv-Yafo"
    he = await client.get(
        f"{API}/places", params={"q": "חיפ", "country": "IL"}, headers={"accept-language": "he"}
    )
    assert he.json()["items"][0]["name"] == "חיפה"
