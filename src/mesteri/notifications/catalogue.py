"""The event catalogue (SPEC M10): every kind of news the platform sends, who it is for,
and on which channels it goes out unless the person chose otherwise.

The in-app list is the record of everything: it cannot be switched off, except for new
messages, which the inbox already counts. Quiet hours hold back the channels that
interrupt (SMS, WhatsApp, pushes); e-mail and the in-app list are never held.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mesteri.kit.i18n import lazy


class Channel(enum.StrEnum):
    IN_APP = "in_app"
    EMAIL = "email"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    PUSH = "push"  # Web Push to the installed app, FCM to native apps


INTERRUPTING = frozenset({Channel.SMS, Channel.WHATSAPP, Channel.PUSH})
ALL_CHANNELS = frozenset(Channel)

CHANNEL_LABELS = {
    Channel.IN_APP: lazy("In the app"),
    Channel.EMAIL: lazy("E-mail"),
    Channel.SMS: lazy("SMS"),
    Channel.WHATSAPP: lazy("WhatsApp"),
    Channel.PUSH: lazy("Push notifications"),
}

GROUP_LABELS = {
    "messages": lazy("Messages"),
    "jobs": lazy("Jobs and proposals"),
    "contracts": lazy("Contracts"),
    "money": lazy("Milestones and money"),
    "reviews": lazy("Reviews"),
    "disputes": lazy("Disputes"),
    "account": lazy("Your account"),
}

_APP = frozenset({Channel.IN_APP})
_APP_MAIL = frozenset({Channel.IN_APP, Channel.EMAIL})
_APP_MAIL_PUSH = frozenset({Channel.IN_APP, Channel.EMAIL, Channel.PUSH})
_URGENT = frozenset({Channel.IN_APP, Channel.EMAIL, Channel.PUSH, Channel.SMS})


@dataclass(frozen=True)
class Kind:
    key: str
    group: str
    label: str
    defaults: frozenset[Channel]
    required: frozenset[Channel] = _APP  # cannot be switched off
    offered: frozenset[Channel] = ALL_CHANNELS


CATALOGUE: tuple[Kind, ...] = (
    Kind(
        "message.new",
        "messages",
        lazy("New messages while you are away"),
        frozenset({Channel.EMAIL, Channel.PUSH}),
        required=frozenset(),
        offered=ALL_CHANNELS - _APP,
    ),
    Kind(
        "lead.new",
        "jobs",
        lazy("A new job matches your crafts and area"),
        frozenset({Channel.IN_APP, Channel.PUSH}),
    ),
    Kind("job.invited", "jobs", lazy("A client invites you to propose"), _APP_MAIL_PUSH),
    Kind("job.expired", "jobs", lazy("Your job expired without a hire"), _APP_MAIL),
    Kind("proposal.received", "jobs", lazy("A pro sent you a proposal"), _APP_MAIL_PUSH),
    Kind("proposal.revised", "jobs", lazy("A pro answered your counter-offer"), _APP_MAIL_PUSH),
    Kind("proposal.countered", "jobs", lazy("A client made a counter-offer"), _APP_MAIL_PUSH),
    Kind("proposal.accepted", "jobs", lazy("Your proposal was accepted"), _URGENT),
    Kind("proposal.declined", "jobs", lazy("Your proposal was declined"), _APP_MAIL),
    Kind("proposal.expired", "jobs", lazy("Your proposal expired"), _APP_MAIL),
    Kind(
        "contract.to_sign", "contracts", lazy("A contract waits for your signature"), _APP_MAIL_PUSH
    ),
    Kind(
        "contract.signed_by_other",
        "contracts",
        lazy("The other party signed; your signature is missing"),
        _APP_MAIL_PUSH,
    ),
    Kind("contract.signed", "contracts", lazy("A contract is signed by both"), _APP_MAIL),
    Kind(
        "contract.amendment",
        "contracts",
        lazy("An amendment waits for your signature"),
        _APP_MAIL_PUSH,
    ),
    Kind("contract.withdrawn", "contracts", lazy("A contract was withdrawn"), _APP_MAIL),
    Kind("milestone.funded", "money", lazy("A milestone is funded: you can start"), _APP_MAIL_PUSH),
    Kind("milestone.submitted", "money", lazy("A delivery waits for your review"), _APP_MAIL_PUSH),
    Kind(
        "milestone.changes_requested", "money", lazy("The client asked for changes"), _APP_MAIL_PUSH
    ),
    Kind("milestone.review_reminder", "money", lazy("Auto-acceptance is coming"), _URGENT),
    Kind("payment.received", "money", lazy("You were paid for a milestone"), _URGENT),
    Kind("payout.sent", "money", lazy("A payout to your bank was sent"), _APP_MAIL),
    Kind(
        "payout.failed",
        "money",
        lazy("A payout failed"),
        _URGENT,
        required=_APP_MAIL,
    ),
    Kind("review.published", "reviews", lazy("A review of you was published"), _APP_MAIL_PUSH),
    Kind("review.reminder", "reviews", lazy("Reminders to write your review"), _APP_MAIL),
    Kind("review.response", "reviews", lazy("The pro answered your review"), _APP_MAIL),
    Kind("review.hidden", "reviews", lazy("A review was hidden by moderation"), _APP_MAIL),
    Kind("dispute.update", "disputes", lazy("News in your dispute"), _URGENT, required=_APP_MAIL),
    Kind("verification.decided", "account", lazy("Your verification was decided"), _APP_MAIL_PUSH),
    Kind(
        "verification.provider",
        "account",
        lazy("The payment provider's check of your account changed"),
        _APP_MAIL_PUSH,
    ),
)

KINDS: dict[str, Kind] = {kind.key: kind for kind in CATALOGUE}
