"""Disputes on the committed path: the milestones ``Room`` (a client, a pro, staff with
two-factor, signed contracts and the sandbox checkout) plus helpers for the ladder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import LiveApp
from tests.fixtures.accounts import bearer, create_staff
from tests.milestones.conftest import API, Room
from tests.milestones.conftest import room as room

__all__ = ["API", "Court", "court"]


@dataclass
class Court:
    """The room, with the calls of the dispute desk."""

    room: Room

    @property
    def http(self) -> Any:
        return self.room.http

    @property
    def live(self) -> LiveApp:
        return self.room.live

    async def funded(self, amount: int = 100_000, *, deliver: bool = True) -> dict[str, Any]:
        (m,) = await self.room.contract(amount)
        await self.room.fund(m)
        if deliver:
            await self.room.deliver(m)
        milestone: dict[str, Any] = await self.room.get(m)
        return milestone

    async def open(
        self, milestone: dict[str, Any], auth: dict[str, Any] | None = None, **body: Any
    ) -> Any:
        return await self.http.post(
            f"{API}/milestones/{milestone['id']}/disputes",
            json={"reason": "Robinetul încă picură.", **body},
            headers=bearer(auth or self.room.client),
        )

    async def opened(
        self, held: int = 100_000, *, deliver: bool = True, **body: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        milestone = await self.funded(held, deliver=deliver)
        response = await self.open(milestone, **body)
        assert response.status_code == 201, response.text
        dispute: dict[str, Any] = response.json()
        return milestone, dispute

    async def post(self, path: str, auth: dict[str, Any], body: Any = None) -> Any:
        return await self.http.post(f"{API}{path}", json=body, headers=bearer(auth))

    async def get(self, dispute: dict[str, Any], auth: dict[str, Any] | None = None) -> Any:
        response = await self.http.get(
            f"{API}/disputes/{dispute['id']}", headers=bearer(auth or self.room.client)
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def offer(
        self, dispute: dict[str, Any], auth: dict[str, Any], pro: int, client: int
    ) -> Any:
        return await self.post(
            f"/disputes/{dispute['id']}/offers", auth, {"pro_amount": pro, "client_amount": client}
        )

    async def accept(self, dispute: dict[str, Any], offer: dict[str, Any], auth: Any) -> Any:
        return await self.post(f"/disputes/{dispute['id']}/offers/{offer['id']}/accept", auth)

    async def escalate(self, dispute: dict[str, Any], auth: dict[str, Any]) -> Any:
        return await self.post(f"/disputes/{dispute['id']}/escalate", auth)

    async def resolve(self, dispute: dict[str, Any], auth: dict[str, Any], **body: Any) -> Any:
        return await self.post(
            f"/admin/disputes/{dispute['id']}/resolve", auth, {"note": "Decided.", **body}
        )

    async def new_staff(self, *roles: str) -> dict[str, Any]:
        """Staff signed in now (their two-factor codes follow the wall clock, so after
        the test clock moved a fresh member of staff acts)."""
        return await create_staff(
            self.http, self.live.app.state.write_sessions, roles=roles or ("support",)
        )

    async def scalar(self, sql: str, **params: Any) -> Any:
        async with self.live.engine.connect() as conn:
            return await conn.scalar(text(sql), params)

    async def ledger(self) -> list[tuple[str, int]]:
        """Every ledger account balance: equal before and after means nothing moved."""
        async with self.live.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT id::text, balance FROM ledger_account_balances ORDER BY id")
            )
            return [(r[0], int(r[1])) for r in rows]

    async def refunded(self, hold_id: str) -> int:
        return int(
            await self.scalar(
                "SELECT coalesce(sum(amount), 0) FROM refunds WHERE hold_id = :h", h=hold_id
            )
        )


@pytest.fixture
async def court(room: Room) -> Court:
    return Court(room)
