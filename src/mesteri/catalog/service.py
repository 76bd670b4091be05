"""Catalog reads: categories (with their sub-trees) and places.

The taxonomy and the gazetteer are reference data shipped with the code (``reference``);
the tree walks here read that in-memory copy, so search never spends a query on them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import func, or_, select

from mesteri.catalog import reference
from mesteri.catalog.models import Place
from mesteri.catalog.reference import CategoryRow
from mesteri.kit.db import ReadSession
from mesteri.kit.errors import NotFoundError
from mesteri.kit.text import clean_text, fold


class UnknownCategoryError(NotFoundError):
    code = "unknown_category"
    message = "There is no such category."


class UnknownPlaceError(NotFoundError):
    code = "unknown_place"
    message = "There is no such place."


def category_name(row: CategoryRow, language: str) -> str:
    return row.names.get(language) or row.names["en"]


@cache
def _by_id() -> dict[uuid.UUID, CategoryRow]:
    return {c.id: c for c in reference.categories()}


@cache
def _by_slug() -> dict[str, CategoryRow]:
    return {c.slug: c for c in reference.categories()}


@cache
def _children() -> dict[uuid.UUID | None, tuple[uuid.UUID, ...]]:
    tree: dict[uuid.UUID | None, list[uuid.UUID]] = {}
    for c in reference.categories():
        tree.setdefault(c.parent_id, []).append(c.id)
    return {k: tuple(v) for k, v in tree.items()}


def list_categories() -> Sequence[CategoryRow]:
    return reference.categories()


def get_category(ref: uuid.UUID | str) -> CategoryRow:
    """A category by id or slug."""
    row: CategoryRow | None
    if isinstance(ref, uuid.UUID):
        row = _by_id().get(ref)
    else:
        row = _by_slug().get(ref)
        if row is None:
            try:
                row = _by_id().get(uuid.UUID(ref))
            except ValueError:
                row = None
    if row is None:
        raise UnknownCategoryError(field="category")
    return row


def subtree(category: uuid.UUID) -> list[uuid.UUID]:
    """The category and every category below it."""
    out, stack = [], [category]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(_children().get(node, ()))
    return out


def ancestors(category: uuid.UUID) -> list[uuid.UUID]:
    out = []
    row = _by_id().get(category)
    while row is not None and row.parent_id is not None:
        out.append(row.parent_id)
        row = _by_id().get(row.parent_id)
    return out


def is_category(category: uuid.UUID) -> bool:
    return category in _by_id()


@cache
def _places() -> dict[uuid.UUID, dict[str, object]]:
    return {p["id"]: p for p in reference.places()}


def place_coordinates(place: uuid.UUID) -> tuple[float, float]:
    row = _places().get(place)
    if row is None:
        raise UnknownPlaceError(field="place_id")
    lat, lon = row["lat"], row["lon"]
    assert isinstance(lat, float)
    assert isinstance(lon, float)
    return lat, lon


def place_info(place: uuid.UUID | None) -> dict[str, object] | None:
    return _places().get(place) if place else None


def place_name(place: uuid.UUID | None) -> str | None:
    row = _places().get(place) if place else None
    return str(row["name"]) if row else None


async def search_places(
    session: ReadSession, q: str, *, country: str | None = None, limit: int = 20
) -> Sequence[Place]:
    """Diacritic-insensitive prefix match on the name (``brasov`` finds Brașov), biggest first."""
    q = clean_text(q).strip()
    query = select(Place)
    term = fold(q)
    if term:
        query = query.where(
            or_(
                Place.search_key.startswith(term, autoescape=True),
                Place.names["he"].astext.startswith(q, autoescape=True),
                func.mesteri_fold(Place.county).startswith(term, autoescape=True),
            )
        )
    if country:
        query = query.where(Place.country == country.upper())
    query = query.order_by(Place.population.desc(), Place.name).limit(limit)
    return (await session.scalars(query)).all()


def category_options(language: str) -> list[dict[str, Any]]:
    """For selects: parents first, children indented by depth."""
    depth: dict[uuid.UUID, int] = {}
    out = []
    for c in list_categories():
        depth[c.id] = depth[c.parent_id] + 1 if c.parent_id else 0
        out.append(
            {
                "id": c.id,
                "slug": c.slug,
                "name": category_name(c, language),
                "depth": depth[c.id],
                "icon": c.icon,
            }
        )
    return out


def place_options(country: str, language: str) -> list[dict[str, Any]]:
    """The market's places for selects, by name in the page's language."""
    rows = [p for p in reference.places() if p["country"] == country]
    return sorted(
        (
            {"id": p["id"], "name": p["names"].get(language) or p["name"], "county": p["county"]}
            for p in rows
        ),
        key=lambda p: str(p["name"]),
    )
