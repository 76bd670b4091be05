"""Errors of the media domain. Rejections are recorded (the upload row says why)."""

from __future__ import annotations

from mesteri.kit.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)


class UploadNotFoundError(NotFoundError):
    code = "upload_not_found"
    message = "We could not find this file."


class UploadForbiddenError(PermissionDeniedError):
    code = "upload_forbidden"
    message = "You do not have access to this file."


class UnknownPurposeError(InvalidInputError):
    code = "upload_purpose"
    message = "Uploads for this purpose are not accepted."


class UploadNotReadyError(ConflictError):
    code = "upload_not_ready"
    message = "This file is not ready yet."


class UploadTypeNotAllowedError(InvalidInputError):
    code = "upload_type_not_allowed"
    message = "This kind of file is not accepted here. Allowed: {allowed}."
    persist_on_error = True


class UploadTooLargeError(InvalidInputError):
    code = "upload_too_large"
    message = "The file is too large. The limit is {limit_mb} MB."
    persist_on_error = True


class UploadMissingError(InvalidInputError):
    code = "upload_missing"
    message = "The file was not received. Please upload it again."


class UploadDamagedError(InvalidInputError):
    code = "upload_damaged"
    message = "The image could not be read. It may be damaged."
    persist_on_error = True


class BadSignatureError(PermissionDeniedError):
    code = "bad_signature"
    message = "This link is not valid."


class ExpiredSignatureError(PermissionDeniedError):
    code = "link_expired"
    message = "This link has expired. Please ask for a new one."
