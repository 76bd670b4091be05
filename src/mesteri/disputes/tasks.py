"""Jobs of the disputes domain."""

from __future__ import annotations
