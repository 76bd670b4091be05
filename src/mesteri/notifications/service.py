"""Telling people what happened: the event catalogue and its channels, with their preferences.

``do_notify`` is what every module calls, inside its own transaction, when something of
the catalogue happens to someone. It records the news once (a repeated event with the
same key is dropped: one e-mail per event per person), puts it in the in-app list with a
live ``notification.new`` event for the bell, and queues one delivery per chosen channel
— e-mail (HTML and text, in the person's language), SMS, WhatsApp, and a push to each of
their devices — through the job queue, where retries and the delivery log live. Quiet
hours hold the interrupting channels back until they end.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects.postgresql import insert

from mesteri.accounts import service as accounts
from mesteri.config import get_settings
from mesteri.kit import clock, realtime
from mesteri.kit.crypto import FieldCipher
from mesteri.kit.db import ReadSession, WriteSession
from mesteri.kit.errors import InvalidInputError, NotFoundError
from mesteri.kit.i18n import get_language, speaking, translations
from mesteri.kit.ids import new_id
from mesteri.kit.pagination import keyset, page_of
from mesteri.notifications import outbound
from mesteri.notifications.catalogue import (
    CATALOGUE,
    INTERRUPTING,
    KINDS,
    Channel,
    Kind,
)
from mesteri.notifications.models import (
    Device,
    DeviceProvider,
    Notification,
    Preference,
    QuietHours,
    VapidKeyPair,
)
from mesteri.notifications.vapid import VapidKeys, generate_vapid_keys

SMS_LIMIT = 300


class UnknownKindError(InvalidInputError):
    code = "unknown_notification_kind"
    message = "There is no such kind of notification."


class ChannelRequiredError(InvalidInputError):
    code = "channel_required"
    message = "This notification cannot be switched off on this channel."


class InvalidTimeZoneError(InvalidInputError):
    code = "invalid_time_zone"
    message = "Choose a time zone such as Europe/Bucharest."


class UnsafePushEndpointError(InvalidInputError):
    code = "unsafe_push_endpoint"
    message = "This push subscription cannot be used: its address must be https on a public host."


class DeviceNotFoundError(NotFoundError):
    code = "device_not_found"
    message = "We could not find this device."


# ---------------------------------------------------------------- preferences


@dataclass(frozen=True)
class Choice:
    kind: Kind
    channel: Channel
    enabled: bool

    @property
    def required(self) -> bool:
        return self.channel in self.kind.required


async def preferences_of(session: ReadSession, user_id: uuid.UUID) -> list[Choice]:
    """Every kind and offered channel with the user's effective choice."""
    chosen = {
        (row.kind, row.channel): row.enabled
        for row in await session.scalars(select(Preference).where(Preference.user_id == user_id))
    }
    choices = []
    for kind in CATALOGUE:
        for channel in Channel:
            if channel not in kind.offered:
                continue
            enabled = chosen.get((kind.key, channel), channel in kind.defaults)
            choices.append(Choice(kind, channel, enabled or channel in kind.required))
    return choices


async def _channels(session: ReadSession, user_id: uuid.UUID, kind: Kind) -> set[Channel]:
    overrides = {
        row.channel: row.enabled
        for row in await session.execute(
            select(Preference.channel, Preference.enabled).where(
                Preference.user_id == user_id, Preference.kind == kind.key
            )
        )
    }
    return {
        channel
        for channel in Channel
        if channel in kind.offered
        and (overrides.get(channel, channel in kind.defaults) or channel in kind.required)
    }


async def quiet_hours_of(session: ReadSession, user_id: uuid.UUID) -> QuietHours | None:
    return await session.get(QuietHours, user_id)


@dataclass(frozen=True)
class QuietHoursIn:
    starts: time
    ends: time
    time_zone: str


async def do_set_preferences(
    session: WriteSession,
    user_id: uuid.UUID,
    changes: Iterable[tuple[str, str, bool]],
    *,
    quiet: QuietHoursIn | None,
    set_quiet: bool,
) -> None:
    """Store the user's choices (kind, channel, enabled); ``set_quiet``: also replace the
    quiet hours with ``quiet`` (None removes them)."""
    now = clock.now()
    for key, channel_name, enabled in changes:
        kind = KINDS.get(key)
        if kind is None:
            raise UnknownKindError(field="preferences")
        try:
            channel = Channel(channel_name)
        except ValueError as exc:
            raise UnknownKindError(field="preferences") from exc
        if channel not in kind.offered:
            raise UnknownKindError(field="preferences")
        if not enabled and channel in kind.required:
            raise ChannelRequiredError(field="preferences")
        statement = insert(Preference).values(
            user_id=user_id, kind=key, channel=channel, enabled=enabled, updated_at=now
        )
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["user_id", "kind", "channel"],
                set_={"enabled": enabled, "updated_at": now},
            )
        )
    if set_quiet:
        await session.execute(delete(QuietHours).where(QuietHours.user_id == user_id))
        if quiet is not None:
            _zone(quiet.time_zone)
            session.add(
                QuietHours(
                    user_id=user_id,
                    starts=quiet.starts,
                    ends=quiet.ends,
                    time_zone=quiet.time_zone,
                    updated_at=now,
                )
            )
    await session.flush()


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidTimeZoneError(field="quiet_hours.time_zone") from exc


def quiet_until(moment: datetime, quiet: QuietHours | None) -> datetime | None:
    """When the quiet hours that contain ``moment`` end (None if it is not quiet then).
    Hours may wrap midnight (22:00 to 07:00)."""
    if quiet is None or quiet.starts == quiet.ends:
        return None
    zone = _zone(quiet.time_zone)
    local = moment.astimezone(zone)
    now_t = local.timetz().replace(tzinfo=None)
    if quiet.starts < quiet.ends:
        inside = quiet.starts <= now_t < quiet.ends
        end_day = local.date()
    else:
        inside = now_t >= quiet.starts or now_t < quiet.ends
        end_day = local.date() + timedelta(days=1) if now_t >= quiet.starts else local.date()
    if not inside:
        return None
    return datetime.combine(end_day, quiet.ends, tzinfo=zone).astimezone(moment.tzinfo)


# ---------------------------------------------------------------- announcing


_TRANSACTION = "mesteri.notifications.transaction"


def _dedupe_key(
    session: WriteSession,
    kind: str,
    subject: str,
    body: str,
    link: str | None,
    params: dict[str, Any],
) -> str:
    """The same news twice in one transaction is one notification (a handler reached
    twice); across transactions, callers that can repeat themselves (timers, retried
    jobs) pass a key naming the event."""
    transaction = session.info.setdefault(_TRANSACTION, uuid.uuid4().hex)
    digest = hashlib.sha256(
        json.dumps([subject, body, link, params], sort_keys=True, default=str).encode()
    ).hexdigest()
    return f"{kind}:{digest[:32]}:{transaction}"


def _absolute(link: str | None) -> str:
    return f"{get_settings().public_url}{link}" if link else get_settings().public_url


async def do_notify(
    session: WriteSession,
    user_id: uuid.UUID,
    kind: str,
    *,
    subject: str,
    body: str,
    link: str | None = None,
    dedupe_key: str | None = None,
    **params: Any,
) -> Notification | None:
    """Tell ``user_id`` about ``kind`` (an entry of the catalogue). ``subject`` and
    ``body`` are English messages marked with ``lazy``, their ``{placeholders}`` filled
    from ``params`` after translation; ``link`` is a path of the site. The same event
    again (``dedupe_key``, or the same texts) is not sent twice. None when the user cannot
    be reached or heard of this already."""
    entry = KINDS[kind]
    contact = await accounts.contact_of(session, user_id)
    if contact is None:
        return None
    values = {k: str(v) for k, v in params.items()}
    key = dedupe_key or _dedupe_key(session, kind, subject, body, link, values)
    channels = await _channels(session, user_id, entry)
    now = clock.now()
    notification: Notification | None = await session.scalar(
        insert(Notification)
        .values(
            id=new_id(),
            user_id=user_id,
            kind=kind,
            title=subject,
            body=body,
            params=values,
            link=link,
            dedupe_key=key[:200],
            in_app=Channel.IN_APP in channels,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["user_id", "dedupe_key"])
        .returning(Notification)
    )
    if notification is None:  # heard of this already
        return None
    t = translations(contact.language).gettext
    title, text = t(subject).format(**values), t(body).format(**values)
    url = _absolute(link)
    quiet = await quiet_hours_of(session, user_id) if channels & INTERRUPTING else None
    held = quiet_until(now, quiet)
    if Channel.EMAIL in channels and contact.email:
        html, plain = render_email(contact.language, title=title, text=text, url=url)
        await outbound.do_queue_message(
            session,
            channel="email",
            to=contact.email,
            subject=title,
            body=plain,
            html=html,
            kind=kind,
            user_id=user_id,
            notification_id=notification.id,
        )
    for channel in (Channel.SMS, Channel.WHATSAPP):
        if channel in channels and contact.phone:
            short = f"Mesteri: {title} {url}"
            await outbound.do_queue_message(
                session,
                channel=channel,
                to=contact.phone,
                subject=title,
                body=short[:SMS_LIMIT],
                run_at=held,
                kind=kind,
                user_id=user_id,
                notification_id=notification.id,
            )
    if Channel.PUSH in channels:
        await _queue_pushes(session, notification, title=title, text=text, url=url, run_at=held)
    if notification.in_app:
        realtime.publish(
            session,
            [user_id],
            "notification.new",
            {
                **notification_out(notification, contact.language),
                "unread": await unread_count(session, user_id),
            },
        )
    return notification


async def _queue_pushes(
    session: WriteSession,
    notification: Notification,
    *,
    title: str,
    text: str,
    url: str,
    run_at: datetime | None,
) -> None:
    devices = await session.scalars(
        select(Device).where(Device.user_id == notification.user_id, Device.disabled_at.is_(None))
    )
    for device in devices:
        await outbound.do_queue_message(
            session,
            channel="push",
            to=f"{device.provider}:{device.id}",
            subject=title,
            body=text,
            data={
                "title": title,
                "body": text,
                "url": url,
                "tag": notification.kind,
                "notification_id": str(notification.id),
            },
            device_id=device.id,
            kind=notification.kind,
            user_id=notification.user_id,
            notification_id=notification.id,
            run_at=run_at,
        )


def render_email(language: str, *, title: str, text: str, url: str) -> tuple[str, str]:
    """The HTML and plain-text e-mail of a notification, in ``language``."""
    from mesteri.kit.web import templates

    context = {
        "title": title,
        "text": text,
        "url": url,
        "preferences_url": _absolute("/settings/notifications"),
        "lang": language,
        "dir": "rtl" if language == "he" else "ltr",
    }
    with speaking(language):
        html = templates.get_template("notifications/email.html").render(context)
        plain = templates.get_template("notifications/email.txt").render(context)
    return html, plain


# ---------------------------------------------------------------- the in-app list


def notification_out(notification: Notification, language: str | None = None) -> dict[str, Any]:
    t = translations(language or get_language()).gettext
    params = notification.params or {}
    try:
        title, body = t(notification.title).format(**params), t(notification.body).format(**params)
    except (KeyError, IndexError, ValueError):
        title, body = notification.title, notification.body
    return {
        "id": str(notification.id),
        "kind": notification.kind,
        "title": title,
        "body": body,
        "link": notification.link,
        "created_at": notification.created_at.isoformat(),
        "read_at": notification.read_at.isoformat() if notification.read_at else None,
    }


async def list_notifications(
    session: ReadSession, user_id: uuid.UUID, *, cursor: str | None, limit: int
) -> tuple[Sequence[Notification], str | None]:
    query = select(Notification).where(Notification.user_id == user_id, Notification.in_app)
    keys = (Notification.created_at, Notification.id)
    rows = (await session.scalars(keyset(query, keys, cursor=cursor, limit=limit))).all()
    return page_of(rows, ["created_at", "id"], limit)


async def unread_count(session: ReadSession, user_id: uuid.UUID) -> int:
    return int(
        await session.scalar(
            select(func.count()).where(
                Notification.user_id == user_id,
                Notification.in_app,
                Notification.read_at.is_(None),
            )
        )
        or 0
    )


async def do_mark_read(
    session: WriteSession, user_id: uuid.UUID, ids: Sequence[uuid.UUID] | None
) -> int:
    """Mark these notifications (all when None) read; the unread count after it."""
    query = update(Notification).where(
        Notification.user_id == user_id, Notification.read_at.is_(None)
    )
    if ids is not None:
        query = query.where(Notification.id.in_(ids))
    await session.execute(
        query.values(read_at=clock.now()).execution_options(synchronize_session=False)
    )
    unread = await unread_count(session, user_id)
    realtime.publish(session, [user_id], "notification.read", {"unread": unread})
    return unread


# ---------------------------------------------------------------- devices


async def do_register_device(
    session: WriteSession,
    user_id: uuid.UUID,
    *,
    provider: DeviceProvider,
    token: str,
    p256dh: str | None = None,
    auth: str | None = None,
    label: str | None = None,
) -> Device:
    """A browser's push subscription or an app's FCM token, for this user. The same
    token registered again (a new sign-in on the device) moves to this user."""
    if provider == DeviceProvider.WEBPUSH:
        check_push_endpoint(token)
    now = clock.now()
    statement = insert(Device).values(
        id=new_id(),
        user_id=user_id,
        provider=provider,
        token=token,
        p256dh=p256dh,
        auth=auth,
        label=label,
        created_at=now,
    )
    device_id = await session.scalar(
        statement.on_conflict_do_update(
            index_elements=["provider", "token"],
            set_={
                "user_id": user_id,
                "p256dh": p256dh,
                "auth": auth,
                "label": label,
                "disabled_at": None,
            },
        ).returning(Device.id)
    )
    device = await session.get(Device, device_id, populate_existing=True)
    assert device is not None
    return device


def check_push_endpoint(endpoint: str) -> None:
    """The server will POST to this address, so it must be a browser push service, not
    something inside our network: https, a host name, not an address of this machine or
    a private range. (Tests and dev may use a push service on loopback.)"""
    try:
        parts = urlsplit(endpoint)
        host = parts.hostname or ""
    except ValueError as exc:  # not a URL at all (a bracket where a host should be)
        raise UnsafePushEndpointError(field="subscription.endpoint") from exc
    if get_settings().dev_tools_enabled and host in ("127.0.0.1", "localhost"):
        return
    try:
        ipaddress.ip_address(host)
        literal = True
    except ValueError:
        literal = False
    if (
        parts.scheme != "https"
        or not host
        or literal
        or "." not in host
        or host.endswith((".local", ".internal", ".localhost"))
    ):
        raise UnsafePushEndpointError(field="subscription.endpoint")


async def list_devices(session: ReadSession, user_id: uuid.UUID) -> Sequence[Device]:
    return (
        await session.scalars(
            select(Device)
            .where(Device.user_id == user_id, Device.disabled_at.is_(None))
            .order_by(Device.created_at)
        )
    ).all()


async def do_remove_device(session: WriteSession, user_id: uuid.UUID, device_id: uuid.UUID) -> None:
    result = await session.execute(
        delete(Device).where(Device.id == device_id, Device.user_id == user_id)
    )
    if not getattr(result, "rowcount", 0):
        raise DeviceNotFoundError()


# ---------------------------------------------------------------- Web Push keys


def _cipher() -> FieldCipher:
    return FieldCipher.from_secret(get_settings().secret_key)


async def do_load_vapid_keys(session: WriteSession) -> VapidKeys:
    """The platform's Web Push key pair, made on first run (every process shares it)."""
    row = await session.get(VapidKeyPair, 1)
    if row is None:
        fresh = generate_vapid_keys()
        await session.execute(
            insert(VapidKeyPair)
            .values(
                id=1,
                private_pem=_cipher().encrypt(fresh.private_pem, context="vapid"),
                public_key=fresh.public_key,
                created_at=clock.now(),
            )
            .on_conflict_do_nothing(index_elements=["id"])
        )
        row = await session.get(VapidKeyPair, 1, populate_existing=True)
        assert row is not None
    return VapidKeys(
        private_pem=_cipher().decrypt(row.private_pem, context="vapid"), public_key=row.public_key
    )


async def vapid_public_key(session: ReadSession) -> str | None:
    return await session.scalar(select(VapidKeyPair.public_key).where(VapidKeyPair.id == 1))
