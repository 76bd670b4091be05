"""Disputes API."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["disputes"])
admin = APIRouter(prefix="/admin", tags=["disputes"])
