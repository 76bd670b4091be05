"""Fixtures of the contracts tests: a recorder of ``ContractEnded`` events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from mesteri.contracts.events import ContractEnded
from mesteri.kit import events


@pytest.fixture
def ended() -> Iterator[list[ContractEnded]]:
    """Every ``ContractEnded`` published during the test, in order."""
    seen: list[ContractEnded] = []

    async def record(_session: Any, event: ContractEnded) -> None:
        seen.append(event)

    events.subscribe(ContractEnded)(record)
    try:
        yield seen
    finally:
        events._HANDLERS[ContractEnded].remove(record)
