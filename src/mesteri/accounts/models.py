"""Accounts: people, their sign-in sessions, refresh tokens and one-time codes."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ARRAY, Boolean, ForeignKey, Index, Integer, String, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column

from mesteri.kit.db import Base
from mesteri.kit.ids import new_id


class Role(enum.StrEnum):
    CLIENT = "client"
    PRO = "pro"
    ADMIN = "admin"
    SUPPORT = "support"
    FINANCE = "finance"


STAFF_ROLES = frozenset({Role.ADMIN, Role.SUPPORT, Role.FINANCE})
SELF_SERVE_ROLES = frozenset({Role.CLIENT, Role.PRO})


class UserState(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETED = "deleted"


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        Index("uq_users_email", "email", unique=True, postgresql_where=text("email IS NOT NULL")),
        Index("uq_users_phone", "phone", unique=True, postgresql_where=text("phone IS NOT NULL")),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(20))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    first_name: Mapped[str] = mapped_column(String(80))
    last_name: Mapped[str] = mapped_column(String(80))
    language: Mapped[str] = mapped_column(String(5))
    roles: Mapped[list[str]] = mapped_column(ARRAY(String(20)))
    state: Mapped[str] = mapped_column(String(20), default=UserState.ACTIVE)
    email_verified_at: Mapped[datetime | None]
    phone_verified_at: Mapped[datetime | None]
    totp_secret: Mapped[str | None] = mapped_column(String(200))  # encrypted (kit.crypto)
    totp_enabled_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]

    @property
    def is_staff(self) -> bool:
        return bool(STAFF_ROLES & set(self.roles))


class SessionKind(enum.StrEnum):
    API = "api"
    WEB = "web"


class AuthSession(Base):
    """A signed-in device. Its refresh tokens form one family: reuse of a spent one revokes it."""

    __tablename__ = "auth_sessions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    web_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    mfa: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(40))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(400))


class RefreshToken(Base):
    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    session_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("auth_sessions.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class OtpPurpose(enum.StrEnum):
    VERIFY_EMAIL = "verify_email"
    VERIFY_PHONE = "verify_phone"
    LOGIN = "login"
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose, not a secret


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"


class OtpState(enum.StrEnum):
    PENDING = "pending"
    USED = "used"
    EXHAUSTED = "exhausted"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"


class OtpChallenge(Base):
    __tablename__ = "otp_challenges"
    __table_args__ = (Index("ix_otp_lookup", "purpose", "destination", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(10))
    destination: Mapped[str] = mapped_column(String(254))
    code_hash: Mapped[str] = mapped_column(String(64))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(20), default=OtpState.PENDING)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    resend_after: Mapped[datetime]
