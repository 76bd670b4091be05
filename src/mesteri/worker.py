"""The background worker: the outbox relay plus procrastinate's job runner.

``mesteri worker`` runs it as its own process (scale it horizontally: relay rows are
claimed with SKIP LOCKED and jobs are locked by procrastinate); ``mesteri run`` runs it
inside the api process for development.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import procrastinate
from sqlalchemy.ext.asyncio import AsyncEngine

import mesteri.tasks  # noqa: F401  - registers every domain's jobs
from mesteri.config import Settings
from mesteri.kit import clock, jobs, notify, realtime
from mesteri.kit.db import create_engine, libpq_url, session_factories, unit_of_work
from mesteri.notifications import senders
from mesteri.notifications import service as notifications
from mesteri.payments import providers

log = logging.getLogger(__name__)


async def run_background(
    engine: AsyncEngine, job_app: procrastinate.App, stop: asyncio.Event, *, concurrency: int = 4
) -> None:
    relay = asyncio.create_task(jobs.run_relay(engine, stop), name="outbox-relay")
    runner = asyncio.create_task(
        job_app.run_worker_async(
            install_signal_handlers=False, concurrency=concurrency, delete_jobs="successful"
        ),
        name="job-runner",
    )
    log.info("worker started", extra={"concurrency": concurrency})
    try:
        await stop.wait()
    finally:
        runner.cancel()  # procrastinate finishes running jobs, then returns
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        with contextlib.suppress(asyncio.CancelledError):
            await relay
        log.info("worker stopped")


async def serve(settings: Settings, url: str) -> None:
    """Standalone worker process until SIGINT / SIGTERM."""
    engine = create_engine(url, pool_size=4, max_overflow=2)
    _read, write = session_factories(engine)
    jobs.bind_sessions(write)
    # Events of jobs (new messages, notifications) reach the api processes' WebSockets.
    realtime.configure(url, settings.redis_url)
    notify.notifier.configure(url)  # those events, and wake-ups of the relay
    async with unit_of_work(write) as session:
        vapid = await notifications.do_load_vapid_keys(session)
    senders.configure(settings.smtp_url, settings.mail_from, settings=settings, vapid=vapid)
    providers.configure(settings, write)
    job_app = jobs.configure(libpq_url(url))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with job_app.open_async():
        async with engine.connect() as conn:
            await clock.load_offset(conn)
        await run_background(engine, job_app, stop)
    await notify.notifier.close()
    await engine.dispose()
