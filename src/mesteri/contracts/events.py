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


@dataclass(frozen=True)
class ContractCreated:
    """A proposal was accepted: its contract waits for both signatures."""

    contract_id: uuid.UUID
    job_id: uuid.UUID
    client_id: uuid.UUID
    pro_user_id: uuid.UUID
    pro_id: uuid.UUID


@dataclass(frozen=True)
class ContractSigned:
    """One party signed a version of the contract (``in_force``: both have now)."""

    contract_id: uuid.UUID
    user_id: uuid.UUID
    party: str
    version: int
    in_force: bool
