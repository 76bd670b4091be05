"""Rate limits on credential endpoints (library ``limits``).

In-memory storage for a single process; Redis storage when ``MESTERI_REDIS_URL`` is set,
so several api replicas share one count.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from mesteri.kit.errors import RateLimitedError


class RateLimiter:
    def __init__(self, redis_url: str | None = None) -> None:
        storage: Storage
        if redis_url:
            storage = storage_from_string("async+" + redis_url, implementation="redispy")  # type: ignore[assignment]
        else:
            storage = MemoryStorage()
        self.storage = storage
        self._limiter = MovingWindowRateLimiter(storage)

    async def check(self, rule: str, *keys: str) -> None:
        """Raise 429 if ``rule`` (e.g. ``"5/15minutes"``) is already used up for a key."""
        item = parse(rule)
        for key in keys:
            if not await self._limiter.test(item, key):
                raise RateLimitedError(await self._retry_after(item, key))

    async def hit(self, rule: str, *keys: str) -> None:
        """Count one event for each key; raise 429 when that exceeds the rule."""
        item = parse(rule)
        for key in keys:
            if not await self._limiter.hit(item, key):
                raise RateLimitedError(await self._retry_after(item, key))

    async def record(self, rule: str, *keys: str) -> None:
        """Count one event (e.g. a failed login) without refusing this request."""
        item = parse(rule)
        for key in keys:
            await self._limiter.hit(item, key)

    async def reset(self) -> None:
        await self.storage.reset()

    async def _retry_after(self, item: RateLimitItem, key: str) -> int:
        stats = await self._limiter.get_window_stats(item, key)
        return max(1, math.ceil(stats.reset_time - time.time()))
