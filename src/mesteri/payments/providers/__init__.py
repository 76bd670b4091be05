"""The installed payment provider (one per process), chosen by ``MESTERI_PAYMENTS_PROVIDER``.

Tests install the provider they want; nothing patches module paths.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

import httpx
from sqlalchemy.ext.asyncio import async_sessionmaker

from mesteri.config import Settings
from mesteri.kit.db import WriteSession
from mesteri.payments.providers.base import PaymentProvider

_provider: PaymentProvider | None = None

WEBHOOK_PATH = "/api/v1/payments/webhooks/{provider}"


def install(provider: PaymentProvider) -> PaymentProvider:
    global _provider
    _provider = provider
    return provider


def current() -> PaymentProvider:
    if _provider is None:
        raise RuntimeError("no payment provider installed (app lifespan or worker start-up)")
    return _provider


def sandbox_secret(settings: Settings) -> str:
    """The sandbox's webhook secret: configured, or derived from the secret key."""
    if settings.sandbox_webhook_secret:
        return settings.sandbox_webhook_secret
    return (
        "whsec_" + hashlib.sha256(b"sandbox-webhooks:" + settings.secret_key.encode()).hexdigest()
    )


Deliver = Callable[[bytes, dict[str, str]], Awaitable[int]]


def http_deliver(url: str, transport: httpx.AsyncBaseTransport | None = None) -> Deliver:
    """Deliver sandbox events with an HTTP POST (to this app, like a real provider would)."""

    async def deliver(body: bytes, headers: dict[str, str]) -> int:
        async with httpx.AsyncClient(transport=transport, timeout=15) as client:
            response = await client.post(url, content=body, headers=headers)
        return response.status_code

    return deliver


def configure(
    settings: Settings,
    sessions: async_sessionmaker[WriteSession],
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> PaymentProvider:
    """Build and install the provider the settings ask for."""
    if settings.payments_provider == "stripe":
        from mesteri.payments.providers.stripe import StripeProvider

        if not settings.stripe_secret_key or not settings.stripe_webhook_secret:
            raise RuntimeError(
                "the Stripe provider needs MESTERI_STRIPE_SECRET_KEY and _WEBHOOK_SECRET"
            )
        return install(
            StripeProvider(
                settings.stripe_secret_key,
                settings.stripe_webhook_secret,
                api_base=settings.stripe_api_base,
            )
        )
    from mesteri.payments.sandbox.provider import SandboxProvider

    url = settings.sandbox_webhook_url or settings.public_url.rstrip("/") + WEBHOOK_PATH.format(
        provider="sandbox"
    )
    return install(
        SandboxProvider(
            sessions,
            secret=sandbox_secret(settings),
            public_url=settings.public_url,
            deliver=http_deliver(url, transport),
        )
    )
