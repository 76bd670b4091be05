"""Reference data shipped with the code: categories and places, from ``data/*.csv``.

Ids are UUIDv5 of the slug (categories) or country + name (places), so they are the same
in every database and loading is idempotent (an upsert): migration 0003 loads them, and
re-running ``load`` after editing the files updates rows in place.
"""

from __future__ import annotations

import csv
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects.postgresql import insert

from mesteri.catalog.models import Category, Place
from mesteri.kit.text import fold

DATA = Path(__file__).resolve().parent / "data"
NAMESPACE = uuid.UUID("6c1f3f52-2b0e-4c55-9a39-7d4a8f6b9e10")
LANGUAGES = ("en", "ro", "hu", "he")


def category_id(slug: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"category:{slug}")


def place_id(country: str, name: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, f"place:{country}:{name}")


@dataclass(frozen=True)
class CategoryRow:
    id: uuid.UUID
    slug: str
    parent_id: uuid.UUID | None
    kind: str
    icon: str
    names: dict[str, str]
    position: int


@cache
def categories() -> tuple[CategoryRow, ...]:
    with (DATA / "categories.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return tuple(
        CategoryRow(
            id=category_id(r["slug"]),
            slug=r["slug"],
            parent_id=category_id(r["parent"]) if r["parent"] else None,
            kind=r["kind"],
            icon=r["icon"],
            names={lang: r[lang] for lang in LANGUAGES},
            position=i,
        )
        for i, r in enumerate(rows)
    )


@cache
def places() -> tuple[dict[str, Any], ...]:
    with (DATA / "places.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return tuple(
        {
            "id": place_id(r["country"], r["name"]),
            "country": r["country"],
            "kind": r["kind"],
            "name": r["name"],
            "county": r["county"],
            "names": {"he": r["name_he"]} if r["name_he"] else {},
            "search_key": fold(r["name"]),
            "lat": float(r["lat"]),
            "lon": float(r["lon"]),
            "population": int(r["population"]),
        }
        for r in rows
    )


def load(conn: Connection) -> None:
    """Upsert every category and place (synchronous: migrations run on psycopg)."""
    cats = [
        {
            "id": c.id,
            "slug": c.slug,
            "parent_id": c.parent_id,
            "kind": c.kind,
            "icon": c.icon,
            "names": c.names,
            "search_key": " ".join(fold(n) for n in c.names.values()),
            "position": c.position,
        }
        for c in categories()
    ]
    stmt = insert(Category).values(cats)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[Category.id],
            set_={k: stmt.excluded[k] for k in cats[0] if k != "id"},
        )
    )
    rows = list(places())
    pstmt = insert(Place).values(rows)
    conn.execute(
        pstmt.on_conflict_do_update(
            index_elements=[Place.id],
            set_={k: pstmt.excluded[k] for k in rows[0] if k != "id"},
        )
    )
