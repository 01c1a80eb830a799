"""Alembic environment: runs on the engine handed over by bot.db, one migrator at a time."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from bot.models import Base

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    if connection.dialect.name == "postgresql":
        # Several processes may start at once (release, web, worker): one migrates, the rest wait.
        connection.execute(text("SELECT pg_advisory_lock(7317001)"))
        connection.commit()
    try:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()
    finally:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_unlock(7317001)"))
            connection.commit()
