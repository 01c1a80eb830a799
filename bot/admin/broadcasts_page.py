"""Broadcasts: create (audience, text or template, now / at / cron), list, cancel, funnel."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from bot import broadcasts
from bot.admin.blueprint import bp, now
from bot.admin.display import Local
from bot.broadcasts.cron import cron_trigger, next_times, trigger_for
from bot.contacts.audiences import parse_audience
from bot.db import get_db
from bot.models import Broadcast, Label
from bot.settings import BusinessSettings
from bot.settings.stored import load_settings, seed_demo

LIST_LIMIT = 100
# The funnel's bars, in order; failed and skipped are the ways out.
STAGES = ("total", "sent", "delivered", "read", "failed", "skipped")


@dataclass(frozen=True)
class Bar:
    name: str
    count: int
    width: float  # percent of the recipients


def bars(funnel: broadcasts.Funnel) -> list[Bar]:
    total = funnel.total
    return [
        Bar(name, getattr(funnel, name), 100 * getattr(funnel, name) / total if total else 0)
        for name in STAGES
    ]


def _settings() -> BusinessSettings:
    with get_db().session() as session:
        seed_demo(session)
        settings = load_settings(session)
    assert settings is not None
    return settings


def _describe(b: Broadcast, local: Local, at: datetime) -> dict[str, Any]:
    if b.kind == broadcasts.BroadcastKind.TEXT:
        what, detail = "Text", b.text or ""
    else:
        what = f"Template {b.template_name} ({b.language})"
        detail = " · ".join(b.params or [])
    if b.cron is not None:
        when = f"repeats: {b.cron}"
        if b.cancelled_at is None:
            try:
                upcoming = next_times(trigger_for(b), at, 1)
            except ValueError:
                upcoming = []
            if upcoming:
                when += f" (next {local.time(upcoming[0], at)})"
    else:
        when = local.time(b.at, at) if b.at is not None else "now"
    return {"what": what, "detail": detail, "when": when, "audience": b.audience}


def _page(form: dict[str, str], errors: dict[str, str], status: int = 200) -> tuple[str, int]:
    at = now()
    settings = _settings()
    local = Local(ZoneInfo(settings.timezone), settings.locale)
    with get_db().session() as session:
        found = list(
            session.scalars(select(Broadcast).order_by(Broadcast.id.desc()).limit(LIST_LIMIT))
        )
        stats = broadcasts.funnels(session, found)
        labels = list(session.scalars(select(Label.name).order_by(Label.name)))
        items = [
            {
                "id": b.id,
                **_describe(b, local, at),
                "funnel": stats[b.id],
                "bars": bars(stats[b.id]),
            }
            for b in found
        ]
    return (
        render_template(
            "admin/broadcasts.html",
            items=items,
            labels=labels,
            form=form,
            errors=errors,
            timezone=settings.timezone,
        ),
        status,
    )


@bp.get("/broadcasts")
def broadcasts_page() -> tuple[str, int]:
    return _page({"kind": broadcasts.BroadcastKind.TEXT, "when": "now", "audience": "all"}, {})


def _instant(text: str, timezone: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=ZoneInfo(timezone)) if value.tzinfo is None else value


@bp.post("/broadcasts")
def broadcast_create() -> Any:
    form = {key: request.form.get(key, "") for key in (
        "kind", "text", "template", "language", "params", "audience", "when", "at", "cron"
    )}  # fmt: skip
    errors: dict[str, str] = {}
    settings = _settings()
    if form["kind"] == broadcasts.BroadcastKind.TEMPLATE:
        params = tuple(p.strip() for p in form["params"].splitlines() if p.strip())
        content = broadcasts.Content(
            template=form["template"].strip() or None,
            language=form["language"].strip() or None,
            params=params,
        )
        if content.template is None:
            errors["template"] = "give the name of an approved template"
    else:
        content = broadcasts.Content(text=form["text"])
    at: datetime | None = None
    cron: str | None = None
    try:
        audience = parse_audience(form["audience"] or "all")
    except ValueError as exc:
        errors["audience"] = str(exc)
    if form["when"] == "at":
        try:
            at = _instant(form["at"], settings.timezone)
        except ValueError:
            errors["when"] = "choose a date and time"
    elif form["when"] == "cron":
        cron = " ".join(form["cron"].split())
        try:
            cron_trigger(cron, settings.timezone)
        except ValueError as exc:
            errors["when"] = str(exc)
    if not errors:
        try:
            content.check(settings, now())
        except broadcasts.BroadcastError as exc:
            errors["content"] = (
                str(exc).replace("--text", "the text").replace("--param", "parameter")
            )
    if errors:
        return _page(form, errors, 400)
    with get_db().session() as session:
        created = broadcasts.create(
            session, content, audience, timezone=settings.timezone, now=now(), at=at, cron=cron
        )
        broadcast_id = created.id
    flash(f"Broadcast {broadcast_id} created.")
    return redirect(url_for("admin.broadcasts_page"))


@bp.post("/broadcasts/<int:broadcast_id>/cancel")
def broadcast_cancel(broadcast_id: int) -> Response:
    try:
        with get_db().session() as session:
            withdrawn = broadcasts.cancel(session, broadcast_id, now())
    except broadcasts.BroadcastError as exc:
        flash(f"Not cancelled: {exc}.", "error")
    else:
        flash(f"Broadcast {broadcast_id} cancelled; {withdrawn} messages withdrawn.")
    return redirect(url_for("admin.broadcasts_page"))
