"""Outbound messages over a real SMTP server (aiosmtpd on loopback)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from mesteri.notifications.senders import SmtpEmailSender


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            (envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default))
        )
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


async def test_smtp_sender_delivers_utf8(smtp: tuple[Inbox, int]) -> None:
    inbox, port = smtp
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{port}", "Mesteri <no-reply@mesteri.ro>")
    await sender.send(to="ana@example.ro", subject="Codul tău", body="Codul este 123456. Ș ț ă")
    ((rcpt, message),) = inbox.messages
    assert rcpt == ["ana@example.ro"]
    assert message["Subject"] == "Codul tău"
    assert "Ș ț ă" in message.get_content()


async def test_smtp_failure_raises_for_retry() -> None:
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{_free_port()}", "x@mesteri.ro")
    with pytest.raises(Exception):  # noqa: B017,PT011 - connection refused, whatever the type
        await sender.send(to="a@b.ro", subject="s", body="b")


async def test_registration_code_arrives_over_smtp(smtp: tuple[Inbox, int], live: Any) -> None:
    """The whole path: request → outbox → relay → job → SMTP server."""
    from mesteri.notifications import senders
    from tests.fixtures.accounts import register

    inbox, port = smtp
    senders.configure(f"smtp://127.0.0.1:{port}", "Mesteri <no-reply@mesteri.ro>")
    auth = await register(live.client, language="ro")
    await live.drain()
    ((rcpt, message),) = inbox.messages
    assert rcpt == [auth["user"]["email"]]
    body = message.get_content()
    assert "Mesteri" in body
    assert any(ch.isdigit() for ch in body)
    assert message["Subject"] != "Confirm your contact details"  # sent in Romanian


async def test_failed_delivery_keeps_its_error_and_is_retried(live: Any) -> None:
    from sqlalchemy import text

    from mesteri.notifications import senders
    from mesteri.notifications.tasks import DeliveryFailedError, deliver_message
    from tests.fixtures.accounts import register

    senders.configure(f"smtp://127.0.0.1:{_free_port()}", "x@mesteri.ro")  # nobody listens
    auth = await register(live.client)
    outbox = (
        await live.client.get("/api/v1/dev/outbox", params={"to": auth["user"]["email"]})
    ).json()["items"]
    with pytest.raises(DeliveryFailedError):
        await deliver_message(message_id=outbox[0]["id"])
    async with live.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT state, attempts, error FROM outbound_messages WHERE id = :id"),
                {"id": outbox[0]["id"]},
            )
        ).one()
    assert row.state == "queued"
    assert row.attempts == 1
    assert row.error
