"""Queries of the accounts domain."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from mesteri.accounts.models import AuthSession, OtpChallenge, RefreshToken, User
from mesteri.kit import realtime
from mesteri.kit.db import FastStatements, ReadSession, WriteSession


async def user_by_login(session: ReadSession, login: str) -> User | None:
    """``login`` is an already-normalised e-mail or E.164 phone number."""
    column = User.email if "@" in login else User.phone
    return await session.scalar(select(User).where(column == login))


# Authentication runs on every API call, so it is one statement through the driver
# (``FastStatements``): a live session (not revoked, not expired) joined to its active user.
_IDENTITY = """
    SELECT u.id, u.email, u.phone, u.first_name, u.last_name, u.language, u.roles, u.state,
           u.email_verified_at, u.phone_verified_at, u.totp_enabled_at, u.created_at,
           s.id AS session_id, s.mfa
    FROM auth_sessions s JOIN users u ON u.id = s.user_id
    WHERE s.revoked_at IS NULL AND s.expires_at > $1 AND u.state = 'active'
"""
_IDENTITY_BY_SESSION = _IDENTITY + " AND s.id = $2 AND u.id = $3"
_IDENTITY_BY_WEB_TOKEN = _IDENTITY + " AND s.web_token_hash = $2"


async def identity_by_session(
    reader: FastStatements, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime
) -> Mapping[str, Any] | None:
    return await reader.fetch_one(_IDENTITY_BY_SESSION, now, session_id, user_id)


async def identity_by_web_token(
    reader: FastStatements, token_hash: str, now: datetime
) -> Mapping[str, Any] | None:
    return await reader.fetch_one(_IDENTITY_BY_WEB_TOKEN, now, token_hash)


async def lock_refresh_token(
    session: WriteSession, token_hash: str
) -> tuple[RefreshToken, AuthSession] | None:
    row = (
        await session.execute(
            select(RefreshToken, AuthSession)
            .join(AuthSession, AuthSession.id == RefreshToken.session_id)
            .where(RefreshToken.token_hash == token_hash)
            .with_for_update()
        )
    ).first()
    return (row[0], row[1]) if row else None


async def latest_challenge(
    session: WriteSession, purpose: str, destination: str
) -> OtpChallenge | None:
    return await session.scalar(
        select(OtpChallenge)
        .where(OtpChallenge.purpose == purpose, OtpChallenge.destination == destination)
        .order_by(OtpChallenge.created_at.desc(), OtpChallenge.id.desc())
        .limit(1)
        .with_for_update()
    )


async def revoke_sessions(
    session: WriteSession,
    user_id: uuid.UUID,
    now: datetime,
    reason: str,
    *,
    except_id: uuid.UUID | None = None,
) -> int:
    query = update(AuthSession).where(
        AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
    )
    if except_id is not None:
        query = query.where(AuthSession.id != except_id)
    revoked = (
        await session.scalars(
            query.values(revoked_at=now, revoked_reason=reason).returning(AuthSession.id)
        )
    ).all()
    realtime.close_sessions(session, revoked)  # their open WebSockets too, once committed
    return len(revoked)


async def active_sessions(
    session: ReadSession, user_id: uuid.UUID, now: datetime
) -> Sequence[AuthSession]:
    return (
        await session.scalars(
            select(AuthSession)
            .where(
                AuthSession.user_id == user_id,
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > now,
            )
            .order_by(AuthSession.last_used_at.desc())
        )
    ).all()


async def lock_user(session: WriteSession, user_id: uuid.UUID) -> User | None:
    return await session.scalar(select(User).where(User.id == user_id).with_for_update())
