"""The migrations build exactly the schema the models describe, and run down and up again."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask

from bot.db import alembic_config, get_db
from bot.models import Base


def test_migrations_match_the_models(app: Flask) -> None:
    engine = get_db(app).engine
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_downgrade_to_nothing_and_up_again(app: Flask) -> None:
    engine = get_db(app).engine
    command.downgrade(alembic_config(engine), "base")
    get_db(app).upgrade()
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
