"""The production shape: several `mesteri api` replicas on one PostgreSQL and one Redis.

Uses the machine's PostgreSQL (``MESTERI_TEST_PG_URL``, default 127.0.0.1:5432) and Redis
(``MESTERI_TEST_REDIS_URL``); skipped when they are absent, except in CI.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

pytestmark = pytest.mark.slow

PG_URL = os.environ.get("MESTERI_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("MESTERI_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
PASSWORD = "sunny-Harbor-47"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    if not (_reachable("127.0.0.1", 5432) and _reachable("127.0.0.1", 6379)):
        if os.environ.get("CI"):
            pytest.fail("CI needs PostgreSQL on :5432 and Redis on :6379")
        pytest.skip("no PostgreSQL on :5432 or Redis on :6379")
    name = f"mesteri_replicas_{os.getpid()}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESTERI_")}
    env.update(
        MESTERI_ENV="test",
        MESTERI_DATABASE_URL=url,
        MESTERI_REDIS_URL=REDIS_URL,
        MESTERI_LOG_LEVEL="WARNING",
    )
    return env


@pytest.fixture(scope="module")
def replicas(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    migrate = subprocess.run(
        [sys.executable, "-m", "mesteri", "migrate"],
        env=_env(database),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    logs: Path = tmp_path_factory.mktemp("replicas")
    processes, urls = [], []
    for i in range(2):
        port = _free_port()
        log = (logs / f"api-{i}.log").open("wb")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "mesteri", "api", "--port", str(port)],
                env=_env(database),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        for url in urls:
            while True:
                try:
                    if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "replicas did not become ready"
                time.sleep(0.3)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


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
