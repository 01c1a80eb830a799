"""Which auto-reply a message gets, at chosen instants for a German flower shop."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from textwrap import dedent
from zoneinfo import ZoneInfo

import pytest

from bot.autoreply import Simulation, simulate
from bot.rules import Decision, History, Inbound, choose
from bot.settings import BusinessSettings, parse_settings

BERLIN = ZoneInfo("Europe/Berlin")

SHOP = parse_settings(
    dedent(
        """\
        business: {name: Blumen Müller, timezone: Europe/Berlin, locale: de_DE}
        hours:
          mon: ["09:00-18:00"]
          tue: ["09:00-18:00"]
          wed: ["09:00-18:00"]
          thu: ["09:00-18:00"]
          fri: ["09:00-18:00"]
          sat: ["10:00-14:00"]
        public_holidays: {country: DE, subdivision: BY}
        replies:
          keywords:
            - {match: ["öffnungszeiten", "hours"], template: hours}
            - {pattern: "(?i)bestellung\\\\s*#?\\\\d+", template: order, when: open}
            - {match: ["straße", "anfahrt"], template: address}
            - {match: ["notdienst heute"], template: emergency, when: closed}
          away: {template: away, cooldown_hours: 12}
          greeting: {template: greeting, after_inactive_days: 14}
        templates:
          address: "Blumenstraße 12, München."
          emergency: "Notdienst: 0151 000000"
        """
    )
)

OPEN = datetime(2026, 11, 27, 10, 0, tzinfo=BERLIN)  # a Friday morning
CLOSED = datetime(2026, 11, 28, 19, 0, tzinfo=BERLIN)  # a Saturday evening
CHRISTMAS = datetime(2026, 12, 25, 10, 0, tzinfo=BERLIN)  # a Friday, but a public holiday

NEW = History(last_inbound_at=None, last_away_at=None)

OPTOUT = Decision("optout", "optout", opt_in=False)
OPTIN = Decision("optin", "optin", opt_in=True)
AWAY = Decision("away", "away", None)
GREETING = Decision("greeting", "greeting", None)


def keyword(template: str) -> Decision:
    return Decision("keyword", template, None)


def ago(now: datetime, **delta: float) -> datetime:
    return now - timedelta(**delta)


CASES = [
    # opt-out and opt-in: the whole text, case and surrounding punctuation ignored
    ("stop", "STOP", "text", CLOSED, NEW, OPTOUT),
    ("stop-exclaimed", "Stop!", "text", OPEN, NEW, OPTOUT),
    ("stop-spaced", "  stop. ", "text", OPEN, NEW, OPTOUT),
    ("abmelden-emoji", "ABMELDEN 🙏", "text", OPEN, NEW, OPTOUT),
    ("abmelden-quoted", "„Abmelden“", "text", OPEN, NEW, OPTOUT),
    ("start", "Start", "text", CLOSED, NEW, OPTIN),
    ("anmelden", "anmelden!!", "text", OPEN, NEW, OPTIN),
    ("stoppen-is-no-optout", "stoppen", "text", CLOSED, NEW, AWAY),
    ("stop-inside-a-sentence", "bitte stop", "text", CLOSED, NEW, AWAY),
    ("stop-as-caption", "STOP", "image", CLOSED, NEW, OPTOUT),
    # keywords: whole words, Unicode case folding, first rule wins, `when`
    ("keyword-beats-away", "Öffnungszeiten?", "text", CLOSED, NEW, keyword("hours")),
    ("keyword-capitals", "ÖFFNUNGSZEITEN?", "text", OPEN, NEW, keyword("hours")),
    ("keyword-in-sentence", "What are your hours, please?", "text", OPEN, NEW, keyword("hours")),
    ("keyword-not-a-word", "Öffnungszeitenfrage", "text", CLOSED, NEW, AWAY),
    ("keyword-sharp-s", "Welche STRASSE?", "text", OPEN, NEW, keyword("address")),
    ("keyword-umlaut-boundary", "Wohnstraßenecke", "text", OPEN, NEW, GREETING),
    ("pattern-open", "Wo ist meine Bestellung #12345?", "text", OPEN, NEW, keyword("order")),
    ("pattern-no-hash", "bestellung 12345", "text", OPEN, NEW, keyword("order")),
    ("pattern-when-open-but-closed", "Bestellung #12345", "text", CLOSED, NEW, AWAY),
    ("pattern-no-number", "Bestellung morgen?", "text", OPEN, NEW, GREETING),
    (
        "phrase-when-closed",
        "Gibt es einen Notdienst  heute?",
        "text",
        CLOSED,
        NEW,
        keyword("emergency"),
    ),
    ("phrase-when-closed-but-open", "Notdienst heute?", "text", OPEN, NEW, GREETING),
    ("phrase-words-apart", "Notdienst ist heute?", "text", CLOSED, NEW, AWAY),
    # away and its cooldown
    ("away", "Hallo", "text", CLOSED, NEW, AWAY),
    ("away-holiday", "Hallo", "text", CHRISTMAS, NEW, AWAY),
    (
        "away-within-cooldown",
        "Hallo",
        "text",
        CLOSED,
        History(ago(CLOSED, hours=11), ago(CLOSED, hours=11)),
        None,
    ),
    (
        "away-at-cooldown",
        "Hallo",
        "text",
        CLOSED,
        History(ago(CLOSED, hours=12), ago(CLOSED, hours=12)),
        AWAY,
    ),
    (
        "away-after-cooldown",
        "Hallo",
        "text",
        CLOSED,
        History(ago(CLOSED, minutes=5), ago(CLOSED, hours=13)),
        AWAY,
    ),
    ("image-when-closed", None, "image", CLOSED, NEW, AWAY),
    ("audio-when-closed", None, "audio", CLOSED, NEW, AWAY),
    # greeting when open
    ("greeting-first-time", "Hallo", "text", OPEN, NEW, GREETING),
    ("greeting-returning", "Hallo", "text", OPEN, History(ago(OPEN, days=3), None), None),
    ("greeting-at-14-days", "Hallo", "text", OPEN, History(ago(OPEN, days=14), None), None),
    ("greeting-after-15-days", "Hallo", "text", OPEN, History(ago(OPEN, days=15), None), GREETING),
    ("image-when-open", None, "image", OPEN, NEW, GREETING),
    # never a reply
    ("reaction-closed", "👍", "reaction", CLOSED, NEW, None),
    ("reaction-open", "👍", "reaction", OPEN, NEW, None),
    ("reaction-stop", "STOP", "reaction", OPEN, NEW, None),
    ("status", None, "status", CLOSED, NEW, None),
    ("system-notice", "User A changed their number", "system", CLOSED, NEW, None),
    ("revoke", None, "revoke", CLOSED, NEW, None),
    # other kinds count like text
    ("edit-to-keyword", "Öffnungszeiten", "edit", CLOSED, NEW, keyword("hours")),
    ("welcome-request", None, "request_welcome", OPEN, NEW, GREETING),
    ("unknown-kind", None, "unknown", CLOSED, NEW, AWAY),
]


@pytest.mark.parametrize(
    ("text", "kind", "now", "history", "expected"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
def test_choose(
    text: str | None, kind: str, now: datetime, history: History, expected: Decision | None
) -> None:
    inbound = Inbound(text=text, kind=kind, sent_at=now - timedelta(seconds=3))
    assert choose(inbound, history, SHOP, now) == expected


@pytest.mark.parametrize(
    ("age", "away", "question", "stop"),
    [
        (timedelta(minutes=60), AWAY, keyword("hours"), OPTOUT),
        (timedelta(minutes=61), None, keyword("hours"), OPTOUT),
        (timedelta(hours=23, minutes=59), None, keyword("hours"), OPTOUT),
        (timedelta(hours=24, minutes=1), None, None, replace(OPTOUT, reply_due=False)),
        (timedelta(days=3), None, None, replace(OPTOUT, reply_due=False)),
    ],
)
def test_late_messages_get_fewer_replies_but_their_opt_out_counts(
    age: timedelta, away: Decision | None, question: Decision | None, stop: Decision
) -> None:
    """Away and greeting only within replies.stale_after_minutes (60 by default), keyword
    answers within a day; a stop word counts however late, only its reply is not due."""

    def decide(text: str) -> Decision | None:
        return choose(Inbound(text=text, kind="text", sent_at=CLOSED - age), NEW, SHOP, CLOSED)

    assert (decide("Hallo"), decide("Öffnungszeiten?"), decide("STOP")) == (away, question, stop)


def test_stale_after_minutes_is_read_from_the_settings() -> None:
    strict = replace(SHOP, stale_after_minutes=0)
    late = Inbound(text="Hallo", kind="text", sent_at=OPEN - timedelta(seconds=3))
    assert choose(late, NEW, strict, OPEN) is None
    assert choose(replace(late, sent_at=OPEN), NEW, strict, OPEN) == GREETING
    patient = replace(SHOP, stale_after_minutes=10**12)  # no overflow for a huge setting
    assert choose(replace(late, sent_at=OPEN - timedelta(hours=5)), NEW, patient, OPEN) == GREETING


def test_a_consent_word_sent_before_the_last_change_gets_no_reply() -> None:
    """Meta delivered the customer's later word first: the earlier one is not confirmed."""
    changed = History(None, None, last_consent_at=ago(OPEN, minutes=10))
    start = Inbound(text="START", kind="text", sent_at=ago(OPEN, minutes=20))
    assert choose(start, changed, SHOP, OPEN) == replace(OPTIN, reply_due=False)
    assert choose(replace(start, sent_at=ago(OPEN, minutes=5)), changed, SHOP, OPEN) == OPTIN


def test_simulate_a_message_sent_before_it_arrives() -> None:
    late = simulate(SHOP, text="Hallo", at=CLOSED, sent_at=ago(CLOSED, hours=2))
    assert (late.rule, late.text, late.is_open) == (None, None, False)
    stop = simulate(SHOP, text="STOP", at=CLOSED, sent_at=ago(CLOSED, days=2))
    assert (stop.rule, stop.text) == ("optout", None)


def test_open_or_closed_is_decided_in_the_business_time_zone() -> None:
    # 08:30 UTC on a Friday is 09:30 in Berlin: open, so a first message gets the greeting.
    now = datetime(2026, 11, 27, 8, 30, tzinfo=ZoneInfo("UTC"))
    inbound = Inbound(text="Hallo", kind="text", sent_at=now)
    assert choose(inbound, NEW, SHOP, now) == GREETING


def without(**changes: object) -> BusinessSettings:
    return replace(SHOP, **changes)  # type: ignore[arg-type]


def test_without_away_or_greeting_nothing_is_sent() -> None:
    quiet = without(away=None, greeting=None)
    for now in (OPEN, CLOSED):
        assert choose(Inbound("Hallo", "text", now), NEW, quiet, now) is None
    assert choose(Inbound("STOP", "text", OPEN), NEW, quiet, OPEN) == OPTOUT


def test_custom_optout_words() -> None:
    custom = without(optout_stop=("Keine Werbung",), optout_start=("Werbung",))
    assert choose(Inbound("keine   WERBUNG!", "text", OPEN), NEW, custom, OPEN) == OPTOUT
    assert choose(Inbound("Werbung", "text", OPEN), NEW, custom, OPEN) == OPTIN
    assert choose(Inbound("STOP", "text", CLOSED), NEW, custom, CLOSED) == AWAY


def test_emoji_only_messages_are_not_optouts() -> None:
    assert choose(Inbound("🙏", "text", CLOSED), NEW, SHOP, CLOSED) == AWAY
    assert choose(Inbound("!!!", "text", OPEN), NEW, SHOP, OPEN) == GREETING


def test_simulate_when_closed() -> None:
    result = simulate(SHOP, text="Hallo", at=CLOSED, history=NEW, contact_name="Anna", wa_id="49")
    assert result == Simulation(
        rule="away",
        text="Hallo Anna, danke für Ihre Nachricht! Blumen Müller hat gerade geschlossen.\n"
        "Ab Montag, 30. November, 9 Uhr sind wir wieder für Sie da und melden uns dann.",
        is_open=False,
        next_open=datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN),
    )
    assert result.next_open is not None
    assert result.next_open.isoformat() == "2026-11-30T09:00:00+01:00"


def test_simulate_when_open() -> None:
    returning = History(last_inbound_at=ago(OPEN, days=1), last_away_at=None)
    result = simulate(SHOP, text="Hallo", at=OPEN, history=returning)
    assert result == Simulation(rule=None, text=None, is_open=True, next_open=None)
    keyword_reply = simulate(SHOP, text="Anfahrt?", at=OPEN)
    assert keyword_reply == Simulation(
        rule="keyword", text="Blumenstraße 12, München.", is_open=True, next_open=None
    )
    optout = simulate(SHOP, text="stop", at=OPEN)
    assert optout.rule == "optout"
    assert optout.text is not None and "„START“" in optout.text


def test_after_a_person_answers_away_and_greeting_pause_for_the_setting() -> None:
    """replies.human_pause_minutes (120 by default) from the person's answer: no away and no
    greeting, while stop words and keyword answers still come; 0 turns the pause off."""
    for now, due in ((CLOSED, AWAY), (OPEN, GREETING)):
        hello = Inbound(text="Hallo", kind="text", sent_at=now)
        stop = replace(hello, text="STOP")
        question = replace(hello, text="Öffnungszeiten?")

        def answered(minutes: float, now: datetime = now) -> History:
            return History(None, None, last_human_reply_at=ago(now, minutes=minutes))

        assert choose(hello, answered(1), SHOP, now) is None
        assert choose(hello, answered(119.9), SHOP, now) is None
        assert choose(hello, answered(120), SHOP, now) == due
        assert choose(hello, answered(60), replace(SHOP, human_pause_minutes=60), now) == due
        assert choose(hello, answered(0), replace(SHOP, human_pause_minutes=0), now) == due
        assert choose(stop, answered(1), SHOP, now) == OPTOUT
        assert choose(question, answered(1), SHOP, now) == keyword("hours")
    # No overflow for a huge setting, however long ago the person answered.
    forever = replace(SHOP, human_pause_minutes=10**12)
    hello = Inbound(text="Hallo", kind="text", sent_at=CLOSED)
    assert (
        choose(
            hello, History(None, None, last_human_reply_at=ago(CLOSED, days=3650)), forever, CLOSED
        )
        is None
    )
