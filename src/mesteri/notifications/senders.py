"""Where messages leave the platform.

Each channel is an interface with a real adapter and a sandbox that only logs (its messages
stay readable in the dev outbox):

| channel  | real adapter                       | chosen when                                  |
| -------- | ---------------------------------- | -------------------------------------------- |
| e-mail   | ``SmtpEmailSender`` (aiosmtplib)   | ``MESTERI_SMTP_URL`` is set                  |
| SMS      | none yet (``LogSmsSender``)        | no provider chosen                           |
| WhatsApp | ``CloudApiWhatsAppSender`` (httpx) | ``MESTERI_WHATSAPP_TOKEN`` + phone number id |
| Web Push | ``VapidWebPushSender`` (pywebpush) | the caller passes the stored VAPID keys      |
| FCM      | ``HttpV1FcmSender`` (httpx, PyJWT) | ``MESTERI_FCM_SERVICE_ACCOUNT_FILE`` is set  |

Adapters report failures as ``DeliveryError``s: ``PermanentDeliveryError`` when sending the
same message again cannot succeed (a bad number, a payload the service refuses),
``SubscriptionGoneError`` (a permanent error) when the device's subscription or token no
longer exists and the caller should disable it, and ``TransientDeliveryError`` for everything
that may pass (network, throttling, the service's own errors, and our credentials being
refused: fixing them makes the queued messages go out instead of losing them).
"""

from __future__ import annotations

import asyncio
import email.policy
import functools
import json
import logging
import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr, parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlparse, urlsplit

import aiosmtplib
import httpx
import jwt
from http_ece import ECEException
from py_vapid import Vapid02, VapidException
from pywebpush import WebPusher, WebPushException

from mesteri.kit import clock
from mesteri.notifications.vapid import VapidKeys, b64url_decode

if TYPE_CHECKING:
    from mesteri.config import Settings

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 10.0  # seconds, per request; a slow provider must not hold a worker for long


# ---------------------------------------------------------------- errors


class DeliveryError(Exception):
    """A channel did not deliver the message. ``status`` is the provider's HTTP or SMTP code."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class PermanentDeliveryError(DeliveryError):
    """Sending this message again will fail again: do not retry it."""


class SubscriptionGoneError(PermanentDeliveryError):
    """The push subscription or device token no longer exists: disable the device."""


class TransientDeliveryError(DeliveryError):
    """May succeed later; ``retry_after`` (seconds) is the provider's hint, when it gave one."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


# ---------------------------------------------------------------- channel interfaces


class EmailSender(Protocol):
    async def send(
        self,
        *,
        to: str,
        subject: str,
        body: str,
        html: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None: ...


class SmsSender(Protocol):
    async def send(self, *, to: str, body: str) -> None: ...


class WhatsAppSender(Protocol):
    async def send(self, *, to: str, body: str) -> None:
        """``to`` in E.164 (``+40722123456``)."""
        ...


@dataclass(frozen=True)
class PushTarget:
    """A browser's push subscription (``PushSubscription.toJSON()``); keys in URL-safe base64."""

    endpoint: str
    p256dh: str
    auth: str

    @classmethod
    def from_json(cls, subscription: Mapping[str, Any]) -> PushTarget:
        keys = subscription["keys"]
        return cls(endpoint=subscription["endpoint"], p256dh=keys["p256dh"], auth=keys["auth"])


class WebPushSender(Protocol):
    async def send(
        self,
        target: PushTarget,
        payload: Mapping[str, Any],
        *,
        ttl: int = 86_400,
        urgency: str = "normal",
        topic: str | None = None,
    ) -> None: ...


class FcmSender(Protocol):
    async def send(
        self,
        token: str,
        *,
        title: str,
        body: str,
        link: str | None = None,
        data: Mapping[str, str] | None = None,
    ) -> None: ...


# ---------------------------------------------------------------- e-mail

# Set by the sender itself; a caller's header must not replace them or add recipients.
_RESERVED_EMAIL_HEADERS = frozenset(
    {
        "from",
        "sender",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
    }
)
# Bodies are written 7-bit clean (quoted-printable or base64, whichever is shorter) so that
# diacritics and Hebrew survive relays that do not offer 8BITMIME.
_EMAIL_POLICY = email.policy.default.clone(cte_type="7bit")


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
        self._domain = parseaddr(sender)[1].rpartition("@")[2] or None

    async def send(
        self,
        *,
        to: str,
        subject: str,
        body: str,
        html: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Plain text, or ``multipart/alternative`` (text, then HTML) when ``html`` is given.
        ``headers`` adds e.g. ``List-Unsubscribe`` (and ``List-Unsubscribe-Post`` for
        one-click, RFC 8058)."""
        message = self.compose(to=to, subject=subject, body=body, html=html, headers=headers)
        try:
            await aiosmtplib.send(
                message,
                sender=parseaddr(self.sender)[1],
                recipients=[to],  # the envelope is exactly `to`, whatever the headers say
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.use_tls,
                start_tls=None if not self.use_tls else False,
                timeout=15,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [refused.code for refused in exc.recipients]
            error = f"recipient refused: {exc.recipients[0].message}"
            if all(code >= 500 for code in codes):  # 5xx: the mailbox does not exist
                raise PermanentDeliveryError(error, status=codes[0]) from exc
            raise TransientDeliveryError(error, status=codes[0]) from exc
        except aiosmtplib.SMTPDataError as exc:
            error = f"message refused: {exc.code} {exc.message}"
            if exc.code >= 500:  # this message (size, content) is refused
                raise PermanentDeliveryError(error, status=exc.code) from exc
            raise TransientDeliveryError(error, status=exc.code) from exc
        except aiosmtplib.SMTPResponseException as exc:
            # HELO, AUTH, MAIL FROM: the relay or our credentials, not this message.
            raise TransientDeliveryError(f"smtp {exc.code} {exc.message}", status=exc.code) from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise TransientDeliveryError(f"smtp unavailable: {exc}") from exc

    def compose(
        self,
        *,
        to: str,
        subject: str,
        body: str,
        html: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> EmailMessage:
        try:
            message = EmailMessage(policy=_EMAIL_POLICY)
            message["From"] = self.sender
            message["To"] = to
            message["Subject"] = subject
            message["Date"] = format_datetime(clock.wall_now())
            # Relays and spam filters distrust mail without a Message-ID; giving the domain
            # also spares make_msgid a slow reverse lookup of this host's name.
            message["Message-ID"] = make_msgid(domain=self._domain)
            for name, value in (headers or {}).items():
                if name.lower() in _RESERVED_EMAIL_HEADERS:
                    raise ValueError(f"header {name!r} is set by the sender")
                message[name] = value
            message.set_content(body, charset="utf-8")
            if html is not None:
                message.add_alternative(html, subtype="html", charset="utf-8")
        except ValueError as exc:  # a line break in a header, a reserved header
            raise PermanentDeliveryError(f"message cannot be written: {exc}") from exc
        return message


class LogEmailSender:
    async def send(
        self,
        *,
        to: str,
        subject: str,
        body: str,
        html: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        log.info("email not sent (no MESTERI_SMTP_URL)", extra={"to": to, "subject": subject})


# ---------------------------------------------------------------- SMS


class LogSmsSender:
    """SMS sandbox: nothing leaves the machine; the dev outbox shows the text."""

    async def send(self, *, to: str, body: str) -> None:
        log.info("sms sandbox", extra={"to": to})


# ---------------------------------------------------------------- HTTP plumbing


class _BorrowedTransport(httpx.AsyncBaseTransport):
    """A transport the caller owns (and may share, for connection pooling): closing the
    per-send client must not close it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self._inner.handle_async_request(request)


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One verified TLS context for every send: building it (loading the CA bundle) takes
    longer than the client it would otherwise be built for."""
    return httpx.create_ssl_context()


class _Http:
    """A client per send (no pool tied to one event loop); pass a shared transport to pool."""

    def __init__(self, transport: httpx.AsyncBaseTransport | None, timeout: float) -> None:
        self._transport = transport
        self._timeout = timeout

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        """The response, whatever its status; network failures become transient errors."""
        transport = _BorrowedTransport(self._transport) if self._transport else None
        try:
            async with httpx.AsyncClient(
                transport=transport, timeout=self._timeout, verify=_tls_context()
            ) as client:
                response = await client.post(url, **kwargs)
                await response.aread()
                return response
        except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
            raise PermanentDeliveryError(f"cannot post to {url!r}: {exc}") from exc
        except httpx.TransportError as exc:
            # The request may have arrived: a retry can duplicate the message (at least once).
            raise TransientDeliveryError(f"{type(exc).__name__}: {exc}") from exc


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds: delay-seconds or an HTTP date."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC, origin unknown
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - clock.wall_now()).total_seconds())


def _json_or_empty(response: httpx.Response) -> dict[str, Any]:
    """The error body, or {} when a proxy answered with HTML or nothing."""
    try:
        parsed = response.json()
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _is_server_side(status: int) -> bool:
    return status == 429 or status >= 500


# ---------------------------------------------------------------- WhatsApp

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")

# Meta asks clients to act on the error ``code``, not the HTTP status: throttling and
# temporary outages often arrive as HTTP 400 (https://developers.facebook.com/docs/whatsapp/
# cloud-api/support/error-codes). These may pass by themselves:
_WHATSAPP_TRANSIENT_CODES = frozenset(
    {
        1,  # API Unknown (possibly a server error)
        2,  # API Service: temporary downtime or overload
        4,  # app-level API call rate limit
        80007,  # WhatsApp Business Account rate limit
        130429,  # throughput of the business number
        131000,  # something went wrong
        131016,  # service unavailable
        131048,  # spam rate limit (the number's quality rating)
        131056,  # pair rate limit: too many messages to this recipient in a short time
        133004,  # server temporarily unavailable
    }
)
# Our token or its permissions: fixing them lets the queued messages go out.
_WHATSAPP_CREDENTIAL_CODES = frozenset({0, 3, 10, 190, *range(200, 300)})


class CloudApiWhatsAppSender:
    """Text messages through Meta's WhatsApp Cloud API.

    Free-form text reaches a user only inside the 24-hour customer-service window (after the
    user last wrote to us); outside it Meta accepts the call and later reports error 131047 on
    the status webhook. Business-initiated notifications need approved template messages.
    """

    def __init__(
        self,
        token: str,
        phone_number_id: str,
        *,
        api_base: str = "https://graph.facebook.com/v21.0",
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self._token = token
        self._url = f"{api_base.rstrip('/')}/{phone_number_id}/messages"
        self._http = _Http(transport, timeout)

    async def send(self, *, to: str, body: str) -> None:
        if not _E164.fullmatch(to):
            raise PermanentDeliveryError(f"not an E.164 phone number: {to!r}")
        response = await self._http.post(
            self._url,
            headers={"Authorization": f"Bearer {self._token}"},
            json={
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to,
                "type": "text",
                "text": {"body": body, "preview_url": False},
            },
        )
        if response.is_success:
            ids = [m.get("id") for m in _json_or_empty(response).get("messages", [])]
            log.info("whatsapp accepted", extra={"message_ids": ids})
            return
        error = _json_or_empty(response).get("error")
        error = error if isinstance(error, dict) else {}
        code = error.get("code")
        details = (error.get("error_data") or {}).get("details") or error.get("message") or ""
        description = f"whatsapp {response.status_code} (code {code}): {details}"[:500]
        if (
            code in _WHATSAPP_TRANSIENT_CODES
            or code in _WHATSAPP_CREDENTIAL_CODES
            or response.status_code in (401, 403)
            or _is_server_side(response.status_code)
        ):
            raise TransientDeliveryError(
                description, status=response.status_code, retry_after=_retry_after(response)
            )
        raise PermanentDeliveryError(description, status=response.status_code)


class LogWhatsAppSender:
    """WhatsApp sandbox: nothing leaves the machine."""

    async def send(self, *, to: str, body: str) -> None:
        log.info("whatsapp sandbox", extra={"to": to})


# ---------------------------------------------------------------- Web Push

URGENCIES = frozenset({"very-low", "low", "normal", "high"})  # RFC 8030 section 5.3
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")  # RFC 8030 section 5.4: URL-safe base64, 32 max
# Push services must accept 4096 bytes of encrypted body (RFC 8291 section 4); aes128gcm adds
# an 86-byte header (salt, record size, our 65-byte key), a 16-byte tag and a 1-byte delimiter.
MAX_PUSH_PAYLOAD = 4096 - 86 - 16 - 1


class VapidWebPushSender:
    """Web Push (RFC 8030) to browsers: the JSON payload encrypted with RFC 8291 ``aes128gcm``
    and signed with our VAPID key (RFC 8292), posted to the subscription's push service."""

    def __init__(
        self,
        keys: VapidKeys,
        subject: str,
        *,
        token_lifetime: timedelta = timedelta(hours=12),
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if not subject.startswith(("mailto:", "https://")):
            raise ValueError("the VAPID subject must be a mailto: or https: URL")
        # RFC 8292: the token may be valid for 24 hours at most; less leaves room for skew.
        if not timedelta(0) < token_lifetime <= timedelta(hours=24):
            raise ValueError("token_lifetime must be within 24 hours")
        self._vapid = Vapid02(private_key=keys.private_key())
        self._subject = subject
        self._token_lifetime = token_lifetime
        self._http = _Http(transport, timeout)

    async def send(
        self,
        target: PushTarget,
        payload: Mapping[str, Any],
        *,
        ttl: int = 86_400,
        urgency: str = "normal",
        topic: str | None = None,
    ) -> None:
        """``ttl``: seconds the push service keeps the message for an offline device.
        ``topic``: a newer message with the same topic replaces an undelivered older one."""
        if ttl < 0:
            raise ValueError("ttl must not be negative")
        if urgency not in URGENCIES:
            raise ValueError(f"urgency must be one of {sorted(URGENCIES)}")
        if topic is not None and not _TOPIC.fullmatch(topic):
            raise ValueError("topic must be 1-32 characters of the URL-safe base64 alphabet")
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        if len(data) > MAX_PUSH_PAYLOAD:
            raise PermanentDeliveryError(
                f"push payload is {len(data)} bytes; at most {MAX_PUSH_PAYLOAD} fit"
            )
        headers = {
            "Content-Encoding": "aes128gcm",
            "Content-Type": "application/octet-stream",
            "TTL": str(ttl),
            "Urgency": urgency,
            **self._authorization(target.endpoint),
        }
        if topic is not None:
            headers["Topic"] = topic
        response = await self._http.post(
            target.endpoint, content=self._encrypt(target, data), headers=headers
        )
        status = response.status_code
        if response.is_success:  # 201 Created
            return
        description = f"push service {status}: {response.text[:300]}"
        if status in (404, 410):
            raise SubscriptionGoneError(description, status=status)
        if _is_server_side(status):
            raise TransientDeliveryError(
                description, status=status, retry_after=_retry_after(response)
            )
        # 413 too large, 400 malformed, 401/403 a VAPID key the subscription was not made with.
        raise PermanentDeliveryError(description, status=status)

    def _authorization(self, endpoint: str) -> dict[str, str]:
        parts = urlsplit(endpoint)
        origin = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}".lower()
        # The push service checks `exp` against its own clock: real time, not the test clock.
        expires = clock.wall_now() + self._token_lifetime
        claims = {"aud": origin, "sub": self._subject, "exp": int(expires.timestamp())}
        try:
            signed: dict[str, str] = self._vapid.sign(claims)  # "vapid t=<jwt>,k=<our key>"
        except VapidException as exc:  # an audience or subject py_vapid will not sign
            raise PermanentDeliveryError(f"cannot sign for {origin!r}: {exc}") from exc
        return signed

    @staticmethod
    def _encrypt(target: PushTarget, data: bytes) -> bytes:
        try:
            # pywebpush checks neither key strictly; a bad key would only fail in the browser.
            if len(b64url_decode(target.auth)) != 16:
                raise ValueError("auth secret must be 16 bytes")
            p256dh = b64url_decode(target.p256dh)
            if len(p256dh) != 65 or p256dh[0] != 0x04:
                raise ValueError("p256dh must be an uncompressed P-256 point")
            pusher = WebPusher(
                {
                    "endpoint": target.endpoint,
                    "keys": {"p256dh": target.p256dh, "auth": target.auth},
                }
            )
            body: bytes = pusher.encode(data, content_encoding="aes128gcm")["body"]
        except (ValueError, TypeError, WebPushException, ECEException) as exc:
            # Kept as permanent, not "gone": it may be our decoding, not the device.
            raise PermanentDeliveryError(f"subscription keys are unusable: {exc}") from exc
        return body


class LogWebPushSender:
    """Web Push sandbox: nothing is sent or recorded."""

    async def send(
        self,
        target: PushTarget,
        payload: Mapping[str, Any],
        *,
        ttl: int = 86_400,
        urgency: str = "normal",
        topic: str | None = None,
    ) -> None:
        # The endpoint is a capability URL: log only which push service it belongs to.
        log.info("web push sandbox", extra={"push_service": urlsplit(target.endpoint).hostname})


# ---------------------------------------------------------------- FCM (native apps)

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_SERVICE_ACCOUNT_FIELDS = ("project_id", "private_key", "client_email", "token_uri")
# Renew the access token this long before Google says it expires (skew, slow requests).
_TOKEN_MARGIN = 300.0


@dataclass(frozen=True)
class _AccessToken:
    value: str
    renew_at: float  # time.monotonic(): immune to wall-clock jumps and the test clock


class HttpV1FcmSender:
    """Firebase Cloud Messaging HTTP v1, authenticated as a service account: a self-signed
    RS256 assertion is exchanged at ``token_uri`` for an OAuth2 access token (cached)."""

    def __init__(
        self,
        service_account: Mapping[str, Any],
        *,
        api_base: str = "https://fcm.googleapis.com",
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        missing = [f for f in _SERVICE_ACCOUNT_FIELDS if not service_account.get(f)]
        if missing:
            raise ValueError(f"service account lacks {', '.join(missing)}")
        self._account = {
            f: str(service_account[f])
            for f in (*_SERVICE_ACCOUNT_FIELDS, "private_key_id")
            if service_account.get(f)
        }
        project = self._account["project_id"]
        self._url = f"{api_base.rstrip('/')}/v1/projects/{project}/messages:send"
        self._http = _Http(transport, timeout)
        self._token: _AccessToken | None = None
        self._token_lock = asyncio.Lock()  # concurrent sends share one token request

    @classmethod
    def from_file(cls, path: str | Path, **options: Any) -> HttpV1FcmSender:
        """The JSON key file downloaded from the Firebase console."""
        return cls(json.loads(Path(path).read_text(encoding="utf-8")), **options)

    async def send(
        self,
        token: str,
        *,
        title: str,
        body: str,
        link: str | None = None,
        data: Mapping[str, str] | None = None,
    ) -> None:
        """``link`` opens on tap: on the web through ``webpush.fcm_options.link`` (HTTPS
        only), in native apps through ``data["link"]``, which the app reads."""
        message = self.message(token, title=title, body=body, link=link, data=data)
        access_token = await self._access_token()
        response = await self._post_message(message, access_token)
        if response.status_code == 401 and self._fcm_error_code(response) is None:
            # Our access token was revoked or expired early: one retry with a fresh one
            # (unless a concurrent send already replaced it).
            if self._token is not None and self._token.value == access_token:
                self._token = None
            response = await self._post_message(message, await self._access_token())
        self._check(response)

    @staticmethod
    def message(
        token: str,
        *,
        title: str,
        body: str,
        link: str | None = None,
        data: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        fields: dict[str, str] = dict(data or {})
        if link is not None:
            fields["link"] = link
        message: dict[str, Any] = {"token": token, "notification": {"title": title, "body": body}}
        if fields:
            message["data"] = fields
        if link is not None and link.startswith("https://"):
            message["webpush"] = {"fcm_options": {"link": link}}
        return {"message": message}

    async def _post_message(self, message: dict[str, Any], access_token: str) -> httpx.Response:
        return await self._http.post(
            self._url, headers={"Authorization": f"Bearer {access_token}"}, json=message
        )

    def _check(self, response: httpx.Response) -> None:
        status = response.status_code
        if response.is_success:
            return
        code = self._fcm_error_code(response)
        error = _json_or_empty(response).get("error")
        error = error if isinstance(error, dict) else {}
        text = error.get("message") or response.text[:300]
        description = f"fcm {status} {code or ''}: {text}"[:500]
        # Only Google's own "not found" means the token: a bare 404 (a wrong api_base, a
        # proxy) must not disable every device.
        if code == "UNREGISTERED" or (status == 404 and error.get("status") == "NOT_FOUND"):
            raise SubscriptionGoneError(description, status=status)
        if code in ("INVALID_ARGUMENT", "SENDER_ID_MISMATCH"):
            raise PermanentDeliveryError(description, status=status)
        # 401/403: our credentials or the APNs/web push credentials in Firebase (fixable).
        if _is_server_side(status) or status in (401, 403) or code == "THIRD_PARTY_AUTH_ERROR":
            raise TransientDeliveryError(
                description, status=status, retry_after=_retry_after(response)
            )
        raise PermanentDeliveryError(description, status=status)

    @staticmethod
    def _fcm_error_code(response: httpx.Response) -> str | None:
        """``error.details[].errorCode`` of FCM's ``FcmError`` (UNREGISTERED, …)."""
        error = _json_or_empty(response).get("error")
        details = error.get("details", []) if isinstance(error, dict) else []
        for detail in details if isinstance(details, list) else []:
            if isinstance(detail, dict) and str(detail.get("@type", "")).endswith("FcmError"):
                code = detail.get("errorCode")
                return str(code) if code else None
        return None

    async def _access_token(self) -> str:
        async with self._token_lock:
            cached = self._token
            if cached is not None and time.monotonic() < cached.renew_at:
                return cached.value
            self._token = await self._fetch_token()
            return self._token.value

    async def _fetch_token(self) -> _AccessToken:
        token_uri = self._account["token_uri"]
        # Google checks iat/exp against its own clock: real time, not the test clock.
        issued = int(clock.wall_now().timestamp())
        headers = (
            {"kid": self._account["private_key_id"]} if "private_key_id" in self._account else {}
        )
        assertion = jwt.encode(
            {
                "iss": self._account["client_email"],
                "scope": FCM_SCOPE,
                "aud": token_uri,
                "iat": issued,
                "exp": issued + 3600,  # the longest Google accepts
            },
            self._account["private_key"],
            algorithm="RS256",
            headers=headers,
        )
        response = await self._http.post(
            token_uri, data={"grant_type": JWT_BEARER, "assertion": assertion}
        )
        body = _json_or_empty(response)
        if not response.is_success or not isinstance(body.get("access_token"), str):
            # A refused assertion is our key or clock, never the message: may pass once fixed.
            raise TransientDeliveryError(
                f"fcm access token refused: {response.status_code} "
                f"{body.get('error', '')} {body.get('error_description', '')}".strip(),
                status=response.status_code,
                retry_after=_retry_after(response),
            )
        lifetime = float(body.get("expires_in", 3600))
        return _AccessToken(body["access_token"], time.monotonic() + lifetime - _TOKEN_MARGIN)


class LogFcmSender:
    """FCM sandbox: nothing leaves the machine."""

    async def send(
        self,
        token: str,
        *,
        title: str,
        body: str,
        link: str | None = None,
        data: Mapping[str, str] | None = None,
    ) -> None:
        log.info("fcm sandbox", extra={"title": title})


# ---------------------------------------------------------------- wiring

DEFAULT_VAPID_SUBJECT = "mailto:support@mesteri.ro"


class Senders:
    def __init__(
        self,
        email: EmailSender,
        sms: SmsSender,
        whatsapp: WhatsAppSender | None = None,
        webpush: WebPushSender | None = None,
        fcm: FcmSender | None = None,
    ) -> None:
        self.email = email
        self.sms = sms
        self.whatsapp: WhatsAppSender = whatsapp or LogWhatsAppSender()
        self.webpush: WebPushSender = webpush or LogWebPushSender()
        self.fcm: FcmSender = fcm or LogFcmSender()


_senders: Senders | None = None


def configure(
    smtp_url: str | None,
    mail_from: str,
    *,
    settings: Settings | None = None,
    vapid: VapidKeys | None = None,
) -> Senders:
    """Real adapters for the channels that are configured, sandboxes for the rest.
    ``vapid``: the keys the caller loaded from the database (Web Push stays sandboxed
    without them)."""
    email: EmailSender = SmtpEmailSender(smtp_url, mail_from) if smtp_url else LogEmailSender()
    whatsapp: WhatsAppSender = LogWhatsAppSender()
    fcm: FcmSender = LogFcmSender()
    if settings is not None:
        if bool(settings.whatsapp_token) != bool(settings.whatsapp_phone_number_id):
            # Half a configuration would silently keep WhatsApp in the sandbox.
            raise ValueError(
                "set both MESTERI_WHATSAPP_TOKEN and MESTERI_WHATSAPP_PHONE_NUMBER_ID, or neither"
            )
        if settings.whatsapp_token and settings.whatsapp_phone_number_id:
            whatsapp = CloudApiWhatsAppSender(
                settings.whatsapp_token,
                settings.whatsapp_phone_number_id,
                api_base=settings.whatsapp_api_base,
            )
        if settings.fcm_service_account_file is not None:
            fcm = HttpV1FcmSender.from_file(
                settings.fcm_service_account_file, api_base=settings.fcm_api_base
            )
    subject = settings.vapid_subject if settings is not None else DEFAULT_VAPID_SUBJECT
    webpush: WebPushSender = (
        VapidWebPushSender(vapid, subject) if vapid is not None else LogWebPushSender()
    )
    chosen = Senders(email=email, sms=LogSmsSender(), whatsapp=whatsapp, webpush=webpush, fcm=fcm)
    log.info(
        "notification channels",
        extra={
            "channels": {
                name: type(getattr(chosen, name)).__name__
                for name in ("email", "sms", "whatsapp", "webpush", "fcm")
            }
        },
    )
    return install(chosen)


def install(chosen: Senders) -> Senders:
    """Use these senders in this process (tests pass recording ones)."""
    global _senders
    _senders = chosen
    return chosen


def current() -> Senders:
    assert _senders is not None, "notifications.senders.configure() was not called"
    return _senders
