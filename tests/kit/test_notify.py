"""The process's NOTIFY sender: in order, batched, identical notices once, and a lost
connection costs one batch, not the sender."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg  # type: ignore[import-untyped]
import pytest

from mesteri.kit.db import libpq_url
from mesteri.kit.notify import Notifier, WakeUp

CHANNEL = "mesteri_test_notify"


@pytest.fixture
async def heard(live_database_url: str) -> AsyncIterator[asyncio.Queue[str]]:
    seen: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(libpq_url(live_database_url))
    await listener.add_listener(CHANNEL, lambda *args: seen.put_nowait(args[3]))
    try:
        yield seen
    finally:
        await listener.close()


async def _drained(seen: asyncio.Queue[str], count: int) -> list[str]:
    return [await asyncio.wait_for(seen.get(), timeout=10) for _ in range(count)]


async def test_posts_arrive_in_order_and_identical_ones_once(
    live_database_url: str, heard: asyncio.Queue[str]
) -> None:
    notifier = Notifier()
    notifier.post(CHANNEL, ["before configure"])  # nobody listens yet: nothing is sent
    notifier.configure(live_database_url)
    try:
        for n in range(20):
            notifier.post(CHANNEL, [f"event {n}", "wake"])
        await notifier.send(CHANNEL, ["now"])
    finally:
        await notifier.close()
    got = await _drained(heard, 22)
    events = [g for g in got if g.startswith("event")]
    assert events == [f"event {n}" for n in range(20)]
    assert got.count("wake") == 1  # all 20 went out in one statement
    assert "now" in got
    await asyncio.sleep(0.2)
    assert heard.empty()


async def test_a_lost_connection_is_replaced_at_the_next_send(
    live_database_url: str, heard: asyncio.Queue[str]
) -> None:
    notifier = Notifier()
    notifier.configure(live_database_url)
    try:
        await notifier.send(CHANNEL, ["first"])
        admin = await asyncpg.connect(libpq_url(live_database_url))
        try:
            terminated = await admin.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = 'mesteri-notify' AND datname = current_database()"
            )
        finally:
            await admin.close()
        assert terminated == 1
        await asyncio.sleep(0.2)
        notifier.post(CHANNEL, ["maybe lost with the connection"])
        await asyncio.sleep(0.5)
        notifier.post(CHANNEL, ["after"])
    finally:
        await notifier.close()
    got = [await asyncio.wait_for(heard.get(), timeout=10)]
    while got[-1] != "after":
        got.append(await asyncio.wait_for(heard.get(), timeout=10))
    assert got[0] == "first"


async def test_a_burst_of_wake_ups_sends_two_and_loses_none(
    live_database_url: str, heard: asyncio.Queue[str]
) -> None:
    notifier = Notifier()
    notifier.configure(live_database_url)
    wake_up = WakeUp(notifier, CHANNEL, gap=0.05)
    try:
        for _ in range(50):  # one loop turn: the first goes at once, the rest at the gap's end
            wake_up.post()
        assert await _drained(heard, 2) == ["", ""]
        await asyncio.sleep(0.2)  # the gap is over: the next one goes at once
        assert heard.empty()
        wake_up.post()
        assert await _drained(heard, 1) == [""]
    finally:
        await notifier.close()
    await asyncio.sleep(0.2)
    assert heard.empty()
