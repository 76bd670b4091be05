"""Events the contracts module publishes (kit.events)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class ContractEnded:
    """A contract ended: ``outcome`` is ``completed`` (work paid), ``cancelled`` (every
    milestone cancelled or refunded after signing) or ``withdrawn`` (before both signed,
    so the job can hire again)."""

    contract_id: uuid.UUID
    job_id: uuid.UUID
    outcome: str
