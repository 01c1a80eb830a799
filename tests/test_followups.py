"""The template follow-up after a closure (replies.follow_up): the settings, the pure rule at
chosen instants, and the scheduler leader's job end to end: customers write through the
webhook while the shop is closed, get the away message, and the job queues the template when
it reopens, once."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta
from textwrap import dedent
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.broadcasts.scheduler import SchedulerService
from bot.db import get_db
from bot.followups.job import FollowUps
from bot.followups.rule import (
    DELAY,
    Closure,
    Customer,
    Verdict,
    closure_before,
    verdict,
)
from bot.models import Contact, Message, MessageTemplate
from bot.outbound import outbox
from bot.rules import Rule
from bot.settings import FollowUpRule, SettingsError, dump_settings, parse_settings
from bot.settings.stored import save_settings
from tests.test_autoreply import at, say

BERLIN = ZoneInfo("Europe/Berlin")
ANNA = "4915112345678"
BERT = "4915187654321"

SETTINGS = dedent(
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
      away: {template: away}
      follow_up: {template: wieder_da, language: de, params: ["{{ contact.name }}"]}
    """
)
HOURS = parse_settings(SETTINGS).hours


def berlin(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=BERLIN)  # type: ignore[misc]


# An ordinary weekend: closed Friday 6 March 2026 18:00 until Monday 9 March 09:00.
FRIDAY_CLOSE = berlin(2026, 3, 6, 18, 0)
SATURDAY = berlin(2026, 3, 7, 10, 0)
SUNDAY_EVENING = berlin(2026, 3, 8, 20, 0)
MONDAY_OPEN = berlin(2026, 3, 9, 9, 0)
JOB = MONDAY_OPEN + timedelta(minutes=10)


# --- the settings ---------------------------------------------------------------------------


def test_the_follow_up_is_read_written_back_and_off_when_absent() -> None:
    settings = parse_settings(SETTINGS)
    assert settings.follow_up == FollowUpRule(
        template="wieder_da", language="de", params=("{{ contact.name }}",)
    )
    assert parse_settings(dump_settings(settings)) == settings
    assert parse_settings(SETTINGS.replace("  follow_up:", "  # follow_up:")).follow_up is None
    off = SETTINGS.replace(
        '{template: wieder_da, language: de, params: ["{{ contact.name }}"]}', "off"
    )
    assert parse_settings(off).follow_up is None
    assert "follow_up" not in dump_settings(parse_settings(off))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("{template: Wieder da, language: de}", "invalid WhatsApp template name 'Wieder da'"),
        ("{template: wieder_da}", "needs 'template' and 'language'"),
        ("{template: wieder_da, language: Deutsch}", "invalid template language 'Deutsch'"),
        ('{template: wieder_da, language: de, params: ["{{ contact.name"]}', "params 1"),
        ("{template: wieder_da, language: de, params: x}", "must be a list"),
        ("{template: wieder_da, language: de, when: open}", "unknown key 'when'"),
        ("on", "needs a template and its language"),
    ],
)
def test_a_bad_follow_up_names_its_line(value: str, reason: str) -> None:
    text = SETTINGS.replace(
        '{template: wieder_da, language: de, params: ["{{ contact.name }}"]}', value
    )
    with pytest.raises(SettingsError) as caught:
        parse_settings(text)
    assert caught.value.line == 11  # the follow_up line
    assert reason in str(caught.value)


# --- the rule, pure -------------------------------------------------------------------------

WEEKEND = Closure(closed_at=FRIDAY_CLOSE, reopened_at=MONDAY_OPEN)


def customer(wrote: datetime, **facts: Any) -> Customer:
    values: dict[str, Any] = {
        "away_at": wrote,
        "last_inbound_at": wrote,
        "last_answer_at": None,
        "last_follow_up_at": None,
    }
    return Customer(**{**values, **facts})


def test_the_closure_is_found_from_anywhere_in_the_open_span_and_never_while_closed() -> None:
    assert closure_before(HOURS, JOB) == WEEKEND
    assert closure_before(HOURS, berlin(2026, 3, 9, 17, 59)) == WEEKEND
    assert closure_before(HOURS, berlin(2026, 3, 9, 8, 59)) is None
    assert closure_before(HOURS, SATURDAY) is None
    # Tuesday's open span ends Monday evening's closure.
    tuesday = closure_before(HOURS, berlin(2026, 3, 10, 9, 30))
    assert tuesday == Closure(berlin(2026, 3, 9, 18, 0), berlin(2026, 3, 10, 9, 0))


def test_after_a_lunch_break_the_weekend_is_no_longer_caught_up() -> None:
    split = parse_settings(
        SETTINGS.replace('mon: ["09:00-18:00"]', 'mon: ["09:00-12:30", "14:00-18:00"]')
    )
    lunch = Closure(berlin(2026, 3, 9, 12, 30), berlin(2026, 3, 9, 14, 0))
    assert closure_before(split.hours, berlin(2026, 3, 9, 12, 0)) == WEEKEND
    assert closure_before(split.hours, berlin(2026, 3, 9, 14, 30)) == lunch
    late = berlin(2026, 3, 9, 14, 30)
    assert verdict(lunch, customer(SATURDAY), late) == Verdict.NO_AWAY


def test_who_gets_the_follow_up() -> None:
    assert verdict(WEEKEND, customer(SATURDAY), JOB) == Verdict.SEND
    # The window is still open at 09:00 Monday: the team answers within it.
    assert verdict(WEEKEND, customer(SUNDAY_EVENING), JOB) == Verdict.WINDOW_OPEN
    # Exactly 24 hours before the reopening: the window closed as the shop opened.
    assert verdict(WEEKEND, customer(MONDAY_OPEN - timedelta(hours=24)), JOB) == Verdict.SEND
    answered = customer(SATURDAY, last_answer_at=SATURDAY + timedelta(hours=1))
    assert verdict(WEEKEND, answered, JOB) == Verdict.ANSWERED
    again = customer(SATURDAY, last_inbound_at=MONDAY_OPEN + timedelta(minutes=5))
    assert verdict(WEEKEND, again, JOB) == Verdict.WROTE_AGAIN
    sent = customer(SATURDAY, last_follow_up_at=MONDAY_OPEN + timedelta(minutes=1))
    assert verdict(WEEKEND, sent, JOB) == Verdict.SENT_ALREADY
    assert verdict(WEEKEND, customer(SATURDAY, opted_out=True), JOB) == Verdict.OPTED_OUT
    # An away message of an earlier closure, or none.
    earlier = customer(SATURDAY - timedelta(days=7))
    assert verdict(WEEKEND, earlier, JOB) == Verdict.NO_AWAY
    assert verdict(WEEKEND, customer(SATURDAY, away_at=None), JOB) == Verdict.NO_AWAY
    # A follow-up of an earlier closure does not count for this one.
    old = customer(SATURDAY, last_follow_up_at=SATURDAY - timedelta(days=5))
    assert verdict(WEEKEND, old, JOB) == Verdict.SEND
    assert verdict(WEEKEND, customer(SATURDAY), MONDAY_OPEN) == Verdict.TOO_EARLY
    assert verdict(WEEKEND, customer(SATURDAY), MONDAY_OPEN + DELAY) == Verdict.SEND


# --- the job, end to end --------------------------------------------------------------------


def template_row(
    *, name: str = "wieder_da", status: str = "approved", category: str = "utility"
) -> MessageTemplate:
    return MessageTemplate(
        name=name,
        language="de",
        category=category,
        status=status,
        parameter_format="positional",
        components=[
            {
                "type": "BODY",
                "text": "Hallo {{1}}, wir sind wieder da! Wie können wir helfen?",
                "example": {"body_text": [["Anna"]]},
            }
        ],
        origin="synced",
    )


@pytest.fixture
def shop(app: Flask) -> Flask:
    with get_db(app).session() as session:
        save_settings(session, SETTINGS)
        session.add(template_row())
    return app


def write(app: Flask, client: FlaskClient, when: datetime, **who: Any) -> None:
    at(app, when)
    say(client, "Habt ihr am Montag Tulpen?", when, **who)


def follow_ups(app: Flask) -> list[tuple[str | None, dict[str, Any], str | None]]:
    with get_db(app).session() as session:
        rows = session.execute(
            select(Contact.wa_id, Message.payload, Message.text)
            .join(Contact, Contact.id == Message.contact_id)
            .where(Message.rule == Rule.FOLLOW_UP)
            .order_by(Message.id)
        )
        return [(wa_id, payload, text) for wa_id, payload, text in rows]


def rules_of(app: Flask, wa_id: str) -> list[str | None]:
    with get_db(app).session() as session:
        return list(
            session.scalars(
                select(Message.rule)
                .join(Contact, Contact.id == Message.contact_id)
                .where(Contact.wa_id == wa_id, Message.direction == "out")
                .order_by(Message.id)
            )
        )


def test_after_the_weekend_the_customer_whose_window_closed_gets_the_template_once(
    shop: Flask, client: FlaskClient
) -> None:
    write(shop, client, SATURDAY, wa_id=ANNA, name="Anna")
    write(shop, client, SUNDAY_EVENING, wa_id=BERT, name="Bert")
    assert rules_of(shop, ANNA) == ["away"]
    assert rules_of(shop, BERT) == ["away"]
    job = FollowUps(get_db(shop))
    assert job.queue_due(berlin(2026, 3, 9, 8, 59)) == 0  # still closed

    assert job.queue_due(JOB) == 1
    [(wa_id, payload, text)] = follow_ups(shop)
    assert wa_id == ANNA
    assert payload == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": ANNA,
        "type": "template",
        "template": {
            "name": "wieder_da",
            "language": {"code": "de"},
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "Anna"}]}],
        },
    }
    assert text == "Hallo Anna, wir sind wieder da! Wie können wir helfen?"

    # Not twice: the same job again, later in the day, and a restarted worker's new job.
    assert job.queue_due(JOB + timedelta(hours=3)) == 0
    assert FollowUps(get_db(shop)).queue_due(JOB + timedelta(minutes=1)) == 0
    assert len(follow_ups(shop)) == 1


def test_a_person_who_answered_during_the_closure_leaves_no_follow_up(
    shop: Flask, client: FlaskClient
) -> None:
    write(shop, client, SATURDAY, wa_id=ANNA, name="Anna")
    with get_db(shop).session() as session:
        anna = session.scalars(select(Contact).where(Contact.wa_id == ANNA)).one()
        payload = {"messaging_product": "whatsapp", "to": ANNA, "type": "text"}
        outbox.enqueue(session, anna, payload, now=SATURDAY + timedelta(hours=1), rule=Rule.MANUAL)
    assert FollowUps(get_db(shop)).queue_due(JOB) == 0
    assert follow_ups(shop) == []


def test_a_customer_who_wrote_again_after_the_reopening_gets_none(
    shop: Flask, client: FlaskClient
) -> None:
    write(shop, client, SATURDAY, wa_id=ANNA, name="Anna")
    write(shop, client, MONDAY_OPEN + timedelta(minutes=5), wa_id=ANNA, name="Anna")
    assert FollowUps(get_db(shop)).queue_due(JOB) == 0
    assert rules_of(shop, ANNA) == ["away"]


def test_an_unsubscribed_customer_gets_none(shop: Flask, client: FlaskClient) -> None:
    write(shop, client, SATURDAY, wa_id=ANNA, name="Anna")
    at(shop, SATURDAY + timedelta(minutes=5))
    say(client, "STOP", SATURDAY + timedelta(minutes=5), wa_id=ANNA, name="Anna")
    assert FollowUps(get_db(shop)).queue_due(JOB) == 0
    assert rules_of(shop, ANNA) == ["away", "optout"]


def test_the_scheduler_leader_queues_it_on_its_ticks_catching_up_later_in_the_day(
    shop: Flask, client: FlaskClient
) -> None:
    write(shop, client, SATURDAY, wa_id=ANNA, name="Anna")
    # The worker was down at 09:00 and is back at 14:30, still the same opening span.
    now = [berlin(2026, 3, 9, 14, 30)]
    service = SchedulerService(get_db(shop), clock=lambda: now[0])
    service.tend(threading.Event())
    assert [wa_id for wa_id, _p, _t in follow_ups(shop)] == [ANNA]
    now[0] += timedelta(minutes=5)
    service.tend(threading.Event())
    SchedulerService(get_db(shop), clock=lambda: now[0]).tend(threading.Event())
    assert len(follow_ups(shop)) == 1


def test_a_closure_over_a_public_holiday_follows_up_on_the_day_it_reopens(
    shop: Flask, client: FlaskClient
) -> None:
    # Whit Monday, 25 May 2026, is a public holiday in Bavaria: closed Friday 18:00 until
    # Tuesday 09:00. Bert wrote on Sunday evening: on Monday his window was still open, by
    # Tuesday it had closed.
    write(shop, client, berlin(2026, 5, 23, 10, 0), wa_id=ANNA, name="Anna")
    write(shop, client, berlin(2026, 5, 24, 20, 0), wa_id=BERT, name="Bert")
    job = FollowUps(get_db(shop))
    assert job.queue_due(berlin(2026, 5, 25, 9, 10)) == 0  # the holiday: closed
    assert job.queue_due(berlin(2026, 5, 26, 9, 10)) == 2
    assert sorted(wa_id or "" for wa_id, _p, _t in follow_ups(shop)) == sorted([ANNA, BERT])


def test_the_reopening_after_the_clocks_go_back_is_read_in_the_business_time_zone(
    shop: Flask, client: FlaskClient
) -> None:
    # The clocks go back on Sunday 25 October 2026 (03:00 CEST -> 02:00 CET): Monday's 09:00
    # is 08:00 UTC, an hour later than the summer's. Anna wrote on Sunday at 08:30 CET, 24.5
    # hours before the reopening: her window had closed. Bert wrote at 09:30 CET: his had not.
    write(shop, client, berlin(2026, 10, 25, 8, 30), wa_id=ANNA, name="Anna")
    write(shop, client, berlin(2026, 10, 25, 9, 30), wa_id=BERT, name="Bert")
    job = FollowUps(get_db(shop))
    reopening = berlin(2026, 10, 26, 9, 0)
    assert reopening.utcoffset() == timedelta(hours=1)
    assert job.queue_due(reopening - timedelta(minutes=30)) == 0  # 07:30 UTC: still closed
    assert job.queue_due(reopening + timedelta(minutes=2)) == 1
    assert [wa_id for wa_id, _p, _t in follow_ups(shop)] == [ANNA]


@pytest.mark.parametrize(
    ("change", "logged"),
    [
        ({"name": "anders"}, "there is no template wieder_da in the language de"),
        ({"status": "paused"}, "is paused"),
        ({"status": "pending"}, "is pending"),
        ({"category": "marketing"}, "a follow-up takes a utility template"),
    ],
)
def test_a_missing_unapproved_or_marketing_template_queues_nothing_and_is_logged(
    app: Flask,
    client: FlaskClient,
    caplog: pytest.LogCaptureFixture,
    change: dict[str, str],
    logged: str,
) -> None:
    with get_db(app).session() as session:
        save_settings(session, SETTINGS)
        session.add(template_row(**change))
    write(app, client, SATURDAY, wa_id=ANNA, name="Anna")
    job = FollowUps(get_db(app))
    with caplog.at_level(logging.WARNING, logger="tresen.followups"):
        assert job.queue_due(JOB) == 0
        assert job.queue_due(JOB + timedelta(minutes=1)) == 0
    assert follow_ups(app) == []
    said = [r.getMessage() for r in caplog.records if r.name == "tresen.followups"]
    assert len(said) == 1  # said once, not every minute
    assert logged in said[0]
    assert "1 customer(s)" in said[0]


def test_a_parameter_that_does_not_fit_the_template_queues_nothing(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    # Two parameters for a template with one: refused by the check before the outbox.
    with get_db(app).session() as session:
        save_settings(
            session,
            SETTINGS.replace('params: ["{{ contact.name }}"]', 'params: ["{{ contact.name }}", x]'),
        )
        session.add(template_row())
    write(app, client, SATURDAY, wa_id=ANNA, name="Anna")
    with caplog.at_level(logging.WARNING, logger="tresen.followups"):
        assert FollowUps(get_db(app)).queue_due(JOB) == 0
    assert follow_ups(app) == []
    assert "needs 1 value(s), 2 given" in caplog.text


def test_no_follow_up_without_the_setting(app: Flask, client: FlaskClient) -> None:
    with get_db(app).session() as session:
        save_settings(session, SETTINGS.replace("  follow_up:", "  # follow_up:"))
        session.add(template_row())
    write(app, client, SATURDAY, wa_id=ANNA, name="Anna")
    assert FollowUps(get_db(app)).queue_due(JOB) == 0
    assert follow_ups(app) == []


def test_two_leaders_for_a_moment_queue_each_follow_up_once(
    shop: Flask, client: FlaskClient
) -> None:
    customers = [f"4915100000{i:03d}" for i in range(8)]
    for i, wa_id in enumerate(customers):
        write(shop, client, SATURDAY + timedelta(minutes=i), wa_id=wa_id, name=f"Kunde {i}")
    start = threading.Barrier(2)
    counts: list[int] = []

    def lead() -> None:
        job = FollowUps(get_db(shop))
        start.wait()
        counts.append(job.queue_due(JOB))

    threads = [threading.Thread(target=lead) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sum(counts) == len(customers)
    assert sorted(wa_id or "" for wa_id, _p, _t in follow_ups(shop)) == customers


def test_a_customer_without_a_name_for_the_parameter_is_left_out_and_said_once(
    shop: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    write(shop, client, SATURDAY, wa_id=ANNA, name="Anna")
    write(shop, client, SATURDAY + timedelta(minutes=5), wa_id=BERT, name="Bert")
    with get_db(shop).session() as session:
        bert = session.scalars(select(Contact).where(Contact.wa_id == BERT)).one()
        bert.name = None
    job = FollowUps(get_db(shop))
    with caplog.at_level(logging.WARNING, logger="tresen.followups"):
        assert job.queue_due(JOB) == 1
        assert job.queue_due(JOB + timedelta(minutes=1)) == 0
    assert [wa_id for wa_id, _p, _t in follow_ups(shop)] == [ANNA]
    said = [r.getMessage() for r in caplog.records if r.name == "tresen.followups"]
    assert len(said) == 1 and "is empty" in said[0]
