"""Several `mesteri api` processes on the machine's PostgreSQL (and Redis): a fresh
database each time, migrated, the processes ready, all stopped and dropped afterwards.

Uses ``MESTERI_TEST_PG_URL`` (default 127.0.0.1:5432) and ``MESTERI_TEST_REDIS_URL``;
tests are skipped when those servers are absent, except in CI, where they must be there.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

PG_URL = os.environ.get("MESTERI_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("MESTERI_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def require_services() -> None:
    if not (_reachable("127.0.0.1", 5432) and _reachable("127.0.0.1", 6379)):
        if os.environ.get("CI"):
            pytest.fail("CI needs PostgreSQL on :5432 and Redis on :6379")
        pytest.skip("no PostgreSQL on :5432 or Redis on :6379")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def fresh_database(name: str) -> Iterator[str]:
    """A new database on the machine's server; its URL. Dropped at the end."""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_env(database_url: str, redis_url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESTERI_")}
    env.update(MESTERI_ENV="test", MESTERI_DATABASE_URL=database_url, MESTERI_LOG_LEVEL="WARNING")
    if redis_url:
        env["MESTERI_REDIS_URL"] = redis_url
    return env


@contextlib.contextmanager
def api_processes(env: dict[str, str], logs: Path, count: int = 2) -> Iterator[list[str]]:
    """Migrate, then ``count`` `mesteri api` processes; their base URLs once all are ready."""
    migrate = subprocess.run(
        [sys.executable, "-m", "mesteri", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    processes, urls = [], []
    for i in range(count):
        port = _free_port()
        log = (logs / f"api-{i}.log").open("wb")
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "mesteri", "api", "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        urls.append(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 90
        for url in urls:
            while True:
                try:
                    if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "the api processes did not become ready"
                time.sleep(0.3)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
