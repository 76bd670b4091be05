"""An escrow desk on the committed path: a finance staff member, a client and a pro, and
helpers that pay the sandbox checkout as a payer would (through its page and CSRF)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from mesteri.payments.sandbox.provider import DECLINE_CARD, SUCCESS_CARD
from tests.conftest import LiveApp
from tests.fixtures.accounts import bearer, create_staff, register
from tests.fixtures.pros import BUCHAREST, PLUMBING

API = "/api/v1"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Desk:
    live: LiveApp
    staff: dict[str, Any]
    client: dict[str, Any]
    pro: dict[str, Any]

    @property
    def http(self) -> Any:
        return self.live.client

    async def hold(self, amount: int = 100_000, **extra: Any) -> dict[str, Any]:
        body = {
            "payer_email": self.client["user"]["email"],
            "payee_email": self.pro["user"]["email"],
            "amount": amount,
            "currency": "RON",
            "description": "Bathroom tiling, milestone 1",
            **extra,
        }
        response = await self.http.post(f"{API}/admin/holds", json=body, headers=bearer(self.staff))
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data

    async def pay(self, checkout_url: str, card: str = SUCCESS_CARD, **form: str) -> Any:
        """Submit the sandbox checkout form, then deliver its webhooks."""
        path = urlsplit(checkout_url).path
        page = await self.http.get(path)
        assert page.status_code == 200, page.text
        token = _TOKEN.search(page.text)
        assert token
        data = {"csrf_token": token.group(1), **({"card_number": card} if card else {}), **form}
        response = await self.http.post(path, data=data)
        await self.live.drain()
        return response

    async def advance(self, duration: str) -> None:
        """Move the test clock (running due timers); access tokens are refreshed after it."""
        moved = await self.http.post(f"{API}/dev/clock", json={"advance": duration})
        assert moved.status_code == 200, moved.text
        for auth in (self.staff, self.client, self.pro):
            refreshed = await self.http.post(
                f"{API}/auth/refresh", json={"refresh_token": auth["tokens"]["refresh_token"]}
            )
            assert refreshed.status_code == 200, refreshed.text
            body = refreshed.json()
            auth["tokens"] = body.get("tokens", body)

    async def get_hold(self, hold_id: str) -> dict[str, Any]:
        response = await self.http.get(f"{API}/holds/{hold_id}", headers=bearer(self.staff))
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    async def funded_hold(self, amount: int = 100_000, **extra: Any) -> dict[str, Any]:
        created = await self.hold(amount, **extra)
        await self.pay(created["checkout_url"])
        return await self.get_hold(created["hold"]["id"])

    async def wallet(self, auth: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.get(f"{API}/wallet", headers=bearer(auth or self.pro))
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()
        return data

    async def verify_pro(self) -> None:
        """The pro has a profile that staff verified (the verification flow itself is
        tested in tests/pros; here it is arranged)."""
        profile = await self.http.patch(
            f"{API}/pros/me",
            json={
                "display_name": "Mihai Instalatorul",
                "crafts": [{"category_id": str(PLUMBING), "primary": True, "years": 5}],
                "place_id": str(BUCHAREST),
                "radius_km": 25,
            },
            headers=bearer(self.pro),
        )
        assert profile.status_code == 200, profile.text
        async with self.live.engine.begin() as conn:
            await conn.execute(
                text("UPDATE pro_profiles SET verification_state = 'verified' WHERE user_id = :u"),
                {"u": uuid.UUID(self.pro["user"]["id"])},
            )

    async def onboard(
        self, auth: dict[str, Any] | None = None, iban: str = "RO49AAAA1B31007593840000"
    ) -> None:
        """The pro completes the provider's onboarding (account.updated arrives by webhook)."""
        started = await self.http.post(
            f"{API}/wallet/payout-account", headers=bearer(auth or self.pro)
        )
        assert started.status_code == 200, started.text
        path = urlsplit(started.json()["onboarding_url"]).path
        page = await self.http.get(path)
        token = _TOKEN.search(page.text)
        assert token
        done = await self.http.post(
            path, data={"csrf_token": token.group(1), "iban": iban, "action": "complete"}
        )
        assert done.status_code == 303, done.text
        await self.live.drain()


async def totals_by_currency(live: LiveApp) -> dict[str, int]:
    async with live.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT currency, sum(balance) FROM ledger_account_balances GROUP BY currency")
        )
        return {cur: int(total) for cur, total in rows}


@pytest.fixture
async def desk(live: LiveApp) -> Desk:
    staff = await create_staff(live.client, live.app.state.write_sessions)
    client = await register(live.client, first_name="Ioana")
    pro = await register(live.client, role="pro", first_name="Mihai")
    return Desk(live=live, staff=staff, client=client, pro=pro)


__all__ = ["API", "DECLINE_CARD", "SUCCESS_CARD", "Desk", "totals_by_currency"]
