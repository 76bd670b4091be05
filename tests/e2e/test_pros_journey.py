"""Browser journey: a new pro onboards with a photo and an ID document, staff approve
them, and a client's search finds the now-verified pro. Axe runs on every page."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pyotp
import pytest
from PIL import Image
from playwright.sync_api import expect
from tests.e2e.forms import fill_registration, submit

from mesteri.catalog.reference import category_id, place_id

pytestmark = pytest.mark.browser

ADMIN = "admin@demo.mesteri.ro"
CLUJ = str(place_id("RO", "Cluj-Napoca"))


def _image(path: Path, color: tuple[int, int, int]) -> Path:
    buffer = io.BytesIO()
    Image.new("RGB", (900, 600), color).save(buffer, format="JPEG")
    path.write_bytes(buffer.getvalue())
    return path


def test_pro_onboarding_staff_approval_and_client_search(
    browser: Any,
    server: Any,
    person: Any,
    demo_password: str,
    assert_accessible: Any,
    tmp_path: Path,
) -> None:
    pro = browser.new_context(base_url=server.base_url, locale="en-US")
    page = pro.new_page()
    page.goto("/register?role=pro")
    fill_registration(page, person, "pro")
    submit(page, "form[action='/register']")

    # Step 1: the profile.
    page.goto("/pro/onboarding")
    assert_accessible(page, "onboarding")
    name = f"Elena Zugrăveli {person.email[4:10]}"
    page.locator("input[name=display_name]").fill(name)
    page.locator("select[name=primary_category]").select_option(value=str(category_id("painting")))
    page.locator("select[name=place_id]").select_option(value=CLUJ)
    page.locator("input[name=rate_min]").fill("70")
    page.locator("input[name=rate_max]").fill("120")
    page.locator("textarea[name=bio]").fill("Zugrăveli decorative, tapet și vopsitorie.")
    submit(page, "form[action='/pro/onboarding/profile']")
    expect(page.locator(".alert.success")).to_be_visible()

    # Step 2: a photo, sent with a progress bar (XHR), then the page reloads.
    page.locator("input[name=photo]").set_input_files(
        str(_image(tmp_path / "wall.jpg", (180, 90, 40)))
    )
    page.locator("form[action='/pro/onboarding/photo'] input[name=caption]").fill("Living renovat")
    with page.expect_navigation(wait_until="load"):
        page.locator("form[action='/pro/onboarding/photo'] button[type=submit]").click()
    expect(page.locator("#step-photos .gallery img")).to_have_count(1)

    # Step 3: the identity document.
    page.locator("input[name=legal_name]").fill(f"{person.first_name} {person.last_name}")
    page.locator("input[name=document]").set_input_files(
        str(_image(tmp_path / "id.jpg", (20, 20, 160)))
    )
    with page.expect_navigation(wait_until="load"):
        page.locator("form[action='/pro/onboarding/verification'] button[type=submit]").click()
    expect(page.locator("#step-verification .alert.warning")).to_be_visible()
    assert_accessible(page, "onboarding after submitting")
    profile_href = page.locator("a[href^='/pros/']").last.get_attribute("href")
    page.goto(profile_href)
    assert_accessible(page, "public profile")
    assert person.email not in page.content()
    page.goto("/saved")
    assert_accessible(page, "saved professionals")
    pro.close()

    # Staff: the demo admin sets up two-factor, then approves from the queue.
    staff = browser.new_context(base_url=server.base_url, locale="en-US")
    page = staff.new_page()
    page.goto("/signin")
    page.locator("input[name=login]").fill(ADMIN)
    page.locator("input[name=password]").fill(demo_password)
    submit(page, "form[action='/signin']")
    submit(page, "form[action='/account/2fa/setup']")
    key = page.locator(".qr code").inner_text().strip()
    page.locator("form[action='/account/2fa/enable'] input[name=code]").fill(pyotp.TOTP(key).now())
    submit(page, "form[action='/account/2fa/enable']")
    page.goto("/admin/verifications")
    assert_accessible(page, "verification queue")
    row = page.locator("tr", has_text=name)
    with page.expect_navigation(wait_until="load"):
        row.locator("a").click()
    assert_accessible(page, "verification review")
    expect(page.locator("#h-docs ~ .gallery img")).to_have_count(1)
    with page.expect_navigation(wait_until="load"):
        page.locator("form[action$='/decide'] button[type=submit]").first.click()
    expect(page).to_have_url(re.compile(r"/admin/verifications\?decided=1$"))
    staff.close()

    # A client (not signed in) searches: the pro is found, verified, with a distance.
    client = browser.new_context(base_url=server.base_url, locale="en-US")
    page = client.new_page()
    page.goto("/pros")
    assert_accessible(page, "search")
    page.locator("input[name=q]").fill("zugraveli")
    page.locator("select[name=category]").select_option(value="painting")
    page.locator("select[name=place_id]").select_option(value=CLUJ)
    page.locator("input[name=verified]").check()
    submit(page, "form[role=search]")
    assert "verified=1" in page.url
    assert "category=painting" in page.url
    card = page.locator(".result", has_text=name)
    expect(card).to_be_visible()
    expect(card.locator(".badge.verified")).to_be_visible()
    expect(card.locator(".distance")).to_contain_text("km")
    assert_accessible(page, "search results")
    client.close()
