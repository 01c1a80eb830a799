"""The away message once per closed period per contact (replies.away.once_per_closure), and the
cooldown as the contract has it for a file that gives `cooldown_hours`: rules at chosen
instants, then end to end through the webhook across a weekend with a public holiday."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from textwrap import dedent
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bot.autoreply import simulate
from bot.db import get_db
from bot.rules import History, Inbound, Rule, choose
from bot.settings import AwayRule, SettingsError, dump_settings, parse_settings
from bot.settings.stored import save_settings
from tests.test_autoreply import at, replies, say

BERLIN = ZoneInfo("Europe/Berlin")

HEAD = dedent(
    """\
    business: {name: Blumen Müller, timezone: Europe/Berlin, locale: de_DE}
    hours:
      mon: ["09:00-18:00"]
      tue: ["09:00-18:00"]
      wed: ["09:00-18:00"]
      thu: ["09:00-18:00"]
      fri: ["09:00-18:00"]
    public_holidays: {country: DE, subdivision: BY}
    replies:
    """
)
ONCE = parse_settings(HEAD + "  away: {template: away}\n")
COOLDOWN = parse_settings(HEAD + "  away: {template: away, cooldown_hours: 12}\n")
BOTH = parse_settings(
    HEAD + "  away: {template: away, once_per_closure: true, cooldown_hours: 2}\n"
)

# Friday 22 May 2026 after closing; Whit Monday (25 May) is a public holiday in Bavaria, so the
# shop is closed from Friday 18:00 until Tuesday 09:00.
FRIDAY_EVENING = datetime(2026, 5, 22, 19, 0, tzinfo=BERLIN)
SATURDAY_NOON = datetime(2026, 5, 23, 12, 0, tzinfo=BERLIN)
WHIT_MONDAY = datetime(2026, 5, 25, 11, 0, tzinfo=BERLIN)
TUESDAY_OPEN = datetime(2026, 5, 26, 10, 0, tzinfo=BERLIN)
TUESDAY_EVENING = datetime(2026, 5, 26, 19, 0, tzinfo=BERLIN)


def rule_at(settings: object, now: datetime, last_away: datetime | None) -> str | None:
    inbound = Inbound(text="Hallo?", kind="text", sent_at=now)
    history = History(last_inbound_at=None, last_away_at=last_away)
    decision = choose(inbound, history, settings, now)  # type: ignore[arg-type]
    return decision.rule if decision else None


# --- the settings ---------------------------------------------------------------------------


def test_once_per_closure_defaults_by_whether_a_cooldown_is_given() -> None:
    assert ONCE.away == AwayRule("away", cooldown_hours=None, once_per_closure=True)
    # A file written to the contract keeps rule 3 exactly: the cooldown alone.
    assert COOLDOWN.away == AwayRule("away", cooldown_hours=12, once_per_closure=False)
    assert BOTH.away == AwayRule("away", cooldown_hours=2, once_per_closure=True)
    on = parse_settings(HEAD + "  away: on\n")
    assert on.away == AwayRule("away", cooldown_hours=None, once_per_closure=True)
    # Back to the cooldown without a number: the default cooldown.
    off = parse_settings(HEAD + "  away: {once_per_closure: false}\n")
    assert off.away == AwayRule("away", cooldown_hours=12, once_per_closure=False)


@pytest.mark.parametrize("settings", [ONCE, COOLDOWN, BOTH], ids=["once", "cooldown", "both"])
def test_the_writer_writes_the_key_and_reads_back_the_same(settings: object) -> None:
    text = dump_settings(settings)  # type: ignore[arg-type]
    assert "once_per_closure:" in text
    assert parse_settings(text) == settings


def test_a_bad_once_per_closure_names_its_line() -> None:
    with pytest.raises(SettingsError) as info:
        parse_settings(HEAD + "  away:\n    template: away\n    once_per_closure: sometimes\n")
    assert str(info.value) == (
        "line 12: replies.away.once_per_closure must be true or false, got 'sometimes'"
    )


def test_an_away_rule_needs_one_of_its_limits() -> None:
    with pytest.raises(ValueError, match="once_per_closure or cooldown_hours"):
        AwayRule("away", cooldown_hours=None, once_per_closure=False)


# --- the rules at chosen instants -----------------------------------------------------------


def test_once_per_closed_period_across_a_weekend_with_a_public_holiday() -> None:
    assert rule_at(ONCE, FRIDAY_EVENING, None) == Rule.AWAY
    # The same closed period: however long ago the away went, not again.
    assert rule_at(ONCE, SATURDAY_NOON, FRIDAY_EVENING) is None
    assert rule_at(ONCE, WHIT_MONDAY, FRIDAY_EVENING) is None
    # Open on Tuesday: a greeting, not an away; closed again on Tuesday evening: a new period.
    assert rule_at(ONCE, TUESDAY_OPEN, FRIDAY_EVENING) is None
    assert rule_at(ONCE, TUESDAY_EVENING, FRIDAY_EVENING) == Rule.AWAY
    assert rule_at(ONCE, TUESDAY_EVENING, TUESDAY_EVENING - timedelta(minutes=30)) is None


def test_the_cooldown_as_before_sends_again_within_one_closed_period() -> None:
    assert rule_at(COOLDOWN, SATURDAY_NOON, FRIDAY_EVENING) == Rule.AWAY  # 17 hours later
    assert rule_at(COOLDOWN, SATURDAY_NOON, SATURDAY_NOON - timedelta(hours=11)) is None
    # And a cooldown alone ignores a new closed period.
    assert rule_at(COOLDOWN, TUESDAY_EVENING, TUESDAY_EVENING - timedelta(hours=2)) is None


def test_both_limits_given_both_hold() -> None:
    # Open 09:00-12:00 and 12:30-13:00: two closed periods an hour apart.
    short = parse_settings(
        HEAD.replace('mon: ["09:00-18:00"]', 'mon: ["09:00-12:00", "12:30-13:00"]')
        + "  away: {template: away, once_per_closure: true, cooldown_hours: 2}\n"
    )
    lunch = datetime(2026, 5, 18, 12, 20, tzinfo=BERLIN)
    assert rule_at(short, lunch, None) == Rule.AWAY
    # A new closed period since 13:00, but within the cooldown of the lunch-time away.
    assert rule_at(short, lunch + timedelta(hours=1, minutes=10), lunch) is None
    later = lunch + timedelta(hours=2, minutes=10)
    assert rule_at(short, later, lunch) == Rule.AWAY
    # Past the cooldown, but this closed period has had its away.
    assert rule_at(short, later + timedelta(hours=3), later) is None


def test_an_away_sent_at_the_closing_instant_counts_for_that_period() -> None:
    close = datetime(2026, 5, 22, 18, 0, tzinfo=BERLIN)
    assert rule_at(ONCE, close, None) == Rule.AWAY
    assert rule_at(ONCE, close + timedelta(hours=1), close) is None
    assert rule_at(ONCE, close + timedelta(hours=1), close - timedelta(seconds=1)) == Rule.AWAY


def test_simulate_and_the_previews_follow_the_same_rule() -> None:
    history = History(last_inbound_at=FRIDAY_EVENING, last_away_at=FRIDAY_EVENING)
    again = simulate(ONCE, text="Hallo?", at=WHIT_MONDAY, history=history)
    assert again.rule is None and again.is_open is False
    cooled = simulate(COOLDOWN, text="Hallo?", at=WHIT_MONDAY, history=history)
    assert cooled.rule == Rule.AWAY
    assert simulate(replace(ONCE, away=None), text="Hallo?", at=WHIT_MONDAY).rule is None


# --- end to end: webhook, processor, outbox ---------------------------------------------------


def test_one_away_reply_from_friday_evening_to_tuesday_morning(
    app: Flask, client: FlaskClient
) -> None:
    with get_db(app).session() as session:
        save_settings(session, HEAD + "  away: {template: away, once_per_closure: true}\n")
    for when in (FRIDAY_EVENING, SATURDAY_NOON, WHIT_MONDAY):
        at(app, when)
        say(client, "Hallo, seid ihr da?", when)
    assert [m.rule for m in replies(app)] == ["away"]
    at(app, TUESDAY_EVENING)
    say(client, "Und heute Abend?", TUESDAY_EVENING)
    assert [m.rule for m in replies(app)] == ["away", "away"]
