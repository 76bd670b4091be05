"""Developer tools that exist only in ``dev`` and ``test`` (never mounted in ``prod``):
the outbox of everything sent, and the test clock."""

from __future__ import annotations

from datetime import datetime, timedelta

import isodate
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, field_validator

from mesteri.kit import clock, jobs
from mesteri.kit.db import DbRead, DbWrite
from mesteri.kit.errors import InvalidInputError
from mesteri.kit.pagination import Page
from mesteri.notifications import outbound

router = APIRouter(prefix="/dev", tags=["dev"])


class OutboxItem(BaseModel):
    id: str
    channel: str
    to: str
    subject: str
    body: str
    kind: str
    state: str
    created_at: datetime


class ClockIn(BaseModel):
    advance: str = Field(description="ISO 8601 duration, e.g. P7D or PT1H", max_length=40)

    @field_validator("advance")
    @classmethod
    def _duration(cls, value: str) -> str:
        try:
            parsed = isodate.parse_duration(value)
        except (isodate.ISO8601Error, ValueError) as exc:
            raise ValueError("not an ISO 8601 duration such as P7D or PT30M") from exc
        if not isinstance(parsed, timedelta) or parsed < timedelta(0):
            raise ValueError("use days, hours, minutes or seconds, moving forward")
        return value


class ClockOut(BaseModel):
    now: datetime
    offset_seconds: int


@router.get("/outbox", response_model=Page[OutboxItem])
async def dev_outbox(
    session: DbRead,
    to: str | None = Query(default=None, max_length=254),
    cursor: str | None = Query(default=None, max_length=400),
    limit: int = Query(default=50, ge=1, le=200),
) -> Page[OutboxItem]:
    rows, next_cursor = await outbound.list_outbox(session, to=to, cursor=cursor, limit=limit)
    return Page(
        items=[
            OutboxItem(
                id=str(m.id),
                channel=m.channel,
                to=m.to,
                subject=m.subject,
                body=m.body,
                kind=m.kind,
                state=m.state,
                created_at=m.created_at,
            )
            for m in rows
        ],
        next_cursor=next_cursor,
    )


@router.post("/clock", response_model=ClockOut)
async def dev_clock(body: ClockIn, request: Request, session: DbWrite) -> ClockOut:
    """Move the application clock forward and run the timers that came due."""
    by = isodate.parse_duration(body.advance)
    if by > timedelta(days=3660):
        raise InvalidInputError(
            "Advance the clock by at most ten years at a time.", field="advance"
        )
    now = await clock.advance(session, by)
    await session.commit()  # timers run in their own transactions and must see the new time
    await jobs.drain(request.app.state.engine, request.app.state.jobs)
    return ClockOut(now=now, offset_seconds=int(clock.offset().total_seconds()))
