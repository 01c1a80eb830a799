"""`flask --app app broadcast create|list|show|cancel`: broadcasts and their funnels."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import click
from flask import current_app
from flask.cli import AppGroup
from flask_babel import force_locale
from sqlalchemy import select

from bot import broadcasts
from bot.broadcasts import pacing
from bot.broadcasts.cron import cron_trigger, next_times, trigger_for
from bot.broadcasts.runs import business_settings
from bot.cli.common import clock_now, migrated, parse_at
from bot.contacts.audiences import parse_audience
from bot.db import get_db
from bot.media.kinds import MediaKind
from bot.media.sending import (
    HEADER_KINDS,
    Refused,
    keep_named,
    refusal_text,
)
from bot.media.store import get_media_store
from bot.models import Broadcast
from bot.settings.stored import load_settings, seed_demo

broadcast_cli = AppGroup("broadcast", help="Broadcasts: create, list, show, cancel.")


@broadcast_cli.command("create")
@click.option("--text", help="Free text (Jinja, rendered per contact); only inside 24 hours.")
@click.option("--wa-template", "template", help="Name of an approved WhatsApp template.")
@click.option("--language", help="The template's language code, e.g. de or en_US.")
@click.option(
    "--param", "params", multiple=True, help="Template body parameter (Jinja); repeat in order."
)
@click.option("--audience", default="all", show_default=True, help="all or label:NAME.")
@click.option("--at", "at_text", help="ISO 8601 start; without an offset, business time.")
@click.option("--cron", help='Recurring: "m h dom mon dow" in the business time zone.')
@click.option(
    "--media",
    "media_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file to send: with --text a JPEG or PNG (the text its caption); with "
    "--wa-template the header's image, video or document.",
)
@migrated
def broadcast_create(
    text: str | None,
    template: str | None,
    language: str | None,
    params: tuple[str, ...],
    audience: str,
    at_text: str | None,
    cron: str | None,
    media_path: Path | None,
) -> None:
    """Create a broadcast and print its id; without --at or --cron it starts now."""
    content = broadcasts.Content(text=text, template=template, language=language, params=params)
    try:
        content.check()
        chosen = parse_audience(audience)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if media_path is not None:
        content = dataclasses.replace(content, media=_keep_media(media_path, content))
    if at_text is not None and cron is not None:
        raise click.UsageError("give --at or --cron, not both")
    database = get_db(current_app)
    with database.session() as session:
        if seed_demo(session):
            click.echo("(no settings yet: using the demo business)", err=True)
        settings = load_settings(session)
        assert settings is not None
        at = parse_at(at_text, settings.timezone) if at_text is not None else None
        if cron is not None:
            try:
                cron_trigger(cron, settings.timezone)
            except ValueError as exc:
                raise click.BadParameter(str(exc), param_hint="--cron") from exc
        try:
            broadcast = broadcasts.create(
                session,
                content,
                chosen,
                timezone=settings.timezone,
                now=clock_now(),
                at=at,
                cron=cron,
            )
        except broadcasts.BroadcastError as exc:  # a text over the bounds of a message
            raise click.UsageError(str(exc)) from exc
        broadcast_id = broadcast.id
    click.echo(broadcast_id)


@broadcast_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@migrated
def broadcast_list(as_json: bool) -> None:
    """The broadcasts, newest first, with their funnels."""
    with get_db(current_app).session() as session:
        found = list(session.scalars(select(Broadcast).order_by(Broadcast.id.desc()).limit(200)))
        stats = broadcasts.funnels(session, found)
    for b in found:
        f = stats[b.id]
        if as_json:
            click.echo(json.dumps({**f.as_dict(), **_describe(b)}, ensure_ascii=False))
            continue
        d = _describe(b)
        click.echo(
            f"{b.id:>5}  {f.status:<9}  {d['when']:<28}  {d['audience']:<16}  "
            f"{f.total} total, {f.sent} sent, {f.read} read  {d['what']}"
        )


@broadcast_cli.command("show")
@click.argument("broadcast_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print the funnel as one JSON object.")
@migrated
def broadcast_show(broadcast_id: int, as_json: bool) -> None:
    """A broadcast's status and funnel."""
    with get_db(current_app).session() as session:
        broadcast = session.get(Broadcast, broadcast_id)
        if broadcast is None:
            raise click.ClickException(f"there is no broadcast {broadcast_id}")
        stats = broadcasts.funnels(session, [broadcast])[broadcast_id]
        settings = business_settings(session)
        finish = pacing.finish_of(session, broadcast_id, settings, clock_now())
        failures = pacing.failure_reasons(session, broadcast_id)
    if as_json:
        click.echo(json.dumps(stats.as_dict()))
        return
    d = _describe(broadcast)
    click.echo(f"broadcast {broadcast_id}: {stats.status}")
    click.echo(f"  what:      {d['what']}")
    click.echo(f"  audience:  {d['audience']}")
    click.echo(f"  when:      {d['when']}")
    if broadcast.cron is not None and broadcast.cancelled_at is None:
        upcoming = next_times(trigger_for(broadcast), clock_now(), 1)
        if upcoming:
            tz = ZoneInfo(broadcast.timezone)
            click.echo(f"  next:      {upcoming[0].astimezone(tz).isoformat()}")
    keys = ("total", "pending", "deferred", "sent", "delivered", "read", "failed", "skipped")
    for key in (*keys, "capped"):
        click.echo(f"  {key + ':':<11}{getattr(stats, key)}")
    if finish is not None:
        local = finish.astimezone(ZoneInfo(settings.timezone))
        click.echo(
            f"  finishes:  {local.isoformat(timespec='minutes')} (about: quiet hours and limit)"
        )
    for code, reason, count in failures:
        click.echo(f"  failed {count}: {code if code is not None else '-'} {reason}"[:200])


@broadcast_cli.command("cancel")
@click.argument("broadcast_id", type=int)
@migrated
def broadcast_cancel(broadcast_id: int) -> None:
    """Cancel a broadcast: no further runs; messages not yet on their way are not sent."""
    try:
        with get_db(current_app).session() as session:
            withdrawn = broadcasts.cancel(session, broadcast_id, clock_now())
    except broadcasts.BroadcastError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"broadcast {broadcast_id} cancelled; {withdrawn} messages withdrawn")


def _keep_media(path: Path, content: broadcasts.Content) -> broadcasts.Media:
    """The file checked against WhatsApp's limits for what it goes with, then kept."""
    kinds = frozenset({MediaKind.IMAGE} if content.text is not None else HEADER_KINDS)
    try:
        with force_locale("en"), get_db(current_app).session() as session, path.open("rb") as f:
            kept = keep_named(
                session,
                get_media_store(current_app),
                f,
                path.name,
                None,
                now=clock_now(),
                kinds=kinds,
            )
            return broadcasts.Media(kept.file.id, kept.file.sha256, str(kept.kind), kept.name)
    except Refused as exc:
        with force_locale("en"):
            raise click.BadParameter(refusal_text(exc), param_hint="--media") from None


def _describe(b: Broadcast) -> dict[str, str]:
    if b.kind == broadcasts.BroadcastKind.TEXT:
        what = f"text: {(b.text or '')[:60]!r}"
    else:
        what = f"template {b.template_name} ({b.language}) {list(b.params or [])!r}"
    if b.cron is not None:
        when = f"cron {b.cron} ({b.timezone})"
    elif b.at is not None:
        when = b.at.astimezone(ZoneInfo(b.timezone)).isoformat(timespec="minutes")
    else:
        when = "now"
    return {"what": what, "audience": b.audience, "when": when}
