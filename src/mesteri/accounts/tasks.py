"""Housekeeping of the accounts domain."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, or_

from mesteri.accounts.models import AuthSession, OtpChallenge, RefreshToken
from mesteri.kit import clock, jobs

# Spent codes and tokens are kept a little while for support and abuse investigations.
RETENTION = timedelta(days=7)


@jobs.registry.periodic(cron="17 3 * * *")
@jobs.task("accounts.purge_expired")
async def purge_expired(timestamp: int) -> None:
    """Delete codes, refresh tokens and sessions that ended more than RETENTION ago."""
    cutoff = clock.now() - RETENTION
    async with jobs.job_session() as session:
        await session.execute(delete(OtpChallenge).where(OtpChallenge.expires_at < cutoff))
        await session.execute(delete(RefreshToken).where(RefreshToken.expires_at < cutoff))
        ended = or_(AuthSession.expires_at < cutoff, AuthSession.revoked_at < cutoff)
        dead = AuthSession.__table__.select().where(ended).with_only_columns(AuthSession.id)
        await session.execute(delete(RefreshToken).where(RefreshToken.session_id.in_(dead)))
        await session.execute(delete(AuthSession).where(ended))
