"""Errors of the reviews domain, each with a stable code."""

from __future__ import annotations

from mesteri.kit.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)


class ReviewNotFoundError(NotFoundError):
    code = "review_not_found"
    message = "We could not find this review."


class ReportNotFoundError(NotFoundError):
    code = "review_report_not_found"
    message = "We could not find this report."


class NotAPartyError(PermissionDeniedError):
    code = "not_a_party"
    message = "Only the client and the professional of this contract can review it."


class NotTheAuthorError(PermissionDeniedError):
    code = "not_the_author"
    message = "Only the author can change this review."


class NotTheProError(PermissionDeniedError):
    code = "not_the_reviewed_pro"
    message = "Only the professional this review is about can answer it."


class OwnReviewError(PermissionDeniedError):
    code = "own_review"
    message = "You cannot vote for your own review."


class ReviewNotOpenError(ConflictError):
    code = "review_not_open"
    message = (
        "Reviews open once money has been paid to the professional for this contract. "
        "Nothing has been paid yet."
    )


class ReviewWindowClosedError(ConflictError):
    code = "review_window_closed"
    message = "The time to review this contract is over."


class ReviewExistsError(ConflictError):
    code = "review_exists"
    message = (
        "You have already reviewed this contract. You can edit your review until it is published."
    )


class ReviewPublishedError(ConflictError):
    code = "review_published"
    message = "This review is published and can no longer be changed."


class ResponseExistsError(ConflictError):
    code = "response_exists"
    message = "You have already answered this review."


class AlreadyReportedError(ConflictError):
    code = "already_reported"
    message = "You have already reported this review. Our team will look at it."


class ReportDecidedError(ConflictError):
    code = "report_decided"
    message = "This report has already been decided."


class ReasonRequiredError(InvalidInputError):
    code = "reason_required"
    message = "Say why the review is hidden."


class PhotoNotUsableError(InvalidInputError):
    code = "photo_not_usable"
    message = "One of the photos is not yours, is not a picture or has not finished uploading."
