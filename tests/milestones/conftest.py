"""A signed contract on the committed path, with a client, a pro, finance staff and the
sandbox checkout: the milestone lifecycle is tested here on its own; the whole journey
from posting a job is tested in tests/e2e."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from mesteri.contracts.models import Contract, ContractState
from mesteri.kit import clock
from mesteri.kit.db import unit_of_work
from mesteri.kit.ids import new_id
from mesteri.milestones import service
from mesteri.milestones.schemas import MilestoneTerms
from tests.conftest import LiveApp
from tests.fixtures.accounts import (
    bearer,
    create_staff,
    login,
    register,
)
from tests.fixtures.market import insert_job
from tests.fixtures.pros import BUCHAREST, PLUMBING
from tests.payments.conftest import API, Desk

__all__ = ["API", "Room", "room"]


@dataclass
class Room(Desk):
    """The escrow desk plus contracts between its client and pro."""

    pro_id: uuid.UUID | None = None

    async def contract(
        self, *amounts: int, signed: bool = True, due: date | None = None
    ) -> list[dict[str, Any]]:
        """A contract with one milestone per amount (awaiting funding once ``signed``)."""
        client_id = uuid.UUID(self.client["user"]["id"])
        pro_user_id = uuid.UUID(self.pro["user"]["id"])
        assert self.pro_id is not None
        async with unit_of_work(self.live.app.state.write_sessions) as session:
            job = await insert_job(session, client_id, state="in_progress")
            proposal_id = new_id()
            await session.execute(
                text(
                    "INSERT INTO proposals (id, job_id, pro_id, pro_user_id, client_id, state, "
                    "price, currency, message, questions, milestones, revision, expires_at, "
                    "created_at, updated_at) VALUES (:id, :job, :pro, :pro_user, :client, "
                    "'accepted', :price, 'RON', '', '[]', '[]', 1, now(), now(), now())"
                ),
                {
                    "id": proposal_id,
                    "job": job.id,
                    "pro": self.pro_id,
                    "pro_user": pro_user_id,
                    "client": client_id,
                    "price": sum(amounts),
                },
            )
            now = clock.now()
            contract = Contract(
                id=new_id(),
                job_id=job.id,
                proposal_id=proposal_id,
                client_id=client_id,
                pro_id=self.pro_id,
                pro_user_id=pro_user_id,
                market="ro",
                category_id=PLUMBING,
                title=job.title,
                currency="RON",
                price=sum(amounts),
                state=ContractState.ACTIVE if signed else ContractState.AWAITING_SIGNATURES,
                latest_version=1,
                created_at=now,
                updated_at=now,
            )
            session.add(contract)
            await session.flush()
            parties = service.Parties(contract.id, job.id, client_id, pro_user_id, "RON")
            due_date = due or clock.now().date() + timedelta(days=10)
            terms = [
                MilestoneTerms(
                    title=f"Etapa {i}", amount=a, due_date=due_date, dod=["Curat", "Funcțional"]
                )
                for i, a in enumerate(amounts, start=1)
            ]
            await service.do_create_for_contract(session, parties, terms)
            if signed:
                await service.do_activate(session, contract.id)
            contract_id = contract.id
        listed = await self.http.get(
            f"{API}/contracts/{contract_id}/milestones", headers=bearer(self.client)
        )
        assert listed.status_code == 200, listed.text
        items: list[dict[str, Any]] = listed.json()["items"]
        return items

    async def advance(self, duration: str) -> None:
        """Move the test clock (running due timers). Sessions end after 30 days, so the
        client and the pro sign in again, as they would. (Staff codes follow the wall
        clock: tests act as staff before moving the clock.)"""
        moved = await self.http.post(f"{API}/dev/clock", json={"advance": duration})
        assert moved.status_code == 200, moved.text
        for auth in (self.client, self.pro):
            signed_in = await login(self.http, auth["user"]["email"])
            assert signed_in.status_code == 200, signed_in.text
            auth["tokens"] = signed_in.json()["tokens"]

    async def act(
        self, milestone: dict[str, Any], name: str, auth: dict[str, Any], **body: Any
    ) -> Any:
        return await self.http.post(
            f"{API}/milestones/{milestone['id']}/transitions/{name}",
            json=body or None,
            headers=bearer(auth),
        )

    async def ok(
        self, milestone: dict[str, Any], name: str, auth: dict[str, Any], **body: Any
    ) -> dict[str, Any]:
        response = await self.act(milestone, name, auth, **body)
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    async def fund(self, milestone: dict[str, Any], **pay: Any) -> dict[str, Any]:
        """Start the checkout as the client and pay it; returns the milestone as it is then."""
        started = await self.ok(milestone, "fund", self.client)
        await self.pay(started["checkout_url"], **pay)
        return await self.get(milestone)

    async def get(self, milestone: dict[str, Any], auth: dict[str, Any] | None = None) -> Any:
        response = await self.http.get(
            f"{API}/milestones/{milestone['id']}", headers=bearer(auth or self.client)
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def deliver(self, milestone: dict[str, Any]) -> dict[str, Any]:
        return await self.ok(
            milestone, "submit", self.pro, note="Gata: montat și probat.", dod_done=[0, 1]
        )


@pytest.fixture
async def room(live: LiveApp) -> Room:
    staff = await create_staff(live.client, live.app.state.write_sessions, roles=("admin",))
    client = await register(live.client, first_name="Ioana", last_name="Marin")
    pro = await register(live.client, role="pro", first_name="Mihai", last_name="Ionescu")
    profile = await live.client.patch(
        f"{API}/pros/me",
        json={
            "display_name": "Mihai Instalatorul",
            "crafts": [{"category_id": str(PLUMBING), "primary": True, "years": 5}],
            "place_id": str(BUCHAREST),
            "radius_km": 25,
        },
        headers=bearer(pro),
    )
    assert profile.status_code == 200, profile.text
    return Room(
        live=live,
        staff=staff,
        client=client,
        pro=pro,
        pro_id=uuid.UUID(profile.json()["id"]),
    )
