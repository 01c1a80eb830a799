"""The settings pages: an overview and one page per section (business, opening hours, holidays
and closures, automatic answers, keywords), and the settings file as YAML for the advanced.

Saving a section lays its form over the stored settings and saves the whole as `settings
import` would (bot.admin.settings_form): one rule for every way settings come in. A refused
save shows the page again with a summary of the errors, each linked to its field.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from sqlalchemy import select
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from bot import i18n
from bot.admin.blueprint import SCRIPT_TEXTS, UPLOAD_ENDPOINTS, actor, bp, now
from bot.admin.follow_up_form import ParamKind, follow_up_error
from bot.admin.follow_up_form import view as follow_up_view
from bot.admin.forms import keep_upload
from bot.admin.settings_form import (
    SECTIONS,
    FormState,
    merge,
    state_from_form,
    state_from_settings,
    text_view,
    validate,
)
from bot.admin.settings_previews import LATE_ROWS, late_titles, previews
from bot.db import get_db
from bot.media.sending import (
    ACCEPT_HEADER,
    HEADER_KINDS,
    Refused,
    refusal_text,
)
from bot.models import Business
from bot.placeholders import Placeholder, from_jinja, to_jinja, token
from bot.settings import DAYS, WHEN, BusinessSettings, SettingsError
from bot.settings.stored import BUSINESS_ID, load_settings, save_settings_by, seed_demo

PREVIEW_TEXT_MAX = 1000
LOCALES = ("de_DE", "de_AT", "de_CH", "en_US", "en_GB", "fr_FR", "it_IT", "es_ES", "nl_NL")

DAY_NAMES: dict[str, Any] = {
    "mon": lazy_gettext("Monday"),
    "tue": lazy_gettext("Tuesday"),
    "wed": lazy_gettext("Wednesday"),
    "thu": lazy_gettext("Thursday"),
    "fri": lazy_gettext("Friday"),
    "sat": lazy_gettext("Saturday"),
    "sun": lazy_gettext("Sunday"),
}
WHEN_NAMES: dict[str, Any] = {
    "always": lazy_gettext("always"),
    "open": lazy_gettext("while open"),
    "closed": lazy_gettext("while closed"),
}
PLACEHOLDER_NAMES: dict[Placeholder, Any] = {
    Placeholder.NAME: lazy_gettext("Name"),
    Placeholder.NEXT_OPEN: lazy_gettext("next opening"),
    Placeholder.HOURS: lazy_gettext("opening hours"),
    Placeholder.SHOP: lazy_gettext("shop name"),
}


@dataclass(frozen=True)
class Section:
    key: str
    title: Any  # lazy translations
    hint: Any

    @property
    def endpoint(self) -> str:
        return f"admin.settings_{self.key}"


PAGES = (
    Section("business", lazy_gettext("Business"), lazy_gettext("Name, time zone and language")),
    Section(
        "hours",
        lazy_gettext("Opening hours"),
        lazy_gettext("The week's hours and special hours on single days"),
    ),
    Section(
        "closures",
        lazy_gettext("Holidays and closures"),
        lazy_gettext("Public holidays, holidays of the shop, other closed days"),
    ),
    Section(
        "answers",
        lazy_gettext("Automatic answers"),
        lazy_gettext("Away message, greeting, stop words, late messages"),
    ),
    Section(
        "keywords",
        lazy_gettext("Keywords"),
        lazy_gettext("Questions answered automatically, each with its answer"),
    ),
)

SCRIPT_TEXTS.update(
    {
        "settings_not_plain": lazy_gettext(
            "This text uses Jinja of its own, so it can only be edited in advanced mode."
        ),
        "settings_fix_first": lazy_gettext("Correct the marked field to see the preview."),
    }
)


def field_label(key: str) -> str:
    """The name of the field an error belongs to, for the summary at the top."""
    fixed: dict[str, Any] = {
        "name": lazy_gettext("Name"),
        "timezone": lazy_gettext("Time zone"),
        "locale": lazy_gettext("Language and formats"),
        "hours": lazy_gettext("Opening hours"),
        "holidays": lazy_gettext("Public holidays"),
        "closures": lazy_gettext("Closures"),
        "specials": lazy_gettext("Special hours"),
        "optout": lazy_gettext("Stop and start words"),
        "keywords": lazy_gettext("Keywords"),
        "away": lazy_gettext("Away message"),
        "greeting": lazy_gettext("Greeting"),
        "stale": lazy_gettext("Late messages"),
        "pause": lazy_gettext("Pause after your answer"),
        "follow_up": lazy_gettext("Follow-up after closing"),
    }
    if key in fixed:
        return str(fixed[key])
    group, _, rest = key.partition("-")
    if group == "hours" and rest in DAY_NAMES:
        return str(DAY_NAMES[rest])
    numbered: dict[str, Any] = {
        "closure": lazy_gettext("Closure %(n)s"),
        "special": lazy_gettext("Special hours %(n)s"),
        "kw": lazy_gettext("Keyword rule %(n)s"),
    }
    if group in numbered and rest.isdigit():
        return str(numbered[group]) % {"n": int(rest) + 1}
    return gettext("Settings")


# What the settings file's check says, in the owner's words where the form can say it better;
# anything else (a template's Jinja, a pattern) is shown as the check words it.
PLAIN_REASONS: tuple[tuple[re.Pattern[str], Any], ...] = (
    (re.compile(r"must be a whole number"), lazy_gettext("Enter a whole number.")),
    (re.compile(r"must be a (finite )?number"), lazy_gettext("Enter a number.")),
    (re.compile(r"must not be negative"), lazy_gettext("Enter a number of 0 or more.")),
    (re.compile(r"must not be empty"), lazy_gettext("This must not be empty.")),
    (re.compile(r"empty interval"), lazy_gettext("From and until are the same time.")),
    (
        re.compile(r"bad interval|bad time|invalid interval"),
        lazy_gettext("Enter times as 09:00-12:30; several separated by commas."),
    ),
    (
        re.compile(r"ends (\(.*\) )?before it starts"),
        lazy_gettext("The last day is before the first."),
    ),
    (re.compile(r"invalid date"), lazy_gettext("Enter a date.")),
    (
        re.compile(r"unknown time zone"),
        lazy_gettext("Unknown time zone: choose one from the list, such as Europe/Berlin."),
    ),
    (
        re.compile(r"unknown locale"),
        lazy_gettext("Unknown language: choose one from the list, such as de_DE."),
    ),
    (
        re.compile(r"special hours given twice"),
        lazy_gettext("There are two special hours for this date."),
    ),
)


def plain_reason(reason: str) -> str:
    for pattern, text in PLAIN_REASONS:
        if pattern.search(reason):
            return str(text)
    return reason


def plain_errors(errors: dict[str, str]) -> dict[str, str]:
    return {key: plain_reason(reason) for key, reason in errors.items()}


# --- choices ----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def zones() -> tuple[str, ...]:
    return tuple(sorted(zoneinfo.available_timezones() - {"localtime", "posixrules", "Factory"}))


@lru_cache(maxsize=1)
def countries() -> tuple[tuple[str, tuple[str, ...]], ...]:
    found = holidays.list_supported_countries()
    return tuple((code, tuple(subs)) for code, subs in sorted(found.items()))


# --- pages ------------------------------------------------------------------------------------


def page_lang() -> str:
    return i18n.page_language()


def _current() -> BusinessSettings:
    with get_db().session() as session:
        seed_demo(session)
        settings = load_settings(session)
    assert settings is not None  # just seeded
    return settings


def _preview_at(state: FormState) -> str:
    zone = ZoneInfo(state.timezone) if state.timezone in zones() else ZoneInfo("UTC")
    return now().astimezone(zone).strftime("%Y-%m-%dT%H:%M")


def _render(section: str, state: FormState, errors: dict[str, str], status: int = 200) -> Any:
    lang = page_lang()
    errors = plain_errors(errors)
    subdivisions: tuple[str, ...] = ()
    for code, subs in countries():
        if code == state.holiday_country:
            subdivisions = subs
    summary = [
        {"key": key, "label": field_label(key), "message": message}
        for key, message in errors.items()
    ]
    follow_up = None
    if section == "answers":
        with get_db().session() as session:
            follow_up = follow_up_view(
                session, state.follow_up_template, state.follow_up_language, state.follow_up_params
            )
    html = render_template(
        f"admin/settings_{section}.html",
        section=section,
        pages=PAGES,
        state=state,
        errors=errors,
        summary=summary,
        days=DAYS,
        day_names=DAY_NAMES,
        whens=WHEN,
        when_names=WHEN_NAMES,
        zones=zones(),
        countries=[code for code, _ in countries()],
        subdivisions=subdivisions,
        locales=LOCALES,
        late_titles=late_titles(),
        late_rows=LATE_ROWS,
        preview_at=_preview_at(state),
        file_accept=ACCEPT_HEADER,
        placeholders=[
            {"token": token(p, lang), "label": PLACEHOLDER_NAMES[p]} for p in Placeholder
        ],
        text_view=lambda source, advanced: text_view(source, bool(advanced), lang),
        follow_up=follow_up,
        param_kinds=ParamKind,
    )
    return html, status


@bp.get("/settings")
def settings() -> Any:
    current = _current()
    return render_template(
        "admin/settings.html",
        pages=PAGES,
        section="",
        business_name=current.name,
        keyword_count=len(current.keywords),
        away_on=current.away is not None,
        closure_count=len(current.hours.closures),
    )


_KEYWORD_UPLOAD = re.compile(r"kw-(\d{1,3})-upload")


def _keyword_files(form: MultiDict[str, str]) -> dict[str, str]:
    """Files chosen for keyword rules: each checked against WhatsApp's limits and kept, and
    named in the rule's row (`kw-N-filesha`, `kw-N-filename`) for the settings file. The
    errors, by the rule's field."""
    errors: dict[str, str] = {}
    at = now()
    for key, upload in request.files.items():
        match = _KEYWORD_UPLOAD.fullmatch(key)
        if match is None or not upload.filename:
            continue
        try:
            with get_db().session() as session:
                kept = keep_upload(session, upload, now=at, kinds=HEADER_KINDS)
                sha256 = kept.file.sha256
        except Refused as exc:
            errors[f"kw-{match[1]}"] = refusal_text(exc)
            continue
        form[f"kw-{match[1]}-filesha"] = sha256
        form[f"kw-{match[1]}-filename"] = kept.name or ""
        form.pop(f"kw-{match[1]}-nofile", None)
    return errors


UPLOAD_ENDPOINTS.add("admin.settings_keywords")


def _section_page(section: str) -> Any:
    if request.method == "GET":
        return _render(section, state_from_settings(_current()), {})
    form: MultiDict[str, str] = request.form
    file_errors: dict[str, str] = {}
    if section == "keywords":
        form = request.form.copy()
        file_errors = _keyword_files(form)
    current = _current()
    state = merge(state_from_settings(current), form, section)
    text, parsed, errors = validate(state)
    if file_errors:
        return _render(section, state, {**errors, **file_errors}, 400)
    if parsed is None:
        return _render(section, state, errors, 400)
    if parsed.follow_up is not None and parsed.follow_up != current.follow_up:
        # The settings file cannot know Meta's templates; the page checks a new choice (one
        # Meta paused since is said by the follow-up's log, and leaves this page usable).
        with get_db().session() as session:
            problem = follow_up_error(session, parsed.follow_up)
        if problem is not None:
            return _render(section, state, {"follow_up": problem}, 400)
    try:
        with get_db().session() as session:
            save_settings_by(session, text, actor(), now())
    except SettingsError as exc:  # changed meanwhile in a way that no longer fits
        return _render(section, state, {"general": exc.reason}, 400)
    flash(gettext("Saved. The change applies to the next message."))
    return redirect(url_for(f"admin.settings_{section}"))


for _page in PAGES:
    bp.add_url_rule(
        f"/settings/{_page.key}",
        f"settings_{_page.key}",
        lambda key=_page.key: _section_page(key),
        methods=["GET", "POST"],
    )


@bp.post("/settings/preview")
def settings_preview() -> Response:
    section = request.form.get("section", "")
    if section not in SECTIONS:
        abort(400)
    state = merge(state_from_settings(_current()), request.form, section)
    _text, parsed, errors = validate(state)
    if parsed is None:
        return jsonify(ok=False, errors=plain_errors(errors))
    tz = ZoneInfo(parsed.timezone)
    at = _preview_moment(request.form.get("preview_at", ""), tz)
    text = request.form.get("preview_text", "")[:PREVIEW_TEXT_MAX]
    return jsonify(ok=True, errors={}, previews=previews(parsed, at=at, text=text))


_MOMENT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?")


def _preview_moment(text: str, tz: ZoneInfo) -> Any:
    from datetime import datetime

    if _MOMENT.fullmatch(text):
        try:
            return datetime.fromisoformat(text).replace(tzinfo=tz)
        except ValueError:
            pass
    return now()


@bp.post("/settings/text")
def settings_text() -> Response:
    """A reply text converted for the editor's switch: plain → Jinja, or Jinja → plain (null
    when the Jinja is more than text and placeholders)."""
    text = request.form.get("text", "").replace("\r\n", "\n")
    if request.form.get("to") == "jinja":
        return jsonify(text=to_jinja(text))
    return jsonify(text=from_jinja(text, page_lang()))


@bp.route("/settings/yaml", methods=["GET", "POST"])
def settings_yaml() -> Any:
    error = None
    if request.method == "POST":
        text = request.form.get("yaml", "").replace("\r\n", "\n")
        try:
            with get_db().session() as session:
                save_settings_by(session, text, actor(), now())
        except SettingsError as exc:
            error = str(exc)
        else:
            flash(gettext("Saved. The change applies to the next message."))
            return redirect(url_for("admin.settings_yaml"))
    else:
        _current()
        with get_db().session() as session:
            text = (
                session.scalar(select(Business.settings_yaml).where(Business.id == BUSINESS_ID))
                or ""
            )
    return render_template(
        "admin/settings_yaml.html", text=text, error=error, pages=PAGES, section="yaml"
    ), (400 if error else 200)


__all__ = ["settings", "settings_preview", "settings_text", "settings_yaml", "state_from_form"]
