"""The application factory: routers, middleware and the lifespan of shared resources."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

import mesteri.tasks  # noqa: F401  - registers every domain's jobs
from mesteri import __version__
from mesteri.accounts import api as accounts_api
from mesteri.accounts import pages as accounts_pages
from mesteri.backoffice import api as backoffice_api
from mesteri.backoffice import pages as backoffice_pages
from mesteri.catalog import api as catalog_api
from mesteri.config import Settings, get_settings
from mesteri.contracts import api as contracts_api
from mesteri.contracts import pages as contracts_pages
from mesteri.devtools import api as dev_api
from mesteri.disputes import api as disputes_api
from mesteri.disputes import pages as disputes_pages
from mesteri.jobs import api as jobs_api
from mesteri.jobs import pages as jobs_pages
from mesteri.kit import clock, jobs, notify, realtime
from mesteri.kit.db import (
    DriverPool,
    create_engine,
    libpq_url,
    session_factories,
    unit_of_work,
)
from mesteri.kit.i18n import LanguageMiddleware
from mesteri.kit.migrate import current_revision, head_revision
from mesteri.kit.observability import RequestContextMiddleware, metrics
from mesteri.kit.ratelimit import RateLimiter
from mesteri.kit.web import csrf_protect, install_error_handlers, reject_nul_in_query
from mesteri.media import api as media_api
from mesteri.messaging import api as messaging_api
from mesteri.messaging import pages as messaging_pages
from mesteri.messaging import service as messaging
from mesteri.messaging import ws as messaging_ws
from mesteri.milestones import api as milestones_api
from mesteri.milestones import pages as milestones_pages
from mesteri.notifications import api as notifications_api
from mesteri.notifications import pages as notifications_pages
from mesteri.notifications import senders
from mesteri.notifications import service as notifications
from mesteri.payments import api as payments_api
from mesteri.payments import pages as payments_pages
from mesteri.payments import providers
from mesteri.proposals import api as proposals_api
from mesteri.proposals import pages as proposals_pages
from mesteri.pros import api as pros_api
from mesteri.pros import pages as pros_pages
from mesteri.reviews import api as reviews_api
from mesteri.reviews import pages as reviews_pages
from mesteri.web import pages as site_pages
from mesteri.worker import run_background

STATIC_DIR = Path(__file__).resolve().parent / "static"
# Middle-generation collections between two full ones (CPython defaults to 10).
FULL_COLLECTION_EVERY = 100


def create_app(
    settings: Settings | None = None,
    *,
    database_url: str | None = None,
    run_worker: bool = False,
) -> FastAPI:
    """``run_worker`` runs the background worker inside this process (``mesteri run``)."""
    settings = settings or get_settings()
    url = database_url or settings.database_url
    if not url:
        raise RuntimeError("create_app needs a database URL (the CLI starts the embedded one)")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(
            url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
        )
        app.state.engine = engine
        app.state.read_sessions, app.state.write_sessions = session_factories(engine)
        fast_statements = DriverPool(url, settings.db_fast_pool_size)
        await fast_statements.open()
        app.state.fast_statements = fast_statements
        app.state.limiter = RateLimiter(settings.redis_url)
        app.state.head_revision = head_revision()
        async with unit_of_work(app.state.write_sessions) as session:
            vapid = await notifications.do_load_vapid_keys(session)
        senders.configure(settings.smtp_url, settings.mail_from, settings=settings, vapid=vapid)
        providers.configure(settings, app.state.write_sessions)
        notify.notifier.configure(url)  # live events and the relay's wake-ups, after commits
        hub = realtime.Hub(
            engine,
            realtime.configure(url, settings.redis_url),
            queue_size=settings.realtime_queue_size,
            audience=messaging.partners,
        )
        await hub.start()
        app.state.hub = hub
        # Everything made so far (modules, catalogs, templates) lives as long as the
        # process: out of the collector's way, a full collection stops being a pause of
        # a second for every open socket and request (bench/README.md, real time).
        gc.freeze()
        # What open sockets keep still makes a full collection a pause of ~120 ms with
        # 500 sockets; taking it ten times less often (after 100 middle-generation
        # collections, not 10) keeps it out of nearly every message's way, at the cost
        # of cyclic garbage waiting a little longer to be freed.
        gen0, gen1, _ = gc.get_threshold()
        gc.set_threshold(gen0, gen1, FULL_COLLECTION_EVERY)
        jobs.bind_sessions(app.state.write_sessions)
        job_app = jobs.configure(libpq_url(url))
        await job_app.open_async()
        app.state.jobs = job_app
        async with engine.connect() as conn:
            await clock.load_offset(conn)
        stop = asyncio.Event()
        background = (
            asyncio.create_task(run_background(engine, job_app, stop)) if run_worker else None
        )
        try:
            yield
        finally:
            stop.set()
            await hub.stop()
            if background is not None:
                await background
            await job_app.close_async()
            await notify.notifier.close()
            await fast_statements.close()
            await engine.dispose()

    app = FastAPI(
        title="Mesteri API",
        version=__version__,
        lifespan=lifespan,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        telemetry={"tracing": settings.otel, "metrics": settings.otel, "logs": settings.otel},
        dependencies=[Depends(reject_nul_in_query)],
    )
    app.state.settings = settings
    install_error_handlers(app)

    api_routers = [
        accounts_api.auth,
        accounts_api.me,
        backoffice_api.router,
        payments_api.router,
        payments_api.admin,
        catalog_api.router,
        media_api.router,
        pros_api.router,
        pros_api.admin,
        jobs_api.router,
        proposals_api.router,
        contracts_api.router,
        milestones_api.router,
        reviews_api.router,
        reviews_api.admin,
        disputes_api.router,
        disputes_api.admin,
        messaging_api.router,
        messaging_api.admin,
        notifications_api.router,
    ]
    if settings.dev_tools_enabled:
        api_routers.append(dev_api.router)
    for router in api_routers:  # one level of inclusion keeps route matching short
        app.include_router(router, prefix="/api/v1")

    pages = APIRouter(
        dependencies=[Depends(csrf_protect), accounts_pages.WebContext], include_in_schema=False
    )
    pages.include_router(site_pages.router)
    pages.include_router(accounts_pages.router)
    pages.include_router(backoffice_pages.router)
    pages.include_router(payments_pages.router)
    pages.include_router(pros_pages.router)
    pages.include_router(jobs_pages.router)
    pages.include_router(proposals_pages.router)
    pages.include_router(contracts_pages.router)
    pages.include_router(milestones_pages.router)
    pages.include_router(reviews_pages.router)
    pages.include_router(disputes_pages.router)
    pages.include_router(messaging_pages.router)
    pages.include_router(notifications_pages.router)
    app.include_router(pages)
    app.include_router(messaging_ws.router)
    app.include_router(media_api.files)  # signed URLs are their own protection
    app.include_router(site_pages.assets)

    app.add_api_route("/health", health, include_in_schema=False)
    app.add_api_route("/ready", ready, include_in_schema=False)
    app.add_route("/metrics", metrics, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    # Outermost first: the request id and language exist before anything else runs.
    app.add_middleware(LanguageMiddleware, default=settings.market_profile.default_language)
    app.add_middleware(RequestContextMiddleware)
    return app


async def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


async def ready(request: Request) -> JSONResponse:
    """Readiness: the database answers and its schema is at the code's migration head."""
    checks: dict[str, Any] = {}
    try:
        async with request.app.state.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
        revision = await current_revision(request.app.state.engine)
        checks["migrations"] = (
            "ok"
            if revision == request.app.state.head_revision
            else (f"at {revision}, code expects {request.app.state.head_revision}")
        )
    except Exception as exc:  # readiness reports failures instead of raising them
        checks.setdefault("database", f"unreachable: {type(exc).__name__}")
    ok = all(v == "ok" for v in checks.values()) and len(checks) == 2
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )
