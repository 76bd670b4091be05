"""Domain errors: a stable machine code, an HTTP status and a translatable message.

The same error renders as RFC 9457 problem details on the API and as a localised page
in the browser (see ``kit.web_errors``).
"""

from __future__ import annotations

from typing import Any, ClassVar


class DomainError(Exception):
    code: ClassVar[str] = "error"
    status: ClassVar[int] = 400
    # English source text; translated at render time. ``{name}`` placeholders come from params.
    message: ClassVar[str] = "Something went wrong."
    # True when what the transaction did before the error must still be committed
    # (a failed code attempt is counted even though the request fails).
    persist_on_error: ClassVar[bool] = False

    def __init__(
        self,
        message: str | None = None,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
        **params: Any,
    ) -> None:
        self.msgid = message or self.message
        self.field = field
        self.params = params
        self.headers = headers or {}
        super().__init__(self.msgid.format(**params) if params else self.msgid)


class NotFoundError(DomainError):
    code = "not_found"
    status = 404
    message = "We could not find what you were looking for."


class PermissionDeniedError(DomainError):
    code = "forbidden"
    status = 403
    message = "You do not have access to this."


class NotAuthenticatedError(DomainError):
    code = "not_authenticated"
    status = 401
    message = "Please sign in to continue."


class ConflictError(DomainError):
    code = "conflict"
    status = 409
    message = "This cannot be done in the current state."


class InvalidInputError(DomainError):
    code = "invalid_input"
    status = 422
    message = "Some of the information is not valid."


class RateLimitedError(DomainError):
    code = "rate_limited"
    status = 429
    message = "Too many attempts. Please try again in {retry_after} seconds."

    def __init__(self, retry_after: int) -> None:
        retry_after = max(1, retry_after)
        super().__init__(headers={"Retry-After": str(retry_after)}, retry_after=retry_after)


class CsrfError(DomainError):
    code = "csrf_failed"
    status = 403
    message = "Your form expired. Please reload the page and try again."
