"""Milestone pages: the timeline on the contract page and its action buttons."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from mesteri.accounts.service import Principal
from mesteri.kit.db import ReadSession

router = APIRouter()


async def timeline(
    session: ReadSession, contract_id: uuid.UUID, principal: Principal
) -> list[dict[str, Any]]:
    """The contract's milestones with their history and the actions this user may take,
    for ``templates/milestones/_timeline.html``."""
    return []
