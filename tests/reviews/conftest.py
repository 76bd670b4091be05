"""The milestones' room (a client, a pro, two-factor staff, signed contracts and the
sandbox checkout) serves the reviews tests too."""

from __future__ import annotations

from tests.milestones.conftest import API, Room, room

__all__ = ["API", "Room", "room"]
