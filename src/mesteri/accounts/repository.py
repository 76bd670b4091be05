"""Queries of the accounts domain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, select, update

from mesteri.accounts.models import AuthSession, OtpChallenge, RefreshToken, User, UserState
from mesteri.kit.db import ReadSession, WriteSession


async def user_by_login(session: ReadSession, login: str) -> User | None:
    """``login`` is an already-normalised e-mail or E.164 phone number."""
    column = User.email if "@" in login else User.phone
    return await session.scalar(select(User).where(column == login))


async def _live_session_user(
    session: ReadSession, now: datetime, *conditions: ColumnElement[bool]
) -> tuple[User, AuthSession] | None:
    """A signed-in session that is neither revoked nor expired, with its active user."""
    row = (
        await session.execute(
            select(User, AuthSession)
            .join(AuthSession, AuthSession.user_id == User.id)
            .where(
                *conditions,
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > now,
                User.state == UserState.ACTIVE,
            )
        )
    ).first()
    return (row[0], row[1]) if row else None


async def user_for_access(
    session: ReadSession, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime
) -> tuple[User, AuthSession] | None:
    """The hot path of every authenticated API call: one indexed join, one round trip."""
    return await _live_session_user(session, now, AuthSession.id == session_id, User.id == user_id)


async def user_for_web_token(
    session: ReadSession, token_hash: str, now: datetime
) -> tuple[User, AuthSession] | None:
    return await _live_session_user(session, now, AuthSession.web_token_hash == token_hash)


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
    result = await session.execute(query.values(revoked_at=now, revoked_reason=reason))
    return int(result.rowcount)  # type: ignore[attr-defined]


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
