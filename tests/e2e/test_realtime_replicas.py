"""Live chat across two `mesteri api` processes on one PostgreSQL: fanned out by LISTEN/
NOTIFY (the default), and again by Redis pub/sub (``MESTERI_REDIS_URL``). A message posted
on one process reaches a WebSocket on the other; a reconnecting client resumes with
exactly what it missed, on either process; concurrent senders on both keep one order.

Uses the machine's PostgreSQL (``MESTERI_TEST_PG_URL``) and Redis
(``MESTERI_TEST_REDIS_URL``); skipped when they are absent, except in CI.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from tests.fixtures.chat import Socket, make_chat, post

pytestmark = pytest.mark.slow

PG_URL = os.environ.get("MESTERI_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("MESTERI_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


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


@dataclass(frozen=True)
class Cluster:
    broker: str
    database_url: str
    urls: tuple[str, str]


@pytest.fixture(scope="module", params=["postgres", "redis"])
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    broker: str = request.param
    if not (_reachable("127.0.0.1", 5432) and _reachable("127.0.0.1", 6379)):
        if os.environ.get("CI"):
            pytest.fail("CI needs PostgreSQL on :5432 and Redis on :6379")
        pytest.skip("no PostgreSQL on :5432 or Redis on :6379")
    name = f"mesteri_rt_{broker}_{os.getpid()}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESTERI_")}
    env.update(MESTERI_ENV="test", MESTERI_DATABASE_URL=url, MESTERI_LOG_LEVEL="WARNING")
    if broker == "redis":
        env["MESTERI_REDIS_URL"] = REDIS_URL
    migrate = subprocess.run(
        [sys.executable, "-m", "mesteri", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stderr
    logs: Path = tmp_path_factory.mktemp(f"realtime-{broker}")
    processes, urls = [], []
    for i in range(2):
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
        for base in urls:
            while True:
                try:
                    if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "the api processes did not become ready"
                time.sleep(0.3)
        yield Cluster(broker, url, (urls[0], urls[1]))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_a_message_posted_on_one_process_reaches_a_socket_on_the_other(
    cluster: Cluster,
) -> None:
    a, b = cluster.urls
    async with (
        httpx.AsyncClient(base_url=a, timeout=30) as on_a,
        httpx.AsyncClient(base_url=b, timeout=30) as on_b,
    ):
        chat = await make_chat(on_a, cluster.database_url)
        pro_on_b = await Socket.open(b, chat.pro.token)
        sent = await post(on_a, chat.client, chat.conversation_id, f"Salut prin {cluster.broker}")
        (frame,) = await pro_on_b.wait_for("message.new")
        assert frame["data"]["id"] == sent["id"]
        # ...and the other way round, to a socket on the first process.
        client_on_a = await Socket.open(a, chat.client.token)
        answer = await post(on_b, chat.pro, chat.conversation_id, "Răspuns")
        (back,) = await client_on_a.wait_for("message.new")
        assert back["data"]["id"] == answer["id"]
        await pro_on_b.close()
        await client_on_a.close()


async def test_resume_on_the_other_process_gets_exactly_the_missed_events(cluster: Cluster) -> None:
    a, b = cluster.urls
    async with httpx.AsyncClient(base_url=a, timeout=30) as on_a:
        chat = await make_chat(on_a, cluster.database_url)
        first = await Socket.open(b, chat.pro.token)
        await post(on_a, chat.client, chat.conversation_id, "înainte")
        await first.wait_for("message.new")
        seen = first.last_id
        await first.close()
        missed = [
            (await post(on_a, chat.client, chat.conversation_id, f"lipsă {n}"))["id"]
            for n in range(3)
        ]
        again = await Socket.open(a, chat.pro.token, resume=seen)
        frames = await again.wait_for("message.new", 3)
        assert [f["data"]["id"] for f in frames] == missed
        ids = [f["id"] for f in again.frames if "id" in f]
        assert ids == list(range(seen + 1, seen + 1 + len(ids)))
        await again.close()


async def test_concurrent_senders_on_both_processes_keep_one_order(cluster: Cluster) -> None:
    a, b = cluster.urls
    async with (
        httpx.AsyncClient(base_url=a, timeout=30) as on_a,
        httpx.AsyncClient(base_url=b, timeout=30) as on_b,
    ):
        chat = await make_chat(on_a, cluster.database_url)
        watchers = [
            await Socket.open(a, chat.client.token),
            await Socket.open(b, chat.client.token),
        ]
        sends = [
            post(http, user, chat.conversation_id, f"{uuid.uuid4().hex[:6]}")
            for _ in range(12)
            for http, user in ((on_a, chat.client), (on_b, chat.pro))
        ]
        answers = await asyncio.gather(*sends)
        for watcher in watchers:
            frames = await watcher.wait_for("message.new", len(answers))
            seqs = [f["data"]["seq"] for f in frames]
            assert seqs == sorted(a["seq"] for a in answers)
            await watcher.close()
