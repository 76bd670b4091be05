"""``GET /api/v1/categories`` and ``GET /api/v1/places``: public reference data."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel

from mesteri.catalog import service
from mesteri.config import get_settings
from mesteri.kit.db import DbRead
from mesteri.kit.i18n import get_language
from mesteri.kit.pagination import Page
from mesteri.kit.text import Clean

router = APIRouter(tags=["catalog"])


class CategoryOut(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    parent_id: uuid.UUID | None
    kind: str
    icon: str
    names: dict[str, str]


class PlaceOut(BaseModel):
    id: uuid.UUID
    name: str
    county: str
    lat: float
    lon: float
    country: str
    kind: str


@router.get("/categories", response_model=Page[CategoryOut])
async def categories(response: Response) -> Page[CategoryOut]:
    """The whole taxonomy, parents before children; ``name`` in the request's language."""
    language = get_language()
    response.headers["Cache-Control"] = "public, max-age=300"
    return Page(
        items=[
            CategoryOut(
                id=c.id,
                slug=c.slug,
                name=service.category_name(c, language),
                parent_id=c.parent_id,
                kind=c.kind,
                icon=c.icon,
                names=c.names,
            )
            for c in service.list_categories()
        ]
    )


@router.get("/places", response_model=Page[PlaceOut])
async def places(
    session: DbRead,
    q: Clean = Query(default="", max_length=80),
    country: str | None = Query(default=None, pattern="^[A-Za-z]{2}$"),
    limit: int = Query(default=20, ge=1, le=100),
) -> Page[PlaceOut]:
    """Places whose name starts with ``q``, without regard to diacritics; defaults to the
    market's country when ``country`` is not given."""
    language = get_language()
    country = country or get_settings().market_profile.phone_region
    rows = await service.search_places(session, q, country=country, limit=limit)
    return Page(
        items=[
            PlaceOut(
                id=p.id,
                name=p.names.get(language) or p.name,
                county=p.county,
                lat=p.lat,
                lon=p.lon,
                country=p.country,
                kind=p.kind,
            )
            for p in rows
        ]
    )
