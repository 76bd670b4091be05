"""The whole journey in two browsers: the demo client posts a job, the demo pro finds it
on the lead board and proposes, the client accepts, both sign, the client pays the first
milestone through the sandbox checkout (the running worker delivers the signed webhook),
the pro delivers, the client accepts, and the pro's wallet shows the net amount pending,
then available after 7 days on the test clock. Every page is checked with axe."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from tests.e2e.forms import submit
from tests.e2e.test_payments import CLIENT, PRO, _sign_in

from mesteri.catalog.reference import category_id, place_id

pytestmark = pytest.mark.browser

UUID = r"[0-9a-f-]{36}"


def _minor(page: Any, selector: str) -> int:
    """An amount as shown (``3.555,00 RON`` or ``RON 3,555.00``) in minor units."""
    return int(re.sub(r"\D", "", page.locator(selector).inner_text()))


def _reload_until(page: Any, selector: str, *, timeout: float = 30.0) -> None:
    """Reload until ``selector`` shows (the webhook and timers run in the worker)."""
    deadline = time.monotonic() + timeout
    while True:
        if page.locator(selector).count():
            return
        if time.monotonic() > deadline:
            expect(page.locator(selector)).to_be_visible()
        page.wait_for_timeout(500)
        page.reload()


def test_post_propose_hire_sign_pay_deliver_accept_in_two_browsers(
    browser: Any, server: Any, demo_password: str, assert_accessible: Any
) -> None:
    client_context = browser.new_context(base_url=server.base_url, locale="en-US")
    pro_context = browser.new_context(base_url=server.base_url, locale="en-US")
    try:
        c, p = client_context.new_page(), pro_context.new_page()
        for page in (c, p):
            page.on("dialog", lambda dialog: dialog.accept())  # "are you sure?" questions
        _sign_in(c, CLIENT, demo_password)
        _sign_in(p, PRO, demo_password)
        p.goto("/wallet")  # the demo pro was already paid for earlier demo work
        pending_before, available_before = _minor(p, "#pending"), _minor(p, "#available")

        # The client posts a job.
        c.goto("/jobs/new")
        assert_accessible(c, "post a job")
        c.fill("input[name=title]", "Montaj baterie nouă la cadă")
        c.fill("textarea[name=description]", "Bateria veche curge. Vreau una nouă, cu duș.")
        c.select_option("select[name=category_id]", str(category_id("plumbing")))
        c.select_option("select[name=place_id]", str(place_id("RO", "București")))
        c.fill("input[name=address]", "Strada Franceză 3, ap. 2")
        c.fill("input[name=budget_min]", "300")
        c.fill("input[name=budget_max]", "900")
        with c.expect_navigation(wait_until="load"):
            c.locator("#job-form button[name=action][value=publish]").click()
        expect(c).to_have_url(re.compile(rf"/jobs/{UUID}\?saved=published$"))
        job_id = c.url.split("?")[0].rsplit("/", 1)[-1]
        assert_accessible(c, "job page (client)")

        # The pro finds it on the lead board, without the client's address, and proposes.
        p.goto("/leads")
        expect(p.locator(f"a[href='/jobs/{job_id}/propose']")).to_be_visible()
        assert "Strada Franceză" not in p.content()
        assert_accessible(p, "lead board")
        p.goto(f"/jobs/{job_id}/propose")
        assert_accessible(p, "proposal form")
        p.fill("input[name=price]", "600")
        p.fill("textarea[name=message]", "Pot veni mâine la 9.")
        p.locator("input[name=milestone_title]").first.fill("Montaj baterie")
        p.locator("input[name=milestone_amount]").first.fill("600")
        p.locator("textarea[name=milestone_dod]").first.fill("Bateria montată\nFără scurgeri")
        submit(p, "form.proposal-form")
        expect(p.locator("main")).to_contain_text("Montaj baterie")

        # The client compares and accepts; both sign the contract.
        c.goto(f"/jobs/{job_id}/proposals")
        assert_accessible(c, "proposals comparison")
        c.locator("a[href$='/accept']").first.click()
        submit(c, "form[action$='/accept']")
        expect(c).to_have_url(re.compile(rf"/contracts/{UUID}"))
        contract_url = c.url.split("?")[0].split("#")[0]
        assert_accessible(c, "contract (client)")
        c.fill("input[name=full_name]", "Ioana Popescu")
        c.check("input[name=agree]")
        submit(c, "form[action$='/sign']")
        p.goto(contract_url)
        p.fill("input[name=full_name]", "Andrei Ionescu")
        p.check("input[name=agree]")
        submit(p, "form[action$='/sign']")
        # Signed by both: the milestone can be funded (the demo accounts read Romanian).
        expect(p.locator("li.milestone[data-state=awaiting_funding]")).to_be_visible()

        # The client pays into escrow through the sandbox checkout.
        c.goto(contract_url)
        submit(c, "form[action$='/transitions/fund']")
        expect(c.locator("input[name=card_number]")).to_be_visible()
        c.fill("input[name=card_number]", "4242 4242 4242 4242")
        submit(c, "form.pay-form")
        _reload_until(c, "li.milestone[data-state=funded]")
        assert_accessible(c, "contract with a funded milestone")

        # The pro delivers; the client accepts and the pro is paid.
        p.goto(contract_url)
        p.fill("textarea[name=note]", "Bateria e montată și probată.")
        for box in p.locator("input[name=dod_done]").all():
            box.check()
        with p.expect_navigation(wait_until="load"):
            p.locator("form[action$='/transitions/submit'] button[type=submit]").click()
        expect(p.locator("li.milestone[data-state=submitted]")).to_be_visible()
        c.goto(contract_url)
        submit(c, "form[action$='/transitions/accept']")
        expect(c.locator("li.milestone[data-state=released]")).to_be_visible()
        assert_accessible(c, "contract after payment")

        p.goto("/wallet")
        pending = _minor(p, "#pending")
        assert pending - pending_before == 54_000  # 600 lei less the 10 % platform fee
        with httpx.Client(base_url=server.base_url, timeout=30.0) as api:
            moved = api.post("/api/v1/dev/clock", json={"advance": "P7D"})
            assert moved.status_code == 200, moved.text
        # After the hold period everything pending (this payment included) is withdrawable.
        deadline = time.monotonic() + 30
        while _minor(p, "#available") != available_before + pending:
            assert time.monotonic() < deadline, p.locator("#available").inner_text()
            p.wait_for_timeout(500)
            p.reload()
        assert _minor(p, "#pending") == 0
        assert_accessible(p, "wallet")
    finally:
        client_context.close()
        pro_context.close()
