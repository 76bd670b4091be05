"""Shapes of the media API."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from mesteri.kit.text import Clean


class UploadIn(BaseModel):
    purpose: Clean = Field(max_length=40, examples=["portfolio"])
    content_type: Clean = Field(max_length=100, examples=["image/jpeg"])
    size: int = Field(ge=1, le=1024**3, description="bytes")
    filename: Clean | None = Field(default=None, max_length=200)


class UploadOut(BaseModel):
    id: uuid.UUID
    purpose: str
    state: str
    content_type: str | None
    size: int | None
    width: int | None
    height: int | None
    reject_reason: str | None
    created_at: datetime


class NewUploadOut(BaseModel):
    upload: UploadOut
    upload_url: str
    method: str = "PUT"
    headers: dict[str, str]
    expires_at: datetime


class MediaLinkOut(BaseModel):
    id: uuid.UUID
    url: str
    thumbnail_url: str | None
    content_type: str | None
    expires_at: datetime
