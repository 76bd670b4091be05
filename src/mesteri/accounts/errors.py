"""Errors of the accounts domain, each with a stable code."""

from __future__ import annotations

from mesteri.kit.errors import (
    ConflictError,
    DomainError,
    InvalidInputError,
    NotAuthenticatedError,
    PermissionDeniedError,
)


class EmailTakenError(ConflictError):
    code = "email_taken"
    message = "An account with this e-mail already exists."


class PhoneTakenError(ConflictError):
    code = "phone_taken"
    message = "An account with this phone number already exists."


class InvalidPhoneError(InvalidInputError):
    code = "invalid_phone"
    message = "This is not a valid phone number. Write it like {example}."


class InvalidEmailError(InvalidInputError):
    code = "invalid_email"
    message = "This is not a valid e-mail address."


class WeakPasswordError(InvalidInputError):
    code = "weak_password"


class InvalidCredentialsError(NotAuthenticatedError):
    code = "invalid_credentials"
    message = "The e-mail, phone or password is not right."


class TotpRequiredError(NotAuthenticatedError):
    code = "totp_required"
    message = "Enter the 6-digit code from your authenticator app."


class InvalidTotpError(NotAuthenticatedError):
    code = "invalid_totp"
    message = "The authenticator code is not right."


class AccountInactiveError(PermissionDeniedError):
    code = "account_inactive"
    message = "This account is suspended or closed."


class InvalidTokenError(NotAuthenticatedError):
    code = "invalid_token"
    message = "Your session has ended. Please sign in again."


class RefreshReuseError(NotAuthenticatedError):
    code = "refresh_token_reused"
    message = "This sign-in was used twice, so we signed the device out to keep you safe."
    # The family's revocation must be kept even though the request fails.
    persist_on_error = True


class MfaRequiredError(PermissionDeniedError):
    code = "mfa_required"
    message = "Staff accounts must turn on two-factor authentication first."


class InvalidCodeError(InvalidInputError):
    code = "invalid_code"
    message = "The code is not right. {remaining} attempts left."
    persist_on_error = True  # the failed attempt is counted


class CodeExpiredError(InvalidInputError):
    code = "code_expired"
    message = "The code has expired. Ask for a new one."
    persist_on_error = True


class CodeExhaustedError(InvalidInputError):
    code = "code_exhausted"
    message = "Too many wrong codes. Ask for a new one."
    persist_on_error = True


class NoPendingCodeError(InvalidInputError):
    code = "no_pending_code"
    message = "There is no code waiting for this. Ask for a new one."


class ResendTooSoonError(DomainError):
    code = "resend_too_soon"
    status = 429
    message = "Please wait {retry_after} seconds before asking for another code."

    def __init__(self, retry_after: int) -> None:
        super().__init__(headers={"Retry-After": str(retry_after)}, retry_after=retry_after)


class NothingToVerifyError(ConflictError):
    code = "nothing_to_verify"
    message = "This is already verified."


class StaffCannotDisableMfaError(ConflictError):
    code = "mfa_required_for_staff"
    message = "Staff accounts cannot turn off two-factor authentication."


class RoleNotAllowedError(PermissionDeniedError):
    code = "role_not_allowed"
    message = "This role cannot be chosen here."
