"""`flask --app app settings import|export`: the business settings file (YAML)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from bot import audit
from bot.cli.common import clock_now, load_settings_or_fail, migrated
from bot.db import get_db
from bot.models import Business
from bot.settings import SettingsError, dump_settings
from bot.settings.stored import BUSINESS_ID, save_settings_by, seed_demo

settings_cli = AppGroup("settings", help="The business settings file (YAML).")


@settings_cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@migrated
def settings_import(file: str) -> None:
    """Replace the business settings with FILE's; an invalid file changes nothing."""
    try:
        with click.open_file(file, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise click.ClickException(f"{file}: cannot read: {exc}") from exc
    try:
        with get_db(current_app).session() as session:
            settings = save_settings_by(session, text, audit.Actor(None, None), clock_now())
    except SettingsError as exc:
        raise click.ClickException(f"{file}: {exc}; the settings were not changed") from exc
    click.echo(f"settings imported: {settings.name} ({settings.timezone}, {settings.locale})")


@settings_cli.command("export")
@migrated
def settings_export() -> None:
    """Print the business settings in the form `settings import` reads."""
    with get_db(current_app).session() as session:
        text = session.scalar(select(Business.settings_yaml).where(Business.id == BUSINESS_ID))
    if text is None:
        with get_db(current_app).session() as session:
            seed_demo(session)
            text = dump_settings(load_settings_or_fail(session))
    click.echo(text, nl=not text.endswith("\n"))
