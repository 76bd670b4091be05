"""Catalog: the category taxonomy and the places gazetteer (reference data)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from mesteri.kit.db import Base


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("categories.id"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))  # home | software
    icon: Mapped[str] = mapped_column(String(16))
    names: Mapped[dict[str, str]] = mapped_column(JSONB)  # {"en": …, "ro": …, "hu": …, "he": …}
    search_key: Mapped[str] = mapped_column(String(400))  # folded names in every language
    position: Mapped[int] = mapped_column(Integer)


class Place(Base):
    __tablename__ = "places"
    __table_args__ = (
        Index(
            "ix_places_search_key",
            "search_key",
            postgresql_ops={"search_key": "text_pattern_ops"},
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    country: Mapped[str] = mapped_column(String(2), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # capital | county | district | city
    name: Mapped[str] = mapped_column(String(80))
    county: Mapped[str] = mapped_column(String(80))
    names: Mapped[dict[str, Any]] = mapped_column(JSONB)  # other spellings, e.g. {"he": …}
    search_key: Mapped[str] = mapped_column(String(80))  # folded name
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    population: Mapped[int] = mapped_column(Integer)
