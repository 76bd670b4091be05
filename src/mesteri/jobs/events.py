"""Events the jobs module publishes (kit.events)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class JobClosed:
    """A job stopped taking proposals without hiring: the client cancelled it
    (``reason="cancelled"``) or it expired on the lead board (``reason="expired"``).
    The proposals module declines the job's live proposals."""

    job_id: uuid.UUID
    reason: str = "cancelled"


@dataclass(frozen=True)
class ProInvited:
    """The client invited a pro to propose on the job (once per pro)."""

    job_id: uuid.UUID
    client_id: uuid.UUID
    pro_id: uuid.UUID
    pro_user_id: uuid.UUID
    message: str
