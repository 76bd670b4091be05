"""Request ids, access logs and Prometheus metrics, as one pure ASGI middleware.

Pure ASGI (not ``BaseHTTPMiddleware``) keeps the per-request cost to a few microseconds.
"""

from __future__ import annotations

import os
import re
import time

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = structlog.get_logger("mesteri.access")

REQUESTS = Counter("mesteri_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram(
    "mesteri_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._-]{1,64}$")


def uuid4_hex() -> str:
    return os.urandom(16).hex()


_QUIET = frozenset({"/health", "/metrics"})


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = next((v for k, v in scope["headers"] if k == b"x-request-id"), b"")
        request_id = incoming.decode("latin-1") if _REQUEST_ID.match(incoming) else uuid4_hex()
        scope.setdefault("state", {})["request_id"] = request_id
        # Each request runs in its own task (its own context), so binding never leaks.
        structlog.contextvars.bind_contextvars(request_id=request_id)
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - start
            route_path = route_template(scope)
            method = scope["method"]
            REQUESTS.labels(method, route_path, str(status)).inc()
            LATENCY.labels(method, route_path).observe(elapsed)
            if scope["path"] not in _QUIET:
                log.info(
                    "request",
                    method=method,
                    path=scope["path"],
                    status=status,
                    ms=round(elapsed * 1000, 2),
                )


def route_template(scope: Scope) -> str:
    """The matched route's path template (low-cardinality label), e.g. ``/api/v1/me``.

    FastAPI keeps included routers nested and records the effective (prefixed) route
    in its own scope entry; plain Starlette routes are on ``scope["route"]``.
    """
    effective = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(effective, "starlette_route", None) or effective
    path = getattr(template, "path_format", None) or getattr(scope.get("route"), "path", None)
    return str(path) if path else "unmatched"


async def metrics(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
