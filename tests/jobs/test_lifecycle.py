"""The job lifecycle driven by other modules and by time: hire, the contract's end
(completed, cancelled, withdrawn), and expiry after ``job_open_days`` on the test clock."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from mesteri.contracts.events import ContractEnded
from mesteri.jobs import service
from mesteri.jobs.lifecycles import JOB_LIFECYCLE
from mesteri.jobs.models import Job, JobState
from mesteri.kit import clock, events
from mesteri.kit.db import WriteSession
from mesteri.kit.statemachine import StateTransitionRecord, TransitionNotAllowedError
from tests.conftest import LiveApp
from tests.fixtures.accounts import bearer, login
from tests.fixtures.jobs import API, post_job
from tests.fixtures.market import make_client, make_verified_pro


async def _history(db: WriteSession, job_id: uuid.UUID) -> list[tuple[str, str]]:
    rows = await db.execute(
        select(StateTransitionRecord.transition, StateTransitionRecord.actor)
        .where(StateTransitionRecord.entity_id == job_id)
        .order_by(StateTransitionRecord.at, StateTransitionRecord.id)
    )
    return [(r.transition, r.actor) for r in rows]


async def _hired(client: httpx.AsyncClient, db: WriteSession) -> tuple[uuid.UUID, uuid.UUID]:
    owner = await make_client(client)
    pro = await make_verified_pro(client, db)
    job = await post_job(client, owner.headers)
    job_id = uuid.UUID(job["id"])
    await service.do_hire(db, await service.lock_job(db, job_id), pro.pro_id)
    return job_id, pro.pro_id


async def test_hire_then_contract_completed(client: httpx.AsyncClient, db: WriteSession) -> None:
    job_id, pro_id = await _hired(client, db)
    row = await db.get(Job, job_id)
    assert row is not None
    assert row.state == JobState.IN_PROGRESS
    assert row.hired_pro_id == pro_id
    event = ContractEnded(uuid.uuid4(), job_id, "completed")
    await events.publish(db, event)
    await events.publish(db, event)  # a replay changes nothing
    row = await service.lock_job(db, job_id)
    assert row.state == JobState.COMPLETED
    assert await _history(db, job_id) == [
        ("publish", "client"),
        ("hire", "system"),
        ("complete", "system"),
    ]
    # Hiring is only possible from open.
    again = await service.lock_job(db, job_id)
    with pytest.raises(TransitionNotAllowedError):
        await service.do_hire(db, again, pro_id)


async def test_contract_cancelled_cancels_the_job(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    job_id, _ = await _hired(client, db)
    await events.publish(db, ContractEnded(uuid.uuid4(), job_id, "cancelled"))
    row = await service.lock_job(db, job_id)
    assert row.state == JobState.CANCELLED
    assert (await _history(db, job_id))[-1] == ("cancel", "system")


async def test_contract_withdrawn_reopens_the_job(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    job_id, _ = await _hired(client, db)
    await events.publish(db, ContractEnded(uuid.uuid4(), job_id, "withdrawn"))
    row = await service.lock_job(db, job_id)
    assert row.state == JobState.OPEN
    assert row.hired_pro_id is None
    assert row.expires_at is not None
    assert abs((row.expires_at - clock.now()) - timedelta(days=30)) < timedelta(minutes=1)
    assert (await _history(db, job_id))[-1] == ("reopen", "system")
    # A second delivery (the job is open now) is ignored.
    await events.publish(db, ContractEnded(uuid.uuid4(), job_id, "withdrawn"))
    assert (await _history(db, job_id))[-1] == ("reopen", "system")
    assert len(await _history(db, job_id)) == 3


async def test_contract_events_leave_jobs_not_in_progress_alone(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    owner = await make_client(client)
    job = await post_job(client, owner.headers)
    job_id = uuid.UUID(job["id"])
    for outcome in ("completed", "cancelled", "withdrawn"):
        await events.publish(db, ContractEnded(uuid.uuid4(), job_id, outcome))
    await events.publish(db, ContractEnded(uuid.uuid4(), uuid.uuid4(), "completed"))
    row = await service.lock_job(db, job_id)
    assert row.state == JobState.OPEN
    assert await _history(db, job_id) == [("publish", "client")]


def test_every_transition_of_the_table_is_walked_by_these_tests() -> None:
    walked = {"publish", "hire", "complete", "cancel", "expire", "reopen"}
    assert {t.name for t in JOB_LIFECYCLE.transitions} == walked


# ---------------------------------------------------------------- expiry on the test clock


async def _headers(live: LiveApp, email: str) -> dict[str, str]:
    """A fresh sign-in: access tokens do not survive a clock moved by days."""
    response = await login(live.client, email)
    assert response.status_code == 200, response.text
    return bearer(response.json())


async def _state(live: LiveApp, email: str, job_id: str) -> dict[str, object]:
    response = await live.client.get(f"{API}/jobs/{job_id}", headers=await _headers(live, email))
    assert response.status_code == 200, response.text
    data: dict[str, object] = response.json()
    return data


async def test_open_job_expires_after_30_days_and_can_reopen(live: LiveApp) -> None:
    owner = await make_client(live.client)
    job = await post_job(live.client, owner.headers)
    advance = f"{API}/dev/clock"

    assert (await live.client.post(advance, json={"advance": "P29DT23H"})).status_code == 200
    await live.drain()
    assert (await _state(live, owner.email, job["id"]))["state"] == "open"
    assert not [m for m in live.sent if "expired" in m.get("subject", "")]

    await live.client.post(advance, json={"advance": "PT2H"})
    await live.drain()
    expired = await _state(live, owner.email, job["id"])
    assert expired["state"] == "expired"
    assert expired["actions"] == ["reopen"]
    mails = [m for m in live.sent if m["to"] == owner.email and "expired" in m["subject"]]
    assert len(mails) == 1
    assert f"/jobs/{job['id']}" in mails[0]["body"]

    reopened = await live.client.post(
        f"{API}/jobs/{job['id']}/reopen", headers=await _headers(live, owner.email)
    )
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["state"] == "open"
    # The desired dates passed while the job was expired: dropped, to be set again.
    assert job["start_date"] is not None
    assert reopened.json()["start_date"] is None
    assert reopened.json()["end_date"] is None
    reopened_at = datetime.fromisoformat(reopened.json()["published_at"])
    assert datetime.fromisoformat(reopened.json()["expires_at"]) == reopened_at + timedelta(days=30)
    await live.client.post(advance, json={"advance": "P29D"})
    await live.drain()
    assert (await _state(live, owner.email, job["id"]))["state"] == "open"
    await live.client.post(advance, json={"advance": "P1DT1M"})
    await live.drain()
    assert (await _state(live, owner.email, job["id"]))["state"] == "expired"


async def test_a_hired_job_does_not_expire(live: LiveApp) -> None:
    from mesteri.kit.db import unit_of_work

    owner = await make_client(live.client)
    job = await post_job(live.client, owner.headers)
    async with unit_of_work(live.app.state.write_sessions) as session:
        pro = await make_verified_pro(live.client, session)
    async with unit_of_work(live.app.state.write_sessions) as session:
        await service.do_hire(
            session, await service.lock_job(session, uuid.UUID(job["id"])), pro.pro_id
        )
    await live.client.post(f"{API}/dev/clock", json={"advance": "P31D"})
    await live.drain()
    assert (await _state(live, owner.email, job["id"]))["state"] == "in_progress"
