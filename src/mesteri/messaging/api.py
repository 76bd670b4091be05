"""Messaging API: conversations, messages (cursor pagination backwards), edits with
history, read receipts, attachments, and the staff reading of a disputed job room.
Thin: parse, call the service, shape. Live events come over the WebSocket (``ws``)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import RedirectResponse
from starlette.datastructures import State

from mesteri.accounts.deps import Client, CurrentPrincipal, Limiter, StaffPrincipal
from mesteri.accounts.service import Principal
from mesteri.kit.db import DbRead, DbWrite, FastStatements, unit_of_work
from mesteri.kit.pagination import Page
from mesteri.messaging import service
from mesteri.messaging.models import Conversation, Message
from mesteri.messaging.schemas import (
    ConversationOut,
    LastMessageOut,
    MessageEdit,
    MessageIn,
    MessageOut,
    PostedMessageOut,
    ReadOut,
    RevisionOut,
    StaffMessageOut,
    StartIn,
    UnreadOut,
)

router = APIRouter(tags=["messaging"])
admin = APIRouter(prefix="/admin", tags=["messaging"])

# A person types, they do not script: more than this is a bot or a loop.
SEND_RATE = "30/minute"


def conversation_out(view: service.ConversationView) -> ConversationOut:
    conversation, last = view.conversation, view.last_message
    return ConversationOut(
        id=conversation.id,
        kind=conversation.kind,
        job_id=conversation.job_id,
        contract_id=conversation.contract_id,
        title=view.title,
        state=conversation.state,
        closed_reason=conversation.closed_reason,
        masked=conversation.unmasked_at is None,
        participants=view.participants,
        unread=view.member.unread,
        last_read_seq=view.member.last_read_seq,
        last_seq=conversation.last_seq,
        last_message=LastMessageOut(
            id=last.id,
            seq=last.seq,
            sender_id=last.sender_id,
            kind=last.kind,
            preview=service.preview_of(last),
            created_at=last.created_at,
        )
        if last
        else None,
        last_message_at=conversation.last_message_at,
        created_at=conversation.created_at,
    )


async def _messages_out(session: DbRead, messages: list[Message]) -> list[MessageOut]:
    files = await service.files_of(session, messages)
    return [service.message_out(m, files) for m in messages]


async def posted_out(session: DbWrite, posted: service.Posted) -> PostedMessageOut:
    files = await service.files_of(session, [posted.message])
    shaped = service.message_out(posted.message, files)
    return PostedMessageOut(**shaped.model_dump(), notice=posted.notice)


async def post_now(
    state: State, conversation_id: uuid.UUID, principal: Principal, body: MessageIn
) -> PostedMessageOut:
    """Post a message in a transaction of its own (the REST call and the WebSocket's
    ``send``): a plain text as one statement, and anything else, or anything that
    statement refused, through ``do_post``, which also says what is wrong."""
    writer: FastStatements = state.fast_statements
    quick = await service.do_post_text(writer, conversation_id, principal, body)
    if quick is not None:
        return quick
    async with unit_of_work(state.write_sessions) as session:
        return await posted_out(
            session, await service.do_post(session, conversation_id, principal, body)
        )


@router.get("/conversations", response_model=Page[ConversationOut])
async def list_conversations(
    session: DbRead,
    principal: CurrentPrincipal,
    cursor: str | None = Query(default=None, max_length=400),
    limit: int = Query(default=20, ge=1, le=100),
) -> Page[ConversationOut]:
    """The caller's conversations, the most recently active first, with unread counts."""
    views, next_cursor = await service.list_conversations(
        session, principal, cursor=cursor, limit=limit
    )
    return Page(items=[conversation_out(v) for v in views], next_cursor=next_cursor)


@router.post("/conversations", response_model=ConversationOut)
async def start_conversation(
    body: StartIn, session: DbWrite, principal: CurrentPrincipal
) -> ConversationOut:
    """The conversation about a job with the other party (found, or opened): the client
    names the pro (``pro_id``); a pro talks to the job's client. It exists once the pro
    proposed or was invited; after hire it is the contract's job room."""
    conversation = await service.do_start(session, principal, body)
    return conversation_out(await service.load_conversation(session, conversation.id, principal))


@router.get("/conversations/unread", response_model=UnreadOut)
async def unread(session: DbRead, principal: CurrentPrincipal) -> UnreadOut:
    """The inbox badge: conversations and messages waiting for the caller."""
    return await service.unread_counts(session, principal.user_id)


@router.get("/conversations/{conversation_id}", response_model=ConversationOut)
async def get_conversation(
    conversation_id: uuid.UUID, session: DbRead, principal: CurrentPrincipal
) -> ConversationOut:
    return conversation_out(await service.load_conversation(session, conversation_id, principal))


@router.get("/conversations/{conversation_id}/messages", response_model=Page[MessageOut])
async def list_messages(
    conversation_id: uuid.UUID,
    session: DbRead,
    principal: CurrentPrincipal,
    cursor: str | None = Query(default=None, max_length=400),
    after: int | None = Query(default=None, ge=0, le=2**31 - 1),
    limit: int = Query(default=50, ge=1, le=200),
) -> Page[MessageOut]:
    """Newest first; ``next_cursor`` pages back in time. With ``after`` (a message
    ``seq``): the messages after it, oldest first — catching up without a WebSocket."""
    conversation = await service.access_conversation(session, conversation_id, principal)
    messages, next_cursor = await service.list_messages(
        session, conversation, cursor=cursor, after=after, limit=limit
    )
    return Page(items=await _messages_out(session, messages), next_cursor=next_cursor)


@router.post(
    "/conversations/{conversation_id}/messages",
    response_model=PostedMessageOut,
    status_code=status.HTTP_201_CREATED,
)
async def post_message(
    request: Request,
    conversation_id: uuid.UUID,
    body: MessageIn,
    principal: CurrentPrincipal,
    limiter: Limiter,
) -> PostedMessageOut:
    """Text and attachments (upload ids). Before a contract is signed, phone numbers,
    e-mail addresses and links are hidden for the reader (``masked``; ``notice`` says
    why). Send a ``client_token`` to make retries safe."""
    await limiter.hit(SEND_RATE, f"message:{principal.user_id}")
    return await post_now(request.app.state, conversation_id, principal, body)


@router.patch("/messages/{message_id}", response_model=PostedMessageOut)
async def edit_message(
    message_id: uuid.UUID, body: MessageEdit, session: DbWrite, principal: CurrentPrincipal
) -> PostedMessageOut:
    """The sender rewrites a text message; the earlier version is kept."""
    return await posted_out(session, await service.do_edit(session, message_id, principal, body))


@router.delete("/messages/{message_id}", response_model=MessageOut)
async def delete_message(
    message_id: uuid.UUID, session: DbWrite, principal: CurrentPrincipal
) -> MessageOut:
    """The sender deletes a message: it shows as deleted; what it said is kept for staff."""
    message = await service.do_delete(session, message_id, principal)
    return service.message_out(message, {})


@router.get("/messages/{message_id}/history", response_model=list[RevisionOut])
async def message_history(
    message_id: uuid.UUID, session: DbRead, principal: CurrentPrincipal
) -> list[RevisionOut]:
    """Earlier versions of an edited or deleted message (its sender, or staff)."""
    return await service.list_revisions(session, message_id, principal)


@router.post("/messages/{message_id}/read", response_model=ReadOut)
async def read_message(
    message_id: uuid.UUID, session: DbWrite, principal: CurrentPrincipal
) -> ReadOut:
    """Everything up to this message is read: the sender sees the read ticks."""
    return await service.do_read(session, message_id, principal)


@router.get(
    "/messages/{message_id}/attachments/{upload_id}",
    response_model=None,
    status_code=status.HTTP_302_FOUND,
)
async def attachment(
    message_id: uuid.UUID,
    upload_id: uuid.UUID,
    session: DbWrite,
    principal: CurrentPrincipal,
    client: Client,
) -> RedirectResponse:
    """Redirects to a short-lived link to the file (participants only)."""
    link = await service.access_attachment(session, message_id, upload_id, principal, client)
    return RedirectResponse(link.url, status_code=status.HTTP_302_FOUND)


@admin.get("/conversations/{conversation_id}/messages", response_model=Page[StaffMessageOut])
async def staff_messages(
    conversation_id: uuid.UUID,
    session: DbWrite,
    staff: StaffPrincipal,
    client: Client,
    cursor: str | None = Query(default=None, max_length=400),
    limit: int = Query(default=100, ge=1, le=200),
) -> Page[StaffMessageOut]:
    """The job room of a disputed contract as written (hidden parts included), for the
    dispute desk. Each reading is in the audit log."""
    conversation: Conversation = await service.access_for_staff(
        session, conversation_id, staff, client
    )
    messages, next_cursor = await service.list_messages(
        session, conversation, cursor=cursor, limit=limit
    )
    files = await service.files_of(session, messages)
    return Page(
        items=[
            StaffMessageOut(
                **service.message_out(m, files).model_dump(), original_body=m.original_body
            )
            for m in messages
        ],
        next_cursor=next_cursor,
    )
