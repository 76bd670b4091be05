"""Errors of the milestones domain, each with a stable code."""

from __future__ import annotations

from mesteri.kit.errors import ConflictError, InvalidInputError, NotFoundError


class MilestoneNotFoundError(NotFoundError):
    code = "milestone_not_found"
    message = "We could not find this milestone."


class UnknownTransitionError(NotFoundError):
    code = "unknown_transition"
    message = "There is no action called “{name}” for a milestone."


class InvalidDodItemError(InvalidInputError):
    code = "invalid_dod_item"
    message = "The Definition of Done has no item number {index}."


class AttachmentNotUsableError(InvalidInputError):
    code = "attachment_not_usable"
    message = "One of the files is not yours or has not finished uploading."


class MilestoneLockedError(ConflictError):
    code = "milestone_locked"
    message = "“{title}” is already funded or paid; an amendment cannot change it."


class UnknownMilestoneError(InvalidInputError):
    code = "unknown_milestone"
    message = "This milestone is not part of the contract."


class UseDisputeDeskError(ConflictError):
    code = "use_dispute_desk"
    message = "Disputes are opened and decided on the dispute desk, which keeps their record."
