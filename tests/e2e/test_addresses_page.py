"""Browser journey: a client keeps saved addresses from the account page (add, edit,
make default, delete), on a phone-sized screen. Axe runs on every state of the page."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from tests.e2e.forms import fill_registration, submit

from mesteri.catalog.reference import place_id

pytestmark = pytest.mark.browser

CLUJ = str(place_id("RO", "Cluj-Napoca"))
BRASOV = str(place_id("RO", "Brașov"))


def test_client_manages_saved_addresses(
    browser: Any, server: Any, person: Any, assert_accessible: Any
) -> None:
    context = browser.new_context(
        base_url=server.base_url, locale="en-US", viewport={"width": 390, "height": 844}
    )
    page = context.new_page()
    page.goto("/register")
    fill_registration(page, person, "client")
    submit(page, "form[action='/register']")

    page.goto("/account")
    with page.expect_navigation(wait_until="load"):
        page.locator("a[href='/account/addresses']").click()
    expect(page.locator("h1")).to_have_text("Saved addresses")
    assert_accessible(page, "no saved addresses")

    # A missing name comes back marked on the field (the browser's own check is skipped).
    page.locator("#f-new-place_id").select_option(value=CLUJ)
    page.locator("form[action='/account/addresses']").evaluate("f => f.noValidate = true")
    submit(page, "form[action='/account/addresses']")
    expect(page.locator("#f-new-label")).to_have_attribute("aria-invalid", "true")
    assert_accessible(page, "an address without a name")

    page.locator("#f-new-label").fill("Home")
    page.locator("#f-new-place_id").select_option(value=CLUJ)
    page.locator("#f-new-street").fill("Strada Memorandumului 10")
    submit(page, "form[action='/account/addresses']")
    page.locator("#f-new-label").fill("Parents")
    page.locator("#f-new-place_id").select_option(value=BRASOV)
    submit(page, "form[action='/account/addresses']")
    cards = page.locator("li.result")
    expect(cards).to_have_count(2)
    expect(cards.first.locator(".badge")).to_have_text("Default")
    assert_accessible(page, "two saved addresses")

    # Make the second the default, then rename it through its edit form.
    parents = page.locator("li.result", has_text="Parents")
    with page.expect_navigation(wait_until="load"):
        parents.locator("form[action$='/default'] button").click()
    parents = page.locator("li.result", has_text="Parents")
    expect(parents.locator(".badge")).to_have_text("Default")
    parents.locator("summary").click()
    assert_accessible(page, "editing an address")
    parents.locator("input[name=label]").fill("Mum and dad")
    with page.expect_navigation(wait_until="load"):
        parents.locator("details form button[type=submit]").click()
    expect(page.locator("li.result", has_text="Mum and dad")).to_have_count(1)

    # Deleting the default leaves the other address as the default.
    with page.expect_navigation(wait_until="load"):
        page.locator("li.result", has_text="Mum and dad").locator(
            "form[action$='/delete'] button"
        ).click()
    expect(cards).to_have_count(1)
    expect(cards.first.locator(".badge")).to_have_text("Default")
    expect(page.locator(".alert.success")).to_have_text("Address deleted.")
    assert_accessible(page, "after deleting")
    context.close()
