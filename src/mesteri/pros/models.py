"""Professionals: profiles, crafts, portfolio, verification, saved pros, client profiles."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from mesteri.kit.db import Base
from mesteri.kit.ids import new_id


class Availability(enum.StrEnum):
    AVAILABLE = "available"
    BUSY = "busy"
    VACATION = "vacation"


class VerificationState(enum.StrEnum):
    """The profile's badge state (``none`` until something was submitted)."""

    NONE = "none"
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


class SubmissionState(enum.StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"


# Folded (diacritic-free) text, indexed for full-text search; name and crafts weigh most.
SEARCH_VECTOR_SQL = (
    "setweight(to_tsvector('simple'::regconfig, mesteri_fold(display_name)), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, mesteri_fold(search_text)), 'B')"
)


# The columns search filters read, carried by the ordered indexes (INCLUDE) so a sorted
# walk never visits the table (pros/search.py reads them from these indexes).
SORT_INDEX_INCLUDE = (
    "market",
    "lat",
    "lon",
    "category_ids",
    "search_vector",
    "rating_avg",
    "rate_min",
    "availability",
    "verification_state",
    "languages",
)
NO_RATE = 2**31 - 1  # price_key of a pro without a rate: last in "cheapest first"


class ProProfile(Base):
    __tablename__ = "pro_profiles"
    __table_args__ = (
        CheckConstraint("radius_km BETWEEN 1 AND 500", name="radius"),
        CheckConstraint("rate_min IS NULL OR rate_min >= 0", name="rate_min"),
        CheckConstraint(
            "rate_max IS NULL OR rate_min IS NULL OR rate_max >= rate_min", name="rate_range"
        ),
        CheckConstraint("availability IN ('available', 'busy', 'vacation')", name="availability"),
        CheckConstraint(
            "verification_state IN ('none', 'pending', 'verified', 'rejected')",
            name="verification_state",
        ),
        Index("ix_pro_profiles_search_vector", "search_vector", postgresql_using="gin"),
        Index("ix_pro_profiles_category_ids", "category_ids", postgresql_using="gin"),
        Index(
            "ix_pro_profiles_location",
            text("point(lon, lat)"),
            postgresql_using="gist",
            postgresql_where=text("listed"),
        ),
        # Relevance: walked in order, index-only.
        Index(
            "ix_pro_profiles_rank",
            text("rank_base DESC"),
            text("id DESC"),
            postgresql_include=list(SORT_INDEX_INCLUDE),
            postgresql_where=text("listed"),
        ),
        # Rating and price sorts: walked in order from the keyset cursor, index-only.
        Index(
            "ix_pro_profiles_rating",
            text("rating_rank DESC"),
            text("id DESC"),
            postgresql_include=list(SORT_INDEX_INCLUDE),
            postgresql_where=text("listed"),
        ),
        Index(
            "ix_pro_profiles_price",
            "price_key",
            "id",
            postgresql_include=list(SORT_INDEX_INCLUDE),
            postgresql_where=text("listed"),
        ),
        Index(
            "ix_pro_profiles_name_key", "name_key", postgresql_ops={"name_key": "text_pattern_ops"}
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("users.id"), unique=True)
    market: Mapped[str] = mapped_column(String(2))
    display_name: Mapped[str] = mapped_column(String(120))
    name_key: Mapped[str] = mapped_column(String(120))  # folded display name (autocomplete)
    bio: Mapped[str] = mapped_column(Text, default="")
    business_type: Mapped[str | None] = mapped_column(String(20))
    business_id: Mapped[str | None] = mapped_column(String(20))
    place_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("places.id"))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    radius_km: Mapped[int] = mapped_column(Integer, default=25)
    rate_min: Mapped[int | None] = mapped_column(Integer)  # minor units per hour
    rate_max: Mapped[int | None] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    availability: Mapped[str] = mapped_column(String(10), default=Availability.AVAILABLE)
    languages: Mapped[list[str]] = mapped_column(ARRAY(String(5)), default=list)
    certifications: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    insurance: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    tier: Mapped[str] = mapped_column(String(20), default="standard")
    badges: Mapped[list[str]] = mapped_column(ARRAY(String(30)), default=list)
    primary_category_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    category_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), default=list)
    verification_state: Mapped[str] = mapped_column(String(10), default=VerificationState.NONE)
    verified_at: Mapped[datetime | None]
    listed: Mapped[bool] = mapped_column(Boolean, default=False)  # complete enough to be found
    rating_avg: Mapped[float | None] = mapped_column(Float)
    reviews_count: Mapped[int] = mapped_column(Integer, default=0)
    # Recency-weighted sums kept by the reviews module: Σ wᵢ·ratingᵢ and Σ wᵢ.
    rating_weighted_sum: Mapped[float] = mapped_column(Float, default=0.0)
    rating_weight: Mapped[float] = mapped_column(Float, default=0.0)
    delivery_score: Mapped[float] = mapped_column(Float, default=0.0)  # on-time share, 0..1
    portfolio_count: Mapped[int] = mapped_column(Integer, default=0)
    # The categories of the latest ``PORTFOLIO_FIT_ITEMS`` portfolio items (an untagged
    # item counts as the primary craft), for the query's portfolio fit (pros/search.py).
    # Kept by ``service.do_refresh_rank``.
    portfolio_category_ids: Mapped[list[uuid.UUID]] = mapped_column(
        ARRAY(Uuid), default=list, server_default=text("'{}'")
    )
    promoted_until: Mapped[datetime | None]
    # The query-independent part of the relevance score (pros.search.static_score_sql).
    rank_base: Mapped[float] = mapped_column(Float, default=0.0, server_default=text("0"))
    # Sort keys: the Bayesian rating as of the last rank refresh (search.rating_score_sql,
    # refreshed with rank_base: on every change and daily) and the lowest rate.
    rating_rank: Mapped[float] = mapped_column(Float, default=0.0, server_default=text("0"))
    price_key: Mapped[int] = mapped_column(
        Integer, Computed(f"coalesce(rate_min, {NO_RATE})", persisted=True)
    )
    search_text: Mapped[str] = mapped_column(Text, default="")
    search_vector: Mapped[Any] = mapped_column(
        TSVECTOR, Computed(SEARCH_VECTOR_SQL, persisted=True), deferred=True
    )
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ProCraft(Base):
    __tablename__ = "pro_crafts"

    pro_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("pro_profiles.id", ondelete="CASCADE"), primary_key=True
    )
    category_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("categories.id"), primary_key=True, index=True
    )
    primary: Mapped[bool] = mapped_column(Boolean, default=False)
    years: Mapped[int] = mapped_column(Integer, default=0)


class PortfolioItem(Base):
    __tablename__ = "portfolio_items"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    pro_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("pro_profiles.id", ondelete="CASCADE"), index=True
    )
    media_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("uploads.id"))
    after_media_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("uploads.id"))
    caption: Mapped[str] = mapped_column(String(300), default="")
    category_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("categories.id"))
    created_at: Mapped[datetime]


class VerificationSubmission(Base):
    __tablename__ = "verification_submissions"
    __table_args__ = (
        Index(
            "ix_verification_submissions_queue",
            "submitted_at",
            postgresql_where=text("state = 'pending'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    pro_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("pro_profiles.id", ondelete="CASCADE"), index=True
    )
    state: Mapped[str] = mapped_column(String(12), default=SubmissionState.PENDING)
    kind: Mapped[str] = mapped_column(String(10))  # kyc | kyb
    legal_name: Mapped[str] = mapped_column(String(200))
    business_type: Mapped[str | None] = mapped_column(String(20))
    business_id: Mapped[str | None] = mapped_column(String(20))
    document_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), default=list)
    reason: Mapped[str | None] = mapped_column(String(500))
    submitted_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[uuid.UUID | None] = mapped_column(Uuid)


class ProviderCheck(Base):
    """The payment provider's latest verdict on a user's identity, as its onboarding
    reported it (``payments.events.PayoutAccountChanged``). Keyed by user, since a
    pro may start payout onboarding before the profile is complete. It feeds the
    profile's ``verification_state`` (``service.combined_state``)."""

    __tablename__ = "pro_provider_checks"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    provider: Mapped[str] = mapped_column(String(20))
    checks_identity: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(20))  # payments' OnboardingStatus
    requirements_due: Mapped[list[str]] = mapped_column(JSONB, default=list)
    past_due: Mapped[list[str]] = mapped_column(JSONB, default=list)
    disabled_reason: Mapped[str | None] = mapped_column(String(60))
    # The provider's timestamp of this snapshot; an older one arriving late is ignored.
    observed_at: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]


GEO_CELL_DEGREES = 0.5  # search cells: 0.5 by 0.5 degrees (about 55 by 40 km in Romania)
GEO_CELL_SQL = "(floor((lat + 90) * 2)::int * 1000 + floor((lon + 180) * 2)::int)"


ENTRY_INCLUDE = (
    "market",
    "lat",
    "lon",
    "search_vector",
    "rating_avg",
    "rate_min",
    "availability",
    "verification_state",
    "languages",
)


class SearchEntry(Base):
    """Search index: one row per (listed pro, craft), keyed by craft and map cell and
    ordered by rank, carrying every filtered column, so "this craft near here, best
    first" reads a few short index ranges and stops early (pros/search.py). Derived
    from ``pro_profiles`` by ``service.do_refresh_rank``; never edited directly."""

    __tablename__ = "pro_search_entries"
    __table_args__ = (
        Index(
            "ix_pro_search_entries_lookup",
            "category_id",
            "geo_cell",
            text("rank_base DESC"),
            text("pro_id DESC"),
            postgresql_include=list(ENTRY_INCLUDE),
        ),
        # The rating and price sorts within a craft and a radius (pros/search.py).
        Index(
            "ix_pro_search_entries_rating",
            "category_id",
            "geo_cell",
            text("rating_rank DESC"),
            text("pro_id DESC"),
            postgresql_include=list(ENTRY_INCLUDE),
        ),
        Index(
            "ix_pro_search_entries_price",
            "category_id",
            "geo_cell",
            "price_key",
            "pro_id",
            postgresql_include=list(ENTRY_INCLUDE),
        ),
    )

    pro_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("pro_profiles.id", ondelete="CASCADE"), primary_key=True
    )
    category_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    geo_cell: Mapped[int] = mapped_column(Integer)
    rank_base: Mapped[float] = mapped_column(Float)
    rating_rank: Mapped[float] = mapped_column(Float, server_default=text("0"))
    price_key: Mapped[int] = mapped_column(Integer, server_default=text("2147483647"))
    market: Mapped[str] = mapped_column(String(2))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    search_vector: Mapped[Any] = mapped_column(TSVECTOR)
    rating_avg: Mapped[float | None] = mapped_column(Float)
    rate_min: Mapped[int | None] = mapped_column(Integer)
    availability: Mapped[str] = mapped_column(String(10))
    verification_state: Mapped[str] = mapped_column(String(10))
    languages: Mapped[list[str]] = mapped_column(ARRAY(String(5)))


class SavedPro(Base):
    __tablename__ = "saved_pros"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    pro_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("pro_profiles.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime]


class ClientProfile(Base):
    __tablename__ = "client_profiles"

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    addresses: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    search_history: Mapped[bool] = mapped_column(Boolean, default=False)  # opt-in
    updated_at: Mapped[datetime]


class SearchHistoryEntry(Base):
    __tablename__ = "search_history"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    query: Mapped[dict[str, Any]] = mapped_column(JSONB)
    at: Mapped[datetime]
