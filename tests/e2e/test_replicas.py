"""The production shape: several `mesteri api` replicas on one PostgreSQL and one Redis.

Uses the machine's PostgreSQL and Redis (``tests/e2e/replicas.py``); skipped when they
are absent, except in CI.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Iterator

import httpx
import pytest
from tests.e2e.replicas import (
    REDIS_URL,
    api_processes,
    fresh_database,
    require_services,
    server_env,
)

pytestmark = pytest.mark.slow

PASSWORD = "sunny-Harbor-47"


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    require_services()
    with fresh_database(f"mesteri_replicas_{os.getpid()}") as url:
        env = server_env(url, REDIS_URL)
        with api_processes(env, tmp_path_factory.mktemp("replicas")) as urls:
            yield urls


def test_replicas_share_rate_limits_and_sessions(replicas: list[str]) -> None:
    a, b = (httpx.Client(base_url=url, timeout=30) for url in replicas)
    # A client address of its own (trusted proxy header from loopback), so earlier runs
    # within the 15-minute window do not count against this one.
    ip = {"X-Forwarded-For": f"198.51.100.{random.randint(1, 254)}"}
    email = f"replica-{uuid.uuid4().hex[:10]}@example.ro"
    phone = f"+4072{random.randint(0, 9_999_999):07d}"
    registered = a.post(
        "/api/v1/auth/register",
        headers=ip,
        json={
            "email": email,
            "phone": phone,
            "password": PASSWORD,
            "role": "client",
            "first_name": "Rita",
            "last_name": "Replica",
        },
    )
    assert registered.status_code == 201, registered.text

    for replica in (a, b, a, b, a):
        wrong = replica.post(
            "/api/v1/auth/login", headers=ip, json={"login": email, "password": "not-the-password"}
        )
        assert wrong.status_code == 401
    for replica in (a, b):  # the sixth attempt is refused by every replica
        blocked = replica.post(
            "/api/v1/auth/login", headers=ip, json={"login": email, "password": PASSWORD}
        )
        assert blocked.status_code == 429, blocked.text

    token = registered.json()["tokens"]["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    assert b.get("/api/v1/me", headers=bearer).status_code == 200
    assert a.post("/api/v1/auth/logout", headers=bearer, json={}).status_code == 204
    assert b.get("/api/v1/me", headers=bearer).status_code == 401  # at once, on the other one
