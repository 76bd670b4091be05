"""What pros are told about their payouts (entries of the notification catalogue): sent
to the bank, or failed — then the money is back in their available balance."""

from __future__ import annotations

from typing import Any

from mesteri.config import get_settings
from mesteri.kit import events
from mesteri.kit.i18n import lazy
from mesteri.kit.money import Money
from mesteri.kit.statemachine import Transitioned
from mesteri.notifications import service as notifications
from mesteri.payments.models import Payout


@events.subscribe(Transitioned)
async def _on_transition(session: Any, event: Transitioned) -> None:
    if event.entity != "payout" or event.transition not in ("pay", "fail"):
        return
    payout = await session.get(Payout, event.entity_id)
    if payout is None:
        return
    amount = Money(payout.amount, payout.currency).format(
        get_settings().market_profile.default_language
    )
    if event.transition == "pay":
        subject = lazy("Your payout of {amount} was sent")
        body = lazy("We sent {amount} to your bank account. Banks take one to three working days.")
        kind = "payout.sent"
    else:
        subject = lazy("Your payout of {amount} failed")
        body = lazy(
            "Your bank did not accept the payout of {amount}. The money is back in your "
            "available balance: check your payout details and withdraw it again."
        )
        kind = "payout.failed"
    await notifications.do_notify(
        session,
        payout.user_id,
        kind,
        subject=subject,
        body=body,
        link="/wallet",
        dedupe_key=f"{kind}:{payout.id}",
        amount=amount,
    )
