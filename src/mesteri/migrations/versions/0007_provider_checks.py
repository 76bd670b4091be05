"""provider checks (the payment provider's verdict on a pro's identity) and the
categories of a pro's portfolio (portfolio fit in search)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 06:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pro_provider_checks",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=20), nullable=False),
        sa.Column("checks_identity", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("requirements_due", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("past_due", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("disabled_reason", sa.String(length=60), nullable=True),
        sa.Column("observed_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_pro_provider_checks_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_pro_provider_checks")),
    )
    op.add_column(
        "pro_profiles",
        sa.Column(
            "portfolio_category_ids",
            postgresql.ARRAY(sa.Uuid()),
            server_default=sa.text("'{}'"),
            nullable=False,
        ),
    )
    # Existing pros: the categories of their latest ten items (untagged: the primary craft).
    op.execute(
        "UPDATE pro_profiles AS p SET portfolio_category_ids = ARRAY("
        " SELECT coalesce(i.category_id, p.primary_category_id) FROM portfolio_items AS i"
        " WHERE i.pro_id = p.id AND coalesce(i.category_id, p.primary_category_id) IS NOT NULL"
        " ORDER BY i.created_at DESC LIMIT 10)"
        " WHERE p.portfolio_count > 0"
    )

    # Stored sort keys for the rating and price sorts, each with an ordered index.
    op.add_column(
        "pro_profiles",
        sa.Column("rating_rank", sa.Float(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "pro_profiles",
        sa.Column(
            "price_key",
            sa.Integer(),
            sa.Computed("coalesce(rate_min, 2147483647)", persisted=True),
            nullable=False,
        ),
    )
    include = [
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
    ]
    op.create_index(
        "ix_pro_profiles_rating",
        "pro_profiles",
        [sa.text("rating_rank DESC"), sa.text("id DESC")],
        unique=False,
        postgresql_include=include,
        postgresql_where=sa.text("listed"),
    )
    op.create_index(
        "ix_pro_profiles_price",
        "pro_profiles",
        ["price_key", "id"],
        unique=False,
        postgresql_include=include,
        postgresql_where=sa.text("listed"),
    )
    # The same keys in the search index, for those sorts within a craft and a radius.
    op.add_column(
        "pro_search_entries",
        sa.Column("rating_rank", sa.Float(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "pro_search_entries",
        sa.Column("price_key", sa.Integer(), server_default=sa.text("2147483647"), nullable=False),
    )
    entry_include = [c for c in include if c != "category_ids"]
    op.create_index(
        "ix_pro_search_entries_rating",
        "pro_search_entries",
        ["category_id", "geo_cell", sa.text("rating_rank DESC"), sa.text("pro_id DESC")],
        unique=False,
        postgresql_include=entry_include,
    )
    op.create_index(
        "ix_pro_search_entries_price",
        "pro_search_entries",
        ["category_id", "geo_cell", "price_key", "pro_id"],
        unique=False,
        postgresql_include=entry_include,
    )
    # Until the next rank refresh (daily, or any change of the pro) recomputes it with the
    # recency weights: the plain Bayesian average with the default prior (4.0, 5 reviews).
    op.execute(
        "UPDATE pro_profiles SET rating_rank ="
        " (5 * 4.0 + coalesce(rating_avg, 0) * reviews_count) / (5 + reviews_count)"
    )
    op.execute(
        "UPDATE pro_search_entries AS e SET rating_rank = p.rating_rank, price_key = p.price_key"
        " FROM pro_profiles AS p WHERE p.id = e.pro_id"
    )


def downgrade() -> None:
    op.drop_index("ix_pro_search_entries_price", table_name="pro_search_entries")
    op.drop_index("ix_pro_search_entries_rating", table_name="pro_search_entries")
    op.drop_column("pro_search_entries", "price_key")
    op.drop_column("pro_search_entries", "rating_rank")
    op.drop_index("ix_pro_profiles_price", table_name="pro_profiles")
    op.drop_index("ix_pro_profiles_rating", table_name="pro_profiles")
    op.drop_column("pro_profiles", "price_key")
    op.drop_column("pro_profiles", "rating_rank")
    op.drop_column("pro_profiles", "portfolio_category_ids")
    op.drop_table("pro_provider_checks")
