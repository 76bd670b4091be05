"""Operational endpoints and what exists in which environment."""

from __future__ import annotations

import httpx

from mesteri.app import create_app
from mesteri.config import Settings


async def test_health_ready_metrics(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health")).json() == {"status": "ok"}
    ready = await client.get("/ready")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "migrations": "ok"}
    await client.get("/api/v1/me")
    metrics = await client.get("/metrics")
    assert "mesteri_http_requests_total" in metrics.text
    assert 'route="/api/v1/me"' in metrics.text


async def test_ready_reports_a_schema_behind_the_code(
    client: httpx.AsyncClient, app: object
) -> None:
    app.state.head_revision = "9999_future"  # type: ignore[attr-defined]
    response = await client.get("/ready")
    assert response.status_code == 503
    assert "9999_future" in response.json()["checks"]["migrations"]


async def test_request_id_is_echoed_or_made(client: httpx.AsyncClient) -> None:
    given = await client.get("/health", headers={"x-request-id": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    made = await client.get("/health", headers={"x-request-id": "bad id with spaces"})
    assert len(made.headers["x-request-id"]) == 32


async def test_openapi_and_docs(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/api/v1/openapi.json")).json()
    for path in (
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/otp/send",
        "/api/v1/auth/otp/verify",
        "/api/v1/me",
        "/api/v1/me/export",
        "/api/v1/auth/password/reset",
    ):
        assert path in spec["paths"], path
    assert (await client.get("/api/docs")).status_code == 200


async def test_dev_routes_do_not_exist_in_prod(database_url: str) -> None:
    prod = create_app(Settings(env="prod", secret_key="p" * 48), database_url=database_url)
    paths = set(prod.openapi()["paths"])
    assert "/api/v1/dev/outbox" not in paths
    assert "/api/v1/dev/clock" not in paths
    assert "/api/v1/me" in paths
    test = create_app(Settings(env="test"), database_url=database_url)
    assert "/api/v1/dev/outbox" in test.openapi()["paths"]


async def test_pwa_assets(client: httpx.AsyncClient) -> None:
    manifest = (await client.get("/manifest.webmanifest")).json()
    assert manifest["start_url"] == "/"
    assert len(manifest["icons"]) >= 2
    sw = await client.get("/sw.js")
    assert sw.headers["content-type"].startswith("text/javascript")
    assert "/offline" in sw.text
    assert (await client.get("/offline")).status_code == 200


async def test_nul_in_a_query_parameter_is_refused_not_a_server_error(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/api/v1/search/suggest", params={"q": "bra\x00sov"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"
