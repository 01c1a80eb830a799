"""The insights page's week-by-week section: the messages loaded for bot.statistics, the chart's
geometry, durations in words and the CSV download."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import babel.numbers
import babel.units
from babel import Locale
from sqlalchemy import Float, and_, case, cast, func, literal, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from bot import statistics
from bot.hours import OpeningHours
from bot.models import Direction, Message, MessageTotal
from bot.rules import Rule
from bot.sql import dialect_name
from bot.statistics import Event, Kind, Week
from bot.whatsapp import events

_WRITTEN = and_(Message.direction == Direction.IN, Message.type.not_in(statistics.NOT_WRITTEN))
_ANSWERED = and_(
    Message.direction == Direction.OUT,
    Message.rule == Rule.MANUAL,
    Message.status.not_in(statistics.NOT_SENT),
)


_SENT = and_(Message.direction == Direction.OUT, Message.status.not_in(statistics.NOT_SENT))
# statistics.kind_of in SQL, so that only what counts is read, as three narrow columns:
# tests/test_statistics.py checks that the two agree on every kind of row.
KIND = case(
    (_WRITTEN, literal(Kind.CUSTOMER.value)),
    (
        and_(_SENT, or_(Message.rule == Rule.BROADCAST, Message.broadcast_run_id.is_not(None))),
        literal(Kind.BROADCAST.value),
    ),
    (and_(_SENT, Message.rule == Rule.MANUAL), literal(Kind.PERSONAL.value)),
    (_SENT, literal(Kind.AUTOMATIC.value)),
    else_=None,
)


def load(session: Session, hours: OpeningHours, *, weeks: int, at: datetime) -> list[Week]:
    """The last `weeks` ISO weeks up to `at`, from the stored messages."""
    since = statistics.week_start(hours, at, weeks - 1)
    # On the connection, times as numbers: plain rows, without the ORM's or the date parser's
    # work per row (a busy quarter is 50,000 of them).
    rows = (
        session.connection()
        .execute(
            select(Message.contact_id, _epoch(session), KIND).where(
                Message.timestamp >= since,
                Message.timestamp <= at + events.AHEAD,
                or_(_WRITTEN, _SENT),
            )
        )
        .all()
    )  # at once: row by row costs a fetch call each
    kinds = {kind.value: kind for kind in Kind}
    found = [
        Event(contact, datetime.fromtimestamp(round(seconds, 3), UTC), kinds[kind])
        for contact, seconds, kind in rows
    ]
    by_week = statistics.weekly(
        found, hours, now=at, weeks=weeks, waiting_before=waiting_at(session, since)
    )
    # Messages retention deleted count by their kept daily totals.
    first = by_week[0].monday
    totals = session.execute(
        select(MessageTotal.day, MessageTotal.kind, MessageTotal.count).where(
            MessageTotal.day >= first
        )
    ).all()
    return statistics.with_totals(by_week, ((d, kinds[k], n) for d, k, n in totals if k in kinds))


def _epoch(session: Session) -> ColumnElement[float]:
    """The message's time as POSIX seconds, to the millisecond."""
    if dialect_name(session) == "sqlite":
        # Stored as UTC text; Julian day 2440587.5 is 1970-01-01 00:00 UTC.
        return (func.julianday(Message.timestamp) - 2440587.5) * 86400.0
    return cast(func.extract("epoch", Message.timestamp), Float)


def waiting_at(session: Session, at: datetime) -> set[int]:
    """Contacts who write after `at` and were waiting at `at`: their last message before it
    came after their last personal answer (or they never had one)."""
    last_written = func.max(case((_WRITTEN, Message.timestamp)))
    last_answer = func.max(case((_ANSWERED, Message.timestamp)))
    active = select(Message.contact_id).where(Message.timestamp >= at, _WRITTEN)
    stmt = (
        select(Message.contact_id)
        .where(Message.timestamp < at, Message.contact_id.in_(active))
        .group_by(Message.contact_id)
        .having(last_written.is_not(None), or_(last_answer.is_(None), last_written > last_answer))
    )
    return set(session.scalars(stmt))


def duration_text(value: timedelta | None, locale: Locale) -> str:
    """ "1 Std. 5 Min.", "45 Sek.", "0 Min."; "–" for none. Minutes are rounded."""
    if value is None:
        return "–"
    seconds = round(value.total_seconds())
    if 0 < seconds < 60:
        return _unit(seconds, "duration-second", locale)
    hours, minutes = divmod(round(seconds / 60), 60)
    parts = [_unit(hours, "duration-hour", locale)] if hours else []
    if minutes or not hours:
        parts.append(_unit(minutes, "duration-minute", locale))
    return " ".join(parts)


def _unit(value: int, unit: str, locale: Locale) -> str:
    return str(babel.units.format_unit(value, unit, length="short", locale=locale))


def iso_duration(value: timedelta | None) -> str:
    """For <time datetime>: "PT1500S"."""
    return "" if value is None else f"PT{round(value.total_seconds())}S"


# --- the chart ------------------------------------------------------------------------------

WIDTH = 360  # viewBox units: about one CSS pixel on a phone, scaled up on wider screens
LEFT = 4  # the scale's labels stand above its dashed lines, not beside them
TOP, MESSAGES_HEIGHT = 16, 104
TIMES_TOP, TIMES_HEIGHT = 150, 48
LABELS_Y = 214
HEIGHT = 222


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    kind: str  # the CSS class: received, personal, automatic, broadcast, median


@dataclass(frozen=True)
class Chart:
    bars: tuple[Bar, ...]
    labels: tuple[tuple[float, int], ...]  # (x of the middle, ISO week number)
    messages_top: int  # the scale's top value
    times_top: timedelta | None
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    top: int = TOP
    messages_bottom: int = TOP + MESSAGES_HEIGHT
    times_y: int = TIMES_TOP
    times_bottom: int = TIMES_TOP + TIMES_HEIGHT
    labels_y: int = LABELS_Y


def nice_top(value: float) -> int:
    """The scale's top: 1, 2 or 5 times a power of ten, at least `value` (and at least 1)."""
    if value <= 1:
        return 1
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return int(step * power)
    return int(10 * power)  # pragma: no cover - the loop always returns


def chart(weeks: Sequence[Week]) -> Chart:
    """Per week a bar of received messages and a stacked bar of sent ones (personal,
    automatic, broadcast), and below them a bar of the median first-response time."""
    slot = (WIDTH - LEFT) / max(len(weeks), 1)
    bar = slot * 0.36
    messages_top = nice_top(max((max(w.received, w.sent) for w in weeks), default=0))
    longest = max((w.median.total_seconds() for w in weeks if w.median is not None), default=0)
    minutes_top = nice_top(longest / 60) if longest else 0
    bars: list[Bar] = []
    labels = []
    every = math.ceil(len(weeks) / 8)
    bottom = TOP + MESSAGES_HEIGHT
    for i, week in enumerate(weeks):
        x = LEFT + i * slot + slot * 0.1
        if week.received:
            height = MESSAGES_HEIGHT * week.received / messages_top
            bars.append(Bar(x, bottom - height, bar, height, "received"))
        stacked: float = bottom
        for kind, count in (
            ("personal", week.personal),
            ("automatic", week.automatic),
            ("broadcast", week.broadcast),
        ):
            if count:
                height = MESSAGES_HEIGHT * count / messages_top
                stacked -= height
                bars.append(Bar(x + bar, stacked, bar, height, kind))
        if week.median is not None and minutes_top:
            height = TIMES_HEIGHT * week.median.total_seconds() / 60 / minutes_top
            y = TIMES_TOP + TIMES_HEIGHT - height
            bars.append(Bar(x + bar / 2, y, bar, height, "median"))
        if (len(weeks) - 1 - i) % every == 0:  # the latest week always has its label
            labels.append((round(x + bar, 1), week.number))
    return Chart(
        bars=tuple(_rounded(b) for b in bars),
        labels=tuple(labels),
        messages_top=messages_top,
        times_top=timedelta(minutes=minutes_top) if minutes_top else None,
    )


def _rounded(b: Bar) -> Bar:
    return Bar(round(b.x, 1), round(b.y, 1), round(b.width, 1), round(b.height, 1), b.kind)


# --- the CSV --------------------------------------------------------------------------------


def csv_text(weeks: Sequence[Week], header: Sequence[str], locale: Locale) -> str:
    """One row per week, durations in minutes with one decimal, with a byte order mark so
    Excel reads UTF-8. Where the decimal sign is a comma (German), fields are separated by
    `;` as Excel there expects; elsewhere by `,`."""
    decimal = babel.numbers.get_decimal_symbol(locale)
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, delimiter=";" if decimal == "," else ",", lineterminator="\r\n")
    writer.writerow(header)

    def minutes(value: timedelta | None) -> str:
        if value is None:
            return ""
        return f"{value.total_seconds() / 60:.1f}".replace(".", decimal)

    for w in weeks:
        writer.writerow(
            [
                w.iso,
                w.monday.isoformat(),
                w.received,
                w.sent,
                w.personal,
                w.automatic,
                w.broadcast,
                w.waits,
                w.answered,
                w.unanswered,
                minutes(w.median),
                minutes(w.p90),
            ]
        )
    return out.getvalue()
