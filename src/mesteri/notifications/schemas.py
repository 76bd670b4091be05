"""Request and response shapes of notifications, preferences and devices."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, time

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mesteri.kit.text import Trimmed


class NotificationOut(BaseModel):
    id: uuid.UUID
    kind: str
    title: str
    body: str
    link: str | None
    created_at: datetime
    read_at: datetime | None


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    next_cursor: str | None = None
    unread: int


class MarkReadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ids: list[uuid.UUID] | None = Field(default=None, max_length=500)  # none: all of them


class UnreadOut(BaseModel):
    unread: int


class ChannelChoiceOut(BaseModel):
    channel: str
    enabled: bool
    required: bool  # cannot be switched off


class KindPreferenceOut(BaseModel):
    kind: str
    group: str
    label: str
    channels: list[ChannelChoiceOut]


class QuietHoursBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: time
    end: time
    time_zone: Trimmed = Field(default="Europe/Bucharest", min_length=1, max_length=40)


class PreferencesOut(BaseModel):
    kinds: list[KindPreferenceOut]
    quiet_hours: QuietHoursBody | None


class PreferenceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Trimmed = Field(max_length=60)
    channel: Trimmed = Field(max_length=10)
    enabled: bool


class PreferencesIn(BaseModel):
    """Only what is given changes; ``quiet_hours: null`` removes them."""

    model_config = ConfigDict(extra="forbid")

    preferences: list[PreferenceIn] = Field(default_factory=list, max_length=500)
    quiet_hours: QuietHoursBody | None = None


class Provider(enum.StrEnum):
    WEBPUSH = "webpush"
    FCM = "fcm"


class SubscriptionKeys(BaseModel):
    p256dh: Trimmed = Field(min_length=16, max_length=200)
    auth: Trimmed = Field(min_length=8, max_length=100)


class WebPushSubscription(BaseModel):
    """``PushSubscription.toJSON()`` from the browser."""

    endpoint: Trimmed = Field(min_length=10, max_length=2000, pattern=r"^https?://")
    keys: SubscriptionKeys


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: Provider
    token: Trimmed | None = Field(default=None, min_length=10, max_length=4096)  # FCM
    subscription: WebPushSubscription | None = None  # Web Push
    label: Trimmed | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _one_address(self) -> DeviceIn:
        if self.provider == Provider.FCM and not self.token:
            raise ValueError("an FCM device needs its registration token")
        if self.provider == Provider.WEBPUSH and self.subscription is None:
            raise ValueError("a Web Push device needs its subscription")
        return self


class DeviceOut(BaseModel):
    id: uuid.UUID
    provider: str
    label: str | None
    created_at: datetime
    last_used_at: datetime | None


class WebPushKeyOut(BaseModel):
    public_key: str  # the applicationServerKey for PushManager.subscribe
