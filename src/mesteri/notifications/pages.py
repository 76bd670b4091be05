"""Notification pages: the list behind the bell, the preferences (for each event and channel, quiet
hours, devices with "enable push here"), and the badge counts the navigation's script
reads. They call the same services as the API; nothing here decides a rule."""

from __future__ import annotations

import json
import uuid
from datetime import time
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from mesteri.accounts.deps import WebAuthRequired
from mesteri.config import get_settings
from mesteri.kit.db import DbWrite
from mesteri.kit.errors import InvalidInputError
from mesteri.kit.i18n import lazy
from mesteri.kit.web import form_errors, render, see_other, templates, wants_page_json
from mesteri.messaging import service as messaging
from mesteri.notifications import api as shapes
from mesteri.notifications import service
from mesteri.notifications.catalogue import CHANNEL_LABELS, GROUP_LABELS, Channel
from mesteri.notifications.schemas import DeviceIn, NotificationOut

router = APIRouter()

templates.globals.update(
    notification_channel_names=CHANNEL_LABELS,
    notification_group_names=GROUP_LABELS,
    notification_channels=list(Channel),
)

TIME_ZONES = ("Europe/Bucharest", "Asia/Jerusalem", "Europe/Budapest", "Europe/London", "UTC")


@router.get("/notifications")
async def notifications_page(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> Response:
    user_id = auth[1].user_id
    rows, next_cursor = await service.list_notifications(session, user_id, cursor=cursor, limit=30)
    return render(
        request,
        "notifications/list.html",
        {
            "items": [NotificationOut(**service.notification_out(n)) for n in rows],
            "next_cursor": next_cursor,
            "unread": await service.unread_count(session, user_id),
        },
    )


@router.post("/notifications/read")
async def mark_read(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    notification_id: Annotated[uuid.UUID | None, Form()] = None,
) -> Response:
    """One notification (opened from the list) or all of them."""
    ids = [notification_id] if notification_id else None
    unread = await service.do_mark_read(session, auth[1].user_id, ids)
    if wants_page_json(request):
        return JSONResponse({"unread": unread})
    return see_other("/notifications")


@router.get("/badges")
async def badges(session: DbWrite, auth: WebAuthRequired) -> JSONResponse:
    """The navigation's counts: unread conversations and notifications."""
    user_id = auth[1].user_id
    inbox = await messaging.unread_counts(session, user_id)
    return JSONResponse(
        {
            "conversations": inbox.conversations,
            "notifications": await service.unread_count(session, user_id),
        },
        headers={"Cache-Control": "no-store"},
    )


# ---------------------------------------------------------------- preferences


async def _settings_context(session: DbWrite, user_id: uuid.UUID) -> dict[str, object]:
    choices = await service.preferences_of(session, user_id)
    grouped: dict[str, dict[str, dict[str, service.Choice]]] = {}
    for choice in choices:
        kinds = grouped.setdefault(choice.kind.group, {})
        kinds.setdefault(choice.kind.key, {})[choice.channel] = choice
    labels = {choice.kind.key: choice.kind.label for choice in choices}
    return {
        "grouped": grouped,
        "kind_labels": labels,
        "quiet": await service.quiet_hours_of(session, user_id),
        "devices": await service.list_devices(session, user_id),
        "time_zones": TIME_ZONES,
        "default_zone": get_settings().market_profile.time_zone,
        "vapid_key": await service.vapid_public_key(session),
    }


@router.get("/settings/notifications")
async def settings_page(request: Request, session: DbWrite, auth: WebAuthRequired) -> Response:
    context = await _settings_context(session, auth[1].user_id)
    return render(request, "notifications/settings.html", context)


def _clock(value: str, field: str) -> time:
    try:
        return time.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInputError(lazy("Enter a time such as 22:00."), field=field) from exc


@router.post("/settings/notifications")
async def save_settings(request: Request, session: DbWrite, auth: WebAuthRequired) -> Response:
    """Every offered switch is on the form: what is ticked is on, the rest is off."""
    user_id = auth[1].user_id
    form = await request.form()
    context = await _settings_context(session, user_id)
    with form_errors(request, "notifications/settings.html", **context):
        changes = [
            (c.kind.key, c.channel, f"pref:{c.kind.key}:{c.channel}" in form)
            for c in await service.preferences_of(session, user_id)
            if not c.required
        ]
        quiet = None
        if form.get("quiet_on"):
            quiet = service.QuietHoursIn(
                _clock(str(form.get("quiet_start", "")), "quiet_start"),
                _clock(str(form.get("quiet_end", "")), "quiet_end"),
                str(form.get("time_zone", "")) or get_settings().market_profile.time_zone,
            )
        await service.do_set_preferences(session, user_id, changes, quiet=quiet, set_quiet=True)
    return see_other("/settings/notifications?saved=1")


@router.post("/settings/notifications/devices")
async def add_device(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    subscription: Annotated[str, Form(max_length=5000)],
    label: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """ "Enable push notifications here": the browser's subscription, from the page's script."""
    try:
        body = DeviceIn.model_validate(
            {
                "provider": "webpush",
                "subscription": json.loads(subscription),
                "label": label.strip() or None,
            }
        )
    except (ValueError, ValidationError) as exc:
        raise InvalidInputError(field="subscription") from exc
    device = await shapes.do_register(session, auth[1].user_id, body)
    return JSONResponse({"id": str(device.id)}, status_code=201)


@router.post("/settings/notifications/devices/{device_id}/remove")
async def remove_device(device_id: uuid.UUID, session: DbWrite, auth: WebAuthRequired) -> Response:
    await service.do_remove_device(session, auth[1].user_id, device_id)
    return see_other("/settings/notifications?removed=1")
