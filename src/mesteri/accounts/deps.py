"""Who is calling: FastAPI dependencies for the API (bearer tokens) and pages (cookie).

Authentication shares the request's one session (and so one connection and one
transaction) with the handler, so the user it loads can be changed by services.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from mesteri.accounts import service
from mesteri.accounts.models import User
from mesteri.accounts.service import ClientInfo, Principal
from mesteri.kit.db import DbWrite
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


async def _api_auth(
    request: Request,
    session: DbWrite,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> tuple[User, Principal]:
    if credentials is None:
        raise NotAuthenticatedError(headers={"WWW-Authenticate": "Bearer"})
    user, principal = await service.access_principal(session, credentials.credentials)
    request.state.user = user
    return user, principal


async def _api_principal(auth: Annotated[tuple[User, Principal], Depends(_api_auth)]) -> Principal:
    return auth[1]


async def _api_user(auth: Annotated[tuple[User, Principal], Depends(_api_auth)]) -> User:
    return auth[0]


async def _api_staff(principal: Annotated[Principal, Depends(_api_principal)]) -> Principal:
    service.check_staff(principal)
    return principal


async def _web_auth(request: Request, session: DbWrite) -> tuple[User, Principal] | None:
    token = request.cookies.get(SESSION_COOKIE)
    found = await service.access_web_principal(session, token) if token else None
    if found is not None:
        request.state.user = found[0]
    return found


async def _web_auth_required(
    found: Annotated[tuple[User, Principal] | None, Depends(_web_auth)],
) -> tuple[User, Principal]:
    if found is None:
        raise NotAuthenticatedError()
    return found


CurrentPrincipal = Annotated[Principal, Depends(_api_principal)]
CurrentUser = Annotated[User, Depends(_api_user)]
CurrentAuth = Annotated[tuple[User, Principal], Depends(_api_auth)]
StaffPrincipal = Annotated[Principal, Depends(_api_staff)]
Client = Annotated[ClientInfo, Depends(client_info)]
Limiter = Annotated[RateLimiter, Depends(rate_limiter)]
WebAuth = Annotated[tuple[User, Principal] | None, Depends(_web_auth)]
WebAuthRequired = Annotated[tuple[User, Principal], Depends(_web_auth_required)]
