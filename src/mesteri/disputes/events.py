"""Events the disputes module publishes (kit.events)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class DisputeOpened:
    """A party disputed a milestone: its escrow is frozen until the dispute ends."""

    dispute_id: uuid.UUID
    milestone_id: uuid.UUID
    contract_id: uuid.UUID


@dataclass(frozen=True)
class DisputeEnded:
    """Settled by the parties or resolved by staff; the money moved exactly once."""

    dispute_id: uuid.UUID
    milestone_id: uuid.UUID
    contract_id: uuid.UUID
    stage: str  # settled | resolved
    outcome: str  # release | refund | split
    pro_amount: int
    client_amount: int
