"""Proposals pages over HTTP (no JavaScript): the proposal form with its milestone editor,
errors shown again with what was typed, the client's comparison and answers, counter-offer
and revision forms, acceptance leading to the contract, and "My work"."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from mesteri.kit import clock
from mesteri.kit.db import WriteSession
from mesteri.proposals.models import Proposal
from tests.conftest import PASSWORD
from tests.fixtures.market import Party, insert_job, make_client, make_verified_pro
from tests.fixtures.proposals import send_proposal

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Browser:
    """A signed-in browser: its own cookie jar, CSRF token read from the pages."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def get(self, path: str, status: int = 200) -> str:
        page = await self.http.get(path)
        assert page.status_code == status, page.text
        return page.text

    async def post(self, path: str, data: dict[str, Any], *, form_page: str) -> httpx.Response:
        match = _TOKEN.search(await self.get(form_page))
        assert match
        return await self.http.post(path, data={"csrf_token": match.group(1), **data})


@pytest.fixture
async def browsers(app: Any) -> AsyncIterator[Any]:
    opened: list[httpx.AsyncClient] = []

    async def open_for(party: Party) -> Browser:
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 50001))
        http = httpx.AsyncClient(
            transport=transport, base_url="https://testserver", headers={"accept-language": "en"}
        )
        opened.append(http)
        signin = await http.get("/signin")
        token = _TOKEN.search(signin.text)
        assert token
        response = await http.post(
            "/signin",
            data={"csrf_token": token.group(1), "login": party.email, "password": PASSWORD},
        )
        assert response.status_code == 303, response.text
        return Browser(http)

    yield open_for
    for http in opened:
        await http.aclose()


async def _count(db: WriteSession, job_id: uuid.UUID) -> int:
    query = select(func.count()).select_from(Proposal).where(Proposal.job_id == job_id)
    return int(await db.scalar(query) or 0)


def _due(days: int) -> str:
    from datetime import timedelta

    return (clock.now().date() + timedelta(days=days)).isoformat()


def _form(price: str, rows: list[tuple[str, str, str, str]], **extra: str) -> dict[str, Any]:
    return {
        "price": price,
        "duration_days": "12",
        "message": "Pot începe luni.",
        "questions": "Aveți robinet de trecere?",
        "milestone_title": [r[0] for r in rows],
        "milestone_amount": [r[1] for r in rows],
        "milestone_due_date": [r[2] for r in rows],
        "milestone_dod": [r[3] for r in rows],
        **extra,
    }


async def test_propose_form_renders_with_the_job_plan_and_more_rows(
    client: httpx.AsyncClient, db: WriteSession, browsers: Any
) -> None:
    owner = await make_client(client)
    pro = await make_verified_pro(client, db)
    plan = [
        {"title": "Demontare", "share": 30, "dod": ["Bateria veche scoasă"]},
        {"title": "Montaj", "share": 70, "dod": ["Fără scurgeri", "Curățenie"]},
    ]
    job = await insert_job(db, owner.user_id, milestone_plan=plan)
    web = await browsers(pro)
    page = await web.get(f"/jobs/{job.id}/propose")
    assert job.title in page
    assert page.count('name="milestone_title"') == 4  # 3 visible rows + the JS template row
    assert 'value="Demontare"' in page
    assert "Fără scurgeri\nCurățenie" in page
    assert 'data-share="30"' in page
    assert 'href="?rows=6"' in page  # more rows without JavaScript
    six = await web.get(f"/jobs/{job.id}/propose?rows=6")
    assert six.count('name="milestone_title"') == 7
    split = await web.get(f"/jobs/{job.id}/propose?price=1000")
    assert 'value="300"' in split
    assert 'value="700"' in split


async def test_propose_through_the_form_and_errors_keep_the_values(
    client: httpx.AsyncClient, db: WriteSession, browsers: Any
) -> None:
    owner = await make_client(client)
    pro = await make_verified_pro(client, db)
    job = await insert_job(db, owner.user_id)
    web = await browsers(pro)
    form_page = f"/jobs/{job.id}/propose"
    rows = [
        ("Materiale", "300", _due(5), "Materiale aduse\nBateria veche scoasă"),
        ("Montaj și probă", "650,50", _due(9), "Fără scurgeri"),
        ("", "", "", ""),  # an empty row is ignored
    ]
    bad = await web.post(form_page, _form("1000", rows), form_page=form_page)
    assert bad.status_code == 422
    assert 'id="milestones-error"' in bad.text
    assert "must be equal" in bad.text
    assert 'value="Montaj și probă"' in bad.text
    assert 'value="650,50"' in bad.text
    assert "Materiale aduse\nBateria veche scoasă" in bad.text
    assert await _count(db, job.id) == 0
    no_price = await web.post(form_page, _form("", rows), form_page=form_page)
    assert no_price.status_code == 422
    assert 'aria-invalid="true"' in no_price.text
    assert await _count(db, job.id) == 0
    good = await web.post(form_page, _form("950.50", rows), form_page=form_page)
    assert good.status_code == 303, good.text
    proposal = await db.scalar(select(Proposal).where(Proposal.job_id == job.id))
    assert proposal is not None
    assert good.headers["location"] == f"/proposals/{proposal.id}?sent=1"
    assert proposal.price == 95050
    assert [m["amount"] for m in proposal.milestones] == [30000, 65050]
    assert proposal.milestones[0]["dod"] == ["Materiale aduse", "Bateria veche scoasă"]
    assert proposal.questions == [{"question": "Aveți robinet de trecere?", "answer": None}]
    assert proposal.duration_days == 12
    detail = await web.get(good.headers["location"])
    assert "Your proposal was sent" in detail
    assert "Withdraw" in detail
    assert "Edit" in detail


async def test_the_form_needs_its_csrf_token(
    client: httpx.AsyncClient, db: WriteSession, browsers: Any
) -> None:
    owner = await make_client(client)
    pro = await make_verified_pro(client, db)
    job = await insert_job(db, owner.user_id)
    web = await browsers(pro)
    rows = [("Tot", "1000", "", "")]
    response = await web.http.post(f"/jobs/{job.id}/propose", data=_form("1000", rows))
    assert response.status_code == 403
    assert await _count(db, job.id) == 0


async def test_an_unverified_pro_is_told_to_get_verified(
    client: httpx.AsyncClient, db: WriteSession, browsers: Any
) -> None:
    from sqlalchemy import text

    owner = await make_client(client)
    pro = await make_verified_pro(client, db)
    await db.execute(
        text("UPDATE pro_profiles SET verification_state = 'pending' WHERE id = :id"),
        {"id": pro.pro_id},
    )
    job = await insert_job(db, owner.user_id)
    web = await browsers(pro)
    form_page = f"/jobs/{job.id}/propose"
    rows = [("Tot", "1000", "", "")]
    response = await web.post(form_page, _form("1000", rows), form_page=form_page)
    assert response.status_code == 403
    assert "get verified" in response.text
    assert 'value="Tot"' in response.text
    assert await _count(db, job.id) == 0


async def test_client_compares_shortlists_declines_and_accepts(
    client: httpx.AsyncClient, db: WriteSession, browsers: Any
) -> None:
    owner = await make_client(client)
    pro = await make_verified_pro(client, db)
    rival = await make_verified_pro(client, db, display_name="Ion Zugravul")
    job = await insert_job(db, owner.user_id)
    first = await send_proposal(client, pro.headers, job.id)
    second = await send_proposal(client, rival.headers, job.id, price=90000)
    web = await browsers(owner)
    compare = f"/jobs/{job.id}/proposals"
    page = await web.get(compare)
    assert "Mihai Instalatorul" in page
    assert "Ion Zugravul" in page
    assert "You pay in total" in page
    assert "The pro receives" in page
    assert f'href="/proposals/{first["id"]}/accept"' in page
    shortlisted = await web.post(
        f"/proposals/{first['id']}/shortlist", {"next": "compare"}, form_page=compare
    )
    assert shortlisted.status_code == 303
    assert shortlisted.headers["location"].startswith(compare)
    declined = await web.post(
        f"/proposals/{second['id']}/decline",
        {"next": "compare", "reason": "Alt buget."},
        form_page=compare,
    )
    assert declined.status_code == 303
    rows = {p.id: p for p in (await db.scalars(select(Proposal).where(Proposal.job_id == job.id)))}
    await db.refresh(rows[uuid.UUID(first["id"])])
    await db.refresh(rows[uuid.UUID(second["id"])])
    assert rows[uuid.UUID(first["id"])].state == "shortlisted"
    assert rows[uuid.UUID(second["id"])].state == "declined"
    assert rows[uuid.UUID(second["id"])].decline_reason == "Alt buget."
    page = await web.get(compare)
    assert "Closed proposals" in page
    # Accept: a confirmation page, then the contract.
    confirm_page = f"/proposals/{first['id']}/accept"
    confirm = await web.get(confirm_page)
    assert "Yes, accept" in confirm
    assert "Mihai Instalatorul" in confirm
    accepted = await web.post(confirm_page, {}, form_page=confirm_page)
    assert accepted.status_code == 303, accepted.text
    chosen = await db.get(Proposal, uuid.UUID(first["id"]), populate_existing=True)
    assert chosen is not None
    assert chosen.state == "accepted"
    assert accepted.headers["location"] == f"/contracts/{chosen.contract_id}"
    # Accepting again (a double click) lands on the same contract.
    again = await web.post(confirm_page, {}, form_page=confirm_page)
    assert again.headers["location"] == accepted.headers["location"]


async def test_edit_counter_revise_and_accept_the_counter_by_forms(
    client: httpx.AsyncClient, db: WriteSession, browsers: Any
) -> None:
    owner = await make_client(client)
    pro = await make_verified_pro(client, db)
    job = await insert_job(db, owner.user_id)
    sent = await send_proposal(client, pro.headers, job.id)
    pid = sent["id"]
    as_pro = await browsers(pro)
    edit_page = f"/proposals/{pid}/edit"
    form = await as_pro.get(edit_page)
    assert 'value="1000"' in form
    assert 'value="300"' in form
    assert 'value="700"' in form
    edited = await as_pro.post(
        edit_page,
        _form("1100", [("Materiale", "400", _due(3), ""), ("Montaj", "700", _due(8), "Probă")]),
        form_page=edit_page,
    )
    assert edited.status_code == 303, edited.text
    proposal = await db.get(Proposal, uuid.UUID(pid), populate_existing=True)
    assert proposal is not None
    assert proposal.price == 110000
    assert proposal.revision == 2
    # The client counters by form; a mismatch is shown again with the values.
    as_client = await browsers(owner)
    counter_page = f"/proposals/{pid}/counter"
    assert "Send the counter-offer" in await as_client.get(counter_page)
    bad = await as_client.post(
        counter_page, _form("900", [("Tot", "800", "", "")]), form_page=counter_page
    )
    assert bad.status_code == 422
    assert 'value="800"' in bad.text
    countered = await as_client.post(
        counter_page,
        _form("900", [("Materiale", "300", "", ""), ("Montaj", "600", "", "")]),
        form_page=counter_page,
    )
    assert countered.status_code == 303, countered.text
    await db.refresh(proposal)
    assert proposal.state == "countered"
    assert proposal.price == 90000
    # The pro sees the counter, answers with new terms, the client counters again.
    detail = await as_pro.get(f"/proposals/{pid}")
    assert "Accept the counter-offer" in detail
    assert "Answer with new terms" in detail
    assert "History of the terms" in detail
    assert "RON400.00</td>" in detail.replace(
        "\xa0", ""
    )  # a milestone of revision 2, shown in the history only
    revise_page = f"/proposals/{pid}/revise"
    revised = await as_pro.post(
        revise_page,
        _form("1000", [("Materiale", "300", "", ""), ("Montaj", "700", "", "")]),
        form_page=revise_page,
    )
    assert revised.status_code == 303, revised.text
    await db.refresh(proposal)
    assert proposal.state == "submitted"
    assert proposal.price == 100000
    # Answered once: the edit form now refuses.
    late = await as_pro.post(
        edit_page, _form("1000", [("Tot", "1000", "", "")]), form_page=f"/proposals/{pid}"
    )
    assert late.status_code == 409
    assert "can no longer be edited" in late.text
    await as_client.post(
        counter_page,
        _form("950", [("Materiale", "300", "", ""), ("Montaj", "650", "", "")]),
        form_page=counter_page,
    )
    confirm_page = f"/proposals/{pid}/accept-counter"
    assert "Accept the counter-offer" in await as_pro.get(confirm_page)
    accepted = await as_pro.post(confirm_page, {}, form_page=confirm_page)
    assert accepted.status_code == 303, accepted.text
    await db.refresh(proposal)
    assert proposal.state == "accepted"
    assert proposal.price == 95000
    assert accepted.headers["location"] == f"/contracts/{proposal.contract_id}"
    # "My work" shows it among the accepted ones, with the contract link.
    work = await as_pro.get("/work")
    assert "Accepted" in work
    assert f"/contracts/{proposal.contract_id}" in work
    assert job.title in work


async def test_strangers_get_404_pages_and_a_pro_cannot_accept_their_own(
    client: httpx.AsyncClient, db: WriteSession, browsers: Any
) -> None:
    owner = await make_client(client)
    pro = await make_verified_pro(client, db)
    job = await insert_job(db, owner.user_id)
    sent = await send_proposal(client, pro.headers, job.id)
    stranger = await browsers(await make_client(client))
    await stranger.get(f"/proposals/{sent['id']}", status=404)
    await stranger.get(f"/jobs/{job.id}/proposals", status=404)
    as_pro = await browsers(pro)
    page = f"/proposals/{sent['id']}"
    own = await as_pro.post(f"/proposals/{sent['id']}/accept", {}, form_page=page)
    assert own.status_code == 403
    proposal = await db.get(Proposal, uuid.UUID(sent["id"]), populate_existing=True)
    assert proposal is not None
    assert proposal.state == "submitted"
    withdrawn = await as_pro.post(f"/proposals/{sent['id']}/withdraw", {}, form_page=page)
    assert withdrawn.status_code == 303
    await db.refresh(proposal)
    assert proposal.state == "withdrawn"
    work = await as_pro.get("/work")
    assert "Withdrawn" in work
