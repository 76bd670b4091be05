"""Notifications: what was announced to whom (the in-app list), each delivery of it over a
channel (the delivery log, also the dev outbox), people's preferences and quiet hours,
their devices for push, and the platform's Web Push (VAPID) key pair."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime, time
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from mesteri.kit.db import Base
from mesteri.kit.ids import new_id


class DeliveryState(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class OutboundMessage(Base):
    """One delivery over one channel: e-mail, SMS, WhatsApp or a push to one device."""

    __tablename__ = "outbound_messages"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    notification_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    channel: Mapped[str] = mapped_column(String(10))
    to: Mapped[str] = mapped_column(String(254), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str | None] = mapped_column(Text)
    # Push: the JSON payload and the device it goes to.
    data: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    device_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(60))
    state: Mapped[str] = mapped_column(String(10), default=DeliveryState.QUEUED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(index=True)
    # Later than ``created_at`` when quiet hours held it back.
    scheduled_for: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]


class Notification(Base):
    """An event of the catalogue announced to one user, once (``dedupe_key``).

    Title and body are the English messages with their parameters, translated when shown,
    so the list follows the reader's current language."""

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("user_id", "dedupe_key"),
        Index("ix_notifications_list", "user_id", "created_at", "id"),
        Index(
            "ix_notifications_unread",
            "user_id",
            postgresql_where=text("read_at IS NULL AND in_app"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(60))
    title: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    link: Mapped[str | None] = mapped_column(String(400))  # a path of the site
    dedupe_key: Mapped[str] = mapped_column(String(200))
    in_app: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]
    read_at: Mapped[datetime | None]


class Preference(Base):
    """A user's choice for one event kind and channel, where it differs from the default."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(60), primary_key=True)
    channel: Mapped[str] = mapped_column(String(10), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime]


class QuietHours(Base):
    """When SMS, WhatsApp and pushes wait (they go out when the quiet hours end)."""

    __tablename__ = "notification_quiet_hours"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    starts: Mapped[time] = mapped_column(Time)
    ends: Mapped[time] = mapped_column(Time)
    time_zone: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime]


class DeviceProvider(enum.StrEnum):
    WEBPUSH = "webpush"  # a browser's Push API subscription (the PWA)
    FCM = "fcm"  # a native app's Firebase Cloud Messaging token


class Device(Base):
    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("provider", "token"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(String(10))
    # Web Push: the subscription's endpoint URL; FCM: the registration token.
    token: Mapped[str] = mapped_column(Text)
    p256dh: Mapped[str | None] = mapped_column(String(200))
    auth: Mapped[str | None] = mapped_column(String(100))
    label: Mapped[str | None] = mapped_column(String(200))  # "Chrome on Android"
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    # Set when the push service says the subscription is gone; never pushed to again.
    disabled_at: Mapped[datetime | None]


class VapidKeyPair(Base):
    """The platform's Web Push identity, made on first run and shared by every process."""

    __tablename__ = "vapid_keys"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    private_pem: Mapped[str] = mapped_column(Text)  # encrypted (kit.crypto)
    public_key: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime]
