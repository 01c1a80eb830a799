"""`flask --app app simulate`: the auto-reply a message would get, sending and storing nothing."""

from __future__ import annotations

import json
from datetime import datetime
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from bot.autoreply import simulate
from bot.cli.common import clock_now, load_settings_or_fail, migrated, parse_at, typed_wa_id
from bot.contacts.names import name_after_message
from bot.contacts.numbers import settings_region
from bot.db import get_db
from bot.models import Contact
from bot.replies import render_problems
from bot.rules import NO_HISTORY, History
from bot.settings.stored import seed_demo


@click.command("simulate")
@with_appcontext
@click.option("--text", required=True, help="The customer's message.")
@click.option(
    "--from",
    "wa_id",
    help="The customer's number, as wa_id or as typed (their history counts).",
)
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
            wa_id = typed_wa_id(wa_id, settings_region(settings), "--from")
            contact = session.scalar(select(Contact).where(Contact.wa_id == wa_id))
        if contact is not None:
            history = History(
                contact.last_inbound_at,
                contact.last_away_at,
                last_human_reply_at=contact.last_human_reply_at,
            )
            # As a message would find it: a name the shop gave wins over the profile's.
            name = name_after_message(contact.name, contact.name_by_shop, name)
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
        if result.file is not None:
            click.echo(f"file: {result.file} (the reply is its caption)")


def _instant(text: str | None, timezone: str) -> datetime:
    return clock_now() if text is None else parse_at(text, timezone)
