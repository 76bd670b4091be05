"""Diacritic folding shared by Python and SQL.

The embedded PostgreSQL ships without the ``unaccent`` extension, so folding is a plain
``translate()`` over the letters our markets write (Romanian, Hungarian, common Latin),
wrapped in the IMMUTABLE SQL function ``mesteri_fold`` (created by migration 0003), which
generated columns and indexes can use. ``fold`` is the same mapping in Python.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

FOLD_FROM = "ĂăÂâÎîȘșŞşȚțŢţÁáÉéÍíÓóÖöŐőÚúÜüŰűÀàÈèÇçÑñÄäËëÏïÔôÛûŁłŽžČčŠšĐđ"
FOLD_TO = "AaAaIiSsSsTtTtAaEeIiOoOoOoUuUuUuAaEeCcNnAaEeIiOoUuLlZzCcSsDd"
assert len(FOLD_FROM) == len(FOLD_TO)

_TABLE = str.maketrans(FOLD_FROM, FOLD_TO)

FOLD_FUNCTION_SQL = (
    "CREATE OR REPLACE FUNCTION mesteri_fold(value text) RETURNS text "
    "LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT AS "
    f"$$ SELECT lower(translate(value, '{FOLD_FROM}', '{FOLD_TO}')) $$"
)


def fold(value: str) -> str:
    """Lower-case ``value`` without diacritics: ``"Brașov"`` → ``"brasov"``."""
    return value.translate(_TABLE).lower().replace("\x00", "")


def clean_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL characters: drop them instead of failing later."""
    return value.replace("\x00", "")


def _strip(value: str) -> str:
    return value.strip()


# A string field or parameter whose NUL characters are dropped on parsing.
Clean = Annotated[str, AfterValidator(clean_text)]
# Free text without NUL characters or surrounding blanks (limits apply before the strip).
Trimmed = Annotated[Clean, AfterValidator(_strip)]
