"""Background jobs and timers: a transactional outbox in front of procrastinate.

``defer(session, task, run_at=..., **kwargs)`` writes an ``outbox`` row in the caller's
transaction, so a job deferred by a request that rolls back never exists. A relay
(running in the worker) hands committed, due rows to procrastinate by calling its
``procrastinate_defer_jobs_v1`` SQL function *in the same transaction* that marks the
row dispatched: the hand-off happens exactly once. Timers are outbox rows whose
``run_at`` lies in the future of the application clock, so they survive restarts and
obey the test clock. A transaction that wrote a job due now wakes the relay right after
it commits (``kit.notify``: a NOTIFY of its own, not inside the transaction, at most one
per ``WAKE_GAP_SECONDS`` from each process however many commits wrote jobs), so immediate
jobs start within a few tens of milliseconds; a one-second tick catches timers that came
due, and any wake-up that was lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from typing import Any

import procrastinate
from procrastinate.testing import InMemoryConnector
from sqlalchemy import BigInteger, Index, String, Uuid, event, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, Session, mapped_column

from mesteri.kit import clock, notify
from mesteri.kit.db import Base, WriteSession, unit_of_work
from mesteri.kit.ids import new_id

log = logging.getLogger(__name__)

OUTBOX_CHANNEL = "mesteri_outbox"
# One relay pass takes every due row: a wake-up per commit would only cost the database
# a NOTIFY transaction each (one per escrow release, say).
WAKE_GAP_SECONDS = 0.02

# Tasks are declared on this app at import time; ``configure`` binds it to the database.
registry = procrastinate.App(connector=InMemoryConnector())


class OutboxEntry(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "run_at", postgresql_where=text("dispatched_at IS NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    task_name: Mapped[str] = mapped_column(String(120))
    queue: Mapped[str] = mapped_column(String(40), default="default")
    args: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    run_at: Mapped[datetime]
    created_at: Mapped[datetime]
    dispatched_at: Mapped[datetime | None]
    job_id: Mapped[int | None] = mapped_column(BigInteger)


def task(
    name: str, *, retry: int | procrastinate.RetryStrategy = 5, queue: str = "default"
) -> Callable[..., Any]:
    """Declare a job. Handlers must be idempotent: delivery is at least once. ``retry``:
    how many retries (at once), or a strategy with waits between them."""
    return registry.task(name=name, retry=retry, queue=queue, pass_context=False)


async def defer(
    session: AsyncSession,
    task_obj: Any,
    *,
    run_at: datetime | None = None,
    **kwargs: Any,
) -> OutboxEntry:
    """Schedule ``task_obj`` to run after this transaction commits (at ``run_at`` if given)."""
    entry = OutboxEntry(**outbox_row(task_obj, run_at=run_at, **kwargs))
    # Written with the transaction's next flush (batched with the rest), at the latest at
    # commit: the job exists exactly if the transaction commits.
    session.add(entry)
    return entry


def wake_relay_after_commit(session: AsyncSession | Session) -> None:
    """This transaction writes a job that is due now in a statement of its own (rows
    added to the session are noticed at flush): wake the relay once it commits."""
    session.info[_WAKE] = True


def outbox_row(task_obj: Any, *, run_at: datetime | None = None, **kwargs: Any) -> dict[str, Any]:
    """The ``outbox`` row that defers ``task_obj``, for callers that write their rows in
    one statement of their own (``defer`` adds it to the session instead)."""
    now = clock.now()
    return {
        "id": new_id(),
        "task_name": task_obj.name,
        "queue": task_obj.queue,
        "args": kwargs,
        "run_at": run_at or now,
        "created_at": now,
    }


_RELAY_SQL = text(
    """
    WITH due AS (
        SELECT id, task_name, queue, args FROM outbox
        WHERE dispatched_at IS NULL AND run_at <= :now
        ORDER BY run_at, id
        LIMIT :limit
        FOR UPDATE SKIP LOCKED
    ), handed AS (
        SELECT due.id, (procrastinate_defer_jobs_v1(ARRAY[ROW(
            due.queue, due.task_name, 0, NULL, NULL, due.args, NULL
        )::procrastinate_job_to_defer_v1]))[1] AS job_id
        FROM due
    )
    UPDATE outbox SET dispatched_at = :now, job_id = handed.job_id
    FROM handed WHERE outbox.id = handed.id
    RETURNING outbox.id
    """
)


async def relay_due(engine: AsyncEngine, *, limit: int = 500) -> int:
    """Hand every committed, due outbox row to the job queue. Returns how many moved."""
    moved = 0
    while True:
        async with engine.begin() as conn:
            rows = (await conn.execute(_RELAY_SQL, {"now": clock.now(), "limit": limit})).all()
        moved += len(rows)
        if len(rows) < limit:
            return moved


def configure(conninfo: str) -> procrastinate.App:
    """Bind the task registry to the real database (a psycopg pool); one database per process."""
    connector = procrastinate.PsycopgConnector(conninfo=conninfo)
    registry.connector = connector
    registry.job_manager.connector = connector
    return registry


async def run_relay(engine: AsyncEngine, stop: asyncio.Event, *, tick: float = 1.0) -> None:
    """Relay loop: wake on NOTIFY (immediate jobs) or every ``tick`` seconds (timers)."""
    wake = asyncio.Event()
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection

        def on_notify(*_: Any) -> None:
            wake.set()

        await driver.add_listener(OUTBOX_CHANNEL, on_notify)
        try:
            while not stop.is_set():
                try:
                    await clock.load_offset(conn)
                    await conn.rollback()
                    await relay_due(engine)
                except Exception:  # the relay must outlive a passing database error
                    log.exception("outbox relay failed; retrying")
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_first(wake.wait(), stop.wait()), timeout=tick)
        finally:
            with contextlib.suppress(Exception):
                await driver.remove_listener(OUTBOX_CHANNEL, on_notify)


async def _first(*aws: Awaitable[Any]) -> None:
    tasks = [asyncio.ensure_future(a) for a in aws]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()


async def drain(engine: AsyncEngine, app: procrastinate.App) -> None:
    """Run everything that is due now, then return (the test clock and tests use this)."""
    for _ in range(10):  # jobs may defer further jobs; follow a few generations
        await relay_due(engine)
        await app.run_worker_async(
            wait=False, install_signal_handlers=False, listen_notify=False, concurrency=1
        )
        async with engine.connect() as conn:
            pending = (
                await conn.execute(
                    text(
                        "SELECT (SELECT count(*) FROM outbox "
                        "        WHERE dispatched_at IS NULL AND run_at <= :now) "
                        "     + (SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo')"
                    ),
                    {"now": clock.now()},
                )
            ).scalar_one()
        if not pending:
            return


# ---------------------------------------------------------------- waking the relay

_WAKE = "mesteri.wake_relay"  # session.info: a job due now was written
_relay_wake_up = notify.WakeUp(notify.notifier, OUTBOX_CHANNEL, gap=WAKE_GAP_SECONDS)


@event.listens_for(Session, "before_flush")
def _note_due_jobs(session: Session, _context: Any, _instances: Any) -> None:
    if _WAKE not in session.info:
        now = clock.now()
        if any(isinstance(o, OutboxEntry) and o.run_at <= now for o in session.new):
            session.info[_WAKE] = True


@event.listens_for(Session, "after_commit")
def _wake_relay(session: Session) -> None:
    # After the commit, not from a trigger inside it (``kit.notify`` says why); if the
    # wake-up is lost, the relay's tick still finds the job.
    if session.info.pop(_WAKE, False):
        _relay_wake_up.post()


@event.listens_for(Session, "after_rollback")
def _forget_wake(session: Session) -> None:
    session.info.pop(_WAKE, None)


# The job's own transaction, like a request's: committed on success, rolled back on error.
_session_factory: async_sessionmaker[WriteSession] | None = None


def bind_sessions(factory: async_sessionmaker[WriteSession]) -> None:
    global _session_factory
    _session_factory = factory


@contextlib.asynccontextmanager
async def job_session() -> AsyncIterator[WriteSession]:
    assert _session_factory is not None, "jobs.bind_sessions() was not called"
    async with unit_of_work(_session_factory) as session:
        yield session
