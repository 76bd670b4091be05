"""Proposal expiry on the test clock, with real commits and the job runner: a proposal
expires 14 days after its latest terms (not on day 13), its author is told, and new
terms (an edit, a counter-offer) move the deadline."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text

from mesteri.kit.db import unit_of_work
from tests.conftest import LiveApp
from tests.fixtures.accounts import bearer, login
from tests.fixtures.market import Party, insert_job, make_client, make_verified_pro
from tests.fixtures.proposals import milestones, send_proposal

API = "/api/v1"


async def _setup(live: LiveApp) -> tuple[Party, Party, uuid.UUID]:
    owner = await make_client(live.client)
    async with unit_of_work(live.app.state.write_sessions) as session:
        pro = await make_verified_pro(live.client, session)
        job = await insert_job(session, owner.user_id)
        job_id = job.id
    return owner, pro, job_id


async def _advance(live: LiveApp, period: str) -> None:
    response = await live.client.post(f"{API}/dev/clock", json={"advance": period})
    assert response.status_code == 200, response.text
    await live.drain()


async def _state(live: LiveApp, proposal_id: str) -> str:
    async with live.engine.connect() as conn:
        value = await conn.scalar(
            text("SELECT state FROM proposals WHERE id = :id"), {"id": uuid.UUID(proposal_id)}
        )
    return str(value)


async def _expired_mail(live: LiveApp, to: str) -> list[dict[str, Any]]:
    response = await live.client.get(f"{API}/dev/outbox", params={"to": to})
    assert response.status_code == 200, response.text
    return [m for m in response.json()["items"] if m["kind"] == "proposal.expired"]


async def _headers(live: LiveApp, who: Party) -> dict[str, str]:
    """A fresh sign-in: access tokens do not outlive days on the test clock."""
    response = await login(live.client, who.email)
    assert response.status_code == 200, response.text
    return bearer(response.json())


async def test_expires_on_day_14_not_13_and_the_pro_is_told(live: LiveApp) -> None:
    _owner, pro, job_id = await _setup(live)
    sent = await send_proposal(live.client, pro.headers, job_id)
    await _advance(live, "P13D")
    assert await _state(live, sent["id"]) == "submitted"
    assert await _expired_mail(live, pro.email) == []
    await _advance(live, "P1D")
    assert await _state(live, sent["id"]) == "expired"
    mail = await _expired_mail(live, pro.email)
    assert len(mail) == 1
    assert "14 days" in mail[0]["body"]
    async with live.engine.connect() as conn:
        actor = await conn.scalar(
            text(
                "SELECT actor FROM state_transitions "
                "WHERE entity_id = :id AND transition = 'expire'"
            ),
            {"id": uuid.UUID(sent["id"])},
        )
    assert actor == "system"
    # Expired, the pro may propose again (no live proposal is left).
    again = await send_proposal(live.client, await _headers(live, pro), job_id)
    assert again["state"] == "submitted"


async def test_an_edit_moves_the_expiry(live: LiveApp) -> None:
    _owner, pro, job_id = await _setup(live)
    sent = await send_proposal(live.client, pro.headers, job_id)
    await _advance(live, "P10D")
    edited = await live.client.patch(
        f"{API}/proposals/{sent['id']}",
        json={"price": 110000, "milestones": milestones(110000)},
        headers=await _headers(live, pro),
    )
    assert edited.status_code == 200, edited.text
    await _advance(live, "P4D")  # day 14 of the first terms, day 4 of the new ones
    assert await _state(live, sent["id"]) == "submitted"
    await _advance(live, "P9D")  # day 13 of the new terms
    assert await _state(live, sent["id"]) == "submitted"
    await _advance(live, "P1D")
    assert await _state(live, sent["id"]) == "expired"
    assert len(await _expired_mail(live, pro.email)) == 1


async def test_a_counter_offer_moves_the_expiry(live: LiveApp) -> None:
    owner, pro, job_id = await _setup(live)
    sent = await send_proposal(live.client, pro.headers, job_id)
    await _advance(live, "P10D")
    countered = await live.client.post(
        f"{API}/proposals/{sent['id']}/counter",
        json={"price": 90000, "milestones": milestones(90000)},
        headers=await _headers(live, owner),
    )
    assert countered.status_code == 200, countered.text
    await _advance(live, "P4D")
    assert await _state(live, sent["id"]) == "countered"
    await _advance(live, "P10D")
    assert await _state(live, sent["id"]) == "expired"
