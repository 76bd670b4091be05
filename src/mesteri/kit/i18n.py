"""Translations (Babel catalogs) and the language of the current request.

Catalogs live in ``mesteri/locale/<lang>/LC_MESSAGES/messages.po`` and are compiled in
memory at first use, so there is no build step. The language is chosen from the user's
own choice (account, or the switcher's cookie), then ``Accept-Language``, then the
market's default.
"""

from __future__ import annotations

import gettext as gettext_module
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from mesteri.config import RTL_LANGUAGES, SUPPORTED_LANGUAGES

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
LANGUAGE_COOKIE = "mesteri_lang"

_language: ContextVar[str] = ContextVar("language", default="en")


@cache
def translations(language: str) -> gettext_module.NullTranslations:
    po = LOCALE_DIR / language / "LC_MESSAGES" / "messages.po"
    if language == "en" or not po.exists():
        return gettext_module.NullTranslations()
    with po.open("rb") as fh:
        catalog = read_po(fh, locale=language)
    buffer = BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


def parse_accept_language(header: str) -> list[str]:
    """Languages from an ``Accept-Language`` header, best first (``q`` weights honoured)."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        piece = part.strip()
        if not piece:
            continue
        tag, _, params = piece.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        weighted.append((-quality, index, tag.strip().lower().split("-")[0]))
    return [lang for q, _, lang in sorted(weighted) if q < 0]


def negotiate(*, chosen: str | None, accept_language: str | None, default: str) -> str:
    if chosen in SUPPORTED_LANGUAGES:
        return chosen
    for lang in parse_accept_language(accept_language or ""):
        if lang in SUPPORTED_LANGUAGES:
            return lang
    return default


def set_language(language: str) -> None:
    _language.set(language if language in SUPPORTED_LANGUAGES else "en")


def get_language() -> str:
    return _language.get()


@contextmanager
def speaking(language: str) -> Iterator[None]:
    """Render in ``language`` inside the block (mail to someone else, in their language)."""
    token = _language.set(language if language in SUPPORTED_LANGUAGES else "en")
    try:
        yield
    finally:
        _language.reset(token)


def is_rtl(language: str | None = None) -> bool:
    return (language or get_language()) in RTL_LANGUAGES


def gettext(message: str, **params: Any) -> str:
    text = translations(get_language()).gettext(message)
    return text.format(**params) if params else text


def lazy(message: str) -> str:
    """Marks a string for extraction; it is translated where it is shown."""
    return message


class LanguageMiddleware:
    """Sets the request's language from the switcher's cookie or ``Accept-Language``.

    Signed-in pages refine it with the account's own language (see ``accounts.pages``).
    """

    def __init__(self, app: Any, default: str) -> None:
        self.app = app
        self.default = default

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            cookie = accept = b""
            for name, value in scope["headers"]:
                if name == b"cookie":
                    cookie = value
                elif name == b"accept-language":
                    accept = value
            chosen = _cookie_value(cookie.decode("latin-1"), LANGUAGE_COOKIE) if cookie else None
            if chosen is None and not accept:
                set_language(self.default)
            else:
                set_language(
                    negotiate(
                        chosen=chosen,
                        accept_language=accept.decode("latin-1"),
                        default=self.default,
                    )
                )
        await self.app(scope, receive, send)


def _cookie_value(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None
