"""The fixtures hand each test a database of its own: migrated for `app`, empty without it."""

from __future__ import annotations

import stat
from pathlib import Path

from flask import Flask
from hypothesis import settings
from sqlalchemy import create_engine, inspect, text

from bot.db import get_db
from tests.conftest import examples, migrations_head


def test_an_apps_database_is_migrated_to_the_head(app: Flask) -> None:
    with get_db(app).session() as session:
        assert (
            session.execute(text("SELECT version_num FROM alembic_version")).scalar()
            == migrations_head()
        )
        session.execute(text("CREATE TABLE scratch (x INTEGER)"))


def test_no_test_sees_another_ones_writes(app: Flask) -> None:
    # Run after the test above (in the same process): the copy it wrote to was its own.
    assert "scratch" not in inspect(get_db(app).engine).get_table_names()


def test_a_copied_sqlite_database_is_its_owners_only(app: Flask, database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        return
    path = Path(database_url.split(":///", 1)[1])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_database_without_the_app_is_empty(database_url: str) -> None:
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


def test_property_tests_try_fewer_examples_under_the_dev_profile() -> None:
    if settings.default.max_examples == settings.get_profile("ci").max_examples:
        assert examples(400) == 400
    else:
        assert examples(400) < 400
    assert examples(5) == 5  # a test that asks for few keeps them all
