"""The hub's promises, driven straight through its broker entry point: a slow or dead
client is closed and never holds the others back; a user's events go out in stream order,
gaps read from the table, duplicates dropped; the stream numbers of a transaction."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from mesteri.kit import clock, realtime
from mesteri.kit.db import create_engine, session_factories, unit_of_work
from mesteri.kit.realtime import CLOSE_TOO_SLOW, Connection, Hub, RealtimeEvent
from mesteri.kit.realtime.streams import backlog
from tests.conftest import empty_database


class QuietBroker:
    """The hub's broker with nothing behind it: the test hands envelopes in itself."""

    name = "quiet"

    def stage(self, session: Any, envelopes: Sequence[str]) -> None: ...
    def after_commit(self, envelopes: Sequence[str]) -> None: ...
    async def send(self, envelopes: Sequence[str]) -> None: ...

    async def listen(self, deliver: Any, resumed: Any, stop: asyncio.Event) -> None:
        await stop.wait()

    async def close(self) -> None: ...


class Reader:
    """A client that reads everything at once."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.closed: tuple[int, str | None] | None = None

    async def send_text(self, data: str) -> None:
        self.frames.append(json.loads(data))

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        self.closed = (code, reason)


class Stuck(Reader):
    """A client that stopped reading: every write waits forever."""

    async def send_text(self, data: str) -> None:
        await asyncio.Event().wait()


@pytest.fixture
async def engine(live_database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(live_database_url, pool_size=2, max_overflow=0)
    await empty_database(eng)
    yield eng
    await eng.dispose()


@pytest.fixture
async def hub(engine: AsyncEngine) -> AsyncIterator[Hub]:
    running = Hub(engine, QuietBroker(), queue_size=16, send_timeout=0.5)
    await running.start()
    yield running
    await running.stop()


def _envelope(user: uuid.UUID, seq: int, body: str = "x") -> str:
    return json.dumps({"t": "message.new", "d": {"body": body, "n": seq}, "to": {str(user): seq}})


async def _settle(condition: Any, within: float = 10.0) -> None:
    """Wait until ``condition()`` holds (the hub works in tasks of its own)."""
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110 - polling state the hub's tasks change
            await asyncio.sleep(0.01)


def _row(user: uuid.UUID, seq: int) -> dict[str, Any]:
    return {
        "user_id": user,
        "seq": seq,
        "type": "message.new",
        "data": {"n": seq},
        "created_at": clock.now(),
    }


async def test_a_stuck_client_is_closed_and_the_others_get_everything(
    hub: Hub, engine: AsyncEngine
) -> None:
    """100 events in one go for two users (the queues hold 16): the reading client gets
    all of them in order, the one that stopped reading is closed; neither waits for the
    other."""
    fast_user, slow_user = uuid.uuid4(), uuid.uuid4()
    async with engine.begin() as conn:  # committed before any broker carries them
        await conn.execute(
            insert(RealtimeEvent),
            [_row(u, s) for u in (fast_user, slow_user) for s in range(1, 101)],
        )
    fast, slow = Reader(), Stuck()
    for socket, user in ((fast, fast_user), (slow, slow_user)):
        hub.attach(Connection(hub, socket, user_id=user, session_id=uuid.uuid4(), last_seq=0))
    for seq in range(1, 101):
        hub._deliver(_envelope(fast_user, seq))
        hub._deliver(_envelope(slow_user, seq))
    await _settle(lambda: len(fast.frames) == 100 and slow.closed is not None)
    assert [f["id"] for f in fast.frames] == list(range(1, 101))
    assert slow.closed is not None
    assert slow.closed[0] == CLOSE_TOO_SLOW


async def test_events_go_out_in_stream_order_gaps_filled_from_the_table(
    hub: Hub, engine: AsyncEngine
) -> None:
    """Events are committed (in the table) before any broker carries them; a broker may
    deliver them late, twice or out of order (Redis, a listener that reconnected)."""
    user = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(insert(RealtimeEvent), [_row(user, s) for s in range(1, 8)])
    socket = Reader()
    hub.attach(Connection(hub, socket, user_id=user, session_id=uuid.uuid4(), last_seq=2))
    await _settle(lambda: len(socket.frames) == 5)  # the catch-up: 3..7 from the table
    for seq in (6, 7, 3):  # all seen already
        hub._deliver(_envelope(user, seq))
    async with engine.begin() as conn:
        await conn.execute(insert(RealtimeEvent), [_row(user, s) for s in (8, 9, 10)])
    hub._deliver(_envelope(user, 10, "ten"))  # 8 and 9 were not carried: read first
    hub._deliver(_envelope(user, 9))
    await _settle(lambda: len(socket.frames) >= 8)
    await asyncio.sleep(0.1)
    assert [f["id"] for f in socket.frames] == [3, 4, 5, 6, 7, 8, 9, 10]
    assert socket.frames[-1]["data"] == {"n": 10}  # from the table, like the others


async def test_a_client_far_behind_is_told_to_reload(hub: Hub, engine: AsyncEngine) -> None:
    user = uuid.uuid4()
    rows = [
        {"user_id": user, "seq": s, "type": "message.new", "data": {}, "created_at": clock.now()}
        for s in range(1, hub.backlog_limit + 10)
    ]
    async with engine.begin() as conn:
        await conn.execute(insert(RealtimeEvent), rows)
        await conn.execute(
            insert(realtime.RealtimeStream), [{"user_id": user, "last_seq": len(rows)}]
        )
    socket = Reader()
    hub.attach(Connection(hub, socket, user_id=user, session_id=uuid.uuid4(), last_seq=0))
    await _settle(lambda: bool(socket.frames))
    assert socket.frames == [{"type": "resync", "data": {"last_event_id": len(rows)}}]


async def test_one_transaction_numbers_every_recipients_events_in_order(
    engine: AsyncEngine,
) -> None:
    _read, write = session_factories(engine)
    a, b = uuid.uuid4(), uuid.uuid4()
    async with unit_of_work(write) as session:
        realtime.publish(session, [a, b], "message.new", {"n": 1})
        realtime.publish(session, [b], "notification.new", {"n": 2})
        realtime.publish(session, [a], "message.read", {"n": 3})

    async def fails() -> None:
        async with unit_of_work(write) as session:
            realtime.publish(session, [a], "message.new", {"n": 4})
            raise RuntimeError  # rolled back: never numbered, never sent

    with pytest.raises(RuntimeError):
        await fails()
    async with engine.connect() as conn:
        of_a = await backlog(conn, a, 0, limit=10)
        of_b = await backlog(conn, b, 0, limit=10)
    assert [(e.seq, e.type, e.data) for e in of_a] == [
        (1, "message.new", {"n": 1}),
        (2, "message.read", {"n": 3}),
    ]
    assert [(e.seq, e.type) for e in of_b] == [(1, "message.new"), (2, "notification.new")]
