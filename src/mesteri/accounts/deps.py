"""Who is calling: FastAPI dependencies for the API (bearer tokens) and pages (cookie).

Authentication is one statement through the driver (``FastStatements``) that yields an
``Identity`` snapshot. Read-only endpoints answer from it (``ReadingUser``); endpoints
that change things load the ORM ``User`` in the request's transaction (``CurrentUser``),
so services can change it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mesteri.accounts import service
from mesteri.accounts.models import User
from mesteri.accounts.service import ClientInfo, Identity, Principal
from mesteri.kit.db import DbWrite, FastStatements, WriteSession
from mesteri.kit.errors import NotAuthenticatedError
from mesteri.kit.ratelimit import RateLimiter

SESSION_COOKIE = "mesteri_session"

_bearer = HTTPBearer(auto_error=False, description="Access token from /auth/login")


def client_info(request: Request) -> ClientInfo:
    # Behind a proxy, uvicorn's --proxy-headers sets request.client from X-Forwarded-For.
    return ClientInfo(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


def rate_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.limiter
    return limiter


def _reader(request: Request) -> FastStatements:
    reader: FastStatements = request.app.state.fast_statements
    return reader


async def _identity(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Identity:
    if credentials is None:
        raise NotAuthenticatedError(headers={"WWW-Authenticate": "Bearer"})
    identity = await service.access_identity(_reader(request), credentials.credentials)
    request.state.user = identity
    return identity


async def _principal(identity: Annotated[Identity, Depends(_identity)]) -> Principal:
    return identity.principal


async def _load_user(session: WriteSession, identity: Identity) -> User:
    user = await session.get(User, identity.id)
    if user is None:  # deleted between the two statements
        raise NotAuthenticatedError()
    return user


async def _user(
    request: Request, session: DbWrite, identity: Annotated[Identity, Depends(_identity)]
) -> User:
    user = await _load_user(session, identity)
    request.state.user = user
    return user


async def _auth(
    user: Annotated[User, Depends(_user)], identity: Annotated[Identity, Depends(_identity)]
) -> tuple[User, Principal]:
    return user, identity.principal


async def _staff(principal: Annotated[Principal, Depends(_principal)]) -> Principal:
    service.check_staff(principal)
    return principal


async def _web_auth(request: Request, session: DbWrite) -> tuple[User, Principal] | None:
    token = request.cookies.get(SESSION_COOKIE)
    identity = await service.access_web_identity(_reader(request), token) if token else None
    if identity is None:
        return None
    user = await _load_user(session, identity)
    request.state.user = user
    request.state.identity = identity  # for error pages after a rollback (kit.web)
    return user, identity.principal


async def _web_auth_required(
    found: Annotated[tuple[User, Principal] | None, Depends(_web_auth)],
) -> tuple[User, Principal]:
    if found is None:
        raise NotAuthenticatedError()
    return found


# Read-only endpoints: answered from the authentication snapshot, no ORM, no transaction.
ReadingUser = Annotated[Identity, Depends(_identity)]
CurrentPrincipal = Annotated[Principal, Depends(_principal)]
# Endpoints that change the user: the ORM object in the request's transaction.
CurrentUser = Annotated[User, Depends(_user)]
CurrentAuth = Annotated[tuple[User, Principal], Depends(_auth)]
StaffPrincipal = Annotated[Principal, Depends(_staff)]
Client = Annotated[ClientInfo, Depends(client_info)]
Limiter = Annotated[RateLimiter, Depends(rate_limiter)]
WebAuth = Annotated[tuple[User, Principal] | None, Depends(_web_auth)]
WebAuthRequired = Annotated[tuple[User, Principal], Depends(_web_auth_required)]
