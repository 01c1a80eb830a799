"""SQL that differs between SQLite and PostgreSQL, behind one function each."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_ignore(
    bind: Session | Connection, model: Any, conflict_columns: list[str] | None
) -> Any:
    """INSERT … ON CONFLICT (columns) DO NOTHING, for the session's database; with None,
    a conflict on any unique key is ignored."""
    return _insert_ignore(dialect_name(bind), model, tuple(conflict_columns or ()) or None)


def dialect_name(bind: Session | Connection) -> str:
    return bind.dialect.name if isinstance(bind, Connection) else bind.get_bind().dialect.name


@lru_cache(maxsize=64)
def _insert_ignore(dialect: str, model: Any, conflict_columns: tuple[str, ...] | None) -> Any:
    # Built once per table and dialect: statements are immutable, and building one costs more
    # than the insert itself on the webhook's path.
    module = postgresql if dialect == "postgresql" else sqlite
    columns = list(conflict_columns) if conflict_columns else None
    return module.insert(model).on_conflict_do_nothing(index_elements=columns)
