"""The whole journey through the JSON API, on the committed path with the sandbox
provider: a client posts a job, a verified pro proposes, the client accepts, both sign,
the client funds the first milestone through checkout and webhook, the pro delivers, the
client accepts, the pro is paid (pending, then available after the hold period), and the
job completes when its last milestone is paid."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from mesteri.kit import clock
from tests.fixtures.accounts import bearer
from tests.fixtures.market import two_milestones
from tests.fixtures.pros import BUCHAREST, PLUMBING
from tests.milestones.conftest import API, Room

pytestmark = pytest.mark.asyncio


async def _verify(room: Room) -> None:
    async with room.live.engine.begin() as conn:
        await conn.execute(
            text("UPDATE pro_profiles SET verification_state = 'verified' WHERE id = :id"),
            {"id": room.pro_id},
        )


async def _post(room: Room, path: str, auth: dict[str, Any], body: Any = None, **kw: Any) -> Any:
    response = await room.http.post(f"{API}{path}", json=body, headers=bearer(auth), **kw)
    assert response.status_code in (200, 201), f"{path}: {response.text}"
    return response.json()


async def test_post_propose_hire_sign_fund_deliver_accept_and_get_paid(room: Room) -> None:
    await _verify(room)
    c, p = room.client, room.pro
    start = (clock.now() + timedelta(days=5)).date().isoformat()
    job = await _post(
        room,
        "/jobs",
        c,
        {
            "title": "Înlocuire baterie și sifon la baie",
            "description": "Bateria de la cadă curge. Vrem una nouă, montată cu sifon nou.",
            "category_id": str(PLUMBING),
            "place_id": str(BUCHAREST),
            "address": "Strada Lipscani 12, ap. 4",
            "budget_type": "fixed",
            "budget_min": 60_000,
            "budget_max": 150_000,
            "currency": "RON",
            "start_date": start,
            "publish": True,
        },
    )
    assert job["state"] == "open"

    # The pro finds it on the lead board, without the client's contact details.
    leads = await room.http.get(f"{API}/leads", headers=bearer(p))
    assert leads.status_code == 200, leads.text
    lead = next(item for item in leads.json()["items"] if item["id"] == job["id"])
    assert "Strada Lipscani" not in leads.text
    assert c["user"]["email"] not in leads.text
    assert lead["client"]["display_name"] == "Ioana M."
    assert (
        await room.http.get(f"{API}/jobs/{job['id']}/contact", headers=bearer(p))
    ).status_code == 403

    proposal = await _post(
        room,
        f"/jobs/{job['id']}/proposals",
        p,
        {
            "price": 100_000,
            "currency": "RON",
            "message": "Pot veni luni dimineață.",
            "duration_days": 17,
            "milestones": two_milestones(100_000),
        },
    )
    accepted = await _post(room, f"/proposals/{proposal['id']}/accept", c)
    contract_id = accepted["contract_id"]

    # Hired: now the pro sees the contact details, and the reveal is logged.
    contact = await room.http.get(f"{API}/jobs/{job['id']}/contact", headers=bearer(p))
    assert contact.status_code == 200, contact.text
    assert contact.json()["address"] == "Strada Lipscani 12, ap. 4"

    contract = (await room.http.get(f"{API}/contracts/{contract_id}", headers=bearer(c))).json()
    assert contract["state"] == "awaiting_signatures"
    sha = contract["versions"][-1]["document_sha256"]
    pdf = await room.http.get(f"{API}/contracts/{contract_id}/document.pdf", headers=bearer(p))
    assert pdf.status_code == 200
    assert pdf.content.startswith(b"%PDF")
    await _post(
        room,
        f"/contracts/{contract_id}/sign",
        c,
        {"full_name": "Ioana Marin", "agree": True, "document_sha256": sha},
    )
    signed = await _post(
        room,
        f"/contracts/{contract_id}/sign",
        p,
        {"full_name": "Mihai Ionescu", "agree": True, "document_sha256": sha},
    )
    assert signed["state"] == "active"

    milestones = (
        await room.http.get(f"{API}/contracts/{contract_id}/milestones", headers=bearer(c))
    ).json()["items"]
    assert [m["state"] for m in milestones] == ["awaiting_funding", "awaiting_funding"]
    first, second = milestones

    funding = await room.http.post(
        f"{API}/milestones/{first['id']}/transitions/fund",
        headers={**bearer(c), "Idempotency-Key": f"fund-{first['id']}"},
    )
    assert funding.status_code == 200, funding.text
    assert set(funding.json()) >= {"payment_id", "checkout_url"}
    # Not funded until the provider's webhook confirms the payment.
    assert (await room.get(first))["state"] == "awaiting_funding"
    await room.pay(funding.json()["checkout_url"])
    assert (await room.get(first))["state"] == "funded"

    await room.deliver(first)
    assert (await room.ok(first, "accept", c))["state"] == "released"
    wallet = await room.wallet()
    assert wallet["pending"] == 27_000  # 30 000 less the 10 % platform fee

    # The second milestone, and the job completes.
    await room.fund(second)
    await room.deliver(second)
    await room.ok(second, "accept", c)
    assert (await room.wallet())["pending"] == 90_000
    done = (await room.http.get(f"{API}/jobs/{job['id']}", headers=bearer(c))).json()
    assert done["state"] == "completed"
    contract = (await room.http.get(f"{API}/contracts/{contract_id}", headers=bearer(c))).json()
    assert contract["state"] == "completed"

    await room.advance("P7D")
    await room.live.drain()
    wallet = await room.wallet()
    assert (wallet["pending"], wallet["available"]) == (0, 90_000)
