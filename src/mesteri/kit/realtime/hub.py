"""One hub per api process: its WebSocket connections, and the events it hands them.

Every process hears every event from the broker and keeps those for users connected here.
Each connection has a bounded queue and one task that writes to the socket, so the hub
never waits for a client. A burst that overflows a queue is folded into "catch up from
the stream" (kept events are in the table; typing and presence can be lost); a client
that does not take a frame within ``send_timeout`` is closed (``CLOSE_TOO_SLOW``) and
resumes from its stream when it reconnects. The writer sends a user's kept events
strictly in stream order: one that comes early (Redis, or a reconnected listener) makes
it read the missing ones from the table first, one seen before is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from prometheus_client import Counter, Gauge
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from mesteri.kit.db import ReadSession, autocommit
from mesteri.kit.realtime import presence
from mesteri.kit.realtime.brokers import Broker
from mesteri.kit.realtime.streams import Event, backlog, broadcast, last_event_id

log = logging.getLogger(__name__)

# WebSocket close codes of the protocol (docs/api.md, "Real time").
CLOSE_GOING_AWAY = 1001
CLOSE_AUTH = 4001  # not signed in, or the token is not valid
CLOSE_SESSION_ENDED = 4003  # signed out (here or elsewhere)
CLOSE_TOO_SLOW = 4008  # the client did not keep up: reconnect and resume
CLOSE_TIMEOUT_SECONDS = 2.0

CONNECTIONS = Gauge("mesteri_ws_connections", "Open WebSocket connections in this process")
SENT = Counter("mesteri_ws_frames_sent_total", "Frames written to WebSockets")
DROPPED = Counter("mesteri_ws_slow_closed_total", "Connections closed for not keeping up")
FOLDED = Counter("mesteri_ws_bursts_folded_total", "Queue overflows turned into a catch-up")

Audience = Callable[[ReadSession, uuid.UUID], Awaitable[Iterable[uuid.UUID]]]


class Socket(Protocol):
    async def send_text(self, data: str) -> None: ...
    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


class _CatchUp:
    """Marker: read whatever the stream holds after the last event sent."""


CATCH_UP = _CatchUp()


class Connection:
    def __init__(
        self,
        hub: Hub,
        socket: Socket,
        *,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        last_seq: int,
    ) -> None:
        self.hub = hub
        self.socket = socket
        self.user_id = user_id
        self.session_id = session_id
        # The last event the client has: it gets everything after it, in order.
        self.last_seq = last_seq
        self.queue: asyncio.Queue[Event | _CatchUp] = asyncio.Queue(maxsize=hub.queue_size)
        self.closing: tuple[int, str] | None = None
        self._writer: asyncio.Task[None] | None = None

    @property
    def key(self) -> str:
        return str(self.user_id)

    def offer(self, item: Event | _CatchUp) -> None:
        """Queue without waiting. A full queue is replaced by one catch-up from the table:
        memory stays bounded and nothing kept is lost."""
        if self.closing is not None:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            FOLDED.inc()
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(CATCH_UP)

    def send(self, type: str, data: Any = None) -> None:
        """A frame of the protocol itself (ready, pong, error)."""
        self.offer(Event(type, data))

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_loop(), name=f"ws-writer-{self.user_id}")

    def close(self, code: int, reason: str) -> None:
        if self.closing is None:
            self.closing = (code, reason)
            self.hub.spawn(self._shut(code, reason))

    async def _shut(self, code: int, reason: str) -> None:
        if self._writer is not None:
            self._writer.cancel()
        # A dead peer may never read the close frame: do not wait for it for long.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.socket.close(code, reason), CLOSE_TIMEOUT_SECONDS)

    async def wait_closed(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer

    async def _write_loop(self) -> None:
        try:
            while True:
                item = await self.queue.get()
                if isinstance(item, _CatchUp):
                    await self._fill(None)
                    continue
                if item.seq is not None:
                    if item.seq <= self.last_seq:
                        continue  # sent already (from the table, or twice by the broker)
                    if item.seq > self.last_seq + 1 or item.data is None:
                        await self._fill(item.seq)
                        continue
                    self.last_seq = item.seq
                await self._write(item.frame())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the peer went away mid-write; the endpoint sees it too
            log.debug("websocket writer stopped", extra={"error": repr(exc)})

    async def _fill(self, upto: int | None) -> None:
        """Send the kept events after ``last_seq`` up to ``upto`` (all when None) from the
        table; a client too far behind is told to reload (``resync``)."""
        limit = self.hub.backlog_limit
        async with self.hub.connect() as conn:
            missed = await backlog(
                conn,
                self.user_id,
                self.last_seq,
                before=None if upto is None else upto + 1,
                limit=limit + 1,
            )
            newest = await last_event_id(conn, self.user_id) if len(missed) > limit else None
        if newest is not None:
            self.last_seq = newest
            await self._write(Event("resync", {"last_event_id": newest}).frame())
            return
        for event in missed:
            assert event.seq is not None  # every kept event has its number
            self.last_seq = event.seq
            await self._write(event.frame())

    async def _write(self, frame: str) -> None:
        try:
            async with asyncio.timeout(self.hub.send_timeout):  # no task per frame, as wait_for
                await self.socket.send_text(frame)
        except TimeoutError:
            DROPPED.inc()
            self.close(CLOSE_TOO_SLOW, "too slow: reconnect and resume")
            raise ConnectionError("the client stopped reading") from None
        SENT.inc()


class Hub:
    def __init__(
        self,
        engine: AsyncEngine,
        broker: Broker,
        *,
        queue_size: int = 256,
        backlog_limit: int = 500,
        send_timeout: float = 10.0,
        audience: Audience | None = None,
    ) -> None:
        self.engine = autocommit(engine)
        self.broker = broker
        self.queue_size = queue_size
        self.backlog_limit = backlog_limit
        self.send_timeout = send_timeout
        self.node_id = uuid.uuid4()
        self._audience = audience
        self._sessions = async_sessionmaker(self.engine, class_=ReadSession, expire_on_commit=False)
        self._by_user: defaultdict[str, set[Connection]] = defaultdict(set)
        self._presence: asyncio.Queue[tuple[str, uuid.UUID]] = asyncio.Queue()
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    def connect(self) -> Any:
        return self.engine.connect()

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self.spawn(self.broker.listen(self._deliver, self._resumed, self._stop))
        self.spawn(self._presence_loop())
        self.spawn(self._refresh_loop())

    async def stop(self) -> None:
        self._stop.set()
        for conns in list(self._by_user.values()):
            for conn in list(conns):
                conn.close(CLOSE_GOING_AWAY, "server restarting")
        await asyncio.sleep(0)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            async with self.connect() as conn:
                await presence.leave_node(conn, self.node_id)
        await self.broker.close()

    def spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------ connections

    def attach(self, conn: Connection) -> None:
        """Start sending to ``conn``: what its stream holds after its ``last_seq`` first,
        then live events."""
        conns = self._by_user[conn.key]
        conns.add(conn)
        CONNECTIONS.inc()
        conn.offer(CATCH_UP)
        conn.start()
        if len(conns) == 1:
            self._presence.put_nowait(("online", conn.user_id))

    def detach(self, conn: Connection) -> None:
        conns = self._by_user.get(conn.key)
        if conns is None or conn not in conns:
            return
        conns.discard(conn)
        CONNECTIONS.dec()
        if not conns:
            del self._by_user[conn.key]
            self._presence.put_nowait(("offline", conn.user_id))
        conn.close(1000, "bye")

    def connections_of(self, user_id: uuid.UUID) -> set[Connection]:
        return set(self._by_user.get(str(user_id), ()))

    @property
    def connection_count(self) -> int:
        return sum(len(c) for c in self._by_user.values())

    # ------------------------------------------------------------ from the broker

    def _deliver(self, raw: str) -> None:
        try:
            envelope = json.loads(raw)
            kind = envelope["t"]
        except (ValueError, KeyError, TypeError):
            log.warning("realtime: unreadable envelope dropped")
            return
        if kind == "_close":
            self._close_sessions(set(envelope.get("s", ())), set(envelope.get("u", ())))
            return
        data = envelope.get("d")
        if "to" in envelope:
            for user, seq in envelope["to"].items():
                for conn in self._by_user.get(user, ()):
                    conn.offer(Event(kind, data, seq))
        else:
            event = Event(kind, data)
            for user in envelope.get("u", ()):
                for conn in self._by_user.get(user, ()):
                    conn.offer(event)

    def _resumed(self) -> None:
        """The broker connection came back: events may have been missed meanwhile."""
        for conns in list(self._by_user.values()):
            for conn in conns:
                conn.offer(CATCH_UP)

    def _close_sessions(self, session_ids: set[str], user_ids: set[str]) -> None:
        for user, conns in list(self._by_user.items()):
            for conn in list(conns):
                if user in user_ids or str(conn.session_id) in session_ids:
                    conn.close(CLOSE_SESSION_ENDED, "signed out")

    # ------------------------------------------------------------ presence

    async def _presence_loop(self) -> None:
        """One change at a time, so a quick reconnect never reads as offline."""
        while True:
            change, user_id = await self._presence.get()
            try:
                await self._apply_presence(change, user_id)
            except Exception:
                log.exception("presence update failed")

    async def _apply_presence(self, change: str, user_id: uuid.UUID) -> None:
        here = str(user_id) in self._by_user
        async with self.connect() as conn:
            if change == "online" and here:
                first = await presence.mark_online(conn, self.node_id, user_id)
                if first:
                    await self._announce(user_id, online=True, last_seen=None)
            elif change == "offline" and not here:
                seen = await presence.mark_offline(conn, self.node_id, user_id)
                if seen is not None:
                    await self._announce(user_id, online=False, last_seen=seen.isoformat())

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(presence.REFRESH_SECONDS)
            try:
                async with self.connect() as conn:
                    gone = await presence.refresh(conn, self.node_id)
                for user_id in gone:
                    await self._announce(user_id, online=False, last_seen=None)
            except Exception:
                log.exception("presence refresh failed")

    async def _announce(self, user_id: uuid.UUID, *, online: bool, last_seen: str | None) -> None:
        if self._audience is None:
            return
        async with self._sessions() as session:
            audience = set(await self._audience(session, user_id))
        if audience:
            await broadcast(
                audience,
                "presence",
                {
                    "user_id": str(user_id),
                    "status": "online" if online else "offline",
                    "last_seen_at": last_seen,
                },
            )
