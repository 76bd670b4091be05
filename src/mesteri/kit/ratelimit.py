"""Rate limits on credential endpoints and on sending messages (library ``limits``).

In-memory storage for a single process; Redis storage when ``MESTERI_REDIS_URL`` is set,
so several api replicas share one count. In memory the synchronous storage is used: its
calls never wait, and the asynchronous one sweeps expired entries with a thread hop per
key on every hit, which cost tens of percent of a CPU with a few hundred active senders
(``bench/README.md``, the real-time benchmark). The synchronous one sweeps on a timer
thread it starts again 10 ms after any hit; ``_LocalStorage`` sweeps at most every
``SWEEP_SECONDS`` instead.
"""

from __future__ import annotations

import functools
import math
import threading
import time

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import MemoryStorage, storage_from_string
from limits.strategies import MovingWindowRateLimiter as LocalMovingWindowRateLimiter

from mesteri.kit.errors import RateLimitedError

SWEEP_SECONDS = 30.0

# The few rules the app uses ("30/minute"), parsed once rather than on every hit.
_rule = functools.lru_cache(maxsize=64)(parse)


class _LocalStorage(MemoryStorage):
    """``MemoryStorage`` whose sweep of expired entries runs at most every ``SWEEP_SECONDS``.

    The library starts a new timer thread on every hit once the last 10 ms timer has run,
    so under steady traffic each hit waits for a thread to start, on the event loop, and
    every 10 ms a thread walks all keys holding the GIL. The sweep only frees memory: a
    moving window reads its entries' times, so nothing is counted wrongly in between.
    """

    def __init__(self) -> None:
        super().__init__()
        self._swept_at = time.monotonic()

    # Overrides the library's name-mangled ``MemoryStorage.__schedule_expiry`` (limits 5).
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now - self._swept_at >= SWEEP_SECONDS and not self.timer.is_alive():
            self._swept_at = now
            self.timer = threading.Timer(0, self._MemoryStorage__expire_events)  # type: ignore[attr-defined]
            self.timer.daemon = True
            self.timer.start()


class RateLimiter:
    def __init__(self, redis_url: str | None = None) -> None:
        self._shared: MovingWindowRateLimiter | None = None
        self._local: LocalMovingWindowRateLimiter | None = None
        if redis_url:
            storage: Storage = storage_from_string(  # type: ignore[assignment]
                "async+" + redis_url, implementation="redispy"
            )
            self._shared_storage = storage
            self._shared = MovingWindowRateLimiter(storage)
        else:
            self._local_storage = _LocalStorage()
            self._local = LocalMovingWindowRateLimiter(self._local_storage)

    async def _test(self, item: RateLimitItem, key: str) -> bool:
        if self._local is not None:
            return self._local.test(item, key)
        assert self._shared is not None
        return await self._shared.test(item, key)

    async def _hit(self, item: RateLimitItem, key: str) -> bool:
        if self._local is not None:
            return self._local.hit(item, key)
        assert self._shared is not None
        return await self._shared.hit(item, key)

    async def check(self, rule: str, *keys: str) -> None:
        """Raise 429 if ``rule`` (e.g. ``"5/15minutes"``) is already used up for a key."""
        item = _rule(rule)
        for key in keys:
            if not await self._test(item, key):
                raise RateLimitedError(await self._retry_after(item, key))

    async def hit(self, rule: str, *keys: str) -> None:
        """Count one event for each key; raise 429 when that exceeds the rule."""
        item = _rule(rule)
        for key in keys:
            if not await self._hit(item, key):
                raise RateLimitedError(await self._retry_after(item, key))

    async def record(self, rule: str, *keys: str) -> None:
        """Count one event (e.g. a failed login) without refusing this request."""
        item = _rule(rule)
        for key in keys:
            await self._hit(item, key)

    async def reset(self) -> None:
        if self._local is not None:
            self._local_storage.reset()
        else:
            await self._shared_storage.reset()

    async def _retry_after(self, item: RateLimitItem, key: str) -> int:
        if self._local is not None:
            stats = self._local.get_window_stats(item, key)
        else:
            assert self._shared is not None
            stats = await self._shared.get_window_stats(item, key)
        return max(1, math.ceil(stats.reset_time - time.time()))
