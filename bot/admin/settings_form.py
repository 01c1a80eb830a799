"""The settings pages' form: settings ⇄ form values ⇄ a settings file, with field names.

A section's form is laid over the stored settings (`merge`) and the whole is written out as a
settings file one field per line, so that it is checked exactly as `settings import` checks a
file, and a SettingsError's line names the form field it came from. Reply texts are edited as
plain text with placeholders (bot.placeholders) or, switched to "advanced", as Jinja.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext
from werkzeug.datastructures import MultiDict

from bot import replies
from bot.admin.follow_up_form import read_follow_up
from bot.hours import format_interval
from bot.placeholders import from_jinja, to_jinja
from bot.settings import DAYS, BroadcastHours, BusinessSettings, SettingsError, parse_settings

_ROW = re.compile(r"(?P<group>[a-z]+)-(?P<index>\d{1,3})-(?P<part>[a-z]+)")
_HOURS_ROW = re.compile(r"hours-(?P<day>[a-z]{3})-(?P<index>\d{1,2})-(?P<part>start|end)")
_NUMBER = re.compile(r"\s*\d+(\.\d+)?\s*")
_DATE = re.compile(r"\s*\d{4}-\d{2}-\d{2}\s*")
# The names given to keyword answers written on the keywords page.
_KEYWORD_NAME = re.compile(r"keyword-(\d+)")

# What each section's page edits; saving a section takes only these from its form.
SECTIONS: dict[str, tuple[str, ...]] = {
    "business": ("name", "timezone", "locale"),
    "hours": ("hours", "specials"),
    "closures": ("holiday_country", "holiday_subdivision", "closures"),
    "answers": (
        "away_on",
        "away_once",
        "away_cooldown",
        "away_source",
        "away_advanced",
        "greeting_on",
        "greeting_days",
        "greeting_source",
        "greeting_advanced",
        "follow_up_on",
        "follow_up_template",
        "follow_up_language",
        "follow_up_params",
        "optout_stop",
        "optout_start",
        "stale_minutes",
        "pause_minutes",
        "inbox_read",
        "inbox_typing",
    ),
    "keywords": ("keywords",),
}


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
    # True: once per closed time; False: at most every `away_cooldown` hours.
    away_once: bool = True
    away_cooldown: str = "12"
    away_source: str = ""
    away_advanced: bool = False
    greeting_on: bool = False
    greeting_template: str = "greeting"
    greeting_days: str = "14"
    greeting_source: str = ""
    greeting_advanced: bool = False
    # The template follow-up after a closure: the template by name and language, and its
    # parameters as Jinja sources (bot.admin.follow_up_form shows and reads them).
    follow_up_on: bool = False
    follow_up_template: str = ""
    follow_up_language: str = ""
    follow_up_params: list[str] = field(default_factory=list)
    stale_minutes: str = "60"
    pause_minutes: str = "120"
    inbox_read: bool = False
    inbox_typing: bool = True
    # Not on the pages, kept as stored.
    retention_messages: str = ""
    retention_media: str = ""
    broadcasts: str = ""  # the quiet hours as a flow mapping; "" for the defaults
    templates: list[dict[str, str]] = field(default_factory=list)
    # The section whose texts were edited ("" for all): the others stay as stored.
    edited: str = ""


# --- settings → form --------------------------------------------------------------------------


def _interval_pair(text: str) -> tuple[str, str]:
    start, _, end = text.partition("-")
    # A time input cannot show 24:00; 00:00 to 00:00 means the whole day on this form.
    return start, "00:00" if end == "24:00" else end


def _num_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _days_text(days: int | None) -> str:
    return "" if days is None else str(days)


def _source_of(s: BusinessSettings, name: str) -> str:
    """The text a template name sends: the settings' own, else the built-in one."""
    found = s.templates.get(name)
    if found is not None:
        return found
    return replies.default_source(replies.language(s.locale), name) or ""


def _broadcast_hours(s: BusinessSettings) -> str:
    hours = s.broadcasts
    if hours == BroadcastHours():
        return ""
    until = "24:00" if hours.send_until is None else hours.send_until.strftime("%H:%M")
    return (
        f'{{send_from: "{hours.send_from.strftime("%H:%M")}", send_until: "{until}", '
        f"on_closed_holidays: {_flag(hours.on_closed_holidays)}}}"
    )


def state_from_settings(s: BusinessSettings) -> FormState:
    h = s.hours
    lang = replies.language(s.locale)
    away_name = s.away.template if s.away else "away"
    greeting_name = s.greeting.template if s.greeting else "greeting"
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
                "source": _source_of(s, k.template),
                "advanced": "",
                "filename": k.file.name if k.file is not None else "",
                "filesha": k.file.sha256 if k.file is not None else "",
            }
            for k in s.keywords
        ],
        away_on=s.away is not None,
        away_template=away_name,
        away_once=s.away.once_per_closure if s.away else True,
        away_cooldown=(
            _num_text(s.away.cooldown_hours)
            if s.away is not None and s.away.cooldown_hours is not None
            else "12"
        ),
        away_source=_source_of(s, away_name),
        greeting_on=s.greeting is not None,
        greeting_template=greeting_name,
        greeting_days=_num_text(s.greeting.after_inactive_days) if s.greeting else "14",
        greeting_source=_source_of(s, greeting_name),
        follow_up_on=s.follow_up is not None,
        follow_up_template=s.follow_up.template if s.follow_up else "",
        follow_up_language=s.follow_up.language if s.follow_up else "",
        follow_up_params=list(s.follow_up.params) if s.follow_up else [],
        stale_minutes=str(s.stale_after_minutes),
        pause_minutes=str(s.human_pause_minutes),
        inbox_read=s.inbox.read_receipts,
        inbox_typing=s.inbox.typing_indicator,
        retention_messages=_days_text(s.retention.messages_days),
        retention_media=_days_text(s.retention.media_days),
        broadcasts=_broadcast_hours(s),
    )
    for name, source in s.templates.items():
        default = replies.default_source(lang, name) or ""
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


def read_text(values: Any, prefix: str) -> tuple[str, bool]:
    """A reply text from a form: the Jinja it stands for, and whether it was written as Jinja
    ("advanced") rather than as plain text with placeholders."""
    advanced = bool(values.get(f"{prefix}-advanced"))
    if advanced:
        source = values.get(f"{prefix}-jinja", "")
    else:
        source = to_jinja(values.get(f"{prefix}-text", ""))
    return source.replace("\r\n", "\n"), advanced


@dataclass(frozen=True)
class TextView:
    """A reply text as its editor shows it: plain with placeholders, or Jinja."""

    plain: str
    jinja: str
    advanced: bool


def text_view(source: str, advanced: bool, lang: str) -> TextView:
    """How to show `source`; a text with Jinja of its own opens in the advanced editor."""
    plain = None if advanced else from_jinja(source, lang)
    return TextView(plain=plain or "", jinja=source, advanced=plain is None)


def state_from_form(form: MultiDict[str, str]) -> FormState:
    hours: dict[str, dict[int, dict[str, str]]] = {day: {} for day in DAYS}
    for key, value in form.items():
        match = _HOURS_ROW.fullmatch(key)
        if match and match["day"] in hours:
            hours[match["day"]].setdefault(int(match["index"]), {})[match["part"]] = value.strip()
    keywords = []
    for row in _rows(form, "kw"):
        if not any(row.get(part, "").strip() for part in ("match", "text", "jinja")):
            continue
        source, advanced = read_text(row_values(row), "")
        keywords.append(
            {
                "mode": row.get("mode", "words"),
                "match": row.get("match", ""),
                "when": row.get("when", "always"),
                "template": row.get("template", "").strip(),
                "source": source,
                "advanced": "1" if advanced else "",
                # The rule's file, kept by the page (bot.admin.settings_page) when chosen.
                "filename": "" if row.get("nofile") else row.get("filename", "").strip(),
                "filesha": "" if row.get("nofile") else row.get("filesha", "").strip(),
            }
        )
    away_source, away_advanced = read_text(form, "away")
    greeting_source, greeting_advanced = read_text(form, "greeting")
    follow_up_template, follow_up_language, follow_up_params = read_follow_up(form)
    return FormState(
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
        keywords=keywords,
        away_on=bool(form.get("away_on")),
        away_once=form.get("away_limit", "closure") != "hours",
        away_cooldown=form.get("away_cooldown", "").strip(),
        away_source=away_source,
        away_advanced=away_advanced,
        greeting_on=bool(form.get("greeting_on")),
        greeting_days=form.get("greeting_days", "").strip(),
        greeting_source=greeting_source,
        greeting_advanced=greeting_advanced,
        follow_up_on=bool(form.get("follow_up_on")),
        follow_up_template=follow_up_template,
        follow_up_language=follow_up_language,
        follow_up_params=follow_up_params,
        stale_minutes=form.get("stale_minutes", "").strip(),
        pause_minutes=form.get("pause_minutes", "").strip(),
        inbox_read=bool(form.get("inbox_read")),
        inbox_typing=bool(form.get("inbox_typing")),
    )


def row_values(row: dict[str, str]) -> dict[str, str]:
    # A keyword row's text fields under the names read_text reads ("-text", "-jinja", …).
    return {f"-{part}": value for part, value in row.items()}


def merge(stored: FormState, form: MultiDict[str, str], section: str) -> FormState:
    """The stored settings with one section's fields taken from its form."""
    posted = state_from_form(form)
    for name in SECTIONS[section]:
        setattr(stored, name, getattr(posted, name))
    stored.edited = section
    return stored


# --- reply texts ------------------------------------------------------------------------------


class _Texts:
    """The form's templates by name, and which field each text was written in."""

    def __init__(self, state: FormState) -> None:
        self.state = state
        self.lang = replies.language(state.locale)
        self.by_name = {row["name"]: row for row in state.templates}
        self.owners: dict[str, str] = {}

    def put(self, name: str, source: str, owner: str) -> None:
        row = self.by_name.get(name)
        if row is None:
            default = replies.default_source(self.lang, name) or ""
            row = {"name": name, "source": source, "default": default}
            self.state.templates.append(row)
            self.by_name[name] = row
        row["source"] = source
        self.owners[name] = owner

    def current(self, name: str) -> str:
        row = self.by_name.get(name)
        return row["source"] if row else replies.default_source(self.lang, name) or ""


def _place_texts(state: FormState) -> dict[str, str]:
    """Put the texts written with the rules into the templates; empty answers by field."""
    texts = _Texts(state)
    errors: dict[str, str] = {}
    if state.edited in ("", "answers"):
        texts.put(state.away_template, state.away_source, "away")
        texts.put(state.greeting_template, state.greeting_source, "greeting")
    if state.edited in ("", "keywords"):
        errors = _place_keyword_texts(state, texts)
    for row in state.templates:
        row["owner"] = texts.owners.get(row["name"], "")
    return errors


def _place_keyword_texts(state: FormState, texts: _Texts) -> dict[str, str]:
    errors: dict[str, str] = {}
    used: dict[str, int] = {}
    for row in state.keywords:
        used[row["template"]] = used.get(row["template"], 0) + 1
    taken = {int(m[1]) for n in texts.by_name if (m := _KEYWORD_NAME.fullmatch(n))}
    for i, row in enumerate(state.keywords):
        name, source = row["template"], row["source"]
        if not source.strip():
            errors[f"kw-{i}"] = gettext("Write the answer this keyword sends.")
            continue
        if name and source.strip() == texts.current(name).strip():
            texts.owners.setdefault(name, f"kw-{i}")
            continue
        # A text of this rule alone is changed in place; a shared one (another rule's, the
        # away or greeting text) stays as it is and this rule gets a text of its own.
        alone = used.get(name) == 1 and name not in (state.away_template, state.greeting_template)
        if not (name and alone and replies.NAME_RE.fullmatch(name)):
            number = 1
            while number in taken:
                number += 1
            taken.add(number)
            name = row["template"] = f"keyword-{number}"
        texts.put(name, source, f"kw-{i}")
    # Answers of removed keyword rules go with them.
    referenced = {state.away_template, state.greeting_template}
    referenced |= {row["template"] for row in state.keywords}
    state.templates[:] = [
        row
        for row in state.templates
        if row["name"] in referenced or not _KEYWORD_NAME.fullmatch(row["name"])
    ]
    return errors


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


def _flag(value: bool) -> str:
    return "true" if value else "false"


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
        file = ""
        if row.get("filesha"):
            name = quote(row.get("filename") or row["filesha"][:12])
            file = f", file: {{name: {name}, sha256: {quote(row['filesha'])}}}"
        emit(
            f"    - {{{what}, template: {quote(row.get('template', '').strip())}, "
            f"when: {quote(when)}{file}}}",
            f"kw-{i}",
        )
    if state.away_on:
        limit = (
            "once_per_closure: true"
            if state.away_once
            else f"once_per_closure: false, cooldown_hours: {_number(state.away_cooldown)}"
        )
        emit(f"  away: {{template: {quote(state.away_template)}, {limit}}}", "away")
    if state.greeting_on:
        emit(
            f"  greeting: {{template: {quote(state.greeting_template)}, "
            f"after_inactive_days: {_number(state.greeting_days)}}}",
            "greeting",
        )
    if state.follow_up_on:
        emit(
            f"  follow_up: {{template: {quote(state.follow_up_template)}, "
            f"language: {quote(state.follow_up_language)}, "
            f"params: {_list(state.follow_up_params)}}}",
            "follow_up",
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
    emit(
        f"inbox: {{read_receipts: {_flag(state.inbox_read)}, "
        f"typing_indicator: {_flag(state.inbox_typing)}}}",
        "inbox",
    )
    if state.broadcasts:
        emit(f"broadcasts: {state.broadcasts}")
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
            emit(
                f"  {quote(row['name'])}: {quote(row['source'])}",
                row.get("owner") or f"tpl-{i}",
            )
    return "\n".join(lines) + "\n", fields


def _typing_errors(state: FormState) -> dict[str, str]:
    """The commonest slips of a form, said in the owner's words before the settings file's
    check (which would refuse them too, in its own terms)."""
    errors: dict[str, str] = {}
    for day, slots in state.hours.items():
        if any(not start or not end for start, end in slots):
            errors[f"hours-{day}"] = gettext("Enter both times: from and until.")
    for i, row in enumerate(state.closures):
        if not row.get("from", "").strip() or not row.get("to", "").strip():
            errors[f"closure-{i}"] = gettext("Enter the first and the last closed day.")
    if state.follow_up_on and not state.follow_up_template:
        errors["follow_up"] = gettext("Choose the template to send.")
    return errors


def validate(state: FormState) -> tuple[str, BusinessSettings | None, dict[str, str]]:
    """The settings file, the parsed settings (None if invalid) and errors by field: the file
    is checked as `settings import` checks one."""
    errors = {**_typing_errors(state), **_place_texts(state)}
    text, fields = to_yaml(state)
    if errors:
        return text, None, errors
    try:
        return text, parse_settings(text, try_templates=True), {}
    except SettingsError as exc:
        where = fields.get(exc.line, "general") if exc.line is not None else "general"
        return text, None, {where: exc.reason}
