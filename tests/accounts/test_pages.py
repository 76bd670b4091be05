"""Account pages over HTTP: CSRF, forms that re-render with errors, cookies, language."""

from __future__ import annotations

import re
import uuid

import httpx

from tests.conftest import PASSWORD
from tests.fixtures.accounts import latest_code, register, unique_contact

_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


async def csrf(client: httpx.AsyncClient, path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    match = _TOKEN.search(page.text)
    assert match, "the form has no CSRF token"
    return match.group(1)


async def test_form_post_without_csrf_is_refused(client: httpx.AsyncClient) -> None:
    await client.get("/signin")  # sets the CSRF cookie
    response = await client.post("/signin", data={"login": "a@b.ro", "password": "x" * 12})
    assert response.status_code == 403
    assert 'data-code="csrf_failed"' in response.text
    forged = await client.post(
        "/signin", data={"login": "a@b.ro", "password": "x" * 12, "csrf_token": "forged"}
    )
    assert forged.status_code == 403


async def test_csrf_token_is_bound_to_the_cookie(client: httpx.AsyncClient, app: object) -> None:
    token = await csrf(client, "/signin")
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as other:
        await other.get("/signin")  # a different browser, a different cookie
        response = await other.post(
            "/signin", data={"login": "a@b.ro", "password": "x", "csrf_token": token}
        )
    assert response.status_code == 403


async def test_register_verify_signout_signin_by_forms(client: httpx.AsyncClient) -> None:
    email, phone = unique_contact()
    token = await csrf(client, "/register")
    form = {
        "csrf_token": token,
        "role": "pro",
        "first_name": "Radu",
        "last_name": "Matei",
        "email": email,
        "phone": phone,
    }
    weak = await client.post("/register", data={**form, "password": "password1"})
    assert weak.status_code == 422
    assert 'aria-invalid="true"' in weak.text
    assert email in weak.text
    created = await client.post("/register", data={**form, "password": PASSWORD})
    assert created.status_code == 303
    assert created.headers["location"] == "/verify"
    cookie = created.headers["set-cookie"]
    assert "mesteri_session=" in cookie
    assert "HttpOnly" in cookie
    assert "Secure" in cookie
    assert "SameSite=lax" in cookie

    verify = await client.get("/verify")
    assert email in verify.text
    wrong = await client.post("/verify/email", data={"csrf_token": token, "code": "000000"})
    assert wrong.status_code == 422
    assert "attempts left" in wrong.text
    for what, to in (("email", email), ("phone", phone)):
        code = await latest_code(client, to, f"otp.verify_{what}")
        done = await client.post(f"/verify/{what}", data={"csrf_token": token, "code": code})
        assert done.status_code == 303
    assert done.headers["location"] == "/?welcome=1"
    home = await client.get("/?welcome=1")
    assert "Radu" in home.text

    out = await client.post("/signout", data={"csrf_token": token})
    assert out.status_code == 303
    assert "Sign in" in (await client.get("/")).text
    account = await client.get("/account")
    assert account.status_code == 303
    assert account.headers["location"] == "/signin?next=/account"

    bad = await client.post(
        "/signin",
        data={
            "csrf_token": token,
            "login": email,
            "password": "wrong-password-1",
            "next": "/account",
        },
    )
    assert bad.status_code == 401
    assert 'role="alert"' in bad.text
    good = await client.post(
        "/signin",
        data={"csrf_token": token, "login": email, "password": PASSWORD, "next": "/account"},
    )
    assert good.status_code == 303
    assert good.headers["location"] == "/account"
    assert "Two-factor authentication" in (await client.get("/account")).text


async def test_signin_refuses_open_redirects(client: httpx.AsyncClient) -> None:
    auth = await register(client)
    token = await csrf(client, "/signin")
    for target in ("https://evil.example", "//evil.example", "javascript:alert(1)"):
        response = await client.post(
            "/signin",
            data={
                "csrf_token": token,
                "login": auth["user"]["email"],
                "password": PASSWORD,
                "next": target,
            },
        )
        assert response.headers["location"] == "/"


async def test_language_switch_sets_rtl_for_hebrew(client: httpx.AsyncClient) -> None:
    token = await csrf(client, "/")
    switched = await client.post(
        "/language", data={"csrf_token": token, "language": "he", "next": "/signin"}
    )
    assert switched.status_code == 303
    assert switched.headers["location"] == "/signin"
    page = await client.get("/signin")
    assert '<html lang="he" dir="rtl">' in page.text
    await client.post("/language", data={"csrf_token": token, "language": "hu"})
    assert '<html lang="hu" dir="ltr">' in (await client.get("/")).text


async def test_accept_language_then_market_default(client: httpx.AsyncClient) -> None:
    hungarian = await client.get("/", headers={"accept-language": "hu-HU,hu;q=0.9"})
    assert '<html lang="hu"' in hungarian.text
    default = await client.get("/", headers={"accept-language": "fr"})
    assert '<html lang="ro"' in default.text


async def test_signed_in_users_language_wins(client: httpx.AsyncClient) -> None:
    auth = await register(client, language="he")
    token = await csrf(client, "/signin")
    await client.post(
        "/signin", data={"csrf_token": token, "login": auth["user"]["email"], "password": PASSWORD}
    )
    page = await client.get("/account", headers={"accept-language": "en"})
    assert '<html lang="he" dir="rtl">' in page.text


async def test_account_settings_and_delete(client: httpx.AsyncClient) -> None:
    auth = await register(client)
    token = await csrf(client, "/signin")
    await client.post(
        "/signin", data={"csrf_token": token, "login": auth["user"]["email"], "password": PASSWORD}
    )
    saved = await client.post(
        "/account/profile",
        data={"csrf_token": token, "first_name": "Ilinca", "last_name": "Pop", "language": "en"},
    )
    assert saved.status_code == 303
    assert "Ilinca" in (await client.get("/account")).text
    setup = await client.post("/account/2fa/setup", data={"csrf_token": token})
    assert "<svg" in setup.text
    assert "otpauth" not in setup.text.split("<svg")[0][-200:]
    export = await client.get("/account/export")
    assert export.json()["user"]["first_name"] == "Ilinca"
    unconfirmed = await client.post(
        "/account/delete", data={"csrf_token": token, "password": PASSWORD}
    )
    assert unconfirmed.status_code == 401
    deleted = await client.post(
        "/account/delete", data={"csrf_token": token, "password": PASSWORD, "confirm": "on"}
    )
    assert deleted.status_code == 200
    assert (await client.get("/account")).status_code == 303


async def test_unknown_page_is_a_localised_404(client: httpx.AsyncClient) -> None:
    page = await client.get("/no-such-page", headers={"accept-language": "en"})
    assert page.status_code == 404
    assert "<html" in page.text
    api = await client.get("/api/v1/no-such-thing")
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"


async def test_forgot_password_by_phone_keeps_the_plus(client: httpx.AsyncClient) -> None:
    auth = await register(client)
    phone = auth["user"]["phone"]
    token = await csrf(client, "/password/forgot")
    sent = await client.post("/password/forgot", data={"csrf_token": token, "login": phone})
    assert sent.status_code == 303
    form = await client.get(sent.headers["location"])
    assert f'value="{phone}"' in form.text
    code = await latest_code(client, phone, "otp.password_reset")
    reset = await client.post(
        "/password/reset",
        data={
            "csrf_token": token,
            "login": phone,
            "code": code,
            "new_password": "brand-new-Lantern-9",
        },
    )
    assert reset.status_code == 200
    assert "Sign in" in reset.text


async def test_an_error_page_for_a_signed_in_user_keeps_the_navigation(
    client: httpx.AsyncClient,
) -> None:
    """A domain error rolls the request back; the page still knows who is signed in."""
    auth = await register(client, role="pro")
    token = await csrf(client, "/signin")
    await client.post(
        "/signin", data={"csrf_token": token, "login": auth["user"]["email"], "password": PASSWORD}
    )
    page = await client.get(f"/pros/{uuid.uuid4()}", headers={"accept-language": "en"})
    assert page.status_code == 404
    assert 'href="/wallet"' in page.text  # the pro's navigation, read after the rollback
