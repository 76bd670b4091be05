"""The contact-details reveal (SPEC 4.4): the hired pro and the client get the client's
phone, e-mail and exact address and each reveal is logged; everyone else gets 403 and
no log entry."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import func, select

from mesteri.jobs import service
from mesteri.jobs.models import ContactReveal
from mesteri.kit.audit import AuditEntry
from mesteri.kit.db import WriteSession
from tests.fixtures.jobs import API, post_job
from tests.fixtures.market import Party, insert_proposal, make_client, make_verified_pro
from tests.fixtures.pros import staff_headers


async def _reveals(db: WriteSession, job_id: uuid.UUID) -> list[ContactReveal]:
    rows = await db.scalars(
        select(ContactReveal).where(ContactReveal.job_id == job_id).order_by(ContactReveal.at)
    )
    return list(rows.all())


async def _hired_job(
    client: httpx.AsyncClient, db: WriteSession
) -> tuple[Party, Party, Party, uuid.UUID]:
    owner = await make_client(client, first_name="Ana", last_name="Popescu")
    job = await post_job(client, owner.headers)
    job_id = uuid.UUID(job["id"])
    hired = await make_verified_pro(client, db)
    loser = await make_verified_pro(client, db)
    row = await service.lock_job(db, job_id)
    await insert_proposal(db, row, hired)
    await insert_proposal(db, row, loser)
    await service.do_hire(db, row, hired.pro_id)
    return owner, hired, loser, job_id


async def test_hired_pro_and_client_see_contact_and_each_reveal_is_logged(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    owner, hired, _loser, job_id = await _hired_job(client, db)
    url = f"{API}/jobs/{job_id}/contact"

    as_pro = await client.get(url, headers={**hired.headers, "User-Agent": "PhoneApp/2.1"})
    assert as_pro.status_code == 200, as_pro.text
    me = (await client.get(f"{API}/me", headers=owner.headers)).json()
    assert as_pro.json() == {
        "first_name": "Ana",
        "last_name": "Popescu",
        "email": owner.email,
        "phone": me["phone"],
        "address": "Strada Lipscani 10, ap. 4",
    }
    rows = await _reveals(db, job_id)
    assert len(rows) == 1
    assert rows[0].viewer_id == hired.user_id
    assert rows[0].subject_id == owner.user_id
    assert rows[0].viewer_role == "pro"
    assert rows[0].fields == ["first_name", "last_name", "email", "phone", "address"]
    assert str(rows[0].ip) == "203.0.113.7"
    assert rows[0].user_agent == "PhoneApp/2.1"

    as_client = await client.get(url, headers=owner.headers)
    assert as_client.status_code == 200
    assert as_client.json()["address"] == "Strada Lipscani 10, ap. 4"
    rows = await _reveals(db, job_id)
    assert [(r.viewer_id, r.viewer_role) for r in rows] == [
        (hired.user_id, "pro"),
        (owner.user_id, "client"),
    ]

    log = await client.get(f"{API}/jobs/{job_id}/contact-reveals", headers=owner.headers)
    assert log.status_code == 200
    assert [(i["viewer_role"], i["viewer_name"]) for i in log.json()["items"]] == [
        ("client", "Ana P."),
        ("pro", "Mihai I."),
    ]
    assert (
        await client.get(f"{API}/jobs/{job_id}/contact-reveals", headers=hired.headers)
    ).status_code == 404


async def test_everyone_else_gets_403_and_no_log_entry(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    _owner, _hired, loser, job_id = await _hired_job(client, db)
    stranger = await make_client(client)
    other_pro = await make_verified_pro(client, db)
    url = f"{API}/jobs/{job_id}/contact"
    for party in (loser, stranger, other_pro):
        response = await client.get(url, headers=party.headers)
        assert response.status_code == 403
        assert response.json()["code"] == "contact_forbidden"
        assert "Popescu" not in response.text
    assert (await client.get(url)).status_code == 401
    assert await _reveals(db, job_id) == []
    missing = await client.get(f"{API}/jobs/{uuid.uuid4()}/contact", headers=stranger.headers)
    assert missing.status_code == 404


async def test_before_hire_not_even_the_proposer_sees_it(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    owner = await make_client(client)
    job = await post_job(client, owner.headers)
    pro = await make_verified_pro(client, db)
    row = await service.lock_job(db, uuid.UUID(job["id"]))
    await insert_proposal(db, row, pro)
    refused = await client.get(f"{API}/jobs/{job['id']}/contact", headers=pro.headers)
    assert refused.status_code == 403
    assert await _reveals(db, row.id) == []


async def test_staff_with_two_factor_are_logged_too(
    client: httpx.AsyncClient, db: WriteSession
) -> None:
    _owner, _hired, _loser, job_id = await _hired_job(client, db)
    staff = await staff_headers(client, db)
    response = await client.get(f"{API}/jobs/{job_id}/contact", headers=staff)
    assert response.status_code == 200
    rows = await _reveals(db, job_id)
    assert [r.viewer_role for r in rows] == ["admin"]
    audited = await db.scalar(
        select(func.count()).where(
            AuditEntry.action == "job.contact_viewed", AuditEntry.subject_id == job_id
        )
    )
    assert audited == 1
    log = await client.get(f"{API}/jobs/{job_id}/contact-reveals", headers=staff)
    assert [i["viewer_role"] for i in log.json()["items"]] == ["admin"]


async def test_a_withdrawn_hire_loses_access(client: httpx.AsyncClient, db: WriteSession) -> None:
    from mesteri.contracts.events import ContractEnded
    from mesteri.kit import events

    _owner, hired, _loser, job_id = await _hired_job(client, db)
    await events.publish(db, ContractEnded(uuid.uuid4(), job_id, "withdrawn"))
    response = await client.get(f"{API}/jobs/{job_id}/contact", headers=hired.headers)
    assert response.status_code == 403
    assert await _reveals(db, job_id) == []
