"""A dispute in three browsers: the demo client disputes a delivered milestone from the
contract page, the pro offers a split and adds evidence, the client asks for mediation,
the demo admin (two-factor) decides a split on the desk, and both parties see the
outcome. Every page visited is checked with axe."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from tests.e2e.conftest import DEMO_PASSWORD
from tests.e2e.forms import submit
from tests.e2e.test_payments import ADMIN, CLIENT, PRO, _sign_in
from tests.e2e.test_payments import staff as staff

pytestmark = pytest.mark.browser

UUID = r"[0-9a-f-]{36}"


def _delivered_milestone(server: Any) -> dict[str, Any]:
    """A milestone of the demo client's that the pro delivered (held in escrow)."""
    with httpx.Client(base_url=server.base_url, timeout=30.0) as api:
        signed = api.post("/api/v1/auth/login", json={"login": CLIENT, "password": DEMO_PASSWORD})
        assert signed.status_code == 200, signed.text
        headers = {"Authorization": f"Bearer {signed.json()['tokens']['access_token']}"}
        contracts = api.get("/api/v1/contracts", headers=headers).json()["items"]
        for contract in contracts:
            items = api.get(
                f"/api/v1/contracts/{contract['id']}/milestones", headers=headers
            ).json()["items"]
            for milestone in items:
                if milestone["state"] == "submitted":
                    found: dict[str, Any] = milestone
                    return found
    pytest.fail("the demo data has no delivered milestone")


def test_dispute_offer_mediation_and_split_decision(
    browser: Any,
    server: Any,
    staff: dict[str, Any],
    demo_password: str,
    assert_accessible: Any,
) -> None:
    milestone = _delivered_milestone(server)
    held = milestone["amount"]
    contexts = [browser.new_context(base_url=server.base_url, locale="en-US") for _ in range(3)]
    try:
        c, p, s = (ctx.new_page() for ctx in contexts)
        for page in (c, p, s):
            page.on("dialog", lambda dialog: dialog.accept())
        _sign_in(c, CLIENT, demo_password)
        _sign_in(p, PRO, demo_password)
        _sign_in(s, ADMIN, demo_password, staff["totp"])

        # The client opens the dispute from the contract's milestone timeline.
        c.goto(f"/contracts/{milestone['contract_id']}")
        with c.expect_navigation(wait_until="load"):
            c.locator(f"a[href='/milestones/{milestone['id']}/dispute']").first.click()
        expect(c.locator("form.dispute-form")).to_be_visible()
        assert_accessible(c, "open a dispute")
        c.fill("textarea[name=reason]", "Lavoarul curge și vasul WC nu e fixat bine.")
        c.fill("textarea[name=evidence]", "Se vede apa pe podea în fiecare dimineață.")
        submit(c, "form.dispute-form")
        expect(c).to_have_url(re.compile(rf"/disputes/{UUID}\?opened=1$"))
        dispute_url = c.url.split("?")[0].replace(server.base_url, "")
        expect(c.locator("#dispute-stage[data-stage=negotiation]")).to_be_visible()
        assert_accessible(c, "dispute (client)")

        # The pro answers with evidence and an offer.
        p.goto(dispute_url)
        p.fill("textarea[name=body]", "Am verificat: garnitura e bună, e o altă țeavă.")
        submit(p, "form.evidence-form")
        p.locator("#offers summary").click()
        p.fill("input[name=pro_amount]", str(held * 3 // 4 // 100))
        p.fill("input[name=client_amount]", str((held - held * 3 // 4) // 100))
        submit(p, "form.offer-form")
        expect(p.locator("li.offer[data-by=pro]")).to_be_visible()
        assert_accessible(p, "dispute (pro)")

        # The client does not accept: they ask Mesteri to mediate.
        c.goto(dispute_url)
        expect(c.locator("li.offer[data-by=pro] form button")).to_be_visible()
        submit(c, "form[action$='/escalate']")
        expect(c.locator("#dispute-stage[data-stage=mediation]")).to_be_visible()
        assert_accessible(c, "dispute in mediation")

        # Staff decide a split on the desk.
        dispute_id = dispute_url.rsplit("/", 1)[-1]
        s.goto("/admin/disputes")
        expect(s.locator(f"tr[data-dispute='{dispute_id}']")).to_be_visible()
        assert_accessible(s, "dispute queue")
        s.goto(f"/admin/disputes/{dispute_id}")
        assert_accessible(s, "dispute desk")
        # The desk reads the parties' job room as written (audited).
        s.locator("#job-room").click()
        s.wait_for_load_state("load")
        expect(s.locator("#staff-messages")).to_contain_text("Vă sun la 0744 555 010")
        assert_accessible(s, "the job room as written (staff)")
        s.goto(f"/admin/disputes/{dispute_id}")
        decision = "form.resolve-form"
        s.check(f"{decision} input[name=outcome][value=split]")
        s.fill(f"{decision} input[name=pro_amount]", str(held // 2 // 100))
        s.fill(f"{decision} input[name=client_amount]", str((held - held // 2) // 100))
        s.fill(f"{decision} textarea[name=note]", "Jumătate din lucrare trebuie refăcută.")
        s.check(f"{decision} input[name=confirm]")
        submit(s, "form.resolve-form")
        expect(s.locator("#outcome[data-outcome=split]")).to_be_visible()
        assert_accessible(s, "dispute desk after the decision")

        for page, who in ((c, "client"), (p, "pro")):
            page.goto(dispute_url)
            expect(page.locator("#outcome[data-outcome=split]")).to_be_visible()
            expect(page.locator("#dispute-stage[data-stage=resolved]")).to_be_visible()
            assert_accessible(page, f"dispute outcome ({who})")
        c.goto(f"/contracts/{milestone['contract_id']}")
        expect(c.locator(f"#milestone-{milestone['id']}[data-state=split]")).to_be_visible()
    finally:
        for ctx in contexts:
            ctx.close()
