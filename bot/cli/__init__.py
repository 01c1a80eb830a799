"""The `flask --app app …` commands, one module per group; each one that touches the database
migrates it first."""

from __future__ import annotations

from flask import Flask

from bot.cli.broadcasts import broadcast_cli
from bot.cli.contacts import contacts_cli
from bot.cli.database import db_cli
from bot.cli.inbound import inbound_cli
from bot.cli.media import media_cli
from bot.cli.outbox import outbox_cli
from bot.cli.settings import settings_cli
from bot.cli.simulate import simulate_command
from bot.cli.templates import templates_cli
from bot.cli.users import users_cli
from bot.cli.worker import worker_command


def init_app(app: Flask) -> None:
    """Register every command group on the app."""
    app.cli.add_command(db_cli)
    app.cli.add_command(worker_command)
    app.cli.add_command(settings_cli)
    app.cli.add_command(simulate_command)
    app.cli.add_command(users_cli)
    app.cli.add_command(contacts_cli)
    app.cli.add_command(broadcast_cli)
    app.cli.add_command(outbox_cli)
    app.cli.add_command(inbound_cli)
    app.cli.add_command(media_cli)
    app.cli.add_command(templates_cli)
