"""The settings file: parsing, defaults, each kind of error (line and reason), round-trip."""

from __future__ import annotations

from datetime import date, time
from pathlib import Path
from textwrap import dedent

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.hours import Closure, Interval, OpeningHours, SpecialDay, parse_interval
from bot.settings import (
    DEMO_SETTINGS,
    AwayRule,
    BusinessSettings,
    GreetingRule,
    InboxSignals,
    KeywordRule,
    Retention,
    SettingsError,
    bare_word,
    dump_settings,
    parse_settings,
)
from tests.conftest import examples

# The example of the operator contract's "Settings file (YAML)", as it stands there.
CONTRACT_EXAMPLE = (Path(__file__).parent / "fixtures" / "contract_settings.yaml").read_text(
    encoding="utf-8"
)


def iv(text: str) -> Interval:
    return parse_interval(text)


def test_contract_example_parses_to_these_values() -> None:
    s = parse_settings(CONTRACT_EXAMPLE)
    assert s.name == "Blumen Müller"
    assert s.timezone == "Europe/Berlin"
    assert s.locale == "de_DE"
    assert s.hours == OpeningHours(
        timezone="Europe/Berlin",
        weekly=(
            (iv("09:00-12:30"), iv("14:00-18:00")),
            (),
            (),
            (),
            (iv("09:00-18:00"), iv("22:00-02:00")),
            (iv("10:00-14:00"),),
            (),
        ),
        holiday_country="DE",
        holiday_subdivision="BY",
        closures=(Closure(date(2026, 12, 24), date(2026, 12, 26), "Weihnachten"),),
        special_days=(SpecialDay(date(2026, 12, 31), (iv("09:00-12:00"),)),),
    )
    assert s.optout_stop == ("STOP", "ABMELDEN")
    assert s.optout_start == ("START", "ANMELDEN")
    assert s.keywords == (
        KeywordRule(match=("öffnungszeiten", "hours"), pattern=None, template="hours"),
        KeywordRule(match=(), pattern=r"(?i)bestellung\s*#?\d+", template="order", when="open"),
    )
    assert s.away == AwayRule(template="away", cooldown_hours=12, once_per_closure=False)
    assert s.greeting == GreetingRule(template="greeting", after_inactive_days=14)
    assert (s.stale_after_minutes, s.human_pause_minutes) == (60, 120)
    assert s.retention == Retention(messages_days=730, media_days=365)
    assert dict(s.templates) == {
        "away": "Hallo {{ contact.name }}, wir sind ab {{ next_open | format_datetime }} wieder da."
    }


def test_demo_settings_parse() -> None:
    s = parse_settings(DEMO_SETTINGS)
    assert s.name == "Blumen Müller"
    assert s.hours.holiday_country == "DE"
    assert s.hours.holiday_subdivision == "BY"
    assert s.away is not None and s.greeting is not None
    assert [k.template for k in s.keywords] == ["hours", "order", "address"]


def test_defaults_when_keys_are_missing() -> None:
    s = parse_settings("business: {name: Kiosk}\n")
    assert (s.timezone, s.locale) == ("Europe/Berlin", "de_DE")
    assert s.hours == OpeningHours(timezone="Europe/Berlin", weekly=((),) * 7)
    assert s.optout_stop == ("STOP", "ABMELDEN")
    assert s.optout_start == ("START", "ANMELDEN")
    assert s.keywords == ()
    assert s.away is None and s.greeting is None
    assert dict(s.templates) == {}
    assert s.stale_after_minutes == 60
    assert s.human_pause_minutes == 120
    assert s.retention == Retention(messages_days=None, media_days=None)


def test_human_pause_and_retention_are_read_and_written() -> None:
    s = parse_settings(
        HEAD + "replies:\n  human_pause_minutes: 0\nretention: {messages_days: 30}\n"
    )
    assert (s.human_pause_minutes, s.retention) == (0, Retention(messages_days=30))
    out = dump_settings(s)
    assert "  human_pause_minutes: 0\n" in out
    assert "\nretention: {messages_days: 30}\n" in out
    assert parse_settings(out) == s
    assert "retention" not in dump_settings(parse_settings(HEAD + "retention:\n"))
    assert parse_settings(DEMO_SETTINGS).human_pause_minutes == 120


def test_stale_after_minutes_is_read_and_written() -> None:
    s = parse_settings(HEAD + "replies:\n  stale_after_minutes: 0\n")
    assert s.stale_after_minutes == 0
    assert "  stale_after_minutes: 0\n" in dump_settings(s)
    assert parse_settings(DEMO_SETTINGS).stale_after_minutes == 60


def test_rules_given_without_values_take_their_defaults() -> None:
    s = parse_settings("business: {name: Kiosk}\nreplies:\n  away: {}\n  greeting: on\n")
    assert s.away == AwayRule(template="away", cooldown_hours=None, once_per_closure=True)
    assert s.greeting == GreetingRule(template="greeting", after_inactive_days=14.0)
    off = parse_settings("business: {name: Kiosk}\nreplies:\n  away: off\n  greeting:\n")
    assert off.away is None and off.greeting is None


def test_yaml_1_1_surprises_are_read_as_written() -> None:
    s = parse_settings(
        dedent(
            """\
            business: {name: 2026, locale: en_US}
            public_holidays: {country: NO}
            closures:
              - {from: 2026-12-24, to: "2026-12-26", reason: on}
            special_hours:
              - {date: '2026-12-31', hours: 09:00-12:00}
            replies:
              optout: {stop: [no, off], start: [yes]}
            """
        )
    )
    assert s.name == "2026"
    assert s.hours.holiday_country == "NO"
    assert s.hours.closures == (Closure(date(2026, 12, 24), date(2026, 12, 26), "on"),)
    assert s.hours.special_days == (SpecialDay(date(2026, 12, 31), (iv("09:00-12:00"),)),)
    assert (s.optout_stop, s.optout_start) == (("no", "off"), ("yes",))


def test_holiday_codes_are_matched_case_insensitively() -> None:
    s = parse_settings("business: {name: K}\npublic_holidays: {country: de, subdivision: by}\n")
    assert (s.hours.holiday_country, s.hours.holiday_subdivision) == ("DE", "BY")


def test_error_str_names_the_line() -> None:
    err = SettingsError("unknown day 'mox' (expected mon, tue, wed, thu, fri, sat, sun)", 12)
    assert str(err) == "line 12: unknown day 'mox' (expected mon, tue, wed, thu, fri, sat, sun)"
    assert isinstance(err, ValueError)
    assert str(SettingsError("no line")) == "no line"


HEAD = "business: {name: Blumen Müller}\n"  # line 1


def interval_reason(text: str, day: str) -> str:
    try:
        parse_interval(text)
    except ValueError as exc:
        return f"invalid interval '{text}' for {day}: {exc}"
    raise AssertionError(f"{text} parsed")


ERRORS = [
    pytest.param(
        "business:\n  name: [Blumen\nhours:\n  mon: []\n",
        3,
        "invalid YAML: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence from line 2)",
        id="yaml-syntax",
    ),
    pytest.param(
        "business:\n\tname: x\n",
        2,
        "invalid YAML: found character '\\t' that cannot start any token",
        id="yaml-tab",
    ),
    pytest.param(
        "business: {name: x}\n---\nbusiness: {name: y}\n",
        2,
        "invalid YAML: expected a single document in the stream but found another document",
        id="yaml-two-documents",
    ),
    pytest.param("", 1, "the settings file is empty (it needs at least business.name)", id="empty"),
    pytest.param(
        "- a\n",
        1,
        "the settings must be a mapping of business, hours, public_holidays, closures, "
        "special_hours, replies, retention, inbox, broadcasts, templates",
        id="not-a-mapping",
    ),
    pytest.param(
        HEAD + "hour:\n  mon: []\n",
        2,
        "unknown key 'hour' in the settings (expected business, hours, public_holidays, "
        "closures, special_hours, replies, retention, inbox, broadcasts, templates)",
        id="unknown-section",
    ),
    pytest.param(
        "business:\n  name: x\n  timezon: Europe/Berlin\n",
        3,
        "unknown key 'timezon' in business (expected name, timezone, locale)",
        id="unknown-key-in-business",
    ),
    pytest.param(
        HEAD + "replies:\n  away: {template: away, cooldown: 3}\n",
        3,
        "unknown key 'cooldown' in replies.away (expected template, cooldown_hours, "
        "once_per_closure)",
        id="unknown-key-in-away",
    ),
    pytest.param(
        HEAD + "replies:\n  keywords:\n    - {match: [hi], template: greeting, wenn: open}\n",
        4,
        "unknown key 'wenn' in a keyword rule (expected match, pattern, template, when, file)",
        id="unknown-key-in-keyword",
    ),
    pytest.param(
        "business:\n  name: x\n  name: y\n",
        3,
        "duplicate key 'name' in business",
        id="duplicate-key",
    ),
    pytest.param(
        "business:\n  locale: de_DE\n",
        2,
        "business: missing key 'name' (the shop's name)",
        id="missing-name",
    ),
    pytest.param(
        "hours: {}\n",
        1,
        "missing section 'business' (it needs at least a name)",
        id="missing-business",
    ),
    pytest.param(
        HEAD + "hours:\n  mon: []\n" + "\n" * 8 + "  mox: ['09:00-12:00']\n",
        12,
        "unknown day 'mox' (expected mon, tue, wed, thu, fri, sat, sun)",
        id="unknown-day",
    ),
    pytest.param(
        HEAD + "hours:\n  mon: ['09:00-12:00']\n  mon: []\n",
        4,
        "duplicate day 'mon' in hours",
        id="duplicate-day",
    ),
    pytest.param(
        HEAD + "hours:\n  mon:\n    - '09:00-12:00'\n    - '25:00-26:00'\n",
        5,
        interval_reason("25:00-26:00", "mon"),
        id="bad-interval",
    ),
    pytest.param(
        HEAD + "hours:\n  tue: ['09:00-09:00']\n",
        3,
        interval_reason("09:00-09:00", "tue"),
        id="empty-interval",
    ),
    pytest.param(
        HEAD + "closures:\n  - {from: 2026-02-30, to: 2026-03-01}\n",
        3,
        "invalid date '2026-02-30' for closure 'from' (expected YYYY-MM-DD)",
        id="bad-date",
    ),
    pytest.param(
        HEAD + "special_hours:\n  - {date: 31.12.2026, hours: []}\n",
        3,
        "invalid date '31.12.2026' for special_hours date (expected YYYY-MM-DD)",
        id="bad-date-format",
    ),
    pytest.param(
        HEAD + "closures:\n  - from: 2026-12-26\n    to: 2026-12-24\n",
        4,
        "closure ends before it starts: 'to' 2026-12-24 is before 'from' 2026-12-26",
        id="closure-from-after-to",
    ),
    pytest.param(
        HEAD + "closures:\n  - {to: 2026-12-24}\n",
        3,
        "a closure needs 'from' (its first day)",
        id="closure-without-from",
    ),
    pytest.param(
        HEAD + "special_hours:\n  - {date: 2026-12-31, hours: []}\n"
        "  - {date: 2026-12-31, hours: ['09:00-12:00']}\n",
        4,
        "duplicate special_hours date 2026-12-31",
        id="duplicate-special-day",
    ),
    pytest.param(
        "business:\n  name: x\n  timezone: Europe/Berlim\n",
        3,
        "unknown time zone 'Europe/Berlim' (expected an IANA name such as Europe/Berlin)",
        id="bad-timezone",
    ),
    pytest.param(
        "business:\n  name: x\n  timezone: ../../etc/passwd\n",
        3,
        "unknown time zone '../../etc/passwd' (expected an IANA name such as Europe/Berlin)",
        id="timezone-path",
    ),
    pytest.param(
        "business:\n  name: x\n  timezone: localtime\n",
        3,
        "unknown time zone 'localtime' (expected an IANA name such as Europe/Berlin)",
        id="timezone-of-the-machine",
    ),
    pytest.param(
        "business:\n  name: x\n  locale: xx_YY\n",
        3,
        "unknown locale 'xx_YY' (expected a name such as de_DE or en_US)",
        id="bad-locale",
    ),
    pytest.param(
        "business:\n  name: x\n  locale: de-DE\n",
        3,
        "unknown locale 'de-DE' (expected a name such as de_DE or en_US)",
        id="locale-with-dash",
    ),
    pytest.param(
        HEAD + "public_holidays: {country: XX}\n",
        2,
        "unknown holiday country 'XX' (expected a code such as DE, AT or CH)",
        id="bad-holiday-country",
    ),
    pytest.param(
        HEAD + "public_holidays:\n  country: AT\n  subdivision: ZZ\n",
        4,
        "unknown subdivision 'ZZ' for AT (expected one of 1, 2, 3, 4, 5, 6, 7, 8, 9)",
        id="bad-holiday-subdivision",
    ),
    pytest.param(
        HEAD + "replies:\n  keywords:\n    - {match: [hi], template: greeting, when: sometimes}\n",
        4,
        "unknown when 'sometimes' (expected always, open, closed)",
        id="bad-when",
    ),
    pytest.param(
        HEAD + "replies:\n  keywords:\n    - {template: hours}\n",
        4,
        "a keyword rule needs either 'match' or 'pattern', not neither",
        id="keyword-neither",
    ),
    pytest.param(
        HEAD + "replies:\n  keywords:\n    - {match: [hours], pattern: 'h', template: hours}\n",
        4,
        "a keyword rule needs either 'match' or 'pattern', not both",
        id="keyword-both",
    ),
    pytest.param(
        HEAD + "replies:\n  keywords:\n    - {match: [hours]}\n",
        4,
        "a keyword rule needs 'template'",
        id="keyword-without-template",
    ),
    pytest.param(
        HEAD + "replies:\n  keywords:\n    - {match: [], template: hours}\n",
        4,
        "match needs at least one word",
        id="keyword-empty-match",
    ),
    pytest.param(
        HEAD + "replies:\n  keywords:\n    - pattern: '(?i)bestellung('\n      template: order\n",
        4,
        "invalid regular expression '(?i)bestellung(': missing ), unterminated subpattern "
        "at position 14",
        id="bad-regex",
    ),
    pytest.param(
        HEAD + "templates:\n  away: |\n    Hallo\n    {{ contact.name }\n",
        5,
        "template 'away': unexpected '}'",
        id="template-syntax-block",
    ),
    pytest.param(
        HEAD + "templates:\n  away: 'Hallo {{ contact.name | shout }}'\n",
        3,
        "template 'away': No filter named 'shout'.",
        id="template-unknown-filter",
    ),
    pytest.param(
        HEAD + "templates:\n  'a/b': 'x'\n",
        3,
        "invalid template name 'a/b' (use letters, digits, _ and -)",
        id="template-bad-name",
    ),
    pytest.param(
        HEAD + "replies:\n  keywords:\n    - {match: [preise], template: prices}\n",
        4,
        "unknown template 'prices' (define it under templates, or use one of "
        "away, greeting, hours, optin, optout, order)",
        id="unknown-template-keyword",
    ),
    pytest.param(
        HEAD + "replies:\n  away: {template: weg}\ntemplates:\n  zu: 'Geschlossen.'\n",
        3,
        "unknown template 'weg' (define it under templates, or use one of "
        "away, greeting, hours, optin, optout, order, zu)",
        id="unknown-template-away",
    ),
    pytest.param(
        HEAD + "replies:\n  away: {cooldown_hours: -1}\n",
        3,
        "cooldown_hours must not be negative, got -1",
        id="negative-cooldown",
    ),
    pytest.param(
        HEAD + "replies:\n  greeting: {after_inactive_days: -0.5}\n",
        3,
        "after_inactive_days must not be negative, got -0.5",
        id="negative-inactive-days",
    ),
    pytest.param(
        HEAD + "replies:\n  away: {cooldown_hours: soon}\n",
        3,
        "cooldown_hours must be a number",
        id="cooldown-not-a-number",
    ),
    pytest.param(
        HEAD + "replies:\n  away: {}\n  stale_after_minutes: -5\n",
        4,
        "replies.stale_after_minutes must not be negative, got -5",
        id="negative-stale-after",
    ),
    pytest.param(
        HEAD + "replies:\n  stale_after_minutes: 1.5\n",
        3,
        "replies.stale_after_minutes must be a whole number, got '1.5'",
        id="fractional-stale-after",
    ),
    pytest.param(
        HEAD + "replies:\n  stale_after_minutes:\n",
        3,
        "replies.stale_after_minutes must be a whole number, got nothing",
        id="empty-stale-after",
    ),
    pytest.param(
        HEAD + "replies:\n  away: {}\n  human_pause_minutes: -1\n",
        4,
        "replies.human_pause_minutes must not be negative, got -1",
        id="negative-human-pause",
    ),
    pytest.param(
        HEAD + "replies:\n  human_pause_minutes: 0.5\n",
        3,
        "replies.human_pause_minutes must be a whole number, got '0.5'",
        id="fractional-human-pause",
    ),
    pytest.param(
        HEAD + "replies:\n  human_pause_minutes: two hours\n",
        3,
        "replies.human_pause_minutes must be a whole number, got 'two hours'",
        id="text-human-pause",
    ),
    pytest.param(
        HEAD + "retention:\n  messages_days: 730\n  media_days: -30\n",
        4,
        "retention.media_days must not be negative, got -30",
        id="negative-retention",
    ),
    pytest.param(
        HEAD + "retention: {messages_days: 1.5}\n",
        2,
        "retention.messages_days must be a whole number, got '1.5'",
        id="fractional-retention",
    ),
    pytest.param(
        HEAD + "retention:\n  messages_days: forever\n",
        3,
        "retention.messages_days must be a whole number, got 'forever'",
        id="text-retention",
    ),
    pytest.param(
        HEAD + "retention:\n  media_days: 0\n",
        3,
        "retention.media_days must be at least 1 (leave it out to keep them for good)",
        id="zero-retention",
    ),
    pytest.param(
        HEAD + "retention:\n  messages: 730\n",
        3,
        "unknown key 'messages' in retention (expected messages_days, media_days)",
        id="unknown-retention-key",
    ),
    pytest.param(
        HEAD + "replies:\n  optout: {stop: [STOP], start: [stop]}\n",
        3,
        "'stop' is both a stop and a start word ('STOP')",
        id="stop-and-start-word",
    ),
    pytest.param(
        HEAD + "replies:\n  optout:\n    stop: [STOP, Start!]\n",
        4,
        "'START' is both a stop and a start word ('Start!')",
        id="stop-word-that-is-a-default-start-word",
    ),
    pytest.param(
        HEAD + "replies:\n  optout:\n    stop: ['STOP', '🛑']\n",
        4,
        "optout stop word '🛑' needs a letter or a digit",
        id="optout-word-without-letters",
    ),
]


@pytest.mark.parametrize(("text", "line", "reason"), ERRORS)
def test_invalid_settings_name_line_and_reason(text: str, line: int, reason: str) -> None:
    with pytest.raises(SettingsError) as info:
        parse_settings(text)
    assert (info.value.line, info.value.reason) == (line, reason)
    assert str(info.value) == f"line {line}: {reason}"


def test_the_first_error_in_the_file_is_the_one_raised() -> None:
    text = HEAD + "hours:\n  mox: []\nreplies:\n  away: {cooldown_hours: -1}\n"
    with pytest.raises(SettingsError) as info:
        parse_settings(text)
    assert info.value.line == 3


# --- round trip ------------------------------------------------------------------------------


@pytest.mark.parametrize("text", [CONTRACT_EXAMPLE, DEMO_SETTINGS, "business: {name: K}\n"])
def test_dump_then_parse_gives_the_same_settings(text: str) -> None:
    s = parse_settings(text)
    dumped = dump_settings(s)
    assert parse_settings(dumped) == s
    assert dump_settings(parse_settings(dumped)) == dumped


def test_dump_writes_the_contract_form() -> None:
    dumped = dump_settings(parse_settings(CONTRACT_EXAMPLE))
    assert dumped.splitlines()[:13] == [
        "business:",
        "  name: Blumen Müller",
        "  timezone: Europe/Berlin",
        "  locale: de_DE",
        "hours:",
        "  mon: ['09:00-12:30', '14:00-18:00']",
        "  tue: []",
        "  wed: []",
        "  thu: []",
        "  fri: ['09:00-18:00', '22:00-02:00']",
        "  sat: ['10:00-14:00']",
        "  sun: []",
        "public_holidays: {country: DE, subdivision: BY}",
    ]
    assert "  - {from: 2026-12-24, to: 2026-12-26, reason: Weihnachten}" in dumped
    assert "  - {date: 2026-12-31, hours: ['09:00-12:00']}" in dumped
    assert "    - {pattern: '(?i)bestellung\\s*#?\\d+', template: order, when: open}" in dumped
    assert "  away: {template: away, once_per_closure: false, cooldown_hours: 12}" in dumped


def test_settings_are_hashable_and_templates_immutable() -> None:
    s = parse_settings(DEMO_SETTINGS)
    assert hash(s) == hash(parse_settings(DEMO_SETTINGS))
    with pytest.raises(TypeError):
        s.templates["away"] = "x"  # type: ignore[index]


_TEXT_CHARS = st.characters(categories=["L", "N"]) | st.sampled_from(
    list(" -'&.!?:#{}[]\"\\,|>%@`*~")
)
_texts = st.text(_TEXT_CHARS, min_size=1, max_size=12).filter(lambda t: t.strip() != "")
_times = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 59]))


@st.composite
def _intervals(draw: st.DrawFn) -> tuple[Interval, ...]:
    out = []
    for _ in range(draw(st.integers(0, 2))):
        start, end = draw(_times), draw(_times)
        if start == end:
            end = time(0) if start == time(0) else time((start.hour + 1) % 24, start.minute)
        out.append(Interval(start, end))
    return tuple(out)


_dates = st.dates(date(2000, 1, 1), date(2100, 12, 31))
_templates_src = st.sampled_from(
    [
        "Hallo {{ contact.name }}!",
        "Zu.\n{% if next_open %}Ab {{ next_open | format_datetime('EEEE') }}{% endif %}\n",
        "  führende Leerzeichen und Umlaute: äöüß  ",
        "line one  \nline two\n\n",
        "{{ hours | join('\\n') }}",
    ]
)


@st.composite
def _settings(draw: st.DrawFn) -> BusinessSettings:
    tz = draw(st.sampled_from(["Europe/Berlin", "America/New_York", "UTC", "Asia/Kolkata"]))
    country, subdivision = draw(
        st.sampled_from([(None, None), ("DE", "BY"), ("AT", None), ("NO", None), ("US", "CA")])
    )
    closures = []
    for first in draw(st.lists(_dates, max_size=2)):
        last = draw(st.dates(first, date(2100, 12, 31)))
        closures.append(Closure(first, last, draw(st.one_of(st.just(""), _texts))))
    special = tuple(
        SpecialDay(day, draw(_intervals()))
        for day in draw(st.lists(_dates, max_size=2, unique=True))
    )
    hours = OpeningHours(
        timezone=tz,
        weekly=tuple(draw(_intervals()) for _ in range(7)),
        holiday_country=country,
        holiday_subdivision=subdivision,
        closures=tuple(closures),
        special_days=special,
    )
    templates = draw(
        st.dictionaries(st.sampled_from(["away", "greeting", "extra", "order-2"]), _templates_src)
    )
    template_names = st.sampled_from(sorted({"away", "hours", "greeting", *templates}))
    keywords = draw(
        st.lists(
            st.one_of(
                st.builds(
                    KeywordRule,
                    match=st.lists(_texts, min_size=1, max_size=3).map(tuple),
                    pattern=st.none(),
                    template=template_names,
                    when=st.sampled_from(["always", "open", "closed"]),
                ),
                st.builds(
                    KeywordRule,
                    match=st.just(()),
                    pattern=st.sampled_from([r"(?i)bestellung\s*#?\d+", "^hi$", "[{]'\"", "ä|ö"]),
                    template=template_names,
                    when=st.sampled_from(["always", "open", "closed"]),
                ),
            ),
            max_size=3,
        )
    )
    words = _texts.filter(lambda w: bare_word(w) != "")
    stop = tuple(draw(st.lists(words, max_size=3)))
    start = tuple(
        w for w in draw(st.lists(words, max_size=3)) if bare_word(w) not in map(bare_word, stop)
    )
    numbers = st.floats(0, 1e6, allow_nan=False, allow_infinity=False)
    return BusinessSettings(
        name=draw(_texts),
        timezone=tz,
        locale=draw(st.sampled_from(["de_DE", "en_US", "fr_FR", "de_AT"])),
        hours=hours,
        optout_stop=stop,
        optout_start=start,
        keywords=tuple(keywords),
        away=draw(
            st.one_of(
                st.none(),
                st.builds(AwayRule, template_names, st.one_of(st.none(), numbers), st.just(True)),
                st.builds(AwayRule, template_names, numbers, st.just(False)),
            )
        ),
        greeting=draw(st.one_of(st.none(), st.builds(GreetingRule, template_names, numbers))),
        templates=templates,
        stale_after_minutes=draw(st.integers(0, 10**9)),
        human_pause_minutes=draw(st.integers(0, 10**9)),
        retention=draw(
            st.builds(
                Retention,
                st.one_of(st.none(), st.integers(1, 10**6)),
                st.one_of(st.none(), st.integers(1, 10**6)),
            )
        ),
        inbox=draw(st.builds(InboxSignals, st.booleans(), st.booleans())),
    )


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_settings())
def test_round_trip_of_generated_settings(s: BusinessSettings) -> None:
    assert parse_settings(dump_settings(s)) == s
