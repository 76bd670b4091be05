"""Each user's stream of live events, kept so a client can resume after a disconnect.

``publish`` only notes the event on the session. At commit (SQLAlchemy's
``before_commit``, inside the transaction) every noted event gets the next number of each
recipient's stream — all of the transaction's recipients in one statement, locked in
user-id order, so two transactions never deadlock — and is stored; once the transaction
committed (``after_commit``) the broker sends it. Because a stream's counter row stays
locked until commit, a user's events commit in the order of their numbers: a gap seen by
a receiver can always be filled from the table, and a resumed client gets exactly what it
missed.

Events that are not worth keeping (typing, presence) go through ``broadcast`` at once.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, String, Uuid, bindparam, event, select, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Mapped, Session, mapped_column
from sqlalchemy.types import Integer

from mesteri.kit import clock
from mesteri.kit.db import Base

_PENDING = "mesteri.realtime.pending"
_CONTROL = "mesteri.realtime.control"
_OUTGOING = "mesteri.realtime.outgoing"
# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; bigger events travel as a
# reference and receivers read them from the table.
MAX_INLINE_BYTES = 7000


class RealtimeStream(Base):
    """The last event number given to each user."""

    __tablename__ = "realtime_streams"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)


class RealtimeEvent(Base):
    __tablename__ = "realtime_events"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    type: Mapped[str] = mapped_column(String(40))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(index=True)


@dataclass(frozen=True, slots=True)
class Event:
    """One event as a connection sends it. ``seq`` is the recipient's event id (None for
    events that are not kept); ``data`` is None when it must be read from the table."""

    type: str
    data: Mapping[str, Any] | None
    seq: int | None = None

    def frame(self) -> str:
        body: dict[str, Any] = {"type": self.type, "data": self.data}
        if self.seq is not None:
            body["id"] = self.seq
        return json.dumps(body, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class _Pending:
    user_ids: tuple[uuid.UUID, ...]
    type: str
    data: dict[str, Any]


def publish(
    session: AsyncSession, user_ids: Iterable[uuid.UUID], type: str, data: dict[str, Any]
) -> None:
    """Send ``type`` with JSON-ready ``data`` to these users' connections once the session's
    transaction commits (and never if it rolls back)."""
    recipients = tuple(dict.fromkeys(user_ids))
    if recipients:
        session.info.setdefault(_PENDING, []).append(_Pending(recipients, type, data))


# One round trip: the recipients' counters move by their number of events (rows locked in
# user-id order), and the events are stored under the numbers that frees.
_STORE = text(
    """
    WITH counted AS (
        SELECT u, count(*)::int AS n FROM unnest(:users) AS u GROUP BY u
    ), allocated AS (
        INSERT INTO realtime_streams AS s (user_id, last_seq)
        SELECT u, n FROM counted ORDER BY u
        ON CONFLICT (user_id) DO UPDATE SET last_seq = s.last_seq + EXCLUDED.last_seq
        RETURNING s.user_id, s.last_seq
    )
    INSERT INTO realtime_events (user_id, seq, type, data, created_at)
    SELECT e.u, a.last_seq - c.n + e.nth, e.t, e.d::jsonb, :now
    FROM unnest(:users, :nths, :types, :datas) AS e(u, nth, t, d)
    JOIN allocated a ON a.user_id = e.u
    JOIN counted c ON c.u = e.u
    RETURNING user_id, seq
    """
).bindparams(
    bindparam("users", type_=ARRAY(Uuid)),
    bindparam("nths", type_=ARRAY(Integer)),
    bindparam("types", type_=ARRAY(String)),
    bindparam("datas", type_=ARRAY(String)),
)


@event.listens_for(Session, "before_commit")
def _store_pending(session: Session) -> None:
    pending: list[_Pending] = session.info.pop(_PENDING, [])
    envelopes: list[str] = session.info.pop(_CONTROL, [])
    if pending:
        envelopes = _store(session, pending) + envelopes
    if envelopes:
        session.info.setdefault(_OUTGOING, []).extend(envelopes)


def _store(session: Session, pending: list[_Pending]) -> list[str]:
    """Number and store the pending events; their broker envelopes, in order."""
    nth: Counter[uuid.UUID] = Counter()
    rows: dict[str, list[Any]] = {"users": [], "nths": [], "types": [], "datas": []}
    for item in pending:
        data = json.dumps(item.data, separators=(",", ":"), ensure_ascii=False)
        for user in item.user_ids:
            nth[user] += 1
            rows["users"].append(user)
            rows["nths"].append(nth[user])
            rows["types"].append(item.type)
            rows["datas"].append(data)
    first: dict[uuid.UUID, int] = {}
    for user_id, seq in session.execute(_STORE, {**rows, "now": clock.now()}):
        first[user_id] = min(seq, first.get(user_id, seq))
    envelopes: list[str] = []
    taken: Counter[uuid.UUID] = Counter()
    for item in pending:
        to: dict[str, int] = {}
        for user in item.user_ids:
            to[str(user)] = first[user] + taken[user]
            taken[user] += 1
        envelopes.append(_envelope(item.type, item.data, to))
    return envelopes


@event.listens_for(Session, "after_commit")
def _send_outgoing(session: Session) -> None:
    envelopes = session.info.pop(_OUTGOING, None)
    if envelopes:
        from mesteri.kit.realtime.brokers import current_broker

        current_broker().after_commit(envelopes)


def send_stored(type: str, data: Mapping[str, Any], numbers: Mapping[uuid.UUID, int]) -> None:
    """Send an event that the caller's own statement stored (under these numbers of the
    recipients' streams, as ``publish`` would at commit), now that it has committed."""
    from mesteri.kit.realtime.brokers import current_broker

    to = {str(user): seq for user, seq in numbers.items()}
    current_broker().after_commit([_envelope(type, data, to)])


@event.listens_for(Session, "after_rollback")
def _forget(session: Session) -> None:
    for key in (_PENDING, _CONTROL, _OUTGOING):
        session.info.pop(key, None)


def _envelope(type: str, data: Mapping[str, Any], to: Mapping[str, int]) -> str:
    raw = json.dumps({"t": type, "d": data, "to": to}, separators=(",", ":"), ensure_ascii=False)
    if len(raw.encode()) <= MAX_INLINE_BYTES:
        return raw
    return json.dumps({"t": type, "to": to, "ref": 1}, separators=(",", ":"))


def notify_stored_sql(events: str, channel: str) -> str:
    """``send_stored`` inside a statement that stores one event itself: a scalar subquery
    that NOTIFYs ``channel`` (an SQL expression; NULL sends nothing) with the envelope of
    the event in ``events`` (the statement's rows of ``user_id, seq, type, data``, one per
    recipient, all of one event; none: nothing is sent). PostgreSQL delivers it when the
    transaction commits."""
    return f"""(
    SELECT pg_notify({channel}, CASE WHEN octet_length(f.full) <= {MAX_INLINE_BYTES} THEN f.full
        ELSE jsonb_build_object('t', n.type, 'to', n.recipients, 'ref', 1)::text END)
    FROM (SELECT min(e.type) AS type, (array_agg(e.data))[1] AS data,
                 jsonb_object_agg(e.user_id, e.seq) AS recipients
          FROM {events} e HAVING count(*) > 0) n,
        LATERAL (SELECT jsonb_build_object('t', n.type, 'd', n.data, 'to', n.recipients)::text
                 AS full) f
    WHERE {channel} IS NOT NULL)"""  # noqa: S608 - the caller's constants


async def broadcast(user_ids: Iterable[uuid.UUID], type: str, data: Mapping[str, Any]) -> None:
    """Send an event that is not kept (typing, presence) to these users' connections now."""
    users = [str(u) for u in dict.fromkeys(user_ids)]
    if users:
        from mesteri.kit.realtime.brokers import current_broker

        body = {"t": type, "d": data, "u": users}
        await current_broker().send([json.dumps(body, separators=(",", ":"), ensure_ascii=False)])


def close_sessions(
    session: AsyncSession,
    session_ids: Iterable[uuid.UUID] = (),
    *,
    user_ids: Iterable[uuid.UUID] = (),
) -> None:
    """Once the transaction commits, close the connections signed in with these sessions,
    or all of these users' (sign-out takes effect on open WebSockets, in every process)."""
    sessions, users = [str(s) for s in session_ids], [str(u) for u in user_ids]
    if sessions or users:
        envelope = json.dumps({"t": "_close", "s": sessions, "u": users}, separators=(",", ":"))
        session.info.setdefault(_CONTROL, []).append(envelope)


async def backlog(
    conn: AsyncConnection, user_id: uuid.UUID, after: int, *, before: int | None = None, limit: int
) -> Sequence[Event]:
    """The user's kept events numbered after ``after`` (and before ``before``), in order."""
    query = (
        select(RealtimeEvent.seq, RealtimeEvent.type, RealtimeEvent.data)
        .where(RealtimeEvent.user_id == user_id, RealtimeEvent.seq > after)
        .order_by(RealtimeEvent.seq)
        .limit(limit)
    )
    if before is not None:
        query = query.where(RealtimeEvent.seq < before)
    rows = (await conn.execute(query)).all()
    return [Event(row.type, row.data, row.seq) for row in rows]


async def last_event_id(conn: AsyncConnection, user_id: uuid.UUID) -> int:
    """The number of the user's newest event (0 before the first)."""
    value = await conn.scalar(
        select(RealtimeStream.last_seq).where(RealtimeStream.user_id == user_id)
    )
    return int(value or 0)


async def forget_before(conn: AsyncConnection, cutoff: datetime) -> int:
    """Drop events older than ``cutoff``: a client away longer reloads instead of resuming."""
    result = await conn.execute(
        text("DELETE FROM realtime_events WHERE created_at < :cutoff"), {"cutoff": cutoff}
    )
    return int(getattr(result, "rowcount", 0) or 0)
