"""Errors of the disputes domain, each with a stable code."""

from __future__ import annotations

from mesteri.kit.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from mesteri.payments.errors import SplitMismatchError

__all__ = [
    "AmountOutOfRangeError",
    "AttachmentNotUsableError",
    "DisputeClosedError",
    "DisputeDecidedError",
    "DisputeExistsError",
    "DisputeNotFoundError",
    "ExpertFeeUnpaidError",
    "ExpertMissingError",
    "FeeChangedError",
    "InvalidExpertError",
    "MediationNotStartedError",
    "NotAPartyError",
    "NotTheExpertError",
    "OfferNotFoundError",
    "OfferNotOpenError",
    "OwnOfferError",
    "SplitMismatchError",
]


class DisputeNotFoundError(NotFoundError):
    code = "dispute_not_found"
    message = "We could not find this dispute."


class OfferNotFoundError(NotFoundError):
    code = "offer_not_found"
    message = "This dispute has no such offer."


class NotAPartyError(PermissionDeniedError):
    code = "not_a_party"
    message = "Only the client and the professional of this milestone can do this."


class OwnOfferError(PermissionDeniedError):
    code = "own_offer"
    message = "The other side accepts your offer; you cannot accept it yourself."


class NotTheExpertError(PermissionDeniedError):
    code = "not_the_expert"
    message = "Only the expert assigned to this dispute can file the report."


class DisputeExistsError(ConflictError):
    code = "dispute_exists"
    message = "This milestone is already in dispute."


class DisputeClosedError(ConflictError):
    code = "dispute_closed"
    message = "This dispute has ended; nothing can change any more."


class DisputeDecidedError(ConflictError):
    code = "dispute_decided"
    message = "This dispute was already decided; the decision is final."


class OfferNotOpenError(ConflictError):
    code = "offer_not_open"
    message = "This offer was replaced or has expired; it can no longer be accepted."


class MediationNotStartedError(ConflictError):
    code = "mediation_not_started"
    message = "Staff take part once the dispute has moved to mediation."


class FeeChangedError(ConflictError):
    code = "fee_changed"
    message = "The expert's fee is now {fee}. Check it and confirm again."


class ExpertMissingError(ConflictError):
    code = "expert_not_assigned"
    message = "The fee can be paid once staff have assigned an expert."


class ExpertFeeUnpaidError(ConflictError):
    code = "expert_fee_unpaid"
    message = "The expert's fee has not been paid yet."


class AmountOutOfRangeError(InvalidInputError):
    code = "amount_out_of_range"
    message = "The disputed amount must be between {minimum} and {maximum}."


class AttachmentNotUsableError(InvalidInputError):
    code = "attachment_not_usable"
    message = "One of the files is not yours or has not finished uploading."


class InvalidExpertError(InvalidInputError):
    code = "invalid_expert"
    message = "The expert must be a member of staff."
