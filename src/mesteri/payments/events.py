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
