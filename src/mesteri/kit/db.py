"""Database engine, sessions and the request-owned transaction.

Services receive a session and ``flush()``; they never commit. The request (or job)
owns the transaction: ``write_session`` commits when the handler returned normally and
rolls back on any exception. Read-only paths take a ``ReadSession`` so the type checker
keeps writes off them (``WriteSession`` is a ``ReadSession`` that may also write).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request
from sqlalchemy import DateTime, MetaData
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: DateTime(timezone=True)}


class ReadSession(AsyncSession):
    """A session used only to read."""


class WriteSession(ReadSession):
    """A session inside the request's (or job's) transaction; services may write and flush."""


def async_url(url: str) -> str:
    """Normalise any PostgreSQL URL to the asyncpg driver SQLAlchemy needs."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """The plain libpq form (psycopg, procrastinate, psql)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def create_engine(url: str, *, pool_size: int = 10, max_overflow: int = 10) -> AsyncEngine:
    return create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=False,
        # asyncpg prepares each statement once per connection and reuses it.
        connect_args={"server_settings": {"application_name": "mesteri", "timezone": "UTC"}},
    )


def autocommit(engine: AsyncEngine) -> AsyncEngine:
    """The same pool in autocommit: each read is one round trip, no BEGIN/COMMIT around it."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def session_factories(
    engine: AsyncEngine,
) -> tuple[async_sessionmaker[ReadSession], async_sessionmaker[WriteSession]]:
    read = async_sessionmaker(
        autocommit(engine), class_=ReadSession, expire_on_commit=False, autoflush=False
    )
    write = async_sessionmaker(engine, class_=WriteSession, expire_on_commit=False)
    return read, write


@asynccontextmanager
async def unit_of_work(factory: async_sessionmaker[WriteSession]) -> AsyncIterator[WriteSession]:
    """One transaction: committed if the block succeeds, rolled back if it raises.

    An error with ``persist_on_error`` (see ``DomainError``) keeps what was written before it.
    """
    async with factory() as session:
        try:
            yield session
        except BaseException as exc:
            await (
                session.commit() if getattr(exc, "persist_on_error", False) else session.rollback()
            )
            raise
        else:
            await session.commit()


async def driver_connection(session: AsyncSession) -> Any:
    """The asyncpg connection under ``session``, for a hot statement whose result the ORM
    need not see. It is in the session's transaction only once a statement of the session
    has begun it (the driver sends ``BEGIN`` lazily, before the first one); flush first
    if the session holds pending writes."""
    raw = await (await session.connection()).get_raw_connection()
    return raw.driver_connection


async def _write_session(request: Request) -> AsyncIterator[WriteSession]:
    async with unit_of_work(request.app.state.write_sessions) as session:
        yield session


async def _read_session(request: Request) -> AsyncIterator[ReadSession]:
    factory: async_sessionmaker[ReadSession] = request.app.state.read_sessions
    async with factory() as session:
        yield session


# scope="function": the transaction ends before the response is sent, so a client never
# sees a success whose commit then failed.
DbWrite = Annotated[WriteSession, Depends(_write_session, scope="function")]
DbRead = Annotated[ReadSession, Depends(_read_session, scope="function")]


class FastStatements(Protocol):
    """One statement straight through the driver, for the few hot paths where the ORM's
    per-call cost dominates: authenticating every API call (measured: ~0.2 ms of CPU per
    lookup against ~0.6 ms through an ORM session) and posting a chat text, a statement
    that writes and is its own transaction (``messaging.service.do_post_text``).
    Statements use the driver's ``$1`` placeholders."""

    async def fetch_one(self, sql: str, *args: Any) -> Mapping[str, Any] | None: ...


async def _keep_session(_connection: Any) -> None:
    """The fast pool's statements leave no session state (no SET, LISTEN, locks or open
    transaction: asyncpg still rolls one back), so a returned connection needs no reset
    query — asyncpg's default is a round trip after every statement."""


class DriverPool:
    """The app's fast statements: a small asyncpg pool of its own (autocommit by nature)."""

    def __init__(self, url: str, size: int) -> None:
        self._url = libpq_url(url)  # asyncpg takes libpq URLs, ?host=/socket/dir too
        self._size = size
        self._pool: Any = None

    async def open(self) -> None:
        import asyncpg  # type: ignore[import-untyped]

        self._pool = await asyncpg.create_pool(
            self._url,
            min_size=1,
            max_size=self._size,
            server_settings={"application_name": "mesteri-fast", "timezone": "UTC"},
            reset=_keep_session,
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    async def fetch_one(self, sql: str, *args: Any) -> Mapping[str, Any] | None:
        row: Mapping[str, Any] | None = await self._pool.fetchrow(sql, *args)
        return row
