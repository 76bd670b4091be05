"""Errors of the contracts domain, each with a stable code."""

from __future__ import annotations

from mesteri.kit.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)


class ContractNotFoundError(NotFoundError):
    code = "contract_not_found"
    message = "We could not find this contract."


class VersionNotFoundError(NotFoundError):
    code = "contract_version_not_found"
    message = "This contract has no version {number}."


class NotAPartyError(PermissionDeniedError):
    code = "not_a_party"
    message = "Only the client and the professional of this contract can do this."


class ConsentRequiredError(InvalidInputError):
    code = "consent_required"
    message = "Tick the box to confirm that you agree to this contract."


class NameMismatchError(InvalidInputError):
    code = "name_mismatch"
    message = "Type your full name as it appears on your account: {name}."


class StaleDocumentError(ConflictError):
    code = "stale_document"
    message = "The document changed since you opened it. Review the new version and sign again."


class NothingToSignError(ConflictError):
    code = "nothing_to_sign"
    message = "There is no version of this contract waiting for signatures."


class ContractClosedError(ConflictError):
    code = "contract_closed"
    message = "This contract has ended; it cannot change any more."


class ContractNotActiveError(ConflictError):
    code = "contract_not_active"
    message = "Amendments are possible once both parties have signed the contract."


class AlreadySignedError(ConflictError):
    code = "already_signed"
    message = "Both parties have signed; the contract can no longer be withdrawn."


class AmendmentUnchangedError(InvalidInputError):
    code = "amendment_unchanged"
    message = "The amendment changes nothing. Edit at least one milestone."


class PriceMismatchError(InvalidInputError):
    code = "amounts_mismatch"
    message = "The milestone amounts add up to {total}, not to the price."


class AmountTooSmallError(InvalidInputError):
    code = "amount_too_small"
    message = "Each milestone needs at least {minimum}."
