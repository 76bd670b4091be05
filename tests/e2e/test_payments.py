"""Paying into escrow in a real browser: the sandbox checkout with the decline card and the
success card, the signed webhook through the running worker, the pro's wallet and the
finance page — each checked with axe-core."""

from __future__ import annotations

from typing import Any

import httpx
import pyotp
import pytest
from playwright.sync_api import expect
from tests.e2e.conftest import DEMO_PASSWORD
from tests.e2e.forms import submit
from tests.e2e.test_journeys import url_path

pytestmark = pytest.mark.browser

ADMIN = "admin@demo.mesteri.ro"
CLIENT = "client@demo.mesteri.ro"
PRO = "pro@demo.mesteri.ro"


@pytest.fixture(scope="module")
def staff(server: Any) -> dict[str, Any]:
    """The demo admin with two-factor set up (staff routes require it)."""
    with httpx.Client(base_url=server.base_url, timeout=30.0) as api:
        first = api.post("/api/v1/auth/login", json={"login": ADMIN, "password": DEMO_PASSWORD})
        assert first.status_code == 200, first.text
        headers = {"Authorization": f"Bearer {first.json()['tokens']['access_token']}"}
        secret = api.post("/api/v1/me/2fa/setup", headers=headers).json()["secret"]
        totp = pyotp.TOTP(secret)
        enabled = api.post("/api/v1/me/2fa/enable", json={"code": totp.now()}, headers=headers)
        assert enabled.status_code == 200, enabled.text
        signed = api.post(
            "/api/v1/auth/login",
            json={"login": ADMIN, "password": DEMO_PASSWORD, "totp": totp.now()},
        )
        assert signed.status_code == 200, signed.text
        return {"token": signed.json()["tokens"]["access_token"], "totp": totp}


def _hold(server: Any, staff: dict[str, Any], amount: int) -> dict[str, Any]:
    with httpx.Client(base_url=server.base_url, timeout=30.0) as api:
        response = api.post(
            "/api/v1/admin/holds",
            json={
                "payer_email": CLIENT,
                "payee_email": PRO,
                "amount": amount,
                "currency": "RON",
                "description": "Kitchen tap replacement",
            },
            headers={"Authorization": f"Bearer {staff['token']}"},
        )
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()
        return data


def _sign_in(page: Any, login: str, password: str, totp: pyotp.TOTP | None = None) -> None:
    page.goto("/signin")
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", password)
    submit(page, "form[action='/signin']")
    if totp is not None:
        page.fill("input[name=password]", password)
        page.fill("input[name=totp]", totp.now())
        submit(page, "form[action='/signin']")
    expect(page.locator("header form[action='/signout']")).to_be_visible()


def test_pay_with_the_decline_card_then_the_success_card(
    page: Any, server: Any, staff: dict[str, Any], demo_password: str, assert_accessible: Any
) -> None:
    created = _hold(server, staff, 25_000)
    _sign_in(page, CLIENT, demo_password)

    page.goto(created["checkout_url"])
    expect(page.locator("input[name=card_number]")).to_be_visible()
    assert_accessible(page, "sandbox checkout")
    page.fill("input[name=card_number]", "4000 0000 0000 0002")
    submit(page, "form.pay-form")
    expect(page.locator("#decline")).to_be_visible()
    assert_accessible(page, "checkout after a decline")

    page.fill("input[name=card_number]", "4242 4242 4242 4242")
    submit(page, "form.pay-form")
    # The status page waits for the signed webhook, then shows the escrow is funded.
    expect(page).to_have_url(url_path(f"/payments/{created['payment_id']}", "paid=1"))
    expect(page.locator("#payment-state.success")).to_be_visible(timeout=20_000)
    assert_accessible(page, "payment status")

    with httpx.Client(base_url=server.base_url, timeout=30.0) as api:
        hold = api.get(
            f"/api/v1/holds/{created['hold']['id']}",
            headers={"Authorization": f"Bearer {staff['token']}"},
        ).json()
    assert (hold["state"], hold["captured"]) == ("held", 25_000)


def test_wallet_and_finance_pages(
    browser: Any, server: Any, staff: dict[str, Any], demo_password: str, assert_accessible: Any
) -> None:
    context = browser.new_context(base_url=server.base_url, locale="en-US")
    try:
        page = context.new_page()
        _sign_in(page, ADMIN, demo_password, staff["totp"])
        page.goto("/admin/finance")
        expect(page.locator("form[action='/admin/finance/holds']")).to_be_visible()
        assert_accessible(page, "finance")
        page.fill("input[name=payer_email]", CLIENT)
        page.fill("input[name=payee_email]", PRO)
        page.fill("input[name=amount]", "120.50")
        page.fill("input[name=description]", "Boiler service")
        submit(page, "form[action='/admin/finance/holds']")
        expect(page.locator("#checkout-link")).to_be_visible()
        assert_accessible(page, "finance after creating a hold")

        pro = context.new_page()
        context.clear_cookies()
        _sign_in(pro, PRO, demo_password)
        pro.goto("/wallet")
        expect(pro.locator("#available")).to_be_visible()
        assert_accessible(pro, "wallet")
    finally:
        context.close()
