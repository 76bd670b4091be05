"""Webhook delivery of the sandbox provider: retried with back-off until acknowledged."""

from __future__ import annotations

from mesteri.kit import jobs
from mesteri.payments import providers
from mesteri.payments.sandbox.provider import SandboxProvider


@jobs.task("payments.sandbox.deliver_event", retry=10)
async def deliver_event(event_id: str) -> None:
    provider = providers.current()
    if not isinstance(provider, SandboxProvider):
        return  # the provider changed since; nothing to send
    async with jobs.job_session() as session:
        await provider.deliver_event(event_id, session)
