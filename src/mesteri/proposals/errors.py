"""Errors of the proposals domain, each with a stable code."""

from __future__ import annotations

from mesteri.kit.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)


class ProposalNotFoundError(NotFoundError):
    code = "proposal_not_found"
    message = "We could not find this proposal."


class ProNotVerifiedError(PermissionDeniedError):
    code = "pro_not_verified"
    message = (
        "Only verified professionals can send proposals. Send your identity documents "
        "from your pro profile to get verified, then try again."
    )


class OwnJobError(PermissionDeniedError):
    code = "own_job"
    message = "You cannot send a proposal for your own job."


class ProposalExistsError(ConflictError):
    code = "proposal_exists"
    message = (
        "You already have a proposal for this job. Edit or withdraw it instead of sending "
        "another one."
    )


class ProposalAnsweredError(ConflictError):
    code = "proposal_answered"
    message = "The client has already answered this proposal, so it can no longer be edited."


class ProposalClosedError(ConflictError):
    code = "proposal_closed"
    message = "This proposal was closed; it can no longer be changed."


class CurrencyMismatchError(InvalidInputError):
    code = "currency_mismatch"
    message = "Proposals for this job are in {currency}."


class NoMilestonesError(InvalidInputError):
    code = "milestones_required"
    message = "Add at least one milestone."


class TooManyMilestonesError(InvalidInputError):
    code = "too_many_milestones"
    message = "A proposal has at most {limit} milestones."


class MilestonesSumMismatchError(InvalidInputError):
    code = "milestones_sum_mismatch"
    message = "The milestones add up to {total}, but the price is {price}. They must be equal."


class MilestoneTooSmallError(InvalidInputError):
    code = "milestone_amount_too_small"
    message = "Each milestone must be at least {minimum}."


class DueDateInPastError(InvalidInputError):
    code = "due_date_in_past"
    message = "The due date of “{title}” is in the past."
