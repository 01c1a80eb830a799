"""The `flask --app app …` commands; each one that touches the database migrates it first."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click
from alembic import command
from flask import Flask, current_app
from flask.cli import AppGroup

from bot.db import alembic_config, get_db

F = TypeVar("F", bound=Callable[..., Any])

db_cli = AppGroup("db", help="Database migrations.")


def migrated(func: F) -> F:
    """Apply pending migrations before the command runs, so it works on an empty database."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        get_db(current_app).upgrade()
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: the newest)."""
    command.upgrade(alembic_config(get_db(current_app).engine), revision)
    click.echo(f"database at {revision}")


@db_cli.command("current")
def db_current() -> None:
    """Show the database's migration revision."""
    command.current(alembic_config(get_db(current_app).engine))


@click.command("worker")
@click.option("--concurrency", type=click.IntRange(1, 1024), help="Requests in flight at most.")
@click.option(
    "--lease",
    type=click.FloatRange(1, 600),
    default=30.0,
    show_default=True,
    help="Seconds a claimed message is held before another worker may take it over.",
)
def worker_command(concurrency: int | None, lease: float) -> None:
    """Run the dispatcher: send queued messages until SIGTERM."""
    from bot.worker import run_worker

    run_worker(current_app._get_current_object(), concurrency, lease)  # type: ignore[attr-defined]


def init_app(app: Flask) -> None:
    app.cli.add_command(db_cli)
    app.cli.add_command(worker_command)
