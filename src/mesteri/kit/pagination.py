"""Keyset (cursor) pagination: stable under inserts, O(limit) per page at any depth."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from mesteri.kit.errors import InvalidInputError

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class InvalidCursorError(InvalidInputError):
    code = "invalid_cursor"
    message = "The cursor is not valid."


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return {"u": str(value)}
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and "t" in value:
        return datetime.fromisoformat(value["t"])
    if isinstance(value, dict) and "u" in value:
        return uuid.UUID(value["u"])
    return value


def encode_cursor(values: Sequence[Any]) -> str:
    raw = json.dumps([_encode_value(v) for v in values], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, size: int) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw)
        if not isinstance(values, list) or len(values) != size:
            raise ValueError
        return [_decode_value(v) for v in values]
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        raise InvalidCursorError(field="cursor") from exc


def keyset(
    query: Select[Any],
    keys: Sequence[InstrumentedAttribute[Any]],
    *,
    cursor: str | None,
    limit: int,
    descending: bool = True,
) -> Select[Any]:
    """Order by ``keys`` (the last one must be unique) and start after ``cursor``.

    Fetches ``limit + 1`` rows so ``page_of`` can tell whether another page exists.
    """
    if cursor:
        after = decode_cursor(cursor, len(keys))
        row = tuple_(*keys)
        query = query.where(row < tuple_(*after) if descending else row > tuple_(*after))
    order = [k.desc() if descending else k.asc() for k in keys]
    return query.order_by(*order).limit(limit + 1)


def page_of(rows: Sequence[T], keys: Sequence[str], limit: int) -> tuple[list[T], str | None]:
    items = list(rows[:limit])
    if len(rows) <= limit or not items:
        return items, None
    last = items[-1]
    return items, encode_cursor([getattr(last, k) for k in keys])
