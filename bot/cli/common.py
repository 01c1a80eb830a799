"""What every `flask --app app …` command module shares."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click
from flask import current_app
from sqlalchemy.orm import Session

from bot import logs
from bot.db import get_db
from bot.settings import BusinessSettings
from bot.settings.stored import load_settings

F = TypeVar("F", bound=Callable[..., Any])


def migrated(func: F) -> F:
    """Apply pending migrations before the command runs, so it works on an empty database.

    Also sends log lines to stderr, so that a command's own output on stdout stays clean.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        logs.for_command()
        get_db(current_app).upgrade()
        return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def parse_at(text: str, timezone: str, option: str = "--at") -> datetime:
    """An `--at` value: ISO 8601; without an offset it is in the business time zone."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter(
            f"{text!r} is not an ISO 8601 date and time", param_hint=option
        ) from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(timezone))
    return value


def load_settings_or_fail(session: Session) -> BusinessSettings:
    settings = load_settings(session)
    if settings is None:
        raise click.ClickException("no business settings yet: run `settings import FILE`")
    return settings


def clock_now() -> datetime:
    """The app's clock: commands read the time here only, so tests can fix it."""
    now: datetime = current_app.config["TRESEN_CLOCK"]()
    return now
