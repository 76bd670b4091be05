"""The WebSocket ``/ws``: live events for the signed-in user (protocol in docs/api.md).

The first frame authenticates — ``{"type": "auth", "token": "<access token>"}`` for apps,
``{"type": "hello"}`` for pages signed in with the session cookie (accepted only from
this site's own origin) — and may say the last event id the client saw (``"resume"``):
it then gets exactly what it missed, then everything live. Clients send ``ping`` (answered
with ``pong``) at least every ``ws_idle_seconds``, ``typing`` while someone writes, and
``send`` to post a message (the same rules as ``POST /conversations/{id}/messages``,
answered with ``sent`` or an ``error`` carrying the client's ``ref``): the socket is the
main way in, the REST API the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from mesteri.accounts import service as accounts
from mesteri.accounts.deps import SESSION_COOKIE
from mesteri.accounts.service import Identity, Principal
from mesteri.config import get_settings
from mesteri.kit import i18n, realtime
from mesteri.kit.db import FastStatements, ReadSession
from mesteri.kit.errors import DomainError
from mesteri.kit.ratelimit import RateLimiter
from mesteri.kit.realtime import CLOSE_AUTH, Connection, Hub
from mesteri.messaging import service
from mesteri.messaging.api import SEND_RATE, post_now
from mesteri.messaging.schemas import MessageIn

router = APIRouter()

AUTH_SECONDS = 10.0
HEARTBEAT_SECONDS = 25
TYPING_EVERY_SECONDS = 2.0  # "still typing" at most this often per conversation
MAX_FRAME = 20_000  # characters: a message of 4,000, JSON-escaped


def _same_site(ws: WebSocket) -> bool:
    """A cookie rides along with any page's WebSocket, so only this site's pages may use
    it (cross-site WebSocket hijacking); tokens in the first frame need no such check."""
    origin = ws.headers.get("origin")
    if not origin:
        return False
    host = urlsplit(origin).netloc
    allowed = {ws.headers.get("host", ""), urlsplit(get_settings().public_url).netloc}
    return host in allowed


async def _authenticate(ws: WebSocket, hello: dict[str, Any]) -> Identity | None:
    reader: FastStatements = ws.app.state.fast_statements
    try:
        if hello.get("type") == "auth" and isinstance(hello.get("token"), str):
            return await accounts.access_identity(reader, hello["token"])
        cookie = ws.cookies.get(SESSION_COOKIE)
        if hello.get("type") == "hello" and cookie and _same_site(ws):
            return await accounts.access_web_identity(reader, cookie)
    except DomainError:
        return None
    return None


def _resume_point(hello: dict[str, Any]) -> int | None:
    value = hello.get("resume")
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


async def _read_frame(ws: WebSocket, within: float) -> dict[str, Any] | None:
    """The next JSON object from the client; None for anything else (the caller answers)."""
    # A timeout scope, not ``wait_for``: that runs the read in a task of its own, a turn of
    # the event loop and a task per frame (the real-time benchmark).
    async with asyncio.timeout(within):
        raw = await ws.receive_text()
    if len(raw) > MAX_FRAME:
        return None
    try:
        frame = json.loads(raw)
    except ValueError:
        return None
    return frame if isinstance(frame, dict) else None


@router.websocket("/ws")
async def websocket(ws: WebSocket) -> None:
    hub: Hub = ws.app.state.hub
    await ws.accept()
    try:
        hello = await _read_frame(ws, AUTH_SECONDS)
    except (TimeoutError, WebSocketDisconnect):
        hello = None
    identity = await _authenticate(ws, hello or {})
    if identity is None:
        with contextlib.suppress(Exception):
            await ws.close(CLOSE_AUTH, "sign in first")
        return
    assert hello is not None
    # Where the client starts in its stream is read before it is attached: whatever is
    # committed after that comes live or, if its notification was missed in between,
    # from the table — nothing is skipped.
    async with hub.connect() as conn:
        newest = await realtime.last_event_id(conn, identity.id)
    resume = _resume_point(hello)
    if resume is not None and resume > newest:
        resume = None  # a stream the server does not know: start afresh
    connection = Connection(
        hub,
        ws,
        user_id=identity.id,
        session_id=identity.session_id,
        last_seq=newest if resume is None else resume,
    )
    connection.send(
        "ready",
        {
            "user_id": str(identity.id),
            "heartbeat": HEARTBEAT_SECONDS,
            "resumed": resume is not None,
        },
    )
    if resume is None and "resume" in hello:
        connection.send("resync", None)
    hub.attach(connection)
    try:
        await _receive_loop(ws, connection, identity.principal)
    except (WebSocketDisconnect, TimeoutError, RuntimeError):
        pass  # the client left, went silent, or the socket closed under us
    finally:
        hub.detach(connection)
        await connection.wait_closed()


async def _receive_loop(ws: WebSocket, connection: Connection, principal: Principal) -> None:
    """One frame at a time: a client's messages are posted in the order it sent them."""
    idle = get_settings().ws_idle_seconds
    last_typing: dict[str, float] = {}
    while connection.closing is None:
        frame = await _read_frame(ws, idle)
        kind = frame.get("type") if frame else None
        if kind == "ping":
            connection.send("pong")
        elif kind == "typing" and frame is not None:
            await _typing(ws, connection, frame, last_typing)
        elif kind == "send" and frame is not None:
            await _send(ws, connection, principal, frame)
        else:
            connection.send("error", {"code": "bad_frame"})


async def _send(
    ws: WebSocket, connection: Connection, principal: Principal, frame: dict[str, Any]
) -> None:
    """Post a message as ``POST /conversations/{id}/messages`` would, in a transaction of
    its own; the answer (or the error) names the client's ``ref``."""
    ref = frame.get("ref") if isinstance(frame.get("ref"), str | int) else None
    try:
        conversation_id = uuid.UUID(str(frame.get("conversation_id")))
        body = MessageIn.model_validate(
            {k: frame[k] for k in ("body", "attachment_ids", "client_token") if k in frame}
        )
    except (ValueError, ValidationError):
        connection.send("error", {"ref": ref, "code": "bad_frame"})
        return
    limiter: RateLimiter = ws.app.state.limiter
    try:
        await limiter.hit(SEND_RATE, f"message:{principal.user_id}")
        shaped = await post_now(ws.app.state, conversation_id, principal, body)
    except DomainError as exc:
        text = i18n.gettext(exc.msgid, **exc.params)
        connection.send("error", {"ref": ref, "code": exc.code, "message": text})
        return
    connection.send("sent", {"ref": ref, "message": shaped.model_dump(mode="json")})


async def _typing(
    ws: WebSocket, connection: Connection, frame: dict[str, Any], last: dict[str, float]
) -> None:
    """Tell the other participant(s); "still typing" is sent at most every two seconds,
    "stopped" always."""
    try:
        conversation_id = uuid.UUID(str(frame.get("conversation_id")))
    except ValueError:
        connection.send("error", {"code": "bad_frame"})
        return
    typing = frame.get("typing", True) is not False
    key = str(conversation_id)
    now = time.monotonic()
    if typing and now - last.get(key, 0.0) < TYPING_EVERY_SECONDS:
        return
    last[key] = now if typing else 0.0
    factory = ws.app.state.read_sessions
    session: ReadSession
    async with factory() as session:
        audience = await service.typing_audience(session, conversation_id, connection.user_id)
    if audience:
        await realtime.broadcast(
            audience,
            "typing",
            {"conversation_id": key, "user_id": str(connection.user_id), "typing": typing},
        )
