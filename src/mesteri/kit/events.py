"""In-transaction domain events.

A module announces what happened (``publish``) without knowing who cares; modules that
depend on it subscribe. Handlers run inside the publisher's transaction, so the change and
its consequences commit or roll back together (a hold funded ⇔ its milestone funded).
Anything that must leave the database (mail, pushes, provider calls) is still deferred
through the outbox by the handler. Handlers must be idempotent: a replayed webhook may
publish the same event twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

E = TypeVar("E")
Handler = Callable[[AsyncSession, Any], Awaitable[None]]

_HANDLERS: defaultdict[type, list[Handler]] = defaultdict(list)


def subscribe(event_type: type[E]) -> Callable[[Handler], Handler]:
    """Register the decorated ``async def handler(session, event)`` for ``event_type``."""

    def register(handler: Handler) -> Handler:
        if handler not in _HANDLERS[event_type]:
            _HANDLERS[event_type].append(handler)
        return handler

    return register


async def publish(session: AsyncSession, event: object) -> None:
    for handler in _HANDLERS[type(event)]:
        await handler(session, event)
