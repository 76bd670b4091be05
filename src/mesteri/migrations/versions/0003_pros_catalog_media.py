"""Professionals: catalog (categories, places), media uploads, pro and client profiles,
verification submissions, saved pros, search history.

No extensions: the embedded PostgreSQL has neither unaccent nor earthdistance, so
diacritics are folded by the IMMUTABLE ``mesteri_fold`` (``translate``), radius search
uses a GiST index on ``point(lon, lat)`` (core), text a GIN index on a generated tsvector.
Reference data (categories, places) is upserted from ``catalog/data/*.csv``.

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-22 18:12:25.030810
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from mesteri.catalog import reference
from mesteri.kit.text import FOLD_FUNCTION_SQL

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(FOLD_FUNCTION_SQL)
    op.create_table(
        "categories",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("slug", sa.String(length=60), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("icon", sa.String(length=16), nullable=False),
        sa.Column("names", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("search_key", sa.String(length=400), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["parent_id"], ["categories.id"], name=op.f("fk_categories_parent_id_categories")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_categories")),
        sa.UniqueConstraint("slug", name=op.f("uq_categories_slug")),
    )
    op.create_index(op.f("ix_categories_parent_id"), "categories", ["parent_id"], unique=False)
    op.create_table(
        "places",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("county", sa.String(length=80), nullable=False),
        sa.Column("names", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("search_key", sa.String(length=80), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("population", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_places")),
    )
    op.create_index(op.f("ix_places_country"), "places", ["country"], unique=False)
    op.create_index(
        "ix_places_search_key",
        "places",
        ["search_key"],
        unique=False,
        postgresql_ops={"search_key": "text_pattern_ops"},
    )
    op.create_table(
        "client_profiles",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("addresses", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("search_history", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_client_profiles_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_client_profiles")),
    )
    op.create_table(
        "pro_profiles",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("market", sa.String(length=2), nullable=False),
        sa.Column("display_name", sa.String(length=120), nullable=False),
        sa.Column("name_key", sa.String(length=120), nullable=False),
        sa.Column("bio", sa.Text(), nullable=False),
        sa.Column("business_type", sa.String(length=20), nullable=True),
        sa.Column("business_id", sa.String(length=20), nullable=True),
        sa.Column("place_id", sa.Uuid(), nullable=True),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
        sa.Column("radius_km", sa.Integer(), nullable=False),
        sa.Column("rate_min", sa.Integer(), nullable=True),
        sa.Column("rate_max", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("availability", sa.String(length=10), nullable=False),
        sa.Column("languages", sa.ARRAY(sa.String(length=5)), nullable=False),
        sa.Column("certifications", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("insurance", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("tier", sa.String(length=20), nullable=False),
        sa.Column("badges", sa.ARRAY(sa.String(length=30)), nullable=False),
        sa.Column("primary_category_id", sa.Uuid(), nullable=True),
        sa.Column("category_ids", sa.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("verification_state", sa.String(length=10), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("listed", sa.Boolean(), nullable=False),
        sa.Column("rating_avg", sa.Float(), nullable=True),
        sa.Column("reviews_count", sa.Integer(), nullable=False),
        sa.Column("rating_weighted_sum", sa.Float(), nullable=False),
        sa.Column("rating_weight", sa.Float(), nullable=False),
        sa.Column("delivery_score", sa.Float(), nullable=False),
        sa.Column("portfolio_count", sa.Integer(), nullable=False),
        sa.Column("promoted_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rank_base", sa.Float(), server_default=sa.text("0"), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column(
            "search_vector",
            postgresql.TSVECTOR(),
            sa.Computed(
                "setweight(to_tsvector('simple'::regconfig, mesteri_fold(display_name)), 'A') || setweight(to_tsvector('simple'::regconfig, mesteri_fold(search_text)), 'B')",
                persisted=True,
            ),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "availability IN ('available', 'busy', 'vacation')",
            name=op.f("ck_pro_profiles_availability"),
        ),
        sa.CheckConstraint(
            "verification_state IN ('none', 'pending', 'verified', 'rejected')",
            name=op.f("ck_pro_profiles_verification_state"),
        ),
        sa.CheckConstraint("radius_km BETWEEN 1 AND 500", name=op.f("ck_pro_profiles_radius")),
        sa.CheckConstraint(
            "rate_max IS NULL OR rate_min IS NULL OR rate_max >= rate_min",
            name=op.f("ck_pro_profiles_rate_range"),
        ),
        sa.CheckConstraint(
            "rate_min IS NULL OR rate_min >= 0", name=op.f("ck_pro_profiles_rate_min")
        ),
        sa.ForeignKeyConstraint(
            ["place_id"], ["places.id"], name=op.f("fk_pro_profiles_place_id_places")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_pro_profiles_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pro_profiles")),
        sa.UniqueConstraint("user_id", name=op.f("uq_pro_profiles_user_id")),
    )
    op.create_index(
        "ix_pro_profiles_category_ids",
        "pro_profiles",
        ["category_ids"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        "ix_pro_profiles_rank",
        "pro_profiles",
        [sa.text("rank_base DESC"), sa.text("id DESC")],
        unique=False,
        postgresql_include=[
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
        ],
        postgresql_where=sa.text("listed"),
    )
    op.create_index(
        "ix_pro_profiles_name_key",
        "pro_profiles",
        ["name_key"],
        unique=False,
        postgresql_ops={"name_key": "text_pattern_ops"},
    )
    op.create_index(
        "ix_pro_profiles_search_vector",
        "pro_profiles",
        ["search_vector"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_table(
        "search_history",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("query", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_search_history_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_search_history")),
    )
    # Radius search: bounding box on the point, answered by GiST (core PostgreSQL).
    op.execute(
        "CREATE INDEX ix_pro_profiles_location ON pro_profiles "
        "USING gist (point(lon, lat)) WHERE listed"
    )
    op.create_index(op.f("ix_search_history_user_id"), "search_history", ["user_id"], unique=False)
    op.create_table(
        "uploads",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("declared_type", sa.String(length=100), nullable=False),
        sa.Column("declared_size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("filename", sa.String(length=200), nullable=True),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("thumb_key", sa.String(length=200), nullable=True),
        sa.Column("private", sa.Boolean(), nullable=False),
        sa.Column("encrypted", sa.Boolean(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=True),
        sa.Column("height", sa.Integer(), nullable=True),
        sa.Column("reject_reason", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attached_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delete_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"], name=op.f("fk_uploads_owner_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
        sa.UniqueConstraint("key", name=op.f("uq_uploads_key")),
    )
    op.create_index(
        "ix_uploads_delete_after",
        "uploads",
        ["delete_after"],
        unique=False,
        postgresql_where=sa.text("delete_after IS NOT NULL AND state <> 'deleted'"),
    )
    op.create_index(op.f("ix_uploads_owner_id"), "uploads", ["owner_id"], unique=False)
    op.create_index(
        "ix_uploads_unattached",
        "uploads",
        ["created_at"],
        unique=False,
        postgresql_where=sa.text("attached_at IS NULL AND state IN ('pending', 'ready')"),
    )
    op.create_table(
        "portfolio_items",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("pro_id", sa.Uuid(), nullable=False),
        sa.Column("media_id", sa.Uuid(), nullable=False),
        sa.Column("after_media_id", sa.Uuid(), nullable=True),
        sa.Column("caption", sa.String(length=300), nullable=False),
        sa.Column("category_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["after_media_id"],
            ["uploads.id"],
            name=op.f("fk_portfolio_items_after_media_id_uploads"),
        ),
        sa.ForeignKeyConstraint(
            ["category_id"],
            ["categories.id"],
            name=op.f("fk_portfolio_items_category_id_categories"),
        ),
        sa.ForeignKeyConstraint(
            ["media_id"], ["uploads.id"], name=op.f("fk_portfolio_items_media_id_uploads")
        ),
        sa.ForeignKeyConstraint(
            ["pro_id"],
            ["pro_profiles.id"],
            name=op.f("fk_portfolio_items_pro_id_pro_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portfolio_items")),
    )
    op.create_index(op.f("ix_portfolio_items_pro_id"), "portfolio_items", ["pro_id"], unique=False)
    op.create_table(
        "pro_crafts",
        sa.Column("pro_id", sa.Uuid(), nullable=False),
        sa.Column("category_id", sa.Uuid(), nullable=False),
        sa.Column("primary", sa.Boolean(), nullable=False),
        sa.Column("years", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_id"], ["categories.id"], name=op.f("fk_pro_crafts_category_id_categories")
        ),
        sa.ForeignKeyConstraint(
            ["pro_id"],
            ["pro_profiles.id"],
            name=op.f("fk_pro_crafts_pro_id_pro_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pro_id", "category_id", name=op.f("pk_pro_crafts")),
    )
    op.create_index(op.f("ix_pro_crafts_category_id"), "pro_crafts", ["category_id"], unique=False)
    op.create_table(
        "pro_search_entries",
        sa.Column("pro_id", sa.Uuid(), nullable=False),
        sa.Column("category_id", sa.Uuid(), nullable=False),
        sa.Column("geo_cell", sa.Integer(), nullable=False),
        sa.Column("rank_base", sa.Float(), nullable=False),
        sa.Column("market", sa.String(length=2), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("search_vector", postgresql.TSVECTOR(), nullable=False),
        sa.Column("rating_avg", sa.Float(), nullable=True),
        sa.Column("rate_min", sa.Integer(), nullable=True),
        sa.Column("availability", sa.String(length=10), nullable=False),
        sa.Column("verification_state", sa.String(length=10), nullable=False),
        sa.Column("languages", postgresql.ARRAY(sa.String(length=5)), nullable=False),
        sa.ForeignKeyConstraint(
            ["pro_id"],
            ["pro_profiles.id"],
            name=op.f("fk_pro_search_entries_pro_id_pro_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pro_id", "category_id", name=op.f("pk_pro_search_entries")),
    )
    op.create_index(
        "ix_pro_search_entries_lookup",
        "pro_search_entries",
        ["category_id", "geo_cell", sa.text("rank_base DESC"), sa.text("pro_id DESC")],
        unique=False,
        postgresql_include=[
            "market",
            "lat",
            "lon",
            "search_vector",
            "rating_avg",
            "rate_min",
            "availability",
            "verification_state",
            "languages",
        ],
    )
    op.create_table(
        "saved_pros",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("pro_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["pro_id"],
            ["pro_profiles.id"],
            name=op.f("fk_saved_pros_pro_id_pro_profiles"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_saved_pros_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "pro_id", name=op.f("pk_saved_pros")),
    )
    op.create_table(
        "verification_submissions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("pro_id", sa.Uuid(), nullable=False),
        sa.Column("state", sa.String(length=12), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("legal_name", sa.String(length=200), nullable=False),
        sa.Column("business_type", sa.String(length=20), nullable=True),
        sa.Column("business_id", sa.String(length=20), nullable=True),
        sa.Column("document_ids", sa.ARRAY(sa.Uuid()), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["pro_id"],
            ["pro_profiles.id"],
            name=op.f("fk_verification_submissions_pro_id_pro_profiles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verification_submissions")),
    )
    op.create_index(
        op.f("ix_verification_submissions_pro_id"),
        "verification_submissions",
        ["pro_id"],
        unique=False,
    )
    op.create_index(
        "ix_verification_submissions_queue",
        "verification_submissions",
        ["submitted_at"],
        unique=False,
        postgresql_where=sa.text("state = 'pending'"),
    )
    reference.load(op.get_bind())


def downgrade() -> None:
    op.drop_index(
        "ix_verification_submissions_queue",
        table_name="verification_submissions",
        postgresql_where=sa.text("state = 'pending'"),
    )
    op.drop_index(op.f("ix_verification_submissions_pro_id"), table_name="verification_submissions")
    op.drop_table("verification_submissions")
    op.drop_index("ix_pro_search_entries_lookup", table_name="pro_search_entries")
    op.drop_table("pro_search_entries")
    op.drop_table("saved_pros")
    op.drop_index(op.f("ix_pro_crafts_category_id"), table_name="pro_crafts")
    op.drop_table("pro_crafts")
    op.drop_index(op.f("ix_portfolio_items_pro_id"), table_name="portfolio_items")
    op.drop_table("portfolio_items")
    op.drop_index(
        "ix_uploads_unattached",
        table_name="uploads",
        postgresql_where=sa.text("attached_at IS NULL AND state IN ('pending', 'ready')"),
    )
    op.drop_index(op.f("ix_uploads_owner_id"), table_name="uploads")
    op.drop_index(
        "ix_uploads_delete_after",
        table_name="uploads",
        postgresql_where=sa.text("delete_after IS NOT NULL AND state <> 'deleted'"),
    )
    op.drop_table("uploads")
    op.drop_index(op.f("ix_search_history_user_id"), table_name="search_history")
    op.drop_table("search_history")
    op.execute("DROP INDEX IF EXISTS ix_pro_profiles_location")
    op.drop_index(
        "ix_pro_profiles_search_vector", table_name="pro_profiles", postgresql_using="gin"
    )
    op.drop_index(
        "ix_pro_profiles_name_key",
        table_name="pro_profiles",
        postgresql_ops={"name_key": "text_pattern_ops"},
    )
    op.drop_index("ix_pro_profiles_category_ids", table_name="pro_profiles", postgresql_using="gin")
    op.drop_table("pro_profiles")
    op.drop_table("client_profiles")
    op.drop_index(
        "ix_places_search_key",
        table_name="places",
        postgresql_ops={"search_key": "text_pattern_ops"},
    )
    op.drop_index(op.f("ix_places_country"), table_name="places")
    op.drop_table("places")
    op.drop_index(op.f("ix_categories_parent_id"), table_name="categories")
    op.drop_table("categories")
    op.execute("DROP FUNCTION IF EXISTS mesteri_fold(text)")
