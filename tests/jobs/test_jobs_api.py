"""Jobs API: post (draft or published), publish, edit, cancel, reopen rules, every
validation error with its field, visibility (owner, pros, strangers, staff) and invites."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from mesteri.catalog.reference import place_id
from mesteri.jobs import service
from mesteri.jobs.errors import JobNotFoundError, JobNotOpenError
from mesteri.jobs.events import JobClosed
from mesteri.jobs.models import Job
from mesteri.kit import events
from mesteri.kit.db import WriteSession
from mesteri.kit.jobs import OutboxEntry
from mesteri.kit.statemachine import StateTransitionRecord
from tests.fixtures.jobs import API, job_body, post_job
from tests.fixtures.market import make_client, make_verified_pro
from tests.fixtures.pros import make_pro, png_bytes, staff_headers, upload

TEL_AVIV = place_id("IL", "Tel Aviv-Yafo")


@pytest.fixture
def closed_events() -> Iterator[list[JobClosed]]:
    """Records the ``JobClosed`` events published while the test runs."""
    seen: list[JobClosed] = []

    async def record(_session: Any, event: JobClosed) -> None:
        seen.append(event)

    events.subscribe(JobClosed)(record)
    yield seen
    events._HANDLERS[JobClosed].remove(record)


async def _jobs_of(db: WriteSession, client_id: uuid.UUID) -> int:
    return int(await db.scalar(select(func.count()).where(Job.client_id == client_id)) or 0)


# ---------------------------------------------------------------- create and publish


async def test_draft_then_publish_starts_the_expiry_timer(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    owner = await make_client(client)
    draft = await post_job(client, owner.headers, publish=False)
    assert draft["state"] == "draft"
    assert draft["published_at"] is None
    assert draft["expires_at"] is None
    assert draft["address"] == "Strada Lipscani 10, ap. 4"
    assert draft["client"] == {"display_name": "Ana P."}
    assert draft["actions"] == ["publish", "cancel", "edit"]
    job_id = uuid.UUID(draft["id"])
    # The address is stored encrypted, bound to the job.
    row = await db.get(Job, job_id)
    assert row is not None
    assert row.address_enc is not None
    assert "Lipscani" not in row.address_enc
    timers = select(func.count()).where(OutboxEntry.args["entity_id"].astext == str(job_id))
    assert await db.scalar(timers) == 0

    published = await client.post(f"{API}/jobs/{job_id}/publish", headers=owner.headers)
    assert published.status_code == 200, published.text
    body = published.json()
    assert body["state"] == "open"
    published_at = datetime.fromisoformat(body["published_at"])
    assert datetime.fromisoformat(body["expires_at"]) == published_at + timedelta(days=30)
    timer = (
        await db.scalars(
            select(OutboxEntry).where(OutboxEntry.args["entity_id"].astext == str(job_id))
        )
    ).one()
    assert timer.task_name == "statemachine.fire_timer"
    assert timer.args["transition"] == "expire"
    assert timer.run_at == published_at + timedelta(days=30)
    history = (
        await db.scalars(
            select(StateTransitionRecord.transition).where(
                StateTransitionRecord.entity_id == job_id
            )
        )
    ).all()
    assert history == ["publish"]

    again = await client.post(f"{API}/jobs/{job_id}/publish", headers=owner.headers)
    assert again.status_code == 409
    assert again.json()["code"] == "transition_not_allowed"


async def test_publish_at_once_and_template_fills_the_plan(client: httpx.AsyncClient) -> None:
    owner = await make_client(client)
    job = await post_job(client, owner.headers, template_id="bathroom-renovation")
    assert job["state"] == "open"
    assert job["template_id"] == "bathroom-renovation"
    plan = job["milestone_plan"]
    assert [m["share"] for m in plan] == [20, 30, 30, 20]
    assert plan[0]["title"] == "Strip-out and preparation"
    assert all(3 <= len(m["dod"]) <= 6 for m in plan)

    own_plan = [{"title": "Everything", "share": 100, "dod": ["Done", " "]}]
    custom = await post_job(
        client, owner.headers, template_id="bathroom-renovation", milestone_plan=own_plan
    )
    assert custom["milestone_plan"] == [{"title": "Everything", "share": 100, "dod": ["Done"]}]


async def test_market_follows_the_place(client: httpx.AsyncClient) -> None:
    owner = await make_client(client)
    job = await post_job(
        client,
        owner.headers,
        place_id=str(TEL_AVIV),
        currency="ILS",
        start_date=None,
        end_date=None,
    )
    assert job["market"] == "il"
    assert job["place"]["name"] == "Tel Aviv-Yafo"
    wrong = await client.post(
        f"{API}/jobs",
        json=job_body(place_id=str(TEL_AVIV), currency="RON"),
        headers=owner.headers,
    )
    assert wrong.status_code == 422
    assert wrong.json()["code"] == "currency_mismatch"
    assert wrong.json()["field"] == "currency"


def _days(n: int) -> str:
    return (date.today() + timedelta(days=n)).isoformat()


INVALID: list[tuple[dict[str, Any], str, str]] = [
    ({"title": "ab"}, "validation_error", "title"),
    ({"description": "short"}, "validation_error", "description"),
    ({"budget_type": "daily"}, "validation_error", "budget_type"),
    ({"budget_min": -1}, "validation_error", "budget_min"),
    ({"currency": "lei"}, "validation_error", "currency"),
    ({"nickname": "x"}, "validation_error", "nickname"),
    ({"category_id": str(uuid.uuid4())}, "invalid_category", "category_id"),
    ({"place_id": str(uuid.uuid4())}, "invalid_place", "place_id"),
    ({"currency": "EUR"}, "currency_mismatch", "currency"),
    ({"budget_min": 4999, "budget_max": 9000}, "budget_too_low", "budget_min"),
    ({"budget_min": 90000, "budget_max": 80000}, "budget_range", "budget_max"),
    ({"start_date": _days(-2), "end_date": None}, "date_in_past", "start_date"),
    ({"start_date": None, "end_date": _days(-1)}, "date_in_past", "end_date"),
    ({"start_date": _days(10), "end_date": _days(9)}, "date_order", "end_date"),
    ({"template_id": "moon-landing"}, "unknown_template", "template_id"),
    (
        {"milestone_plan": [{"title": "A", "share": 50}, {"title": "B", "share": 40}]},
        "invalid_milestone_plan",
        "milestone_plan",
    ),
    ({"milestone_plan": [{"title": "A", "share": 0}]}, "validation_error", "milestone_plan"),
]


@pytest.mark.parametrize(("overrides", "code", "field"), INVALID)
async def test_invalid_jobs_are_refused_naming_the_field(
    client: httpx.AsyncClient,
    db: WriteSession,
    overrides: dict[str, Any],
    code: str,
    field: str,
) -> None:
    owner = await make_client(client)
    response = await client.post(f"{API}/jobs", json=job_body(**overrides), headers=owner.headers)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == code
    if code == "validation_error":
        assert any(e["field"].startswith(field) for e in problem["errors"]), problem
    else:
        assert problem["field"] == field
    assert await _jobs_of(db, owner.user_id) == 0


async def test_jobs_need_a_signed_in_caller(client: httpx.AsyncClient) -> None:
    response = await client.post(f"{API}/jobs", json=job_body())
    assert response.status_code == 401


async def test_attachments_must_be_the_clients_own_uploads(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    owner = await make_client(client)
    mine = await upload(
        client,
        owner.headers,
        png_bytes(),
        purpose="attachment",
        content_type="image/png",
        filename="leak.png",
    )
    assert mine.status_code == 200, mine.text
    job = await post_job(client, owner.headers, attachment_ids=[mine.json()["id"]])
    assert job["attachment_ids"] == [mine.json()["id"]]

    other = await make_client(client)
    stolen = await client.post(
        f"{API}/jobs", json=job_body(attachment_ids=[mine.json()["id"]]), headers=other.headers
    )
    assert stolen.status_code == 403
    assert stolen.json()["code"] == "upload_forbidden"
    assert await _jobs_of(db, other.user_id) == 0


# ---------------------------------------------------------------- visibility


def _text(response: httpx.Response) -> str:
    return json.dumps(response.json(), ensure_ascii=False)


async def test_who_sees_a_job(client: httpx.AsyncClient, db: WriteSession) -> None:
    owner = await make_client(client, first_name="Ana", last_name="Popescu")
    job = await post_job(client, owner.headers)
    draft = await post_job(client, owner.headers, publish=False)
    pro = await make_verified_pro(client, db)
    stranger = await make_client(client)

    seen = await client.get(f"{API}/jobs/{job['id']}", headers=pro.headers)
    assert seen.status_code == 200
    body = seen.json()
    assert body["client"] == {"display_name": "Ana P."}
    assert body["address"] is None
    assert body["is_owner"] is False
    assert body["actions"] == ["propose"]
    assert body["invited"] is False
    text = _text(seen)
    for secret in ("Popescu", "Lipscani", owner.email, "email", "phone"):
        assert secret not in text

    assert (await client.get(f"{API}/jobs/{draft['id']}", headers=pro.headers)).status_code == 404
    for job_id in (job["id"], draft["id"], str(uuid.uuid4())):
        response = await client.get(f"{API}/jobs/{job_id}", headers=stranger.headers)
        assert response.status_code == 404
        assert response.json()["code"] == "job_not_found"

    staff = await staff_headers(client, db)
    as_staff = await client.get(f"{API}/jobs/{job['id']}", headers=staff)
    assert as_staff.status_code == 200
    assert as_staff.json()["address"] is None
    assert "Popescu" not in _text(as_staff)

    # Once the job is cancelled it leaves the board: an uninvited pro no longer sees it.
    cancelled = await client.post(f"{API}/jobs/{job['id']}/cancel", headers=owner.headers)
    assert cancelled.status_code == 200
    assert (await client.get(f"{API}/jobs/{job['id']}", headers=pro.headers)).status_code == 404


async def test_hired_and_invited_pros_keep_seeing_the_job(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    owner = await make_client(client)
    job = await post_job(client, owner.headers)
    hired = await make_verified_pro(client, db)
    invited = await make_verified_pro(client, db)
    other = await make_verified_pro(client, db)
    answer = await client.post(
        f"{API}/jobs/{job['id']}/invites",
        json={"pro_ids": [str(invited.pro_id)]},
        headers=owner.headers,
    )
    assert answer.status_code == 200, answer.text
    locked = await service.lock_job(db, uuid.UUID(job["id"]))
    await service.do_hire(db, locked, hired.pro_id)

    as_hired = await client.get(f"{API}/jobs/{job['id']}", headers=hired.headers)
    assert as_hired.status_code == 200
    assert as_hired.json()["state"] == "in_progress"
    assert as_hired.json()["actions"] == []
    as_invited = await client.get(f"{API}/jobs/{job['id']}", headers=invited.headers)
    assert as_invited.status_code == 200
    assert as_invited.json()["invited"] is True
    assert (await client.get(f"{API}/jobs/{job['id']}", headers=other.headers)).status_code == 404


# ---------------------------------------------------------------- edit, cancel, list


async def test_owner_edits_open_jobs_only(client: httpx.AsyncClient, db: WriteSession) -> None:
    owner = await make_client(client)
    job = await post_job(client, owner.headers)
    url = f"{API}/jobs/{job['id']}"
    changed = await client.patch(
        url, json={"title": "Baterie nouă la baie", "budget_max": 200000}, headers=owner.headers
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["title"] == "Baterie nouă la baie"
    assert changed.json()["budget_max"] == 200000
    assert changed.json()["address"] == "Strada Lipscani 10, ap. 4"

    bad = await client.patch(url, json={"budget_max": 40000}, headers=owner.headers)
    assert bad.status_code == 422
    assert bad.json()["field"] == "budget_max"
    past = await client.patch(url, json={"start_date": _days(-3)}, headers=owner.headers)
    assert past.status_code == 422
    assert past.json()["code"] == "date_in_past"
    row = await db.get(Job, uuid.UUID(job["id"]))
    assert row is not None
    await db.refresh(row)
    assert row.budget_max == 200000

    no_address = await client.patch(url, json={"address": None}, headers=owner.headers)
    assert no_address.json()["address"] is None

    stranger = await make_client(client)
    hidden = await client.patch(url, json={"title": "Mine now"}, headers=stranger.headers)
    assert hidden.status_code == 404

    await client.post(f"{url}/cancel", headers=owner.headers)
    late = await client.patch(url, json={"title": "Too late"}, headers=owner.headers)
    assert late.status_code == 409
    assert late.json()["code"] == "job_not_editable"


async def test_cancel_announces_job_closed(
    client: httpx.AsyncClient, db: WriteSession, closed_events: list[JobClosed]
) -> None:
    owner = await make_client(client)
    job = await post_job(client, owner.headers)
    stranger = await make_client(client)
    url = f"{API}/jobs/{job['id']}/cancel"

    refused = await client.post(url, headers=stranger.headers)
    assert refused.status_code == 404
    assert closed_events == []

    cancelled = await client.post(url, headers=owner.headers)
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["actions"] == []
    assert closed_events == [JobClosed(uuid.UUID(job["id"]), "cancelled")]

    again = await client.post(url, headers=owner.headers)
    assert again.status_code == 409
    assert len(closed_events) == 1


async def test_a_job_in_progress_cannot_be_cancelled_by_its_client(
    client: httpx.AsyncClient, db: WriteSession, closed_events: list[JobClosed]
) -> None:
    owner = await make_client(client)
    pro = await make_verified_pro(client, db)
    job = await post_job(client, owner.headers)
    await service.do_hire(db, await service.lock_job(db, uuid.UUID(job["id"])), pro.pro_id)
    refused = await client.post(f"{API}/jobs/{job['id']}/cancel", headers=owner.headers)
    assert refused.status_code == 409
    assert refused.json()["code"] == "transition_not_allowed"
    assert closed_events == []
    reopen = await client.post(f"{API}/jobs/{job['id']}/reopen", headers=owner.headers)
    assert reopen.status_code == 409


async def test_staff_cancel_is_audited(client: httpx.AsyncClient, db: WriteSession) -> None:
    from mesteri.kit.audit import AuditEntry

    owner = await make_client(client)
    job = await post_job(client, owner.headers)
    staff = await staff_headers(client, db)
    cancelled = await client.post(f"{API}/jobs/{job['id']}/cancel", headers=staff)
    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    entry = await db.scalar(select(AuditEntry).where(AuditEntry.subject_id == uuid.UUID(job["id"])))
    assert entry is not None
    assert entry.action == "job.cancelled"


async def test_my_jobs_pages_and_filters(client: httpx.AsyncClient) -> None:
    owner = await make_client(client)
    other = await make_client(client)
    await post_job(client, other.headers)
    made = [await post_job(client, owner.headers, publish=i != 1) for i in range(3)]
    first = await client.get(f"{API}/jobs", params={"limit": 2}, headers=owner.headers)
    assert first.status_code == 200
    page1 = first.json()
    assert [j["id"] for j in page1["items"]] == [made[2]["id"], made[1]["id"]]
    second = await client.get(
        f"{API}/jobs", params={"limit": 2, "cursor": page1["next_cursor"]}, headers=owner.headers
    )
    assert [j["id"] for j in second.json()["items"]] == [made[0]["id"]]
    assert second.json()["next_cursor"] is None
    drafts = await client.get(f"{API}/jobs", params={"state": "draft"}, headers=owner.headers)
    assert [j["id"] for j in drafts.json()["items"]] == [made[1]["id"]]
    wrong = await client.get(f"{API}/jobs", params={"state": "lost"}, headers=owner.headers)
    assert wrong.status_code == 422


# ---------------------------------------------------------------- invites


async def _outbox(client: httpx.AsyncClient, to: str, kind: str) -> list[dict[str, Any]]:
    response = await client.get(f"{API}/dev/outbox", params={"to": to})
    assert response.status_code == 200
    return [m for m in response.json()["items"] if m["kind"] == kind]


async def test_invites_are_idempotent_and_email_once(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    owner = await make_client(client)
    job = await post_job(client, owner.headers)
    pro = await make_verified_pro(client, db)
    url = f"{API}/jobs/{job['id']}/invites"
    body = {"pro_ids": [str(pro.pro_id)], "message": "Am văzut lucrările dumneavoastră."}

    first = await client.post(url, json=body, headers=owner.headers)
    assert first.status_code == 200, first.text
    assert [i["pro_id"] for i in first.json()["items"]] == [str(pro.pro_id)]
    assert first.json()["items"][0]["display_name"] == "Mihai Instalatorul"
    again = await client.post(url, json=body, headers=owner.headers)
    assert again.status_code == 200
    assert len(again.json()["items"]) == 1
    mails = await _outbox(client, pro.email, "job.invited")
    assert len(mails) == 1
    assert job["title"] in mails[0]["body"]
    assert f"/jobs/{job['id']}" in mails[0]["body"]
    listed = await client.get(url, headers=owner.headers)
    assert [i["pro_id"] for i in listed.json()["items"]] == [str(pro.pro_id)]
    assert await service.is_invited(db, uuid.UUID(job["id"]), pro.pro_id)

    assert (await client.get(url, headers=pro.headers)).status_code == 404


async def test_invite_refusals(client: httpx.AsyncClient, db: WriteSession) -> None:
    owner = await make_client(client)
    job = await post_job(client, owner.headers)
    url = f"{API}/jobs/{job['id']}/invites"
    unknown = await client.post(url, json={"pro_ids": [str(uuid.uuid4())]}, headers=owner.headers)
    assert unknown.status_code == 422
    assert unknown.json()["code"] == "invalid_invitee"
    assert unknown.json()["field"] == "pro_ids"
    empty = await client.post(url, json={"pro_ids": []}, headers=owner.headers)
    assert empty.status_code == 422

    # A client who is also a pro cannot invite themself.
    both_headers, both_profile = await make_pro(client)
    own = await post_job(client, both_headers)
    myself = await client.post(
        f"{API}/jobs/{own['id']}/invites",
        json={"pro_ids": [both_profile["id"]]},
        headers=both_headers,
    )
    assert myself.status_code == 422

    pro = await make_verified_pro(client, db)
    draft = await post_job(client, owner.headers, publish=False)
    closed = await client.post(
        f"{API}/jobs/{draft['id']}/invites",
        json={"pro_ids": [str(pro.pro_id)]},
        headers=owner.headers,
    )
    assert closed.status_code == 409
    assert closed.json()["code"] == "job_not_open"
    stranger = await make_client(client)
    hidden = await client.post(url, json={"pro_ids": [str(pro.pro_id)]}, headers=stranger.headers)
    assert hidden.status_code == 404
    assert await _outbox(client, pro.email, "job.invited") == []


# ---------------------------------------------------------------- service functions


async def test_service_helpers(client: httpx.AsyncClient, db: WriteSession) -> None:
    assert service.client_display_name("Ana", "Popescu") == "Ana P."
    assert service.client_display_name(" Ștefan ", " ionescu") == "Ștefan i."
    assert service.client_display_name("Cher", "") == "Cher"

    owner = await make_client(client, first_name="Ioana", last_name="Dinu")
    job = await post_job(client, owner.headers)
    job_id = uuid.UUID(job["id"])
    row = await service.lock_job(db, job_id)
    service.check_open(row)
    await service.do_count_proposal(db, job_id, 1)
    await service.do_count_proposal(db, job_id, 1)
    await service.do_count_proposal(db, job_id, -1)
    row = await service.lock_job(db, job_id)
    assert row.proposals_count == 1
    summary = await service.job_summary(db, row)
    assert summary["client"] == {"display_name": "Ioana D."}
    assert summary["place"]["name"] == "București"
    text = json.dumps(summary, default=str)
    assert "Dinu" not in text
    assert "Lipscani" not in text
    assert "address" not in summary

    row.state = "cancelled"
    with pytest.raises(JobNotOpenError):
        service.check_open(row)
    with pytest.raises(JobNotFoundError):
        await service.lock_job(db, uuid.uuid4())
