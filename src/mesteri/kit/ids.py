"""Time-ordered identifiers (UUIDv7): sortable by creation, friendly to B-tree indexes."""

from __future__ import annotations

import uuid

from uuid_utils.compat import uuid7


def new_id() -> uuid.UUID:
    return uuid7()
