"""Alembic environment: migrations run over a synchronous psycopg connection."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

import mesteri.models  # noqa: F401  - registers every table on the metadata
from mesteri.kit.db import Base

config = context.config
target_metadata = Base.metadata


def _ours(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """procrastinate's tables belong to procrastinate (created by migration 0001)."""
    return not (
        type_ == "table"
        and reflected
        and compare_to is None
        and (name or "").startswith("procrastinate_")
    )


def run_migrations_online() -> None:
    url = make_url(config.get_main_option("sqlalchemy.url") or "")
    engine = create_engine(url.set(drivername="postgresql+psycopg"))
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            compare_type=True,
            include_object=_ours,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
