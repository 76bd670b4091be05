"""Contract pages over HTTP, each party in their own browser: the list, the contract page
with its terms, the signature form (CSRF, errors shown again), the PDF, amendments and
withdrawal."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack

import httpx
import pytest
from sqlalchemy import func, select

from mesteri.catalog.reference import place_id
from mesteri.contracts.models import Signature
from mesteri.kit.db import WriteSession
from tests.conftest import PASSWORD
from tests.fixtures.contracts import (
    CLIENT_NAME,
    PRO_NAME,
    Deal,
    make_contract,
    pdf_text,
    sign_both,
)
from tests.fixtures.market import Party, make_client

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_HASH = re.compile(r'name="document_sha256" value="([0-9a-f]{64})"')

Browser = Callable[[Party], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def browser(app: object) -> AsyncIterator[Browser]:
    """A signed-in browser (its own cookies) for a party."""
    async with AsyncExitStack() as stack:

        async def open_for(party: Party) -> httpx.AsyncClient:
            transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 50001))  # type: ignore[arg-type]
            web = await stack.enter_async_context(
                httpx.AsyncClient(
                    transport=transport,
                    base_url="https://testserver",
                    headers={"accept-language": "en", "user-agent": "Browser/1.0"},
                )
            )
            page = await web.get("/signin")
            token = _TOKEN.search(page.text)
            assert token
            signed_in = await web.post(
                "/signin",
                data={"csrf_token": token.group(1), "login": party.email, "password": PASSWORD},
            )
            assert signed_in.status_code == 303, signed_in.text
            return web

        yield open_for


def _token(html: str) -> str:
    match = _TOKEN.search(html)
    assert match
    return match.group(1)


async def _count_signatures(db: WriteSession, deal: Deal) -> int:
    count = await db.scalar(
        select(func.count()).select_from(Signature).where(Signature.contract_id == deal.contract.id)
    )
    return int(count or 0)


async def test_both_parties_sign_on_the_page(
    client: httpx.AsyncClient, db: WriteSession, browser: Browser
) -> None:
    deal = await make_contract(client, db)
    path = f"/contracts/{deal.contract.id}"
    buyer, pro = await browser(deal.client), await browser(deal.pro)

    listing = await buyer.get("/contracts")
    assert listing.status_code == 200
    assert deal.job.title in listing.text
    assert "Your signature is needed" in listing.text
    assert "Mihai Instalatorul" in listing.text

    page = await buyer.get(path)
    assert page.status_code == 200
    html = page.text
    assert deal.job.title in html
    assert "Materialele sunt pe șantier" in html  # Definition of Done in the terms
    assert "Governing law" in html
    assert "Romanian law" in html
    assert f'href="{path}/document.pdf?version=1"' in html
    assert 'name="full_name"' in html
    assert f"On your account: {CLIENT_NAME}" in html
    assert 'id="h-milestones"' in html  # the milestone timeline
    assert "Withdraw from this contract" in html
    shown_hash = _HASH.search(html)
    assert shown_hash

    pdf = await buyer.get(f"{path}/document.pdf?version=1")
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert hashlib.sha256(pdf.content).hexdigest() == shown_hash.group(1)

    token = _token(html)
    form = {"csrf_token": token, "document_sha256": shown_hash.group(1), "version": "1"}
    wrong = await buyer.post(
        f"{path}/sign", data={**form, "full_name": "Ana Popescu", "agree": "1"}
    )
    assert wrong.status_code == 422
    assert 'aria-invalid="true"' in wrong.text
    assert CLIENT_NAME in wrong.text  # the message names the expected name
    unticked = await buyer.post(f"{path}/sign", data={**form, "full_name": CLIENT_NAME})
    assert unticked.status_code == 422
    assert "Tick the box" in unticked.text
    no_csrf = await buyer.post(
        f"{path}/sign", data={"full_name": CLIENT_NAME, "agree": "1", "version": "1"}
    )
    assert no_csrf.status_code == 403
    assert await _count_signatures(db, deal) == 0

    signed = await buyer.post(f"{path}/sign", data={**form, "full_name": "ana pop", "agree": "1"})
    assert signed.status_code == 303, signed.text
    assert signed.headers["location"] == f"{path}?signed=1"
    after = await buyer.get(signed.headers["location"])
    assert "Your signature is recorded." in after.text
    assert 'name="full_name"' not in after.text  # nothing left for the client to sign
    assert await _count_signatures(db, deal) == 1

    pro_page = await pro.get(path)
    assert f"On your account: {PRO_NAME}" in pro_page.text
    done = await pro.post(
        f"{path}/sign",
        data={
            "csrf_token": _token(pro_page.text),
            "document_sha256": shown_hash.group(1),
            "version": "1",
            "full_name": PRO_NAME,
            "agree": "1",
        },
    )
    assert done.status_code == 303, done.text
    active = await pro.get(path)
    assert 'id="contract-state">Active<' in active.text
    assert "The contract is in force." not in active.text  # no ?signed on this URL
    assert 'name="full_name"' not in active.text
    assert "Propose a change" in active.text
    assert "Withdraw from this contract" not in active.text
    assert await _count_signatures(db, deal) == 2


async def test_a_stale_signature_form_is_refused(
    client: httpx.AsyncClient, db: WriteSession, browser: Browser
) -> None:
    deal = await make_contract(client, db)
    path = f"/contracts/{deal.contract.id}"
    buyer = await browser(deal.client)
    page = await buyer.get(path)
    response = await buyer.post(
        f"{path}/sign",
        data={
            "csrf_token": _token(page.text),
            "document_sha256": "a" * 64,
            "version": "1",
            "full_name": CLIENT_NAME,
            "agree": "1",
        },
    )
    assert response.status_code == 409
    assert 'data-code="stale_document"' in response.text
    assert await _count_signatures(db, deal) == 0


async def test_strangers_get_not_found_pages(
    client: httpx.AsyncClient, db: WriteSession, browser: Browser
) -> None:
    deal = await make_contract(client, db)
    stranger = await browser(await make_client(client))
    path = f"/contracts/{deal.contract.id}"
    assert (await stranger.get(path)).status_code == 404
    pdf = await stranger.get(f"{path}/document.pdf")
    assert pdf.status_code == 404
    assert not pdf.content.startswith(b"%PDF")
    listing = await stranger.get("/contracts")
    assert deal.job.title not in listing.text
    anonymous = await client.get(path)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/signin")


async def test_amendment_through_the_page(
    client: httpx.AsyncClient, db: WriteSession, browser: Browser
) -> None:
    deal = await make_contract(client, db)
    data = await sign_both(client, deal)
    first, second = data["milestones"]
    path = f"/contracts/{deal.contract.id}"
    pro = await browser(deal.pro)
    page = await pro.get(path)
    assert 'name="m0_title"' in page.text
    bad = await pro.post(
        f"{path}/amendments",
        data={
            "csrf_token": _token(page.text),
            "m0_id": first["id"],
            "m0_title": first["title"],
            "m0_amount": "lots",
            "m1_id": second["id"],
            "m1_title": second["title"],
            "m1_amount": "700",
        },
    )
    assert bad.status_code == 422
    assert "Milestone 1" in bad.text
    proposed = await pro.post(
        f"{path}/amendments",
        data={
            "csrf_token": _token(page.text),
            "m0_id": first["id"],
            "m0_title": first["title"],
            "m0_amount": "400",
            "m0_due": "",
            "m0_dod": "Materialele sunt pe șantier\nFaianța aleasă",
            "m1_id": second["id"],
            "m1_remove": "1",
            "m2_title": "Montaj complet",
            "m2_amount": "850.50",
            "m2_due": "2030-02-01",
            "m3_title": "",
            "m3_amount": "",
            "reason": "Client a cerut faianță",
        },
    )
    assert proposed.status_code == 303, proposed.text
    after = await pro.get(proposed.headers["location"])
    assert "Version 2 is waiting for signatures" in after.text
    assert "Client a cerut faianță" in after.text
    assert "Montaj complet" in after.text
    api = await client.get(deal.url, headers=deal.pro.headers)
    version = api.json()["versions"][1]
    assert (version["number"], version["state"], version["price"]) == (2, "pending", 125050)
    assert 'name="full_name"' in after.text  # the proposer signs too


async def test_withdraw_through_the_page(
    client: httpx.AsyncClient, db: WriteSession, browser: Browser
) -> None:
    deal = await make_contract(client, db)
    path = f"/contracts/{deal.contract.id}"
    buyer = await browser(deal.client)
    page = await buyer.get(path)
    response = await buyer.post(f"{path}/withdraw", data={"csrf_token": _token(page.text)})
    assert response.status_code == 303
    after = await buyer.get(response.headers["location"])
    assert "The contract was withdrawn." in after.text
    assert 'id="contract-state">Cancelled<' in after.text
    api = await client.get(deal.url, headers=deal.client.headers)
    assert api.json()["state"] == "cancelled"


async def test_hebrew_contract_page_is_right_to_left(
    client: httpx.AsyncClient, db: WriteSession, browser: Browser
) -> None:
    buyer = await make_client(client, language="he")
    deal = await make_contract(
        client,
        db,
        client_party=buyer,
        job={
            "market": "il",
            "currency": "ILS",
            "place_id": place_id("IL", "Tel Aviv-Yafo"),
            "lat": 32.0853,
            "lon": 34.7818,
        },
    )
    web = await browser(deal.client)
    page = await web.get(f"/contracts/{deal.contract.id}")
    assert page.status_code == 200
    assert '<html lang="he" dir="rtl">' in page.text
    assert "תל אביב-יפו" in page.text  # the place, named in the viewer's language
    assert "אינסטלציה" in page.text
    pdf = await web.get(f"/contracts/{deal.contract.id}/document.pdf")
    assert "אינסטלציה" in pdf_text(pdf.content)
