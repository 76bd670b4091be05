"""The application clock.

All code asks ``clock.now()`` for the time. In dev and test the clock can be moved
forward (``POST /api/v1/dev/clock``) the way payment providers offer test clocks; the
offset is persisted so the api and the worker agree on what time it is.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import BigInteger, Integer, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mesteri.kit.db import Base

_offset = timedelta(0)


class ClockOffset(Base):
    __tablename__ = "app_clock"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offset_seconds: Mapped[int] = mapped_column(BigInteger, nullable=False, default=0)


def now() -> datetime:
    return datetime.now(UTC) + _offset


def wall_now() -> datetime:
    """Real time, without the test offset: for what systems outside the app check against
    their own clock (expiry of presigned storage URLs, provider signature timestamps)."""
    return datetime.now(UTC)


def offset() -> timedelta:
    return _offset


def set_offset(value: timedelta) -> None:
    global _offset
    _offset = value


async def load_offset(conn: AsyncConnection | AsyncSession) -> timedelta:
    """Refresh this process's offset from the database (the worker does this every tick)."""
    result = await conn.execute(select(ClockOffset.offset_seconds).where(ClockOffset.id == 1))
    seconds = result.scalar_one_or_none() or 0
    set_offset(timedelta(seconds=seconds))
    return _offset


async def advance(session: AsyncSession, by: timedelta) -> datetime:
    """Move the clock forward for every process (atomic increment, never read-modify-write)."""
    if by < timedelta(0):
        raise ValueError("the clock only moves forward")
    result = await session.execute(
        text(
            "INSERT INTO app_clock (id, offset_seconds) VALUES (1, :s) "
            "ON CONFLICT (id) DO UPDATE SET offset_seconds = app_clock.offset_seconds + :s "
            "RETURNING offset_seconds"
        ),
        {"s": int(by.total_seconds())},
    )
    set_offset(timedelta(seconds=result.scalar_one()))
    return now()
