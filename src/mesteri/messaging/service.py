"""Conversations and messages.

One conversation per job and pro before hire (the client and a pro who proposed or was
invited), one per contract after it (the job room). Only the two parties read them —
staff too while the contract has a dispute, and every such reading is audited. Messages
are numbered per conversation under the conversation's row lock, so everyone sees the
same order; each one reaches both parties' connections live (``kit.realtime``).

Before the parties signed a contract on the job, phone numbers, e-mail addresses and
links in messages are hidden (``masking``); the words as written are kept for staff only.

The API and pages call ``access_*``, ``list_*``, ``do_start``, ``do_post``, ``do_edit``,
``do_delete``, ``do_read``; ``system`` posts what happens on the job, the contract and
its milestones; the WebSocket endpoint asks ``typing_audience`` and ``partners``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy import (
    and_,
    bindparam,
    func,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from mesteri.accounts import service as accounts
from mesteri.accounts.service import ClientInfo, Principal, check_staff
from mesteri.config import get_settings
from mesteri.disputes import service as disputes
from mesteri.jobs import service as jobs
from mesteri.kit import audit, clock, realtime
from mesteri.kit import jobs as background
from mesteri.kit.db import FastStatements, ReadSession, WriteSession, driver_connection
from mesteri.kit.i18n import get_language, lazy, translations
from mesteri.kit.ids import new_id
from mesteri.kit.pagination import decode_cursor, encode_cursor
from mesteri.kit.realtime import presence
from mesteri.media import service as media
from mesteri.media.errors import (
    UnknownPurposeError,
    UploadForbiddenError,
    UploadNotFoundError,
    UploadNotReadyError,
)
from mesteri.messaging import masking
from mesteri.messaging.errors import (
    AttachmentNotUsableError,
    ConversationClosedError,
    ConversationNotFoundError,
    EmptyMessageError,
    MessageNotEditableError,
    MessageNotFoundError,
    NoConversationError,
    NoDisputeError,
    NotTheSenderError,
)
from mesteri.messaging.models import (
    Conversation,
    ConversationKind,
    ConversationState,
    Member,
    Message,
    MessageKind,
    MessageRevision,
)
from mesteri.messaging.schemas import (
    AttachmentOut,
    MessageEdit,
    MessageIn,
    MessageOut,
    ParticipantOut,
    PostedMessageOut,
    ReadOut,
    RevisionOut,
    StartIn,
    UnreadOut,
)
from mesteri.messaging.system import render_system
from mesteri.proposals import service as proposals
from mesteri.pros import service as pros

_S = ConversationState
CLIENT, PRO = "client", "pro"
ATTACHMENT_PURPOSES = frozenset({"attachment", "portfolio"})
ATTACHMENT_ERRORS = (
    UploadNotFoundError,
    UploadForbiddenError,
    UploadNotReadyError,
    UnknownPurposeError,
)
PREVIEW_CHARS = 140
# The notice the sender gets when something was hidden (the API's ``notice``).
MASK_NOTICE = lazy(
    "Phone numbers, e-mail addresses and links are hidden until you both sign a contract: "
    "payments arranged outside Mesteri are not protected by escrow."
)


# ---------------------------------------------------------------- access


def role_of(conversation: Conversation, user_id: uuid.UUID) -> str | None:
    if user_id == conversation.client_id:
        return CLIENT
    if user_id == conversation.pro_user_id:
        return PRO
    return None


def members_of(conversation: Conversation) -> tuple[uuid.UUID, uuid.UUID]:
    return conversation.client_id, conversation.pro_user_id


async def access_conversation(
    session: ReadSession, conversation_id: uuid.UUID, principal: Principal
) -> Conversation:
    """A conversation of the caller's; anyone else is told it does not exist."""
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None or role_of(conversation, principal.user_id) is None:
        raise ConversationNotFoundError()
    return conversation


# Built once: every message starts with it (``session.get`` builds its query per call).
_LOCK = (
    select(Conversation)
    .where(Conversation.id == bindparam("id"))
    .with_for_update()
    .execution_options(populate_existing=True)
)


async def lock(session: WriteSession, conversation_id: uuid.UUID) -> Conversation:
    """The conversation row locked for a new message (its number comes from it)."""
    conversation = await session.scalar(_LOCK, {"id": conversation_id})
    if conversation is None:
        raise ConversationNotFoundError()
    return conversation


async def _lock_mine(
    session: WriteSession, conversation_id: uuid.UUID, principal: Principal
) -> Conversation:
    conversation = await lock(session, conversation_id)
    if role_of(conversation, principal.user_id) is None:
        raise ConversationNotFoundError()
    return conversation


async def access_for_staff(
    session: WriteSession,
    conversation_id: uuid.UUID,
    principal: Principal,
    client: ClientInfo | None = None,
) -> Conversation:
    """Staff read a job room while its contract has a dispute (evidence); audited."""
    check_staff(principal)
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None:
        raise ConversationNotFoundError()
    if conversation.contract_id is None or not await disputes.has_dispute(
        session, conversation.contract_id
    ):
        raise NoDisputeError()
    audit.record(
        session,
        "conversation.viewed",
        actor_id=principal.user_id,
        subject_type="conversation",
        subject_id=conversation.id,
        ip=client.ip if client else None,
        user_agent=client.user_agent if client else None,
        contract_id=str(conversation.contract_id),
    )
    return conversation


# ---------------------------------------------------------------- creation


async def _ensure(session: WriteSession, **fields: Any) -> Conversation:
    """Create the conversation and its two members unless it exists (concurrent callers
    meet on the unique index); the row either way."""
    now = clock.now()
    kind = fields["kind"]
    statement = insert(Conversation).values(
        id=new_id(), state=_S.OPEN, last_seq=0, created_at=now, **fields
    )
    if kind == ConversationKind.JOB:
        statement = statement.on_conflict_do_nothing(
            index_elements=["job_id", "pro_user_id"], index_where=text("kind = 'job'")
        )
    else:
        statement = statement.on_conflict_do_nothing(index_elements=["contract_id"])
    created = await session.scalar(statement.returning(Conversation.id))
    if created is not None:
        await session.execute(
            insert(Member).values(
                [
                    {"conversation_id": created, "user_id": user, "role": role, "activity_at": now}
                    for user, role in ((fields["client_id"], CLIENT), (fields["pro_user_id"], PRO))
                ]
            )
        )
    key = (
        and_(
            Conversation.kind == kind,
            Conversation.job_id == fields["job_id"],
            Conversation.pro_user_id == fields["pro_user_id"],
        )
        if kind == ConversationKind.JOB
        else Conversation.contract_id == fields["contract_id"]
    )
    conversation = await session.scalar(select(Conversation).where(key))
    assert conversation is not None
    return conversation


async def ensure_job_conversation(
    session: WriteSession,
    *,
    job_id: uuid.UUID,
    client_id: uuid.UUID,
    pro_user_id: uuid.UUID,
    pro_id: uuid.UUID,
) -> Conversation:
    return await _ensure(
        session,
        kind=ConversationKind.JOB,
        job_id=job_id,
        client_id=client_id,
        pro_user_id=pro_user_id,
        pro_id=pro_id,
        contract_id=None,
    )


async def ensure_contract_conversation(
    session: WriteSession,
    *,
    contract_id: uuid.UUID,
    job_id: uuid.UUID,
    client_id: uuid.UUID,
    pro_user_id: uuid.UUID,
    pro_id: uuid.UUID,
) -> Conversation:
    return await _ensure(
        session,
        kind=ConversationKind.CONTRACT,
        job_id=job_id,
        client_id=client_id,
        pro_user_id=pro_user_id,
        pro_id=pro_id,
        contract_id=contract_id,
    )


async def do_start(session: WriteSession, principal: Principal, body: StartIn) -> Conversation:
    """The caller's conversation about a job with the other party: the job room when they
    have a contract, else the pre-hire conversation — which exists only between the
    client and a pro who proposed or was invited."""
    job = await jobs.access_job(session, body.job_id, principal)
    if principal.user_id == job.client_id:
        if body.pro_id is None:
            raise NoConversationError(field="pro_id")
        profile = await pros.access_profile(session, body.pro_id)
    else:
        profile = await pros.access_own_profile(session, principal.user_id)
    room = await session.scalar(
        select(Conversation)
        .where(
            Conversation.kind == ConversationKind.CONTRACT,
            Conversation.job_id == job.id,
            Conversation.pro_user_id == profile.user_id,
        )
        .order_by(Conversation.created_at.desc())
        .limit(1)
    )
    if room is not None and room.state == _S.OPEN:
        return room
    known = await proposals.has_proposed(session, job.id, profile.id) or await jobs.is_invited(
        session, job.id, profile.id
    )
    if not known:
        raise NoConversationError()
    return await ensure_job_conversation(
        session,
        job_id=job.id,
        client_id=job.client_id,
        pro_user_id=profile.user_id,
        pro_id=profile.id,
    )


async def job_conversations(session: ReadSession, job_id: uuid.UUID) -> Sequence[Conversation]:
    return (
        await session.scalars(
            select(Conversation).where(
                Conversation.job_id == job_id, Conversation.kind == ConversationKind.JOB
            )
        )
    ).all()


async def contract_conversation(
    session: ReadSession, contract_id: uuid.UUID
) -> Conversation | None:
    return await session.scalar(select(Conversation).where(Conversation.contract_id == contract_id))


async def do_close(session: WriteSession, conversation: Conversation, reason: str) -> None:
    """Read-only from now on (``conversation`` locked by the caller)."""
    if conversation.state == _S.OPEN:
        conversation.state = _S.CLOSED
        conversation.closed_reason = reason


async def do_reopen(session: WriteSession, conversation: Conversation) -> None:
    conversation.state = _S.OPEN
    conversation.closed_reason = None


async def do_unmask(session: WriteSession, job_id: uuid.UUID, pro_user_id: uuid.UUID) -> None:
    """The parties signed a contract on the job: nothing they write is hidden from now on
    (in the job room and in their earlier conversation)."""
    await session.execute(
        update(Conversation)
        .where(
            Conversation.job_id == job_id,
            Conversation.pro_user_id == pro_user_id,
            Conversation.unmasked_at.is_(None),
        )
        .values(unmasked_at=clock.now())
        .execution_options(synchronize_session="fetch")
    )


# ---------------------------------------------------------------- posting


@dataclass(frozen=True)
class Posted:
    message: Message
    conversation: Conversation
    notice: str | None


async def do_post(
    session: WriteSession, conversation_id: uuid.UUID, principal: Principal, body: MessageIn
) -> Posted:
    """A participant writes. A retry with the same ``client_token`` returns the first
    message; before hire, contact details are hidden and the sender is told why."""
    if not body.body and not body.attachment_ids:
        raise EmptyMessageError(field="body")
    conversation = await _lock_mine(session, conversation_id, principal)
    if body.client_token:
        earlier = await session.scalar(
            select(Message).where(
                Message.conversation_id == conversation.id,
                Message.sender_id == principal.user_id,
                Message.client_token == body.client_token,
            )
        )
        if earlier is not None:
            return Posted(earlier, conversation, _notice(earlier))
    if conversation.state != _S.OPEN:
        raise ConversationClosedError()
    try:
        await media.do_attach(
            session, body.attachment_ids, principal.user_id, purposes=ATTACHMENT_PURPOSES
        )
    except ATTACHMENT_ERRORS as exc:
        raise AttachmentNotUsableError(field="attachment_ids") from exc
    message = await append(
        session,
        conversation,
        sender_id=principal.user_id,
        kind=MessageKind.TEXT,
        body=body.body,
        attachment_ids=body.attachment_ids,
        client_token=body.client_token,
    )
    return Posted(message, conversation, _notice(message))


def _notice(message: Message) -> str | None:
    return translations(get_language()).gettext(MASK_NOTICE) if message.mask_kinds else None


async def append(
    session: WriteSession,
    conversation: Conversation,
    *,
    sender_id: uuid.UUID | None,
    kind: MessageKind,
    body: str = "",
    data: dict[str, Any] | None = None,
    attachment_ids: Sequence[uuid.UUID] = (),
    client_token: str | None = None,
) -> Message:
    """Add a message to ``conversation`` (locked and checked by the caller): the next
    number, masking before hire, both members' unread counts and inbox order, and the
    live event at commit."""
    draft = _Draft.of(conversation.id, sender_id, kind, body, data, attachment_ids, client_token)
    await session.flush()  # the statement goes through the driver: no autoflush
    driver = await driver_connection(session)  # the caller's lock began the transaction
    row = await driver.fetchrow(_POST, *draft.arguments(on_its_own=False))
    message = draft.message(row["seq"], masked=row["masked"])
    make_transient_to_detached(message)
    session.add(message)
    set_committed_value(conversation, "last_seq", message.seq)
    set_committed_value(conversation, "last_message_at", message.created_at)
    await _announce(session, conversation, "message.new", message)
    return message


# One statement for a new message, in the caller's transaction or, for a plain text, in
# one of its own: the conversation's number (the UPDATE takes its row lock), the message
# (masked unless the job has a signed contract: the statement picks one of the two
# versions the service prepared), both members' unread counts and inbox order, and for
# what people wrote an alert for the reader who is away plus its job. On its own ($17)
# the statement also checks the conversation — every write follows ``numbered``, so if
# it is not the sender's, is closed, or the client's token was used before, nothing is
# written and ``do_post`` says why — and numbers and stores the ``message.new`` event in
# both members' streams (locked in user-id order, as ``realtime.publish`` does at
# commit), and with the PostgreSQL broker's channel ($22) NOTIFYs it too, so it goes
# out at the commit without another round trip after it. One round trip instead of five
# (BEGIN, lock, insert, the events, COMMIT) and no ORM session was most of a chat
# message's delivery time; the NOTIFY in the statement took a quarter off its p99
# (``bench.realtime``).
_POST = (
    """
WITH numbered AS (
    UPDATE conversations AS c SET last_seq = c.last_seq + 1, last_message_at = $9::timestamptz
    WHERE c.id = $1::uuid AND (NOT $17::boolean OR (
        c.state = 'open' AND $2::uuid IN (c.client_id, c.pro_user_id)
        AND NOT EXISTS (
            SELECT FROM messages m
            WHERE m.conversation_id = c.id AND m.sender_id = $2
              AND m.client_token = $3::varchar)))
    RETURNING c.id, c.last_seq AS seq, c.unmasked_at IS NULL AS masked,
        CASE $2 WHEN c.client_id THEN c.pro_user_id WHEN c.pro_user_id THEN c.client_id END
            AS reader
), written AS (
    INSERT INTO messages (id, conversation_id, seq, sender_id, kind, body, original_body,
                          mask_kinds, data, attachment_ids, client_token, created_at)
    SELECT $4::uuid, n.id, n.seq, $2, $18::varchar,
        CASE WHEN n.masked THEN $6::text ELSE $5::text END,
        CASE WHEN n.masked THEN $7::text END,
        CASE WHEN n.masked THEN $8::varchar[] ELSE '{}'::varchar[] END,
        $19::jsonb, $20::uuid[], $3, $9
    FROM numbered n
), members_moved AS (
    UPDATE conversation_members AS m SET activity_at = $9,
        unread = m.unread + CASE WHEN $21::boolean AND m.user_id IS DISTINCT FROM $2
                                 THEN 1 ELSE 0 END,
        last_read_seq = CASE WHEN m.user_id = $2 THEN n.seq ELSE m.last_read_seq END
    FROM numbered n WHERE m.conversation_id = n.id
), alerted AS (
    INSERT INTO message_alerts (user_id, due_at, created_at)
    SELECT n.reader, $10::timestamptz, $9 FROM numbered n
    WHERE $21 AND n.reader IS NOT NULL AND NOT EXISTS (
        SELECT FROM realtime_presence p
        WHERE p.user_id = n.reader AND p.seen_at > $11::timestamptz)
    ON CONFLICT (user_id) DO NOTHING
    RETURNING user_id
), deferred AS (
    INSERT INTO outbox (id, task_name, queue, args, run_at, created_at)
    SELECT $12::uuid, $13::varchar, $14::varchar,
        jsonb_build_object('user_id', a.user_id::text), $10, $9
    FROM alerted a
), allocated AS (
    INSERT INTO realtime_streams AS s (user_id, last_seq)
    SELECT u, 1 FROM numbered n, unnest(ARRAY[$2, n.reader]) AS u WHERE $17 ORDER BY u
    ON CONFLICT (user_id) DO UPDATE SET last_seq = s.last_seq + 1
    RETURNING s.user_id, s.last_seq
), stored AS (
    INSERT INTO realtime_events (user_id, seq, type, data, created_at)
    SELECT a.user_id, a.last_seq, 'message.new',
        jsonb_set(CASE WHEN n.masked THEN $15::jsonb ELSE $16::jsonb END,
                  '{seq}', to_jsonb(n.seq)),
        $9
    FROM allocated a, numbered n
    RETURNING user_id, seq, type, data
)
SELECT n.seq, n.masked,
    (SELECT array_agg(a.user_id ORDER BY a.user_id) FROM allocated a) AS users,
    (SELECT array_agg(a.last_seq ORDER BY a.user_id) FROM allocated a) AS numbers,
    """  # noqa: S608 - constants only
    + realtime.notify_stored_sql("stored", "$22::text")
    + """ AS notified
FROM numbered n
"""
)


@dataclass(frozen=True, slots=True)
class _Draft:
    """A new message before its number, as shown before hire (masked if anything was
    hidden; numbered 0)."""

    shown: Message

    @classmethod
    def of(
        cls,
        conversation_id: uuid.UUID,
        sender_id: uuid.UUID | None,
        kind: MessageKind,
        body: str,
        data: dict[str, Any] | None,
        attachment_ids: Sequence[uuid.UUID],
        client_token: str | None,
    ) -> _Draft:
        hidden = masking.mask_contacts(body) if kind != MessageKind.SYSTEM and body else None
        masked = hidden is not None and hidden.masked
        return cls(
            Message(
                id=new_id(),
                conversation_id=conversation_id,
                seq=0,
                sender_id=sender_id,
                kind=kind,
                body=hidden.text if hidden is not None and masked else body,
                original_body=body if masked else None,
                mask_kinds=sorted(map(str, hidden.kinds)) if hidden is not None and masked else [],
                data=data or {},
                attachment_ids=list(attachment_ids),
                client_token=client_token,
                created_at=clock.now(),
                edited_at=None,
                deleted_at=None,
            )
        )

    @property
    def written(self) -> str:
        shown = self.shown
        return shown.body if shown.original_body is None else shown.original_body

    def message(self, seq: int, *, masked: bool) -> Message:
        """The message as stored: masked if the conversation still was (before hire)."""
        columns = {c.key: getattr(self.shown, c.key) for c in Message.__table__.columns}
        columns["seq"] = seq
        if not masked:
            columns.update(body=self.written, original_body=None, mask_kinds=[])
        return Message(**columns)

    def arguments(
        self,
        *,
        on_its_own: bool,
        events: tuple[str, str] = ("{}", "{}"),
        channel: str | None = None,
    ) -> list[Any]:
        """``_POST``'s parameters, in order."""
        from mesteri.messaging.tasks import alert_unread  # the task module imports this one

        shown = self.shown
        now = shown.created_at
        # The alert's job, if the statement writes one (its ``user_id`` is the reader's).
        job = background.outbox_row(
            alert_unread, run_at=now + timedelta(minutes=get_settings().message_alert_minutes)
        )
        return [
            shown.conversation_id,
            shown.sender_id,
            shown.client_token,
            shown.id,
            self.written,
            shown.body,
            shown.original_body,
            shown.mask_kinds,
            now,
            job["run_at"],
            presence.fresh_after(),
            job["id"],
            job["task_name"],
            job["queue"],
            *events,
            on_its_own,
            shown.kind,
            json.dumps(shown.data),
            shown.attachment_ids,
            # What people wrote counts as unread and alerts those who are away; the
            # room's own story (system messages) reaches people as notifications.
            shown.kind != MessageKind.SYSTEM,
            channel,
        ]


async def _announce(
    session: WriteSession, conversation: Conversation, event: str, message: Message
) -> None:
    """The live event to both members; a system text in each reader's own language."""
    files = await media.describe(session, message.attachment_ids)
    members = members_of(conversation)
    if message.kind != MessageKind.SYSTEM:
        payload = message_out(message, files).model_dump(mode="json")
        realtime.publish(session, members, event, payload)
        return
    languages = await accounts.languages_of(session, members)
    for user in members:
        language = languages.get(user, get_settings().market_profile.default_language)
        payload = message_out(message, files, language=language).model_dump(mode="json")
        realtime.publish(session, [user], event, payload)


async def do_post_text(
    writer: FastStatements, conversation_id: uuid.UUID, principal: Principal, body: MessageIn
) -> PostedMessageOut | None:
    """``do_post`` for a text without attachments: ``_POST`` in a transaction of its own.

    ``None`` when the statement wrote nothing: the caller then goes through ``do_post``,
    which tells what is wrong (not a member, closed, empty) or finds the earlier message
    of a retried ``client_token``."""
    if not body.body or body.attachment_ids:
        return None
    draft = _Draft.of(
        conversation_id, principal.user_id, MessageKind.TEXT, body.body, None, (), body.client_token
    )
    # The event both ways: the statement knows whether the job is still before hire. Most
    # texts hide nothing, and then the two are one (shaped once: the real-time benchmark).
    masked = message_out(draft.shown, {}).model_dump(mode="json")
    plain = masked
    if draft.shown.original_body is not None:  # something was hidden
        plain = message_out(draft.message(0, masked=False), {}).model_dump(mode="json")
    events = (json.dumps(masked), json.dumps(plain))
    channel = realtime.current_broker().statement_channel
    arguments = draft.arguments(on_its_own=True, events=events, channel=channel)
    try:
        row = await writer.fetch_one(_POST, *arguments)
    except asyncpg.UniqueViolationError:  # a retry racing its first send: do_post finds it
        return None
    if row is None:
        return None
    event = {**(masked if row["masked"] else plain), "seq": row["seq"]}
    if channel is None:  # the statement did not send it
        numbers = dict(zip(row["users"], row["numbers"], strict=True))
        realtime.send_stored("message.new", event, numbers)
    return PostedMessageOut(**event, notice=_notice(draft.shown) if row["masked"] else None)


# ---------------------------------------------------------------- edits


async def _own_message(
    session: WriteSession, message_id: uuid.UUID, principal: Principal
) -> tuple[Message, Conversation]:
    found = await session.get(Message, message_id)
    if found is None:
        raise MessageNotFoundError()
    conversation = await _lock_mine(session, found.conversation_id, principal)
    message = await session.get(Message, message_id, populate_existing=True)
    assert message is not None
    if message.sender_id != principal.user_id:
        raise NotTheSenderError()
    if message.kind != MessageKind.TEXT or message.deleted_at is not None:
        raise MessageNotEditableError()
    if conversation.state != _S.OPEN:
        raise ConversationClosedError()
    return message, conversation


def _keep(session: WriteSession, message: Message, action: str, by_id: uuid.UUID) -> None:
    session.add(
        MessageRevision(
            id=new_id(),
            message_id=message.id,
            action=action,
            body=message.body,
            original_body=message.original_body,
            mask_kinds=list(message.mask_kinds),
            attachment_ids=list(message.attachment_ids),
            by_id=by_id,
            at=clock.now(),
        )
    )


async def do_edit(
    session: WriteSession, message_id: uuid.UUID, principal: Principal, body: MessageEdit
) -> Posted:
    """The sender rewrites a message; what it said before is kept (disputes)."""
    message, conversation = await _own_message(session, message_id, principal)
    _keep(session, message, "edit", principal.user_id)
    text, original, kinds = body.body, None, []
    if conversation.unmasked_at is None:
        hidden = masking.mask_contacts(text)
        if hidden.masked:
            original, text, kinds = text, hidden.text, sorted(map(str, hidden.kinds))
    message.body, message.original_body, message.mask_kinds = text, original, kinds
    message.edited_at = clock.now()
    await session.flush()
    await _announce(session, conversation, "message.updated", message)
    return Posted(message, conversation, _notice(message))


async def do_delete(session: WriteSession, message_id: uuid.UUID, principal: Principal) -> Message:
    """The sender takes a message back: the others see that it was deleted; staff still
    see what it said (kept as a revision)."""
    message, conversation = await _own_message(session, message_id, principal)
    _keep(session, message, "delete", principal.user_id)
    message.body, message.original_body, message.mask_kinds = "", None, []
    message.attachment_ids = []
    message.deleted_at = clock.now()
    await session.flush()
    await _announce(session, conversation, "message.updated", message)
    return message


async def list_revisions(
    session: ReadSession, message_id: uuid.UUID, principal: Principal
) -> list[RevisionOut]:
    """Earlier versions of a message: for its sender (as they were shown) and for staff
    (with the words as written)."""
    message = await session.get(Message, message_id)
    if message is None:
        raise MessageNotFoundError()
    staff = principal.is_staff and principal.mfa
    if message.sender_id != principal.user_id and not staff:
        raise MessageNotFoundError()
    rows = await session.scalars(
        select(MessageRevision)
        .where(MessageRevision.message_id == message_id)
        .order_by(MessageRevision.at, MessageRevision.id)
    )
    return [
        RevisionOut(
            action=r.action,
            body=r.body,
            original_body=r.original_body if staff else None,
            by_id=r.by_id,
            at=r.at,
        )
        for r in rows
    ]


# ---------------------------------------------------------------- reading


async def do_read(session: WriteSession, message_id: uuid.UUID, principal: Principal) -> ReadOut:
    """The reader has seen everything up to this message: their unread count follows and
    the other side's "read" ticks appear. Reading an older message changes nothing."""
    message = await session.get(Message, message_id)
    if message is None:
        raise MessageNotFoundError()
    conversation = await access_conversation(session, message.conversation_id, principal)
    member = await session.get(
        Member,
        (conversation.id, principal.user_id),
        with_for_update=True,
        populate_existing=True,
    )
    assert member is not None
    if message.seq > member.last_read_seq:
        member.last_read_seq = message.seq
        member.last_read_at = clock.now()
        member.unread = int(
            await session.scalar(
                select(func.count()).where(
                    Message.conversation_id == conversation.id,
                    Message.seq > message.seq,
                    Message.sender_id.is_not(None),
                    Message.sender_id != principal.user_id,
                )
            )
            or 0
        )
        await session.flush()
        realtime.publish(
            session,
            members_of(conversation),
            "message.read",
            {
                "conversation_id": str(conversation.id),
                "user_id": str(principal.user_id),
                "seq": member.last_read_seq,
                "read_at": member.last_read_at.isoformat(),
            },
        )
    return ReadOut(
        conversation_id=conversation.id,
        user_id=principal.user_id,
        last_read_seq=member.last_read_seq,
        unread=member.unread,
    )


@dataclass(frozen=True)
class ConversationView:
    conversation: Conversation
    member: Member
    other_read_seq: int
    title: str
    participants: list[ParticipantOut]
    last_message: Message | None


async def list_conversations(
    session: ReadSession, principal: Principal, *, cursor: str | None, limit: int
) -> tuple[list[ConversationView], str | None]:
    """The caller's conversations, the most recently active first."""
    query = (
        select(Member, Conversation)
        .join(Conversation, Conversation.id == Member.conversation_id)
        .where(Member.user_id == principal.user_id)
    )
    if cursor:
        at, last_id = decode_cursor(cursor, 2)
        query = query.where(tuple_(Member.activity_at, Member.conversation_id) < (at, last_id))
    rows = (
        await session.execute(
            query.order_by(Member.activity_at.desc(), Member.conversation_id.desc()).limit(
                limit + 1
            )
        )
    ).all()
    pairs = [(row.Member, row.Conversation) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = pairs[-1][0]
        next_cursor = encode_cursor([last.activity_at, last.conversation_id])
    return await _views(session, pairs), next_cursor


async def load_conversation(
    session: ReadSession, conversation_id: uuid.UUID, principal: Principal
) -> ConversationView:
    conversation = await access_conversation(session, conversation_id, principal)
    member = await session.get(Member, (conversation.id, principal.user_id))
    assert member is not None
    (view,) = await _views(session, [(member, conversation)])
    return view


async def _views(
    session: ReadSession, pairs: Sequence[tuple[Member, Conversation]]
) -> list[ConversationView]:
    """Titles, names, presence, the other side's read position and the newest message of
    these conversations, a query each for all of them."""
    if not pairs:
        return []
    conversations = [c for _, c in pairs]
    ids = [c.id for c in conversations]
    titles = await jobs.titles(session, {c.job_id for c in conversations})
    clients = await jobs.client_names(session, {c.client_id for c in conversations})
    pro_names = await pros.display_names(session, {c.pro_id for c in conversations})
    online = await presence.presence_of(session, {u for c in conversations for u in members_of(c)})
    reads = {
        (row.conversation_id, row.user_id): row.last_read_seq
        for row in await session.execute(
            select(Member.conversation_id, Member.user_id, Member.last_read_seq).where(
                Member.conversation_id.in_(ids)
            )
        )
    }
    newest = {
        m.conversation_id: m
        for m in await session.scalars(
            select(Message)
            .where(Message.conversation_id.in_(ids))
            .order_by(Message.conversation_id, Message.seq.desc())
            .ext(distinct_on(Message.conversation_id))
        )
    }
    views = []
    for member, conversation in pairs:
        participants = [
            ParticipantOut(
                user_id=conversation.client_id,
                role=CLIENT,
                name=clients.get(conversation.client_id, ""),
                online=online[conversation.client_id].online,
                last_seen_at=online[conversation.client_id].last_seen_at,
            ),
            ParticipantOut(
                user_id=conversation.pro_user_id,
                role=PRO,
                name=pro_names.get(conversation.pro_id, ""),
                pro_id=conversation.pro_id,
                online=online[conversation.pro_user_id].online,
                last_seen_at=online[conversation.pro_user_id].last_seen_at,
            ),
        ]
        other = next(u for u in members_of(conversation) if u != member.user_id)
        views.append(
            ConversationView(
                conversation=conversation,
                member=member,
                other_read_seq=reads.get((conversation.id, other), 0),
                title=titles.get(conversation.job_id, ""),
                participants=participants,
                last_message=newest.get(conversation.id),
            )
        )
    return views


async def list_messages(
    session: ReadSession,
    conversation: Conversation,
    *,
    cursor: str | None = None,
    after: int | None = None,
    limit: int = 50,
) -> tuple[list[Message], str | None]:
    """Newest first, each page older than ``cursor``; or, with ``after``, the messages
    numbered after it, oldest first (catching up without a WebSocket)."""
    query = select(Message).where(Message.conversation_id == conversation.id)
    if after is not None:
        rows = (
            await session.scalars(
                query.where(Message.seq > after).order_by(Message.seq).limit(limit)
            )
        ).all()
        return list(rows), None
    if cursor:
        (before,) = decode_cursor(cursor, 1)
        query = query.where(Message.seq < int(before))
    rows = (await session.scalars(query.order_by(Message.seq.desc()).limit(limit + 1))).all()
    items = list(rows[:limit])
    next_cursor = encode_cursor([items[-1].seq]) if len(rows) > limit and items else None
    return items, next_cursor


async def unread_counts(session: ReadSession, user_id: uuid.UUID) -> UnreadOut:
    """How many conversations and messages wait for the user (the inbox badge)."""
    row = (
        await session.execute(
            select(
                func.count().filter(Member.unread > 0), func.coalesce(func.sum(Member.unread), 0)
            ).where(Member.user_id == user_id)
        )
    ).one()
    return UnreadOut(conversations=int(row[0]), messages=int(row[1]))


@dataclass(frozen=True)
class UnreadSummary:
    messages: int
    senders: list[str]  # who wrote, by the names the reader sees
    titles: list[str]  # of the jobs the conversations are about


async def unread_summary(
    session: ReadSession, user_id: uuid.UUID, *, most: int = 3
) -> UnreadSummary:
    """What waits for the user, for the "unread messages" notice: how many messages, and
    who wrote about which jobs in the most recent conversations."""
    rows = (
        await session.execute(
            select(Member.unread, Conversation)
            .join(Conversation, Conversation.id == Member.conversation_id)
            .where(Member.user_id == user_id, Member.unread > 0)
            .order_by(Member.activity_at.desc())
        )
    ).all()
    recent = [row.Conversation for row in rows[:most]]
    titles = await jobs.titles(session, {c.job_id for c in recent})
    clients = await jobs.client_names(session, {c.client_id for c in recent})
    pro_names = await pros.display_names(session, {c.pro_id for c in recent})
    senders = [
        pro_names.get(c.pro_id, "") if c.client_id == user_id else clients.get(c.client_id, "")
        for c in recent
    ]
    return UnreadSummary(
        messages=sum(row.unread for row in rows),
        senders=[name for name in dict.fromkeys(senders) if name],
        titles=[
            title for title in dict.fromkeys(titles.get(c.job_id, "") for c in recent) if title
        ],
    )


# ---------------------------------------------------------------- shapes


def preview_of(message: Message, language: str | None = None) -> str:
    """A message in one short line, for the inbox (in ``language``, the request's)."""
    t = translations(language or get_language()).gettext
    if message.deleted_at is not None:
        return t("Message deleted")
    text = (
        render_system(message.data, language or get_language())
        if message.kind == MessageKind.SYSTEM
        else ""
    )
    text = text or message.body
    if not text and message.attachment_ids:
        return t("Attachment")
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def message_out(
    message: Message, files: dict[uuid.UUID, media.FileInfo], *, language: str | None = None
) -> MessageOut:
    language = language or get_language()
    body = render_system(message.data, language) if message.kind == MessageKind.SYSTEM else ""
    return MessageOut(
        id=message.id,
        conversation_id=message.conversation_id,
        seq=message.seq,
        sender_id=message.sender_id,
        kind=message.kind,
        body=body or message.body,
        masked=bool(message.mask_kinds),
        mask_kinds=list(message.mask_kinds),
        data=message.data,
        attachments=[
            AttachmentOut(
                id=upload_id,
                filename=files[upload_id].filename,
                content_type=files[upload_id].content_type,
                size=files[upload_id].size,
                url=f"/api/v1/messages/{message.id}/attachments/{upload_id}",
            )
            for upload_id in message.attachment_ids
            if upload_id in files
        ],
        created_at=message.created_at,
        edited_at=message.edited_at,
        deleted=message.deleted_at is not None,
    )


async def files_of(
    session: ReadSession, messages: Iterable[Message]
) -> dict[uuid.UUID, media.FileInfo]:
    return await media.describe(session, [u for m in messages for u in m.attachment_ids])


async def access_attachment(
    session: WriteSession,
    message_id: uuid.UUID,
    upload_id: uuid.UUID,
    principal: Principal,
    client: ClientInfo | None = None,
) -> media.DownloadLink:
    """A short-lived link to a message's file, for the conversation's participants."""
    message = await session.get(Message, message_id)
    if message is None or upload_id not in message.attachment_ids:
        raise MessageNotFoundError()
    await access_conversation(session, message.conversation_id, principal)
    return await media.access_download(session, upload_id, principal, client=client, may_view=True)


# ---------------------------------------------------------------- real time


async def typing_audience(
    session: ReadSession, conversation_id: uuid.UUID, user_id: uuid.UUID
) -> list[uuid.UUID]:
    """Who sees the user typing in this conversation (nobody unless they take part)."""
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None or conversation.state != _S.OPEN:
        return []
    if role_of(conversation, user_id) is None:
        return []
    return [u for u in members_of(conversation) if u != user_id]


async def partners(session: ReadSession, user_id: uuid.UUID) -> set[uuid.UUID]:
    """Everyone the user has a conversation with (who sees them come online)."""
    mine = select(Member.conversation_id).where(Member.user_id == user_id).scalar_subquery()
    rows = await session.scalars(
        select(Member.user_id)
        .where(Member.conversation_id.in_(mine), Member.user_id != user_id)
        .distinct()
        .limit(1000)
    )
    return set(rows.all())
