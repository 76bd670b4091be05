"""Server-rendered pages: templates, CSRF protection, and errors as problem details or pages."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection

from mesteri.config import get_settings
from mesteri.kit import i18n
from mesteri.kit.errors import CsrfError, DomainError, InvalidInputError
from mesteri.kit.money import Money
from mesteri.kit.security import constant_time_equals, new_token, sign

log = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
CSRF_COOKIE = "mesteri_csrf"
CSRF_FIELD = "csrf_token"
PROBLEM_JSON = "application/problem+json"


def _template_gettext(message: str) -> str:
    return i18n.translations(i18n.get_language()).gettext(message)


def _template_ngettext(singular: str, plural: str, n: int) -> str:
    return i18n.translations(i18n.get_language()).ngettext(singular, plural, n)


def build_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=select_autoescape(["html", "xml"]),
        extensions=["jinja2.ext.i18n"],
        enable_async=False,
        auto_reload=False,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        _template_gettext, _template_ngettext, newstyle=True
    )
    return env


templates = build_environment()


# ---- CSRF: a random token in a cookie, its HMAC in every form (signed double submit) ----


def csrf_token(request: Request) -> str:
    raw = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf", None)
    if not raw:
        raw = new_token(24)
        request.state.new_csrf = raw
    return sign(get_settings().secret_key, raw)


async def reject_nul_in_query(connection: HTTPConnection) -> None:
    """PostgreSQL text cannot hold NUL; a query parameter with one is refused, not a 500.
    (Any connection: WebSockets pass through the app's dependencies too.)"""
    if "%00" in connection.url.query or "\x00" in connection.url.query:
        raise InvalidInputError("Text must not contain NUL characters.")


async def csrf_protect(request: Request) -> None:
    """Dependency for every page router: unsafe methods need a valid form token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    cookie = request.cookies.get(CSRF_COOKIE)
    form = await request.form()
    sent = form.get(CSRF_FIELD)
    if not cookie or not isinstance(sent, str):
        raise CsrfError()
    if not constant_time_equals(sent, sign(get_settings().secret_key, cookie)):
        raise CsrfError()


def _set_csrf_cookie(request: Request, response: Response) -> None:
    new = getattr(request.state, "new_csrf", None)
    if new:
        settings = get_settings()
        response.set_cookie(
            CSRF_COOKIE, new, httponly=True, secure=settings.cookie_secure, samesite="lax"
        )


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    lang = i18n.get_language()
    settings = get_settings()
    base = {
        "request": request,
        "lang": lang,
        "dir": "rtl" if i18n.is_rtl(lang) else "ltr",
        "csrf_field": Markup(  # noqa: S704 - the token is our own urlsafe base64
            f'<input type="hidden" name="{CSRF_FIELD}" value="{csrf_token(request)}">'
        ),
        "languages": LANGUAGE_NAMES,
        "market": settings.market_profile,
        "user": getattr(request.state, "user", None),
        "dev_tools": settings.dev_tools_enabled,
    }
    base.update(context or {})
    html = templates.get_template(template).render(base)
    response = HTMLResponse(html, status_code=status_code)
    _set_csrf_cookie(request, response)
    return response


LANGUAGE_NAMES = {"ro": "Română", "en": "English", "hu": "Magyar", "he": "עברית"}


# ---- Errors: problem details for the API, a friendly localised page for browsers ----


class FormError(Exception):
    """A domain error on a page form: the form is shown again with the message.

    The page is rendered where the error happens (while the request's objects are still
    loaded) and travels as an exception, so the transaction rolls back (or keeps a
    counted attempt) exactly as it would for the API.
    """

    def __init__(self, response: Response, error: DomainError) -> None:
        super().__init__(str(error))
        self.response = response
        self.persist_on_error = error.persist_on_error


@contextmanager
def form_errors(request: Request, template: str, **context: Any) -> Iterator[None]:
    try:
        yield
    except DomainError as exc:
        page = {
            **context,
            "error": _translate(exc),
            "error_field": exc.field,
            "error_code": exc.code,
        }
        response = render(request, template, page, status_code=exc.status)
        response.headers.update(exc.headers)
        raise FormError(response, exc) from exc


async def handle_form_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FormError)
    return exc.response


def wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def problem(
    request: Request,
    *,
    status: int,
    code: str,
    title: str,
    detail: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://mesteri.ro/problems/{code}",
        "title": title,
        "status": status,
        "code": code,
        "instance": request.url.path,
        "request_id": getattr(request.state, "request_id", None),
    }
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in extra.items() if v is not None})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _translate(error: DomainError) -> str:
    text = i18n.translations(i18n.get_language()).gettext(error.msgid)
    return text.format(**error.params) if error.params else text


def error_response(
    request: Request,
    *,
    status: int,
    code: str,
    message: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """The same error as problem details under ``/api`` and as a localised page elsewhere."""
    if wants_json(request):
        return problem(
            request,
            status=status,
            code=code,
            title=message,
            detail=message,
            headers=headers,
            **extra,
        )
    # The request's transaction was rolled back, which expires the signed-in user's ORM
    # object: the page reads the authentication snapshot instead.
    snapshot = getattr(request.state, "identity", None)
    if snapshot is not None:
        request.state.user = snapshot
    response = render(
        request,
        "error.html",
        {"message": message, "code": code, "status": status},
        status_code=status,
    )
    response.headers.update(headers or {})
    return response


async def handle_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    if exc.status == 401 and not wants_json(request):
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"/signin?next={target}", status_code=303)
    return error_response(
        request,
        status=exc.status,
        code=exc.code,
        message=_translate(exc),
        headers=exc.headers,
        field=exc.field,
    )


async def handle_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
        errors.append({"field": ".".join(loc) or None, "message": str(err.get("msg", ""))})
    return error_response(
        request,
        status=422,
        code="validation_error",
        message=i18n.gettext("Some of the information is not valid."),
        errors=errors,
    )


async def handle_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        code, message = "not_found", i18n.gettext("We could not find what you were looking for.")
    else:
        code = "method_not_allowed" if exc.status_code == 405 else "http_error"
        message = i18n.gettext("This request cannot be handled here.")
    return error_response(
        request,
        status=exc.status_code,
        code=code,
        message=message,
        headers=getattr(exc, "headers", None),
    )


async def handle_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", exc_info=exc)
    return error_response(
        request,
        status=500,
        code="internal_error",
        message=i18n.gettext("Something went wrong on our side. Please try again."),
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FormError, handle_form_error)
    app.add_exception_handler(DomainError, handle_domain_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_error)
    app.add_exception_handler(Exception, handle_unexpected)


def form_amount(text: str, currency: str, field: str) -> int:
    """A form's amount in major units (``150`` or ``150,50``) as minor units; a clear error
    naming the field otherwise."""
    try:
        return Money.parse(text, currency).amount
    except ValueError as exc:
        raise InvalidInputError("Enter an amount such as 150 or 150.50.", field=field) from exc


def see_other(target: str) -> RedirectResponse:
    """The answer to a form post: go (GET) to ``target``."""
    return RedirectResponse(target, status_code=303)


def wants_page_json(request: Request) -> bool:
    """A page's own script posting its form (``Accept: application/json``) gets data back
    instead of a redirect."""
    return "application/json" in request.headers.get("accept", "")


def local_path(target: str | None) -> str:
    """A path of this site to go back to, or ``/``: an open redirect would let phishing
    pages borrow our name (``//host``, ``/\\host`` and absolute URLs are refused)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
