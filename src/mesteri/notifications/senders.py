"""Where messages leave the platform. Each channel is an interface with a working
implementation for this machine: SMTP for e-mail when ``MESTERI_SMTP_URL`` is set, and
a logging sender otherwise (its messages stay readable in the dev outbox)."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import unquote, urlparse

import aiosmtplib

log = logging.getLogger(__name__)


class EmailSender(Protocol):
    async def send(self, *, to: str, subject: str, body: str) -> None: ...


class SmsSender(Protocol):
    async def send(self, *, to: str, body: str) -> None: ...


class SmtpEmailSender:
    """``smtp://user:pass@host:port`` (STARTTLS when offered) or ``smtps://`` (implicit TLS)."""

    def __init__(self, url: str, sender: str) -> None:
        parsed = urlparse(url)
        self.host = parsed.hostname or "localhost"
        self.use_tls = parsed.scheme == "smtps"
        self.port = parsed.port or (465 if self.use_tls else 25)
        self.username = unquote(parsed.username) if parsed.username else None
        self.password = unquote(parsed.password) if parsed.password else None
        self.sender = sender

    async def send(self, *, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message.set_content(body)
        await aiosmtplib.send(
            message,
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self.password,
            use_tls=self.use_tls,
            start_tls=None if not self.use_tls else False,
            timeout=15,
        )


class LogEmailSender:
    async def send(self, *, to: str, subject: str, body: str) -> None:
        log.info("email not sent (no MESTERI_SMTP_URL)", extra={"to": to, "subject": subject})


class LogSmsSender:
    """SMS sandbox: nothing leaves the machine; the dev outbox shows the text."""

    async def send(self, *, to: str, body: str) -> None:
        log.info("sms sandbox", extra={"to": to})


class Senders:
    def __init__(self, email: EmailSender, sms: SmsSender) -> None:
        self.email = email
        self.sms = sms


_senders: Senders | None = None


def configure(smtp_url: str | None, mail_from: str) -> Senders:
    email: EmailSender = SmtpEmailSender(smtp_url, mail_from) if smtp_url else LogEmailSender()
    return install(Senders(email=email, sms=LogSmsSender()))


def install(chosen: Senders) -> Senders:
    """Use these senders in this process (tests pass recording ones)."""
    global _senders
    _senders = chosen
    return chosen


def current() -> Senders:
    assert _senders is not None, "notifications.senders.configure() was not called"
    return _senders
