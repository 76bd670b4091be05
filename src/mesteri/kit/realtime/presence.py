"""Who is online: a row per (api process, user) while the user has a WebSocket there.

Each process refreshes its rows every ``REFRESH_SECONDS``; rows of a process that died
stop being refreshed and count as offline after ``FRESH_SECONDS``. When a user's last
connection anywhere closes, the time is kept as their "last seen". Presence is about real
connectivity, so it uses the wall clock, not the application's (test) clock.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Uuid, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from mesteri.kit import clock
from mesteri.kit.db import Base

REFRESH_SECONDS = 30.0
FRESH_SECONDS = 90.0


class PresenceRow(Base):
    __tablename__ = "realtime_presence"

    node_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, index=True)
    seen_at: Mapped[datetime]


class LastSeen(Base):
    __tablename__ = "realtime_last_seen"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    last_seen_at: Mapped[datetime]


@dataclass(frozen=True, slots=True)
class Presence:
    online: bool
    last_seen_at: datetime | None


def fresh_after() -> datetime:
    """Users seen since then are online."""
    return clock.wall_now() - timedelta(seconds=FRESH_SECONDS)


async def _online_elsewhere(conn: AsyncConnection, node_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    found = await conn.scalar(
        select(func.count())
        .select_from(PresenceRow)
        .where(
            PresenceRow.user_id == user_id,
            PresenceRow.node_id != node_id,
            PresenceRow.seen_at > fresh_after(),
        )
    )
    return bool(found)


async def mark_online(conn: AsyncConnection, node_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    """Note the user online on this node; True when they were offline everywhere."""
    statement = insert(PresenceRow).values(
        node_id=node_id, user_id=user_id, seen_at=clock.wall_now()
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["node_id", "user_id"], set_={"seen_at": statement.excluded.seen_at}
        )
    )
    return not await _online_elsewhere(conn, node_id, user_id)


async def mark_offline(
    conn: AsyncConnection, node_id: uuid.UUID, user_id: uuid.UUID
) -> datetime | None:
    """The user left this node; their last-seen time when no other node has them."""
    await conn.execute(
        delete(PresenceRow).where(PresenceRow.node_id == node_id, PresenceRow.user_id == user_id)
    )
    if await _online_elsewhere(conn, node_id, user_id):
        return None
    seen = clock.wall_now()
    await _keep_last_seen(conn, [user_id], seen)
    return seen


async def _keep_last_seen(conn: AsyncConnection, user_ids: list[uuid.UUID], at: datetime) -> None:
    statement = insert(LastSeen).values([{"user_id": u, "last_seen_at": at} for u in user_ids])
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["user_id"], set_={"last_seen_at": statement.excluded.last_seen_at}
        )
    )


async def refresh(conn: AsyncConnection, node_id: uuid.UUID) -> list[uuid.UUID]:
    """Keep this node's rows fresh and drop those of nodes that stopped; the users who are
    now offline everywhere because of that (their last seen is when their node stopped)."""
    now = clock.wall_now()
    await conn.execute(
        text("UPDATE realtime_presence SET seen_at = :now WHERE node_id = :node"),
        {"now": now, "node": node_id},
    )
    stale = (
        await conn.execute(
            delete(PresenceRow)
            .where(PresenceRow.seen_at <= fresh_after())
            .returning(PresenceRow.user_id, PresenceRow.seen_at)
        )
    ).all()
    gone = [row.user_id for row in stale]
    if not gone:
        return []
    still = set(
        (
            await conn.scalars(
                select(PresenceRow.user_id).where(
                    PresenceRow.user_id.in_(gone), PresenceRow.seen_at > fresh_after()
                )
            )
        ).all()
    )
    offline = [u for u in dict.fromkeys(gone) if u not in still]
    if offline:
        await _keep_last_seen(conn, offline, max(row.seen_at for row in stale))
    return offline


async def leave_node(conn: AsyncConnection, node_id: uuid.UUID) -> list[uuid.UUID]:
    """A process shutting down: its users, last seen now."""
    users = list(
        (
            await conn.scalars(
                delete(PresenceRow)
                .where(PresenceRow.node_id == node_id)
                .returning(PresenceRow.user_id)
            )
        ).all()
    )
    if users:
        await _keep_last_seen(conn, users, clock.wall_now())
    return users


async def online_among(session: AsyncSession, user_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these users have a WebSocket open somewhere (one indexed read)."""
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return set()
    rows = await session.scalars(
        select(PresenceRow.user_id).where(
            PresenceRow.user_id.in_(ids), PresenceRow.seen_at > fresh_after()
        )
    )
    return set(rows.all())


async def presence_of(
    session: AsyncSession, user_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Presence]:
    """Online or not, and last seen, for each of these users (two indexed reads)."""
    ids = list(dict.fromkeys(user_ids))
    if not ids:
        return {}
    online = await online_among(session, ids)
    seen = {
        row.user_id: row.last_seen_at
        for row in await session.execute(
            select(LastSeen.user_id, LastSeen.last_seen_at).where(LastSeen.user_id.in_(ids))
        )
    }
    return {u: Presence(u in online, None if u in online else seen.get(u)) for u in ids}


async def is_online(session: AsyncSession, user_id: uuid.UUID) -> bool:
    return bool(await online_among(session, [user_id]))
