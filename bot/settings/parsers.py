"""The sections of a settings file, each read and checked on its own, and parse_settings, which
reads them all and cross-checks them into BusinessSettings.

Every error names the line of the offending value; the first one found is raised.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, time
from functools import lru_cache
from typing import Any

import holidays
import jinja2
from babel import Locale
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot import replies
from bot.hours import Closure, Interval, OpeningHours, SpecialDay
from bot.replies import DEFAULT_LOCALE
from bot.settings.patterns import check_pattern
from bot.settings.reading import (
    SettingsError,
    compose,
    date_of,
    flag_of,
    intervals_of,
    is_null,
    items_of,
    line_of,
    number_of,
    pairs_of,
    switch_of,
    text_of,
    texts_of,
    whole_number_of,
)
from bot.settings.values import (
    DAYS,
    DEFAULT_COOLDOWN_HOURS,
    DEFAULT_HUMAN_PAUSE_MINUTES,
    DEFAULT_STALE_AFTER_MINUTES,
    DEFAULT_START,
    DEFAULT_STOP,
    DEFAULT_TIMEZONE,
    WHEN,
    AwayRule,
    BroadcastHours,
    BusinessSettings,
    FollowUpRule,
    FrozenMap,
    GreetingRule,
    InboxSignals,
    KeywordFile,
    KeywordRule,
    Retention,
    bare_word,
)

_SECTIONS = (
    "business",
    "hours",
    "public_holidays",
    "closures",
    "special_hours",
    "replies",
    "retention",
    "inbox",
    "broadcasts",
    "templates",
)


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    # The system's zoneinfo folder adds files that are not zones of a place.
    return frozenset(zoneinfo.available_timezones()) - {"localtime", "posixrules", "Factory"}


def _check_timezone(node: Node) -> str:
    value = text_of(node, "business.timezone")
    # Only IANA names: ZoneInfo would also load a path or the machine's own "localtime".
    if value not in _zones():
        raise SettingsError(
            f"unknown time zone '{value}' (expected an IANA name such as Europe/Berlin)",
            line_of(node),
        )
    return value


def _check_locale(node: Node) -> str:
    value = text_of(node, "business.locale")
    try:
        Locale.parse(value)
    except Exception:  # ValueError for malformed names, UnknownLocaleError for unknown ones
        raise SettingsError(
            f"unknown locale '{value}' (expected a name such as de_DE or en_US)", line_of(node)
        ) from None
    return value


@dataclass
class _Draft:
    """What the sections yield, before the cross-checks."""

    name: str | None = None
    timezone: str = DEFAULT_TIMEZONE
    locale: str = DEFAULT_LOCALE
    weekly: tuple[tuple[Interval, ...], ...] = ((),) * 7
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    closures: tuple[Closure, ...] = ()
    special_days: tuple[SpecialDay, ...] = ()
    optout_stop: tuple[str, ...] = DEFAULT_STOP
    optout_start: tuple[str, ...] = DEFAULT_START
    keywords: tuple[KeywordRule, ...] = ()
    away: AwayRule | None = None
    greeting: GreetingRule | None = None
    follow_up: FollowUpRule | None = None
    stale_after_minutes: int = DEFAULT_STALE_AFTER_MINUTES
    human_pause_minutes: int = DEFAULT_HUMAN_PAUSE_MINUTES
    retention: Retention = field(default_factory=Retention)
    inbox: InboxSignals = field(default_factory=InboxSignals)
    broadcasts: BroadcastHours = field(default_factory=BroadcastHours)
    templates: dict[str, str] = field(default_factory=dict)
    template_lines: dict[str, int] = field(default_factory=dict)
    # Template names used by rules, with the node that names them, checked at the end.
    references: list[tuple[str, Node]] = field(default_factory=list)
    stored: bool = False  # see parse_settings


def _business(node: Node, d: _Draft) -> None:
    for key, _key_node, value in pairs_of(node, "business", ("name", "timezone", "locale")):
        if key == "name":
            d.name = text_of(value, "business.name")
        elif key == "timezone":
            d.timezone = _check_timezone(value)
        else:
            d.locale = _check_locale(value)
    if d.name is None:
        raise SettingsError("business: missing key 'name' (the shop's name)", line_of(node))


def _hours(node: Node, d: _Draft) -> None:
    if is_null(node):
        return
    if not isinstance(node, MappingNode):
        raise SettingsError("hours must be a mapping of days to intervals", line_of(node))
    weekly: list[tuple[Interval, ...]] = [()] * 7
    seen: set[str] = set()
    for key_node, value in node.value:
        day = str(key_node.value) if isinstance(key_node, ScalarNode) else "?"
        if day not in DAYS:
            raise SettingsError(
                f"unknown day '{day}' (expected {', '.join(DAYS)})", line_of(key_node)
            )
        if day in seen:
            raise SettingsError(f"duplicate day '{day}' in hours", line_of(key_node))
        seen.add(day)
        weekly[DAYS.index(day)] = intervals_of(value, day)
    d.weekly = tuple(weekly)


@lru_cache(maxsize=1)
def _holiday_countries() -> dict[str, list[str]]:
    return dict(holidays.list_supported_countries())


def _canonical(value: str, choices: Iterable[str]) -> str | None:
    wanted = value.strip().casefold()
    return next((c for c in choices if c.casefold() == wanted), None)


def _public_holidays(node: Node, d: _Draft) -> None:
    if is_null(node):
        return
    pairs = pairs_of(node, "public_holidays", ("country", "subdivision"))
    supported = _holiday_countries()
    subdivision_node = None
    for key, _key_node, value in pairs:
        if key == "country":
            raw = text_of(value, "public_holidays.country")
            country = _canonical(raw, list(supported))
            if country is None:
                raise SettingsError(
                    f"unknown holiday country '{raw}' (expected a code such as DE, AT or CH)",
                    line_of(value),
                )
            d.holiday_country = country
        elif not is_null(value):
            subdivision_node = value
    if d.holiday_country is None:
        raise SettingsError("public_holidays: missing key 'country'", line_of(node))
    if subdivision_node is not None:
        raw = text_of(subdivision_node, "public_holidays.subdivision")
        choices = supported[d.holiday_country]
        subdivision = _canonical(raw, list(choices))
        if subdivision is None:
            raise SettingsError(
                f"unknown subdivision '{raw}' for {d.holiday_country} "
                f"(expected one of {', '.join(choices) or 'none'})",
                line_of(subdivision_node),
            )
        d.holiday_subdivision = subdivision


def _closures(node: Node, d: _Draft) -> None:
    out = []
    for item in items_of(node, "closures"):
        start: date | None = None
        end: date | None = None
        end_node: Node | None = None
        reason = ""
        for key, _key_node, value in pairs_of(item, "a closure", ("from", "to", "reason")):
            if key == "from":
                start = date_of(value, "closure 'from'")
            elif key == "to":
                end, end_node = date_of(value, "closure 'to'"), value
            elif not is_null(value):
                reason = text_of(value, "closure reason", blank_ok=True)
        if start is None:
            raise SettingsError("a closure needs 'from' (its first day)", line_of(item))
        if end is None:
            end = start
        elif end < start:
            raise SettingsError(
                f"closure ends before it starts: 'to' {end.isoformat()} is before "
                f"'from' {start.isoformat()}",
                line_of(end_node or item),
            )
        out.append(Closure(start=start, end=end, reason=reason))
    d.closures = tuple(out)


def _special_hours(node: Node, d: _Draft) -> None:
    out = []
    seen: set[date] = set()
    for item in items_of(node, "special_hours"):
        day: date | None = None
        day_node: Node = item
        intervals: tuple[Interval, ...] | None = None
        for key, _key_node, value in pairs_of(item, "special_hours", ("date", "hours")):
            if key == "date":
                day, day_node = date_of(value, "special_hours date"), value
            else:
                intervals = intervals_of(value, "special hours")
        if day is None:
            raise SettingsError("special_hours: missing key 'date'", line_of(item))
        if intervals is None:
            raise SettingsError(
                "special_hours: missing key 'hours' (use [] for closed)", line_of(item)
            )
        if day in seen:
            raise SettingsError(
                f"duplicate special_hours date {day.isoformat()}", line_of(day_node)
            )
        seen.add(day)
        out.append(SpecialDay(day=day, intervals=intervals))
    d.special_days = tuple(out)


def _optout(node: Node, d: _Draft) -> None:
    if is_null(node):
        return
    # bare form -> (word as written, its node); a list not given keeps its defaults
    forms: dict[str, dict[str, tuple[str, Node]]] = {
        "stop": {bare_word(w): (w, node) for w in DEFAULT_STOP},
        "start": {bare_word(w): (w, node) for w in DEFAULT_START},
    }
    for key, _key_node, value in pairs_of(node, "replies.optout", ("stop", "start")):
        words = texts_of(value, f"an optout {key} word")
        forms[key] = {}
        for word, item in zip(words, _word_nodes(value) if words else [], strict=True):
            bare = bare_word(word)
            if not bare:
                raise SettingsError(
                    f"optout {key} word '{word}' needs a letter or a digit", line_of(item)
                )
            forms[key][bare] = (word, item)
        if key == "stop":
            d.optout_stop = words
        else:
            d.optout_start = words
    for bare, (word, item) in forms["start"].items():
        if bare in forms["stop"]:
            stop_word, stop_item = forms["stop"][bare]
            raise SettingsError(
                f"'{word}' is both a stop and a start word ('{stop_word}')",
                max(line_of(item), line_of(stop_item)),
            )


def _word_nodes(node: Node) -> list[Node]:
    return list(node.value) if isinstance(node, SequenceNode) else [node]


def _keywords(node: Node, d: _Draft) -> None:
    out = []
    for item in items_of(node, "replies.keywords"):
        match: tuple[str, ...] = ()
        pattern: str | None = None
        template: str | None = None
        when = "always"
        has_match = False
        file: KeywordFile | None = None
        for key, _key_node, value in pairs_of(
            item, "a keyword rule", ("match", "pattern", "template", "when", "file")
        ):
            if key == "file":
                file = _keyword_file(value)
            elif key == "match":
                has_match = True
                match = texts_of(value, "a match word")
                if not match:
                    raise SettingsError("match needs at least one word", line_of(value))
            elif key == "pattern":
                pattern = text_of(value, "pattern")
                if not d.stored:
                    check_pattern(pattern, value)
            elif key == "template":
                template = text_of(value, "template")
                d.references.append((template, value))
            else:
                when = text_of(value, "when")
                if when not in WHEN:
                    raise SettingsError(
                        f"unknown when '{when}' (expected {', '.join(WHEN)})", line_of(value)
                    )
        if has_match == (pattern is not None):
            raise SettingsError(
                "a keyword rule needs either 'match' or 'pattern', not "
                + ("both" if has_match else "neither"),
                line_of(item),
            )
        if template is None:
            raise SettingsError("a keyword rule needs 'template'", line_of(item))
        out.append(
            KeywordRule(match=match, pattern=pattern, template=template, when=when, file=file)
        )
    d.keywords = tuple(out)


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _keyword_file(node: Node) -> KeywordFile:
    """`file: {name: Preisliste.pdf, sha256: <64 hex digits>}`: a file of the media store,
    named as the customer sees it (the admin's keyword page writes it when a file is chosen)."""
    name: str | None = None
    sha256: str | None = None
    for key, _key_node, value in pairs_of(node, "a keyword rule's file", ("name", "sha256")):
        if key == "name":
            name = text_of(value, "file name").strip()
            if not name:
                raise SettingsError("the file's name is empty", line_of(value))
        else:
            sha256 = text_of(value, "file sha256").strip().lower()
            if not _SHA256.fullmatch(sha256):
                raise SettingsError(
                    "the file's sha256 must be 64 hexadecimal digits", line_of(value)
                )
    if name is None or sha256 is None:
        raise SettingsError("a keyword rule's file needs 'name' and 'sha256'", line_of(node))
    return KeywordFile(name=name, sha256=sha256)


def _away(node: Node, d: _Draft) -> None:
    """`away`: off, on (once per closed period), or its template and its limits.

    `once_per_closure` defaults to true when the file gives no `cooldown_hours` and to false
    when it does: a file written to the contract's `{template: away, cooldown_hours: 12}`
    keeps the cooldown alone. Turned off without a cooldown, the cooldown is the default."""
    switch = switch_of(node)
    if switch is not None:
        d.away = AwayRule() if switch else None
        if switch:
            d.references.append((AwayRule().template, node))
        return
    template, template_node = AwayRule().template, node
    cooldown: float | None = None
    once: bool | None = None
    for key, _key_node, value in pairs_of(
        node, "replies.away", ("template", "cooldown_hours", "once_per_closure")
    ):
        if key == "template":
            template, template_node = text_of(value, "template"), value
        elif key == "cooldown_hours":
            cooldown = number_of(value, "cooldown_hours")
        else:
            once = flag_of(value, "replies.away.once_per_closure")
    if once is None:
        once = cooldown is None
    if not once and cooldown is None:
        cooldown = DEFAULT_COOLDOWN_HOURS
    d.away = AwayRule(template=template, cooldown_hours=cooldown, once_per_closure=once)
    d.references.append((template, template_node))


def _greeting(node: Node, d: _Draft) -> None:
    """`greeting`: off, on with its defaults, or its template and its inactivity."""
    switch = switch_of(node)
    if switch is not None:
        d.greeting = GreetingRule() if switch else None
        if switch:
            d.references.append((GreetingRule().template, node))
        return
    rule = GreetingRule()
    template_node: Node = node
    for key, _key_node, value in pairs_of(
        node, "replies.greeting", ("template", "after_inactive_days")
    ):
        if key == "template":
            rule = replace(rule, template=text_of(value, "template"))
            template_node = value
        else:
            rule = replace(rule, after_inactive_days=number_of(value, "after_inactive_days"))
    d.greeting = rule
    d.references.append((rule.template, template_node))


# Meta's rules for a template's name and its language's locale code (de, en_US, zh_Hant_HK…).
_TEMPLATE_NAME = re.compile(r"[a-z0-9_]{1,512}")
_LANGUAGE = re.compile(r"[a-z]{2,3}(?:_[A-Za-z0-9]{2,4}){0,2}")


def _follow_up(node: Node, d: _Draft) -> None:
    """`follow_up: {template: wieder_da, language: de, params: ["{{ contact.name }}"]}`: off
    when left out (or `off`). Whether the template exists, is approved and takes these
    parameters is checked when it is sent, against the templates Meta lists."""
    if switch_of(node) is not None:
        if switch_of(node):
            raise SettingsError(
                "replies.follow_up needs a template and its language, e.g. "
                "{template: wieder_da, language: de}",
                line_of(node),
            )
        d.follow_up = None
        return
    template: str | None = None
    language: str | None = None
    params: tuple[str, ...] = ()
    for key, _key_node, value in pairs_of(
        node, "replies.follow_up", ("template", "language", "params")
    ):
        if key == "template":
            template = text_of(value, "replies.follow_up.template").strip()
            if not _TEMPLATE_NAME.fullmatch(template):
                raise SettingsError(
                    f"invalid WhatsApp template name '{template}' (lowercase letters, digits "
                    "and _ only, as in WhatsApp Manager)",
                    line_of(value),
                )
        elif key == "language":
            language = text_of(value, "replies.follow_up.language").strip()
            if not _LANGUAGE.fullmatch(language):
                raise SettingsError(
                    f"invalid template language '{language}' (a code such as de or en_US)",
                    line_of(value),
                )
        else:
            sources = []
            for number, item in enumerate(items_of(value, "replies.follow_up.params"), 1):
                source = text_of(item, f"replies.follow_up.params {number}")
                try:
                    replies.compile_check(source)
                except jinja2.TemplateSyntaxError as exc:
                    raise SettingsError(
                        f"replies.follow_up.params {number}: {exc.message}", line_of(item)
                    ) from None
                sources.append(source)
            params = tuple(sources)
    if template is None or language is None:
        raise SettingsError("replies.follow_up needs 'template' and 'language'", line_of(node))
    d.follow_up = FollowUpRule(template=template, language=language, params=params)


def _stale_after(node: Node, d: _Draft) -> None:
    d.stale_after_minutes = whole_number_of(node, "replies.stale_after_minutes")


def _human_pause(node: Node, d: _Draft) -> None:
    d.human_pause_minutes = whole_number_of(node, "replies.human_pause_minutes")


_REPLY_SECTIONS: dict[str, Callable[[Node, _Draft], None]] = {
    "optout": _optout,
    "keywords": _keywords,
    "away": _away,
    "greeting": _greeting,
    "follow_up": _follow_up,
    "stale_after_minutes": _stale_after,
    "human_pause_minutes": _human_pause,
}


def _replies(node: Node, d: _Draft) -> None:
    if is_null(node):
        return
    for key, _key_node, value in pairs_of(node, "replies", tuple(_REPLY_SECTIONS)):
        _REPLY_SECTIONS[key](value, d)


def _retention(node: Node, d: _Draft) -> None:
    if is_null(node):
        return
    days: dict[str, int | None] = {}
    for key, _key_node, value in pairs_of(node, "retention", ("messages_days", "media_days")):
        if is_null(value):
            days[key] = None  # kept for good, as if the key were left out
            continue
        what = f"retention.{key}"
        number = whole_number_of(value, what)
        if number < 1:
            raise SettingsError(
                f"{what} must be at least 1 (leave it out to keep them for good)", line_of(value)
            )
        days[key] = number
    d.retention = Retention(**days)


def _inbox(node: Node, d: _Draft) -> None:
    if is_null(node):
        return
    flags: dict[str, bool] = {}
    for key, _key_node, value in pairs_of(node, "inbox", ("read_receipts", "typing_indicator")):
        flags[key] = flag_of(value, f"inbox.{key}")
    d.inbox = InboxSignals(**flags)


def _broadcasts(node: Node, d: _Draft) -> None:
    if is_null(node):
        return
    values: dict[str, Any] = {}
    until_line = line_of(node)
    keys = ("send_from", "send_until", "on_closed_holidays")
    for key, _key_node, value in pairs_of(node, "broadcasts", keys):
        what = f"broadcasts.{key}"
        if key == "send_until":
            until_line = line_of(value)
        if key == "on_closed_holidays":
            values[key] = flag_of(value, what)
            continue
        values[key] = _wall_time(value, what, end=key == "send_until")
    hours = BroadcastHours(**values)
    if hours.send_until is not None and hours.send_until <= hours.send_from:
        raise SettingsError(
            "broadcasts.send_until must be later than send_from on the same day "
            "(24:00 for until midnight)",
            until_line,
        )
    d.broadcasts = hours


def _wall_time(node: Node, what: str, *, end: bool) -> time | None:
    """A local time "HH:MM"; "24:00" as an end is midnight (None)."""
    text = text_of(node, what).strip()
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
    hour, minute = (int(match[1]), int(match[2])) if match else (-1, -1)
    if end and (hour, minute) == (24, 0):
        return None
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise SettingsError(f"{what} must be a time like 09:00, got '{text}'", line_of(node))
    return time(hour, minute)


def _templates(node: Node, d: _Draft) -> None:
    if is_null(node):
        return
    if not isinstance(node, MappingNode):
        raise SettingsError("templates must be a mapping of names to Jinja texts", line_of(node))
    for key_node, value in node.value:
        name = str(key_node.value) if isinstance(key_node, ScalarNode) else ""
        if not replies.NAME_RE.fullmatch(name):
            raise SettingsError(
                f"invalid template name '{name}' (use letters, digits, _ and -)", line_of(key_node)
            )
        if name in d.templates:
            raise SettingsError(f"duplicate template '{name}'", line_of(key_node))
        source = text_of(value, f"template '{name}'")
        try:
            replies.compile_check(source)
        except jinja2.TemplateSyntaxError as exc:
            line = line_of(value)
            if isinstance(value, ScalarNode) and value.style == "|" and exc.lineno:
                # A literal block's text starts on the line after the `|`, line for line.
                line += exc.lineno
            elif isinstance(value, ScalarNode) and value.style == ">":
                line += 1  # folded lines no longer match the file's: point at the first
            raise SettingsError(f"template '{name}': {exc.message}", line) from None
        d.templates[name] = source
        d.template_lines[name] = line_of(value)


_SECTION_PARSERS: dict[str, Callable[[Node, _Draft], None]] = {
    "business": _business,
    "hours": _hours,
    "public_holidays": _public_holidays,
    "closures": _closures,
    "special_hours": _special_hours,
    "replies": _replies,
    "retention": _retention,
    "inbox": _inbox,
    "broadcasts": _broadcasts,
    "templates": _templates,
}


def parse_settings(
    text: str, *, stored: bool = False, try_templates: bool = False
) -> BusinessSettings:
    """Parse and validate a settings file; raise SettingsError for the first problem found.

    `stored`: settings saved before, perhaps by an older version that let through a keyword
    pattern refused now; such a pattern is kept (the rules bound its time) so that the rest
    of the settings still work. A lone surrogate that an older version let through reads as
    U+FFFD, instead of failing every message and the settings page.

    With `try_templates` (on saving, not on every load) each template is also rendered for
    sample contacts and refused if it fails or goes over the bounds of a render.
    """
    root = compose(text, stored=stored)
    if root is None:
        raise SettingsError("the settings file is empty (it needs at least business.name)", 1)
    d = _Draft(stored=stored)
    found: set[str] = set()
    for key, _key_node, value in pairs_of(root, "the settings", _SECTIONS):
        found.add(key)
        _SECTION_PARSERS[key](value, d)
    if "business" not in found or d.name is None:
        raise SettingsError("missing section 'business' (it needs at least a name)", line_of(root))

    lang = replies.language(d.locale)
    defaults = replies.default_template_names(lang)
    for name, node in d.references:
        if name not in d.templates and name not in defaults:
            known = ", ".join(sorted(defaults | d.templates.keys()))
            raise SettingsError(
                f"unknown template '{name}' (define it under templates, or use one of {known})",
                line_of(node),
            )

    try:
        hours = OpeningHours(
            timezone=d.timezone,
            weekly=d.weekly,
            holiday_country=d.holiday_country,
            holiday_subdivision=d.holiday_subdivision,
            closures=d.closures,
            special_days=d.special_days,
        )
    except ValueError as exc:  # the checks above should have caught it; keep the error typed
        raise SettingsError(str(exc)) from None
    settings = BusinessSettings(
        name=d.name,
        timezone=d.timezone,
        locale=d.locale,
        hours=hours,
        optout_stop=d.optout_stop,
        optout_start=d.optout_start,
        keywords=d.keywords,
        away=d.away,
        greeting=d.greeting,
        follow_up=d.follow_up,
        templates=FrozenMap(d.templates),
        stale_after_minutes=d.stale_after_minutes,
        human_pause_minutes=d.human_pause_minutes,
        retention=d.retention,
        inbox=d.inbox,
        broadcasts=d.broadcasts,
    )
    if try_templates:
        for name in d.templates:
            problem = replies.template_problem(settings, name)
            if problem is not None:
                raise SettingsError(f"template '{name}' {problem}", d.template_lines[name])
    return settings
