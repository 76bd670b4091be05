"""Request and response shapes of conversations and messages."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mesteri.kit.text import Trimmed

MAX_BODY = 4000
MAX_ATTACHMENTS = 10


class ParticipantOut(BaseModel):
    user_id: uuid.UUID
    role: str  # client | pro
    name: str  # the client as "Ana P.", the pro by their public name
    pro_id: uuid.UUID | None = None
    online: bool = False
    last_seen_at: datetime | None = None


class LastMessageOut(BaseModel):
    id: uuid.UUID
    seq: int
    sender_id: uuid.UUID | None
    kind: str
    preview: str
    created_at: datetime


class ConversationOut(BaseModel):
    id: uuid.UUID
    kind: str  # job (before hire) | contract (the job room)
    job_id: uuid.UUID
    contract_id: uuid.UUID | None
    title: str
    state: str
    closed_reason: str | None
    masked: bool  # contact details in new messages are hidden (no signed contract yet)
    participants: list[ParticipantOut]
    unread: int
    last_read_seq: int
    last_seq: int
    last_message: LastMessageOut | None
    last_message_at: datetime | None
    created_at: datetime


class AttachmentOut(BaseModel):
    id: uuid.UUID
    filename: str | None
    content_type: str | None
    size: int | None
    url: str  # answers with a short-lived link to the file, for participants only


class MessageOut(BaseModel):
    id: uuid.UUID
    conversation_id: uuid.UUID
    seq: int
    sender_id: uuid.UUID | None
    kind: str  # text | quote | system
    body: str  # system messages in the reader's language
    masked: bool
    mask_kinds: list[str]
    data: dict[str, Any]
    attachments: list[AttachmentOut]
    created_at: datetime
    edited_at: datetime | None
    deleted: bool


class PostedMessageOut(MessageOut):
    notice: str | None = None  # why something was hidden, for the sender


class StaffMessageOut(MessageOut):
    original_body: str | None


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Trimmed = Field(default="", max_length=MAX_BODY)
    attachment_ids: list[uuid.UUID] = Field(default_factory=list, max_length=MAX_ATTACHMENTS)
    # The client's own id for this send: a retry with the same token returns the first
    # message instead of posting it twice.
    client_token: Trimmed | None = Field(default=None, min_length=1, max_length=64)


class MessageEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    body: Trimmed = Field(min_length=1, max_length=MAX_BODY)


class StartIn(BaseModel):
    """Open (or find) the conversation about a job: the client names the pro, a pro
    talks to the job's client."""

    model_config = ConfigDict(extra="forbid")

    job_id: uuid.UUID
    pro_id: uuid.UUID | None = None


class ReadOut(BaseModel):
    conversation_id: uuid.UUID
    user_id: uuid.UUID
    last_read_seq: int
    unread: int


class RevisionOut(BaseModel):
    action: str  # edit | delete
    body: str
    original_body: str | None = None  # staff only
    by_id: uuid.UUID
    at: datetime


class UnreadOut(BaseModel):
    conversations: int
    messages: int
