"""Errors of the jobs domain, each with a stable code."""

from __future__ import annotations

from mesteri.kit.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)


class JobNotFoundError(NotFoundError):
    code = "job_not_found"
    message = "We could not find this job."


class JobNotOpenError(ConflictError):
    code = "job_not_open"
    message = "This job is not taking proposals."


class JobNotEditableError(ConflictError):
    code = "job_not_editable"
    message = "A job can be changed only while it is a draft or open."


class InvalidCategoryError(InvalidInputError):
    code = "invalid_category"
    message = "Choose one of the categories offered."


class InvalidPlaceError(InvalidInputError):
    code = "invalid_place"
    message = "Choose one of the places offered."


class CurrencyMismatchError(InvalidInputError):
    code = "currency_mismatch"
    message = "Jobs in this place are priced in {currency}."


class BudgetTooLowError(InvalidInputError):
    code = "budget_too_low"
    message = "The budget must be at least {minimum}."


class BudgetRangeError(InvalidInputError):
    code = "budget_range"
    message = "The highest budget cannot be below the lowest."


class DateInPastError(InvalidInputError):
    code = "date_in_past"
    message = "The date cannot be in the past."


class DateOrderError(InvalidInputError):
    code = "date_order"
    message = "The end date cannot be before the start date."


class UnknownTemplateError(InvalidInputError):
    code = "unknown_template"
    message = "There is no such job template."


class InvalidMilestonePlanError(InvalidInputError):
    code = "invalid_milestone_plan"
    message = "The shares of the milestones must be whole percents that add up to 100."


class InvalidInviteeError(InvalidInputError):
    code = "invalid_invitee"
    message = "You can invite only professionals listed on Mesteri, and not yourself."


class ContactForbiddenError(PermissionDeniedError):
    code = "contact_forbidden"
    message = "Contact details are shown only to the client and the hired professional."
