"""Broadcasts in the admin: the list (coming ones apart from past ones), a new broadcast in three
steps (audience, message, when) with the live number of recipients, a preview for a real
contact and a warning before sending at night or while closed, and a broadcast's own page with
its funnel, runs and recipients. Every rule is the one the CLI and the scheduler use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo

import babel.dates
import phonenumbers
from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import (
    format_percent,
    format_time,
    get_locale,
    get_timezone,
    gettext,
    lazy_gettext,
    ngettext,
)
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from bot import audit, broadcasts
from bot.admin.blueprint import SCRIPT_TEXTS, UPLOAD_ENDPOINTS, bp, log_change, now
from bot.admin.forms import keep_upload
from bot.admin.quick_replies_page import placeholder_buttons
from bot.admin.template_picker import mismatch_text, picked, picker
from bot.broadcasts import pacing, timing
from bot.broadcasts.cron import cron_trigger, next_times, trigger_for
from bot.broadcasts.runs import CANCELLED, PENDING, RunStatus, business_settings
from bot.contacts.audiences import Audience, parse_audience
from bot.db import get_db
from bot.i18n import page_language
from bot.media.kinds import MediaKind
from bot.media.sending import (
    HEADER_KINDS,
    Refused,
    accept,
    check,
    refusal_text,
)
from bot.message_templates.changes import flags_for as template_flags
from bot.message_templates.mapping import jinja_for
from bot.message_templates.model import TemplateMismatch, check_values, keyed
from bot.models import (
    Broadcast,
    BroadcastRun,
    Contact,
    Label,
    MediaFile,
    Message,
    MessageStatus,
)
from bot.placeholders import as_template, readable
from bot.settings import BusinessSettings
from bot.settings.stored import load_settings, seed_demo

LIST_LIMIT = 200
# A broadcast's page lists this many recipients; the funnel counts them all.
RECIPIENTS_SHOWN = 500

SCRIPT_TEXTS["broadcast_cancel"] = lazy_gettext(
    "Cancel this broadcast? Messages that have not gone out yet will not be sent."
)

STATUS_WORDS: dict[str, Any] = {
    broadcasts.BroadcastStatus.SCHEDULED: lazy_gettext("Scheduled"),
    broadcasts.BroadcastStatus.RUNNING: lazy_gettext("Sending"),
    broadcasts.BroadcastStatus.DONE: lazy_gettext("Sent"),
    broadcasts.BroadcastStatus.CANCELLED: lazy_gettext("Cancelled"),
}
RUN_WORDS: dict[str, Any] = {
    RunStatus.WRITING: lazy_gettext("Sending"),
    RunStatus.WRITTEN: lazy_gettext("Sent"),
    RunStatus.CANCELLED: lazy_gettext("Cancelled"),
}
MESSAGE_WORDS: dict[str, Any] = {
    **{status: lazy_gettext("Waiting") for status in PENDING},
    MessageStatus.SENT: lazy_gettext("Sent"),
    MessageStatus.DELIVERED: lazy_gettext("Delivered"),
    MessageStatus.READ: lazy_gettext("Read"),
    MessageStatus.FAILED: lazy_gettext("Failed"),
    MessageStatus.SKIPPED: lazy_gettext("Skipped"),
}
# The funnel's rows, in order: the recipients, how far the messages got, and the ways out.
FUNNEL: tuple[tuple[str, Any], ...] = (
    ("total", lazy_gettext("Recipients")),
    ("sent", lazy_gettext("Sent")),
    ("delivered", lazy_gettext("Delivered")),
    ("read", lazy_gettext("Read")),
    ("failed", lazy_gettext("Failed")),
    ("skipped", lazy_gettext("Skipped")),
    ("pending", lazy_gettext("Waiting")),
)
# Reasons the broadcast itself records, in the owner's words; the Graph API's stay as they came.
REASONS: dict[str, Any] = {
    broadcasts.OUTSIDE_WINDOW: lazy_gettext(
        "Has not written within 24 hours: only a template can reach this contact."
    ),
    CANCELLED: lazy_gettext("The broadcast was cancelled."),
}
# Meta's codes for a recipient a broadcast did not reach, in a shop owner's words.
FAILURE_CODES: dict[int, Any] = {
    131026: lazy_gettext(
        "Not on WhatsApp, or could not be delivered (old app, terms not accepted)"
    ),
    131049: lazy_gettext(
        "WhatsApp held it back: this customer gets too many offers from businesses just now"
    ),
    131050: lazy_gettext("This customer has stopped offers from your shop in WhatsApp"),
    131047: lazy_gettext("Has not written within 24 hours: only a template can reach them"),
    130472: lazy_gettext("Held back by WhatsApp for a test of marketing messages"),
}
WHEN_CHOICES = ("now", "at", "weekly", "cron")


def _settings() -> BusinessSettings:
    with get_db().session() as session:
        seed_demo(session)
        settings = load_settings(session)
    assert settings is not None
    return settings


# --- showing times ------------------------------------------------------------------------------


def day_and_time(at: datetime) -> str:
    """`Mo., 30. Nov. 2026, 10:00`: the day, the date and the time in the page's locale, in
    the business time zone."""
    try:
        day = babel.dates.format_skeleton("yMMMEd", at, tzinfo=get_timezone(), locale=get_locale())
        return f"{day}, {format_time(at, 'short')}"
    except (OverflowError, ValueError):
        # A stored time so near the calendar's end that the zone's offset pushes it off.
        return at.strftime("%Y-%m-%d %H:%M UTC")


def _week_names(width: Literal["abbreviated", "wide"]) -> list[str]:
    """The locale's names of the weekdays, Monday first."""
    names = babel.dates.get_day_names(width, locale=get_locale())
    return [names[i] for i in range(7)]


def day_names(days: tuple[str, ...]) -> str:
    """`Mo., Do.`: the locale's short names of these weekdays (`mon` … `sun`)."""
    names = _week_names("abbreviated")
    return ", ".join(names[timing.WEEKDAYS.index(d)] for d in days)


@bp.app_template_global()
def broadcast_time(at: datetime) -> str:
    return day_and_time(at)


# --- the form of a new broadcast ----------------------------------------------------------------


@dataclass
class Draft:
    """A new broadcast as the form gives it, read by the rules of `broadcast create`."""

    form: dict[str, Any]
    audience: Audience | None = None
    content: broadcasts.Content | None = None
    at: datetime | None = None
    cron: str | None = None
    errors: dict[str, str] = field(default_factory=dict)
    # The technical reason behind an error (a Jinja message), shown as it is.
    details: dict[str, str] = field(default_factory=dict)

    @property
    def timing_ok(self) -> bool:
        return not {"at", "days", "weekly_time", "cron"} & set(self.errors)


def default_form() -> dict[str, Any]:
    return {
        "audience": "all",
        "kind": broadcasts.BroadcastKind.TEXT,
        "text": "",
        "template": "",
        "language": "de",
        "params": "",
        "when": "now",
        "at": "",
        "days": [],
        "weekly_time": "10:00",
        "cron": "",
        # A file kept by an earlier post of the form (one asked to confirm, or refused).
        "file_id": "",
        "file_name": "",
        # The template picker: the stored template chosen, and its parameters' sources.
        "template_id": "",
        "picked": {},
    }


def read_form(values: MultiDict[str, str], settings: BusinessSettings, at: datetime) -> Draft:
    """The form's broadcast, checked: every error by its field, in the owner's words."""
    form = default_form()
    for key in form:
        if key == "days":
            form[key] = [d for d in values.getlist("days") if d in timing.WEEKDAYS]
        elif key in values and key != "picked":
            form[key] = values.get(key, "")
    form["picked"] = {k: v for k, v in values.items() if k.startswith(("source_", "text_"))}
    draft = Draft(form)
    errors = draft.errors
    try:
        draft.audience = parse_audience(form["audience"] or "all")
    except ValueError:
        errors["audience"] = gettext("Choose who gets the broadcast.")
    _read_content(draft)
    _read_timing(draft, settings, at)
    if draft.content is not None and not errors.keys() & {"text", "template", "params"}:
        try:
            draft.content.check(settings, at)
        except broadcasts.BroadcastError as exc:
            where = "text" if draft.content.text is not None else "params"
            if "bounds" in str(exc):
                errors[where] = gettext("The message becomes too long for WhatsApp.")
            else:
                errors[where] = gettext("A placeholder in the message is not written correctly.")
            draft.details[where] = str(exc).replace("--text ", "").replace("--param ", "#")
    return draft


def _read_content(draft: Draft) -> None:
    form, errors = draft.form, draft.errors
    if form["kind"] == broadcasts.BroadcastKind.TEMPLATE and str(form["template_id"]):
        _read_picked(draft)
    elif form["kind"] == broadcasts.BroadcastKind.TEMPLATE:
        params = tuple(
            as_template(p.strip()) for p in str(form["params"]).splitlines() if p.strip()
        )
        template = str(form["template"]).strip()
        language = str(form["language"]).strip()
        if not template:
            errors["template"] = gettext("Give the name of an approved WhatsApp template.")
        if not language:
            errors["language"] = gettext("Give the template's language, e.g. de.")
        draft.content = broadcasts.Content(template=template, language=language, params=params)
    else:
        form["kind"] = broadcasts.BroadcastKind.TEXT
        if not str(form["text"]).strip():
            errors["text"] = gettext("Write the message.")
        draft.content = broadcasts.Content(text=as_template(str(form["text"])))


def _read_picked(draft: Draft) -> None:
    """A stored template chosen in the picker: each parameter a contact field (as the Jinja
    rendered for each contact) or a fixed text."""
    form = draft.form
    with get_db().session() as session:
        try:
            template, choices = picked(
                session, {"template_id": form["template_id"], **form["picked"]}
            )
        except TemplateMismatch:
            draft.errors["template"] = gettext("Choose the template.")
            return
    form["template"], form["language"] = template.name, template.language
    params = tuple(jinja_for(choices))
    draft.content = broadcasts.Content(
        template=template.name, language=template.language, params=params, stored=template
    )


def _read_timing(draft: Draft, settings: BusinessSettings, at: datetime) -> None:
    form, errors = draft.form, draft.errors
    when = form["when"] if form["when"] in WHEN_CHOICES else "now"
    form["when"] = when
    if when == "at":
        try:
            local = datetime.fromisoformat(str(form["at"]))
        except ValueError:
            errors["at"] = gettext("Choose a date and a time.")
            return
        if local.tzinfo is None:
            local = local.replace(tzinfo=ZoneInfo(settings.timezone))
        if local < at:
            errors["at"] = gettext("This time has passed: choose a later one.")
        draft.at = local
    elif when == "weekly":
        chosen = _clock_time(str(form["weekly_time"]))
        if chosen is None:
            errors["weekly_time"] = gettext("Choose a time.")
        if not form["days"]:
            errors["days"] = gettext("Choose at least one weekday.")
        if chosen is not None and form["days"]:
            draft.cron = timing.weekly_cron(form["days"], chosen)
    elif when == "cron":
        line = " ".join(str(form["cron"]).split())
        try:
            cron_trigger(line, settings.timezone)
        except ValueError as exc:
            errors["cron"] = gettext("This is not a cron line the scheduler understands.")
            draft.details["cron"] = str(exc)
        else:
            draft.cron = line


def _clock_time(text: str) -> time | None:
    try:
        return time.fromisoformat(text.strip())
    except ValueError:
        return None


# --- what the new broadcast would do --------------------------------------------------------------


def reach_of(draft: Draft, at: datetime) -> broadcasts.Reach:
    if draft.audience is None:
        return broadcasts.Reach(0, 0)
    with get_db().session() as session:
        return broadcasts.reach(session, draft.audience, at)


def overview(
    draft: Draft, reach: broadcasts.Reach, settings: BusinessSettings, at: datetime
) -> dict[str, Any]:
    """The recipients, a preview for the first of them, when it goes out and the warnings:
    for the page and, as JSON, for its script. (No session is open while texts are
    translated: the page's language is read from the database the first time.)"""
    times: list[datetime] = []
    if draft.timing_ok:
        times = timing.send_times(now=at, timezone=settings.timezone, at=draft.at, cron=draft.cron)
    return {
        "recipients": reach.total,
        "reachable": reach.reachable,
        "recipients_text": ngettext(
            "%(num)d contact gets this broadcast.",
            "%(num)d contacts get this broadcast.",
            reach.total,
        ),
        "reachable_text": _reachable_text(draft, reach),
        "preview": _preview(draft, reach, settings, at),
        "when_text": _when_text(draft, times, at),
        "warnings": _warnings(settings, times),
    }


def _reachable_text(draft: Draft, reach: broadcasts.Reach) -> str:
    if draft.form["kind"] == broadcasts.BroadcastKind.TEMPLATE:
        return gettext("An approved template reaches all of them.")
    if reach.total and not reach.reachable:
        return gettext(
            "None of them wrote within the last 24 hours: a text reaches nobody now. "
            "Send an approved template instead."
        )
    return ngettext(
        "%(num)d of them wrote within the last 24 hours and can get a free text now.",
        "%(num)d of them wrote within the last 24 hours and can get a free text now.",
        reach.reachable,
    )


def _preview(
    draft: Draft, reach: broadcasts.Reach, settings: BusinessSettings, at: datetime
) -> dict[str, Any] | None:
    content = draft.content
    if content is None or draft.errors.keys() & {"text", "template", "language", "params"}:
        return None
    if reach.total == 0 or (content.text is not None and not content.text.strip()):
        return None
    name = reach.first_name or ""
    renderer = broadcasts.Renderer(content, settings, at)
    try:
        if content.text is not None:
            text = renderer.render(content.text, name, reach.first_wa_id)
            params: list[str] = []
        else:
            params = [renderer.render(p, name, reach.first_wa_id) for p in content.params]
            text = ""
            if content.stored is not None:  # the wording as this contact reads it
                header, body = content.stored.filled(keyed(content.stored, params))
                text = f"{header}\n{body}" if header else body
                check_values(content.stored, params, media=content.stored.needs_media)
    except TemplateMismatch as exc:  # shown before the owner creates it
        error = gettext(
            "The message does not fit the template: %(reason)s.", reason=mismatch_text(exc)
        )
        return {"for": name, "error": error, "text": "", "params": [], "title": ""}
    except Exception as exc:  # a runtime error of this contact's render, as the run would meet it
        return {"for": name or reach.first_wa_id or "", "error": str(exc), "text": "", "params": []}
    return {
        "for": name or (f"+{reach.first_wa_id}" if reach.first_wa_id else ""),
        "template": content.template,
        "language": content.language,
        "text": text,
        "params": params,
        "error": None,
        "title": gettext("Preview for %(name)s", name=name or f"+{reach.first_wa_id}"),
    }


def _when_text(draft: Draft, times: list[datetime], at: datetime) -> str:
    if not times:
        return ""
    when = draft.form["when"]
    if when == "now":
        return gettext("Goes out as soon as you create it.")
    if when == "at":
        return gettext("Goes out on %(when)s.", when=day_and_time(times[0]))
    weekly = timing.weekly_of(draft.cron or "")
    if weekly is not None:
        days, clock = weekly
        return gettext(
            "Goes out every %(days)s at %(time)s; the first time on %(when)s.",
            days=day_names(days),
            time=format_time(clock, "short", rebase=False),
            when=day_and_time(times[0]),
        )
    return gettext("Goes out first on %(when)s.", when=day_and_time(times[0]))


def _warnings(settings: BusinessSettings, times: list[datetime]) -> list[str]:
    """One line per weekday and time that falls at night or while the shop is closed."""
    lines = []
    seen = set()
    for quiet in timing.quiet_times(settings.hours, times):
        key = (quiet.at.weekday(), quiet.at.time(), quiet.night, quiet.closed)
        if key in seen:
            continue
        seen.add(key)
        when = day_and_time(quiet.at)
        if quiet.night and quiet.closed:
            lines.append(gettext("%(when)s is at night, and the shop is closed.", when=when))
        elif quiet.night:
            lines.append(gettext("%(when)s is at night (22:00 to 07:00).", when=when))
        else:
            lines.append(gettext("%(when)s is outside your opening hours.", when=when))
    return lines


def _labels(session: Session) -> list[str]:
    return list(session.scalars(select(Label.name).order_by(func.lower(Label.name))))


def _new_page(draft: Draft, status: int = 200, confirm: bool = False) -> tuple[str, int]:
    at = now()
    settings = _settings()
    with get_db().session() as session:
        labels = _labels(session)
        picking = picker(session)
    shown = overview(draft, reach_of(draft, at), settings, at)
    return (
        render_template(
            "admin/broadcast_new.html",
            buttons=placeholder_buttons(),
            form=draft.form,
            errors=draft.errors,
            details=draft.details,
            labels=labels,
            overview=shown,
            confirm=confirm,
            accept=accept(HEADER_KINDS),
            weekdays=list(
                zip(
                    timing.WEEKDAYS,
                    _week_names("abbreviated"),
                    _week_names("wide"),
                    strict=True,
                )
            ),
            timezone=settings.timezone,
            picker=picking,
        ),
        status,
    )


@bp.get("/broadcasts/new")
def broadcast_new() -> tuple[str, int]:
    form = default_form()
    audience = request.args.get("audience")
    if audience:
        form["audience"] = audience
    draft = read_form(MultiDict(form), _settings(), now())
    # Nothing is written yet: no error is shown before the owner has tried.
    draft.errors.clear()
    draft.details.clear()
    return _new_page(draft)


@bp.post("/broadcasts/check.json")
def broadcast_check() -> Response:
    at = now()
    settings = _settings()
    draft = read_form(request.form, settings, at)
    return jsonify(overview(draft, reach_of(draft, at), settings, at))


def _media_kinds(draft: Draft) -> frozenset[MediaKind]:
    """A text carries an image; a template's header an image, a video or a document."""
    if draft.form["kind"] == broadcasts.BroadcastKind.TEMPLATE:
        return HEADER_KINDS
    return frozenset({MediaKind.IMAGE})


def _read_media(draft: Draft, at: datetime) -> None:
    """The broadcast's file: uploaded now, or kept from the form's earlier post; checked
    against what WhatsApp takes for the kind of message."""
    form = draft.form
    if request.form.get("remove_file"):
        form["file_id"] = form["file_name"] = ""
    upload = request.files.get("file")
    kinds = _media_kinds(draft)
    with get_db().session() as session:
        if upload is not None and upload.filename:
            try:
                kept = keep_upload(session, upload, now=at, kinds=kinds)
            except Refused as exc:
                draft.errors["file"] = refusal_text(exc)
                return
            form["file_id"], form["file_name"] = str(kept.file.id), kept.name or ""
        file_id = str(form["file_id"])
        if not file_id:
            return
        file = session.get(MediaFile, int(file_id)) if file_id.isdigit() else None
        if file is None:
            form["file_id"] = form["file_name"] = ""
            return
        try:
            kind = check(file.content_type, file.size, kinds)
        except Refused as exc:  # a PDF kept for a template, and then "a text" chosen
            draft.errors["file"] = refusal_text(exc)
            return
        if draft.content is not None:
            shown = str(form["file_name"]) or None
            media = broadcasts.Media(file.id, file.sha256, str(kind), shown)
            draft.content = replace(draft.content, media=media)


UPLOAD_ENDPOINTS.add("admin.broadcast_create")


@bp.post("/broadcasts")
def broadcast_create() -> Any:
    at = now()
    settings = _settings()
    draft = read_form(request.form, settings, at)
    _read_media(draft, at)
    if draft.errors:
        return _new_page(draft, 400)
    times = timing.send_times(now=at, timezone=settings.timezone, at=draft.at, cron=draft.cron)
    if timing.quiet_times(settings.hours, times) and request.form.get("confirmed") != "1":
        # Not refused: the owner sees when it would arrive and confirms.
        audit.nothing_changed()
        return _new_page(draft, 200, confirm=True)
    assert draft.content is not None and draft.audience is not None
    try:
        with get_db().session() as session:
            created = broadcasts.create(
                session,
                draft.content,
                draft.audience,
                timezone=settings.timezone,
                now=at,
                at=draft.at,
                cron=draft.cron,
            )
            broadcast_id = created.id
            log_change(session, audit.Action.BROADCAST_CREATED, subject=f"broadcast:{broadcast_id}")
    except broadcasts.BroadcastError as exc:
        if isinstance(exc.__cause__, TemplateMismatch):  # checked against the stored template
            draft.errors["template"] = gettext(
                "The message does not fit the template: %(reason)s.",
                reason=mismatch_text(exc.__cause__),
            )
            return _new_page(draft, 400)
        draft.errors["text"] = gettext("The broadcast could not be created.")
        draft.details["text"] = str(exc)
        return _new_page(draft, 400)
    flash(gettext("The broadcast is created."))
    return redirect(url_for("admin.broadcast_page", broadcast_id=broadcast_id))


# --- the list -------------------------------------------------------------------------------------


def describe(b: Broadcast, funnel: broadcasts.Funnel, at: datetime) -> dict[str, Any]:
    """How a broadcast shows in the list and on its page; customer-facing text stays as data."""
    audience = parse_audience(b.audience)
    weekly = timing.weekly_of(b.cron) if b.cron is not None else None
    upcoming: datetime | None = None
    if funnel.status in (broadcasts.BroadcastStatus.SCHEDULED, broadcasts.BroadcastStatus.RUNNING):
        if b.cron is not None:
            try:
                found = next_times(trigger_for(b), at, 1)
            except ValueError:
                found = []
            upcoming = found[0] if found else None
        elif funnel.total == 0:
            upcoming = b.at
    return {
        "id": b.id,
        "status": funnel.status,
        "status_word": STATUS_WORDS[funnel.status],
        "label": audience.label,
        "kind": b.kind,
        "text": b.text,
        "template": b.template_name,
        "language": b.language,
        "params": list(b.params or []),
        "media_kind": b.media_kind if b.file_id is not None else None,
        "media_name": b.media_name,
        "cron": b.cron,
        "weekly_days": day_names(weekly[0]) if weekly else None,
        "weekly_time": weekly[1].strftime("%H:%M") if weekly else None,
        "at": b.at,
        "created_at": b.created_at,
        "upcoming": upcoming,
        "funnel": funnel,
        "read_share": _share(funnel.read, funnel.total),
        "can_cancel": funnel.status
        in (broadcasts.BroadcastStatus.SCHEDULED, broadcasts.BroadcastStatus.RUNNING),
    }


def _share(part: int, whole: int) -> str | None:
    return format_percent(part / whole) if whole else None


@bp.get("/broadcasts")
def broadcasts_page() -> str:
    at = now()
    with get_db().session() as session:
        found = list(
            session.scalars(select(Broadcast).order_by(Broadcast.id.desc()).limit(LIST_LIMIT))
        )
        stats = broadcasts.funnels(session, found)
        # Coming broadcasts whose template Meta paused, rejected or moved to marketing.
        flags = template_flags(session, found, stats)
    items = [describe(b, stats[b.id], at) for b in found]
    coming = [i for i in items if i["can_cancel"]]
    # The next one first; a broadcast without a next time (sending now) before them.
    coming.sort(key=lambda i: (i["upcoming"] is not None, i["upcoming"] or at))
    past = [i for i in items if not i["can_cancel"]]
    return render_template("admin/broadcasts.html", coming=coming, past=past, flags=flags)


# --- one broadcast ------------------------------------------------------------------------------


def funnel_rows(funnel: broadcasts.Funnel) -> list[dict[str, Any]]:
    rows = []
    for key, label in FUNNEL:
        count = getattr(funnel, key)
        share = count / funnel.total if funnel.total else 0.0
        rows.append(
            {
                "key": key,
                "label": label,
                "count": count,
                "percent": format_percent(share) if funnel.total else None,
                "width": round(100 * share, 1),
            }
        )
    return rows


def shown_number(wa_id: str) -> str:
    """`+49 151 00000001`: a WhatsApp id as an international number, spaced where
    `phonenumbers` knows the country; as it is otherwise."""
    try:
        parsed = phonenumbers.parse(f"+{wa_id}")
    except phonenumbers.NumberParseException:
        return f"+{wa_id}"
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _reason(status: str, reason: str | None) -> tuple[Any, bool]:
    """The reason shown for a message, and whether it is ours (translated) or the API's."""
    if reason is None or status not in (MessageStatus.FAILED, MessageStatus.SKIPPED):
        return None, True
    if reason in REASONS:
        return REASONS[reason], True
    return reason, False


@bp.get("/broadcasts/<int:broadcast_id>")
def broadcast_page(broadcast_id: int) -> str:
    at = now()
    with get_db().session() as session:
        b = session.get(Broadcast, broadcast_id)
        if b is None:
            abort(404)
        funnel = broadcasts.funnels(session, [b])[broadcast_id]
        flag = template_flags(session, [b], {broadcast_id: funnel}).get(broadcast_id)
        read = func.coalesce(func.sum(case((Message.status == MessageStatus.READ, 1), else_=0)), 0)
        runs = [
            {
                "due_at": r.due_at,
                "status": RUN_WORDS.get(r.status, r.status),
                "count": int(count or 0),
                "read": int(read_count or 0),
            }
            for r, count, read_count in session.execute(
                select(BroadcastRun, func.count(Message.id), read)
                .outerjoin(Message, Message.broadcast_run_id == BroadcastRun.id)
                .where(BroadcastRun.broadcast_id == broadcast_id)
                .group_by(BroadcastRun.id)
                .order_by(BroadcastRun.due_at.desc())
            )
        ]
        rows = session.execute(
            select(
                Contact.name,
                Contact.wa_id,
                Contact.user_id,
                Message.status,
                Message.error_reason,
                BroadcastRun.due_at,
            )
            .join(Message, Message.broadcast_run_id == BroadcastRun.id)
            .join(Contact, Contact.id == Message.contact_id)
            .where(BroadcastRun.broadcast_id == broadcast_id)
            .order_by(BroadcastRun.due_at.desc(), Contact.name, Contact.id)
            .limit(RECIPIENTS_SHOWN)
        ).all()
        settings = business_settings(session)
        finish = pacing.finish_of(session, broadcast_id, settings, at)
        failures = [
            {"code": code, "explained": FAILURE_CODES.get(code) if code else None,
             "reason": reason, "count": count}
            for code, reason, count in pacing.failure_reasons(session, broadcast_id)
        ]  # fmt: skip
    item = describe(b, funnel, at)
    recipients = []
    for name, wa_id, user_id, status, error_reason, due_at in rows:
        reason, ours = _reason(status, error_reason)
        recipients.append(
            {
                "name": name,
                "number": shown_number(wa_id) if wa_id else (user_id or ""),
                "status": status,
                "status_word": MESSAGE_WORDS.get(status, status),
                "reason": reason,
                "reason_ours": ours,
                "due_at": due_at,
            }
        )
    return render_template(
        "admin/broadcast.html",
        b=item,
        rows=funnel_rows(funnel),
        runs=runs,
        recipients=recipients,
        shown=RECIPIENTS_SHOWN,
        several_runs=len(runs) > 1,
        flag=flag,
        finish=finish.astimezone(ZoneInfo(settings.timezone)) if finish else None,
        failures=failures,
    )


@bp.post("/broadcasts/<int:broadcast_id>/cancel")
def broadcast_cancel(broadcast_id: int) -> Response:
    try:
        with get_db().session() as session:
            if session.get(Broadcast, broadcast_id) is None:
                abort(404)
            withdrawn = broadcasts.cancel(session, broadcast_id, now())
            log_change(
                session, audit.Action.BROADCAST_CANCELLED, subject=f"broadcast:{broadcast_id}"
            )
    except broadcasts.BroadcastError:
        flash(gettext("This broadcast has been sent already: it cannot be cancelled."), "error")
    else:
        flash(
            ngettext(
                "The broadcast is cancelled; %(num)d message was withdrawn.",
                "The broadcast is cancelled; %(num)d messages were withdrawn.",
                withdrawn,
            )
        )
    return redirect(url_for("admin.broadcast_page", broadcast_id=broadcast_id))


def summary(values: Mapping[str, Any]) -> str:
    """The first line of a text, shortened, for the list."""
    text = " ".join(readable_text(str(values.get("text") or "")).split())
    return text if len(text) <= 90 else text[:89].rstrip() + "…"


@bp.app_template_filter("readable_text")
def readable_text(source: str) -> str:
    """A broadcast's text as the owner wrote it: placeholders, not Jinja, where it can be."""
    return readable(source or "", page_language())


@bp.app_template_filter("broadcast_summary")
def broadcast_summary(item: Mapping[str, Any]) -> str:
    return summary(item)
