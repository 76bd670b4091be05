"""The dispute pages with signed-in browsers (cookies and CSRF): the open form, the
parties' page (evidence with a file, offers, escalation) and the staff desk's decision."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pyotp
import pytest

from mesteri.kit.db import unit_of_work
from tests.conftest import PASSWORD
from tests.disputes.conftest import API, Court
from tests.fixtures.accounts import bearer, create_staff_user, login
from tests.fixtures.pros import png_bytes

pytestmark = pytest.mark.asyncio

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def _token(html: str) -> str:
    match = _TOKEN.search(html)
    assert match, html[:500]
    return match.group(1)


async def _browser(court: Court, email: str, totp: pyotp.TOTP | None = None) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=court.live.app, client=("203.0.113.9", 50001))
    web = httpx.AsyncClient(
        transport=transport, base_url="https://testserver", headers={"accept-language": "en"}
    )
    page = await web.get("/signin")
    form = {"csrf_token": _token(page.text), "login": email, "password": PASSWORD}
    signed_in = await web.post("/signin", data=form)
    if totp is not None:
        form["totp"] = totp.now()
        form["csrf_token"] = (
            _token(signed_in.text) if signed_in.status_code != 303 else form["csrf_token"]
        )
        signed_in = await web.post("/signin", data=form)
    assert signed_in.status_code == 303, signed_in.text
    return web


async def _staff_browser(court: Court) -> httpx.AsyncClient:
    async with unit_of_work(court.live.app.state.write_sessions) as session:
        email = await create_staff_user(session, ("admin",))
    first = (await login(court.http, email)).json()
    secret = (await court.http.post(f"{API}/me/2fa/setup", headers=bearer(first))).json()["secret"]
    totp = pyotp.TOTP(secret)
    enabled = await court.http.post(
        f"{API}/me/2fa/enable", json={"code": totp.now()}, headers=bearer(first)
    )
    assert enabled.status_code == 200, enabled.text
    return await _browser(court, email, totp)


async def _post(web: httpx.AsyncClient, page_url: str, action: str, **data: Any) -> Any:
    page = await web.get(page_url)
    assert page.status_code == 200, page.text
    files = data.pop("files", None)
    return await web.post(action, data={"csrf_token": _token(page.text), **data}, files=files)


async def test_open_offer_escalate_and_decide_on_the_pages(court: Court) -> None:
    room = court.room
    milestone = await court.funded(100_000)
    client = await _browser(court, room.client["user"]["email"])
    pro = await _browser(court, room.pro["user"]["email"])
    staff = await _staff_browser(court)
    try:
        form_url = f"/milestones/{milestone['id']}/dispute"
        page = await client.get(form_url)
        assert page.status_code == 200
        assert 'name="reason"' in page.text
        bad = await _post(client, form_url, form_url, reason="Nu merge.", amount="2000")
        assert bad.status_code == 422
        assert "between" in bad.text
        opened = await _post(
            client,
            form_url,
            form_url,
            reason="Robinetul picură.",
            amount="1000",
            evidence="Poza atașată.",
            files=[("files", ("leak.png", png_bytes(), "image/png"))],
        )
        assert opened.status_code == 303, opened.text
        dispute_url = opened.headers["location"].split("?")[0]
        dispute_id = dispute_url.rsplit("/", 1)[-1]
        # The timeline's link goes to the dispute from now on.
        assert (await pro.get(form_url)).headers["location"] == dispute_url
        shown = await pro.get(dispute_url)
        assert shown.status_code == 200
        assert 'data-stage="negotiation"' in shown.text
        file_link = re.search(rf'href="(/disputes/{dispute_id}/files/[0-9a-f-]+)"', shown.text)
        assert file_link
        assert (await pro.get(file_link.group(1))).status_code == 303

        mismatch = await _post(
            pro, dispute_url, f"{dispute_url}/offers", pro_amount="700", client_amount="200"
        )
        assert mismatch.status_code == 422
        made = await _post(
            pro, dispute_url, f"{dispute_url}/offers", pro_amount="700", client_amount="300"
        )
        assert made.status_code == 303, made.text
        page = await client.get(dispute_url)
        assert "Accept this offer" in page.text
        escalated = await _post(client, dispute_url, f"{dispute_url}/escalate")
        assert escalated.status_code == 303
        assert 'data-stage="mediation"' in (await client.get(dispute_url)).text

        desk = f"/admin/disputes/{dispute_id}"
        queue = await staff.get("/admin/disputes")
        assert desk in queue.text
        assert (await client.get("/admin/disputes")).status_code == 403
        page = await staff.get(desk)
        assert page.status_code == 200, page.text
        unconfirmed = await _post(
            staff,
            desk,
            f"{desk}/resolve",
            outcome="split",
            pro_amount="600",
            client_amount="400",
            note="Jumătate-jumătate.",
        )
        assert unconfirmed.status_code == 422
        decided = await _post(
            staff,
            desk,
            f"{desk}/resolve",
            outcome="split",
            pro_amount="600",
            client_amount="400",
            note="Lucrare parțială.",
            confirm="1",
        )
        assert decided.status_code == 303, decided.text
        final = await client.get(dispute_url)
        assert 'data-outcome="split"' in final.text
        assert (await room.wallet())["pending"] == 54_000
    finally:
        for web in (client, pro, staff):
            await web.aclose()


async def test_form_values_out_of_range_are_field_errors(court: Court) -> None:
    """Amounts past the API's bounds, a note past its length and a fee that is not a
    number are a 422 on the page, never a server error; nothing is written."""
    _, dispute = await court.opened(100_000)
    pro = await _browser(court, court.room.pro["user"]["email"])
    try:
        url = f"/disputes/{dispute['id']}"
        huge = "99999999999"  # past MAX_AMOUNT once in minor units
        for data in (
            {"pro_amount": huge, "client_amount": "0"},
            {"pro_amount": "700", "client_amount": "300", "note": "x" * 2001},
        ):
            refused = await _post(pro, url, f"{url}/offers", **data)
            assert refused.status_code == 422, refused.text
            assert 'class="alert error"' in refused.text
        for fee in ("9" * 13, "", "abc"):
            expert = await _post(pro, url, f"{url}/expert", confirm_fee=fee)
            assert expert.status_code == 422, expert.text
        assert (await court.get(dispute))["offers"] == []
    finally:
        await pro.aclose()
