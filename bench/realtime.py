"""Real-time chat benchmark: message delivery over ``/ws`` across two api processes,
against a raw PostgreSQL LISTEN/NOTIFY round trip measured in the same run.

    python -m bench.realtime                                  # embedded PostgreSQL
    python -m bench.realtime --rate 100 --duration 30 --rounds 3
    python -m bench.realtime --server-url postgresql://postgres@127.0.0.1:5432/postgres
    python -m bench.realtime --redis redis://127.0.0.1:6379/12  # the Redis broker

A fresh database ``bench_realtime`` is created (embedded PostgreSQL in
``bench/.data-realtime/`` unless ``--server-url``), migrated with ``mesteri migrate`` and
filled by :mod:`bench.realtime_data`: ``--conversations`` (500) pre-hire conversations,
each with its own client and pro (1,000 users) and a job. Two ``mesteri api`` processes
serve it. Every user opens one WebSocket — for each conversation the client on one
process and the pro on the other — authenticates and waits for ``ready``.

Each round, alternately:

1. **Baseline**: a raw LISTEN/NOTIFY round trip on the same server (asyncpg: one
   connection LISTENs, a pool NOTIFYs at ``--rate`` with the send time's index in a
   payload as big as the app's envelope).
2. **Chat**: messages are POSTed at ``--rate`` (open loop: on schedule, never waiting for
   earlier answers), over the conversations and both sides, each through the api
   process its sender's socket is on, so every delivery crosses processes.
   Delivery latency = from just before the POST is sent to the other participant's socket
   receiving its ``message.new``. A raw NOTIFY probe runs at ``--probe-rate`` meanwhile
   (the transport under the chat's load), and a listener of the app's own channel in this
   process (the "tap") splits the delivery at the moment the commit's NOTIFY is heard.

Then: every posted message reached the other participant exactly once, in ``seq`` order,
every socket's event ids increase without gaps; the RSS of each api process with the
connections open; CPU of the api processes, PostgreSQL and this process per round.

Benchmarks never fail on timing: exit 0 unless something broke (a server did not start, a
POST failed, a message was lost, duplicated or reordered, a socket was closed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import functools
import gc
import json
import os
import random
import resource
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from bench import harness
from bench.harness import BenchError

HERE = Path(__file__).resolve().parent
DATA_DIR = HERE / ".data-realtime"
RESULTS = harness.RESULTS_DIR / "realtime.json"
DATABASE = "bench_realtime"
CHANNEL = "mesteri_realtime"  # the app's (kit.realtime.brokers.CHANNEL)
SEND_RATE_PER_USER = 30 / 60  # messaging.api.SEND_RATE, per second
GOAL_RATIO = 5.0
BODIES = [
    "Bună ziua, pot veni mâine dimineață să văd despre ce e vorba.",
    "Mulțumesc! Cât ar costa cu tot cu materialele?",
    "Da, robinetul picură de o săptămână, mai ales noaptea.",
    "Am nevoie și de o priză nouă în bucătărie, se poate în aceeași zi?",
    "Perfect, ne vedem joi la 10. Vă trimit adresa exactă înainte.",
    "Ok.",
    "Lucrarea durează cam două zile, prima zi demontăm faianța veche, a doua montăm "
    "plăcile noi și chituim. Materialele le puteți lua și dumneavoastră dacă doriți.",
]


def say(message: str = "") -> None:
    print(message, flush=True)


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# --------------------------------------------------------------------------- options


@dataclass(frozen=True)
class Options:
    server_url: str | None
    data_dir: Path
    redis: str | None
    conversations: int
    rate: float
    duration: float
    warmup: float
    rounds: int
    probe_rate: float
    activity_every: float
    pool_size: int | None
    connect_concurrency: int
    compression: bool
    grace: float
    profile: bool
    synchronous_commit: str
    instrument: bool
    post: str  # ws | rest
    output: Path


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.realtime", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--server-url",
        help="a PostgreSQL server where the database bench_realtime may be (re)created "
        "(default: an embedded one in --data-dir)",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DATA_DIR,
        help="MESTERI_DATA_DIR: the embedded PostgreSQL and the api's files "
        "(default bench/.data-realtime)",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        help="run the api processes with MESTERI_REDIS_URL (the Redis broker, and the rate "
        "limiter in Redis), e.g. redis://127.0.0.1:6379/12",
    )
    parser.add_argument("--conversations", type=int, default=500, help="two users each")
    parser.add_argument("--rate", type=float, default=50.0, help="messages per second in all")
    parser.add_argument("--duration", type=float, default=20.0, help="measured seconds a round")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds first")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--probe-rate",
        type=float,
        default=5.0,
        help="raw NOTIFYs per second during the chat rounds (0: none)",
    )
    parser.add_argument(
        "--activity-every",
        type=float,
        default=1.0,
        help="seconds between samples of pg_stat_activity during the chat rounds (sampled "
        "every 0.1 s, its query was itself in the tail of the chat's p99)",
    )
    parser.add_argument(
        "--pool-size",
        type=int,
        help="MESTERI_DB_POOL_SIZE of the api processes (default: the app's)",
    )
    parser.add_argument("--connect-concurrency", type=int, default=50)
    parser.add_argument(
        "--no-compression",
        action="store_true",
        help="do not offer permessage-deflate (browsers do; the default offers it)",
    )
    parser.add_argument(
        "--grace", type=float, default=10.0, help="seconds to wait for late deliveries"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy both api processes during the last chat round (py-spy must be installed; "
        "it slows them down, so the figures of such a run are not clean)",
    )
    parser.add_argument(
        "--synchronous-commit",
        choices=("on", "off"),
        default="on",
        help="diagnostic: 'off' sets synchronous_commit = off on the benchmark database, "
        "so commits stop waiting for the WAL flush (not how the app is run)",
    )
    parser.add_argument(
        "--instrument",
        action="store_true",
        help="run the api processes under bench.realtime_api: their event-loop lag and "
        "garbage-collection pauses per round (its probe costs the api a few %% of a CPU)",
    )
    parser.add_argument(
        "--post",
        choices=("ws", "rest"),
        default="ws",
        help="how messages are posted: a 'send' frame on the sender's WebSocket (the "
        "default, the app's main way in) or POST /conversations/{id}/messages",
    )
    parser.add_argument("--output", type=Path, help="default bench/results/realtime[-redis].json")
    args = parser.parse_args(argv)
    if min(args.conversations, args.rounds, args.connect_concurrency) < 1:
        parser.error("counts need at least 1")
    if args.rate <= 0 or args.duration <= 0 or args.warmup < 0 or args.probe_rate < 0:
        parser.error("--rate and --duration must be above 0")
    if args.activity_every <= 0:
        parser.error("--activity-every must be above 0")
    ceiling = 2 * args.conversations * SEND_RATE_PER_USER
    if args.rate > 0.8 * ceiling:
        parser.error(
            f"--rate {args.rate:g} would bring users near the send limit (30/minute each): "
            f"at most {0.8 * ceiling:g}/s with {args.conversations} conversations"
        )
    suffix = (
        ("-redis" if args.redis else "")
        + ("-async-commit" if args.synchronous_commit == "off" else "")
        + ("-rest" if args.post == "rest" else "")
    )
    output = args.output or harness.RESULTS_DIR / f"realtime{suffix}.json"
    return Options(
        server_url=args.server_url,
        data_dir=args.data_dir.resolve(),
        redis=args.redis,
        conversations=args.conversations,
        rate=args.rate,
        duration=args.duration,
        warmup=args.warmup,
        rounds=args.rounds,
        probe_rate=args.probe_rate,
        activity_every=args.activity_every,
        pool_size=args.pool_size,
        connect_concurrency=args.connect_concurrency,
        compression=not args.no_compression,
        grace=args.grace,
        profile=args.profile,
        synchronous_commit=args.synchronous_commit,
        instrument=args.instrument,
        post=args.post,
        output=output,
    )


# --------------------------------------------------------------------------- database


def prepare_database(
    server_url: str, env: dict[str, str], *, synchronous_commit: str = "on"
) -> tuple[str, float]:
    """A fresh ``bench_realtime``, migrated by ``mesteri migrate``; its URL and the
    seconds the migration took."""
    import psycopg

    from bench.search import database_url

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
        # Times WAL flushes in pg_stat_wal (the sampler reports the mean); no other effect.
        conn.execute(f'ALTER DATABASE "{DATABASE}" SET track_wal_io_timing = on')
        if synchronous_commit != "on":
            conn.execute(f'ALTER DATABASE "{DATABASE}" SET synchronous_commit = off')
    url = database_url(server_url, DATABASE)
    started = time.monotonic()
    done = subprocess.run(
        harness.mesteri_command("migrate"),
        cwd=harness.REPO_ROOT,
        env={**env, "MESTERI_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise BenchError(f"mesteri migrate failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return url, time.monotonic() - started


def postgres_main_pid(url: str, data_dir: Path, embedded: bool) -> int | None:
    """The postmaster (its backends are its children), when it runs on this machine."""
    if embedded:
        return harness.postmaster_pid(data_dir)
    import psycopg

    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    try:
        with open(f"/proc/{row[0] if row else 0}/stat") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None  # another machine, or not readable


def postgres_cpu_seconds(postmaster: int | None) -> float:
    """CPU of the server: living processes, plus the backends that exited (reaped)."""
    if postmaster is None:
        return 0.0
    try:
        with open(f"/proc/{postmaster}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        reaped = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        reaped = 0.0
    return harness.cpu_seconds(postmaster) + reaped


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------- people


@dataclass(eq=False)
class Member:
    """One user's WebSocket: the frames it received (arrival ``perf_counter_ns``, text)."""

    user_id: str
    conversation_id: str
    side: str  # client | pro
    api: int  # the process its socket (and its POSTs) go to
    token: str
    ws: Any = None
    frames: list[tuple[int, str]] = field(default_factory=list)
    messages: int = 0  # message.new frames so far (the live count the rounds wait on)
    expected: int = 0  # message.new frames it should have by now
    ready_ms: float = 0.0
    closed: str | None = None  # how the socket ended, when it ended before the close
    reader: asyncio.Task[None] | None = None
    # Messages sent on the socket, by ref: their answer (``sent`` or ``error``) and when.
    answers: dict[str, asyncio.Future[tuple[int, dict[str, Any]]]] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(eq=False)
class Sent:
    k: int
    round: int
    measured: bool
    sender: Member
    receiver: Member
    t_send: int = 0  # perf_counter_ns just before the request
    t_resp: int = 0
    status: int | None = None
    error: str | None = None
    message_id: str | None = None
    seq: int | None = None
    created_ns: int | None = None  # the message's created_at, wall clock


def members_of(pairs: Sequence[Any], tokens: dict[uuid.UUID, str]) -> list[tuple[Member, Member]]:
    """(client, pro) per conversation: the client of conversation i on process i % 2, the
    pro on the other one."""
    chats = []
    for i, pair in enumerate(pairs):
        client = Member(
            str(pair.client.user_id),
            str(pair.conversation_id),
            "client",
            i % 2,
            tokens[pair.client.user_id],
        )
        pro = Member(
            str(pair.pro.user_id),
            str(pair.conversation_id),
            "pro",
            (i + 1) % 2,
            tokens[pair.pro.user_id],
        )
        chats.append((client, pro))
    return chats


# --------------------------------------------------------------------------- sockets

MESSAGE_PREFIX = '{"type":"message.new"'
ANSWER_PREFIXES = ('{"type":"sent"', '{"type":"error"')


async def open_socket(member: Member, base_url: str, *, compression: bool) -> None:
    from websockets.asyncio.client import connect

    started = time.perf_counter()
    ws = await connect(
        base_url.replace("http", "ws", 1) + "/ws",
        ping_interval=None,  # the protocol's own ping frames keep the socket alive
        max_size=2**20,
        compression="deflate" if compression else None,
        open_timeout=60,
        close_timeout=5,
    )
    await ws.send(json.dumps({"type": "auth", "token": member.token}))
    ready = json.loads(await asyncio.wait_for(ws.recv(), 60))
    if ready.get("type") != "ready":
        await ws.close()
        raise BenchError(f"/ws answered {ready} instead of ready")
    member.ready_ms = (time.perf_counter() - started) * 1000
    member.ws = ws
    member.reader = asyncio.create_task(read_socket(member))


async def read_socket(member: Member) -> None:
    from websockets.exceptions import ConnectionClosed

    frames, clock = member.frames, time.perf_counter_ns
    try:
        async for raw in member.ws:
            at = clock()
            frames.append((at, raw))
            if raw.startswith(MESSAGE_PREFIX):
                member.messages += 1
            elif raw.startswith(ANSWER_PREFIXES):
                answer = json.loads(raw)
                waiting = member.answers.pop(str((answer.get("data") or {}).get("ref")), None)
                if waiting is not None and not waiting.done():
                    waiting.set_result((at, answer))
    except ConnectionClosed as exc:
        member.closed = f"{exc.rcvd.code if exc.rcvd else 'no close frame'}"
        return
    member.closed = f"{member.ws.close_code}"


async def close_socket(member: Member) -> None:
    if member.ws is None:
        return
    reader, member.reader = member.reader, None
    with contextlib.suppress(Exception):
        await member.ws.close()
    if reader is not None:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await reader


async def bounded(limit: int, jobs: Sequence[Callable[[], Awaitable[None]]]) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await job()

    return await asyncio.gather(*(one(j) for j in jobs), return_exceptions=True)


async def settle(members: Sequence[Member], *, quiet: float = 2.0, within: float = 60.0) -> float:
    """Wait until no socket received anything for ``quiet`` seconds (the presence
    announcements of 1,000 users coming online); the seconds waited."""
    started = time.monotonic()
    last = -1
    stable_since = time.monotonic()
    while time.monotonic() - started < within:
        count = sum(len(m.frames) for m in members)
        if count != last:
            last, stable_since = count, time.monotonic()
        elif time.monotonic() - stable_since >= quiet:
            break
        await asyncio.sleep(0.2)
    return time.monotonic() - started


async def pinger(members: Sequence[Member], every: float, stop: asyncio.Event) -> None:
    """``ping`` from each socket every ``every`` seconds, spread evenly (a real client's
    heartbeat, which ``ws_idle_seconds`` requires). On an absolute schedule: a stalled
    loop catches up instead of stretching the period past the server's idle timeout."""
    from websockets.exceptions import ConnectionClosed

    frame = json.dumps({"type": "ping"})
    began = time.monotonic()
    done = 0  # pings sent so far, over all sockets
    while not stop.is_set():
        due = int((time.monotonic() - began) / every * len(members))
        while done < due:
            member = members[done % len(members)]
            done += 1
            if member.ws is not None and member.closed is None:
                with contextlib.suppress(ConnectionClosed):
                    await member.ws.send(frame)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.1)


# --------------------------------------------------------------------------- open-loop ticker


async def ticker(
    rate: float,
    count: int,
    fire: Callable[[int], Awaitable[None]],
    *,
    at: Callable[[int], None] | None = None,
) -> list[float]:
    """Start ``fire(k)`` for k in 0..count-1 at ``rate`` per second, each on schedule
    whatever the earlier ones are doing; ``at(k)`` is called synchronously just before.
    Returns how late each start was (ms): a generator that cannot keep up shows here."""
    interval = 1e9 / rate
    tasks = []
    lags = []
    began = time.perf_counter_ns() + 1_000_000
    for k in range(count):
        target = began + int(k * interval)
        delay = (target - time.perf_counter_ns()) / 1e9
        if delay > 0:
            await asyncio.sleep(delay)
        lags.append((time.perf_counter_ns() - target) / 1e6)
        if at is not None:
            at(k)
        tasks.append(asyncio.ensure_future(fire(k)))
    if at is not None:
        at(count)
    await asyncio.gather(*tasks)
    return lags


@dataclass
class Window:
    """CPU use of the watched processes between two points (100 = one CPU busy)."""

    watch: dict[str, Callable[[], float]]
    began: float = 0.0
    before: dict[str, float] = field(default_factory=dict)
    pct: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0

    wall_began: int = 0
    wall_ended: int = 0

    def start(self) -> None:
        self.before = {name: read() for name, read in self.watch.items()}
        self.began = time.perf_counter()
        self.wall_began = time.time_ns()

    def stop(self) -> None:
        self.seconds = time.perf_counter() - self.began
        self.wall_ended = time.time_ns()
        self.pct = {
            name: round(100 * (read() - self.before[name]) / self.seconds, 1)
            for name, read in self.watch.items()
        }


# --------------------------------------------------------------------------- raw baselines


def summary(values_ms: Sequence[float]) -> dict[str, float | int]:
    ordered = sorted(values_ms)
    if not ordered:
        return {"count": 0}
    return {
        "count": len(ordered),
        "p50_ms": round(harness.percentile(ordered, 50), 3),
        "p95_ms": round(harness.percentile(ordered, 95), 3),
        "p99_ms": round(harness.percentile(ordered, 99), 3),
        "max_ms": round(ordered[-1], 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
    }


class NotifyProbe:
    """Raw LISTEN/NOTIFY: one asyncpg connection listens, a small pool notifies; the
    payload starts with the index of the send and is padded to ``size`` bytes."""

    def __init__(self, url: str, size: int) -> None:
        self.url = url
        self.size = size
        self.channel = f"bench_rt_{uuid.uuid4().hex[:8]}"
        self.listener: Any = None
        self.pool: Any = None
        self.arrived: dict[int, int] = {}
        self.duplicates = 0
        self._base = 0

    async def open(self) -> None:
        import asyncpg

        settings = {"application_name": "bench-notify"}
        self.listener = await asyncpg.connect(self.url, server_settings=settings)
        await self.listener.add_listener(self.channel, self._heard)
        self.pool = await asyncpg.create_pool(
            self.url, min_size=4, max_size=4, server_settings=settings
        )

    def _heard(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        now = time.perf_counter_ns()
        k = int(payload.split("|", 1)[0])
        if k in self.arrived:
            self.duplicates += 1
        else:
            self.arrived[k] = now

    def payload(self, k: int) -> str:
        head = f"{k}|"
        return head + "x" * max(0, self.size - len(head))

    async def run(
        self, rate: float, seconds: float, warmup: float, window: Window | None = None
    ) -> dict[str, Any]:
        base = self._base
        count = max(1, round((warmup + seconds) * rate))
        skip = round(warmup * rate)
        self._base += count
        sent: dict[int, int] = {}
        errors: list[str] = []

        async def fire(i: int) -> None:
            k = base + i
            payload = self.payload(k)
            sent[k] = time.perf_counter_ns()
            try:
                async with self.pool.acquire() as conn:
                    await conn.execute("SELECT pg_notify($1, $2)", self.channel, payload)
            except Exception as exc:  # counted: the baseline itself broke
                errors.append(repr(exc))

        def at(i: int) -> None:
            if window is not None and i == skip:
                window.start()
            if window is not None and i == count:
                window.stop()

        lags = await ticker(rate, count, fire, at=at)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(  # noqa: ASYNC110 - polling arrivals
            base + i not in self.arrived for i in range(count)
        ):
            await asyncio.sleep(0.05)
        latencies = [
            (self.arrived[base + i] - sent[base + i]) / 1e6
            for i in range(skip, count)
            if base + i in self.arrived
        ]
        lost = sum(1 for i in range(count) if base + i not in self.arrived)
        return {
            **summary(latencies),
            "lost": lost,
            "errors": len(errors),
            "first_error": errors[0] if errors else None,
            "late_start_p99_ms": round(harness.percentile(sorted(lags[skip:]), 99), 3),
            "cpu_pct": window.pct if window else {},
        }

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.listener.close()
        with contextlib.suppress(Exception):
            await self.pool.close()


class RedisProbe:
    """Raw Redis pub/sub: one subscriber, one publisher, the same payload and schedule."""

    def __init__(self, url: str, size: int) -> None:
        self.url = url
        self.size = size
        self.channel = f"bench_rt_{uuid.uuid4().hex[:8]}"
        self.arrived: dict[int, int] = {}
        self._base = 0
        self._pub: Any = None
        self._sub: Any = None
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        import redis.asyncio as redis

        self._pub = redis.Redis.from_url(self.url)
        self._sub = redis.Redis.from_url(self.url)
        self._pubsub = self._sub.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self.channel)
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self._pubsub.listen():
            now = time.perf_counter_ns()
            if message.get("type") == "message":
                k = int(bytes(message["data"]).split(b"|", 1)[0])
                self.arrived.setdefault(k, now)

    async def run(self, rate: float, seconds: float, warmup: float) -> dict[str, Any]:
        base = self._base
        count = max(1, round((warmup + seconds) * rate))
        skip = round(warmup * rate)
        self._base += count
        sent: dict[int, int] = {}

        async def fire(i: int) -> None:
            k = base + i
            head = f"{k}|"
            sent[k] = time.perf_counter_ns()
            await self._pub.publish(self.channel, head + "x" * max(0, self.size - len(head)))

        await ticker(rate, count, fire)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(  # noqa: ASYNC110 - polling arrivals
            base + i not in self.arrived for i in range(count)
        ):
            await asyncio.sleep(0.05)
        latencies = [
            (self.arrived[base + i] - sent[base + i]) / 1e6
            for i in range(skip, count)
            if base + i in self.arrived
        ]
        return {
            **summary(latencies),
            "lost": sum(base + i not in self.arrived for i in range(count)),
        }

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
        for client in (self._pub, self._sub):
            with contextlib.suppress(Exception):
                await client.aclose()


class Tap:
    """A listener of the app's own channel in this process: when each envelope was heard
    (``perf_counter_ns``) — the commit's NOTIFY, or the Redis publish after it."""

    def __init__(self, url: str, redis_url: str | None) -> None:
        self.url, self.redis_url = url, redis_url
        self.heard: list[tuple[int, str]] = []
        self._conn: Any = None
        self._redis: Any = None
        self._pubsub: Any = None
        self._reader: asyncio.Task[None] | None = None

    async def open(self) -> None:
        if self.redis_url:
            import redis.asyncio as redis

            self._redis = redis.Redis.from_url(self.redis_url)
            self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            await self._pubsub.subscribe(CHANNEL)
            self._reader = asyncio.create_task(self._read())
            return
        import asyncpg

        self._conn = await asyncpg.connect(
            self.url, server_settings={"application_name": "bench-tap"}
        )
        await self._conn.add_listener(
            CHANNEL,
            lambda _c, _p, _ch, payload: self.heard.append((time.perf_counter_ns(), payload)),
        )

    async def _read(self) -> None:
        async for message in self._pubsub.listen():
            if message.get("type") == "message":
                data = message["data"]
                self.heard.append(
                    (time.perf_counter_ns(), data.decode() if isinstance(data, bytes) else data)
                )

    def by_message(self) -> tuple[dict[str, int], list[int]]:
        """When each message's ``message.new`` envelope was first heard; envelope sizes."""
        first: dict[str, int] = {}
        sizes = []
        for at, raw in self.heard:
            try:
                envelope = json.loads(raw)
            except ValueError:
                continue
            if envelope.get("t") == "message.new" and isinstance(envelope.get("d"), dict):
                first.setdefault(str(envelope["d"].get("id")), at)
                sizes.append(len(raw.encode()))
        return first, sizes

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        with contextlib.suppress(Exception):
            if self._conn is not None:
                await self._conn.close()
            if self._pubsub is not None:
                await self._pubsub.aclose()
            if self._redis is not None:
                await self._redis.aclose()


def envelope_size() -> int:
    """The size of a typical ``message.new`` envelope (the raw probes' payload size)."""
    from mesteri.kit.realtime.streams import _envelope

    users = [str(uuid.uuid4()), str(uuid.uuid4())]
    data = {
        "id": str(uuid.uuid4()),
        "conversation_id": str(uuid.uuid4()),
        "seq": 12,
        "sender_id": users[0],
        "kind": "text",
        "body": "[r1m000123] " + statistics.mode(BODIES),
        "masked": False,
        "mask_kinds": [],
        "data": {},
        "attachments": [],
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "edited_at": None,
        "deleted": False,
    }
    return len(_envelope("message.new", data, {users[0]: 25, users[1]: 24}).encode())


class ActivitySampler:
    """``pg_stat_activity`` of the benchmark database every ``every`` seconds: what the
    backends are doing (active / idle in transaction) and what they wait for."""

    def __init__(self, url: str, every: float) -> None:
        self.url, self.every = url, every
        self.conn: Any = None
        self.samples = 0
        self.states: Counter[str] = Counter()
        self.queries: Counter[str] = Counter()
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        import asyncpg

        self.conn = await asyncpg.connect(
            self.url, server_settings={"application_name": "bench-sampler"}
        )

    async def _wal(self) -> dict[str, float]:
        row = await self.conn.fetchrow(
            "SELECT w.wal_records, w.wal_bytes, w.wal_write, w.wal_sync, w.wal_sync_time, "
            "d.xact_commit FROM pg_stat_wal w, pg_stat_database d "
            "WHERE d.datname = current_database()"
        )
        return {k: float(v) for k, v in dict(row).items()}

    async def start(self) -> None:
        self.samples = 0
        self.states = Counter()
        self.queries = Counter()
        self.wal_before = await self._wal()
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            rows = await self.conn.fetch(
                "SELECT application_name AS app, state, wait_event_type AS wtype, "
                "wait_event AS wevent, left(regexp_replace(query, '\\s+', ' ', 'g'), 90) AS query "
                "FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
                "AND state IS DISTINCT FROM 'idle'"
            )
            self.samples += 1
            for row in rows:
                if row["app"].startswith("bench-"):
                    continue
                wait = f"{row['wtype']}:{row['wevent']}" if row["wtype"] else "cpu"
                self.states[f"{row['app']} {row['state']} {wait}"] += 1
                if row["wtype"] in ("Lock", "LWLock", "IO"):
                    self.queries[f"{wait} {row['query']}"] += 1
            await asyncio.sleep(self.every)

    async def stop(self) -> dict[str, Any]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await asyncio.sleep(1.1)  # backends report their WAL figures at most every second
        wal = await self._wal()
        delta = {k: wal[k] - self.wal_before.get(k, 0.0) for k in wal}
        n = max(1, self.samples)
        return {
            "wal": {
                "commits": int(delta["xact_commit"]),
                "wal_syncs": int(delta["wal_sync"]),
                "wal_kb": round(delta["wal_bytes"] / 1024),
                # server-wide, and only with track_wal_io_timing (set on this database)
                "sync_ms_mean": round(delta["wal_sync_time"] / delta["wal_sync"], 2)
                if delta["wal_sync"]
                else None,
            },
            "samples": self.samples,
            "backends_per_sample": {k: round(v / n, 2) for k, v in self.states.most_common(12)},
            "waiting_queries_per_sample": {
                k: round(v / n, 2) for k, v in self.queries.most_common(8)
            },
        }

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.conn.close()


class LoopLag:
    """How late this process's event loop wakes a 5 ms sleeper, and its garbage
    collections: a stalled load generator shows here (its latencies include the stall).

    While a window is measured (the baseline's or the chat's alike) this process's
    garbage collector is paused, and it collects when the window ends: a collection of
    the 1,000 sockets' objects stalled the generator for up to 15 ms, which every
    delivery in flight then counted as the app's latency."""

    def __init__(self) -> None:
        self.lags: list[float] = []
        self.gc_ms: list[float] = []
        self._gc_began = 0
        self._task: asyncio.Task[None] | None = None
        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_began = time.perf_counter_ns()
        elif self._gc_began:
            self.gc_ms.append((time.perf_counter_ns() - self._gc_began) / 1e6)

    def start(self) -> None:
        self.lags = []
        self.gc_ms = []
        gc.disable()
        self._task = asyncio.create_task(self._loop())

    async def _loop(self) -> None:
        while True:
            began = time.perf_counter_ns()
            await asyncio.sleep(0.005)
            self.lags.append((time.perf_counter_ns() - began) / 1e6 - 5.0)

    async def stop(self) -> dict[str, float]:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        ordered = sorted(self.lags)
        figures = {
            "p99_ms": round(harness.percentile(ordered, 99), 2),
            "max_ms": round(ordered[-1], 2) if ordered else 0.0,
            "gc_collections": len(self.gc_ms),
            "gc_max_ms": round(max(self.gc_ms, default=0.0), 2),
        }
        gc.enable()
        gc.collect()
        return figures


# --------------------------------------------------------------------------- the chat


class Chat:
    """The members, the HTTP clients of the two processes, and every message sent."""

    def __init__(
        self, chats: list[tuple[Member, Member]], bases: Sequence[str], *, over_socket: bool
    ) -> None:
        self.over_socket = over_socket
        self.chats = chats
        self.members = [m for pair in chats for m in pair]
        self.bases = list(bases)
        self.http: list[Any] = []
        self.sent: list[Sent] = []
        self.order = list(range(len(chats)))
        random.Random(7).shuffle(self.order)
        self.k = 0  # messages sent over all rounds: each user posts every 2n / rate seconds

    async def open(self) -> None:
        """aiohttp sessions, one per process: a third of httpx's CPU per request, which
        matters when this generator shares two CPUs with what it measures."""
        import aiohttp

        for base in self.bases:
            connector = aiohttp.TCPConnector(
                limit=200,
                # uvicorn drops idle keep-alive connections after 5 s: reusing one it is
                # closing would fail the POST (a client race, not the server's error).
                keepalive_timeout=3.0,
            )
            self.http.append(
                aiohttp.ClientSession(
                    base_url=base,
                    connector=connector,
                    timeout=aiohttp.ClientTimeout(total=60.0),
                )
            )

    def pick(self, k: int) -> tuple[Member, Member]:
        n = len(self.chats)
        index = self.order[k % n]
        lap = k // n
        client, pro = self.chats[index]
        # Each lap the other side writes; pairs of neighbours (client on process 0, then
        # on process 1) write from opposite processes, so both get half of every lap.
        return (client, pro) if (lap + index // 2) % 2 == 0 else (pro, client)

    async def post(self, sent: Sent) -> None:
        if self.over_socket:
            await self.send(sent)
        else:
            await self.post_rest(sent)

    def posted(self, sent: Sent, data: dict[str, Any]) -> None:
        sent.message_id = data["id"]
        sent.seq = data["seq"]
        sent.created_ns = iso_ns(data["created_at"])
        sent.sender.expected += 1
        sent.receiver.expected += 1

    async def send(self, sent: Sent) -> None:
        """A ``send`` frame on the sender's socket; the answer comes back on it."""
        sender = sent.sender
        ref = str(sent.k)
        waiting: asyncio.Future[tuple[int, dict[str, Any]]] = (
            asyncio.get_running_loop().create_future()
        )
        sender.answers[ref] = waiting
        frame = json.dumps(
            {
                "type": "send",
                "ref": ref,
                "conversation_id": sender.conversation_id,
                "body": f"[r{sent.round}m{sent.k:06d}] {BODIES[sent.k % len(BODIES)]}",
            }
        )
        sent.t_send = time.perf_counter_ns()
        try:
            await sender.ws.send(frame)
            at, answer = await asyncio.wait_for(waiting, 60)
        except Exception as exc:
            sent.t_resp = time.perf_counter_ns()
            sent.error = repr(exc)
            sender.answers.pop(ref, None)
            return
        sent.t_resp = at
        if answer["type"] != "sent":
            sent.error = f"error {answer.get('data')}"
            return
        self.posted(sent, answer["data"]["message"])

    async def post_rest(self, sent: Sent) -> None:
        sender = sent.sender
        body = f"[r{sent.round}m{sent.k:06d}] {BODIES[sent.k % len(BODIES)]}"
        http = self.http[sender.api]
        path = f"/api/v1/conversations/{sender.conversation_id}/messages"
        payload = json.dumps({"body": body})
        headers = {**sender.headers, "Content-Type": "application/json"}
        sent.t_send = time.perf_counter_ns()
        try:
            async with http.post(path, data=payload, headers=headers) as response:
                raw = await response.read()
                sent.t_resp = time.perf_counter_ns()
                sent.status = response.status
        except Exception as exc:
            sent.t_resp = time.perf_counter_ns()
            sent.error = repr(exc)
            return
        if sent.status != 201:
            sent.error = f"{sent.status} {raw[:200]!r}"
            return
        self.posted(sent, json.loads(raw))

    async def round(
        self,
        number: int,
        rate: float,
        seconds: float,
        warmup: float,
        window: Window,
        grace: float,
        on_measure: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        count = max(1, round((warmup + seconds) * rate))
        skip = round(warmup * rate)
        batch: list[Sent] = []
        first = self.k
        self.k += count

        async def fire(i: int) -> None:
            sender, receiver = self.pick(first + i)
            sent = Sent(first + i, number, i >= skip, sender, receiver)
            batch.append(sent)
            await self.post(sent)

        def at(i: int) -> None:
            if i == skip:
                window.start()
                if on_measure is not None:
                    on_measure()
            if i == count:
                window.stop()

        lags = await ticker(rate, count, fire, at=at)
        self.sent.extend(batch)
        waited = await self.drain(grace)
        measured = [s for s in batch if s.measured]
        ok = [s for s in measured if s.message_id]
        return {
            "round": number,
            "sent": len(measured),
            "sent_in_round": len(batch),  # the warm-up's too
            "posted": len(ok),
            "post_errors": sum(1 for s in batch if s.error),
            "rate_per_s": round(len(ok) / window.seconds, 1) if window.seconds else 0.0,
            "late_start_p99_ms": round(harness.percentile(sorted(lags[skip:]), 99), 3),
            "late_start_max_ms": round(max(lags[skip:], default=0.0), 3),
            "drain_s": round(waited, 2),
            "cpu_pct": window.pct,
            "window_s": round(window.seconds, 2),
        }

    async def drain(self, grace: float) -> float:
        """Wait until every socket has as many ``message.new`` as it should (or ``grace``)."""
        started = time.monotonic()
        while time.monotonic() - started < grace:
            if all(m.messages >= m.expected for m in self.members):
                break
            await asyncio.sleep(0.02)
        return time.monotonic() - started

    async def close(self) -> None:
        for http in self.http:
            await http.close()


def iso_ns(value: str) -> int:
    return int(dt.datetime.fromisoformat(value).timestamp() * 1e9)


# --------------------------------------------------------------------------- checks


@dataclass
class Analysis:
    rounds: dict[int, dict[str, list[float]]]
    checks: dict[str, Any]


def analyse(chat: Chat, tap_first: dict[str, int], perf_to_wall: int) -> Analysis:
    """Join frames with sends; the latencies per round and the correctness checks."""
    by_id = {s.message_id: s for s in chat.sent if s.message_id}
    received: dict[tuple[str, str], list[int]] = defaultdict(list)  # (user, message) → times
    reordered = duplicates = unexpected = id_regressions = id_gaps = 0
    kinds: Counter[str] = Counter()
    examples: list[str] = []
    for member in chat.members:
        last_seq = 0
        last_id: int | None = None
        for at, raw in member.frames:
            frame = json.loads(raw)
            kind = frame.get("type", "?")
            kinds[kind] += 1
            if "id" in frame:
                event_id = frame["id"]
                if last_id is not None and event_id <= last_id:
                    id_regressions += 1
                elif last_id is not None and event_id > last_id + 1:
                    id_gaps += event_id - last_id - 1
                last_id = event_id
            if kind != "message.new":
                continue
            data = frame.get("data") or {}
            mid = str(data.get("id"))
            if data.get("conversation_id") != member.conversation_id:
                unexpected += 1
                continue
            seq = int(data.get("seq", 0))
            if seq <= last_seq:
                reordered += 1
                if len(examples) < 5:
                    examples.append(f"user {member.user_id}: seq {seq} after {last_seq}")
            last_seq = max(last_seq, seq)
            if mid not in by_id:
                unexpected += 1
                continue
            received[(member.user_id, mid)].append(at)
    rounds: dict[int, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    lost = lost_echo = 0
    lost_examples: list[str] = []
    for sent in by_id.values():
        other = received.get((sent.receiver.user_id, sent.message_id or ""), [])
        echo = received.get((sent.sender.user_id, sent.message_id or ""), [])
        duplicates += max(0, len(other) - 1) + max(0, len(echo) - 1)
        if not other:
            lost += 1
            if len(lost_examples) < 5:
                lost_examples.append(
                    f"message {sent.message_id} (k {sent.k}) to {sent.receiver.user_id}"
                )
        if not echo:
            lost_echo += 1
        if not sent.measured:
            continue
        figures = rounds[sent.round]
        figures["post"].append((sent.t_resp - sent.t_send) / 1e6)
        if other:
            figures["delivery"].append((other[0] - sent.t_send) / 1e6)
            if sent.created_ns is not None:
                figures["created_to_socket"].append(
                    (other[0] + perf_to_wall - sent.created_ns) / 1e6
                )
            heard = tap_first.get(sent.message_id or "")
            if heard is not None:
                figures["send_to_notify"].append((heard - sent.t_send) / 1e6)
                figures["notify_to_socket"].append((other[0] - heard) / 1e6)
        if echo:
            figures["echo"].append((echo[0] - sent.t_send) / 1e6)
    closed = [f"{m.side} {m.user_id}: {m.closed}" for m in chat.members if m.closed]
    post_errors = [s.error for s in chat.sent if s.error]
    checks = {
        "posted": len(by_id),
        "post_errors": len(post_errors),
        "first_post_error": post_errors[0] if post_errors else None,
        "lost": lost,
        "lost_examples": lost_examples,
        "echo_lost": lost_echo,
        "duplicated": duplicates,
        "reordered": reordered,
        "reordered_examples": examples,
        "unexpected": unexpected,
        "event_id_regressions": id_regressions,
        "event_id_gaps": id_gaps,
        "sockets_closed_early": len(closed),
        "closed_examples": closed[:5],
        "frames": dict(kinds),
    }
    return Analysis(rounds, checks)


def problems_of(checks: dict[str, Any]) -> list[str]:
    problems = []
    for key in (
        "post_errors",
        "lost",
        "echo_lost",
        "duplicated",
        "reordered",
        "unexpected",
        "event_id_regressions",
        "event_id_gaps",
        "sockets_closed_early",
    ):
        if checks.get(key):
            problems.append(f"{key.replace('_', ' ')}: {checks[key]}")
    return problems


# --------------------------------------------------------------------------- metrics, profile


def scrape_metrics(base_url: str) -> dict[str, float]:
    """The api's realtime counters from ``/metrics``."""
    import urllib.request

    wanted = (
        "mesteri_ws_connections",
        "mesteri_ws_frames_sent_total",
        "mesteri_ws_slow_closed_total",
        "mesteri_ws_bursts_folded_total",
    )
    found: dict[str, float] = {}
    try:
        with urllib.request.urlopen(base_url + "/metrics", timeout=10) as response:
            text = response.read().decode()
    except OSError:
        return found
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in wanted:
            found[name] = float(value)
    return found


def start_profiles(servers: Sequence[harness.ServerProcess], seconds: float) -> list[Any]:
    """py-spy on each api process, raw (collapsed) stacks with idle frames left out."""
    import shutil

    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        say("  --profile: py-spy is not installed (.venv/bin/pip install py-spy); skipped")
        return []
    harness.LOG_DIR.mkdir(parents=True, exist_ok=True)
    procs = []
    for server in servers:
        out = harness.RESULTS_DIR / f"realtime-profile-{server.name}.txt"
        argv = [spy, "record", "--pid", str(server.pid), "--duration", str(max(1, round(seconds)))]
        argv += ["--rate", "200", "--format", "raw", "--threads", "--gil", "--output", str(out)]
        procs.append(
            (subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), out)
        )
    return procs


def finish_profiles(procs: list[Any]) -> list[str]:
    outs = []
    for proc, out in procs:
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
        if out.exists():
            outs.append(str(out))
        else:
            say(f"  py-spy wrote nothing: {proc.stderr.read().decode()[-500:]}")
    return outs


# --------------------------------------------------------------------------- the run


@dataclass
class Context:
    opts: Options
    url: str
    servers: list[harness.ServerProcess]
    chats: list[tuple[Member, Member]]
    postmaster: int | None


def probe_file(name: str) -> Path:
    return harness.LOG_DIR / f"{name}-probe.log"


def api_process(env: dict[str, str], name: str, instrument: bool) -> harness.ServerProcess:
    """``mesteri api`` on a free port (``harness.api_server``), or the same command run
    by :mod:`bench.realtime_api` with its probes."""
    if not instrument:
        return harness.api_server(env, name=name)
    port = harness.free_port()
    harness.LOG_DIR.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "bench.realtime_api", "api", "--port", str(port)]
    return harness.ServerProcess(
        name, argv, port, {**env, "BENCH_PROBE_FILE": str(probe_file(name))}
    )


def rss_of(servers: Sequence[harness.ServerProcess]) -> dict[str, float]:
    return {s.name: round(s.rss_mb(), 1) for s in servers}


async def measure(ctx: Context) -> dict[str, Any]:
    from mesteri.kit.db import libpq_url

    opts = ctx.opts
    pg_url = libpq_url(ctx.url)
    servers = ctx.servers
    watch: dict[str, Callable[[], float]] = {
        s.name: functools.partial(harness.cpu_seconds, s.pid) for s in servers
    }
    watch["postgres"] = lambda: postgres_cpu_seconds(ctx.postmaster)
    watch["bench"] = self_cpu_seconds
    chat = Chat(ctx.chats, [s.base_url for s in servers], over_socket=ctx.opts.post == "ws")
    members = chat.members
    size = envelope_size()
    baseline = NotifyProbe(pg_url, size)
    probe = NotifyProbe(pg_url, size)
    redis_probe = RedisProbe(opts.redis, size) if opts.redis else None
    tap = Tap(pg_url, opts.redis)
    sampler = ActivitySampler(pg_url, opts.activity_every)
    lag = LoopLag()
    stop = asyncio.Event()
    result: dict[str, Any] = {"envelope_bytes": size}
    ping_task: asyncio.Task[None] | None = None
    try:
        for opener in (baseline.open, probe.open, tap.open, sampler.open, chat.open):
            await opener()
        if redis_probe is not None:
            await redis_probe.open()
        await asyncio.sleep(2)
        result["rss_idle_mb"] = rss_of(servers)

        say(f"Opening {len(members)} WebSockets ({opts.connect_concurrency} at a time) …")
        began = time.monotonic()
        outcomes = await bounded(
            opts.connect_concurrency,
            [
                functools.partial(
                    open_socket, m, servers[m.api].base_url, compression=opts.compression
                )
                for m in members
            ],
        )
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            raise BenchError(f"{len(failures)} sockets did not open: {failures[0]!r}")
        opened_s = time.monotonic() - began
        ready = sorted(m.ready_ms for m in members)
        settled = await settle(members)
        heartbeat = 25.0
        result["connect"] = {
            "sockets": len(members),
            "seconds": round(opened_s, 2),
            "ready_p50_ms": round(harness.percentile(ready, 50), 1),
            "ready_p99_ms": round(harness.percentile(ready, 99), 1),
            "settle_s": round(settled, 1),
            "compression": opts.compression,
        }
        say(
            f"  {len(members)} ready in {opened_s:.1f} s "
            f"(ready p50 {result['connect']['ready_p50_ms']} ms, "
            f"p99 {result['connect']['ready_p99_ms']} ms); quiet after {settled:.1f} s more"
        )
        # What exists now lives until the end: keep it out of the collector's full passes,
        # which would otherwise stall this load generator for longer and longer.
        gc.collect()
        gc.freeze()
        result["rss_connected_mb"] = rss_of(servers)
        result["metrics_connected"] = {s.name: scrape_metrics(s.base_url) for s in servers}
        ping_task = asyncio.create_task(pinger(members, heartbeat, stop))

        rounds: list[dict[str, Any]] = []
        profiles: list[Any] = []
        for number in range(1, opts.rounds + 1):
            say(f"Round {number}/{opts.rounds}  load {loadavg()}")
            base_window = Window(dict(watch))
            lag.start()
            base = await baseline.run(opts.rate, opts.duration, opts.warmup, base_window)
            base["bench_loop_lag"] = await lag.stop()
            say(
                f"  NOTIFY     p50 {base.get('p50_ms', 0):7.2f}  p95 {base.get('p95_ms', 0):7.2f}  "
                f"p99 {base.get('p99_ms', 0):7.2f} ms  (lost {base['lost']})"
            )
            redis_base = None
            if redis_probe is not None:
                redis_base = await redis_probe.run(opts.rate, opts.duration, opts.warmup)
                say(
                    f"  Redis pub  p50 {redis_base.get('p50_ms', 0):7.2f}  "
                    f"p95 {redis_base.get('p95_ms', 0):7.2f}  "
                    f"p99 {redis_base.get('p99_ms', 0):7.2f} ms"
                )
            chat_window = Window(dict(watch))
            last = number == opts.rounds

            def on_measure(last: bool = last) -> None:
                if last and opts.profile:
                    profiles.extend(start_profiles(servers, opts.duration))

            probe_task = None
            if opts.probe_rate > 0:
                probe_task = asyncio.create_task(
                    probe.run(opts.probe_rate, opts.duration, opts.warmup)
                )
            lag.start()
            await sampler.start()
            figures = await chat.round(
                number, opts.rate, opts.duration, opts.warmup, chat_window, opts.grace, on_measure
            )
            figures["activity"] = await sampler.stop()
            figures["bench_loop_lag"] = await lag.stop()
            if opts.instrument:
                from bench import realtime_api

                figures["api_probe"] = {
                    s.name: realtime_api.read(
                        str(probe_file(s.name)), chat_window.wall_began, chat_window.wall_ended
                    )
                    for s in servers
                }
            under_load = await probe_task if probe_task is not None else None
            rounds.append(
                {
                    "chat": figures,
                    "notify": base,
                    "notify_under_load": under_load,
                    "redis_pubsub": redis_base,
                }
            )
            say(
                f"  chat       {figures['posted']} messages measured ({figures['rate_per_s']}/s), "
                f"POST errors {figures['post_errors']}, "
                f"late starts p99 {figures['late_start_p99_ms']} ms, CPU {figures['cpu_pct']}, "
                f"bench loop lag max {figures['bench_loop_lag']['max_ms']} ms "
                f"(GC max {figures['bench_loop_lag']['gc_max_ms']} ms)"
            )
            say(f"    WAL {figures['activity']['wal']}")
            for name, probed in figures.get("api_probe", {}).items():
                say(f"    {name} {probed}")
            for state, per in list(figures["activity"]["backends_per_sample"].items())[:6]:
                say(f"    backends {per:5.2f}  {state}")
        result["profiles"] = finish_profiles(profiles)
        await chat.drain(opts.grace)
        await asyncio.sleep(1.0)  # anything duplicated late shows up too
        result["rss_after_mb"] = rss_of(servers)
        result["metrics_after"] = {s.name: scrape_metrics(s.base_url) for s in servers}
        stop.set()
        await ping_task
        ping_task = None
        tap_first, sizes = tap.by_message()
        perf_to_wall = time.time_ns() - time.perf_counter_ns()
        analysis = analyse(chat, tap_first, perf_to_wall)
        result["envelope_bytes_seen"] = round(statistics.fmean(sizes)) if sizes else None
        for entry in rounds:
            number = entry["chat"]["round"]
            entry["latency"] = {
                key: summary(values) for key, values in analysis.rounds.get(number, {}).items()
            }
        result["rounds"] = rounds
        result["checks"] = analysis.checks
        say("Closing the sockets …")
        await bounded(
            opts.connect_concurrency, [functools.partial(close_socket, m) for m in members]
        )
        await asyncio.sleep(3)
        result["rss_closed_mb"] = rss_of(servers)
        result["metrics_closed"] = {s.name: scrape_metrics(s.base_url) for s in servers}
    finally:
        stop.set()
        if ping_task is not None:
            ping_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await ping_task
        await bounded(
            opts.connect_concurrency, [functools.partial(close_socket, m) for m in members]
        )
        for closer in (baseline.close, probe.close, tap.close, sampler.close, chat.close):
            with contextlib.suppress(Exception):
                await closer()
        if redis_probe is not None:
            await redis_probe.close()
    return result


def run_async(coro: Awaitable[Any]) -> Any:
    """With uvloop when installed (the api processes use it too), like ``asyncio.run``."""
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(coro)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- report

LATENCY_ROWS = [
    ("notify", "NOTIFY round trip (baseline)"),
    ("delivery", "delivery: POST → other's socket"),
    ("post", "POST answered"),
    ("echo", "POST → sender's own socket"),
    ("send_to_notify", "POST → NOTIFY heard (tap)"),
    ("notify_to_socket", "NOTIFY heard → other's socket"),
    ("created_to_socket", "created_at → other's socket"),
    ("notify_under_load", "NOTIFY during the chat (probe)"),
    ("redis_pubsub", "Redis PUBLISH round trip (raw)"),
]


def medians(rounds: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Medians over the rounds of each latency row's percentiles."""
    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in rounds:
        for key in ("notify", "notify_under_load", "redis_pubsub"):
            if entry.get(key) and entry[key].get("count"):
                rows[key].append(entry[key])
        for key, figures in entry.get("latency", {}).items():
            if figures.get("count"):
                rows[key].append(figures)
    out = {}
    for key, runs in rows.items():
        out[key] = {
            pct: round(statistics.median(r[pct] for r in runs), 3)
            for pct in ("p50_ms", "p95_ms", "p99_ms", "max_ms")
        }
        out[key]["count"] = sum(r["count"] for r in runs)
    return out


def database_summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the chat rounds: what the app's backends did, the WAL flushes."""
    activity = [
        {**e["chat"]["activity"], "messages": e["chat"].get("sent_in_round", 0)}
        for e in rounds
        if e["chat"].get("activity")
    ]
    if not activity:
        return {}

    def median_of(pick: Callable[[dict[str, Any]], float | None]) -> float | None:
        values = [v for v in (pick(a) for a in activity) if v is not None]
        return round(statistics.median(values), 2) if values else None

    def backends(a: dict[str, Any], what: str) -> float:
        return float(sum(v for k, v in a["backends_per_sample"].items() if what in k))

    return {
        "waiting_on_notify_lock": median_of(lambda a: backends(a, "Lock:object")),
        "idle_in_transaction": median_of(lambda a: backends(a, "idle in transaction")),
        "in_wal_flush": median_of(
            lambda a: backends(a, "IO:WALSync") + backends(a, "LWLock:WALWrite")
        ),
        # about 1 when every message commit flushes on its own (no group commit)
        "wal_flushes_per_message": median_of(
            lambda a: a["wal"]["wal_syncs"] / a["messages"] if a["messages"] else None
        ),
        "wal_flush_ms_mean": median_of(lambda a: a["wal"]["sync_ms_mean"]),
    }


def probe_summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the chat rounds of the api processes' probes (--instrument)."""
    out: dict[str, Any] = {}
    probes = [e["chat"].get("api_probe") for e in rounds if e["chat"].get("api_probe")]
    for name in probes[0] if probes else ():
        runs = [p[name] for p in probes if p.get(name)]
        gc2 = [r["gc"].get("gc2", {}).get("max_ms", 0.0) for r in runs]
        gc_total = [sum(g["total_ms"] for g in r["gc"].values()) for r in runs]
        out[name] = {
            "loop_lag_p99_ms": statistics.median(r["loop_lag_p99_ms"] for r in runs),
            "loop_lag_max_ms": statistics.median(r["loop_lag_max_ms"] for r in runs),
            "loop_stalled_s": statistics.median(r["loop_stalled_s"] for r in runs),
            "gc_ms": statistics.median(gc_total),
            "gc2_max_ms": statistics.median(gc2),
        }
    return out


def build_report(
    opts: Options, started: dict[str, Any], setup: dict[str, Any], measured: dict[str, Any]
) -> dict[str, Any]:
    table = medians(measured["rounds"])
    ratio = None
    if "delivery" in table and table.get("notify", {}).get("p99_ms"):
        ratio = table["delivery"]["p99_ms"] / table["notify"]["p99_ms"]
    cpu: dict[str, dict[str, float]] = {}
    for kind in ("chat", "notify"):
        runs = [
            (e["chat"]["cpu_pct"] if kind == "chat" else e["notify"]["cpu_pct"])
            for e in measured["rounds"]
        ]
        runs = [r for r in runs if r]
        if runs:
            cpu[kind] = {
                name: round(statistics.median(r[name] for r in runs), 1) for name in runs[0]
            }
    rates = [e["chat"]["rate_per_s"] for e in measured["rounds"]]
    problems = problems_of(measured["checks"])
    for entry in measured["rounds"]:
        if entry["notify"]["lost"] or entry["notify"]["errors"]:
            problems.append(f"round {entry['chat']['round']}: the NOTIFY baseline lost messages")
    for server_metrics in measured.get("metrics_after", {}).values():
        if server_metrics.get("mesteri_ws_slow_closed_total"):
            problems.append("an api closed sockets as too slow")
    return {
        "benchmark": "realtime",
        "started": started,
        "finished": {
            "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "loadavg": loadavg(),
        },
        "revision": harness.git_revision(),
        "options": {
            k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(opts).items()
        },
        "broker": "redis" if opts.redis else "postgres",
        "setup": setup,
        "table": table,
        "ratio_p99_delivery_to_notify": round(ratio, 2) if ratio is not None else None,
        "ratio_p99_notify_heard_to_socket_to_notify": (
            round(table["notify_to_socket"]["p99_ms"] / table["notify"]["p99_ms"], 2)
            if "notify_to_socket" in table and table.get("notify", {}).get("p99_ms")
            else None
        ),
        "goal_ratio": GOAL_RATIO,
        "messages_per_s": round(statistics.median(rates), 1) if rates else 0,
        "database_during_chat": database_summary(measured["rounds"]),
        "api_probe": probe_summary(measured["rounds"]),
        "cpu_pct": cpu,
        **{k: v for k, v in measured.items() if k != "rounds"},
        "rounds": measured["rounds"],
        "problems": problems,
    }


def print_report(report: dict[str, Any]) -> None:
    opts = report["options"]
    table = report["table"]
    setup = report["setup"]
    say()
    say(
        f"Real time: {report['broker']} broker, 2 api processes, "
        f"{report['connect']['sockets']} WebSockets in {opts['conversations']} conversations, "
        f"{opts['rate']:g} messages/s, "
        f"{opts['rounds']} rounds of {opts['duration']:g} s (+{opts['warmup']:g} s warm-up); "
        f"database on {setup['database_server']}"
    )
    say(f"{'':34} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} {'count':>7}")
    for key, label in LATENCY_ROWS:
        if key in table:
            row = table[key]
            say(
                f"{label:34} {row['p50_ms']:>8.2f} {row['p95_ms']:>8.2f} {row['p99_ms']:>8.2f} "
                f"{row['max_ms']:>8.2f} {row['count']:>7}"
            )
    say("  (medians over rounds; count = sum; created_at is stamped before the INSERT, so the")
    say("   last row includes the commit; it compares two clocks of this machine)")
    ratio = report["ratio_p99_delivery_to_notify"]
    if ratio is not None:
        verdict = "PASS" if ratio <= GOAL_RATIO else "BELOW"
        say(f"\np99 delivery / p99 NOTIFY: {ratio:.2f}  (goal ≤ {GOAL_RATIO:g}: {verdict})")
    part = report["ratio_p99_notify_heard_to_socket_to_notify"]
    if part is not None:
        say(f"p99 NOTIFY heard → socket / p99 NOTIFY: {part:.2f}  (the hub's part, informational)")
    checks = report["checks"]
    say(
        f"messages: {checks['posted']} posted (measured rate {report['messages_per_s']}/s), "
        f"lost {checks['lost']}, duplicated {checks['duplicated']}, "
        f"reordered {checks['reordered']}, echo lost {checks['echo_lost']}, "
        f"unexpected {checks['unexpected']}, "
        f"event-id regressions {checks['event_id_regressions']}, gaps {checks['event_id_gaps']}, "
        f"POST errors {checks['post_errors']}, "
        f"sockets closed early {checks['sockets_closed_early']}"
    )
    say(f"frames received: {checks['frames']}")
    db = report.get("database_during_chat") or {}
    if db:
        say(
            f"PostgreSQL during the chat (per sample, every {opts['activity_every']:g} s): "
            f"{db['waiting_on_notify_lock']} backends waiting on the NOTIFY lock (Lock:object), "
            f"{db['idle_in_transaction']} idle in transaction (waiting for the api), "
            f"{db['in_wal_flush']} in a WAL flush; "
            f"{db['wal_flushes_per_message']} WAL flushes per message, "
            f"flush {db['wal_flush_ms_mean']} ms on average"
        )
    for name, probed in (report.get("api_probe") or {}).items():
        say(
            f"{name} event loop: lag p99 {probed['loop_lag_p99_ms']} ms, max "
            f"{probed['loop_lag_max_ms']} ms, late {probed['loop_stalled_s']} s in all; "
            f"GC {probed['gc_ms']:.0f} ms, longest full collection {probed['gc2_max_ms']:.0f} ms"
        )
    connect = report["connect"]
    say(
        f"connect: {connect['sockets']} sockets ready in {connect['seconds']} s "
        f"(p50 {connect['ready_p50_ms']} ms, p99 {connect['ready_p99_ms']} ms), "
        f"permessage-deflate {'offered' if connect['compression'] else 'off'}"
    )
    for name in report["rss_idle_mb"]:
        say(
            f"RSS {name}: idle {report['rss_idle_mb'][name]:.0f} MB, "
            f"with {connect['sockets'] // 2} sockets {report['rss_connected_mb'][name]:.0f} MB, "
            f"after the rounds {report['rss_after_mb'][name]:.0f} MB, "
            f"sockets closed {report.get('rss_closed_mb', {}).get(name, 0):.0f} MB"
        )
    for kind, figures in report["cpu_pct"].items():
        say(
            f"CPU % during the {kind} rounds (100 = one CPU): "
            + ", ".join(f"{k} {v:.0f}" for k, v in figures.items())
        )
    say(
        f"load average: start {report['started']['loadavg']}, end {report['finished']['loadavg']}; "
        f"envelope {report['envelope_bytes_seen']} bytes (probes {report['envelope_bytes']})"
    )
    if report.get("profiles"):
        say("profiles: " + ", ".join(report["profiles"]))
    for problem in report["problems"]:
        say(f"  PROBLEM: {problem}")
    say()


# --------------------------------------------------------------------------- main


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < min(hard, 65536):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    _raise_fd_limit()  # 1,000 sockets here, 500 in each api (which inherit the limit)
    started = {
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "loadavg": loadavg(),
    }
    say(f"load average at start: {started['loadavg']}")
    # The tokens minted here must be the ones the api processes accept: same settings.
    os.environ.setdefault("MESTERI_LOG_LEVEL", "WARNING")
    os.environ["MESTERI_ACCESS_TOKEN_MINUTES"] = "240"
    from mesteri.config import get_settings

    get_settings.cache_clear()
    from bench.realtime_data import access_token, generate

    extra = {"MESTERI_ACCESS_TOKEN_MINUTES": "240"}
    if opts.pool_size:
        extra["MESTERI_DB_POOL_SIZE"] = str(opts.pool_size)
    if opts.redis:
        extra["MESTERI_REDIS_URL"] = opts.redis
    embedded = None
    try:
        with ExitStack() as stack:
            server_url = opts.server_url
            if server_url is None:
                from mesteri.kit.embedded import EmbeddedPostgres

                embedded = EmbeddedPostgres(opts.data_dir)
                say(f"Starting the embedded PostgreSQL in {embedded.pgdata} …")
                server_url = embedded.start()
                stack.callback(embedded.stop)
            base_env = harness.bench_env(opts.data_dir, **extra)
            say(f"Creating {DATABASE} and migrating it …")
            url, migrate_s = prepare_database(
                server_url, base_env, synchronous_commit=opts.synchronous_commit
            )
            began = time.monotonic()
            pairs = generate(url, opts.conversations)
            tokens = {
                person.user_id: access_token(person)
                for pair in pairs
                for person in (pair.client, pair.pro)
            }
            generate_s = time.monotonic() - began
            say(
                f"  migrated in {migrate_s:.1f} s; {len(pairs)} conversations, "
                f"{len(tokens)} users in {generate_s:.1f} s"
            )
            env = {**base_env, "MESTERI_DATABASE_URL": url}
            servers = [api_process(env, f"api-rt-{x}", opts.instrument) for x in "ab"]
            for server in servers:
                stack.enter_context(server)
            for server in servers:
                server.wait_ready()
            say(
                "Two api processes ready: "
                + ", ".join(f"{s.name} {s.base_url} (pid {s.pid})" for s in servers)
            )
            import psycopg

            with psycopg.connect(url) as conn:
                version = conn.execute("SHOW server_version").fetchone()
                pool = get_settings().db_pool_size if not opts.pool_size else opts.pool_size
            ctx = Context(
                opts,
                url,
                servers,
                members_of(pairs, tokens),
                postgres_main_pid(url, opts.data_dir, embedded is not None),
            )
            setup = {
                "database_server": ("embedded " if embedded else "")
                + f"PostgreSQL {version[0] if version else '?'}",
                "migrate_s": round(migrate_s, 1),
                "generate_s": round(generate_s, 1),
                "db_pool_size": pool,
                "postgres_cpu_measured": ctx.postmaster is not None,
            }
            measured = run_async(measure(ctx))
            with psycopg.connect(url) as conn:
                row = conn.execute("SELECT count(*) FROM messages").fetchone()
                setup["messages_in_database"] = int(row[0]) if row else 0
            for server in servers:
                if server.proc is not None and server.proc.poll() is not None:
                    raise BenchError(f"{server.name} exited during the run:\n{server.log_tail()}")
    except KeyboardInterrupt:
        say("Interrupted; the servers and the embedded PostgreSQL were stopped.")
        return 130
    except BenchError as exc:
        print(f"The benchmark broke: {exc}", file=sys.stderr)
        return 1
    if embedded is not None and (left := harness.wait_postgres_stopped(opts.data_dir)):
        print(f"The embedded PostgreSQL is still running: {left}", file=sys.stderr)
        return 1
    report = build_report(opts, started, setup, measured)
    if setup["messages_in_database"] != measured["checks"]["posted"]:
        report["problems"].append(
            f"{setup['messages_in_database']} messages in the database, "
            f"{measured['checks']['posted']} posted"
        )
    print_report(report)
    harness.save_results(opts.output, report)
    say(f"Results: {opts.output}")
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
