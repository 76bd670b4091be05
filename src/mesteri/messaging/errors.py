"""Errors of conversations and messages, each with a stable code and HTTP status."""

from __future__ import annotations

from mesteri.kit.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)


class ConversationNotFoundError(NotFoundError):
    code = "conversation_not_found"
    message = "We could not find this conversation."


class MessageNotFoundError(NotFoundError):
    code = "message_not_found"
    message = "We could not find this message."


class ConversationClosedError(ConflictError):
    code = "conversation_closed"
    message = "This conversation is closed. New messages go to the job room of the contract."


class NoConversationError(PermissionDeniedError):
    code = "no_conversation"
    message = (
        "You can write to a pro about a job once they proposed or you invited them; "
        "a pro can write once they proposed or were invited."
    )


class NotTheSenderError(PermissionDeniedError):
    code = "not_the_sender"
    message = "Only the person who wrote a message can change or delete it."


class MessageNotEditableError(ConflictError):
    code = "message_not_editable"
    message = "This message cannot be changed any more."


class EmptyMessageError(InvalidInputError):
    code = "empty_message"
    message = "Write a message or attach a file."


class AttachmentNotUsableError(InvalidInputError):
    code = "attachment_not_usable"
    message = "One of the files cannot be attached: upload it again and wait until it is ready."


class NoDisputeError(PermissionDeniedError):
    code = "no_dispute"
    message = "Staff read a conversation only while its contract has a dispute."
