"""Jobs pages over HTTP, for a client and a pro in their own browsers: post a job (with
a template and an attachment), errors re-rendered with the values kept, the job page for
both sides, invites, edit, cancel, the lead board and the contact page."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from mesteri.jobs import service
from mesteri.jobs.models import ContactReveal, Job
from mesteri.kit.db import WriteSession
from tests.conftest import PASSWORD
from tests.fixtures.jobs import post_job
from tests.fixtures.market import Party, make_client, make_verified_pro
from tests.fixtures.pros import BUCHAREST, PLUMBING, png_bytes

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')

Browser = Callable[[str], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def browser(app: Any) -> AsyncIterator[Browser]:
    """``await browser(email)``: a separate cookie jar, signed in through the sign-in page."""
    opened: list[httpx.AsyncClient] = []

    async def open_browser(email: str) -> httpx.AsyncClient:
        web = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, client=("198.51.100.9", 4000)),
            base_url="https://testserver",
            headers={"accept-language": "en"},
        )
        opened.append(web)
        token = await csrf(web, "/signin")
        signed = await web.post(
            "/signin", data={"csrf_token": token, "login": email, "password": PASSWORD}
        )
        assert signed.status_code == 303, signed.text
        return web

    yield open_browser
    for web in opened:
        await web.aclose()


async def csrf(web: httpx.AsyncClient, path: str) -> str:
    page = await web.get(path)
    assert page.status_code == 200, page.text
    match = _TOKEN.search(page.text)
    assert match, page.text
    return match.group(1)


def _form(token: str, **overrides: str) -> dict[str, str]:
    start = date.today() + timedelta(days=5)
    return {
        "csrf_token": token,
        "title": "Reparație acoperiș după furtună",
        "description": "Câteva țigle s-au spart și plouă în pod; trebuie înlocuite.",
        "category_id": str(PLUMBING),
        "place_id": str(BUCHAREST),
        "address": "Strada Doamnei 3",
        "budget_type": "fixed",
        "budget_min": "1 200",
        "budget_max": "2500,50",
        "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=3)).isoformat(),
        "template_id": "",
        "action": "publish",
        **overrides,
    }


async def _count_jobs(db: WriteSession, user_id: uuid.UUID) -> int:
    return int(await db.scalar(select(func.count()).where(Job.client_id == user_id)) or 0)


async def test_post_a_job_with_template_and_attachment(
    client: httpx.AsyncClient, db: WriteSession, browser: Browser
) -> None:
    owner = await make_client(client)
    web = await browser(owner.email)

    plain = await web.get("/jobs/new")
    assert plain.status_code == 200
    assert 'name="template"' in plain.text
    assert "Save draft" in plain.text
    picked = await web.get("/jobs/new", params={"template": "roof-repair"})
    assert picked.status_code == 200
    assert 'value="Roof repair"' in picked.text
    assert "Hose-tested" in picked.text or "hose-tested" in picked.text
    assert 'name="template_id" value="roof-repair"' in picked.text

    token = await csrf(web, "/jobs/new")
    created = await web.post(
        "/jobs/new",
        data=_form(token, template_id="roof-repair"),
        files={"attachments": ("roof.png", png_bytes(), "image/png")},
    )
    assert created.status_code == 303, created.text
    job_id = uuid.UUID(created.headers["location"].split("/")[2].split("?")[0])
    job = await db.get(Job, job_id)
    assert job is not None
    assert job.state == "open"
    assert (job.budget_min, job.budget_max) == (120000, 250050)
    assert len(job.attachment_ids) == 1
    assert job.template_id == "roof-repair"
    assert [m["share"] for m in job.milestone_plan] == [15, 60, 25]

    page = await web.get(created.headers["location"])
    assert page.status_code == 200
    assert "Your job is published" in page.text
    assert "Strada Doamnei 3" in page.text
    assert f"/jobs/{job_id}/attachments/{job.attachment_ids[0]}" in page.text
    download = await web.get(f"/jobs/{job_id}/attachments/{job.attachment_ids[0]}")
    assert download.status_code == 303

    listing = await web.get("/jobs")
    assert listing.status_code == 200
    assert "Reparație acoperiș după furtună" in listing.text
    assert f"/jobs/{job_id}/proposals" in listing.text


async def test_errors_re_render_the_form_with_the_values(
    client: httpx.AsyncClient, db: WriteSession, browser: Browser
) -> None:
    owner = await make_client(client)
    web = await browser(owner.email)
    token = await csrf(web, "/jobs/new")

    unreadable = await web.post("/jobs/new", data=_form(token, budget_min="a lot"))
    assert unreadable.status_code == 422
    assert 'id="f-budget_min"' in unreadable.text
    assert 'aria-invalid="true"' in unreadable.text
    assert "Reparație acoperiș după furtună" in unreadable.text

    too_low = await web.post("/jobs/new", data=_form(token, budget_min="10", budget_max="20"))
    assert too_low.status_code == 422
    assert "The budget must be at least" in too_low.text
    assert "Strada Doamnei 3" in too_low.text

    no_place = await web.post("/jobs/new", data=_form(token, place_id=""))
    assert no_place.status_code == 422
    assert 'id="f-place_id-error"' in no_place.text

    no_csrf = await web.post("/jobs/new", data={**_form(token), "csrf_token": "forged"})
    assert no_csrf.status_code == 403
    assert await _count_jobs(db, owner.user_id) == 0


async def test_draft_publish_edit_invite_and_cancel(
    client: httpx.AsyncClient, db: WriteSession, browser: Browser
) -> None:
    owner = await make_client(client)
    pro = await make_verified_pro(client, db)
    web = await browser(owner.email)
    token = await csrf(web, "/jobs/new")
    created = await web.post("/jobs/new", data=_form(token, action="draft"))
    assert created.status_code == 303
    url = created.headers["location"].split("?")[0]
    job_id = uuid.UUID(url.split("/")[2])

    page = await web.get(url)
    assert "Saved as a draft" not in page.text  # the notice needs ?saved=draft
    assert f'action="/jobs/{job_id}/publish"' in page.text
    published = await web.post(f"{url}/publish", data={"csrf_token": token})
    assert published.status_code == 303
    job = await db.get(Job, job_id)
    assert job is not None
    await db.refresh(job)
    assert job.state == "open"

    edit = await web.get(f"{url}/edit")
    assert edit.status_code == 200
    assert 'value="1200"' in edit.text
    saved = await web.post(
        f"{url}/edit", data=_form(token, title="Acoperiș: înlocuire țigle", action="save")
    )
    assert saved.status_code == 303, saved.text
    await db.refresh(job)
    assert job.title == "Acoperiș: înlocuire țigle"

    found = await web.get(url, params={"q": "Mihai"})
    assert str(pro.pro_id) in found.text
    invited = await web.post(
        f"{url}/invites", data={"csrf_token": token, "pro_ids": [str(pro.pro_id)]}
    )
    assert invited.status_code == 303
    assert await service.is_invited(db, job_id, pro.pro_id)
    nobody = await web.post(f"{url}/invites", data={"csrf_token": token})
    assert nobody.status_code == 422

    cancelled = await web.post(f"{url}/cancel", data={"csrf_token": token})
    assert cancelled.status_code == 303
    await db.refresh(job)
    assert job.state == "cancelled"
    again = await web.post(f"{url}/cancel", data={"csrf_token": token})
    assert again.status_code == 409
    assert "not possible" in again.text
    assert (await web.get(f"{url}/edit")).status_code == 409


async def test_pro_sees_the_masked_job_and_the_lead_board(
    client: httpx.AsyncClient, db: WriteSession, browser: Browser
) -> None:
    owner = await make_client(client, first_name="Ana", last_name="Popescu")
    pro = await make_verified_pro(client, db)
    job = await post_job(client, owner.headers)
    await client.post(
        f"/api/v1/jobs/{job['id']}/invites",
        json={"pro_ids": [str(pro.pro_id)]},
        headers=owner.headers,
    )
    web = await browser(pro.email)

    page = await web.get(f"/jobs/{job['id']}")
    assert page.status_code == 200
    assert "Ana P." in page.text
    assert "Popescu" not in page.text
    assert "Lipscani" not in page.text
    assert f'href="/jobs/{job["id"]}/propose"' in page.text

    board = await web.get("/leads")
    assert board.status_code == 200
    assert job["title"] in board.text
    assert "Invited" in board.text
    assert f'href="/jobs/{job["id"]}/propose"' in board.text
    assert "Popescu" not in board.text
    filtered = await web.get("/leads", params={"category": "painting"})
    assert job["title"] not in filtered.text
    bad = await web.get("/leads", params={"budget_min": "lots"})
    assert bad.status_code == 200
    assert 'role="alert"' in bad.text

    as_client = await browser(owner.email)
    not_pro = await as_client.get("/leads")
    assert not_pro.status_code == 403
    assert "/pro/onboarding" in not_pro.text


async def test_contact_page_for_the_hired_pro_is_logged(
    client: httpx.AsyncClient, db: WriteSession, browser: Browser
) -> None:
    owner = await make_client(client)
    pro = await make_verified_pro(client, db)
    other: Party = await make_verified_pro(client, db)
    job = await post_job(client, owner.headers)
    job_id = uuid.UUID(job["id"])
    await service.do_hire(db, await service.lock_job(db, job_id), pro.pro_id)

    web = await browser(pro.email)
    page = await web.get(f"/jobs/{job_id}")
    assert f'href="/jobs/{job_id}/contact"' in page.text
    contact = await web.get(f"/jobs/{job_id}/contact")
    assert contact.status_code == 200
    assert "Strada Lipscani 10, ap. 4" in contact.text
    assert owner.email in contact.text
    refused = await (await browser(other.email)).get(f"/jobs/{job_id}/contact")
    assert refused.status_code == 403
    rows = (await db.scalars(select(ContactReveal).where(ContactReveal.job_id == job_id))).all()
    assert [r.viewer_id for r in rows] == [pro.user_id]

    owner_web = await browser(owner.email)
    owner_page = await owner_web.get(f"/jobs/{job_id}")
    assert "Who saw your contact details" in owner_page.text
    assert "Mihai I." in owner_page.text


async def test_pages_need_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/jobs/new")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/signin?next=")


async def test_strangers_get_the_error_page(
    client: httpx.AsyncClient, db: WriteSession, browser: Browser
) -> None:
    owner = await make_client(client)
    job = await post_job(client, owner.headers, publish=False)
    stranger = await make_client(client)
    web = await browser(stranger.email)
    for path in (f"/jobs/{job['id']}", f"/jobs/{job['id']}/edit", f"/jobs/{uuid.uuid4()}"):
        page = await web.get(path)
        assert page.status_code == 404, path
        assert 'data-code="job_not_found"' in page.text
        assert job["title"] not in page.text
    token = await csrf(web, "/jobs/new")
    refused = await web.post(f"/jobs/{job['id']}/publish", data={"csrf_token": token})
    assert refused.status_code == 404
    row = await db.get(Job, uuid.UUID(job["id"]))
    assert row is not None
    assert row.state == "draft"
