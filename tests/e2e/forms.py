"""What browser tests do on forms: submit and wait for the answer, type a phone number as
people do, register through the page."""

from __future__ import annotations

from typing import Any


def national(phone: str) -> str:
    """+40722123456 -> '0722 123 456', as people type it."""
    digits = "0" + phone.removeprefix("+40")
    return f"{digits[:4]} {digits[4:7]} {digits[7:]}"


def submit(page: Any, form: str) -> None:
    """Click the submit button of ``form`` and wait for the page that answers."""
    with page.expect_navigation(wait_until="load"):
        page.locator(f"{form} button[type=submit]").click()


def fill_registration(page: Any, person: Any, role: str) -> None:
    """The register form (already open) filled in for ``person`` as a client or pro."""
    page.locator(f"input[name=role][value={role}]").check()
    page.locator("input[name=first_name]").fill(person.first_name)
    page.locator("input[name=last_name]").fill(person.last_name)
    page.locator("input[name=email]").fill(person.email)
    page.locator("input[name=phone]").fill(national(person.phone))
    page.locator("input[name=password]").fill(person.password)
