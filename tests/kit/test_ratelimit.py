"""Rate limits: in memory for one process, shared through Redis across api replicas."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import uuid
from typing import Any

import pytest

from mesteri.kit import ratelimit
from mesteri.kit.errors import RateLimitedError
from mesteri.kit.ratelimit import RateLimiter

REDIS_URL = os.environ.get("MESTERI_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


async def test_memory_limiter_counts_and_reports_retry_after() -> None:
    limiter = RateLimiter()
    key = f"k:{uuid.uuid4()}"
    for _ in range(3):
        await limiter.check("3/minute", key)
        await limiter.record("3/minute", key)
    with pytest.raises(RateLimitedError) as caught:
        await limiter.check("3/minute", key)
    assert 1 <= int(caught.value.headers["Retry-After"]) <= 60
    await limiter.check("3/minute", f"other:{uuid.uuid4()}")  # other keys are unaffected


async def test_memory_hits_start_no_thread_until_the_sweep_is_due(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every hit of a busy limiter used to wait for a new sweeper thread to start."""
    limiter = RateLimiter()
    started: list[threading.Thread] = []
    original = threading.Thread.start

    def counted(thread: threading.Thread, *args: Any, **kwargs: Any) -> None:
        started.append(thread)
        original(thread, *args, **kwargs)

    monkeypatch.setattr(threading.Thread, "start", counted)
    for i in range(50):
        await limiter.hit("1/second", f"sender:{i}")
        await asyncio.sleep(0.002)  # past the library's 10 ms timer several times over
    assert started == []
    # Once due, one sweep drops the expired entries.
    storage = limiter._local_storage
    assert len(storage.events) == 50
    monkeypatch.setattr(ratelimit, "SWEEP_SECONDS", 0.0)
    await asyncio.sleep(1.05)
    await limiter.hit("1/second", "sender:new")
    assert len(started) == 1
    started[0].join(5)
    assert [key for key, entries in storage.events.items() if entries] == [
        "LIMITER/sender:new/1/1/second"
    ]


async def test_redis_limiter_is_shared_between_replicas() -> None:
    if not _redis_reachable():
        if os.environ.get("CI"):
            pytest.fail("Redis is expected on 127.0.0.1:6379 in CI")
        pytest.skip("no Redis on 127.0.0.1:6379")
    replica_a, replica_b = RateLimiter(REDIS_URL), RateLimiter(REDIS_URL)
    key = f"login:ip:{uuid.uuid4()}"
    for _ in range(3):
        await replica_a.record("5/15minutes", key)
    for _ in range(2):
        await replica_b.record("5/15minutes", key)
    with pytest.raises(RateLimitedError):
        await replica_a.check("5/15minutes", key)
    with pytest.raises(RateLimitedError):
        await replica_b.hit("5/15minutes", key)
