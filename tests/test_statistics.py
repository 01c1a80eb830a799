"""The owner's weekly statistics: the hand-computed thirty conversations
(tests/fixtures/statistics_30.py) through the pure functions, the page and the CSV."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bot import statistics
from bot.admin import weekly
from bot.db import get_db
from bot.hours import OpeningHours, is_open, open_spans
from bot.models import Contact, Direction, Message, MessageStatus, Note
from bot.rules import Rule
from bot.settings import parse_settings
from bot.settings.stored import save_settings
from bot.statistics import Event, Kind, Wait, nearest_rank, open_seconds, waits
from tests.fixtures import statistics_30 as fixture
from tests.test_admin import Clock, admin, clock  # noqa: F401  (fixtures)

TZ = ZoneInfo("Europe/Berlin")
HOURS: OpeningHours = parse_settings(fixture.SETTINGS).hours
MINUTE = 60.0


def local(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=TZ)


NOW = local(fixture.NOW)
KINDS = {
    "C": Kind.CUSTOMER,
    "P": Kind.PERSONAL,
    "T": Kind.PERSONAL,
    "A": Kind.AUTOMATIC,
    "B": Kind.BROADCAST,
}


def fixture_events() -> list[Event]:
    """The conversations as the statistics see them: reactions, system notices and failed
    answers do not count (kind_of says so for the stored rows, checked below)."""
    return [
        Event(number, local(at), KINDS[kind])
        for number, conversation in enumerate(fixture.CONVERSATIONS, 1)
        for at, kind in conversation.messages
        if kind in KINDS
    ]


def split(events: list[Event], at: datetime) -> tuple[list[Event], set[int]]:
    """The events from `at` on, and the contacts already waiting at `at`."""
    before = [e for e in events if e.at < at]
    waiting = {w.contact for w in waits(before) if w.end is None}
    return [e for e in events if e.at >= at], waiting


def test_there_are_thirty_conversations() -> None:
    assert len(fixture.CONVERSATIONS) == 30


# --- open time ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "minutes"),
    [
        ("2026-03-20 17:50", "2026-03-23 09:15", 25),  # over a weekend
        ("2026-03-17 20:00", "2026-03-17 21:00", 0),  # both closed
        ("2026-03-18 17:30", "2026-03-20 09:10", 40),  # over a closure day
        ("2026-03-26 23:50", "2026-03-27 09:05", 75),  # an interval past midnight
        ("2026-03-28 21:00", "2026-03-29 05:00", 300),  # 22:00-04:00 on the spring-forward night
        ("2026-04-02 17:30", "2026-04-07 09:10", 280),  # Easter: two holidays, the tail runs
        ("2026-03-23 09:00", "2026-03-30 09:00", 3240),  # a week
        ("2026-03-16 12:00", "2026-03-16 11:00", 0),  # backwards
    ],
)
def test_open_minutes_between_two_instants(start: str, end: str, minutes: int) -> None:
    assert open_seconds(HOURS, local(start), local(end)) == minutes * MINUTE


def test_open_spans_are_merged_and_cut_to_the_range() -> None:
    hours = parse_settings(
        fixture.SETTINGS.replace('fri: ["09:00-18:00"]', 'fri: ["00:00-09:00", "09:00-18:00"]')
    ).hours
    spans = list(open_spans(hours, local("2026-03-26 20:00"), local("2026-03-27 10:00")))
    # Thursday 21:00-01:00 runs into Friday 00:00-09:00 and 09:00-18:00: one stretch.
    assert [(a.astimezone(TZ), b.astimezone(TZ)) for a, b in spans] == [
        (local("2026-03-26 21:00"), local("2026-03-27 10:00"))
    ]
    assert all(a.tzinfo is UTC for span in spans for a in span)


def test_the_open_clock_agrees_with_the_single_interval_sum() -> None:
    counter = statistics.OpenClock(HOURS, local("2026-03-13 00:00"), local("2026-04-09 00:00"))
    moments = [
        local(f"2026-03-{d:02d} {h:02d}:{m:02d}")
        for d in range(14, 31, 3)
        for h in (0, 8, 9, 17, 22)
        for m in (0, 30)
    ]
    for a in moments:
        for b in moments[::7]:
            assert counter.between(a, b) == open_seconds(HOURS, a, b), (a, b)
    every_quarter_hour = [
        local("2026-03-13 00:00") + timedelta(minutes=15 * i) for i in range(2500)
    ]
    for at in every_quarter_hour:
        assert counter.covers(at) == is_open(HOURS, at), at


# --- ranks and waits ------------------------------------------------------------------------


def test_nearest_rank() -> None:
    ten = [float(v) for v in range(1, 11)]
    assert (nearest_rank(ten, 50), nearest_rank(ten, 90)) == (5.0, 9.0)
    assert (nearest_rank([1.0, 2.0, 3.0, 4.0], 50), nearest_rank([7.0], 90)) == (2.0, 7.0)
    assert nearest_rank([float(v) for v in range(30)], 90) == 26.0  # rank 27 of 30
    assert nearest_rank([], 50) is None


@pytest.mark.parametrize(
    ("number", "conversation"), list(enumerate(fixture.CONVERSATIONS, 1)), ids=lambda v: str(v)
)
def test_each_conversation_waits_as_computed_by_hand(
    number: int, conversation: fixture.Conversation
) -> None:
    events, waiting = split(fixture_events(), statistics.week_start(HOURS, NOW, fixture.WEEKS - 1))
    found = [w for w in waits(events, waiting_before=waiting) if w.contact == number]
    minutes = [
        None if w.end is None else open_seconds(HOURS, w.start, w.end) / MINUTE for w in found
    ]
    assert minutes == list(conversation.minutes), conversation.what


def test_a_wait_runs_from_the_first_of_two_messages() -> None:
    at = local("2026-03-16 11:00")
    events = [
        Event(1, at, Kind.CUSTOMER),
        Event(1, at + timedelta(minutes=5), Kind.CUSTOMER),
        Event(1, at + timedelta(minutes=6), Kind.AUTOMATIC),
        Event(1, at + timedelta(minutes=7), Kind.BROADCAST),
        Event(1, at + timedelta(minutes=30), Kind.PERSONAL),
    ]
    assert waits(events) == [Wait(1, at, at + timedelta(minutes=30))]


def test_what_each_stored_message_counts_as() -> None:
    assert statistics.kind_of("in", "text", None, None, "received") is Kind.CUSTOMER
    assert statistics.kind_of("in", "image", None, None, "revoked") is Kind.CUSTOMER
    for kind in ("reaction", "system", "revoke"):
        assert statistics.kind_of("in", kind, None, None, "received") is None
    assert statistics.kind_of("out", "text", Rule.MANUAL, None, "read") is Kind.PERSONAL
    assert statistics.kind_of("out", "template", Rule.MANUAL, None, "queued") is Kind.PERSONAL
    assert statistics.kind_of("out", "text", Rule.MANUAL, None, "failed") is None
    assert statistics.kind_of("out", "text", Rule.AWAY, None, "sent") is Kind.AUTOMATIC
    assert statistics.kind_of("out", "text", Rule.KEYWORD, None, "delivered") is Kind.AUTOMATIC
    assert statistics.kind_of("out", "template", Rule.BROADCAST, 4, "sent") is Kind.BROADCAST
    assert statistics.kind_of("out", "template", Rule.BROADCAST, 4, "skipped") is None
    assert statistics.kind_of("out", "template", Rule.BROADCAST, 4, "draft") is None


# --- the weeks ------------------------------------------------------------------------------


def expected_weeks() -> dict[str, tuple[int, ...]]:
    return {
        week: (*figures[:6], figures[6] * 60, figures[7] * 60)
        for week, figures in fixture.EXPECTED.items()
    }


def figures(week: statistics.Week) -> tuple[int, ...]:
    assert week.median is not None and week.p90 is not None
    return (
        week.received,
        week.automatic,
        week.personal,
        week.broadcast,
        week.waits,
        week.unanswered,
        int(week.median.total_seconds()),
        int(week.p90.total_seconds()),
    )


def test_the_weeks_as_computed_by_hand() -> None:
    start = statistics.week_start(HOURS, NOW, fixture.WEEKS - 1)
    assert start == local("2026-03-16 00:00")
    events, waiting = split(fixture_events(), start)
    assert waiting == {29}
    weeks = statistics.weekly(events, HOURS, now=NOW, weeks=fixture.WEEKS, waiting_before=waiting)
    assert [w.monday for w in weeks] == [date(2026, 3, 16) + timedelta(weeks=i) for i in range(4)]
    assert {w.iso: figures(w) for w in weeks} == expected_weeks()
    # Events before the period (and after the current week) are left out by the weeks too.
    again = statistics.weekly(
        fixture_events(), HOURS, now=NOW, weeks=fixture.WEEKS, waiting_before=waiting
    )
    assert again == weeks


def test_a_week_with_nothing_has_no_times() -> None:
    (week,) = statistics.weekly([], HOURS, now=NOW, weeks=1)
    assert (week.iso, week.received, week.sent, week.median, week.p90) == (
        "2026-W15",
        0,
        0,
        None,
        None,
    )


def test_the_weeks_start_on_monday_in_business_time() -> None:
    # Sunday 23:30 in Berlin is Sunday 22:30 UTC: still the week that began on Monday the 23rd.
    sunday = local("2026-03-29 23:30")
    assert statistics.week_start(HOURS, sunday) == local("2026-03-23 00:00")
    (week,) = statistics.weekly([Event(1, sunday, Kind.CUSTOMER)], HOURS, now=sunday, weeks=1)
    assert (week.iso, week.received, week.unanswered) == ("2026-W13", 1, 1)


def test_fifty_thousand_messages_in_a_quarter() -> None:
    """A busy shop: 50,000 messages in 13 weeks, 5,000 customers, each answered by a person
    after an automatic reply, some not at all. How long it takes is bench.statistics's part."""
    start = local("2026-01-05 08:00")
    events = []
    for i in range(12_500):
        at = start + timedelta(minutes=10 * i + (i % 7))
        contact = i % 5000
        events.append(Event(contact, at, Kind.CUSTOMER))
        events.append(Event(contact, at + timedelta(seconds=5), Kind.AUTOMATIC))
        events.append(Event(contact, at + timedelta(minutes=2), Kind.CUSTOMER))
        if i % 10:
            events.append(Event(contact, at + timedelta(minutes=5 + i % 90), Kind.PERSONAL))
        else:
            events.append(Event(contact, at + timedelta(minutes=1), Kind.BROADCAST))
    assert len(events) == 50_000
    weeks = statistics.weekly(events, HOURS, now=events[-1].at, weeks=13)
    assert sum(w.received for w in weeks) == 25_000


# --- the page and the CSV, on SQLite and PostgreSQL -----------------------------------------

ROWS = {
    "C": (Direction.IN, "text", None, None, MessageStatus.RECEIVED),
    "R": (Direction.IN, "reaction", None, None, MessageStatus.RECEIVED),
    "S": (Direction.IN, "system", None, None, MessageStatus.RECEIVED),
    "A": (Direction.OUT, "text", Rule.AWAY, None, MessageStatus.READ),
    "P": (Direction.OUT, "text", Rule.MANUAL, None, MessageStatus.DELIVERED),
    "T": (Direction.OUT, "template", Rule.MANUAL, None, MessageStatus.SENT),
    "F": (Direction.OUT, "text", Rule.MANUAL, None, MessageStatus.FAILED),
    "B": (Direction.OUT, "template", Rule.BROADCAST, 1, MessageStatus.DELIVERED),
}


def store_conversations(app: Flask) -> None:
    """The fixture's business and conversations in the database, with a note in each
    conversation and a broadcast draft nobody got: neither counts."""
    with get_db(app).session() as session:
        save_settings(session, fixture.SETTINGS)
        for number, conversation in enumerate(fixture.CONVERSATIONS, 1):
            contact = Contact(wa_id=f"49151000000{number:02d}", name=f"Kunde {number}")
            session.add(contact)
            session.flush()
            for i, (at, kind) in enumerate(conversation.messages):
                direction, type_, rule, run, status = ROWS[kind]
                stamp = local(at).astimezone(UTC)
                session.add(
                    Message(
                        contact_id=contact.id,
                        direction=direction,
                        wamid=f"wamid.S{number}.{i}" if direction == Direction.IN else None,
                        type=type_,
                        text="…",
                        rule=rule,
                        broadcast_run_id=run,
                        timestamp=stamp,
                        created_at=stamp,
                        status=status,
                    )
                )
            first = local(conversation.messages[0][0]).astimezone(UTC)
            session.add(Note(contact_id=contact.id, text="intern", created_at=first))
        session.add(
            Message(
                contact_id=contact.id,
                direction=Direction.OUT,
                type="template",
                rule=Rule.BROADCAST,
                broadcast_run_id=2,
                timestamp=local("2026-04-07 10:00").astimezone(UTC),
                status=MessageStatus.SKIPPED,
            )
        )


@pytest.fixture
def shop_weeks(app: Flask, admin: FlaskClient, clock: Clock) -> FlaskClient:  # noqa: F811
    store_conversations(app)
    clock.at = NOW.astimezone(UTC)
    return admin


def test_load_reads_the_stored_conversations_as_by_hand(app: Flask) -> None:
    store_conversations(app)
    with get_db(app).session() as session:
        assert weekly.waiting_at(session, local("2026-03-16 00:00")) == {29}
        weeks = weekly.load(session, HOURS, weeks=fixture.WEEKS, at=NOW)
    assert {w.iso: figures(w) for w in weeks} == expected_weeks()


def test_the_sql_and_the_pure_classification_agree(app: Flask) -> None:
    from itertools import product

    from sqlalchemy import select

    combinations = list(
        product(
            ("in", "out"),
            ("text", "template", "reaction", "system", "revoke", "image"),
            (None, *Rule),
            (None, 7),
            tuple(MessageStatus),
        )
    )
    with get_db(app).session() as session:
        contact = Contact(wa_id="4915100000099")
        session.add(contact)
        session.flush()
        for n, (direction, type_, rule, run, status) in enumerate(combinations):
            session.add(
                Message(
                    contact_id=contact.id,
                    direction=direction,
                    type=type_,
                    rule=rule,
                    broadcast_run_id=None if run is None else run + n,
                    status=status,
                    timestamp=NOW,
                )
            )
        session.flush()
        stored = session.execute(
            select(
                Message.direction,
                Message.type,
                Message.rule,
                Message.broadcast_run_id,
                Message.status,
                weekly.KIND,
            )
        ).all()
    assert len(stored) == len(combinations)
    for direction, type_, rule, run, status, kind in stored:
        pure = statistics.kind_of(direction, type_, rule, run, status)
        assert kind == (None if pure is None else pure.value), (direction, type_, rule, run, status)


ROW = re.compile(r'<tr[^>]*>\s*<th scope="row" data-week="([^"]+)">(.*?)</tr>', re.S)
CELL = re.compile(r'<td data-label="[^"]*" class="(\w+)">(.*?)</td>', re.S)


def table(html: str) -> dict[str, dict[str, str]]:
    return {week: dict(CELL.findall(cells)) for week, cells in ROW.findall(html)}


def test_the_page_shows_the_weeks_as_computed_by_hand(shop_weeks: FlaskClient) -> None:
    html = shop_weeks.get("/admin/insights?weeks=4").get_data(as_text=True)
    rows = table(html)
    assert list(rows) == ["2026-W15", "2026-W14", "2026-W13", "2026-W12"]  # newest first
    for week, (
        received,
        auto,
        personal,
        broadcast,
        _waits,
        unanswered,
        median,
        p90,
    ) in fixture.EXPECTED.items():
        cells = rows[week]
        assert cells["received"] == str(received)
        assert cells["sent"] == str(auto + personal + broadcast)
        assert (cells["automatic"], cells["personal"], cells["broadcast"]) == (
            str(auto),
            str(personal),
            str(broadcast),
        )
        assert cells["unanswered"] == str(unanswered)
        assert f'datetime="PT{median * 60}S"' in cells["median"]
        assert f'datetime="PT{p90 * 60}S"' in cells["p90"]
    assert ">20 Min.</time>" in rows["2026-W12"]["median"]
    assert ">54 Std.</time>" in rows["2026-W13"]["p90"]
    assert "KW 13" in html and "(bisher)" in html
    assert 'href="/admin/insights/weekly.csv?weeks=4"' in html
    assert 'aria-hidden="true"' in html  # the chart: the table is the data


def test_the_page_in_english(shop_weeks: FlaskClient, app: Flask) -> None:
    with get_db(app).session() as session:
        save_settings(session, fixture.SETTINGS.replace("de_DE", "en_GB"))
    rows = table(shop_weeks.get("/admin/insights?weeks=4").get_data(as_text=True))
    assert ">20 min</time>" in rows["2026-W12"]["median"]
    assert ">54 hr</time>" in rows["2026-W13"]["p90"]


def test_the_csv_has_the_same_numbers(shop_weeks: FlaskClient) -> None:
    response = shop_weeks.get("/admin/insights/weekly.csv?weeks=4")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    body = response.get_data()
    assert body.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    assert rows[0][:3] == ["ISO-Woche", "Wochenbeginn", "Empfangen"]
    assert len(rows) == 5
    for row in rows[1:]:
        received, auto, personal, broadcast, waits_, unanswered, median, p90 = fixture.EXPECTED[
            row[0]
        ]
        assert row[1:] == [
            date.fromisocalendar(int(row[0][:4]), int(row[0][-2:]), 1).isoformat(),
            str(received),
            str(auto + personal + broadcast),
            str(personal),
            str(auto),
            str(broadcast),
            str(waits_),
            str(waits_ - unanswered),
            str(unanswered),
            f"{median},0",
            f"{p90},0",
        ]


def test_the_csv_in_english_is_comma_separated(shop_weeks: FlaskClient, app: Flask) -> None:
    with get_db(app).session() as session:
        save_settings(session, fixture.SETTINGS.replace("de_DE", "en_GB"))
    text = shop_weeks.get("/admin/insights/weekly.csv?weeks=4").get_data(as_text=True)
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][0] == "ISO week"
    assert rows[1][0] == "2026-W12" and rows[1][-2:] == ["20.0", "45.0"]


def test_an_unknown_period_falls_back_to_eight_weeks(shop_weeks: FlaskClient) -> None:
    text = shop_weeks.get("/admin/insights/weekly.csv?weeks=5").get_data(as_text=True)
    assert len(text.strip().splitlines()) == 1 + 8


def test_durations_in_words() -> None:
    from babel import Locale

    de, en = Locale.parse("de"), Locale.parse("en")
    assert weekly.duration_text(timedelta(minutes=65), de) == "1 Std. 5 Min."
    assert weekly.duration_text(timedelta(hours=2), de) == "2 Std."
    assert weekly.duration_text(timedelta(seconds=45), de) == "45 Sek."
    assert weekly.duration_text(timedelta(0), de) == "0 Min."
    assert weekly.duration_text(timedelta(minutes=25, seconds=31), en) == "26 min"
    assert weekly.duration_text(None, en) == "–"


def test_the_chart_scales_to_the_busiest_week() -> None:
    weeks = [
        statistics.Week(date(2026, 3, 16), received=40, personal=20, automatic=10, broadcast=5),
        statistics.Week(date(2026, 3, 23), received=0, median=timedelta(minutes=30)),
    ]
    drawn = weekly.chart(weeks)
    assert drawn.messages_top == 50
    assert drawn.times_top == timedelta(minutes=50)
    kinds = [b.kind for b in drawn.bars]
    assert kinds == ["received", "personal", "automatic", "broadcast", "median"]
    received = drawn.bars[0]
    assert received.height == round(weekly.MESSAGES_HEIGHT * 40 / 50, 1)
    assert drawn.labels == ((round(drawn.bars[0].x + drawn.bars[0].width, 1), 12), drawn.labels[1])
