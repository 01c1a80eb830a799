"""Reply texts: Jinja templates in a sandbox, with Babel filters for dates and times.

Templates from the settings override the defaults in templates/replies/<lang>/<name>.j2.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import babel.dates
from babel import Locale
from jinja2 import Template, Undefined, pass_context
from jinja2.runtime import Context

from bot.hours import OpeningHours, is_open, next_close, next_open, week_lines
from bot.sandbox import (
    MAX_REPLY,
    MAX_SECONDS,
    MAX_TEXT,
    BoundedSandbox,
    TemplateLimitError,
    bounded,
    make_env,
)
from bot.strain import Strain

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates" / "replies"
LANGUAGES = ("de", "en")
# Template names double as file names, so they are kept to a safe alphabet.
NAME_RE = re.compile(r"[A-Za-z0-9_-]+")
# The locale of a business whose settings name none, and of a text rendered without a
# business: German, as the shops this is made for.
DEFAULT_LOCALE = "de_DE"

_FALLBACK_TEXT = {
    "de": "Danke für Ihre Nachricht! Wir melden uns so bald wie möglich.",
    "en": "Thanks for your message! We will get back to you as soon as we can.",
}
_BABEL_KEY = "_babel"


class ReplySettings(Protocol):
    """What a reply reads of the business's settings; bot.settings.BusinessSettings is one.
    Declared here so that the replies need nothing of the settings file and its parsing, which
    in turn checks templates with the replies."""

    @property
    def name(self) -> str: ...
    @property
    def locale(self) -> str: ...
    @property
    def timezone(self) -> str: ...
    @property
    def hours(self) -> OpeningHours: ...
    @property
    def optout_stop(self) -> tuple[str, ...]: ...
    @property
    def optout_start(self) -> tuple[str, ...]: ...
    @property
    def templates(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Contact:
    name: str
    wa_id: str


@dataclass(frozen=True)
class Message:
    text: str


@dataclass(frozen=True)
class Business:
    name: str
    locale: str
    timezone: str


@dataclass(frozen=True)
class _Babel:
    """What the date filters need; passed with each render, not stored in the environment."""

    locale: Locale
    tz: tzinfo


def _babel_of(context: Context) -> _Babel:
    found = context.get(_BABEL_KEY)
    if isinstance(found, _Babel):
        return found
    return _Babel(Locale.parse(DEFAULT_LOCALE), ZoneInfo("UTC"))


def _missing(value: object) -> bool:
    return value is None or isinstance(value, Undefined)


@pass_context
def format_datetime(context: Context, value: datetime | None, format: str = "medium") -> str:
    if _missing(value):
        return ""
    b = _babel_of(context)
    return babel.dates.format_datetime(value, format, tzinfo=b.tz, locale=b.locale)


@pass_context
def format_date(context: Context, value: date | None, format: str = "medium") -> str:
    if _missing(value):
        return ""
    b = _babel_of(context)
    if isinstance(value, datetime):
        # The calendar day in the business time zone, not in whatever zone the value carries.
        value = value.astimezone(b.tz).date()
    return babel.dates.format_date(value, format, locale=b.locale)


@pass_context
def format_time(context: Context, value: time | datetime | None, format: str = "medium") -> str:
    if _missing(value):
        return ""
    b = _babel_of(context)
    return babel.dates.format_time(value, format, tzinfo=b.tz, locale=b.locale)


# Every reply of a processor's batch is worked out for the same instant: the phrase once.
@lru_cache(maxsize=64)
def opening_phrase(value: datetime, locale: Locale, tz: tzinfo) -> str:
    """When a shop opens, as people say it: "Montag, 30. November, 9 Uhr", "Monday 30
    November, 9:30 am"."""
    local = value.astimezone(tz)
    if locale.language == "de":
        day = babel.dates.format_date(local, "EEEE, d. MMMM", locale=locale)
        clock = f"{local.hour}" if local.minute == 0 else f"{local.hour}:{local.minute:02d}"
        return f"{day}, {clock} Uhr"
    pattern = "EEEE, MMMM d" if locale.territory == "US" else "EEEE d MMMM"
    day = babel.dates.format_date(local, pattern, locale=locale)
    clock = babel.dates.format_skeleton(
        "h" if local.minute == 0 else "hm", local, tzinfo=tz, locale=locale
    )
    return f"{day}, {clock}"


@pass_context
def format_opening(context: Context, value: datetime | None) -> str:
    if value is None or isinstance(value, Undefined):
        return ""
    b = _babel_of(context)
    return opening_phrase(value, b.locale, b.tz)


def _make_env() -> BoundedSandbox:
    env = make_env()
    env.filters["format_opening"] = format_opening
    env.filters["format_datetime"] = format_datetime
    env.filters["format_date"] = format_date
    env.filters["format_time"] = format_time
    return env


_ENV = _make_env()


@lru_cache(maxsize=256)
def _compile(source: str) -> Template:
    return _ENV.from_string(source)


def compile_check(source: str) -> None:
    """Raise jinja2.TemplateSyntaxError if `source` is not a valid reply template."""
    _compile(source)


def language(locale: str) -> str:
    """The language of the default templates for a locale: German for de*, else English."""
    return "de" if locale.lower().startswith("de") else "en"


@lru_cache(maxsize=16)
def default_template_names(lang: str) -> frozenset[str]:
    return frozenset(p.stem for p in (TEMPLATES_DIR / lang).glob("*.j2"))


@lru_cache(maxsize=64)
def default_source(lang: str, name: str) -> str | None:
    """The default template `name` in language `lang`, or None if there is none."""
    if lang not in LANGUAGES or not NAME_RE.fullmatch(name):
        return None
    path = TEMPLATES_DIR / lang / f"{name}.j2"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


@lru_cache(maxsize=64)
def _locale(identifier: str) -> Locale:
    return Locale.parse(identifier)


@lru_cache(maxsize=32)
def _week_lines(hours: OpeningHours, locale: str) -> tuple[str, ...]:
    return tuple(week_lines(hours, locale))


@lru_cache(maxsize=64)
def _moment(hours: OpeningHours, at: datetime) -> tuple[bool, datetime | None, datetime | None]:
    """Whether open at `at`, and the next opening (if closed) or closing (if open): the same
    for every reply of a processor's batch, which share one instant."""
    if is_open(hours, at):
        return True, None, next_close(hours, at)
    return False, next_open(hours, at), None


def build_context(
    settings: ReplySettings,
    *,
    now: datetime,
    contact_name: str | None,
    wa_id: str | None,
    message_text: str | None,
) -> dict[str, Any]:
    """The template variables for one reply; plain values only, nothing of the server."""
    local_now = now.astimezone(ZoneInfo(settings.timezone))
    open_now, opens, closes = _moment(settings.hours, local_now)
    return {
        "contact": Contact(name=contact_name or "", wa_id=wa_id or ""),
        "message": Message(text=message_text or ""),
        "business": Business(
            name=settings.name, locale=settings.locale, timezone=settings.timezone
        ),
        "now": local_now,
        "is_open": open_now,
        "next_open": opens,
        "next_close": closes,
        "hours": list(_week_lines(settings.hours, settings.locale)),
        # How to opt out or back in, for the optout and optin texts.
        "stop_word": settings.optout_stop[0] if settings.optout_stop else "",
        "start_word": settings.optout_start[0] if settings.optout_start else "",
    }


def formatting(settings: ReplySettings, context: dict[str, Any]) -> dict[str, Any]:
    """`context` plus what the format filters need: the business locale and time zone."""
    try:
        babel_info = _Babel(_locale(settings.locale), ZoneInfo(settings.timezone))
    except Exception:  # settings are validated on import; this is only a safety net
        babel_info = _Babel(_locale(DEFAULT_LOCALE), ZoneInfo("UTC"))
    return {**context, _BABEL_KEY: babel_info}


# A template that ran over its bounds: the next renders get this much processor time, for ten
# minutes (see bot.strain). Ordinary replies render in well under a millisecond.
_strained = Strain(tight=0.005)


def render_source(source: str, variables: dict[str, Any]) -> str:
    """Render template source in the sandbox with `formatting` variables; raises on errors,
    TemplateLimitError for one that runs too long, builds too much or writes more than a
    WhatsApp text holds (an over-long reply is refused, not cut: a cut text can end anywhere)."""
    template = _compile(source)
    parts: list[str] = []
    written = 0
    try:
        with bounded(_strained.budget(source, MAX_SECONDS)):
            for part in template.generate(variables):
                written += len(part)
                if written > MAX_TEXT:
                    raise TemplateLimitError(
                        f"the template writes more than {MAX_TEXT:,} characters"
                    )
                parts.append(part)
    except TemplateLimitError:
        _strained.overran(source)
        raise
    text = "".join(parts).strip()
    if len(text) > MAX_REPLY:
        raise TemplateLimitError(
            f"the text has {len(text):,} characters; WhatsApp takes at most {MAX_REPLY:,}"
        )
    return text


def _render_source(source: str, variables: dict[str, Any]) -> str:
    text = render_source(source, variables)
    if not text:
        # WhatsApp refuses an empty text message; treat it like a failed template.
        raise ValueError("the template rendered an empty text")
    return text


_problems = threading.local()


@contextmanager
def render_problems() -> Iterator[list[str]]:
    """Collects why templates rendered in this thread failed, for the admin and the CLI to
    show: `render` itself falls back and never raises."""
    found: list[str] = []
    outer: tuple[list[str], ...] = getattr(_problems, "lists", ())
    _problems.lists = (*outer, found)
    try:
        yield found
    finally:
        _problems.lists = outer


def render(settings: ReplySettings, template_name: str, context: dict[str, Any]) -> str:
    """Render a reply; on any error fall back to the default template, then to a fixed text.

    Never raises: a broken template must not cost the contact their reply.
    """
    lang = language(settings.locale)
    variables = formatting(settings, context)

    custom = settings.templates.get(template_name)
    default = default_source(lang, template_name)
    for source, origin in ((custom, "custom"), (default, "default")):
        if source is None:
            continue
        try:
            return _render_source(source, variables)
        except Exception as exc:
            problem = f"reply template {template_name!r} ({origin}) failed: {exc}"
            log.warning("%s (%s)", problem, type(exc).__name__)
            for collected in getattr(_problems, "lists", ()):
                collected.append(problem)
    if custom is None and default is None:
        log.warning("reply template %r does not exist", template_name)
    return _FALLBACK_TEXT[lang]


# A fixed Monday noon from which the samples find an open and a closed moment, so that the
# check of a settings file does not depend on the day it is saved.
_SAMPLE_DAY = date(2026, 1, 5)
_LONG_NAME = "Anna-Lena Maria " * 8
# A long message, as customers write them: long enough that a template looping over its
# characters runs into the bounds, short enough that one quoting it back is still a reply.
_LONG_TEXT = ("Guten Tag, ich hätte gern einen Strauß Tulpen für Samstag. " * 20)[:1000]


def _samples(settings: ReplySettings) -> list[tuple[str, dict[str, Any]]]:
    start = datetime.combine(_SAMPLE_DAY, time(12), tzinfo=ZoneInfo(settings.timezone))
    opened = start if is_open(settings.hours, start) else next_open(settings.hours, start)
    closed = next_close(settings.hours, start) if opened == start else start
    found: list[tuple[str, tuple[datetime, str | None, str | None]]] = []
    for moment, label in ((opened, "while open"), (closed, "while closed")):
        if moment is None:
            continue
        found.append((f"{label}, for Anna writing 'Hallo'", (moment, "Anna", "Hallo")))
        found.append((f"{label}, for a contact without a name", (moment, None, None)))
    moment = closed or opened or start
    found.append(
        (
            f"for a {len(_LONG_NAME)}-character name and a {len(_LONG_TEXT):,}-character message",
            (moment, _LONG_NAME, _LONG_TEXT),
        )
    )
    return [
        (
            label,
            formatting(
                settings,
                build_context(
                    settings, now=now, contact_name=name, wa_id="491701234567", message_text=text
                ),
            ),
        )
        for label, (now, name, text) in found
    ]


def template_problem(settings: ReplySettings, name: str) -> str | None:
    """Why the settings' template `name` cannot be used, or None: it is rendered for sample
    contacts and messages, open and closed, and must finish within the bounds of a render."""
    source = settings.templates.get(name)
    if source is None:
        return None
    for label, variables in _samples(settings):
        try:
            render_source(source, variables)
        except Exception as exc:
            return f"fails {label}: {exc}"
    return None
