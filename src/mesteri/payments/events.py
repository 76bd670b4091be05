"""Events the payments module publishes (kit.events) for the modules that own a hold's
reference, such as milestones."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class HoldFunded:
    """The provider confirmed the payment: the hold's money is in escrow."""

    hold_id: uuid.UUID
    reference: str
    payment_id: uuid.UUID


@dataclass(frozen=True)
class PayoutAccountChanged:
    """A user's connected account at the provider was created or updated (onboarding,
    ``account.updated``). The pros module feeds it into the pro's verification.

    ``status`` is an ``OnboardingStatus`` value; ``observed_at`` orders snapshots (the
    provider event's ``created``, 0 for the account's creation), so a late, older one is
    ignored. ``checks_identity`` says whether this provider's onboarding is a KYC check.
    """

    user_id: uuid.UUID
    provider: str
    checks_identity: bool
    status: str
    requirements_due: tuple[str, ...]
    past_due: tuple[str, ...]
    disabled_reason: str | None
    observed_at: int
