"""Errors of the pros domain, each with a stable code."""

from __future__ import annotations

from mesteri.kit.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)


class ProNotFoundError(NotFoundError):
    code = "pro_not_found"
    message = "We could not find this professional."


class NoProProfileError(NotFoundError):
    code = "no_pro_profile"
    message = "You have no professional profile yet."


class NotAProError(PermissionDeniedError):
    code = "not_a_pro"
    message = "Only professionals can do this."


class InvalidBusinessIdError(InvalidInputError):
    code = "invalid_business_id"
    message = "This is not a valid {name}: the check digit does not match."


class InvalidBusinessTypeError(InvalidInputError):
    code = "invalid_business_type"
    message = "Choose one of the business types offered."


class BusinessIdRequiredError(InvalidInputError):
    code = "business_id_required"
    message = "A registered business needs its {name}."


class InvalidCraftsError(InvalidInputError):
    code = "invalid_crafts"
    message = "Choose one main craft and at most nine others."


class InvalidRateError(InvalidInputError):
    code = "invalid_rate"
    message = "The lowest rate cannot be above the highest."


class InvalidLanguageError(InvalidInputError):
    code = "invalid_language"
    message = "Unknown language code."


class DocumentsRequiredError(InvalidInputError):
    code = "documents_required"
    message = "Add an identity document to the request."


class CertificateRequiredError(DocumentsRequiredError):
    message = "Add the business registration certificate to the request."


class ProfileIncompleteError(ConflictError):
    code = "profile_incomplete"
    message = "Fill in your name, main craft and place before asking for verification."


class SubmissionNotFoundError(NotFoundError):
    code = "verification_not_found"
    message = "We could not find this verification request."


class RejectionReasonRequiredError(InvalidInputError):
    code = "reason_required"
    message = "Tell the professional why, so they can fix it."


class SortNeedsPlaceError(InvalidInputError):
    code = "sort_needs_place"
    message = "Sorting by distance needs a place or coordinates."


class AddressNotFoundError(NotFoundError):
    code = "address_not_found"
    message = "We could not find this address."


class TooManyAddressesError(InvalidInputError):
    code = "too_many_addresses"
    message = "You can keep at most ten addresses. Delete one first."
