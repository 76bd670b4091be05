"""Events the reviews module publishes (kit.events); reputation (reviews/reputation.py)
and notifications subscribe."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class ReviewPublished:
    """A review became public (both sides wrote, or the window closed)."""

    review_id: uuid.UUID
    contract_id: uuid.UUID
    side: str  # client: about the pro (counts for reputation) | pro: about the client
    pro_id: uuid.UUID


@dataclass(frozen=True)
class ReviewHidden:
    """Moderation hid a published review: it no longer counts."""

    review_id: uuid.UUID
    side: str
    pro_id: uuid.UUID
