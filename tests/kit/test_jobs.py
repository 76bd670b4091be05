"""The transactional outbox, the relay, jobs and timers on the test clock (real commits)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg  # type: ignore[import-untyped]
import pytest
from fastapi import APIRouter
from sqlalchemy import func, select, text

from mesteri.kit import clock, jobs, notify
from mesteri.kit.db import DbWrite, libpq_url
from mesteri.kit.errors import ConflictError
from tests.conftest import LiveApp
from tests.fixtures.accounts import bearer, register

RAN: list[str] = []


@jobs.task("tests.record")
async def record(marker: str) -> None:
    RAN.append(marker)


def _install_routes(live: LiveApp) -> None:
    router = APIRouter()

    @router.post("/test/defer/{marker}")
    async def defer_then_maybe_fail(
        marker: str, session: DbWrite, fail: bool = False, delay_days: int = 0
    ) -> dict[str, str]:
        run_at = clock.now() + timedelta(days=delay_days) if delay_days else None
        await jobs.defer(session, record, run_at=run_at, marker=marker)
        if fail:
            raise ConflictError("refused after deferring")
        return {"status": "deferred"}

    live.app.include_router(router)


@pytest.fixture(autouse=True)
def _clear() -> None:
    RAN.clear()


async def test_job_deferred_in_rolled_back_request_never_runs(live: LiveApp) -> None:
    _install_routes(live)
    failed = await live.client.post("/test/defer/rolled-back", params={"fail": True})
    assert failed.status_code == 409
    ok = await live.client.post("/test/defer/committed")
    assert ok.status_code == 200
    await live.drain()
    assert RAN == ["committed"]
    async with live.engine.connect() as conn:
        rows = (await conn.execute(text("SELECT args->>'marker' FROM outbox"))).scalars().all()
    assert rows == ["committed"]


async def test_relay_hands_each_row_over_exactly_once(live: LiveApp) -> None:
    _install_routes(live)
    for i in range(3):
        await live.client.post(f"/test/defer/job-{i}")
    assert await jobs.relay_due(live.engine) == 3
    assert await jobs.relay_due(live.engine) == 0  # nothing is handed over twice
    await live.drain()
    assert sorted(RAN) == ["job-0", "job-1", "job-2"]


async def test_timer_waits_for_the_application_clock(live: LiveApp) -> None:
    _install_routes(live)
    await live.client.post("/test/defer/in-a-week", params={"delay_days": 7})
    await live.drain()
    assert RAN == []
    early = await live.client.post("/api/v1/dev/clock", json={"advance": "P6D"})
    assert early.status_code == 200, early.text
    assert RAN == []
    due = await live.client.post("/api/v1/dev/clock", json={"advance": "P1DT1M"})
    assert due.json()["offset_seconds"] == 7 * 86400 + 60
    assert RAN == ["in-a-week"]


@pytest.mark.parametrize("advance", ["7 days", "P", "-P1D", "P1Y", "P99999D"])
async def test_dev_clock_rejects_bad_durations(live: LiveApp, advance: str) -> None:
    response = await live.client.post("/api/v1/dev/clock", json={"advance": advance})
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_registration_codes_are_delivered_by_the_worker(live: LiveApp) -> None:
    auth = await register(live.client)
    assert live.sent == []  # nothing leaves before the job runs
    await live.drain()
    channels = sorted((m["channel"], m["to"]) for m in live.sent)
    assert channels == sorted([("email", auth["user"]["email"]), ("sms", auth["user"]["phone"])])
    outbox = (await live.client.get("/api/v1/dev/outbox")).json()["items"]
    assert {m["state"] for m in outbox} == {"sent"}
    # delivering again (a retried job) sends nothing twice
    from mesteri.notifications.tasks import deliver_message

    await deliver_message(message_id=outbox[0]["id"])
    assert len(live.sent) == 2
    assert (await live.client.get("/api/v1/me", headers=bearer(auth))).status_code == 200


async def test_clock_offset_is_shared_through_the_database(live: LiveApp) -> None:
    await live.client.post("/api/v1/dev/clock", json={"advance": "PT2H"})
    clock.set_offset(timedelta(0))  # another process that has not looked yet
    async with live.engine.connect() as conn:
        assert await clock.load_offset(conn) == timedelta(hours=2)
        count = await conn.execute(select(func.count()).select_from(clock.ClockOffset))
        assert count.scalar_one() == 1


async def test_purge_removes_only_long_ended_codes_and_sessions(live: LiveApp) -> None:
    from mesteri.accounts.tasks import purge_expired

    old = await register(live.client)
    clock.set_offset(timedelta(days=40))  # old ended 10 days ago: beyond the 7-day keep
    fresh = await register(live.client)
    await purge_expired(timestamp=0)
    async with live.engine.connect() as conn:
        codes = (await conn.execute(text("SELECT destination FROM otp_challenges"))).scalars()
        sessions = (await conn.execute(text("SELECT user_id::text FROM auth_sessions"))).scalars()
        assert set(codes.all()) == {fresh["user"]["email"], fresh["user"]["phone"]}
        assert sessions.all() == [fresh["user"]["id"]]
    assert (await live.client.get("/api/v1/me", headers=bearer(old))).status_code == 401


async def test_state_timers_fire_only_if_the_state_is_unchanged(live: LiveApp) -> None:
    """Pending codes carry a 10-minute timer; a code used meanwhile is left alone."""
    from tests.fixtures.accounts import latest_code

    auth = await register(live.client)
    code = await latest_code(live.client, auth["user"]["email"], "otp.verify_email")
    used = await live.client.post(
        "/api/v1/auth/verify-email", json={"code": code}, headers=bearer(auth)
    )
    assert used.status_code == 200
    await live.client.post("/api/v1/dev/clock", json={"advance": "PT9M"})
    states = await _code_states(live)
    assert states == {auth["user"]["email"]: "used", auth["user"]["phone"]: "pending"}
    await live.client.post("/api/v1/dev/clock", json={"advance": "PT2M"})
    states = await _code_states(live)
    assert states == {auth["user"]["email"]: "used", auth["user"]["phone"]: "expired"}
    async with live.engine.connect() as conn:
        history = (
            await conn.execute(
                text(
                    "SELECT transition, actor, data->>'timer' FROM state_transitions "
                    "WHERE entity = 'otp' ORDER BY at"
                )
            )
        ).all()
    assert [tuple(r) for r in history] == [("use", "user", None), ("expire", "system", "true")]


async def _code_states(live: LiveApp) -> dict[str, str]:
    async with live.engine.connect() as conn:
        rows = await conn.execute(text("SELECT destination, state FROM otp_challenges"))
        return {r[0]: r[1] for r in rows}


@pytest.fixture
async def wake_ups(live_database_url: str) -> AsyncIterator[asyncio.Queue[str]]:
    """The relay's wake-ups, as a listener on the outbox channel sees them; the app's
    notifier sends them to the test database meanwhile."""
    seen: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(libpq_url(live_database_url))
    await listener.add_listener(jobs.OUTBOX_CHANNEL, lambda *args: seen.put_nowait(args[2]))
    notify.notifier.configure(live_database_url)
    try:
        yield seen
    finally:
        await notify.notifier.close()
        await listener.close()


async def test_only_a_committed_job_due_now_wakes_the_relay(
    live: LiveApp, live_database_url: str, wake_ups: asyncio.Queue[str]
) -> None:
    _install_routes(live)
    await live.client.post("/test/defer/timer", params={"delay_days": 1})
    await live.client.post("/test/defer/rolled-back", params={"fail": True})
    await notify.notifier.close()  # whatever was sent is sent
    await asyncio.sleep(0.2)  # and delivered to the listener
    assert wake_ups.empty()

    notify.notifier.configure(live_database_url)  # close() stopped it
    await live.client.post("/test/defer/now")
    assert await asyncio.wait_for(wake_ups.get(), timeout=10) == jobs.OUTBOX_CHANNEL
