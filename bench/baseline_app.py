"""The baseline: a minimal FastAPI + asyncpg endpoint doing one primary-key lookup.

``BENCH_DATABASE_URL=postgresql://... uvicorn bench.baseline_app:app --port 8001``

It reads the app's own database (the demo data's ``users`` table), through an asyncpg pool
the size of the app's SQLAlchemy pool, served by uvicorn in one process like the app. What
the app does beyond this — middleware, authentication, the ORM, response models — is what
the ratio against this baseline measures.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg  # type: ignore[import-untyped]
from fastapi import FastAPI, HTTPException, Request

POOL_SIZE = int(os.environ.get("BENCH_POOL_SIZE", "10"))  # the app's MESTERI_DB_POOL_SIZE


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    pool = await asyncpg.create_pool(
        os.environ["BENCH_DATABASE_URL"], min_size=POOL_SIZE, max_size=POOL_SIZE
    )
    app.state.pool = pool
    try:
        yield
    finally:
        await pool.close()


app = FastAPI(lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)


@app.get("/baseline/{user_id}")
async def baseline(user_id: uuid.UUID, request: Request) -> dict[str, str]:
    pool: asyncpg.Pool = request.app.state.pool
    row = await pool.fetchrow("SELECT id, email FROM users WHERE id = $1", user_id)
    if row is None:
        raise HTTPException(status_code=404)
    return {"id": str(row["id"]), "email": row["email"]}


@app.get("/ready")
async def ready(request: Request) -> dict[str, str]:
    pool: asyncpg.Pool = request.app.state.pool
    await pool.fetchval("SELECT 1")
    return {"status": "ok"}
