"""What every `flask --app app …` command module shares."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import click
from flask import current_app
from sqlalchemy.orm import Session

from bot import logs
from bot.contacts.numbers import NumberError, wa_id_or_digits
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


def typed_wa_id(text: str, region: str, option: str) -> str:
    """A number given on the command line as its wa_id: typed in any form (`+49 151 …`, or
    `0151 …` in the business's country), or a wa_id's plain digits as they are."""
    try:
        return wa_id_or_digits(text, region)
    except NumberError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from exc


def clock_now() -> datetime:
    """The app's clock: commands read the time here only, so tests can fix it."""
    now: datetime = current_app.config["TRESEN_CLOCK"]()
    return now


def echo_table(header: str, lines: Iterable[str]) -> None:
    """A `list` command's table: the header, then one line a row (no trailing blanks)."""
    click.echo(header)
    for line in lines:
        click.echo(line.rstrip())


def retry_choice(what: str) -> Callable[[F], F]:
    """A `retry` command's parameters: the ids of the failed `what`s, or --all-failed;
    exactly one of the two."""

    def add(func: F) -> F:
        @functools.wraps(func)
        def checked(ids: tuple[int, ...], all_failed: bool) -> Any:
            if bool(ids) == all_failed:
                raise click.UsageError(f"give {what} ids or --all-failed (one of the two)")
            return func(ids, all_failed)

        with_flag = click.option("--all-failed", is_flag=True, help=f"Every failed {what}.")
        with_ids = click.argument("ids", nargs=-1, type=int)
        return with_ids(with_flag(checked))  # type: ignore[return-value]

    return add


def finish_retry(refused: Iterable[str], summary: str, *, all_done: bool = True) -> None:
    """End a `retry` command: the refused ids on stderr, the summary, and exit status 1 when
    an id was refused or a chosen one did not go through."""
    refused = list(refused)
    for line in refused:
        click.echo(line, err=True)
    click.echo(summary)
    if refused or not all_done:
        raise SystemExit(1)
