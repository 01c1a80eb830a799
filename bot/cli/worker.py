"""`flask --app app worker`: the dispatcher as a process of its own."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("worker")
@with_appcontext
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
