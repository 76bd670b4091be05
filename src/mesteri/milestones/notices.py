"""What the parties are told as a milestone moves (entries of the notification catalogue):
funded → the pro may start; delivered → the client reviews; changes asked → the pro;
released → the pro was paid. The review reminders before auto-acceptance are timers of
their own (``service.do_remind_review``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mesteri.config import MARKETS, get_settings
from mesteri.kit import events
from mesteri.kit.i18n import lazy
from mesteri.kit.money import Money
from mesteri.kit.statemachine import Transitioned
from mesteri.milestones.models import Milestone
from mesteri.notifications import service as notifications


@dataclass(frozen=True)
class Notice:
    kind: str
    to: str  # client | pro
    subject: str
    body: str


NOTICES = {
    "confirm_funding": Notice(
        "milestone.funded",
        "pro",
        lazy("“{title}” is funded: you can start"),
        lazy(
            "The client paid {amount} for “{title}”. It is held in escrow until they "
            "accept the work."
        ),
    ),
    "submit": Notice(
        "milestone.submitted",
        "client",
        lazy("“{title}” was delivered"),
        lazy("The pro delivered “{title}”. Check the work, then accept it or ask for changes."),
    ),
    "request_changes": Notice(
        "milestone.changes_requested",
        "pro",
        lazy("Changes requested on “{title}”"),
        lazy("The client asked for changes on “{title}”: {reason}"),
    ),
    "release": Notice(
        "payment.received",
        "pro",
        lazy("You were paid for “{title}”"),
        lazy(
            "{amount} for “{title}” was released to your wallet, less the platform fee. "
            "You can withdraw it after {days} days."
        ),
    ),
}


@events.subscribe(Transitioned)
async def _on_transition(session: Any, event: Transitioned) -> None:
    notice = NOTICES.get(event.transition) if event.entity == "milestone" else None
    if notice is None:
        return
    milestone = await session.get(Milestone, event.entity_id)
    if milestone is None:
        return
    settings = get_settings()
    market = settings.market_profile
    await notifications.do_notify(
        session,
        milestone.pro_user_id if notice.to == "pro" else milestone.client_id,
        notice.kind,
        subject=notice.subject,
        body=notice.body,
        link=f"/contracts/{milestone.contract_id}#milestone-{milestone.id}",
        dedupe_key=f"{notice.kind}:{milestone.id}:{milestone.submissions}",
        title=milestone.title,
        amount=Money(milestone.amount, milestone.currency).format(
            MARKETS[market.code].default_language
        ),
        reason=str(event.data.get("reason", "")),
        days=settings.hold_days if settings.hold_days is not None else market.hold_days,
    )
