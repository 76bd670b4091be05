"""Live chat across two `mesteri api` processes on one PostgreSQL: fanned out by LISTEN/
NOTIFY (the default), and again by Redis pub/sub (``MESTERI_REDIS_URL``). A message posted
on one process reaches a WebSocket on the other; a reconnecting client resumes with
exactly what it missed, on either process; concurrent senders on both keep one order.

Uses the machine's PostgreSQL and Redis (``tests/e2e/replicas.py``); skipped when they
are absent, except in CI.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from tests.e2e.replicas import (
    REDIS_URL,
    api_processes,
    fresh_database,
    require_services,
    server_env,
)
from tests.fixtures.chat import Socket, make_chat, post

pytestmark = pytest.mark.slow


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
    require_services()
    with fresh_database(f"mesteri_rt_{broker}_{os.getpid()}") as url:
        env = server_env(url, REDIS_URL if broker == "redis" else None)
        with api_processes(env, tmp_path_factory.mktemp(f"realtime-{broker}")) as urls:
            yield Cluster(broker, url, (urls[0], urls[1]))


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
