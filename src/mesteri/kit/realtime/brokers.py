"""How live events reach every api process: PostgreSQL LISTEN/NOTIFY, or Redis pub/sub.

PostgreSQL is the default and needs nothing more. Either way the events are sent right
after the transaction that stored them commits, by one task per process (so a process's
events go out in commit order, several commits in one statement when they pile up;
``kit.notify``, which also says why not inside the transaction). A process that crashes
between commit and publish loses only the live copy: receivers notice the gap at the
user's next event and read it from the stream, and a reconnecting client resumes from
the table anyway. With PostgreSQL, a statement that stores one event may NOTIFY it
itself (``statement_channel``): a chat text's, which then arrives at its commit.

A receiver whose connection to the broker broke may have missed events: after it is back,
``resumed`` is called so every connection catches up from its stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from mesteri.kit import notify
from mesteri.kit.db import libpq_url

log = logging.getLogger(__name__)

CHANNEL = "mesteri_realtime"
RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)
HEALTH_CHECK_SECONDS = 15.0

Deliver = Callable[[str], None]
Resumed = Callable[[], None]


class Broker(Protocol):
    name: str

    @property
    def statement_channel(self) -> str | None:
        """The channel a statement may NOTIFY itself with the event it stores (it then
        arrives at its commit, ``realtime.notify_stored_sql``); None: send it after."""

    def after_commit(self, envelopes: Sequence[str]) -> None:
        """Right after the transaction that stored them committed (never waits)."""

    async def send(self, envelopes: Sequence[str]) -> None:
        """Now, outside any transaction (events that are not kept)."""

    async def listen(self, deliver: Deliver, resumed: Resumed, stop: asyncio.Event) -> None:
        """Call ``deliver`` with every envelope any process sends, until ``stop``."""

    async def close(self) -> None: ...


class PostgresBroker:
    """Sends through the process's ``kit.notify`` connection; listens on one of its own."""

    name = "postgres"

    def __init__(self, database_url: str | None) -> None:
        self._dsn = libpq_url(database_url) if database_url else None

    @property
    def statement_channel(self) -> str | None:
        return CHANNEL if self._dsn else None  # unconfigured: nobody listens

    def after_commit(self, envelopes: Sequence[str]) -> None:
        notify.notifier.post(CHANNEL, envelopes)

    async def send(self, envelopes: Sequence[str]) -> None:
        await notify.notifier.send(CHANNEL, envelopes)

    async def listen(self, deliver: Deliver, resumed: Resumed, stop: asyncio.Event) -> None:
        import asyncpg  # type: ignore[import-untyped]

        assert self._dsn, "realtime.configure() was not given the database URL"
        attempt = 0
        while not stop.is_set():
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(
                    self._dsn, server_settings={"application_name": "mesteri-listen"}
                )
            except (OSError, asyncpg.PostgresError) as exc:
                await _pause(stop, attempt, exc)
                attempt += 1
                continue
            conn.add_termination_listener(lambda _conn, flag=lost: flag.set())
            await conn.add_listener(CHANNEL, lambda _c, _pid, _ch, payload: deliver(payload))
            if attempt:
                resumed()
            attempt = 0
            try:
                while not stop.is_set() and not lost.is_set():
                    await _first_of(stop, lost, within=HEALTH_CHECK_SECONDS)
                    if not stop.is_set() and not lost.is_set():
                        await conn.execute("SELECT 1")  # a half-open TCP connection shows here
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("realtime listener lost PostgreSQL", extra={"error": repr(exc)})
            finally:
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)
            attempt = max(attempt, 1)

    async def close(self) -> None:
        """The notifier is the process's: it is closed when the process stops."""


class RedisBroker:
    name = "redis"

    def __init__(self, redis_url: str) -> None:
        import redis.asyncio as redis

        self._redis = redis.Redis.from_url(redis_url)
        self._backlog: notify.Backlog[str] = notify.Backlog(self.send)

    statement_channel: str | None = None  # PostgreSQL's NOTIFY does not reach Redis subscribers

    def after_commit(self, envelopes: Sequence[str]) -> None:
        self._backlog.post(envelopes)

    async def send(self, envelopes: Sequence[str]) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            for envelope in envelopes:
                pipe.publish(CHANNEL, envelope)
            await pipe.execute()

    async def listen(self, deliver: Deliver, resumed: Resumed, stop: asyncio.Event) -> None:
        from redis.exceptions import RedisError

        attempt = 0
        while not stop.is_set():
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(CHANNEL)
                if attempt:
                    resumed()
                attempt = 0
                while not stop.is_set():
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        data = message["data"]
                        deliver(data.decode() if isinstance(data, bytes) else str(data))
            except (OSError, RedisError) as exc:
                await _pause(stop, attempt, exc)
                attempt += 1
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        await self._backlog.close()
        await self._redis.aclose()


async def _pause(stop: asyncio.Event, attempt: int, exc: BaseException) -> None:
    delay = RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)]
    log.warning("realtime broker unreachable; retrying", extra={"error": repr(exc), "in": delay})
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=delay)


async def _first_of(*flags: asyncio.Event, within: float) -> None:
    waits = [asyncio.ensure_future(flag.wait()) for flag in flags]
    try:
        await asyncio.wait(waits, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


# Until configured (CLI commands), nothing is sent: no api process is there to listen.
_broker: Broker = PostgresBroker(None)


def configure(database_url: str, redis_url: str | None) -> Broker:
    """Choose this process's broker: Redis when a URL is given, PostgreSQL otherwise."""
    global _broker
    _broker = RedisBroker(redis_url) if redis_url else PostgresBroker(database_url)
    return _broker


def current_broker() -> Broker:
    return _broker
