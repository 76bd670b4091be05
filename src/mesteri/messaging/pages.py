"""Messaging pages: the inbox, a conversation (live with ``/static/chat.js``, and a plain
form without JavaScript), sending with attachments, read receipts and the "Message"
buttons elsewhere. They call the same services as the API; nothing here decides a rule.

A page's script posts the same forms with ``Accept: application/json`` and gets the
message back instead of a redirect.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, RedirectResponse, Response
from markupsafe import Markup, escape

from mesteri.accounts.deps import Client, WebAuthRequired
from mesteri.accounts.service import Principal
from mesteri.kit import i18n, realtime
from mesteri.kit.db import DbWrite, WriteSession
from mesteri.kit.text import Clean
from mesteri.kit.web import form_errors, render, see_other, templates, wants_page_json
from mesteri.media import service as media
from mesteri.messaging import api as shapes
from mesteri.messaging import masking, service
from mesteri.messaging.errors import ConversationNotFoundError
from mesteri.messaging.schemas import (
    MAX_ATTACHMENTS,
    MAX_BODY,
    ConversationOut,
    MessageIn,
    ParticipantOut,
    StartIn,
)

router = APIRouter()

PAGE_SIZE = 50


def _masked_contacts(text: str) -> Markup:
    """The body as HTML, each hidden contact detail marked (and explained on hover)."""
    title = escape(i18n.gettext("Hidden until a contract is signed"))
    parts = [str(escape(part)) for part in text.split(masking.MARKER)]
    mark = f'<mark class="hidden-contact" title="{title}">{masking.MARKER}</mark>'
    return Markup(mark.join(parts))  # noqa: S704 - every part was escaped above


def _other_party(conversation: ConversationOut, me: str) -> ParticipantOut:
    return next(p for p in conversation.participants if str(p.user_id) != me)


templates.filters["masked_contacts"] = _masked_contacts
templates.globals["other_party"] = _other_party


async def _conversation_context(
    session: WriteSession, conversation_id: uuid.UUID, principal: Principal, before: str | None
) -> dict[str, Any]:
    view = await service.load_conversation(session, conversation_id, principal)
    messages, older = await service.list_messages(
        session, view.conversation, cursor=before, limit=PAGE_SIZE
    )
    files = await service.files_of(session, messages)
    last_event = await realtime.last_event_id(await session.connection(), principal.user_id)
    return {
        "view": view,
        "conversation": shapes.conversation_out(view),
        "messages": [service.message_out(m, files) for m in reversed(messages)],
        "older": older,
        "me": str(principal.user_id),
        "last_event_id": last_event,
        "max_body": MAX_BODY,
        "max_files": MAX_ATTACHMENTS,
    }


@router.get("/inbox")
async def inbox(
    request: Request,
    session: DbWrite,
    auth: WebAuthRequired,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> Response:
    views, next_cursor = await service.list_conversations(session, auth[1], cursor=cursor, limit=30)
    return render(
        request,
        "messaging/inbox.html",
        {
            "conversations": [shapes.conversation_out(v) for v in views],
            "next_cursor": next_cursor,
            "me": str(auth[1].user_id),
        },
    )


@router.get("/inbox/{conversation_id}")
async def conversation_page(
    request: Request,
    conversation_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
    before: Annotated[str | None, Query(max_length=400)] = None,
) -> Response:
    """The conversation, newest messages last; opening it reads what was new."""
    principal = auth[1]
    context = await _conversation_context(session, conversation_id, principal, before)
    if context["messages"] and before is None:
        read = await service.do_read(session, context["messages"][-1].id, principal)
        context["view"].member.unread = read.unread
    return render(request, "messaging/conversation.html", context)


@router.post("/inbox/{conversation_id}/messages")
async def send_message(
    request: Request,
    conversation_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
    body: Annotated[Clean, Form(max_length=MAX_BODY + 100)] = "",
    client_token: Annotated[str | None, Form(max_length=64)] = None,
    files: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    principal = auth[1]
    page = "messaging/conversation.html"
    context = await _conversation_context(session, conversation_id, principal, None)
    context["draft"] = body
    with form_errors(request, page, **context):
        attachment_ids = await media.do_store_form_files(
            session, principal.user_id, files or [], limit=MAX_ATTACHMENTS
        )
        message = MessageIn.model_validate(
            {
                "body": body.strip()[:MAX_BODY],
                "attachment_ids": attachment_ids,
                "client_token": client_token or None,
            }
        )
        posted = await service.do_post(session, conversation_id, principal, message)
    if wants_page_json(request):
        shaped = await shapes.posted_out(session, posted)
        return JSONResponse(shaped.model_dump(mode="json"), status_code=201)
    target = f"/inbox/{conversation_id}#m-{posted.message.seq}"
    if posted.notice:
        target = f"/inbox/{conversation_id}?masked=1#m-{posted.message.seq}"
    return see_other(target)


@router.post("/inbox/messages/{message_id}/read")
async def read_message(message_id: uuid.UUID, session: DbWrite, auth: WebAuthRequired) -> Response:
    """The page's script marks a message read while the conversation is on screen."""
    read = await service.do_read(session, message_id, auth[1])
    return JSONResponse(read.model_dump(mode="json"))


@router.post("/inbox/start")
async def start_conversation(
    session: DbWrite,
    auth: WebAuthRequired,
    job_id: Annotated[uuid.UUID, Form()],
    pro_id: Annotated[uuid.UUID | None, Form()] = None,
) -> RedirectResponse:
    """The "Message" buttons of job, proposal and contract pages."""
    conversation = await service.do_start(session, auth[1], StartIn(job_id=job_id, pro_id=pro_id))
    return see_other(f"/inbox/{conversation.id}")


@router.get("/inbox/{conversation_id}/files/{message_id}/{upload_id}")
async def attachment(
    conversation_id: uuid.UUID,
    message_id: uuid.UUID,
    upload_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
    client: Client,
) -> RedirectResponse:
    link = await service.access_attachment(session, message_id, upload_id, auth[1], client)
    return RedirectResponse(link.url, status_code=302)


@router.get("/admin/contracts/{contract_id}/conversation")
async def staff_conversation(
    request: Request,
    contract_id: uuid.UUID,
    session: DbWrite,
    auth: WebAuthRequired,
    client: Client,
    before: Annotated[str | None, Query(max_length=400)] = None,
) -> Response:
    """The dispute desk reads a disputed contract's job room, hidden parts included."""
    room = await service.contract_conversation(session, contract_id)
    if room is None:
        raise ConversationNotFoundError()
    conversation = await service.access_for_staff(session, room.id, auth[1], client)
    messages, older = await service.list_messages(
        session, conversation, cursor=before, limit=PAGE_SIZE
    )
    files = await service.files_of(session, messages)
    return render(
        request,
        "messaging/staff.html",
        {
            "room": conversation,
            "contract_id": contract_id,
            "items": [(service.message_out(m, files), m.original_body) for m in reversed(messages)],
            "older": older,
        },
    )
