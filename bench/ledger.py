"""The payments benchmark: ledger release postings against pgbench, on the same server.

``python -m bench.ledger`` (``make bench-ledger``; ``make bench-ledger BENCH_ARGS="--rounds 3"``)
measures, with ``--clients`` (default 8) concurrent clients against one PostgreSQL server:

* **pgbench** — its built-in ``tpcb-like`` script (``pgbench -b tpcb-like -c 8 -j 2 -T …
  -n``) on a database of its own (``pgbench -i -s 1``), transactions per second;
* **ledger release postings** — funded escrow holds prepared up front through the real
  service (``fund_hold`` with the sandbox provider, then ``do_handle_event`` with a
  ``payment_intent.succeeded`` event), then one asyncio worker per client, each in its own
  transaction (``unit_of_work``), calling ``service.release`` on distinct holds;
* **full cycles** — ``fund_hold`` (sandbox checkout) → ``SandboxProvider.pay`` with the
  success card (which records the webhook event) → the event signed and delivered the way
  the sandbox's delivery job does it, and handled by the same two calls as the webhook
  endpoint (``parse_webhook`` + ``do_handle_event``, in their own transaction, without the
  HTTP layer) → ``service.release``.

pgbench and the ledger alternate for ``--rounds`` rounds; medians are reported. Each
database is vacuumed (``VACUUM (ANALYZE)``, not measured) before each measured run. Goal
(informational, never a failing exit code): release postings per second at least 1/3 of
pgbench's tps. After the runs the ledger's invariants are checked with SQL; the exit code
is non-zero only if one is violated or something broke. Figures also go to
``bench/results/ledger.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import glob
import json
import multiprocessing
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from bench import harness, run
from bench.harness import BenchError

RATIO_GOAL = 1 / 3  # release postings/s as a share of pgbench's tps
LEDGER_DB = "bench_ledger"
PGBENCH_DB = "bench_pgbench"
HOLD_AMOUNT = 100_000  # minor units (1 000.00 RON)
SAMPLE_EVERY_S = 0.1  # pg_stat_activity sampling during the measured runs
PREPARE_BATCH = 10  # funded holds prepared per transaction (not measured)
ROLL_UP_EVERY_S = 1.0  # the platform accounts' roll-up during measured runs
JOB_START_S = 12.0  # client processes start, connect and warm up before the clock starts


@dataclass(frozen=True)
class Options:
    clients: int
    duration: float
    rounds: int
    pgbench_jobs: int
    jobs: int
    pgbench_scale: int
    pgbench_protocol: str
    pgbench: str | None
    pros: int
    warmup_per_client: int
    max_holds: int
    skip_cycles: bool
    data_dir: Path
    output: Path


def parse_args(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(
        prog="python -m bench.ledger",
        description="Ledger release postings and escrow cycles against pgbench tpcb-like.",
    )
    parser.add_argument(
        "--clients", type=int, default=8, help="concurrent clients everywhere (default 8)"
    )
    parser.add_argument(
        "--duration", type=float, default=15.0, help="measured seconds per run (default 15)"
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="alternations; medians are reported (default 2)"
    )
    parser.add_argument("--pgbench-jobs", type=int, default=2, help="pgbench -j (default 2)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=2,
        help="client processes the ledger's clients are spread over, as pgbench -j spreads "
        "its clients over threads (default 2)",
    )
    parser.add_argument("--pgbench-scale", type=int, default=1, help="pgbench -i -s (default 1)")
    parser.add_argument(
        "--pgbench-protocol",
        choices=["simple", "prepared"],
        default="simple",
        help="pgbench -M: simple (pgbench's default, the issue's figure) or prepared",
    )
    parser.add_argument(
        "--pgbench",
        default=None,
        help="the pgbench binary (default: pgserver's, else PATH, else /usr/lib/postgresql)",
    )
    parser.add_argument(
        "--pros",
        type=int,
        default=32,
        help="payees the holds are spread over (default 32)",
    )
    parser.add_argument(
        "--warmup-per-client",
        type=int,
        default=25,
        help="holds released per client before measuring; sizes the rounds (default 25)",
    )
    parser.add_argument(
        "--max-holds",
        type=int,
        default=20_000,
        help="at most this many funded holds prepared per round (default 20000)",
    )
    parser.add_argument(
        "--skip-cycles", action="store_true", help="do not measure full fund → release cycles"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=harness.DEFAULT_DATA_DIR,
        help="MESTERI_DATA_DIR of the embedded PostgreSQL (default bench/.data)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=harness.RESULTS_DIR / "ledger.json",
        help="where the JSON results go (default bench/results/ledger.json)",
    )
    args = parser.parse_args(argv)
    counts = (
        args.clients,
        args.rounds,
        args.pgbench_jobs,
        args.jobs,
        args.pgbench_scale,
        args.pros,
    )
    if min(counts) < 1:
        parser.error("counts need at least 1")
    if args.duration <= 0 or args.warmup_per_client < 1 or args.max_holds < args.clients:
        parser.error("--duration must be above 0, --warmup-per-client at least 1")
    return Options(
        clients=args.clients,
        duration=args.duration,
        rounds=args.rounds,
        pgbench_jobs=min(args.pgbench_jobs, args.clients),
        jobs=min(args.jobs, args.clients),
        pgbench_scale=args.pgbench_scale,
        pgbench_protocol=args.pgbench_protocol,
        pgbench=args.pgbench,
        pros=args.pros,
        warmup_per_client=args.warmup_per_client,
        max_holds=args.max_holds,
        skip_cycles=args.skip_cycles,
        data_dir=args.data_dir.resolve(),
        output=args.output,
    )


def say(message: str) -> None:
    print(message, flush=True)


# --------------------------------------------------------------------------- the server


@dataclass(frozen=True)
class Socket:
    host: str  # the Unix socket directory
    port: str

    def url(self, database: str) -> str:
        url = f"postgresql://postgres:@/{database}?host={self.host}"
        return url if self.port in ("", "5432") else f"{url}&port={self.port}"


def server_socket(data_dir: Path) -> Socket:
    lines = (harness.pgdata_dir(data_dir) / "postmaster.pid").read_text().splitlines()
    return Socket(host=lines[4].strip(), port=lines[3].strip() or "5432")


def find_pgbench(explicit: str | None) -> tuple[str | None, str]:
    """pgserver's own pgbench, else one on PATH, else the newest system install."""
    if explicit:
        return (explicit, "--pgbench") if Path(explicit).exists() else (None, explicit)
    import pgserver

    bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
    if bundled.exists():
        return str(bundled), "pgserver"
    on_path = shutil.which("pgbench")
    if on_path:
        return on_path, "PATH"
    system = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/pgbench"),
        key=lambda p: int(re.sub(r"\D", "", Path(p).parts[-3]) or 0),
    )
    return (system[-1], "system") if system else (None, "not found")


def recreate_database(server_url: str, name: str) -> None:
    """A fresh, empty database (the previous run's is dropped)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def server_version(server_url: str) -> str:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"


# --------------------------------------------------------------------------- sampling


@dataclass
class Sampler:
    """Samples ``pg_stat_activity`` of one database: how many backends run, how many wait."""

    url: str
    database: str
    samples: int = 0
    active: int = 0
    lock_waiting: int = 0
    waits: Counter[str] = field(default_factory=Counter)

    async def run(self, stop: asyncio.Event) -> None:
        import asyncpg  # type: ignore[import-untyped]

        conn = await asyncpg.connect(self.url)
        try:
            while not stop.is_set():
                rows = await conn.fetch(
                    "SELECT wait_event_type, wait_event, left(query, 48) AS query "
                    "FROM pg_stat_activity WHERE datname = $1 AND state = 'active' "
                    "AND pid <> pg_backend_pid()",
                    self.database,
                )
                self.samples += 1
                self.active += len(rows)
                for row in rows:
                    if row["wait_event_type"] == "Lock":
                        self.lock_waiting += 1
                        query = " ".join(str(row["query"]).split())
                        self.waits[f"{row['wait_event']}: {query}"] += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), SAMPLE_EVERY_S)
        finally:
            await conn.close()

    def summary(self) -> dict[str, Any]:
        n = max(self.samples, 1)
        return {
            "samples": self.samples,
            "avg_active_backends": round(self.active / n, 2),
            "avg_lock_waiting_backends": round(self.lock_waiting / n, 2),
            "lock_waits": dict(self.waits.most_common(4)),
        }


async def sampled(
    url: str, database: str, work: Callable[[], Awaitable[Any]]
) -> tuple[Any, dict[str, Any]]:
    sampler = Sampler(url, database)
    stop = asyncio.Event()
    task = asyncio.create_task(sampler.run(stop))
    try:
        result = await work()
    finally:
        stop.set()
        await task
    return result, sampler.summary()


# --------------------------------------------------------------------------- pgbench


async def pgbench_init(pgbench: str, sock: Socket, scale: int) -> None:
    done = await asyncio.to_thread(
        subprocess.run,
        [pgbench, "-i", "-q", "-s", str(scale), *_conn_args(sock), PGBENCH_DB],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise BenchError(f"pgbench -i failed ({done.returncode}):\n{done.stderr[-2000:]}")


async def vacuum(url: str) -> None:
    """``VACUUM (ANALYZE)`` a database before a measured run (not measured): the run then
    measures its own work, not autovacuum catching up with what the preparation wrote
    (tens of thousands of funded holds), which otherwise started at random in later
    rounds. pgbench, without ``-n``, vacuums its tables before a run too."""
    import asyncpg  # type: ignore[import-untyped]

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM (ANALYZE)", timeout=600)
    finally:
        await conn.close()


def _conn_args(sock: Socket) -> list[str]:
    return ["-h", sock.host, "-p", sock.port, "-U", "postgres"]


async def pgbench_run(opts: Options, pgbench: str, sock: Socket, postmaster: int) -> dict[str, Any]:
    argv = [pgbench, "-b", "tpcb-like", "-c", str(opts.clients), "-j", str(opts.pgbench_jobs)]
    argv += ["-T", str(max(1, round(opts.duration))), "-n", "-M", opts.pgbench_protocol]
    argv += [*_conn_args(sock), PGBENCH_DB]

    async def work() -> tuple[int, str, str, float, float]:
        pg_before, began = postgres_cpu_seconds(postmaster), time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await asyncio.wait_for(proc.communicate(), opts.duration + 120)
        wall = time.perf_counter() - began
        return proc.returncode or 0, out.decode(), err.decode(), wall, pg_before

    client_before = harness.children_cpu_seconds()
    (code, out, err, wall, pg_before), activity = await sampled(
        sock.url(PGBENCH_DB), PGBENCH_DB, work
    )
    if code != 0:
        raise BenchError(f"pgbench failed ({code}):\n{err[-2000:]}")
    tps = re.search(r"^tps = ([0-9.]+)", out, re.MULTILINE)
    if tps is None:
        raise BenchError(f"pgbench printed no tps line:\n{out[-2000:]}")
    latency = re.search(r"^latency average = ([0-9.]+) ms", out, re.MULTILINE)
    failed = re.search(r"^number of failed transactions: (\d+)", out, re.MULTILINE)
    done = re.search(r"^number of transactions actually processed: (\d+)", out, re.MULTILINE)
    return {
        "per_s": float(tps.group(1)),
        "count": int(done.group(1)) if done else None,
        "mean_ms": float(latency.group(1)) if latency else None,
        "p50_ms": None,
        "p99_ms": None,
        "errors": int(failed.group(1)) if failed else 0,
        "cpu_pct": {
            "postgres": round(100 * (postgres_cpu_seconds(postmaster) - pg_before) / wall, 1),
            "client": round(100 * (harness.children_cpu_seconds() - client_before) / wall, 1),
        },
        "activity": activity,
        "command": " ".join(argv),
    }


def postgres_cpu_seconds(postmaster: int) -> float:
    """CPU of the server: living processes, plus the backends that exited (reaped)."""
    try:
        with open(f"/proc/{postmaster}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        reaped = (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")  # cutime, cstime
    except (OSError, IndexError, ValueError):
        reaped = 0.0
    return harness.cpu_seconds(postmaster) + reaped


# --------------------------------------------------------------------------- the ledger side


class Ledger:
    """The app's payments code on the benchmark database: engine, provider, users."""

    def __init__(self, url: str, clients: int) -> None:
        from mesteri.config import get_settings
        from mesteri.kit import jobs, notify
        from mesteri.kit.db import create_engine, session_factories
        from mesteri.payments import providers
        from mesteri.payments.sandbox.provider import SandboxProvider

        self.settings = get_settings()
        self.currency = self.settings.market_profile.currency
        # Two connections per client at most: fund_hold's transaction while the sandbox
        # opens its own for the checkout, and a delivery job while the webhook is handled.
        self.engine = create_engine(url, pool_size=2 * clients + 2, max_overflow=clients)
        self.read, self.write = session_factories(self.engine)
        notify.notifier.configure(url)  # as the api process does: a release's job wakes the relay
        jobs.bind_sessions(self.write)  # the roll-up task's sessions
        self.provider = SandboxProvider(
            self.write,
            secret=providers.sandbox_secret(self.settings),
            public_url=self.settings.public_url,
            deliver=self._deliver,
        )
        providers.install(self.provider)
        self.payers: list[uuid.UUID] = []
        self.pros: list[uuid.UUID] = []
        self.webhook_outcomes: Counter[str] = Counter()
        self.rolled_up = 0
        self._serial = 0
        self._run = uuid.uuid4().hex[:8]

    async def close(self) -> None:
        from mesteri.kit import notify

        await notify.notifier.close()
        await self.engine.dispose()

    async def _deliver(self, body: bytes, headers: dict[str, str]) -> int:
        """What the webhook endpoint does with the signed POST, without the HTTP layer."""
        from mesteri.kit.db import unit_of_work
        from mesteri.payments import service

        event = self.provider.parse_webhook(body, {k.lower(): v for k, v in headers.items()})
        async with unit_of_work(self.write) as session:
            outcome = await service.do_handle_event(session, self.provider.name, event)
        self.webhook_outcomes[outcome] += 1
        return 200

    async def create_users(self, clients: int, pros: int) -> None:
        from mesteri.accounts import service as accounts
        from mesteri.kit.db import unit_of_work

        password = uuid.uuid4().hex + "-Bench"
        async with unit_of_work(self.write) as session:
            for role, count, into in (("client", clients, self.payers), ("pro", pros, self.pros)):
                for i in range(count):
                    user = await accounts.do_create_user(
                        session,
                        email=f"bench-{role}-{i}@example.ro",
                        phone=None,
                        password=password,
                        first_name="Bench",
                        last_name=f"{role.title()} {i}",
                        roles=[role],
                        check_policy=False,
                    )
                    into.append(user.id)

    def _next(self) -> tuple[str, uuid.UUID, uuid.UUID]:
        self._serial += 1
        n = self._serial
        return (
            f"bench:{self._run}:{n}",
            self.payers[n % len(self.payers)],
            self.pros[n % len(self.pros)],
        )

    async def fund(self, session: Any | None = None) -> Any:
        """``fund_hold``: the hold and its sandbox checkout, committed (or in ``session``)."""
        from mesteri.kit.db import unit_of_work
        from mesteri.kit.money import Money
        from mesteri.payments import service

        if session is None:
            async with unit_of_work(self.write) as own:
                return await self.fund(own)
        reference, payer, payee = self._next()
        return await service.fund_hold(
            session,
            reference=reference,
            payer_id=payer,
            payee_id=payee,
            amount=Money(HOLD_AMOUNT, self.currency),
            description="Benchmark milestone",
            category=None,
            settings=self.settings,
        )

    async def funded_holds(self, count: int) -> list[uuid.UUID]:
        """The fast path, ``count`` holds in one transaction: ``fund_hold``, then the
        provider's success event (what the sandbox would send) applied by ``do_handle_event``.
        """
        from mesteri.kit import clock
        from mesteri.kit.db import unit_of_work
        from mesteri.payments import service
        from mesteri.payments.providers.base import EventType, ProviderEvent
        from mesteri.payments.sandbox.provider import FEE_BPS, FEE_FIXED

        holds = []
        async with unit_of_work(self.write) as session:
            # The holds first, then the captures: the shared provider_clearing account row
            # is locked from the first capture to the commit.
            payments = [await self.fund(session) for _ in range(count)]
            for funded in payments:
                payment = funded.payment
                event_id = f"evt_bench_{payment.id.hex}"
                event = ProviderEvent(
                    id=event_id,
                    type=EventType.PAYMENT_SUCCEEDED,
                    raw_type="payment_intent.succeeded",
                    created=int(clock.now().timestamp()),
                    object_ref=payment.provider_ref,
                    reference=str(payment.id),
                    amount=payment.amount,
                    currency=payment.currency,
                    fee=payment.amount * FEE_BPS // 10_000 + FEE_FIXED,
                    payment_method="card",
                    payload={"id": event_id, "type": "payment_intent.succeeded"},
                )
                outcome = await service.do_handle_event(session, self.provider.name, event)
                if outcome != "funded":
                    raise BenchError(f"the capture of hold {funded.hold.id} answered {outcome!r}")
                holds.append(funded.hold.id)
        return holds

    async def release(self, hold_id: uuid.UUID) -> None:
        from mesteri.kit.db import unit_of_work
        from mesteri.payments import service

        async with unit_of_work(self.write) as session:
            settlement = await service.release(session, hold_id, settings=self.settings)
        if settlement.outcome != "released":
            raise BenchError(f"hold {hold_id} settled as {settlement.outcome}")

    async def roll_up(self) -> int:
        """The ``payments.roll_up_ledger`` task's work: every waiting platform line."""
        from mesteri.payments import tasks

        return await tasks.do_roll_up()

    async def rolling_up(self, stop: asyncio.Event) -> None:
        """The roll-up task during a measured run, every ``ROLL_UP_EVERY_S`` (its cost
        is part of the figures; the app's worker runs it every minute)."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=ROLL_UP_EVERY_S)
            self.rolled_up += await self.roll_up()

    def releasing(self, holds: list[uuid.UUID]) -> Callable[[int], Awaitable[None]]:
        """A step for :func:`drive`: the n-th call releases the n-th hold."""

        async def step(n: int) -> None:
            await self.release(holds[n])

        return step

    def cycling(self, stages: dict[str, list[float]]) -> Callable[[int], Awaitable[None]]:
        """A step for :func:`drive`: one full cycle, its stages' times added to ``stages``."""

        async def step(_n: int) -> None:
            await self.cycle(stages)

        return step

    async def cycle(self, stages: dict[str, list[float]]) -> None:
        """fund → pay (sandbox, success card) → signed webhook → release."""
        from sqlalchemy import text

        from mesteri.kit.db import unit_of_work
        from mesteri.payments.sandbox.provider import SUCCESS_CARD

        t0 = time.perf_counter()
        funded = await self.fund()
        t1 = time.perf_counter()
        ref = funded.payment.provider_ref
        outcome = await self.provider.pay(ref, card_number=SUCCESS_CARD, bnpl=None)
        if not outcome.succeeded:
            raise BenchError(f"the sandbox declined the success card: {outcome}")
        t2 = time.perf_counter()
        # The event pay() recorded (the delivery job carries its id; the worker is off).
        async with self.read() as session:
            event_id = await session.scalar(
                text(
                    "SELECT id FROM sandbox_events WHERE type = 'payment_intent.succeeded' "
                    "AND payload -> 'data' -> 'object' ->> 'id' = :ref"
                ),
                {"ref": ref},
            )
        if event_id is None:
            raise BenchError(f"no payment_intent.succeeded event for {ref}")
        # The delivery job's body: sign, POST (here: self._deliver), mark delivered.
        async with unit_of_work(self.write) as session:
            await self.provider.deliver_event(event_id, session)
        t3 = time.perf_counter()
        await self.release(funded.hold.id)
        t4 = time.perf_counter()
        for name, took in (("fund", t1 - t0), ("pay", t2 - t1), ("webhook", t3 - t2)):
            stages[name].append(took)
        stages["release"].append(t4 - t3)


@dataclass
class WorkResult:
    count: int = 0
    errors: int = 0
    first_errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0
    ran_out: bool = False

    @classmethod
    def merged(cls, parts: list[WorkResult]) -> WorkResult:
        """Runs side by side (client processes) as one."""
        return cls(
            count=sum(p.count for p in parts),
            errors=sum(p.errors for p in parts),
            first_errors=[e for p in parts for e in p.first_errors][:3],
            latencies=[t for p in parts for t in p.latencies],
            elapsed_s=max((p.elapsed_s for p in parts), default=0.0),
            ran_out=any(p.ran_out for p in parts),
        )

    def failed(self, exc: BaseException) -> None:
        self.errors += 1
        if len(self.first_errors) < 3:
            self.first_errors.append(f"{type(exc).__name__}: {exc}"[:500])


async def drive(
    clients: int,
    duration: float | None,
    step: Callable[[int], Awaitable[None]],
    *,
    total: int | None = None,
) -> WorkResult:
    """``clients`` workers calling ``step(n)`` until ``duration`` ends or ``total`` ran."""
    result = WorkResult()
    issued = 0
    began = time.perf_counter()
    deadline = began + duration if duration is not None else None

    async def worker() -> None:
        nonlocal issued
        while deadline is None or time.perf_counter() < deadline:
            if total is not None and issued >= total:
                result.ran_out = duration is not None
                return
            n = issued
            issued += 1
            t0 = time.perf_counter()
            try:
                await step(n)
            except Exception as exc:  # counted and reported: a broken run, not a slow one
                result.failed(exc)
                continue
            result.latencies.append(time.perf_counter() - t0)
            result.count += 1

    await asyncio.gather(*(worker() for _ in range(clients)))
    result.elapsed_s = time.perf_counter() - began
    return result


def _figures(
    result: WorkResult,
    cpu: dict[str, float],
    activity: dict[str, Any],
    done: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    lat = sorted(result.latencies)
    return {
        "client_processes": [
            {"count": d["result"]["count"], "late_s": d["late_s"]} for d in done or []
        ],
        "per_s": round(result.count / result.elapsed_s, 1) if result.elapsed_s else 0.0,
        "count": result.count,
        "elapsed_s": round(result.elapsed_s, 3),
        "mean_ms": round(1000 * statistics.fmean(lat), 2) if lat else None,
        "p50_ms": round(1000 * harness.percentile(lat, 50), 2) if lat else None,
        "p99_ms": round(1000 * harness.percentile(lat, 99), 2) if lat else None,
        "errors": result.errors,
        "first_errors": result.first_errors,
        "ran_out_of_holds": result.ran_out,
        "cpu_pct": cpu,
        "activity": activity,
    }


async def measured(
    opts: Options,
    ledger: Ledger,
    ledger_url: str,
    postmaster: int,
    kind: str,
    holds: list[uuid.UUID] | None = None,
) -> tuple[WorkResult, dict[str, float], dict[str, Any], list[dict[str, Any]]]:
    """One measured run of ``kind`` (release or cycle) by ``opts.clients`` clients spread
    over ``opts.jobs`` client processes, all starting at the same moment; this process
    samples the server and runs the ledger's roll-up meanwhile."""
    specs = [
        JobSpec(
            kind=kind,
            url=ledger_url,
            clients=len(range(i, opts.clients, opts.jobs)),
            duration=opts.duration,
            start_at=time.time() + JOB_START_S,
            holds=[str(h) for h in (holds or [])[i :: opts.jobs]],
            payers=[str(u) for u in ledger.payers],
            pros=[str(u) for u in ledger.pros],
        )
        for i in range(opts.jobs)
    ]
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(len(specs), mp_context=multiprocessing.get_context("spawn")) as pool:
        outputs = [loop.run_in_executor(pool, run_job, spec) for spec in specs]
        await asyncio.sleep(max(0.0, specs[0].start_at - time.time()))
        pg_before, own_before, began = (
            postgres_cpu_seconds(postmaster),
            time.process_time(),
            time.perf_counter(),
        )

        async def work() -> list[dict[str, Any]]:
            stop = asyncio.Event()
            rolling = asyncio.create_task(ledger.rolling_up(stop))
            try:
                return list(await asyncio.gather(*outputs))
            finally:
                stop.set()
                await rolling

        done, activity = await sampled(ledger_url, LEDGER_DB, work)
        wall = time.perf_counter() - began
    cpu = {
        "postgres": round(100 * (postgres_cpu_seconds(postmaster) - pg_before) / wall, 1),
        "client": round(
            100 * (time.process_time() - own_before + sum(d["cpu_s"] for d in done)) / wall, 1
        ),
    }
    for d in done:
        if d["warm_errors"]:
            raise BenchError(f"a client process's warm-up failed: {d['warm_errors']}")
        ledger.webhook_outcomes.update(d["webhooks"])
    return WorkResult.merged([WorkResult(**d["result"]) for d in done]), cpu, activity, done


async def prepare_holds(
    ledger: Ledger, clients: int, count: int, *, batch: int = PREPARE_BATCH
) -> tuple[list[uuid.UUID], float]:
    """``count`` funded holds, ``batch`` per transaction, by ``clients`` workers."""
    holds: list[uuid.UUID] = []

    async def step(n: int) -> None:
        holds.extend(await ledger.funded_holds(min(batch, count - n * batch)))

    result = await drive(clients, None, step, total=-(-count // batch))
    if result.errors:
        raise BenchError(f"preparing funded holds failed: {result.first_errors}")
    return holds, len(holds) / result.elapsed_s if result.elapsed_s else 0.0


# --------------------------------------------------------------------------- client processes


@dataclass(frozen=True)
class JobSpec:
    """One client process's share of a measured run (ids as text: they cross processes)."""

    kind: str  # "release" or "cycle"
    url: str
    clients: int
    duration: float
    start_at: float  # time.time() at which every process starts measuring
    holds: list[str]
    payers: list[str]
    pros: list[str]


def run_job(spec: JobSpec) -> dict[str, Any]:
    """A client process: connects, warms up on its first holds (or cycles), waits for
    ``start_at``, then runs its clients for ``duration`` seconds."""
    _quiet_app()
    import mesteri.models  # noqa: F401  - every table on the metadata

    with asyncio.Runner(loop_factory=app_loop_factory()) as runner:
        return runner.run(_job(spec))


def app_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop the api process runs on (uvicorn takes uvloop when it is installed):
    the app's code is measured on the loop it runs on."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _job(spec: JobSpec) -> dict[str, Any]:
    ledger = Ledger(spec.url, spec.clients)
    ledger.payers = [uuid.UUID(u) for u in spec.payers]
    ledger.pros = [uuid.UUID(u) for u in spec.pros]
    holds = [uuid.UUID(h) for h in spec.holds]
    stages: dict[str, list[float]] = {k: [] for k in _STAGES}
    try:
        # Connections and prepared statements before the clock starts (not measured).
        if spec.kind == "release":
            warm, holds = holds[: spec.clients], holds[spec.clients :]
            warmed = await drive(spec.clients, None, ledger.releasing(warm), total=len(warm))
            step, total = ledger.releasing(holds), len(holds)
        else:
            unmeasured: dict[str, list[float]] = {k: [] for k in _STAGES}
            warmed = await drive(spec.clients, None, ledger.cycling(unmeasured), total=spec.clients)
            step, total = ledger.cycling(stages), None
        late_s = time.time() - spec.start_at
        await asyncio.sleep(max(0.0, -late_s))
        cpu_before = time.process_time()
        result = await drive(spec.clients, spec.duration, step, total=total)
        cpu_s = time.process_time() - cpu_before
    finally:
        await ledger.close()
    return {
        "result": dataclasses.asdict(result),
        "cpu_s": cpu_s,
        "late_s": round(max(0.0, late_s), 3),
        "warm_count": warmed.count,
        "warm_errors": warmed.first_errors,
        "stages": stages,
        "webhooks": dict(ledger.webhook_outcomes),
    }


# --------------------------------------------------------------------------- invariants

INVARIANTS: dict[str, str] = {
    "per currency, all account balances sum to 0": """
        SELECT currency || ': ' || sum(balance) FROM ledger_accounts
        GROUP BY currency HAVING sum(balance) <> 0""",
    "no account that may not go negative is negative": """
        SELECT kind || ' ' || id || ': ' || balance FROM ledger_accounts
        WHERE NOT may_go_negative AND balance < 0""",
    "every hold's escrow = captured - released - refunded": """
        SELECT h.id || ': escrow ' || coalesce(a.balance, 0) || ', expected '
               || (h.captured - h.released - h.refunded)
        FROM holds h LEFT JOIN ledger_accounts a
          ON a.kind = 'escrow' AND a.owner_id = h.id AND a.currency = h.currency
        WHERE coalesce(a.balance, 0) <> h.captured - h.released - h.refunded""",
    "every entry balances per currency (and has lines)": """
        SELECT entry_id || ' ' || currency || ': ' || sum(amount) FROM ledger_lines
        GROUP BY entry_id, currency HAVING sum(amount) <> 0
        UNION ALL
        SELECT e.id || ': no lines' FROM ledger_entries e
        WHERE NOT EXISTS (SELECT 1 FROM ledger_lines l WHERE l.entry_id = e.id)""",
    "no hold released twice (release entries per hold <= 1)": """
        SELECT hold_id || ': ' || count(*) || ' release entries' FROM ledger_entries
        WHERE kind = 'release' GROUP BY hold_id HAVING count(*) > 1""",
    "released holds and release entries agree": """
        SELECT h.id || ': state ' || h.state || ', released ' || h.released
               || ', release entries ' || count(e.id)
        FROM holds h LEFT JOIN ledger_entries e ON e.hold_id = h.id AND e.kind = 'release'
        GROUP BY h.id HAVING (h.state = 'released') <> (count(e.id) = 1)
                          OR (h.released > 0) <> (count(e.id) = 1)""",
    "no line is left waiting for the roll-up": """
        SELECT id || ' of entry ' || entry_id FROM ledger_lines_pending""",
    "every account's balance = the sum of its lines": """
        SELECT a.kind || ' ' || a.id || ': balance ' || a.balance || ', lines '
               || coalesce(s.total, 0)
        FROM ledger_accounts a LEFT JOIN (
            SELECT account_id, sum(amount) AS total FROM ledger_lines GROUP BY account_id
        ) s ON s.account_id = a.id
        WHERE a.balance <> coalesce(s.total, 0)""",
}


async def check_invariants(ledger: Ledger) -> dict[str, Any]:
    from sqlalchemy import text

    checks = []
    async with ledger.read() as session:
        for name, sql in INVARIANTS.items():
            rows = [str(r) for r in (await session.scalars(text(sql))).all()]
            checks.append({"check": name, "violations": len(rows), "examples": rows[:5]})
        counts = (
            await session.execute(
                text(
                    "SELECT (SELECT count(*) FROM holds), (SELECT count(*) FROM ledger_entries), "
                    "(SELECT count(*) FROM ledger_lines), (SELECT count(*) FROM ledger_accounts), "
                    "(SELECT count(*) FROM ledger_entries WHERE kind = 'release'), "
                    "(SELECT count(*) FROM outbox WHERE dispatched_at IS NULL)"
                )
            )
        ).one()
    holds, entries, lines, accounts, releases, outbox = (int(x) for x in counts)
    return {
        "violations": sum(c["violations"] for c in checks),
        "checks": checks,
        "holds": holds,
        "entries": entries,
        "lines": lines,
        "accounts": accounts,
        "release_entries": releases,
        "outbox_rows_pending": outbox,
    }


# --------------------------------------------------------------------------- the run


async def measure(opts: Options, sock: Socket, pgbench: str | None) -> dict[str, Any]:
    postmaster = harness.postmaster_pid(opts.data_dir)
    ledger_url = sock.url(LEDGER_DB)
    if pgbench is not None:
        say(f"Initialising pgbench (-i -s {opts.pgbench_scale}) in database {PGBENCH_DB} …")
        await pgbench_init(pgbench, sock, opts.pgbench_scale)

    ledger = Ledger(ledger_url, opts.clients)
    try:
        await ledger.create_users(opts.clients, opts.pros)
        released_by_bench = 0

        # Warm-up (not measured): fills caches and sizes the rounds' hold stock.
        warm = opts.clients * opts.warmup_per_client
        say(f"Warm-up: preparing and releasing {warm} funded holds …")
        holds, prep_rate = await prepare_holds(ledger, opts.clients, warm)
        warm_result = await drive(opts.clients, None, ledger.releasing(holds), total=len(holds))
        if warm_result.errors:
            raise BenchError(f"warm-up releases failed: {warm_result.first_errors}")
        released_by_bench += warm_result.count
        estimate = warm_result.count / warm_result.elapsed_s
        say(f"  prepared {prep_rate:.0f} holds/s, released {estimate:.0f}/s (unmeasured)")
        if not opts.skip_cycles:
            stages_warm: dict[str, list[float]] = {k: [] for k in _STAGES}
            cycles = await drive(
                opts.clients, None, ledger.cycling(stages_warm), total=2 * opts.clients
            )
            if cycles.errors:
                raise BenchError(f"warm-up cycles failed: {cycles.first_errors}")
            released_by_bench += cycles.count

        runs: dict[str, list[dict[str, Any]]] = {"pgbench": [], "release": [], "cycle": []}
        stage_ms: dict[str, list[float]] = {k: [] for k in _STAGES}
        preparation = []
        for round_no in range(1, opts.rounds + 1):
            tag = f"  round {round_no}/{opts.rounds}"
            if pgbench is not None:
                await vacuum(sock.url(PGBENCH_DB))
                pg = await pgbench_run(opts, pgbench, sock, postmaster)
                runs["pgbench"].append(pg)
                say(f"{tag} pgbench tpcb-like {_line(pg)}")

            # The warm-up's rate is a rough guess (cold caches): a larger margin first.
            margin = 2.0 if round_no == 1 else 1.5
            stock = min(opts.max_holds, int(estimate * opts.duration * margin) + 4 * opts.clients)
            holds, prep_rate = await prepare_holds(ledger, opts.clients, stock)
            await ledger.roll_up()  # the captures' platform lines: not the releases' work
            await vacuum(ledger_url)
            preparation.append({"holds": stock, "per_s": round(prep_rate, 1)})
            result, cpu, activity, done = await measured(
                opts, ledger, ledger_url, postmaster, "release", holds
            )
            released_by_bench += result.count + sum(d["warm_count"] for d in done)
            estimate = max(result.count / result.elapsed_s, 1.0)
            rel = _figures(result, cpu, activity, done)
            runs["release"].append(rel)
            say(f"{tag} release postings {_line(rel)}  ({stock} holds prepared)")

            if not opts.skip_cycles:
                await vacuum(ledger_url)
                result, cpu, activity, done = await measured(
                    opts, ledger, ledger_url, postmaster, "cycle"
                )
                released_by_bench += result.count + sum(d["warm_count"] for d in done)
                stages = {k: [t for d in done for t in d["stages"][k]] for k in _STAGES}
                cyc = _figures(result, cpu, activity, done)
                cyc["stage_p50_ms"] = {
                    k: round(1000 * statistics.median(v), 2) if v else None
                    for k, v in stages.items()
                }
                for k, v in stages.items():
                    stage_ms[k].extend(v)
                runs["cycle"].append(cyc)
                say(f"{tag} full cycles      {_line(cyc)}")

        say("Rolling up the platform accounts' last lines, then checking the invariants …")
        await ledger.roll_up()
        invariants = await check_invariants(ledger)
        invariants["released_by_bench"] = released_by_bench
        invariants["webhook_outcomes"] = dict(ledger.webhook_outcomes)
        invariants["lines_rolled_up_during_runs"] = ledger.rolled_up
        return {
            "runs": runs,
            "preparation": preparation,
            "stage_p50_ms": {
                k: round(1000 * statistics.median(v), 2) if v else None for k, v in stage_ms.items()
            },
            "invariants": invariants,
        }
    finally:
        await ledger.close()


_STAGES = ("fund", "pay", "webhook", "release")


def _line(fig: dict[str, Any]) -> str:
    p50 = f"p50 {fig['p50_ms']:6.2f} ms" if fig["p50_ms"] is not None else ""
    mean = f"mean {fig['mean_ms']:6.2f} ms" if fig["mean_ms"] is not None else ""
    cpu = fig["cpu_pct"]
    return (
        f"{fig['per_s']:8.1f}/s  {mean}  {p50}  errors {fig['errors']}  "
        f"lock-waiting {fig['activity']['avg_lock_waiting_backends']:.1f} of "
        f"{fig['activity']['avg_active_backends']:.1f} active  "
        f"CPU postgres {cpu['postgres']:.0f}% client {cpu['client']:.0f}%"
        + ("  (ran out of prepared holds before the end)" if fig.get("ran_out_of_holds") else "")
    )


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not runs:
        return None

    def med(key: str) -> float | None:
        values = [r[key] for r in runs if r[key] is not None]
        return round(statistics.median(values), 2) if values else None

    per_s = med("per_s")
    cpu = {name: statistics.median(r["cpu_pct"][name] for r in runs) for name in runs[0]["cpu_pct"]}
    return {
        "rounds": len(runs),
        "per_s": per_s,
        "mean_ms": med("mean_ms"),
        "p50_ms": med("p50_ms"),
        "p99_ms": med("p99_ms"),
        "errors": sum(r["errors"] for r in runs),
        "cpu_pct": cpu,
        # CPU time per transaction / release / cycle: where the time goes.
        "cpu_ms_per_op": {
            name: round(10 * pct / per_s, 2) if per_s else None for name, pct in cpu.items()
        },
        "avg_lock_waiting_backends": statistics.median(
            r["activity"]["avg_lock_waiting_backends"] for r in runs
        ),
        "avg_active_backends": statistics.median(
            r["activity"]["avg_active_backends"] for r in runs
        ),
    }


def build_report(
    opts: Options,
    started: dict[str, Any],
    pgbench: tuple[str | None, str],
    version: str,
    measured_: dict[str, Any],
) -> dict[str, Any]:
    runs = measured_["runs"]
    summaries = {key: summarise(value) for key, value in runs.items()}
    pg, rel = summaries["pgbench"], summaries["release"]
    ratio = rel["per_s"] / pg["per_s"] if pg and rel and pg["per_s"] else None
    invariants = measured_["invariants"]
    problems = []
    for key in ("release", "cycle"):
        errors = sum(r["errors"] for r in runs[key])
        if errors:
            firsts = [e for r in runs[key] for e in r["first_errors"]][:3]
            problems.append(f"{key}: {errors} failed operations, e.g. {firsts}")
    if invariants["violations"]:
        problems.append(f"{invariants['violations']} invariant violations")
    if invariants["release_entries"] != invariants["released_by_bench"]:
        problems.append(
            f"the ledger holds {invariants['release_entries']} release entries, "
            f"the benchmark completed {invariants['released_by_bench']} releases"
        )
    return {
        "when": started["when"],
        "revision": harness.git_revision(),
        "machine": {**started["machine"], "loadavg_1m_at_end": round(os.getloadavg()[0], 2)},
        "postgres": {"version": version, "data_dir": str(harness.pgdata_dir(opts.data_dir))},
        "pgbench": {
            "binary": pgbench[0],
            "found_via": pgbench[1],
            "script": "tpcb-like",
            "scale": opts.pgbench_scale,
            "jobs": opts.pgbench_jobs,
            "protocol": opts.pgbench_protocol,
        },
        "settings": {
            "clients": opts.clients,
            "duration_s": opts.duration,
            "rounds": opts.rounds,
            "pros": opts.pros,
            "hold_amount": HOLD_AMOUNT,
            "warmup_per_client": opts.warmup_per_client,
        },
        "summaries": summaries,
        "ratio_release_vs_pgbench": round(ratio, 3) if ratio is not None else None,
        "ratio_goal": round(RATIO_GOAL, 3),
        "ratio_meets_goal": ratio is not None and ratio >= RATIO_GOAL,
        "cycle_stage_p50_ms": measured_["stage_p50_ms"],
        "preparation": measured_["preparation"],
        "runs": runs,
        "invariants": invariants,
        "problems": problems,
    }


def print_report(report: dict[str, Any]) -> None:
    machine, cfg, pgb = report["machine"], report["settings"], report["pgbench"]
    s = report["summaries"]
    lines = [
        "",
        f"Mesteri ledger benchmark  {report['when']}  revision {report['revision'] or '?'}",
        f"Machine: {machine['cpus']} CPUs, {machine['memory_gb']} GB, load average "
        f"{machine['loadavg_1m']} at start / {machine['loadavg_1m_at_end']} at end "
        "(other work on the machine makes figures noisy)",
        f"PostgreSQL {report['postgres']['version']} (embedded, {report['postgres']['data_dir']});"
        f" {cfg['clients']} concurrent clients; {cfg['duration_s']:g} s per run; "
        f"{cfg['rounds']} rounds, medians",
        "pgbench: "
        + (
            f"{pgb['binary']} ({pgb['found_via']}), tpcb-like, scale {pgb['scale']}, "
            f"-j {pgb['jobs']}, -M {pgb['protocol']}"
            if pgb["binary"]
            else f"NOT FOUND ({pgb['found_via']}): the ratio is skipped"
        ),
        "",
        f"  {'measurement':<34} {'per s':>9} {'mean ms':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'errors':>6} {'lock-wait':>9}   CPU (100% = one CPU)",
    ]
    labels = {
        "pgbench": "pgbench tpcb-like transactions",
        "release": "ledger release postings",
        "cycle": "fund → webhook → release cycles",
    }
    for key, label in labels.items():
        summary = s.get(key)
        if summary is None:
            continue
        lines.append(
            f"  {label:<34} {summary['per_s']:>9.1f} {_num(summary['mean_ms']):>8} "
            f"{_num(summary['p50_ms']):>7} {_num(summary['p99_ms']):>7} {summary['errors']:>6} "
            f"{summary['avg_lock_waiting_backends']:>5.1f}/{summary['avg_active_backends']:<3.1f}"
            f"   postgres {summary['cpu_pct']['postgres']:3.0f}% "
            f"({_num(summary['cpu_ms_per_op']['postgres'])} ms/op), "
            f"client {summary['cpu_pct']['client']:3.0f}% "
            f"({_num(summary['cpu_ms_per_op']['client'])} ms/op)"
        )
    lines.append("  (lock-wait: backends waiting for a lock / backends active, sampled averages)")
    stages = report["cycle_stage_p50_ms"]
    if s.get("cycle"):
        lines.append(
            "  cycle stages, p50 ms: "
            + ", ".join(f"{k} {_num(v)}" for k, v in stages.items())
            + " (the webhook: sign, verify, apply the capture)"
        )
    ratio = report["ratio_release_vs_pgbench"]
    lines.append("")
    if ratio is None:
        lines.append("  release postings / pgbench tps: skipped (no pgbench)")
    else:
        lines.append(
            f"  release postings / pgbench tps: {ratio:6.1%}   goal >= {report['ratio_goal']:.1%}"
            f"   {'PASS' if report['ratio_meets_goal'] else 'BELOW'}"
        )
    inv = report["invariants"]
    lines.append(
        f"  invariants over {inv['holds']} holds, {inv['entries']} entries, "
        f"{inv['lines']} lines, {inv['accounts']} accounts "
        f"({inv['release_entries']} release entries):"
    )
    for check in inv["checks"]:
        mark = "ok" if not check["violations"] else f"{check['violations']} VIOLATIONS"
        lines.append(f"    {check['check']:<56} {mark}")
        lines.extend(f"      {example}" for example in check["examples"])
    lines.append(f"  invariant violations: {inv['violations']}")
    for problem in report["problems"]:
        lines.append(f"  PROBLEM: {problem}")
    lines.append("")
    say("\n".join(lines))


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


# --------------------------------------------------------------------------- main


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _quiet_app() -> None:
    """The app's logs at WARNING, to stderr; settings as a developer's (sandbox provider)."""
    os.environ.setdefault("MESTERI_LOG_LEVEL", "WARNING")
    os.environ["MESTERI_PAYMENTS_PROVIDER"] = "sandbox"
    from mesteri.config import get_settings
    from mesteri.kit.logging import configure_logging

    get_settings.cache_clear()
    configure_logging("WARNING", json=False)


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    started = {
        "when": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
        "machine": harness.machine_info(),
    }
    _quiet_app()
    import mesteri.models  # noqa: F401  - every table on the metadata (foreign keys)
    from mesteri.kit.embedded import EmbeddedPostgres
    from mesteri.kit.migrate import upgrade

    pgbench = find_pgbench(opts.pgbench)
    if pgbench[0] is None:
        say(f"pgbench was not found ({pgbench[1]}): the ledger is measured, the ratio skipped.")
    server = EmbeddedPostgres(opts.data_dir)
    try:
        # The data directory `bench.run` uses, seeded the same way, so both keep working.
        if run.prepare_data_dir(opts.data_dir, harness.bench_env(opts.data_dir)):
            say("  created.")
        say(f"Starting the embedded PostgreSQL in {server.pgdata} …")
        server_url = server.start()
        version = server_version(server_url)
        sock = server_socket(opts.data_dir)
        say(f"Creating databases {LEDGER_DB} (migrated) and {PGBENCH_DB} …")
        recreate_database(server_url, LEDGER_DB)
        recreate_database(server_url, PGBENCH_DB)
        upgrade(sock.url(LEDGER_DB))
        with asyncio.Runner(loop_factory=app_loop_factory()) as runner:
            measured_ = runner.run(measure(opts, sock, pgbench[0]))
    except KeyboardInterrupt:
        say("Interrupted.")
        return 130
    except BenchError as exc:
        print(f"The benchmark broke: {exc}", file=sys.stderr)
        return 1
    finally:
        server.stop()
    report = build_report(opts, started, pgbench, version, measured_)
    print_report(report)
    opts.output.parent.mkdir(parents=True, exist_ok=True)
    opts.output.write_text(json.dumps(report, indent=2, default=str) + "\n")
    say(f"Results: {opts.output}")
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
