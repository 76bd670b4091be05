"""Live chat in two browsers on the demo data: the demo client and the demo pro open the
job room of their contract in progress; the pro's typing shows on the client's screen,
the message arrives without a reload and its tick turns to "read" once the client has it
on screen; the answer goes back the same way; the inbox badge counts a new message on
another page; before a contract is signed the pro's phone number is hidden. Inbox,
conversation, notifications and their settings pass axe."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect
from tests.e2e.test_payments import CLIENT, PRO, _sign_in

pytestmark = pytest.mark.browser

ROOM = "Instalație sanitară nouă în apartament"  # the demo contract in progress
UNSIGNED = "Reparație țeavă spartă în bucătărie"  # hired, waiting for the pro's signature


def _in_english(page: Any) -> None:
    with page.expect_navigation():
        page.locator("#language-select").select_option("en")
    expect(page.locator("html")).to_have_attribute("lang", "en")


def _open_room(page: Any, title: str) -> None:
    page.goto("/inbox")
    page.locator("#inbox li[data-kind=contract]", has_text=title).locator("a").click()
    page.wait_for_load_state("load")
    expect(page.locator("h1")).to_have_text(title)


def _send(page: Any, text: str) -> None:
    page.locator("#f-body").fill(text)
    page.locator("#composer button[type=submit]").click()
    expect(page.locator(".message.mine", has_text=text)).to_be_visible()
    expect(page.locator("#f-body")).to_have_value("")  # sent by the script, no reload


def test_client_and_pro_chat_live_with_typing_and_read_ticks(
    browser: Any, server: Any, demo_password: str, assert_accessible: Any
) -> None:
    client_context = browser.new_context(base_url=server.base_url, locale="en-US")
    pro_context = browser.new_context(base_url=server.base_url, locale="en-US")
    try:
        c, p = client_context.new_page(), pro_context.new_page()
        _sign_in(c, CLIENT, demo_password)
        _sign_in(p, PRO, demo_password)
        _in_english(c)
        _in_english(p)

        c.goto("/inbox")
        expect(c.locator("#inbox")).to_contain_text(ROOM)
        assert_accessible(c, "inbox")
        _open_room(c, ROOM)
        expect(c.locator(".message.mine", has_text="Puteți începe luni")).to_be_visible()
        expect(c.locator(".message.system").first).to_be_visible()  # the room's own story
        assert_accessible(c, "conversation (client)")
        _open_room(p, ROOM)
        expect(c.locator(".chat-head .presence")).to_have_text("online")  # the pro is here

        # The pro types: the client sees it; the message then arrives live.
        p.locator("#f-body").press_sequentially("Ajung", delay=50)
        expect(c.locator("#typing")).to_be_visible()
        _send(p, "Ajung în 10 minute.")
        expect(c.locator(".message.theirs", has_text="Ajung în 10 minute.")).to_be_visible()
        expect(c.locator("#typing")).to_be_hidden()
        mine = p.locator(".message.mine", has_text="Ajung în 10 minute.")
        expect(mine.locator(".tick.read")).to_have_count(1)  # the client has it on screen
        assert_accessible(p, "conversation (pro) after a live message")

        # The answer goes back the same way.
        _send(c, "Perfect, vă aștept.")
        expect(p.locator(".message.theirs", has_text="Perfect, vă aștept.")).to_be_visible()
        expect(
            c.locator(".message.mine", has_text="Perfect, vă aștept.").locator(".tick.read")
        ).to_have_count(1)

        # Elsewhere on the site, the inbox badge counts a new message.
        p.goto("/contracts")
        badge = p.locator("#inbox-badge")
        p.wait_for_timeout(1000)  # the page's socket is open and the badges were read
        before = int(badge.text_content() or 0) if badge.is_visible() else 0
        _send(c, "Și adu, vă rog, garnituri de rezervă.")
        expect(badge).to_have_text(str(before + 1))

        # Before both signed, contact details are hidden for the reader.
        _open_room(c, UNSIGNED)
        pro_line = c.locator(".message.theirs", has_text="îl semnez diseară")
        expect(pro_line.locator("mark.hidden-contact")).to_have_count(1)
        expect(pro_line).not_to_contain_text("0722")
        expect(c.locator("#mask-rule")).to_be_visible()
        assert_accessible(c, "conversation before the contract is signed")

        c.goto("/notifications")
        expect(c.locator("h1")).to_have_text("Notifications")
        assert_accessible(c, "notifications")
        c.goto("/settings/notifications")
        assert_accessible(c, "notification settings")
        c.locator("#p-proposal\\.received-email").uncheck()
        c.locator("#preferences button[type=submit]").click()
        expect(c.locator("#settings-saved")).to_be_visible()
        expect(c.locator("#p-proposal\\.received-email")).not_to_be_checked()
    finally:
        client_context.close()
        pro_context.close()
