"""Test infrastructure.

- One PostgreSQL for the run: the embedded server (the default ``make test`` path) or the
  server at ``MESTERI_TEST_DATABASE_URL`` (e.g. ``postgresql://postgres@127.0.0.1:5432/postgres``).
- One database per test process, built by the Alembic migrations.
- Each API test runs inside an outer transaction that is rolled back; the app's
  request-owned transactions become savepoints inside it.
- Tests that need real commits (the outbox relay, jobs, the test clock) use ``live_app``
  on a second database whose tables are emptied before each test.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("MESTERI_ENV", "test")
os.environ.setdefault("MESTERI_LOG_JSON", "false")

import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker

from mesteri.app import create_app
from mesteri.cli import ensure_database
from mesteri.config import Settings, get_settings
from mesteri.kit import clock, jobs
from mesteri.kit.db import (
    ReadSession,
    WriteSession,
    autocommit,
    create_engine,
    libpq_url,
    session_factories,
)
from mesteri.kit.migrate import head_revision, upgrade
from mesteri.kit.ratelimit import RateLimiter
from mesteri.notifications import senders
from mesteri.payments import providers

PASSWORD = "sunny-Harbor-47"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A libpq URL of a PostgreSQL server where tests may create databases."""
    external = os.environ.get("MESTERI_TEST_DATABASE_URL")
    if external:
        yield external
        return
    from mesteri.kit.embedded import EmbeddedPostgres

    data_dir = Path(tempfile.mkdtemp(prefix="mesteri-test-"))
    server = EmbeddedPostgres(data_dir)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


def _database_url(server_url: str, name: str) -> str:
    ensure_database(server_url, name)
    url = make_url(server_url)
    return url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url(pg_server: str) -> str:
    name = f"mesteri_test_{os.getpid()}"
    _drop(pg_server, name)
    url = _database_url(pg_server, name)
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def live_database_url(pg_server: str) -> str:
    name = f"mesteri_live_{os.getpid()}"
    _drop(pg_server, name)
    url = _database_url(pg_server, name)
    upgrade(url)
    return url


def _drop(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def settings() -> Settings:
    return get_settings()


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url, pool_size=2, max_overflow=2)
    yield eng
    await eng.dispose()


@pytest.fixture(autouse=True)
def _reset_clock() -> Iterator[None]:
    clock.set_offset(timedelta(0))
    yield
    clock.set_offset(timedelta(0))


@pytest.fixture
async def connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        outer = await conn.begin()
        try:
            yield conn
        finally:
            await outer.rollback()


@pytest.fixture
async def db(connection: AsyncConnection) -> AsyncIterator[WriteSession]:
    """A session inside the test's rolled-back transaction."""
    factory = async_sessionmaker(
        bind=connection,
        class_=WriteSession,
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
    )
    async with factory() as session:
        yield session


@pytest.fixture
def app(settings: Settings, database_url: str, connection: AsyncConnection) -> Any:
    """The real app, its sessions bound to the test's connection (no lifespan needed)."""
    application = create_app(settings, database_url=database_url)
    application.state.engine = connection.engine
    application.state.read_sessions = async_sessionmaker(
        bind=connection,
        class_=ReadSession,
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
    )
    application.state.write_sessions = async_sessionmaker(
        bind=connection,
        class_=WriteSession,
        expire_on_commit=False,
        join_transaction_mode="create_savepoint",
    )
    application.state.fast_statements = ConnectionStatements(lambda: _same_connection(connection))
    application.state.limiter = RateLimiter()
    application.state.head_revision = head_revision()
    senders.configure(None, settings.mail_from)
    install_sandbox(settings, application)
    return application


@asynccontextmanager
async def _same_connection(connection: AsyncConnection) -> AsyncIterator[AsyncConnection]:
    yield connection


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 50000))
    async with httpx.AsyncClient(
        transport=transport, base_url="https://testserver", headers={"accept-language": "en"}
    ) as c:
        yield c


# ---------------------------------------------------------------- committed path


@dataclass
class LiveApp:
    app: Any
    client: httpx.AsyncClient
    engine: AsyncEngine
    job_app: Any
    sent: list[dict[str, str]]

    async def drain(self) -> None:
        """Run every job and timer that is due (as the worker would)."""
        await jobs.drain(self.engine, self.job_app)


class RecordingEmail:
    def __init__(self, sent: list[dict[str, str]]) -> None:
        self.sent = sent

    async def send(
        self,
        *,
        to: str,
        subject: str,
        body: str,
        html: str | None = None,
        headers: Any = None,
    ) -> None:
        self.sent.append(
            {"channel": "email", "to": to, "subject": subject, "body": body, "html": html or ""}
        )


class RecordingSms:
    channel = "sms"

    def __init__(self, sent: list[dict[str, str]]) -> None:
        self.sent = sent

    async def send(self, *, to: str, body: str) -> None:
        self.sent.append({"channel": self.channel, "to": to, "body": body})


class RecordingWhatsApp(RecordingSms):
    channel = "whatsapp"


# Loaded by the migrations (the catalog), not by tests: kept when the live database is emptied.
REFERENCE_TABLES = ("alembic_version", "categories", "places")


@pytest.fixture
async def live(settings: Settings, live_database_url: str) -> AsyncIterator[LiveApp]:
    """The app on a database with real commits, plus a job runner; tables emptied first."""
    eng = create_engine(live_database_url, pool_size=4, max_overflow=2)
    await empty_database(eng)
    application = create_app(settings, database_url=live_database_url)
    application.state.engine = eng
    application.state.read_sessions, application.state.write_sessions = session_factories(eng)
    application.state.fast_statements = ConnectionStatements(autocommit(eng).connect)
    application.state.limiter = RateLimiter()
    application.state.head_revision = head_revision()
    jobs.bind_sessions(application.state.write_sessions)
    job_app = jobs.configure(libpq_url(live_database_url))
    application.state.jobs = job_app
    install_sandbox(settings, application)
    sent: list[dict[str, str]] = []
    senders.install(
        senders.Senders(
            email=RecordingEmail(sent), sms=RecordingSms(sent), whatsapp=RecordingWhatsApp(sent)
        )
    )
    async with job_app.open_async():
        transport = httpx.ASGITransport(app=application, client=("203.0.113.8", 50000))
        async with httpx.AsyncClient(
            transport=transport, base_url="https://testserver", headers={"accept-language": "en"}
        ) as c:
            yield LiveApp(application, c, eng, job_app, sent)
    await eng.dispose()


# ---------------------------------------------------------------- helpers


async def empty_database(engine: AsyncEngine) -> None:
    """Every table emptied but the reference data the migrations load."""
    async with engine.begin() as conn:
        tables = (
            await conn.execute(
                text(
                    "SELECT string_agg(quote_ident(tablename), ', ') FROM pg_tables "
                    "WHERE schemaname = 'public' AND tablename <> ALL(:keep)"
                ),
                {"keep": list(REFERENCE_TABLES)},
            )
        ).scalar_one()
        await conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def install_sandbox(settings: Settings, application: Any) -> None:
    """The sandbox provider with its webhooks posted to this app in-process."""
    transport = httpx.ASGITransport(app=application, client=("198.51.100.1", 443))
    providers.configure(
        settings.model_copy(update={"public_url": "https://testserver"}),
        application.state.write_sessions,
        transport=transport,
    )


class ConnectionStatements:
    """The app's fast statements over a SQLAlchemy connection (the test's own, or a pooled one)."""

    def __init__(self, connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]]):
        self._connect = connect
        self.statements: list[str] = []

    async def fetch_one(self, sql: str, *args: Any) -> Any:
        async with self._connect() as conn:
            raw = await conn.get_raw_connection()
            driver: Any = raw.driver_connection
            self.statements.append(sql)
            if not driver.is_in_transaction():
                return await driver.fetchrow(sql, *args)
            # Inside the test's transaction: a failing write must not end it.
            async with driver.transaction():
                return await driver.fetchrow(sql, *args)


@contextmanager
def count_queries(engine: AsyncEngine) -> Iterator[list[str]]:
    """Records every SQL statement the engine runs inside the block."""
    statements: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", before)


@pytest.fixture(autouse=True)
def _local_media(tmp_path: Path) -> Iterator[None]:
    """Each test stores uploads in its own directory (local storage)."""
    from mesteri.media import storage

    storage.install(storage.LocalStorage(tmp_path / "media", get_settings().secret_key))
    yield
    storage.install(None)
