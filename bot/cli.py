"""The `flask --app app …` commands; each one that touches the database migrates it first."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import click
from alembic import command
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import cli_broadcasts, cli_outbox
from bot.commands import migrated, parse_at
from bot.db import alembic_config, get_db
from bot.models import Business, Contact
from bot.replies import render_problems
from bot.rules import NO_HISTORY, History, simulate
from bot.settings import BusinessSettings, SettingsError, dump_settings
from bot.settings.stored import BUSINESS_ID, load_settings, save_settings, seed_demo
from bot.users import users_cli

db_cli = AppGroup("db", help="Database migrations.")


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
            settings = save_settings(session, text)
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


def load_settings_or_fail(session: Session) -> BusinessSettings:
    settings = load_settings(session)
    if settings is None:
        raise click.ClickException("no business settings yet: run `settings import FILE`")
    return settings


@click.command("simulate")
@with_appcontext
@click.option("--text", required=True, help="The customer's message.")
@click.option("--from", "wa_id", help="The customer's number (their history counts).")
@click.option("--name", help="The customer's profile name.")
@click.option("--at", "at_text", help="ISO 8601 instant; without an offset, business time.")
@click.option(
    "--sent",
    "sent_text",
    help="When the customer sent it, if it arrives later (--at); same form as --at.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@migrated
def simulate_command(
    text: str,
    wa_id: str | None,
    name: str | None,
    at_text: str | None,
    sent_text: str | None,
    as_json: bool,
) -> None:
    """Print the auto-reply a message would get; sends and stores nothing."""
    with get_db(current_app).session() as session:
        if seed_demo(session):
            click.echo("(no settings yet: using the demo business)", err=True)
        settings = load_settings_or_fail(session)
        at = _instant(at_text, settings.timezone)
        sent_at = None if sent_text is None else parse_at(sent_text, settings.timezone, "--sent")
        history = NO_HISTORY
        contact = None
        if wa_id:
            contact = session.scalar(select(Contact).where(Contact.wa_id == wa_id))
        if contact is not None:
            history = History(contact.last_inbound_at, contact.last_away_at)
            name = name or contact.name
        session.rollback()  # the demo seed above is the one thing a simulation may keep
    with render_problems() as problems:
        result = simulate(
            settings,
            text=text,
            at=at,
            history=history,
            contact_name=name,
            wa_id=wa_id,
            sent_at=sent_at,
        )
    for problem in problems:
        click.echo(f"warning: {problem}; the reply falls back", err=True)
    next_open = result.next_open.isoformat() if result.next_open else None
    if as_json:
        doc = {"rule": result.rule, "text": result.text, "is_open": result.is_open}
        click.echo(json.dumps({**doc, "next_open": next_open}, ensure_ascii=False))
        return
    local = at.astimezone(ZoneInfo(settings.timezone))
    state = "open" if result.is_open else f"closed (opens again {next_open or 'not within a year'})"
    click.echo(f"at {local.isoformat()} the business is {state}")
    if result.rule is None:
        click.echo("no auto-reply")
    else:
        click.echo(f"rule: {result.rule}")
        click.echo(f"reply: {result.text}" if result.text is not None else "reply: none (too late)")


def _instant(text: str | None, timezone: str) -> datetime:
    return datetime.now(UTC) if text is None else parse_at(text, timezone)


def init_app(app: Flask) -> None:
    app.cli.add_command(db_cli)
    app.cli.add_command(worker_command)
    app.cli.add_command(settings_cli)
    app.cli.add_command(simulate_command)
    app.cli.add_command(users_cli)
    cli_broadcasts.init_app(app)
    cli_outbox.init_app(app)
