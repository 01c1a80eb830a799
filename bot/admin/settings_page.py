"""The settings page: the form is written out as a settings file and saved like `settings import`.

The form becomes YAML one field per line, so a SettingsError's line names the form field it
came from and the error is shown next to that field. The previews run `bot.autoreply.simulate`,
the code behind the `simulate` command, on the settings as they stand in the form.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import babel.dates
import holidays
from flask import flash, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from bot import replies
from bot.admin.blueprint import bp, now
from bot.autoreply import simulate
from bot.db import get_db
from bot.hours import OpeningHours, format_interval, is_open, next_close, next_open
from bot.models import Business
from bot.rules import Rule, keyword_hits
from bot.settings import (
    DAYS,
    WHEN,
    BusinessSettings,
    KeywordRule,
    SettingsError,
    parse_settings,
)
from bot.settings.stored import BUSINESS_ID, load_settings, save_settings, seed_demo

DAY_NAMES = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}
PREVIEW_TEXT_MAX = 1000
_ROW = re.compile(r"(?P<group>[a-z]+)-(?P<index>\d{1,3})-(?P<part>[a-z]+)")
_HOURS_ROW = re.compile(r"hours-(?P<day>[a-z]{3})-(?P<index>\d{1,2})-(?P<part>start|end)")
_NUMBER = re.compile(r"\s*\d+(\.\d+)?\s*")
_DATE = re.compile(r"\s*\d{4}-\d{2}-\d{2}\s*")


@dataclass
class FormState:
    """The settings form's values, as typed (strings), in the order the page shows them."""

    name: str = ""
    timezone: str = ""
    locale: str = ""
    hours: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    holiday_country: str = ""
    holiday_subdivision: str = ""
    closures: list[dict[str, str]] = field(default_factory=list)
    specials: list[dict[str, str]] = field(default_factory=list)
    optout_stop: str = ""
    optout_start: str = ""
    keywords: list[dict[str, str]] = field(default_factory=list)
    away_on: bool = False
    away_template: str = "away"
    away_cooldown: str = "12"
    greeting_on: bool = False
    greeting_template: str = "greeting"
    greeting_days: str = "14"
    stale_minutes: str = "60"
    pause_minutes: str = "120"
    # Not on the page yet, only carried through it (hidden), so saving the form keeps them.
    retention_messages: str = ""
    retention_media: str = ""
    templates: list[dict[str, str]] = field(default_factory=list)


# --- settings → form --------------------------------------------------------------------------


def _interval_pair(text: str) -> tuple[str, str]:
    start, _, end = text.partition("-")
    # A time input cannot show 24:00; 00:00 to 00:00 means the whole day on this form.
    return start, "00:00" if end == "24:00" else end


def _num_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _days_text(days: int | None) -> str:
    return "" if days is None else str(days)


def state_from_settings(s: BusinessSettings) -> FormState:
    h = s.hours
    lang = replies.language(s.locale)
    state = FormState(
        name=s.name,
        timezone=s.timezone,
        locale=s.locale,
        hours={
            day: [_interval_pair(format_interval(iv)) for iv in h.weekly[i]]
            for i, day in enumerate(DAYS)
        },
        holiday_country=h.holiday_country or "",
        holiday_subdivision=h.holiday_subdivision or "",
        closures=[
            {"from": c.start.isoformat(), "to": c.end.isoformat(), "reason": c.reason}
            for c in h.closures
        ],
        specials=[
            {
                "date": sd.day.isoformat(),
                "hours": ", ".join(format_interval(iv) for iv in sd.intervals),
            }
            for sd in h.special_days
        ],
        optout_stop=", ".join(s.optout_stop),
        optout_start=", ".join(s.optout_start),
        keywords=[
            {
                "mode": "pattern" if k.pattern is not None else "words",
                "match": k.pattern if k.pattern is not None else ", ".join(k.match),
                "template": k.template,
                "when": k.when,
            }
            for k in s.keywords
        ],
        away_on=s.away is not None,
        away_template=s.away.template if s.away else "away",
        away_cooldown=_num_text(s.away.cooldown_hours) if s.away else "12",
        greeting_on=s.greeting is not None,
        greeting_template=s.greeting.template if s.greeting else "greeting",
        greeting_days=_num_text(s.greeting.after_inactive_days) if s.greeting else "14",
        stale_minutes=str(s.stale_after_minutes),
        pause_minutes=str(s.human_pause_minutes),
        retention_messages=_days_text(s.retention.messages_days),
        retention_media=_days_text(s.retention.media_days),
    )
    # Every text a rule can send, custom or built in, so each can be edited in place.
    names = ["away", "greeting", *(k.template for k in s.keywords), "optout", "optin"]
    names += [*s.templates, *sorted(replies.default_template_names(lang))]
    seen: set[str] = set()
    for name in names:
        if name in seen:
            continue
        seen.add(name)
        default = replies.default_source(lang, name) or ""
        source = s.templates.get(name, default)
        if source or name in s.templates:
            state.templates.append({"name": name, "source": source, "default": default})
    return state


# --- request → form ---------------------------------------------------------------------------


def _rows(form: MultiDict[str, str], group: str) -> list[dict[str, str]]:
    rows: dict[int, dict[str, str]] = {}
    for key, value in form.items():
        match = _ROW.fullmatch(key)
        if match and match["group"] == group:
            rows.setdefault(int(match["index"]), {})[match["part"]] = value
    return [rows[i] for i in sorted(rows)]


def state_from_form(form: MultiDict[str, str]) -> FormState:
    hours: dict[str, dict[int, dict[str, str]]] = {day: {} for day in DAYS}
    for key, value in form.items():
        match = _HOURS_ROW.fullmatch(key)
        if match and match["day"] in hours:
            hours[match["day"]].setdefault(int(match["index"]), {})[match["part"]] = value.strip()
    state = FormState(
        name=form.get("name", ""),
        timezone=form.get("timezone", "").strip(),
        locale=form.get("locale", "").strip(),
        hours={
            day: [
                (row.get("start", ""), row.get("end", ""))
                for _, row in sorted(slots.items())
                if row.get("start") or row.get("end")
            ]
            for day, slots in hours.items()
        },
        holiday_country=form.get("holiday_country", "").strip(),
        holiday_subdivision=form.get("holiday_subdivision", "").strip(),
        closures=[r for r in _rows(form, "closure") if any(v.strip() for v in r.values())],
        specials=[r for r in _rows(form, "special") if r.get("date", "").strip()],
        optout_stop=form.get("optout_stop", ""),
        optout_start=form.get("optout_start", ""),
        keywords=[r for r in _rows(form, "kw") if r.get("match", "").strip()],
        away_on=bool(form.get("away_on")),
        away_template=form.get("away_template", "").strip(),
        away_cooldown=form.get("away_cooldown", "").strip(),
        greeting_on=bool(form.get("greeting_on")),
        greeting_template=form.get("greeting_template", "").strip(),
        greeting_days=form.get("greeting_days", "").strip(),
        stale_minutes=form.get("stale_minutes", "").strip(),
        pause_minutes=form.get("pause_minutes", "").strip(),
        retention_messages=form.get("retention_messages", "").strip(),
        retention_media=form.get("retention_media", "").strip(),
    )
    lang = replies.language(state.locale)
    for row in _rows(form, "tpl"):
        name = row.get("name", "").strip()
        if not name:
            continue
        source = row.get("source", "").replace("\r\n", "\n")
        default = replies.default_source(lang, name) or ""
        state.templates.append({"name": name, "source": source, "default": default})
    return state


# --- form → settings file ---------------------------------------------------------------------


def quote(text: str) -> str:
    """A YAML double-quoted scalar on one line, for any text."""
    out = ['"']
    for ch in text:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch.isprintable() and ch not in "\u2028\u2029\x85\ufeff":
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


def _list(items: list[str]) -> str:
    return "[" + ", ".join(quote(i) for i in items) + "]"


def _words(text: str) -> list[str]:
    return [w.strip() for w in text.split(",") if w.strip()]


def _number(text: str) -> str:
    # A number as typed goes in bare; anything else quoted, so the parser names the field.
    return text.strip() if _NUMBER.fullmatch(text) else quote(text)


def _date(text: str) -> str:
    return text.strip() if _DATE.fullmatch(text) else quote(text)


def _interval(start: str, end: str) -> str:
    if start == "00:00" and end == "00:00":
        return "00:00-24:00"
    return f"{start}-{end}"


def to_yaml(state: FormState) -> tuple[str, dict[int, str]]:
    """The settings file for the form, and which form field each line came from."""
    lines: list[str] = []
    fields: dict[int, str] = {}

    def emit(text: str, field_name: str | None = None) -> None:
        lines.append(text)
        if field_name:
            fields[len(lines)] = field_name

    emit("business:", "name")
    emit(f"  name: {quote(state.name)}", "name")
    emit(f"  timezone: {quote(state.timezone)}", "timezone")
    emit(f"  locale: {quote(state.locale)}", "locale")
    emit("hours:", "hours")
    for day in DAYS:
        intervals = [_interval(s, e) for s, e in state.hours.get(day, [])]
        emit(f"  {day}: {_list(intervals)}", f"hours-{day}")
    if state.holiday_country or state.holiday_subdivision:
        parts = []
        if state.holiday_country:
            parts.append(f"country: {quote(state.holiday_country)}")
        if state.holiday_subdivision:
            parts.append(f"subdivision: {quote(state.holiday_subdivision)}")
        emit("public_holidays: {" + ", ".join(parts) + "}", "holidays")
    if state.closures:
        emit("closures:", "closures")
        for i, row in enumerate(state.closures):
            reason = row.get("reason", "").strip()
            emit(
                f"  - {{from: {_date(row.get('from', ''))}, to: {_date(row.get('to', ''))}"
                + (f", reason: {quote(reason)}" if reason else "")
                + "}",
                f"closure-{i}",
            )
    if state.specials:
        emit("special_hours:", "specials")
        for i, row in enumerate(state.specials):
            intervals = _words(row.get("hours", ""))
            emit(
                f"  - {{date: {_date(row.get('date', ''))}, hours: {_list(intervals)}}}",
                f"special-{i}",
            )
    emit("replies:", "replies")
    emit(
        f"  optout: {{stop: {_list(_words(state.optout_stop))}, "
        f"start: {_list(_words(state.optout_start))}}}",
        "optout",
    )
    emit("  keywords:" + ("" if state.keywords else " []"), "keywords")
    for i, row in enumerate(state.keywords):
        if row.get("mode") == "pattern":
            what = f"pattern: {quote(row.get('match', ''))}"
        else:
            what = f"match: {_list(_words(row.get('match', '')))}"
        when = row.get("when", "always") or "always"
        emit(
            f"    - {{{what}, template: {quote(row.get('template', '').strip())}, when: {quote(when)}}}",
            f"kw-{i}",
        )
    if state.away_on:
        emit(
            f"  away: {{template: {quote(state.away_template)}, "
            f"cooldown_hours: {_number(state.away_cooldown)}}}",
            "away",
        )
    if state.greeting_on:
        emit(
            f"  greeting: {{template: {quote(state.greeting_template)}, "
            f"after_inactive_days: {_number(state.greeting_days)}}}",
            "greeting",
        )
    emit(f"  stale_after_minutes: {_number(state.stale_minutes)}", "stale")
    emit(f"  human_pause_minutes: {_number(state.pause_minutes)}", "pause")
    kept = [
        f"{key}: {_number(value)}"
        for key, value in (
            ("messages_days", state.retention_messages),
            ("media_days", state.retention_media),
        )
        if value
    ]
    if kept:
        emit("retention: {" + ", ".join(kept) + "}")
    custom = [
        (i, row)
        for i, row in enumerate(state.templates)
        # An unchanged built-in text stays built in (it follows the language); an emptied
        # one falls back to it.
        if row["source"].strip() and row["source"].strip() != row["default"].strip()
    ]
    if custom:
        emit("templates:", "templates")
        for i, row in custom:
            emit(f"  {quote(row['name'])}: {quote(row['source'])}", f"tpl-{i}")
    return "\n".join(lines) + "\n", fields


def validate(state: FormState) -> tuple[str, BusinessSettings | None, dict[str, str]]:
    """The settings file, the parsed settings (None if invalid) and errors by field."""
    text, fields = to_yaml(state)
    try:
        return text, parse_settings(text, try_templates=True), {}
    except SettingsError as exc:
        where = fields.get(exc.line, "general") if exc.line is not None else "general"
        return text, None, {where: exc.reason}


# --- previews ---------------------------------------------------------------------------------

# How late the late-message previews arrive: past the usual limit for away and greeting
# (an hour) but within the day keyword answers keep coming, and past that day.
LATE = timedelta(hours=2)
VERY_LATE = timedelta(days=2)
LATE_ROWS = ("late-away", "late-keyword", "late-old", "late-optout")

# What the previews say, in the business's language (German for de*, else English), as the
# reply texts they show are: the shop owner reads both side by side.
WORDS: dict[str, dict[str, str]] = {
    "open": {"en": "open", "de": "geöffnet"},
    "closed": {"en": "closed", "de": "geschlossen"},
    "never_closed": {
        "en": "never closed within a year",
        "de": "innerhalb eines Jahres nie geschlossen",
    },
    "never_open": {
        "en": "never open within a year",
        "de": "innerhalb eines Jahres nie geöffnet",
    },
    "never_matching_time": {
        "en": "never at a matching time within a year",
        "de": "innerhalb eines Jahres nie zur passenden Zeit",
    },
    "type_matching": {
        "en": "type a matching message into the test box to see this reply",
        "de": "Geben Sie oben eine passende Testnachricht ein, um diese Antwort zu sehen",
    },
    "title:late-away": {
        "en": "Arrives 2 hours late, while you are closed:",
        "de": "Kommt 2 Stunden zu spät an, während geschlossen ist:",
    },
    "title:late-keyword": {
        "en": "A keyword question, 2 hours late:",
        "de": "Eine Frage mit Stichwort, 2 Stunden zu spät:",
    },
    "title:late-old": {
        "en": "Arrives 2 days late:",
        "de": "Kommt 2 Tage zu spät an:",
    },
    "title:late-optout": {
        "en": "A stop word, 2 days late:",
        "de": "Ein Stopp-Wort, 2 Tage zu spät:",
    },
    "late_unanswered": {
        "en": "Kept in the inbox, no automatic reply: it was sent more than {minutes} minutes "
        "before it arrived, too late for an away or greeting message.",
        "de": "Landet im Posteingang, ohne automatische Antwort: Die Nachricht wurde mehr als "
        "{minutes} Minuten vor dem Eintreffen geschickt – zu spät für eine Abwesenheits- oder "
        "Begrüßungsnachricht.",
    },
    "day_old_unanswered": {
        "en": "Kept in the inbox, no automatic reply at all: after a day nothing is answered "
        "automatically, not even a keyword.",
        "de": "Landet im Posteingang, ganz ohne automatische Antwort: Nach einem Tag wird "
        "nichts mehr automatisch beantwortet, auch kein Stichwort.",
    },
    "never_answered": {
        "en": "Kept in the inbox, no automatic reply (there would be none on time either).",
        "de": "Landet im Posteingang, ohne automatische Antwort (auch pünktlich käme keine).",
    },
    "still_answered_keyword": {
        "en": "Still answered: keyword questions get their answer for up to a day.",
        "de": "Wird trotzdem beantwortet: Fragen mit Stichwort bekommen bis zu einen Tag lang "
        "ihre Antwort.",
    },
    "still_answered": {
        "en": "Still answered: it arrived within {minutes} minutes of being sent.",
        "de": "Wird trotzdem beantwortet: Die Nachricht kam binnen {minutes} Minuten nach dem "
        "Absenden an.",
    },
    "optout_applied": {
        "en": "Unsubscribed: this customer gets no more offers and news. No confirmation is "
        "sent, the word came more than a day late.",
        "de": "Abgemeldet: Dieser Kunde bekommt keine Angebote und Neuigkeiten mehr. Eine "
        "Bestätigung geht nicht mehr raus, das Wort kam über einen Tag zu spät.",
    },
    "no_keywords": {
        "en": "Add a keyword rule with words to see this.",
        "de": "Legen Sie eine Stichwort-Regel mit Wörtern an, um das hier zu sehen.",
    },
    "no_stop_words": {
        "en": "No stop words set.",
        "de": "Keine Stopp-Wörter eingetragen.",
    },
}


def say(key: str, lang: str, **values: object) -> str:
    """A preview's wording in `lang` ("de" or "en")."""
    texts = WORDS[key]
    return texts.get(lang, texts["en"]).format(**values)


def late_titles(locale: str) -> dict[str, str]:
    """The late-message previews' headings, in the language of `locale`."""
    lang = replies.language(locale)
    return {key: say(f"title:{key}", lang) for key in LATE_ROWS}


def _preview_at(text: str, tz: ZoneInfo, default: datetime) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return default
    return value.replace(tzinfo=tz) if value.tzinfo is None else value


def _keyword_moment(
    rule: KeywordRule, hours: OpeningHours, at: datetime, open_now: bool
) -> datetime | None:
    # The first moment from `at` on when the rule answers at all.
    if rule.when == "open" and not open_now:
        return next_open(hours, at)
    if rule.when == "closed" and open_now:
        return next_close(hours, at)
    return at


def previews(settings: BusinessSettings, *, at: datetime, text: str) -> dict[str, dict[str, Any]]:
    """What each rule would send, each at a moment it applies, and what happens to a message
    that arrives late; all through `simulate`."""
    tz = ZoneInfo(settings.timezone)
    hours = settings.hours
    lang = replies.language(settings.locale)
    open_now = is_open(hours, at)
    out: dict[str, dict[str, Any]] = {}

    def when(moment: datetime, open_then: bool) -> str:
        return _when(moment, tz, settings.locale, say("open" if open_then else "closed", lang))

    def run(key: str, message: str | None, moment: datetime | None, *, missing: str) -> None:
        if moment is None:
            out[key] = {"rule": None, "text": None, "when": "", "note": say(missing, lang)}
            return
        result = simulate(settings, text=message, at=moment)
        out[key] = {
            "rule": result.rule,
            "text": result.text,
            "when": when(moment, result.is_open),
            "note": None,
        }

    def late(
        key: str,
        message: str | None,
        moment: datetime | None,
        sent_before: timedelta,
        *,
        missing: str,
        unanswered: str,
    ) -> None:
        # The message once on time and once late: the difference is the late policy's
        # doing, so the rules stay in one place and only their outcome is put into words.
        title = say(f"title:{key}", lang)
        if moment is None:
            out[key] = {
                "title": title,
                "rule": None,
                "text": None,
                "when": "",
                "note": say(missing, lang),
            }
            return
        on_time = simulate(settings, text=message, at=moment)
        result = simulate(settings, text=message, at=moment, sent_at=moment - sent_before)
        minutes = settings.stale_after_minutes
        if result.text is not None:
            note = "still_answered_keyword" if result.rule == Rule.KEYWORD else "still_answered"
        elif result.rule == Rule.OPTOUT:
            note = "optout_applied"
        elif on_time.rule is not None:
            note = unanswered
        else:
            note = "never_answered"
        out[key] = {
            "title": title,
            "rule": result.rule,
            "text": result.text,
            "when": when(moment, result.is_open),
            "note": say(note, lang, minutes=minutes),
        }

    run("custom", text or None, at, missing="")  # `at` itself: never missing
    closed_at = at if not open_now else next_close(hours, at)
    run("away", None, closed_at, missing="never_closed")
    opened_at = at if open_now else next_open(hours, at)
    run("greeting", None, opened_at, missing="never_open")
    # The same bounded search as for a customer's message: a test text is as untrusted.
    hits = keyword_hits(settings.keywords, text)
    question: tuple[str, datetime | None] | None = None  # the first keyword rule's question
    for i, rule in enumerate(settings.keywords):
        moment = _keyword_moment(rule, hours, at, open_now)
        if rule.pattern is not None:
            if i not in hits.found:
                note = say("type_matching", lang)
                out[f"kw-{i}"] = {"rule": None, "text": None, "when": "", "note": note}
                continue
            sample = text
        else:
            sample = rule.match[0]
        if question is None:
            question = (sample, moment)
        run(f"kw-{i}", sample, moment, missing="never_matching_time")

    late("late-away", None, closed_at, LATE, missing="never_closed", unanswered="late_unanswered")
    sample_text, sample_at = question or (None, None)
    late(
        "late-keyword",
        sample_text,
        sample_at,
        LATE,
        missing="no_keywords" if question is None else "never_matching_time",
        unanswered="late_unanswered",
    )
    # The keyword question if there is one: after a day not even that is answered.
    if sample_at is None:
        sample_text, sample_at = None, closed_at
    late(
        "late-old",
        sample_text,
        sample_at,
        VERY_LATE,
        missing="never_closed",
        unanswered="day_old_unanswered",
    )
    stop = settings.optout_stop[0] if settings.optout_stop else None
    late(
        "late-optout",
        stop,
        at if stop else None,
        VERY_LATE,
        missing="no_stop_words",
        unanswered="day_old_unanswered",
    )
    return out


def _when(moment: datetime, tz: ZoneInfo, locale: str, open_word: str) -> str:
    local = moment.astimezone(tz)
    try:
        day = babel.dates.format_date(local, "full", locale=locale)
        text = f"{day}, {babel.dates.format_time(local, 'short', locale=locale)}"
    except (ValueError, LookupError):
        text = local.strftime("%a %Y-%m-%d %H:%M")
    return f"{text} ({open_word})"


# --- choices ----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def zones() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones() - {"localtime", "posixrules", "Factory"}))


@lru_cache(maxsize=1)
def countries() -> tuple[tuple[str, tuple[str, ...]], ...]:
    found = holidays.list_supported_countries()
    return tuple((code, tuple(subs)) for code, subs in sorted(found.items()))


LOCALES = ("de_DE", "de_AT", "de_CH", "en_US", "en_GB", "fr_FR", "it_IT", "es_ES", "nl_NL")


def _render(state: FormState, errors: dict[str, str], status: int = 200) -> tuple[str, int]:
    subdivisions: tuple[str, ...] = ()
    for code, subs in countries():
        if code == state.holiday_country:
            subdivisions = subs
    return (
        render_template(
            "admin/settings.html",
            state=state,
            errors=errors,
            days=DAYS,
            day_names=DAY_NAMES,
            whens=WHEN,
            zones=zones(),
            countries=[code for code, _ in countries()],
            subdivisions=subdivisions,
            locales=LOCALES,
            late_titles=late_titles(state.locale),
            preview_at=now()
            .astimezone(ZoneInfo(state.timezone or "UTC"))
            .strftime("%Y-%m-%dT%H:%M")
            if state.timezone in zones()
            else now().strftime("%Y-%m-%dT%H:%M"),
        ),
        status,
    )


def _current() -> BusinessSettings:
    with get_db().session() as session:
        seed_demo(session)
        settings = load_settings(session)
    assert settings is not None  # just seeded
    return settings


@bp.get("/settings")
def settings() -> tuple[str, int]:
    return _render(state_from_settings(_current()), {})


@bp.post("/settings")
def settings_save() -> Any:
    state = state_from_form(request.form)
    text, parsed, errors = validate(state)
    if parsed is None:
        return _render(state, errors, 400)
    with get_db().session() as session:
        save_settings(session, text)
    flash("Settings saved.")
    return redirect(url_for("admin.settings"))


@bp.post("/settings/preview")
def settings_preview() -> Response:
    state = state_from_form(request.form)
    _text, parsed, errors = validate(state)
    if parsed is None:
        return jsonify(ok=False, errors=errors)
    tz = ZoneInfo(parsed.timezone)
    at = _preview_at(request.form.get("preview_at", ""), tz, now())
    text = request.form.get("preview_text", "")[:PREVIEW_TEXT_MAX]
    return jsonify(ok=True, errors={}, previews=previews(parsed, at=at, text=text))


@bp.route("/settings/yaml", methods=["GET", "POST"])
def settings_yaml() -> Any:
    error = None
    if request.method == "POST":
        text = request.form.get("yaml", "").replace("\r\n", "\n")
        try:
            with get_db().session() as session:
                save_settings(session, text)
        except SettingsError as exc:
            error = str(exc)
        else:
            flash("Settings saved.")
            return redirect(url_for("admin.settings_yaml"))
    else:
        _current()
        with get_db().session() as session:
            text = (
                session.scalar(select(Business.settings_yaml).where(Business.id == BUSINESS_ID))
                or ""
            )
    return render_template("admin/settings_yaml.html", text=text, error=error), (
        400 if error else 200
    )
