"""Events the milestones module publishes (kit.events)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class MilestoneSettled:
    """A milestone reached an end state (released, refunded or cancelled)."""

    milestone_id: uuid.UUID
    contract_id: uuid.UUID
    state: str
