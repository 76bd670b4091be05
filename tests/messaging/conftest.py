"""A real server for the real-time tests: the app with its lifespan (the hub, the broker
listening on PostgreSQL) under uvicorn on a free port, on the committed database."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import uvicorn

from mesteri.app import create_app
from mesteri.config import Settings
from mesteri.kit.db import create_engine, libpq_url
from tests.conftest import empty_database


@dataclass
class Served:
    base_url: str
    database_url: str  # libpq, for the test's own writes
    app: object
    http: httpx.AsyncClient


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def served(settings: Settings, live_database_url: str) -> AsyncIterator[Served]:
    engine = create_engine(live_database_url, pool_size=1, max_overflow=0)
    await empty_database(engine)
    await engine.dispose()
    port = _free_port()
    app = create_app(
        settings.model_copy(update={"public_url": f"http://127.0.0.1:{port}"}),
        database_url=live_database_url,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, lifespan="on", log_config=None, ws_ping_interval=None
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the server did not start"
        await asyncio.sleep(0.02)
    base_url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
            yield Served(base_url, libpq_url(live_database_url), app, http)
    finally:
        server.should_exit = True
        await task
