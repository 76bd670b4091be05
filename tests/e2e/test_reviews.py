"""Reviews in browsers on the demo data: the demo client accepts the delivered milestone
of the demo contract in progress (the pro is paid, which opens the reviews), finds the
reviews from the contract page and writes theirs with the star radio groups; the pro
cannot see it until writing theirs, then both are public; the client sees it on the pro's
reviews page, the pro answers and reports it, and staff hide it on the moderation page.
Every page is checked with axe."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from tests.e2e.forms import submit
from tests.e2e.test_payments import ADMIN, CLIENT, PRO, _sign_in, staff

pytestmark = pytest.mark.browser

__all__ = ["staff"]

FLAT = "Instalație sanitară nouă în apartament"  # demo contract in progress (demo_jobs)


def _in_english(page: Any) -> None:
    with page.expect_navigation():
        page.locator("#language-select").select_option("en")
    expect(page.locator("html")).to_have_attribute("lang", "en")


def _contract(page: Any) -> None:
    page.goto("/contracts")
    page.get_by_role("link", name=FLAT).first.click()
    page.wait_for_load_state("load")


def _review_page(page: Any) -> str:
    _contract(page)
    page.locator("#reviews a[href$='/review']").click()
    page.wait_for_load_state("load")
    match = re.search(r"/contracts/([0-9a-f-]{36})/review", page.url)
    assert match, page.url
    return match.group(1)


def test_write_publish_answer_and_moderate_reviews(
    browser: Any, server: Any, demo_password: str, assert_accessible: Any, staff: dict[str, Any]
) -> None:
    client_context = browser.new_context(base_url=server.base_url, locale="en-US")
    pro_context = browser.new_context(base_url=server.base_url, locale="en-US")
    admin_context = browser.new_context(base_url=server.base_url, locale="en-US")
    try:
        c, p, a = client_context.new_page(), pro_context.new_page(), admin_context.new_page()
        c.on("dialog", lambda dialog: dialog.accept())  # "are you sure?" questions
        _sign_in(c, CLIENT, demo_password)
        _sign_in(p, PRO, demo_password)
        _in_english(c)
        _in_english(p)

        # The client accepts the delivered milestone: the pro is paid, reviews open.
        _contract(c)
        expect(c.locator("#reviews")).to_have_count(1)  # the first milestone was paid
        submit(c, "form[action$='/transitions/accept']")
        expect(c.locator("#reviews a[href$='/review']")).to_be_visible()
        assert_accessible(c, "contract page with the reviews link")

        contract_id = _review_page(c)
        expect(c.locator("#h-form")).to_have_text("Review the professional")
        assert_accessible(c, "review form (client)")
        c.locator("fieldset#f-overall").get_by_label("5 stars").check()
        c.locator("fieldset#f-quality").get_by_label("4 stars").check()
        c.fill("textarea[name=comment]", "Robinet montat repede și curat.")
        submit(c, "form.review-form")
        expect(c.locator(".alert.success")).to_have_text("Your review is saved.")
        expect(c.locator("#my-review")).to_contain_text("Sealed: only you can see it")
        assert_accessible(c, "review page after writing (client)")

        # The pro does not see the client's review until writing theirs.
        assert _review_page(p) == contract_id
        expect(p.locator("#their-review")).to_contain_text("Not published yet")
        assert "Robinet montat repede" not in p.content()
        p.locator("fieldset#f-overall").get_by_label("4 stars").check()
        p.fill("textarea[name=comment]", "Client punctual, plată rapidă.")
        submit(p, "form.review-form")
        expect(p.locator("#their-review")).to_contain_text("Robinet montat repede și curat.")
        assert_accessible(p, "review page after publication (pro)")

        # Both public: the client finds theirs on the pro's reviews page.
        c.reload()
        expect(c.locator("#their-review")).to_contain_text("Client punctual, plată rapidă.")
        c.locator("#pro-reviews-link").click()
        c.wait_for_load_state("load")
        expect(c.locator(".review-list")).to_contain_text("Robinet montat repede și curat.")
        expect(c.locator(".review-list")).to_contain_text("Verified job")
        assert "Client punctual" not in c.content()
        assert_accessible(c, "a pro's reviews page")
        reviews_url = c.url

        # The pro answers once (the demo pro has earlier reviews: act on this one).
        p.goto(reviews_url)
        mine = "#" + str(
            p.locator("li.review", has_text="Robinet montat repede și curat.").get_attribute("id")
        )
        p.locator(f"{mine} summary", has_text="Answer this review").click()
        p.locator(f"{mine} textarea[name=body]").fill("Mulțumesc, oricând!")
        submit(p, f"{mine} form[action$='/response']")
        expect(p.locator(f"{mine} .review-response")).to_contain_text("Mulțumesc, oricând!")
        assert_accessible(p, "a pro's reviews page (the pro)")

        # The pro reports it (to reach the queue); staff hide it.
        p.locator(f"{mine} summary", has_text="Report this review").click()
        p.locator(f"{mine} select[name=reason]").select_option("personal_data")
        p.locator(f"{mine} textarea[name=details]").fill("Conține adresa mea.")
        submit(p, f"{mine} form[action$='/report']")
        expect(p.locator(".alert.success")).to_contain_text("Our team will look at this review")

        _sign_in(a, ADMIN, demo_password, staff["totp"])
        _in_english(a)
        a.goto("/admin/reviews")
        expect(a.locator(".review-list")).to_contain_text("Conține adresa mea.")
        assert_accessible(a, "review moderation queue")
        a.locator(".review-list input[value=hide]").first.check()
        a.locator(".review-list textarea[name=reason]").first.fill("Date personale.")
        submit(a, ".review-list form")
        expect(a.locator(".alert.success")).to_have_text("Decision saved.")
        assert_accessible(a, "review moderation queue after a decision")
        c.goto(reviews_url)
        expect(c.locator(".review-list")).not_to_contain_text("Robinet montat repede și curat.")
        expect(c.locator(".review-list")).to_contain_text("A explicat tot ce a făcut.")
    finally:
        client_context.close()
        pro_context.close()
        admin_context.close()
