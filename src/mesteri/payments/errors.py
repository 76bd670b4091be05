"""Errors of the payments domain (stable codes; English source text, translated on render)."""

from __future__ import annotations

from mesteri.kit.errors import ConflictError, DomainError, InvalidInputError, NotFoundError


class InsufficientFundsError(ConflictError):
    code = "insufficient_funds"
    message = "There is not enough money in this balance."


class UnbalancedEntryError(DomainError):
    """A programming error: an entry whose lines do not sum to zero per currency."""

    code = "unbalanced_entry"
    status = 500
    message = "Something went wrong."


class UnsupportedCurrencyError(InvalidInputError):
    code = "unsupported_currency"
    message = "Payments here are in {currency}."


class AmountTooSmallError(InvalidInputError):
    code = "amount_too_small"
    message = "The amount must be at least {minimum}."


class HoldNotFoundError(NotFoundError):
    code = "hold_not_found"
    message = "We could not find this escrow payment."


class PaymentNotFoundError(NotFoundError):
    code = "payment_not_found"
    message = "We could not find this payment."


class HoldSettledError(ConflictError):
    code = "hold_settled"
    message = "This escrow payment was already settled; it cannot be changed."


class HoldNotFundedError(ConflictError):
    code = "hold_not_funded"
    message = "This escrow payment has not been paid yet."


class HoldFrozenError(ConflictError):
    code = "hold_frozen"
    message = "This escrow payment is frozen while a dispute is open."


class RefundTooLargeError(ConflictError):
    code = "refund_too_large"
    message = "At most {available} can still be refunded."


class SplitMismatchError(InvalidInputError):
    code = "split_mismatch"
    message = "The two parts must add up to the amount held, {held}."


class PayoutAccountMissingError(ConflictError):
    code = "payout_account_inactive"
    message = "Finish setting up payouts before withdrawing money."


class PayoutNotVerifiedError(ConflictError):
    code = "pro_not_verified"
    message = "Payouts start once your professional profile is verified."


class PayoutTooLargeError(ConflictError):
    code = "payout_exceeds_available"
    message = "You can withdraw at most {available}."


class PaymentAlreadyCompletedError(ConflictError):
    code = "payment_completed"
    message = "This payment is already complete."


class UnknownProviderError(NotFoundError):
    code = "unknown_provider"
    message = "We do not know this payment provider."


class WebhookRejectedError(DomainError):
    code = "invalid_signature"
    status = 400
    message = "The webhook signature or timestamp is not valid."


class WebhookTooEarlyError(ConflictError):
    """An event about an object we have not recorded yet; the provider will retry."""

    code = "unknown_object"
    message = "We do not know this object yet; please retry."
