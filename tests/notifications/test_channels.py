"""Channel adapters against real servers on loopback: aiosmtpd for e-mail, and HTTP fakes of
the WhatsApp Cloud API, a browser push service, and Google's token and FCM endpoints."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from aiosmtpd.controller import Controller
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mesteri.config import Settings
from mesteri.notifications import senders
from mesteri.notifications.senders import (
    MAX_PUSH_PAYLOAD,
    CloudApiWhatsAppSender,
    HttpV1FcmSender,
    LogEmailSender,
    LogFcmSender,
    LogSmsSender,
    LogWebPushSender,
    LogWhatsAppSender,
    PermanentDeliveryError,
    PushTarget,
    SmtpEmailSender,
    SubscriptionGoneError,
    TransientDeliveryError,
    VapidWebPushSender,
)
from mesteri.notifications.vapid import VapidKeys, generate_vapid_keys
from tests.notifications.push_service import (
    Browser,
    FakeHttpService,
    Received,
    Reply,
    Responder,
    b64url,
    b64url_decode,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def fake() -> Iterator[Callable[[Responder], FakeHttpService]]:
    """Starts fake services for the test; none of them may have failed inside."""
    services: list[FakeHttpService] = []
    with ExitStack() as stack:

        def start(respond: Responder) -> FakeHttpService:
            services.append(stack.enter_context(FakeHttpService(respond).running()))
            return services[-1]

        yield start
    for service in services:
        assert service.errors == [], service.errors[0]


@pytest.fixture(autouse=True)
def _keep_installed_senders() -> Iterator[None]:
    before = senders._senders
    yield
    senders._senders = before


# ---------------------------------------------------------------- e-mail


class Inbox:
    """Accepts mail for everyone except the refused addresses (code and text per address)."""

    def __init__(self, refuse: dict[str, str] | None = None) -> None:
        self.refuse = refuse or {}
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def parse_mail(raw: bytes) -> Any:
    # The wire form ends lines with CRLF; read it with the line ends a mail client shows.
    return message_from_bytes(raw.replace(b"\r\n", b"\n"), policy=policy.default)


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, SmtpEmailSender]]:
    box, port = (
        Inbox({"gone@example.ro": "550 5.1.1 No such user", "full@example.ro": "452 4.2.2 Full"}),
        _free_port(),
    )
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, SmtpEmailSender(f"smtp://127.0.0.1:{port}", "Mesteri <no-reply@mesteri.ro>")
    finally:
        controller.stop()


HEBREW = "שלום, ההצעה שלך התקבלה."
TEXT = f"Bună ziua, Ștefan! Oferta ta a fost acceptată.\n{HEBREW}\n"
HTML = f'<p>Bună ziua, <b>Ștefan</b>!</p>\n<p dir="rtl" lang="he">{HEBREW}</p>\n'


async def test_html_email_is_multipart_alternative_in_utf8(
    inbox: tuple[Inbox, SmtpEmailSender],
) -> None:
    box, sender = inbox
    unsubscribe = "<https://mesteri.ro/u/abc123>, <mailto:unsubscribe@mesteri.ro?subject=abc123>"
    await sender.send(
        to="ana@example.ro",
        subject="Ofertă acceptată — הצעה התקבלה",
        body=TEXT,
        html=HTML,
        headers={
            "List-Unsubscribe": unsubscribe,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    ((mail_from, rcpt, raw),) = box.messages
    assert (mail_from, rcpt) == ("no-reply@mesteri.ro", ["ana@example.ro"])
    # 7-bit clean on the wire (quoted-printable or base64), whatever the relay supports.
    assert raw.isascii()
    message = parse_mail(raw)
    assert message["Subject"] == "Ofertă acceptată — הצעה התקבלה"
    # Folded after the colon (legal folding white space), hence the strip.
    assert message["List-Unsubscribe"].strip() == unsubscribe
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Message-ID"].endswith("@mesteri.ro>")
    assert message["Date"] is not None
    assert message.get_content_type() == "multipart/alternative"
    text, html = message.iter_parts()
    assert (text.get_content_type(), text.get_content_charset()) == ("text/plain", "utf-8")
    assert (html.get_content_type(), html.get_content_charset()) == ("text/html", "utf-8")
    assert text.get_content() == TEXT
    assert html.get_content() == HTML


async def test_text_only_email_stays_a_single_part(inbox: tuple[Inbox, SmtpEmailSender]) -> None:
    box, sender = inbox
    await sender.send(to="ana@example.ro", subject="Cod", body="Codul este 123456. ש\n")
    ((_, _, raw),) = box.messages
    message = parse_mail(raw)
    assert message.get_content_type() == "text/plain"
    assert message.get_content() == "Codul este 123456. ש\n"
    assert message["List-Unsubscribe"] is None


@pytest.mark.parametrize(
    "headers",
    [
        {"Bcc": "someone@example.ro"},  # would add a recipient
        {"from": "ceo@mesteri.ro"},
        {"List-Unsubscribe": "<https://mesteri.ro/u>\r\nBcc: someone@example.ro"},
    ],
)
async def test_unsafe_headers_are_refused_before_sending(
    inbox: tuple[Inbox, SmtpEmailSender], headers: dict[str, str]
) -> None:
    box, sender = inbox
    with pytest.raises(PermanentDeliveryError, match="cannot be written"):
        await sender.send(to="ana@example.ro", subject="s", body="b", headers=headers)
    assert box.messages == []


async def test_refused_mailbox_is_permanent_and_a_full_one_transient(
    inbox: tuple[Inbox, SmtpEmailSender],
) -> None:
    box, sender = inbox
    with pytest.raises(PermanentDeliveryError) as gone:
        await sender.send(to="gone@example.ro", subject="s", body="b")
    assert gone.value.status == 550
    with pytest.raises(TransientDeliveryError) as full:
        await sender.send(to="full@example.ro", subject="s", body="b")
    assert full.value.status == 452
    assert box.messages == []


async def test_unreachable_smtp_server_is_transient() -> None:
    sender = SmtpEmailSender(f"smtp://127.0.0.1:{_free_port()}", "x@mesteri.ro")
    with pytest.raises(TransientDeliveryError, match="smtp unavailable"):
        await sender.send(to="a@b.ro", subject="s", body="b")


# ---------------------------------------------------------------- WhatsApp

WA_TOKEN = "EAAG-test-token"
WA_PATH = "/v21.0/109876543210/messages"


def whatsapp_cloud(reply: Reply | None = None) -> Responder:
    """Meta's answers: 401 for another token, else ``reply`` or a successful send."""

    def respond(request: Received) -> Reply:
        if request.headers.get("authorization") != f"Bearer {WA_TOKEN}":
            return Reply.json(
                401,
                {
                    "error": {
                        "message": "Invalid OAuth access token",
                        "type": "OAuthException",
                        "code": 190,
                    }
                },
            )
        if request.path != WA_PATH:
            return Reply.json(404, {"error": {"message": "Unknown path", "code": 803}})
        if reply is not None:
            return reply
        to = request.json()["to"]
        return Reply.json(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": to, "wa_id": to.lstrip("+")}],
                "messages": [{"id": "wamid.HBgLNDA3MjIxMjM0NTYVAgARGBI"}],
            },
        )

    return respond


def whatsapp_sender(service: FakeHttpService, token: str = WA_TOKEN) -> CloudApiWhatsAppSender:
    return CloudApiWhatsAppSender(token, "109876543210", api_base=f"{service.url}/v21.0/")


async def test_whatsapp_posts_a_text_message_with_the_bearer_token(
    fake: Callable[[Responder], FakeHttpService],
) -> None:
    service = fake(whatsapp_cloud())
    await whatsapp_sender(service).send(to="+40722123456", body="Oferta ta: 1.250 lei. Ș ț")
    (request,) = service.received
    assert (request.method, request.path) == ("POST", WA_PATH)
    assert request.headers["authorization"] == f"Bearer {WA_TOKEN}"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+40722123456",
        "type": "text",
        "text": {"body": "Oferta ta: 1.250 lei. Ș ț", "preview_url": False},
    }


def meta_error(
    status: int, code: int, details: str = "", headers: dict[str, str] | None = None
) -> Reply:
    return Reply.json(
        status,
        {
            "error": {
                "message": f"(#{code}) error",
                "type": "OAuthException",
                "code": code,
                "error_data": {"messaging_product": "whatsapp", "details": details},
                "fbtrace_id": "A1b2C3",
            }
        },
        headers,
    )


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (meta_error(400, 131026, "Message undeliverable"), PermanentDeliveryError),
        (meta_error(400, 100, "Invalid parameter"), PermanentDeliveryError),
        # Meta sends throttling as HTTP 400: the error code decides.
        (meta_error(400, 130429, "Rate limit hit"), TransientDeliveryError),
        (meta_error(400, 131056, "Pair rate limit hit"), TransientDeliveryError),
        (meta_error(500, 131000, "Something went wrong"), TransientDeliveryError),
        (
            Reply(502, b"<html>Bad Gateway</html>", {"Content-Type": "text/html"}),
            TransientDeliveryError,
        ),
    ],
)
async def test_whatsapp_errors_are_classified_by_meta_error_code(
    fake: Callable[[Responder], FakeHttpService], reply: Reply, expected: type[Exception]
) -> None:
    service = fake(whatsapp_cloud(reply))
    with pytest.raises(expected) as raised:
        await whatsapp_sender(service).send(to="+40722123456", body="x")
    assert type(raised.value) is expected
    assert len(service.received) == 1


async def test_whatsapp_throttling_keeps_the_retry_after_hint(
    fake: Callable[[Responder], FakeHttpService],
) -> None:
    service = fake(whatsapp_cloud(meta_error(429, 4, "Too many calls", {"Retry-After": "30"})))
    with pytest.raises(TransientDeliveryError) as raised:
        await whatsapp_sender(service).send(to="+40722123456", body="x")
    assert (raised.value.status, raised.value.retry_after) == (429, 30.0)


async def test_whatsapp_refused_token_is_transient_not_the_recipients_fault(
    fake: Callable[[Responder], FakeHttpService],
) -> None:
    service = fake(whatsapp_cloud())
    with pytest.raises(TransientDeliveryError, match="code 190") as raised:
        await whatsapp_sender(service, token="expired").send(to="+40722123456", body="x")
    assert raised.value.status == 401


async def test_whatsapp_reuses_a_shared_transport_without_closing_it(
    fake: Callable[[Responder], FakeHttpService],
) -> None:
    service = fake(whatsapp_cloud())
    async with httpx.AsyncHTTPTransport() as shared:
        sender = CloudApiWhatsAppSender(
            WA_TOKEN, "109876543210", api_base=f"{service.url}/v21.0", transport=shared
        )
        await sender.send(to="+40722123456", body="unu")
        await sender.send(to="+40722123456", body="doi")
    first, second = service.received
    assert first.client_port == second.client_port  # one pooled connection for both


@pytest.mark.parametrize("to", ["0722123456", "+40 722 123 456", "+0722123456", ""])
async def test_whatsapp_refuses_numbers_not_in_e164_without_calling_meta(
    fake: Callable[[Responder], FakeHttpService], to: str
) -> None:
    service = fake(whatsapp_cloud())
    with pytest.raises(PermanentDeliveryError, match=r"E\.164"):
        await whatsapp_sender(service).send(to=to, body="x")
    assert service.received == []


async def test_whatsapp_unreachable_is_transient() -> None:
    sender = CloudApiWhatsAppSender("t", "1", api_base=f"http://127.0.0.1:{_free_port()}/v21.0")
    with pytest.raises(TransientDeliveryError, match="ConnectError"):
        await sender.send(to="+40722123456", body="x")


# ---------------------------------------------------------------- Web Push

SUBJECT = "mailto:support@mesteri.ro"


PUSH_PATH = "/wpush/v2/gAAAAABm-subscription-id"


def push_service(status: int = 201, headers: dict[str, str] | None = None) -> Responder:
    def respond(request: Received) -> Reply:
        return Reply(status, b"", headers or {})

    return respond


@pytest.fixture(scope="module")
def vapid_keys() -> VapidKeys:
    return generate_vapid_keys()


def parse_vapid(authorization: str) -> tuple[str, str]:
    scheme, _, params = authorization.partition(" ")
    assert scheme == "vapid"
    values = dict(part.strip().split("=", 1) for part in params.split(","))
    assert set(values) == {"t", "k"}
    return values["t"], values["k"]


async def test_web_push_is_encrypted_for_the_browser_and_signed_with_vapid(
    fake: Callable[[Responder], FakeHttpService], vapid_keys: VapidKeys
) -> None:
    service = fake(push_service(201))
    browser = Browser(f"{service.url}{PUSH_PATH}")
    payload = {
        "title": "Ofertă nouă — הצעה חדשה",
        "body": "Ștefan a trimis o ofertă de 1.250 lei",
        "url": "/jobs/42",
        "badge": 3,
    }
    before = time.time()
    await VapidWebPushSender(vapid_keys, SUBJECT).send(
        browser.target, payload, ttl=3600, urgency="high", topic="job-42"
    )
    after = time.time()

    (request,) = service.received
    assert (request.method, request.path) == ("POST", PUSH_PATH)
    assert request.headers["content-encoding"] == "aes128gcm"
    assert request.headers["content-type"] == "application/octet-stream"
    assert (request.headers["ttl"], request.headers["urgency"], request.headers["topic"]) == (
        "3600",
        "high",
        "job-42",
    )
    assert json.loads(browser.decrypt(request.body).decode("utf-8")) == payload

    token, key = parse_vapid(request.headers["authorization"])
    assert key == vapid_keys.public_key  # what the browser got as applicationServerKey
    public_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(key))
    claims = jwt.decode(
        token,
        public_key,
        algorithms=["ES256"],
        audience=service.url,  # the endpoint's origin: scheme, host and port, no path
        options={"require": ["aud", "exp", "sub"]},
    )
    assert claims["sub"] == SUBJECT
    assert before < claims["exp"] <= after + 24 * 3600


async def test_web_push_defaults_and_no_topic(
    fake: Callable[[Responder], FakeHttpService], vapid_keys: VapidKeys
) -> None:
    service = fake(push_service(201))
    browser = Browser(f"{service.url}{PUSH_PATH}")
    await VapidWebPushSender(vapid_keys, SUBJECT).send(browser.target, {"t": "x"})
    (request,) = service.received
    assert (request.headers["ttl"], request.headers["urgency"]) == ("86400", "normal")
    assert "topic" not in request.headers


async def test_web_push_to_a_gone_subscription_raises_subscription_gone(
    fake: Callable[[Responder], FakeHttpService], vapid_keys: VapidKeys
) -> None:
    service = fake(push_service(410))
    browser = Browser(f"{service.url}{PUSH_PATH}")
    with pytest.raises(SubscriptionGoneError) as raised:
        await VapidWebPushSender(vapid_keys, SUBJECT).send(browser.target, {"t": "x"})
    assert raised.value.status == 410
    assert len(service.received) == 1


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (404, SubscriptionGoneError),
        (413, PermanentDeliveryError),
        (400, PermanentDeliveryError),
        (403, PermanentDeliveryError),  # a VAPID key other than the subscription's
        (429, TransientDeliveryError),
        (500, TransientDeliveryError),
        (503, TransientDeliveryError),
    ],
)
async def test_web_push_status_classification(
    fake: Callable[[Responder], FakeHttpService],
    vapid_keys: VapidKeys,
    status: int,
    expected: type[Exception],
) -> None:
    service = fake(push_service(status, {"Retry-After": "120"}))
    browser = Browser(f"{service.url}{PUSH_PATH}")
    with pytest.raises(expected) as raised:
        await VapidWebPushSender(vapid_keys, SUBJECT).send(browser.target, {"t": "x"})
    assert type(raised.value) is expected
    assert raised.value.status == status  # type: ignore[attr-defined]
    if expected is TransientDeliveryError:
        assert raised.value.retry_after == 120.0  # type: ignore[attr-defined]


async def test_web_push_retry_after_may_be_an_http_date(
    fake: Callable[[Responder], FakeHttpService], vapid_keys: VapidKeys
) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    service = fake(push_service(503, {"Retry-After": later}))
    browser = Browser(f"{service.url}{PUSH_PATH}")
    with pytest.raises(TransientDeliveryError) as raised:
        await VapidWebPushSender(vapid_keys, SUBJECT).send(browser.target, {"t": "x"})
    assert raised.value.retry_after is not None
    assert 0 < raised.value.retry_after <= 120


async def test_web_push_payload_limit_is_exactly_one_4096_byte_record(
    fake: Callable[[Responder], FakeHttpService], vapid_keys: VapidKeys
) -> None:
    service = fake(push_service(201))
    browser = Browser(f"{service.url}{PUSH_PATH}")
    sender = VapidWebPushSender(vapid_keys, SUBJECT)
    largest = {"p": "x" * (MAX_PUSH_PAYLOAD - len('{"p":""}'))}
    await sender.send(browser.target, largest)
    (request,) = service.received
    assert len(request.body) == 4096
    assert json.loads(browser.decrypt(request.body)) == largest

    with pytest.raises(PermanentDeliveryError, match="at most"):
        await sender.send(browser.target, {"p": largest["p"] + "x"})
    assert len(service.received) == 1


@pytest.mark.parametrize(
    "keys",
    [
        {"p256dh": b64url(b"\x04" + b"\x01" * 64)},  # not a point on the curve
        {"p256dh": b64url(b"\x02" + b"\x01" * 32)},  # compressed: browsers never send it
        {"auth": b64url(b"short")},
    ],
)
async def test_web_push_with_unusable_subscription_keys_sends_nothing(
    fake: Callable[[Responder], FakeHttpService], vapid_keys: VapidKeys, keys: dict[str, str]
) -> None:
    service = fake(push_service(201))
    browser = Browser(f"{service.url}{PUSH_PATH}")
    target = PushTarget.from_json(
        {**browser.subscription, "keys": {**browser.subscription["keys"], **keys}}
    )
    with pytest.raises(PermanentDeliveryError, match="unusable") as raised:
        await VapidWebPushSender(vapid_keys, SUBJECT).send(target, {"t": "x"})
    assert type(raised.value) is PermanentDeliveryError
    assert service.received == []


@pytest.mark.parametrize(
    "options",
    [{"urgency": "urgent"}, {"ttl": -1}, {"topic": "has spaces"}, {"topic": "x" * 33}],
)
async def test_web_push_refuses_invalid_options(
    vapid_keys: VapidKeys, options: dict[str, Any]
) -> None:
    browser = Browser(f"http://127.0.0.1:{_free_port()}{PUSH_PATH}")
    with pytest.raises(ValueError):  # noqa: PT011 - the message names the option
        await VapidWebPushSender(vapid_keys, SUBJECT).send(browser.target, {"t": "x"}, **options)


def test_vapid_subject_must_be_a_contact_url(vapid_keys: VapidKeys) -> None:
    with pytest.raises(ValueError, match="mailto"):
        VapidWebPushSender(vapid_keys, "support@mesteri.ro")


def test_vapid_keys_round_trip_through_pem() -> None:
    keys = generate_vapid_keys()
    assert VapidKeys.from_pem(keys.private_pem) == keys
    point = b64url_decode(keys.public_key)
    assert len(point) == 65
    assert point[0] == 0x04
    assert "=" not in keys.public_key
    expected = (
        keys.private_key()
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    assert point == expected
    assert generate_vapid_keys().public_key != keys.public_key


def test_vapid_keys_accept_a_traditional_ec_pem() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    keys = VapidKeys.from_pem(pem)
    assert keys.private_pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert b64url_decode(keys.public_key) == key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


@pytest.mark.parametrize("kind", ["p384", "rsa", "garbage"])
def test_vapid_keys_refuse_what_is_not_a_p256_key(kind: str) -> None:
    if kind == "garbage":
        pem = "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n"
    else:
        key: Any = (
            ec.generate_private_key(ec.SECP384R1())
            if kind == "p384"
            else rsa.generate_private_key(public_exponent=65537, key_size=1024)
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    with pytest.raises(ValueError):  # noqa: PT011
        VapidKeys.from_pem(pem)


# ---------------------------------------------------------------- FCM

PROJECT = "mesteri-test"
FCM_PATH = f"/v1/projects/{PROJECT}/messages:send"


@pytest.fixture(scope="module")
def account_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def service_account(key: rsa.RSAPrivateKey, token_uri: str) -> dict[str, str]:
    """The shape of the JSON key file the Firebase console hands out."""
    return {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "k-2026-01",
        "private_key": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        "client_email": f"fcm-sender@{PROJECT}.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": token_uri,
    }


class Google:
    """Google's OAuth2 token endpoint and the FCM send endpoint.

    The token endpoint verifies the RS256 assertion with the service account's public key
    and issues a new access token each time; the send endpoint accepts only issued tokens.
    ``send_replies`` answers the sends in turn (then 200s)."""

    def __init__(self, public_key: rsa.RSAPublicKey, *, expires_in: int = 3599) -> None:
        self.public_key = public_key
        self.expires_in = expires_in
        self.issued: list[str] = []
        self.revoked: set[str] = set()
        self.send_replies: list[Reply] = []
        self.service: FakeHttpService | None = None

    @property
    def token_uri(self) -> str:
        assert self.service is not None
        return f"{self.service.url}/token"

    def respond(self, request: Received) -> Reply:
        if request.path == "/token":
            return self.token(request)
        if request.path == FCM_PATH:
            return self.send(request)
        return Reply(404)

    def token(self, request: Received) -> Reply:
        form = request.form()
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return Reply.json(400, {"error": "unsupported_grant_type"})
        try:
            jwt.decode(
                form["assertion"],
                self.public_key,
                algorithms=["RS256"],
                audience=self.token_uri,
                options={"require": ["iss", "aud", "iat", "exp", "scope"]},
            )
        except jwt.InvalidTokenError as exc:
            return Reply.json(400, {"error": "invalid_grant", "error_description": str(exc)})
        access_token = f"ya29.test-{len(self.issued) + 1}"
        self.issued.append(access_token)
        return Reply.json(
            200,
            {"access_token": access_token, "expires_in": self.expires_in, "token_type": "Bearer"},
        )

    def send(self, request: Received) -> Reply:
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if bearer not in self.issued or bearer in self.revoked:
            return Reply.json(
                401,
                {
                    "error": {
                        "code": 401,
                        "message": "Request had invalid authentication credentials.",
                        "status": "UNAUTHENTICATED",
                    }
                },
            )
        if self.send_replies:
            return self.send_replies.pop(0)
        return Reply.json(200, {"name": f"projects/{PROJECT}/messages/0:1700000000000000%abc"})

    def token_requests(self) -> list[Received]:
        assert self.service is not None
        return self.service.requests_to("/token")

    def sends(self) -> list[Received]:
        assert self.service is not None
        return self.service.requests_to(FCM_PATH)


@pytest.fixture
def google(fake: Callable[[Responder], FakeHttpService], account_key: rsa.RSAPrivateKey) -> Google:
    fake_google = Google(account_key.public_key())
    fake_google.service = fake(fake_google.respond)
    return fake_google


def fcm_sender(google: Google, key: rsa.RSAPrivateKey) -> HttpV1FcmSender:
    assert google.service is not None
    return HttpV1FcmSender(service_account(key, google.token_uri), api_base=google.service.url)


def fcm_error(
    status: int, grpc_status: str, error_code: str | None, headers: dict[str, str] | None = None
) -> Reply:
    details = (
        [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": error_code}]
        if error_code
        else []
    )
    return Reply.json(
        status,
        {"error": {"code": status, "message": "error", "status": grpc_status, "details": details}},
        headers,
    )


async def test_fcm_authenticates_as_the_service_account_and_sends_the_message(
    google: Google, account_key: rsa.RSAPrivateKey
) -> None:
    sender = fcm_sender(google, account_key)
    await sender.send(
        "device-token-1",
        title="Ofertă nouă",
        body="Ștefan: 1.250 lei — שלום",
        link="https://mesteri.ro/jobs/42",
        data={"job_id": "42"},
    )
    (token_request,) = google.token_requests()
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
    assertion = token_request.form()["assertion"]
    assert jwt.get_unverified_header(assertion) == {
        "alg": "RS256",
        "typ": "JWT",
        "kid": "k-2026-01",
    }
    claims = jwt.decode(
        assertion, account_key.public_key(), algorithms=["RS256"], audience=google.token_uri
    )
    assert claims["iss"] == f"fcm-sender@{PROJECT}.iam.gserviceaccount.com"
    assert claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
    assert claims["exp"] - claims["iat"] == 3600

    (send,) = google.sends()
    assert send.headers["authorization"] == "Bearer ya29.test-1"
    assert send.json() == {
        "message": {
            "token": "device-token-1",
            "notification": {"title": "Ofertă nouă", "body": "Ștefan: 1.250 lei — שלום"},
            "data": {"job_id": "42", "link": "https://mesteri.ro/jobs/42"},
            "webpush": {"fcm_options": {"link": "https://mesteri.ro/jobs/42"}},
        }
    }


async def test_fcm_reuses_the_access_token_until_shortly_before_it_expires(
    google: Google, account_key: rsa.RSAPrivateKey
) -> None:
    sender = fcm_sender(google, account_key)
    await sender.send("t1", title="a", body="b")
    await sender.send("t2", title="a", body="b")
    assert len(google.token_requests()) == 1
    assert [s.headers["authorization"] for s in google.sends()] == ["Bearer ya29.test-1"] * 2

    # A token that lives less than the renewal margin is renewed for every send.
    google.expires_in = 60
    short_lived = fcm_sender(google, account_key)
    await short_lived.send("t3", title="a", body="b")
    await short_lived.send("t4", title="a", body="b")
    assert len(google.token_requests()) == 3
    assert [s.headers["authorization"] for s in google.sends()][2:] == [
        "Bearer ya29.test-2",
        "Bearer ya29.test-3",
    ]


async def test_fcm_concurrent_sends_share_one_token_request(
    google: Google, account_key: rsa.RSAPrivateKey
) -> None:
    sender = fcm_sender(google, account_key)
    await asyncio.gather(*(sender.send(f"t{i}", title="a", body="b") for i in range(4)))
    assert len(google.token_requests()) == 1
    assert len(google.sends()) == 4


async def test_fcm_renews_a_revoked_access_token_once(
    google: Google, account_key: rsa.RSAPrivateKey
) -> None:
    sender = fcm_sender(google, account_key)
    await sender.send("t1", title="a", body="b")
    google.revoked.add("ya29.test-1")
    await sender.send("t2", title="a", body="b")
    assert len(google.token_requests()) == 2
    assert [s.headers["authorization"] for s in google.sends()] == [
        "Bearer ya29.test-1",
        "Bearer ya29.test-1",
        "Bearer ya29.test-2",
    ]


async def test_fcm_minimal_message_has_no_data_or_webpush_link(
    google: Google, account_key: rsa.RSAPrivateKey
) -> None:
    sender = fcm_sender(google, account_key)
    await sender.send("t1", title="a", body="b")
    await sender.send("t2", title="a", body="b", link="mesteri://jobs/42")  # an app link
    first, second = (s.json()["message"] for s in google.sends())
    assert first == {"token": "t1", "notification": {"title": "a", "body": "b"}}
    assert second == {
        "token": "t2",
        "notification": {"title": "a", "body": "b"},
        "data": {"link": "mesteri://jobs/42"},  # webpush links must be HTTPS
    }


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (fcm_error(404, "NOT_FOUND", "UNREGISTERED"), SubscriptionGoneError),
        (fcm_error(404, "NOT_FOUND", None), SubscriptionGoneError),
        (
            Reply(404, b"<html>Not Found</html>", {"Content-Type": "text/html"}),
            PermanentDeliveryError,
        ),
        (fcm_error(400, "INVALID_ARGUMENT", "INVALID_ARGUMENT"), PermanentDeliveryError),
        (fcm_error(403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH"), PermanentDeliveryError),
        (
            fcm_error(429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", {"Retry-After": "60"}),
            TransientDeliveryError,
        ),
        (fcm_error(503, "UNAVAILABLE", "UNAVAILABLE"), TransientDeliveryError),
        (fcm_error(500, "INTERNAL", "INTERNAL"), TransientDeliveryError),
        (fcm_error(401, "UNAUTHENTICATED", "THIRD_PARTY_AUTH_ERROR"), TransientDeliveryError),
    ],
)
async def test_fcm_errors_are_classified(
    google: Google, account_key: rsa.RSAPrivateKey, reply: Reply, expected: type[Exception]
) -> None:
    google.send_replies = [reply]
    with pytest.raises(expected) as raised:
        await fcm_sender(google, account_key).send("t1", title="a", body="b")
    assert type(raised.value) is expected
    assert raised.value.status == reply.status  # type: ignore[attr-defined]
    assert len(google.sends()) == 1  # the third-party auth 401 is not our token: no retry
    if reply.status == 429:
        assert raised.value.retry_after == 60.0  # type: ignore[attr-defined]


async def test_fcm_assertion_signed_with_another_key_is_refused_and_nothing_sent(
    google: Google,
) -> None:
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(TransientDeliveryError, match="invalid_grant"):
        await fcm_sender(google, impostor).send("t1", title="a", body="b")
    assert len(google.token_requests()) == 1
    assert google.sends() == []


def test_fcm_service_account_needs_its_fields(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="private_key, client_email"):
        HttpV1FcmSender({"project_id": "p", "token_uri": "https://oauth2.googleapis.com/token"})
    path = tmp_path / "account.json"
    path.write_text(json.dumps({"project_id": "p"}))
    with pytest.raises(ValueError, match="lacks private_key"):
        HttpV1FcmSender.from_file(path)


# ---------------------------------------------------------------- wiring


class Recording:
    async def send(self, **kwargs: Any) -> None:
        pass


def test_senders_keep_their_two_channel_construction() -> None:
    email, sms = Recording(), Recording()
    chosen = senders.Senders(email=email, sms=sms)
    assert (chosen.email, chosen.sms) == (email, sms)
    assert isinstance(chosen.whatsapp, LogWhatsAppSender)
    assert isinstance(chosen.webpush, LogWebPushSender)
    assert isinstance(chosen.fcm, LogFcmSender)


def test_configure_without_settings_is_all_sandbox() -> None:
    chosen = senders.configure(None, "Mesteri <no-reply@mesteri.ro>")
    assert senders.current() is chosen
    assert [type(getattr(chosen, c)) for c in ("email", "sms", "whatsapp", "webpush", "fcm")] == [
        LogEmailSender,
        LogSmsSender,
        LogWhatsAppSender,
        LogWebPushSender,
        LogFcmSender,
    ]


async def test_configure_chooses_the_real_adapters_from_settings(
    fake: Callable[[Responder], FakeHttpService],
    account_key: rsa.RSAPrivateKey,
    vapid_keys: VapidKeys,
    tmp_path: Path,
) -> None:
    meta = fake(whatsapp_cloud())
    fake_google = Google(account_key.public_key())
    fake_google.service = fake(fake_google.respond)
    account_file = tmp_path / "firebase.json"
    account_file.write_text(json.dumps(service_account(account_key, fake_google.token_uri)))
    settings = Settings(
        whatsapp_token=WA_TOKEN,
        whatsapp_phone_number_id="109876543210",
        whatsapp_api_base=f"{meta.url}/v21.0",
        fcm_service_account_file=account_file,
        fcm_api_base=fake_google.service.url,
        vapid_subject="mailto:push@mesteri.ro",
    )
    chosen = senders.configure(
        "smtp://127.0.0.1:2525", "x@mesteri.ro", settings=settings, vapid=vapid_keys
    )
    assert isinstance(chosen.email, SmtpEmailSender)
    assert isinstance(chosen.webpush, VapidWebPushSender)

    await senders.current().whatsapp.send(to="+40722123456", body="salut")
    assert [r.path for r in meta.received] == [WA_PATH]
    await senders.current().fcm.send("t1", title="a", body="b")
    assert len(fake_google.sends()) == 1

    push = fake(push_service(201))
    browser = Browser(f"{push.url}{PUSH_PATH}")
    await senders.current().webpush.send(browser.target, {"t": "x"})
    token, _ = parse_vapid(push.received[0].headers["authorization"])
    assert jwt.decode(token, options={"verify_signature": False})["sub"] == "mailto:push@mesteri.ro"


def test_configure_refuses_half_a_whatsapp_configuration() -> None:
    with pytest.raises(ValueError, match="WHATSAPP"):
        senders.configure(None, "x@mesteri.ro", settings=Settings(whatsapp_token="t"))
