"""NOTIFY right after a commit, on a connection of the process's own.

Two things tell other processes that a transaction committed: live events for the api
processes' WebSockets (``kit.realtime``, PostgreSQL broker) and wake-ups for the outbox
relay (``kit.jobs``). Neither notifies inside the transaction: PostgreSQL lets one
notifying transaction commit at a time and holds that lock through the commit's disk
flush, so concurrent requests would commit one by one (measured in ``bench/README.md``:
chat messages and escrow releases). Here a NOTIFY is a transaction of its own that skips
the flush (``synchronous_commit = off``): nothing in it needs to survive a crash, since
receivers catch up from tables (event streams, the outbox) anyway. The one exception is
a chat text, a transaction of one short statement that NOTIFYs its own event
(``realtime.notify_stored_sql``): it holds that lock only through its own flush, and
saves the round trip after the commit.

``post`` hands notifications over without waiting. One task per process sends them in
the order they came, everything that piled up while it was sending in one statement;
identical ones in a batch arrive once (as PostgreSQL does within a transaction).
``WakeUp`` is for a receiver that reads a table anyway (the outbox relay): it sends at
most one wake-up per short gap, however many commits ask for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Generic, TypeVar

from mesteri.kit.db import libpq_url

log = logging.getLogger(__name__)

SEND_TIMEOUT_SECONDS = 5.0
_SEND = "SELECT pg_notify(c, p) FROM unnest($1::text[], $2::text[]) AS n(c, p)"


T = TypeVar("T")


class Backlog(Generic[T]):
    """Items handed over without waiting and sent by one task, in the order they came;
    what piled up while it was sending goes in one call. A failed call is logged: the
    items are notices whose receivers catch up from tables."""

    def __init__(self, send: Callable[[list[T]], Awaitable[None]]) -> None:
        self._send = send
        self._items: list[T] = []
        self._task: asyncio.Task[None] | None = None

    def post(self, items: Iterable[T]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # committed outside the event loop: receivers catch up
            return
        self._items.extend(items)
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._drain())

    async def _drain(self) -> None:
        while self._items:
            batch, self._items = self._items, []
            try:
                await self._send(batch)
            except Exception:
                log.warning("could not send notifications", exc_info=True)

    async def close(self) -> None:
        """Wait until what was posted is sent."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
            self._task = None
        self._items.clear()


class Notifier:
    def __init__(self) -> None:
        self._dsn: str | None = None
        self._conn: Any = None
        self._lock: asyncio.Lock | None = None
        self._backlog: Backlog[tuple[str, str]] = Backlog(self._send_distinct)

    def configure(self, database_url: str | None) -> None:
        self._dsn = libpq_url(database_url) if database_url else None

    def post(self, channel: str, payloads: Sequence[str]) -> None:
        """Send soon, after whatever was posted before; never waits. Unconfigured (tests
        and CLI commands, where no other process listens) it sends nothing."""
        if self._dsn is not None and payloads:
            self._backlog.post((channel, payload) for payload in payloads)

    async def send(self, channel: str, payloads: Sequence[str]) -> None:
        """Send now (events that are not kept); raises if PostgreSQL cannot be reached."""
        if self._dsn is not None and payloads:
            await self._send([(channel, payload) for payload in payloads])

    async def _send_distinct(self, batch: list[tuple[str, str]]) -> None:
        await self._send(list(dict.fromkeys(batch)))

    async def _send(self, batch: list[tuple[str, str]]) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one statement at a time on the connection
            try:
                conn = await self._connection()
                channels, payloads = zip(*batch, strict=True)
                await conn.execute(
                    _SEND, list(channels), list(payloads), timeout=SEND_TIMEOUT_SECONDS
                )
            except Exception:
                await self._drop()  # the next send connects afresh
                raise

    async def _connection(self) -> Any:
        import asyncpg  # type: ignore[import-untyped]

        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                self._dsn,
                timeout=SEND_TIMEOUT_SECONDS,
                server_settings={"application_name": "mesteri-notify", "synchronous_commit": "off"},
            )
        return self._conn

    async def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close(timeout=2)
            self._conn = None

    async def close(self) -> None:
        """Send what was posted, then stop: later posts send nothing until ``configure``."""
        await self._backlog.close()
        self._dsn = None
        await self._drop()
        self._lock = None


# One per process: the api's requests and the worker's jobs both post here.
notifier = Notifier()


class WakeUp:
    """Wake-ups on ``channel`` for a receiver that reads a table when woken: many in a
    short time tell it nothing more than one. The first goes out at once; those asked
    for within ``gap`` seconds of it fold into one sent when the gap ends, so none is
    lost and a busy process sends at most one every ``gap`` seconds instead of one per
    commit (each NOTIFY is a transaction of its own on the server: measured in
    ``bench/README.md``, escrow releases)."""

    def __init__(self, notifier: Notifier, channel: str, *, gap: float) -> None:
        self.notifier = notifier
        self.channel = channel
        self.gap = gap
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sent_at = float("-inf")
        self._timer: asyncio.TimerHandle | None = None

    def post(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # committed outside the event loop: the receiver's tick finds it
            return
        if loop is not self._loop:  # times and timers belong to one loop
            self._loop, self._sent_at, self._timer = loop, float("-inf"), None
        if self._timer is not None:
            return  # the one at the end of the gap covers this one
        wait = self._sent_at + self.gap - loop.time()
        if wait <= 0:
            self._send()
        else:
            self._timer = loop.call_later(wait, self._send)

    def _send(self) -> None:
        assert self._loop is not None
        self._timer = None
        self._sent_at = self._loop.time()
        self.notifier.post(self.channel, [""])
