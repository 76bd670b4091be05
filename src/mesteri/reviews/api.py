"""Reviews API."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["reviews"])
admin = APIRouter(prefix="/admin", tags=["reviews"])
