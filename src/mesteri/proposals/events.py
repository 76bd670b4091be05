"""Events the proposals module publishes (kit.events)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ProposalSent:
    """A pro answered a lead: ``lead_at`` is when they could first see it (the job's
    publication, or their invitation when that came later)."""

    proposal_id: uuid.UUID
    pro_id: uuid.UUID
    lead_at: datetime
    sent_at: datetime


@dataclass(frozen=True)
class ProposalEdited:
    """The pro changed their terms before the client answered (a new revision)."""

    proposal_id: uuid.UUID
