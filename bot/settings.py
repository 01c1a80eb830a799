"""The business settings file (YAML): parse and validate it whole, and write it back out.

Every error names the line of the offending value; the first one found is raised.
"""

from __future__ import annotations

import importlib
import math
import re
import unicodedata
import zoneinfo
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

import holidays
import jinja2
import regex
import yaml
from babel import Locale
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot import replies
from bot.hours import Closure, Interval, OpeningHours, SpecialDay, format_interval, parse_interval
from bot.replies import DEFAULT_LOCALE

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
WHEN = ("always", "open", "closed")
DEFAULT_TIMEZONE = "Europe/Berlin"
DEFAULT_STOP = ("STOP", "ABMELDEN")
DEFAULT_START = ("START", "ANMELDEN")
DEFAULT_COOLDOWN_HOURS = 12.0
DEFAULT_INACTIVE_DAYS = 14.0
# Away and greeting say "we are closed now" and "welcome": wrong for a message that reaches us
# this late (Meta replaying a backlog after an outage, a phone that was offline).
DEFAULT_STALE_AFTER_MINUTES = 60
# Once a person has answered, "we are closed" or "welcome" from the bot would talk over them.
DEFAULT_HUMAN_PAUSE_MINUTES = 120

_SECTIONS = (
    "business",
    "hours",
    "public_holidays",
    "closures",
    "special_hours",
    "replies",
    "retention",
    "templates",
)
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
# A UTF-16 surrogate pair (how JSON writes an emoji: "\\ud83d\\ude00"), or half of one alone.
_SURROGATES = re.compile("[\ud800-\udbff][\udc00-\udfff]|[\ud800-\udfff]")


class SettingsError(ValueError):
    """An invalid settings file: the line (1-based, if known) and the reason."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason, line)
        self.reason = reason
        self.line = line

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}" if self.line is not None else self.reason


class FrozenMap(Mapping[str, str]):
    """An immutable, hashable str -> str mapping that keeps its order (for the templates)."""

    __slots__ = ("_data", "_hash")

    def __init__(self, items: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> None:
        self._data: dict[str, str] = dict(items or {})
        self._hash: int | None = None

    def __getitem__(self, key: str) -> str:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._data == dict(other.items())
        return NotImplemented

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __repr__(self) -> str:
        return f"FrozenMap({self._data!r})"


@dataclass(frozen=True)
class KeywordRule:
    match: tuple[str, ...]  # words or phrases, case-insensitive, whole words; () with a pattern
    pattern: str | None  # a regular expression searched in the text
    template: str
    when: str = "always"  # "always", "open" or "closed"


@dataclass(frozen=True)
class AwayRule:
    template: str = "away"
    cooldown_hours: float = DEFAULT_COOLDOWN_HOURS


@dataclass(frozen=True)
class GreetingRule:
    template: str = "greeting"
    after_inactive_days: float = DEFAULT_INACTIVE_DAYS


@dataclass(frozen=True)
class Retention:
    """How many days messages and media are kept; None: for good. Read and kept only: nothing
    deletes old messages yet."""

    messages_days: int | None = None
    media_days: int | None = None


@dataclass(frozen=True)
class BusinessSettings:
    name: str
    timezone: str
    locale: str
    hours: OpeningHours
    optout_stop: tuple[str, ...] = DEFAULT_STOP
    optout_start: tuple[str, ...] = DEFAULT_START
    keywords: tuple[KeywordRule, ...] = ()
    away: AwayRule | None = None
    greeting: GreetingRule | None = None
    templates: Mapping[str, str] = field(default_factory=FrozenMap)
    stale_after_minutes: int = DEFAULT_STALE_AFTER_MINUTES
    human_pause_minutes: int = DEFAULT_HUMAN_PAUSE_MINUTES  # 0: no pause
    retention: Retention = Retention()

    def __post_init__(self) -> None:
        # Accept a plain dict from callers, but keep the value hashable and immutable.
        if not isinstance(self.templates, FrozenMap):
            object.__setattr__(self, "templates", FrozenMap(self.templates))


def fold_text(text: str) -> str:
    """Unicode case folding with composed characters and single spaces: "ÖFFNUNGS  ZEITEN"."""
    folded = unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())
    return " ".join(folded.split())


def bare_word(text: str) -> str:
    """The folded text without surrounding punctuation, symbols (emoji too) and spaces.

    "Stop!", " stop. " and "STOP 🙏" all become "stop"; "stoppen" stays "stoppen".
    """
    folded = fold_text(text)
    start, end = 0, len(folded)
    while start < end and not _is_word_char(folded[start]):
        start += 1
    while end > start and not _is_word_char(folded[end - 1]):
        end -= 1
    return folded[start:end]


def _is_word_char(ch: str) -> bool:
    return unicodedata.category(ch)[0] in ("L", "N")


# --- reading the node tree -------------------------------------------------------------------


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == _NULL


def _pairs(node: Node, where: str, allowed: tuple[str, ...]) -> list[tuple[str, Node, Node]]:
    """The (key, key node, value node) pairs of a mapping; unknown or repeated keys are errors."""
    if not isinstance(node, MappingNode):
        raise SettingsError(f"{where} must be a mapping of {', '.join(allowed)}", _line(node))
    seen: set[str] = set()
    out: list[tuple[str, Node, Node]] = []
    for key_node, value_node in node.value:
        if not isinstance(key_node, ScalarNode):
            raise SettingsError(f"{where}: a key must be a plain name", _line(key_node))
        # The raw text, so that YAML 1.1 does not turn keys such as `on` into booleans.
        key = str(key_node.value)
        if key not in allowed:
            raise SettingsError(
                f"unknown key '{key}' in {where} (expected {', '.join(allowed)})", _line(key_node)
            )
        if key in seen:
            raise SettingsError(f"duplicate key '{key}' in {where}", _line(key_node))
        seen.add(key)
        out.append((key, key_node, value_node))
    return out


def _text(node: Node, what: str, *, blank_ok: bool = False) -> str:
    # The raw scalar text: `NO` stays the country code, `on` a word, `2026` a name.
    if not isinstance(node, ScalarNode) or node.tag == _NULL:
        raise SettingsError(f"{what} must be a text", _line(node))
    value = str(node.value)
    if not blank_ok and not value.strip():
        raise SettingsError(f"{what} must not be empty", _line(node))
    return value


def _texts(node: Node, what: str) -> tuple[str, ...]:
    """A list of texts; a single text counts as a list of one, nothing as an empty list."""
    if _is_null(node):
        return ()
    if isinstance(node, ScalarNode):
        return (_text(node, what),)
    if not isinstance(node, SequenceNode):
        raise SettingsError(f"{what} must be a list", _line(node))
    return tuple(_text(item, what) for item in node.value)


def _number(node: Node, what: str) -> float:
    if isinstance(node, ScalarNode) and node.tag not in (_NULL, _BOOL):
        try:
            value = float(str(node.value).replace("_", ""))
        except ValueError:
            pass
        else:
            if not math.isfinite(value):
                raise SettingsError(f"{what} must be a finite number", _line(node))
            if value < 0:
                raise SettingsError(f"{what} must not be negative, got {node.value}", _line(node))
            return value
    raise SettingsError(f"{what} must be a number", _line(node))


def _whole_number(node: Node, what: str) -> int:
    if isinstance(node, ScalarNode) and node.tag not in (_NULL, _BOOL):
        text = str(node.value).replace("_", "").strip()
        try:
            value = int(text)
        except ValueError:
            pass
        else:
            if value < 0:
                raise SettingsError(f"{what} must not be negative, got {node.value}", _line(node))
            return value
    raise SettingsError(f"{what} must be a whole number, got {_shown(node)}", _line(node))


def _shown(node: Node) -> str:
    if _is_null(node):
        return "nothing"
    return f"'{node.value}'" if isinstance(node, ScalarNode) else "a list or mapping"


def _date(node: Node, what: str) -> date:
    # Plain 2026-12-24 is a YAML 1.1 timestamp and '2026-12-24' a string: both read the same.
    value = _text(node, what)
    if _DATE_RE.fullmatch(value.strip()):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    raise SettingsError(f"invalid date '{value}' for {what} (expected YYYY-MM-DD)", _line(node))


def _items(node: Node, what: str) -> list[Node]:
    if _is_null(node):
        return []
    if not isinstance(node, SequenceNode):
        raise SettingsError(f"{what} must be a list", _line(node))
    return list(node.value)


def _intervals(node: Node, what: str) -> tuple[Interval, ...]:
    if _is_null(node):
        return ()
    items = [node] if isinstance(node, ScalarNode) else _items(node, what)
    out = []
    for item in items:
        value = _text(item, f"an interval of {what}")
        try:
            out.append(parse_interval(value.strip()))
        except ValueError as exc:
            raise SettingsError(
                f"invalid interval '{value}' for {what}: {exc}", _line(item)
            ) from None
    return tuple(out)


# --- the sections ----------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    # The system's zoneinfo folder adds files that are not zones of a place.
    return frozenset(zoneinfo.available_timezones()) - {"localtime", "posixrules", "Factory"}


def _check_timezone(node: Node) -> str:
    value = _text(node, "business.timezone")
    # Only IANA names: ZoneInfo would also load a path or the machine's own "localtime".
    if value not in _zones():
        raise SettingsError(
            f"unknown time zone '{value}' (expected an IANA name such as Europe/Berlin)",
            _line(node),
        )
    return value


def _check_locale(node: Node) -> str:
    value = _text(node, "business.locale")
    try:
        Locale.parse(value)
    except Exception:  # ValueError for malformed names, UnknownLocaleError for unknown ones
        raise SettingsError(
            f"unknown locale '{value}' (expected a name such as de_DE or en_US)", _line(node)
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
    stale_after_minutes: int = DEFAULT_STALE_AFTER_MINUTES
    human_pause_minutes: int = DEFAULT_HUMAN_PAUSE_MINUTES
    retention: Retention = Retention()
    templates: dict[str, str] = field(default_factory=dict)
    template_lines: dict[str, int] = field(default_factory=dict)
    # Template names used by rules, with the node that names them, checked at the end.
    references: list[tuple[str, Node]] = field(default_factory=list)
    stored: bool = False  # see parse_settings


def _business(node: Node, d: _Draft) -> None:
    for key, _key_node, value in _pairs(node, "business", ("name", "timezone", "locale")):
        if key == "name":
            d.name = _text(value, "business.name")
        elif key == "timezone":
            d.timezone = _check_timezone(value)
        else:
            d.locale = _check_locale(value)
    if d.name is None:
        raise SettingsError("business: missing key 'name' (the shop's name)", _line(node))


def _hours(node: Node, d: _Draft) -> None:
    if _is_null(node):
        return
    if not isinstance(node, MappingNode):
        raise SettingsError("hours must be a mapping of days to intervals", _line(node))
    weekly: list[tuple[Interval, ...]] = [()] * 7
    seen: set[str] = set()
    for key_node, value in node.value:
        day = str(key_node.value) if isinstance(key_node, ScalarNode) else "?"
        if day not in DAYS:
            raise SettingsError(
                f"unknown day '{day}' (expected {', '.join(DAYS)})", _line(key_node)
            )
        if day in seen:
            raise SettingsError(f"duplicate day '{day}' in hours", _line(key_node))
        seen.add(day)
        weekly[DAYS.index(day)] = _intervals(value, day)
    d.weekly = tuple(weekly)


@lru_cache(maxsize=1)
def _holiday_countries() -> dict[str, list[str]]:
    return dict(holidays.list_supported_countries())


def _canonical(value: str, choices: Iterable[str]) -> str | None:
    wanted = value.strip().casefold()
    return next((c for c in choices if c.casefold() == wanted), None)


def _public_holidays(node: Node, d: _Draft) -> None:
    if _is_null(node):
        return
    pairs = _pairs(node, "public_holidays", ("country", "subdivision"))
    supported = _holiday_countries()
    subdivision_node = None
    for key, _key_node, value in pairs:
        if key == "country":
            raw = _text(value, "public_holidays.country")
            country = _canonical(raw, list(supported))
            if country is None:
                raise SettingsError(
                    f"unknown holiday country '{raw}' (expected a code such as DE, AT or CH)",
                    _line(value),
                )
            d.holiday_country = country
        elif not _is_null(value):
            subdivision_node = value
    if d.holiday_country is None:
        raise SettingsError("public_holidays: missing key 'country'", _line(node))
    if subdivision_node is not None:
        raw = _text(subdivision_node, "public_holidays.subdivision")
        choices = supported[d.holiday_country]
        subdivision = _canonical(raw, list(choices))
        if subdivision is None:
            raise SettingsError(
                f"unknown subdivision '{raw}' for {d.holiday_country} "
                f"(expected one of {', '.join(choices) or 'none'})",
                _line(subdivision_node),
            )
        d.holiday_subdivision = subdivision


def _closures(node: Node, d: _Draft) -> None:
    out = []
    for item in _items(node, "closures"):
        start: date | None = None
        end: date | None = None
        end_node: Node | None = None
        reason = ""
        for key, _key_node, value in _pairs(item, "a closure", ("from", "to", "reason")):
            if key == "from":
                start = _date(value, "closure 'from'")
            elif key == "to":
                end, end_node = _date(value, "closure 'to'"), value
            elif not _is_null(value):
                reason = _text(value, "closure reason", blank_ok=True)
        if start is None:
            raise SettingsError("a closure needs 'from' (its first day)", _line(item))
        if end is None:
            end = start
        elif end < start:
            raise SettingsError(
                f"closure ends before it starts: 'to' {end.isoformat()} is before "
                f"'from' {start.isoformat()}",
                _line(end_node or item),
            )
        out.append(Closure(start=start, end=end, reason=reason))
    d.closures = tuple(out)


def _special_hours(node: Node, d: _Draft) -> None:
    out = []
    seen: set[date] = set()
    for item in _items(node, "special_hours"):
        day: date | None = None
        day_node: Node = item
        intervals: tuple[Interval, ...] | None = None
        for key, _key_node, value in _pairs(item, "special_hours", ("date", "hours")):
            if key == "date":
                day, day_node = _date(value, "special_hours date"), value
            else:
                intervals = _intervals(value, "special hours")
        if day is None:
            raise SettingsError("special_hours: missing key 'date'", _line(item))
        if intervals is None:
            raise SettingsError(
                "special_hours: missing key 'hours' (use [] for closed)", _line(item)
            )
        if day in seen:
            raise SettingsError(f"duplicate special_hours date {day.isoformat()}", _line(day_node))
        seen.add(day)
        out.append(SpecialDay(day=day, intervals=intervals))
    d.special_days = tuple(out)


def _optout(node: Node, d: _Draft) -> None:
    if _is_null(node):
        return
    # bare form -> (word as written, its node); a list not given keeps its defaults
    forms: dict[str, dict[str, tuple[str, Node]]] = {
        "stop": {bare_word(w): (w, node) for w in DEFAULT_STOP},
        "start": {bare_word(w): (w, node) for w in DEFAULT_START},
    }
    for key, _key_node, value in _pairs(node, "replies.optout", ("stop", "start")):
        words = _texts(value, f"an optout {key} word")
        forms[key] = {}
        for word, item in zip(words, _word_nodes(value) if words else [], strict=True):
            bare = bare_word(word)
            if not bare:
                raise SettingsError(
                    f"optout {key} word '{word}' needs a letter or a digit", _line(item)
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
                max(_line(item), _line(stop_item)),
            )


def _word_nodes(node: Node) -> list[Node]:
    return list(node.value) if isinstance(node, SequenceNode) else [node]


def _keywords(node: Node, d: _Draft) -> None:
    out = []
    for item in _items(node, "replies.keywords"):
        match: tuple[str, ...] = ()
        pattern: str | None = None
        template: str | None = None
        when = "always"
        has_match = False
        for key, _key_node, value in _pairs(
            item, "a keyword rule", ("match", "pattern", "template", "when")
        ):
            if key == "match":
                has_match = True
                match = _texts(value, "a match word")
                if not match:
                    raise SettingsError("match needs at least one word", _line(value))
            elif key == "pattern":
                pattern = _text(value, "pattern")
                if not d.stored:
                    _check_pattern(pattern, value)
            elif key == "template":
                template = _text(value, "template")
                d.references.append((template, value))
            else:
                when = _text(value, "when")
                if when not in WHEN:
                    raise SettingsError(
                        f"unknown when '{when}' (expected {', '.join(WHEN)})", _line(value)
                    )
        if has_match == (pattern is not None):
            raise SettingsError(
                "a keyword rule needs either 'match' or 'pattern', not "
                + ("both" if has_match else "neither"),
                _line(item),
            )
        if template is None:
            raise SettingsError("a keyword rule needs 'template'", _line(item))
        out.append(KeywordRule(match=match, pattern=pattern, template=template, when=when))
    d.keywords = tuple(out)


# Python's own parser of its regular expressions, behind re.compile (typeshed has no stub).
_re_parser: Any = importlib.import_module("re._parser")
_REPEATS = frozenset({_re_parser.MAX_REPEAT, _re_parser.MIN_REPEAT})


def _check_pattern(pattern: str, node: Node) -> None:
    try:
        tree = _re_parser.parse(pattern)
        regex.compile(pattern)  # the engine the rules search with
        nested = _nested_repetition(tree, inside=False)
    except (re.error, regex.error) as exc:
        raise SettingsError(f"invalid regular expression '{pattern}': {exc}", _line(node)) from None
    except RecursionError:
        # Python's parser and compiler recurse once per group.
        raise SettingsError(
            f"pattern '{pattern[:40]}…' nests its groups too deeply: use fewer parentheses",
            _line(node),
        ) from None
    if nested:
        raise SettingsError(
            f"pattern '{pattern}' repeats something that itself repeats, as in (a+)+, which "
            "can take hours on some texts: write it without the nested repetition "
            "(a+ instead of (a+)+)",
            _line(node),
        )


def _nested_repetition(tree: Any, *, inside: bool) -> bool:
    r"""Whether a variable repetition (+, *, {2,5}) sits inside another repetition whose parts
    nothing separates: the shape, as in (a+)+ or (\w+\s?)*, that makes a backtracking search
    take exponential time on a text that almost matches. A fixed character or class in the
    outer part, as in (,\d+)*, or a single optional part (x?) is fine. A heuristic: the
    rules' time budget bounds the rarer slow shapes it lets through, such as (a|aa)+."""
    for op, arg in tree:
        if op in _REPEATS:
            low, high, sub = arg
            if inside and high > 1 and high != low:
                return True
            if _nested_repetition(sub, inside=(inside or high > 1) and not _separated(sub)):
                return True
            continue
        for part in _subtrees(arg):
            if _nested_repetition(part, inside=inside):
                return True
    return False


def _separated(tree: Any) -> bool:
    # A character or class that every repetition of `tree` must match once.
    for op, arg in tree:
        if op in (_re_parser.LITERAL, _re_parser.IN):
            return True
        if op is _re_parser.SUBPATTERN and _separated(arg[-1]):
            return True
    return False


def _subtrees(arg: Any) -> Iterator[Any]:
    # Groups, alternatives, lookarounds and conditionals keep their parts in SubPatterns.
    if isinstance(arg, _re_parser.SubPattern):
        yield arg
    elif isinstance(arg, tuple | list):
        for item in arg:
            yield from _subtrees(item)


def _switch(node: Node) -> bool | None:
    """`away: off` / `away: ~` turn a rule off and `away: on` turns it on with its defaults."""
    if _is_null(node):
        return False
    if isinstance(node, ScalarNode) and node.tag == _BOOL:
        return str(node.value).lower() in ("yes", "true", "on", "y")
    return None


def _away(node: Node, d: _Draft) -> None:
    switch = _switch(node)
    if switch is not None:
        d.away = AwayRule() if switch else None
        if switch:
            d.references.append(("away", node))
        return
    rule = AwayRule()
    template_node: Node = node
    for key, _key_node, value in _pairs(node, "replies.away", ("template", "cooldown_hours")):
        if key == "template":
            rule = AwayRule(_text(value, "template"), rule.cooldown_hours)
            template_node = value
        else:
            rule = AwayRule(rule.template, _number(value, "cooldown_hours"))
    d.references.append((rule.template, template_node))
    d.away = rule


def _greeting(node: Node, d: _Draft) -> None:
    switch = _switch(node)
    if switch is not None:
        d.greeting = GreetingRule() if switch else None
        if switch:
            d.references.append(("greeting", node))
        return
    rule = GreetingRule()
    template_node: Node = node
    for key, _key_node, value in _pairs(
        node, "replies.greeting", ("template", "after_inactive_days")
    ):
        if key == "template":
            rule = GreetingRule(_text(value, "template"), rule.after_inactive_days)
            template_node = value
        else:
            rule = GreetingRule(rule.template, _number(value, "after_inactive_days"))
    d.references.append((rule.template, template_node))
    d.greeting = rule


def _stale_after(node: Node, d: _Draft) -> None:
    d.stale_after_minutes = _whole_number(node, "replies.stale_after_minutes")


def _human_pause(node: Node, d: _Draft) -> None:
    d.human_pause_minutes = _whole_number(node, "replies.human_pause_minutes")


_REPLY_SECTIONS: dict[str, Callable[[Node, _Draft], None]] = {
    "optout": _optout,
    "keywords": _keywords,
    "away": _away,
    "greeting": _greeting,
    "stale_after_minutes": _stale_after,
    "human_pause_minutes": _human_pause,
}


def _replies(node: Node, d: _Draft) -> None:
    if _is_null(node):
        return
    for key, _key_node, value in _pairs(node, "replies", tuple(_REPLY_SECTIONS)):
        _REPLY_SECTIONS[key](value, d)


def _retention(node: Node, d: _Draft) -> None:
    if _is_null(node):
        return
    days: dict[str, int | None] = {}
    for key, _key_node, value in _pairs(node, "retention", ("messages_days", "media_days")):
        if _is_null(value):
            days[key] = None  # kept for good, as if the key were left out
            continue
        what = f"retention.{key}"
        number = _whole_number(value, what)
        if number < 1:
            raise SettingsError(
                f"{what} must be at least 1 (leave it out to keep them for good)", _line(value)
            )
        days[key] = number
    d.retention = Retention(**days)


def _templates(node: Node, d: _Draft) -> None:
    if _is_null(node):
        return
    if not isinstance(node, MappingNode):
        raise SettingsError("templates must be a mapping of names to Jinja texts", _line(node))
    for key_node, value in node.value:
        name = str(key_node.value) if isinstance(key_node, ScalarNode) else ""
        if not replies.NAME_RE.fullmatch(name):
            raise SettingsError(
                f"invalid template name '{name}' (use letters, digits, _ and -)", _line(key_node)
            )
        if name in d.templates:
            raise SettingsError(f"duplicate template '{name}'", _line(key_node))
        source = _text(value, f"template '{name}'")
        try:
            replies.compile_check(source)
        except jinja2.TemplateSyntaxError as exc:
            line = _line(value)
            if isinstance(value, ScalarNode) and value.style == "|" and exc.lineno:
                # A literal block's text starts on the line after the `|`, line for line.
                line += exc.lineno
            elif isinstance(value, ScalarNode) and value.style == ">":
                line += 1  # folded lines no longer match the file's: point at the first
            raise SettingsError(f"template '{name}': {exc.message}", line) from None
        d.templates[name] = source
        d.template_lines[name] = _line(value)


_SECTION_PARSERS: dict[str, Callable[[Node, _Draft], None]] = {
    "business": _business,
    "hours": _hours,
    "public_holidays": _public_holidays,
    "closures": _closures,
    "special_hours": _special_hours,
    "replies": _replies,
    "retention": _retention,
    "templates": _templates,
}


def _joined(text: str, *, lenient: bool = False) -> str:
    """The text with each surrogate pair joined into its character; ValueError names the first
    lone surrogate, or with `lenient` it becomes U+FFFD. YAML's "\\ud83d" escapes give
    surrogates, which no database, page or message can carry: the pairs are what JSON and
    JavaScript write for an emoji."""
    for match in _SURROGATES.finditer(text):
        if len(match.group()) == 1 and not lenient:
            raise ValueError(
                f"\\u{ord(match.group()):04x} is half of a character (a lone surrogate), not "
                "valid Unicode: write the character itself, e.g. 😀, or as \\U0001F600"
            )
    return _SURROGATES.sub(
        lambda m: m.group().encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace"),
        text,
    )


def _unicode(node: Node, seen: set[int], lenient: bool) -> None:
    """Join or refuse the surrogates of every scalar under `node` (keys too), by its line."""
    if id(node) in seen:  # an alias is the same node again
        return
    seen.add(id(node))
    if isinstance(node, ScalarNode):
        if isinstance(node.value, str) and _SURROGATES.search(node.value):
            try:
                node.value = _joined(node.value, lenient=lenient)
            except ValueError as exc:
                raise SettingsError(str(exc), _line(node)) from None
    elif isinstance(node, MappingNode):
        for key, value in node.value:
            _unicode(key, seen, lenient)
            _unicode(value, seen, lenient)
    elif isinstance(node, SequenceNode):
        for item in node.value:
            _unicode(item, seen, lenient)


def _compose(text: str, *, stored: bool = False) -> Node | None:
    # Surrogates as characters are refused by the YAML reader; as escapes, by _unicode.
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = exc.problem or "invalid YAML"
        if exc.context and exc.context.startswith("while"):
            if exc.context_mark is not None:
                # "while parsing a flow sequence": where the unfinished thing started
                reason += f" ({exc.context} from line {exc.context_mark.line + 1})"
        elif exc.context:
            # "expected a single document in the stream" + "but found another document"
            reason = f"{exc.context} {reason}"
        raise SettingsError(
            f"invalid YAML: {reason}", mark.line + 1 if mark is not None else None
        ) from None
    except yaml.YAMLError as exc:
        position = getattr(exc, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else None
        reason = getattr(exc, "reason", None) or str(exc)
        raise SettingsError(f"invalid YAML: {reason}", line) from None
    if root is not None:
        _unicode(root, set(), stored)
    return root


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
    root = _compose(text, stored=stored)
    if root is None:
        raise SettingsError("the settings file is empty (it needs at least business.name)", 1)
    d = _Draft(stored=stored)
    found: set[str] = set()
    for key, _key_node, value in _pairs(root, "the settings", _SECTIONS):
        found.add(key)
        _SECTION_PARSERS[key](value, d)
    if "business" not in found or d.name is None:
        raise SettingsError("missing section 'business' (it needs at least a name)", _line(root))

    lang = replies.language(d.locale)
    defaults = replies.default_template_names(lang)
    for name, node in d.references:
        if name not in d.templates and name not in defaults:
            known = ", ".join(sorted(defaults | d.templates.keys()))
            raise SettingsError(
                f"unknown template '{name}' (define it under templates, or use one of {known})",
                _line(node),
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
        templates=FrozenMap(d.templates),
        stale_after_minutes=d.stale_after_minutes,
        human_pause_minutes=d.human_pause_minutes,
        retention=d.retention,
    )
    if try_templates:
        for name in d.templates:
            problem = replies.template_problem(settings, name)
            if problem is not None:
                raise SettingsError(f"template '{name}' {problem}", d.template_lines[name])
    return settings


# --- writing ---------------------------------------------------------------------------------


class _Flow(list[Any]):
    """A list written in flow style: ["09:00-12:30", "14:00-18:00"]."""


class _FlowMap(dict[str, Any]):
    """A mapping written in flow style: {from: 2026-12-24, to: 2026-12-26}."""


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        # Never &id001 anchors: the file is for people to read and edit.
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # Indent list items under their key, as people write them.
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


def _represent_flow(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.SequenceNode:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


def _represent_flow_map(dumper: yaml.SafeDumper, data: dict[str, Any]) -> yaml.MappingNode:
    node = dumper.represent_mapping("tag:yaml.org,2002:map", data.items(), flow_style=True)
    return node


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(_Flow, _represent_flow)
_Dumper.add_representer(_FlowMap, _represent_flow_map)


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() and abs(value) < 1e15 else value


def _intervals_out(intervals: tuple[Interval, ...]) -> _Flow:
    return _Flow(format_interval(iv) for iv in intervals)


def dump_settings(s: BusinessSettings) -> str:
    """The settings as YAML in the import form; parse_settings(dump_settings(s)) == s."""
    h = s.hours
    doc: dict[str, Any] = {
        "business": {"name": s.name, "timezone": s.timezone, "locale": s.locale},
        "hours": {day: _intervals_out(h.weekly[i]) for i, day in enumerate(DAYS)},
    }
    if h.holiday_country:
        holiday = _FlowMap(country=h.holiday_country)
        if h.holiday_subdivision:
            holiday["subdivision"] = h.holiday_subdivision
        doc["public_holidays"] = holiday
    if h.closures:
        doc["closures"] = [
            _FlowMap({"from": c.start, "to": c.end, **({"reason": c.reason} if c.reason else {})})
            for c in h.closures
        ]
    if h.special_days:
        doc["special_hours"] = [
            _FlowMap(date=sd.day, hours=_intervals_out(sd.intervals)) for sd in h.special_days
        ]
    reply: dict[str, Any] = {
        "optout": _FlowMap(stop=_Flow(s.optout_stop), start=_Flow(s.optout_start)),
        "keywords": [_keyword_out(k) for k in s.keywords],
    }
    if s.away is not None:
        reply["away"] = _FlowMap(
            template=s.away.template, cooldown_hours=_num(s.away.cooldown_hours)
        )
    if s.greeting is not None:
        reply["greeting"] = _FlowMap(
            template=s.greeting.template, after_inactive_days=_num(s.greeting.after_inactive_days)
        )
    reply["stale_after_minutes"] = s.stale_after_minutes
    reply["human_pause_minutes"] = s.human_pause_minutes
    doc["replies"] = reply
    kept = _FlowMap(
        (key, value)
        for key, value in (
            ("messages_days", s.retention.messages_days),
            ("media_days", s.retention.media_days),
        )
        if value is not None
    )
    if kept:
        doc["retention"] = kept
    if s.templates:
        doc["templates"] = dict(s.templates)
    return yaml.dump(
        doc,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=1000,
    )


def _keyword_out(rule: KeywordRule) -> _FlowMap:
    out = _FlowMap()
    if rule.pattern is not None:
        out["pattern"] = rule.pattern
    else:
        out["match"] = _Flow(rule.match)
    out["template"] = rule.template
    if rule.when != "always":
        out["when"] = rule.when
    return out


DEMO_SETTINGS = """\
# Tresen demo business: a flower shop in Munich.
business:
  name: Blumen Müller
  timezone: Europe/Berlin
  locale: de_DE
hours:                              # a missing day is closed
  mon: ["09:00-12:30", "14:00-18:00"]
  tue: ["09:00-12:30", "14:00-18:00"]
  wed: ["09:00-12:30"]
  thu: ["09:00-12:30", "14:00-18:00"]
  fri: ["09:00-18:00"]
  sat: ["09:00-14:00"]
  sun: []
public_holidays: {country: DE, subdivision: BY}
closures:
  - {from: 2026-12-24, to: 2026-12-26, reason: Weihnachten}
  - {from: 2027-01-02, to: 2027-01-06, reason: Betriebsferien}
special_hours:
  - {date: 2026-12-23, hours: ["08:00-20:00"]}     # the last day before Christmas
  - {date: 2026-12-31, hours: ["09:00-12:00"]}
replies:
  optout: {stop: ["STOP", "ABMELDEN"], start: ["START", "ANMELDEN"]}
  keywords:                         # first match wins
    - {match: ["öffnungszeiten", "geöffnet", "hours", "opening hours"], template: hours}
    - {pattern: "(?i)bestellung\\\\s*#?\\\\d+", template: order, when: open}
    - {match: ["adresse", "anfahrt", "address"], template: address}
  away: {template: away, cooldown_hours: 12}
  greeting: {template: greeting, after_inactive_days: 14}
  stale_after_minutes: 60           # no away or greeting reply to a message older than this
  human_pause_minutes: 120          # after a person answers, no away or greeting for 2 hours
templates:
  address: |
    Sie finden uns in der Blumenstraße 12, 80331 München – zwei Minuten vom Marienplatz.
    {% if is_open %}Wir haben gerade geöffnet, kommen Sie gern vorbei!{% endif %}
  away: >-
    Hallo{% if contact.name %} {{ contact.name }}{% endif %}, danke für Ihre Nachricht!
    Gerade ist bei {{ business.name }} niemand im Laden.
    {% if next_open %}Ab {{ next_open | format_datetime("EEEE, d. MMMM, HH:mm 'Uhr'") }}
    sind wir wieder für Sie da.{% else %}Wir melden uns so bald wie möglich.{% endif %}
"""
