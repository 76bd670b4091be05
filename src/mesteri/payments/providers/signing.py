"""Stripe's webhook signature scheme, used by the sandbox so both paths verify alike.

``Stripe-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "t.payload">``; an event is
accepted when one ``v1`` matches and ``t`` is within the tolerance of now.
"""

from __future__ import annotations

import hashlib
import hmac

from mesteri.payments.providers.base import InvalidSignatureError

TOLERANCE_SECONDS = 300


def signature_header(payload: bytes, secret: str, timestamp: int) -> str:
    return f"t={timestamp},v1={_digest(payload, secret, timestamp)}"


def verify(payload: bytes, header: str | None, secret: str, *, now: int) -> None:
    if not header:
        raise InvalidSignatureError("missing Stripe-Signature header")
    timestamp: int | None = None
    candidates: list[str] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isdigit():
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise InvalidSignatureError("malformed Stripe-Signature header")
    expected = _digest(payload, secret, timestamp)
    if not any(hmac.compare_digest(expected, c) for c in candidates):
        raise InvalidSignatureError("signature does not match")
    if abs(now - timestamp) > TOLERANCE_SECONDS:
        raise InvalidSignatureError("timestamp outside the tolerance")


def _digest(payload: bytes, secret: str, timestamp: int) -> str:
    signed = str(timestamp).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
