"""The review pages over HTTP, each person in their own browser: the link on the contract
page once money was paid, the double-blind form with a photo, the pro's public reviews
(answer, helpful, report) and the staff moderation page."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import httpx
import pyotp
import pytest
from PIL import Image
from sqlalchemy import text

from mesteri.accounts import service as accounts
from mesteri.kit.db import unit_of_work
from tests.conftest import PASSWORD
from tests.fixtures.accounts import register, unique_contact
from tests.fixtures.reviews import paid_contract
from tests.milestones.conftest import Room

pytestmark = pytest.mark.asyncio

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
Web = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def web(room: Room) -> AsyncIterator[Web]:
    """A browser (its own cookies), signed in as ``email`` unless it is None."""
    async with AsyncExitStack() as stack:

        async def open_for(email: str | None, totp: str | None = None) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=room.live.app, client=("203.0.113.9", 50001))
            browser = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=transport,
                    base_url="https://testserver",
                    headers={"accept-language": "en", "user-agent": "Browser/1.0"},
                )
            )
            if email is None:
                return browser
            form = {"login": email, "password": PASSWORD}
            if totp:
                form["totp"] = pyotp.TOTP(totp).now()
            signed_in = await browser.post(
                "/signin", data={"csrf_token": await csrf(browser, "/signin"), **form}
            )
            assert signed_in.status_code == 303, signed_in.text
            return browser

        yield open_for


async def csrf(browser: httpx.AsyncClient, path: str) -> str:
    page = await browser.get(path)
    assert page.status_code == 200, page.text
    token = _TOKEN.search(page.text)
    assert token
    return token.group(1)


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 120, 40)).save(out, "PNG")
    return out.getvalue()


async def _staff_with_totp(room: Room) -> tuple[str, str]:
    email, phone = unique_contact()
    async with unit_of_work(room.live.app.state.write_sessions) as session:
        user = await accounts.do_create_user(
            session,
            email=email,
            phone=phone,
            password=PASSWORD,
            first_name="Sam",
            last_name="Staff",
            roles=["support"],
        )
        user.language = "en"  # the pages' texts are checked in English
        secret, _ = await accounts.do_totp_setup(session, user)
        user.totp_enabled_at = user.created_at
    return email, secret


async def test_review_pages_from_contract_to_moderation(room: Room, web: Web) -> None:
    contract_id = await paid_contract(room)
    (unpaid,) = await room.contract(20_000)
    client = await web(room.client["user"]["email"])
    pro = await web(room.pro["user"]["email"])

    # Before any payment the page only says reviews are not open yet. (The link on the
    # contract page is checked in the browser journey, tests/e2e/test_reviews.py.)
    unpaid_id = unpaid["contract_id"]
    closed = await client.get(f"/contracts/{unpaid_id}/review")
    assert closed.status_code == 200
    assert 'id="review-not-open"' in closed.text

    url = f"/contracts/{contract_id}/review"
    page = await client.get(url)
    assert page.status_code == 200
    assert "stays hidden until" in page.text
    assert "<legend>Overall" in page.text

    missing = await client.post(
        url, data={"csrf_token": await csrf(client, url), "comment": "Fără stele"}
    )
    assert missing.status_code == 422
    assert "Choose from 1 to 5 stars" in missing.text
    assert "Fără stele" in missing.text  # the form keeps what was typed

    sent = await client.post(
        url,
        data={
            "csrf_token": await csrf(client, url),
            "overall": "5",
            "quality": "4",
            "punctuality": "",
            "comment": "Lucrare curată, la timp.",
        },
        files={"files": ("baie.png", _png(), "image/png")},
    )
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == f"{url}?saved=1"
    async with room.live.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT state, overall, quality, punctuality, photo_ids FROM reviews")
            )
        ).one()
    assert (row.state, row.overall, row.quality, row.punctuality) == ("submitted", 5, 4, None)
    assert len(row.photo_ids) == 1
    # Ten photos at most: one is attached, so ten more are refused (a 422, not a 500).
    too_many = await client.post(
        url,
        data={"csrf_token": await csrf(client, url), "overall": "5"},
        files=[("files", (f"{n}.png", _png(), "image/png")) for n in range(10)],
    )
    assert too_many.status_code == 422
    assert "Attach at most 9 files." in too_many.text

    # Sealed: the pro does not see it; the client can still change it.
    pro_page = await pro.get(url)
    assert "Lucrare curată" not in pro_page.text
    assert "Not published yet" in pro_page.text
    mine = await client.get(f"{url}?saved=1")
    assert "Your review is saved." in mine.text
    assert "Change your review" in mine.text
    assert "Sealed: only you can see it" in mine.text

    done = await pro.post(
        url,
        data={"csrf_token": await csrf(pro, url), "overall": "4", "comment": "Client corect."},
    )
    assert done.status_code == 303, done.text
    both = await client.get(url)
    assert "Client corect." in both.text
    assert "Change your review" not in both.text

    # The public page: anyone reads it; the pro answers once.
    reviews_url = f"/pros/{room.pro_id}/reviews"
    anonymous = await web(None)
    public = await anonymous.get(reviews_url)
    assert public.status_code == 200
    assert "Ioana M." in public.text
    assert "Verified job" in public.text
    assert "Lucrare curată, la timp." in public.text
    assert "Client corect." not in public.text  # the pro's review of the client is not here
    assert "/response" not in public.text
    assert "/helpful" not in public.text
    review_id = re.search(r'id="review-([0-9a-f-]{36})"', public.text)
    assert review_id
    rid = review_id.group(1)

    pro_view = await pro.get(reviews_url)
    assert f"/reviews/{rid}/response" in pro_view.text
    answered = await pro.post(
        f"/reviews/{rid}/response",
        data={
            "csrf_token": await csrf(pro, reviews_url),
            "body": "Mulțumesc!",
            "next": reviews_url,
        },
    )
    assert answered.status_code == 303
    assert answered.headers["location"] == f"{reviews_url}#review-{rid}"
    pro_view = await pro.get(reviews_url)
    assert "Mulțumesc!" in pro_view.text
    assert f"/reviews/{rid}/response" not in pro_view.text

    # A visitor finds it helpful and reports it; an outside "next" is not followed.
    stranger = await register(room.http, first_name="Radu", last_name="Stan")
    visitor = await web(stranger["user"]["email"])
    voted = await visitor.post(
        f"/reviews/{rid}/helpful",
        data={"csrf_token": await csrf(visitor, reviews_url), "next": "https://evil.example/"},
    )
    assert voted.status_code == 303
    assert voted.headers["location"] == f"/#review-{rid}"
    helpful = await visitor.get(f"{reviews_url}?sort=helpful")
    assert "1 person found this helpful" in helpful.text
    assert 'aria-pressed="true"' in helpful.text
    reported = await visitor.post(
        f"/reviews/{rid}/report",
        data={
            "csrf_token": await csrf(visitor, reviews_url),
            "reason": "offensive",
            "details": "Jignitor.",
            "next": reviews_url,
        },
    )
    assert reported.status_code == 303
    assert "reported=1" in reported.headers["location"]
    assert (await visitor.get("/admin/reviews")).status_code == 403

    # Staff see it in the queue and hide it.
    email, secret = await _staff_with_totp(room)
    staff = await web(email, totp=secret)
    queue = await staff.get("/admin/reviews")
    assert queue.status_code == 200, queue.text
    assert "Jignitor." in queue.text
    report_id = re.search(r'id="report-([0-9a-f-]{36})"', queue.text)
    assert report_id
    decide = f"/admin/reviews/reports/{report_id.group(1)}/decide"
    no_reason = await staff.post(
        decide, data={"csrf_token": await csrf(staff, "/admin/reviews"), "action": "hide"}
    )
    assert no_reason.status_code == 422
    assert "Say why the review is hidden." in no_reason.text
    hidden = await staff.post(
        decide,
        data={
            "csrf_token": await csrf(staff, "/admin/reviews"),
            "action": "hide",
            "reason": "Limbaj jignitor.",
        },
    )
    assert hidden.status_code == 303, hidden.text
    assert hidden.headers["location"] == "/admin/reviews?decided=1"
    assert "No open reports." in (await staff.get("/admin/reviews?decided=1")).text
    assert "Lucrare curată" not in (await anonymous.get(reviews_url)).text
    async with room.live.engine.connect() as conn:
        audited = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM audit_log "
                    "WHERE action = 'review.hidden' AND subject_id = :id"
                ),
                {"id": uuid.UUID(rid)},
            )
        ).scalar_one()
    assert audited == 1
