"""Notifications API: the in-app list and its unread count, preferences per event and
channel with quiet hours, devices for push, and the Web Push public key."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, Response, status

from mesteri.accounts.deps import CurrentPrincipal
from mesteri.kit.db import DbRead, DbWrite
from mesteri.kit.errors import NotFoundError
from mesteri.kit.i18n import get_language, translations
from mesteri.notifications import service
from mesteri.notifications.models import Device, DeviceProvider
from mesteri.notifications.schemas import (
    ChannelChoiceOut,
    DeviceIn,
    DeviceOut,
    KindPreferenceOut,
    MarkReadIn,
    NotificationOut,
    NotificationPage,
    PreferencesIn,
    PreferencesOut,
    Provider,
    QuietHoursBody,
    UnreadOut,
    WebPushKeyOut,
)

router = APIRouter(tags=["notifications"])


@router.get("/notifications", response_model=NotificationPage)
async def list_notifications(
    session: DbRead,
    principal: CurrentPrincipal,
    cursor: str | None = Query(default=None, max_length=400),
    limit: int = Query(default=20, ge=1, le=100),
) -> NotificationPage:
    """Newest first, in the caller's language, with the unread count (the bell's badge)."""
    rows, next_cursor = await service.list_notifications(
        session, principal.user_id, cursor=cursor, limit=limit
    )
    return NotificationPage(
        items=[NotificationOut(**service.notification_out(n)) for n in rows],
        next_cursor=next_cursor,
        unread=await service.unread_count(session, principal.user_id),
    )


@router.post("/notifications/read", response_model=UnreadOut)
async def mark_read(body: MarkReadIn, session: DbWrite, principal: CurrentPrincipal) -> UnreadOut:
    """Mark these notifications read (all of them without ``ids``)."""
    return UnreadOut(unread=await service.do_mark_read(session, principal.user_id, body.ids))


async def _preferences(session: DbRead, user_id: uuid.UUID) -> PreferencesOut:
    t = translations(get_language()).gettext
    kinds: dict[str, KindPreferenceOut] = {}
    for choice in await service.preferences_of(session, user_id):
        entry = kinds.setdefault(
            choice.kind.key,
            KindPreferenceOut(
                kind=choice.kind.key,
                group=choice.kind.group,
                label=t(choice.kind.label),
                channels=[],
            ),
        )
        entry.channels.append(
            ChannelChoiceOut(
                channel=choice.channel, enabled=choice.enabled, required=choice.required
            )
        )
    quiet = await service.quiet_hours_of(session, user_id)
    return PreferencesOut(
        kinds=list(kinds.values()),
        quiet_hours=QuietHoursBody(start=quiet.starts, end=quiet.ends, time_zone=quiet.time_zone)
        if quiet
        else None,
    )


@router.get("/notification-preferences", response_model=PreferencesOut)
async def get_preferences(session: DbRead, principal: CurrentPrincipal) -> PreferencesOut:
    """Every event of the catalogue with the channels it may use and the caller's choice."""
    return await _preferences(session, principal.user_id)


@router.put("/notification-preferences", response_model=PreferencesOut)
async def put_preferences(
    body: PreferencesIn, session: DbWrite, principal: CurrentPrincipal
) -> PreferencesOut:
    """Change the given choices; ``quiet_hours`` (``start``, ``end``, ``time_zone``) holds
    SMS, WhatsApp and pushes back while they last, ``null`` removes them."""
    quiet = (
        service.QuietHoursIn(
            body.quiet_hours.start, body.quiet_hours.end, body.quiet_hours.time_zone
        )
        if body.quiet_hours
        else None
    )
    await service.do_set_preferences(
        session,
        principal.user_id,
        [(p.kind, p.channel, p.enabled) for p in body.preferences],
        quiet=quiet,
        set_quiet="quiet_hours" in body.model_fields_set,
    )
    return await _preferences(session, principal.user_id)


def device_out(device: Device) -> DeviceOut:
    return DeviceOut(
        id=device.id,
        provider=device.provider,
        label=device.label,
        created_at=device.created_at,
        last_used_at=device.last_used_at,
    )


@router.get("/devices", response_model=list[DeviceOut])
async def list_devices(session: DbRead, principal: CurrentPrincipal) -> list[DeviceOut]:
    return [device_out(d) for d in await service.list_devices(session, principal.user_id)]


@router.post("/devices", response_model=DeviceOut, status_code=status.HTTP_201_CREATED)
async def register_device(
    body: DeviceIn, session: DbWrite, principal: CurrentPrincipal
) -> DeviceOut:
    """A native app's FCM token, or a browser's Web Push subscription."""
    return device_out(await do_register(session, principal.user_id, body))


async def do_register(session: DbWrite, user_id: uuid.UUID, body: DeviceIn) -> Device:
    """The API's and the pages' registration of a device (one shape for both)."""
    if body.provider == Provider.WEBPUSH:
        assert body.subscription is not None
        return await service.do_register_device(
            session,
            user_id,
            provider=DeviceProvider.WEBPUSH,
            token=body.subscription.endpoint,
            p256dh=body.subscription.keys.p256dh,
            auth=body.subscription.keys.auth,
            label=body.label,
        )
    assert body.token is not None
    return await service.do_register_device(
        session, user_id, provider=DeviceProvider.FCM, token=body.token, label=body.label
    )


@router.delete(
    "/devices/{device_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response
)
async def remove_device(
    device_id: uuid.UUID, session: DbWrite, principal: CurrentPrincipal
) -> Response:
    await service.do_remove_device(session, principal.user_id, device_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/notifications/webpush-key", response_model=WebPushKeyOut)
async def webpush_key(session: DbRead) -> WebPushKeyOut:
    """The ``applicationServerKey`` browsers subscribe with."""
    key = await service.vapid_public_key(session)
    if key is None:
        raise NotFoundError()
    return WebPushKeyOut(public_key=key)
