"""``Idempotency-Key`` for money-moving requests (SPEC 5.1).

The same key with the same body returns the first answer; the same key with another body
is a 409. The key's row is inserted in the request's own transaction, so the answer is
stored if and only if the request's effects commit; a concurrent duplicate waits on the
row's unique index until the first finishes and then replays its answer.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import Integer, String, Uuid, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.orm import Mapped, mapped_column

from mesteri.kit import clock
from mesteri.kit.db import Base, WriteSession
from mesteri.kit.errors import ConflictError

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Repeat a request safely: the same key and body return the first answer.",
    ),
]


class IdempotentRequest(Base):
    """The stored answer to a request made with an ``Idempotency-Key``."""

    __tablename__ = "idempotent_requests"

    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer, default=0)
    response: Mapped[Any] = mapped_column(JSONB, nullable=True)
    created_at: Mapped[datetime]


class IdempotencyKeyReusedError(ConflictError):
    code = "idempotency_key_reused"
    message = "This Idempotency-Key was already used for a different request."


def fingerprint(request: Request, body: BaseModel | None) -> str:
    payload = body.model_dump(mode="json") if body is not None else None
    canonical = json.dumps(
        [request.method, request.url.path, payload], sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def idempotent(
    session: WriteSession,
    request: Request,
    *,
    user_id: uuid.UUID,
    key: str | None,
    body: BaseModel | None,
    call: Callable[[], Awaitable[BaseModel]],
    status_code: int = 200,
) -> JSONResponse:
    """Run ``call`` once per (user, key); repeats get the stored answer."""
    if key is None:
        return JSONResponse(jsonable_encoder(await call()), status_code=status_code)
    digest = fingerprint(request, body)
    inserted = await session.scalar(
        insert(IdempotentRequest)
        .values(user_id=user_id, key=key, fingerprint=digest, created_at=clock.now())
        .on_conflict_do_nothing()
        .returning(IdempotentRequest.key)
    )
    if inserted is None:
        stored = await session.scalar(
            select(IdempotentRequest).where(
                IdempotentRequest.user_id == user_id, IdempotentRequest.key == key
            )
        )
        assert stored is not None  # committed by the first request, never deleted meanwhile
        if stored.fingerprint != digest:
            raise IdempotencyKeyReusedError()
        return JSONResponse(
            stored.response, status_code=stored.status_code, headers={"Idempotent-Replayed": "true"}
        )
    answer = jsonable_encoder(await call())
    row = await session.get(IdempotentRequest, (user_id, key))
    assert row is not None
    row.status_code = status_code
    row.response = answer
    return JSONResponse(answer, status_code=status_code)
