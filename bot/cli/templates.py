"""`flask --app app templates sync|list`: the WhatsApp Business Account's message templates."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import select

from bot.cli.common import clock_now, echo_table, migrated
from bot.config import Config
from bot.db import get_db
from bot.message_templates.demo import seed_demo_templates
from bot.message_templates.sync import sync
from bot.models import MessageTemplate

templates_cli = AppGroup("templates", help="The account's WhatsApp message templates.")


@templates_cli.command("sync")
@migrated
def templates_sync() -> None:
    """Fetch every template of WHATSAPP_BUSINESS_ACCOUNT_ID from Meta and keep them (console
    mode: add the demo templates to an empty list)."""
    config: Config = current_app.config["TRESEN"]
    result = sync(get_db(current_app), config, clock_now())
    if not result.ok:
        raise click.ClickException(result.summary())
    click.echo(result.summary())


@templates_cli.command("list")
@migrated
def templates_list() -> None:
    """One line per stored template: name, language, category, status."""
    config: Config = current_app.config["TRESEN"]
    with get_db(current_app).session() as session:
        if config.console_mode:
            seed_demo_templates(session, clock_now())
        rows = list(
            session.scalars(
                select(MessageTemplate).order_by(MessageTemplate.name, MessageTemplate.language)
            )
        )
        lines = [
            f"{row.name:<32} {row.language:<8} {row.category:<15} {row.status}" for row in rows
        ]
    if not lines:
        click.echo("no templates yet: run `flask --app app templates sync`")
        return
    echo_table(f"{'name':<32} {'language':<8} {'category':<15} status", lines)
