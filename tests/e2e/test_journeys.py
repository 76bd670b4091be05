"""Journeys through the real pages in a headless Chromium, against a real `mesteri run`.

Elements are found by ``name``/``id``/``action`` attributes, never by translated text:
the translations change independently of these tests. Every page visited is checked
with axe-core.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect
from tests.e2e.forms import fill_registration, submit

pytestmark = pytest.mark.browser

DEMO_CLIENT = "client@demo.mesteri.ro"

SIGNOUT = "header form[action='/signout'] button[type=submit]"
ACCOUNT_LINK = "header a[href='/account']"
SIGNIN_LINK = "header a[href='/signin']"


def url_path(path: str, query: str = "") -> re.Pattern[str]:
    return re.compile(r"^https?://[^/]+" + re.escape(path) + (r"\?" + query if query else "$"))


def expect_signed_in(page: Any) -> None:
    expect(page.locator(SIGNOUT)).to_be_visible()
    expect(page.locator(ACCOUNT_LINK)).to_be_visible()
    expect(page.locator(SIGNIN_LINK)).to_have_count(0)


def expect_signed_out(page: Any) -> None:
    expect(page.locator(SIGNIN_LINK)).to_be_visible()
    expect(page.locator(SIGNOUT)).to_have_count(0)


def test_register_verify_sign_out_sign_in_and_switch_to_hebrew(
    page: Any, context: Any, person: Any, outbox: Any, assert_accessible: Any
) -> None:
    # Register as a client.
    page.goto("/register")
    expect(page.locator("form[action='/register']")).to_be_visible()
    assert_accessible(page, "register")
    fill_registration(page, person, "client")
    submit(page, "form[action='/register']")

    # Lands on /verify, signed in by a Secure, HttpOnly session cookie.
    expect(page).to_have_url(url_path("/verify"))
    session = [c for c in context.cookies() if c["name"] == "mesteri_session"]
    assert session, f"no session cookie after registering: {context.cookies()}"
    assert session[0]["secure"]
    assert session[0]["httpOnly"]
    expect(page.locator("#verify-email input[name=code]")).to_be_visible()
    expect(page.locator("#verify-phone input[name=code]")).to_be_visible()
    assert_accessible(page, "verify")

    # Both codes come from the dev outbox.
    email_code = outbox.code(person.email, "otp.verify_email")
    phone_code = outbox.code(person.phone, "otp.verify_phone")

    page.locator("#verify-email input[name=code]").fill(email_code)
    submit(page, "#verify-email form[action='/verify/email']")
    expect(page).to_have_url(url_path("/verify"))
    expect(page.locator("#verify-email form[action='/verify/email']")).to_have_count(0)
    assert_accessible(page, "verify, e-mail confirmed")

    page.locator("#verify-phone input[name=code]").fill(phone_code)
    submit(page, "#verify-phone form[action='/verify/phone']")

    # Home, with the welcome message.
    expect(page).to_have_url(url_path("/", r"welcome=1$"))
    expect(page.locator("main .alert.success[role=status]")).to_be_visible()
    expect_signed_in(page)
    assert_accessible(page, "home, welcome")

    # Sign out.
    submit(page, "header form[action='/signout']")
    expect(page).to_have_url(url_path("/"))
    expect_signed_out(page)
    assert_accessible(page, "home, signed out")

    # Sign in with e-mail and password.
    with page.expect_navigation():
        page.locator(SIGNIN_LINK).click()
    expect(page).to_have_url(url_path("/signin"))
    assert_accessible(page, "sign in")
    page.locator("form[action='/signin'] input[name=login]").fill(person.email)
    page.locator("form[action='/signin'] input[name=password]").fill(person.password)
    submit(page, "form[action='/signin']")
    expect(page).to_have_url(url_path("/"))
    expect_signed_in(page)
    assert_accessible(page, "home, signed in")

    # The account settings page.
    with page.expect_navigation():
        page.locator(ACCOUNT_LINK).click()
    expect(page).to_have_url(url_path("/account"))
    expect(page.locator("#f-language")).to_be_visible()
    expect(page.locator("main")).to_contain_text(person.email)
    assert_accessible(page, "account")

    # Hebrew from the footer switcher (it submits itself on change).
    expect(page.locator("html")).to_have_attribute("dir", "ltr")
    with page.expect_navigation():
        page.locator("#language-select").select_option("he")
    html = page.locator("html")
    expect(html).to_have_attribute("lang", "he")
    expect(html).to_have_attribute("dir", "rtl")
    expect(page).to_have_url(url_path("/account"))
    assert_accessible(page, "account, Hebrew")

    # It sticks on the next page.
    page.goto("/")
    expect(html).to_have_attribute("lang", "he")
    expect(html).to_have_attribute("dir", "rtl")
    expect_signed_in(page)
    assert_accessible(page, "home, Hebrew")


def test_sign_in_with_an_email_code(page: Any, outbox: Any, assert_accessible: Any) -> None:
    page.goto("/signin/code")
    expect(page.locator("form[action='/signin/code/send']")).to_be_visible()
    assert_accessible(page, "sign in with a code: login")

    before = outbox.ids(DEMO_CLIENT)
    page.locator("form[action='/signin/code/send'] input[name=login]").fill(DEMO_CLIENT)
    submit(page, "form[action='/signin/code/send']")
    code_input = page.locator("form[action='/signin/code'] input[name=code]")
    expect(code_input).to_be_visible()
    assert_accessible(page, "sign in with a code: code")

    code = outbox.code(DEMO_CLIENT, "otp.login", after=before)
    code_input.fill(code)
    submit(page, "form[action='/signin/code']")
    expect(page).to_have_url(url_path("/"))
    expect_signed_in(page)


def test_reset_a_forgotten_password(
    page: Any, api: httpx.Client, person: Any, outbox: Any, assert_accessible: Any
) -> None:
    created = api.post(
        "/api/v1/auth/register",
        json={
            "email": person.email,
            "phone": person.phone,
            "password": person.password,
            "role": "client",
            "first_name": person.first_name,
            "last_name": person.last_name,
        },
    )
    assert created.status_code == 201, created.text
    new_password = "quiet-Meadow-83-lantern"

    page.goto("/password/forgot")
    expect(page.locator("form[action='/password/forgot']")).to_be_visible()
    assert_accessible(page, "forgot password")
    page.locator("form[action='/password/forgot'] input[name=login]").fill(person.email)
    submit(page, "form[action='/password/forgot']")

    expect(page).to_have_url(url_path("/password/reset", r"login="))
    form = "form[action='/password/reset']"
    expect(page.locator(f"{form} input[name=login]")).to_have_value(person.email)
    assert_accessible(page, "reset password")
    code = outbox.code(person.email, "otp.password_reset")
    page.locator(f"{form} input[name=code]").fill(code)
    page.locator(f"{form} input[name=new_password]").fill(new_password)
    submit(page, form)

    # The sign-in form comes back with a notice; the new password works there.
    signin = "form[action='/signin']"
    expect(page.locator(signin)).to_be_visible()
    expect(page.locator("main .alert.success[role=status]")).to_be_visible()
    assert_accessible(page, "sign in after the reset")
    page.locator(f"{signin} input[name=login]").fill(person.email)
    page.locator(f"{signin} input[name=password]").fill(new_password)
    submit(page, signin)
    expect(page).to_have_url(url_path("/"))
    expect_signed_in(page)

    # And the old one does not any more.
    old = api.post("/api/v1/auth/login", json={"login": person.email, "password": person.password})
    assert old.status_code == 401, old.text


def test_a_form_post_without_its_csrf_token_is_refused(
    page: Any, context: Any, demo_password: str
) -> None:
    # The page sets the CSRF cookie, so only the form's token is missing below.
    page.goto("/signin")
    expect(page.locator("form[action='/signin'] input[name=csrf_token]")).to_have_count(1)
    assert any(c["name"] == "mesteri_csrf" for c in context.cookies())
    credentials = {"login": DEMO_CLIENT, "password": demo_password}

    missing = page.request.post("/signin", form=credentials, max_redirects=0)
    assert missing.status == 403, missing.text()

    forged = page.request.post(
        "/signin", form={**credentials, "csrf_token": "forged"}, max_redirects=0
    )
    assert forged.status == 403, forged.text()

    # The same from a script in the page: the browser sends the cookies, not the token.
    status = page.evaluate(
        """async (fields) => {
            const response = await fetch("/signin", {
                method: "POST", body: new URLSearchParams(fields), redirect: "manual",
            });
            return response.status;
        }""",
        credentials,
    )
    assert status == 403

    page.goto("/")
    expect_signed_out(page)
    assert not any(c["name"] == "mesteri_session" for c in context.cookies())


def test_manifest_service_worker_and_offline_page(
    page: Any, context: Any, assert_accessible: Any
) -> None:
    manifest = page.request.get("/manifest.webmanifest")
    assert manifest.status == 200
    assert "json" in manifest.headers["content-type"]
    data = json.loads(manifest.text())
    assert data["start_url"] == "/"
    assert data["icons"], data
    for icon in data["icons"]:
        assert {"src", "sizes", "type"} <= icon.keys(), icon
        image = page.request.get(icon["src"])
        assert image.status == 200, icon
        assert image.headers["content-type"] == icon["type"], icon

    worker = page.request.get("/sw.js")
    assert worker.status == 200
    assert "javascript" in worker.headers["content-type"]

    # The offline page as the server renders it, to recognise it later.
    page.goto("/offline")
    offline_heading = page.locator("main h1").inner_text()
    assert offline_heading.strip()
    assert_accessible(page, "offline")

    page.goto("/signin")
    signin_heading = page.locator("main h1").inner_text()
    assert signin_heading != offline_heading
    scope = page.evaluate("navigator.serviceWorker.ready.then((r) => r.scope)")
    assert scope.rstrip("/") == page.url.split("/signin")[0]
    # Make sure the worker controls this page (clients.claim() may still be on its way).
    page.reload()
    page.wait_for_function("navigator.serviceWorker.controller !== null")

    context.set_offline(True)
    try:
        page.goto("/signin")
        expect(page.locator("main h1")).to_have_text(offline_heading)
        expect(page).to_have_url(url_path("/signin"))
    finally:
        context.set_offline(False)

    page.goto("/signin")
    expect(page.locator("main h1")).to_have_text(signin_heading)
