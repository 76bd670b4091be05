"""The texts of system messages ("“Tiling” is funded: 1.200,00 lei is held in escrow").

A system message stores its event and parameters, not words: each reader sees it in
their own language, also after switching languages. Money parameters are stored as
``{"amount": …, "currency": …}`` and formatted for the reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mesteri.kit.i18n import lazy, translations
from mesteri.kit.money import Money

SYSTEM_TEXTS: dict[str, str] = {
    "job.invited": lazy("{client} invited you to send a proposal for this job."),
    "job.closed": lazy("This job is closed: it was cancelled or it expired."),
    "job.reopened": lazy("The job is open for proposals again."),
    "job.filled": lazy("The client hired another pro for this job."),
    "proposal.shortlisted": lazy("The client shortlisted this proposal."),
    "proposal.declined": lazy("The client declined this proposal."),
    "proposal.declined_reason": lazy("The client declined this proposal: {reason}"),
    "proposal.withdrawn": lazy("The pro withdrew the proposal."),
    "proposal.expired": lazy("The proposal expired without an answer."),
    "proposal.accepted": lazy("The proposal was accepted. The contract is ready to sign."),
    "proposal.counter_accepted": lazy(
        "The pro accepted the counter-offer. The contract is ready to sign."
    ),
    "contract.created": lazy("The contract was created: it starts when both of you sign it."),
    "contract.signed_by": lazy("{name} signed version {version} of the contract."),
    "contract.active": lazy(
        "Both of you signed the contract. From now on nothing you write here is hidden."
    ),
    "contract.amended": lazy("Both of you signed version {version} of the contract."),
    "contract.completed": lazy("Every milestone is paid: the contract is completed."),
    "contract.cancelled": lazy("The contract was cancelled."),
    "contract.withdrawn": lazy("The contract was withdrawn before both signed it."),
    "conversation.moved": lazy(
        "You are hired: the conversation continues in the job room of the contract."
    ),
    "milestone.funded": lazy("“{title}” is funded: {amount} is held in escrow."),
    "milestone.submitted": lazy("“{title}” was delivered and waits for the client's review."),
    "milestone.changes_requested": lazy("The client asked for changes on “{title}”."),
    "milestone.accepted": lazy("The client accepted “{title}”."),
    "milestone.auto_accepted": lazy(
        "“{title}” was accepted automatically: the review period ended."
    ),
    "milestone.released": lazy("{amount} for “{title}” was paid to the pro."),
    "milestone.disputed": lazy(
        "“{title}” is disputed: its money stays in escrow until the dispute ends."
    ),
    "milestone.resolved_release": lazy("The dispute on “{title}” ended: the pro is paid."),
    "milestone.resolved_refund": lazy("The dispute on “{title}” ended: the client is refunded."),
    "milestone.resolved_split": lazy(
        "The dispute on “{title}” ended with a split: {pro_amount} to the pro, "
        "{client_amount} back to the client."
    ),
    "milestone.cancelled": lazy("“{title}” was cancelled."),
    "milestone.refunded": lazy("“{title}” was cancelled and the client refunded."),
    "milestone.expired": lazy(
        "“{title}” was not delivered long after its due date: the client is refunded."
    ),
}


def money(amount: int, currency: str) -> dict[str, Any]:
    """A money parameter of a system message."""
    return {"amount": amount, "currency": currency}


def _shown(value: Any, language: str) -> str:
    if isinstance(value, Mapping) and {"amount", "currency"} <= value.keys():
        return Money(int(value["amount"]), str(value["currency"])).format(language)
    return str(value)


def render_system(data: Mapping[str, Any], language: str) -> str:
    """The text of a system message in ``language`` ("" for anything else)."""
    text = SYSTEM_TEXTS.get(str(data.get("event", "")))
    if text is None:
        return ""
    params = {k: _shown(v, language) for k, v in (data.get("params") or {}).items()}
    translated = translations(language).gettext(text)
    try:
        return translated.format(**params)
    except (KeyError, IndexError, ValueError):  # a translation that lost a placeholder
        return text.format(**params)
