"""What the pros module hears from others: the payment provider's onboarding verdict
(payments publishes it on account creation and on every fresh ``account.updated``) feeds
the pro's verification. Runs inside the webhook's transaction."""

from __future__ import annotations

from typing import Any

from mesteri.kit import events
from mesteri.payments.events import PayoutAccountChanged
from mesteri.pros import service


@events.subscribe(PayoutAccountChanged)
async def _on_payout_account_changed(session: Any, event: PayoutAccountChanged) -> None:
    await service.do_record_provider_check(
        session,
        service.ProviderReport(
            user_id=event.user_id,
            provider=event.provider,
            checks_identity=event.checks_identity,
            status=event.status,
            requirements_due=event.requirements_due,
            past_due=event.past_due,
            disabled_reason=event.disabled_reason,
            observed_at=event.observed_at,
        ),
    )
