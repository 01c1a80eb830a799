"""Insights: when customers write (weekday × hour, opening hours drawn over it), who answers, and
week by week how much came in and went out and how long customers waited (bot.statistics)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import babel.dates
from babel import Locale
from flask import Response, render_template, request
from flask_babel import (
    format_date,
    format_number,
    format_percent,
    get_locale,
    gettext,
    ngettext,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import statistics
from bot.admin import weekly
from bot.admin.blueprint import bp, now
from bot.admin.display import rule_name
from bot.db import get_db
from bot.hours import OpeningHours
from bot.models import Direction, Message
from bot.rules import AUTO_RULES, Rule
from bot.settings.stored import load_settings, seed_demo
from bot.whatsapp import events

WEEKS = (4, 8, 12, 26)
DEFAULT_WEEKS = 8
LEVELS = 5
# Enough for a busy shop's quarter; beyond that the picture would not change.
MAX_MESSAGES = 50_000
_LEADING_ZERO = re.compile(r"(?<!\d)0(\d)(?!\d)")
NOT_WRITTEN = tuple(sorted(statistics.NOT_WRITTEN))


@dataclass(frozen=True)
class Heatmap:
    counts: tuple[tuple[int, ...], ...]  # [weekday][hour], Monday first, business time
    open_minutes: tuple[tuple[int, ...], ...]  # [weekday][hour]: minutes open by the week
    total: int
    while_closed: int

    @property
    def peak(self) -> int:
        return max((max(row) for row in self.counts), default=0)

    @property
    def busiest(self) -> tuple[int, int] | None:
        """The (weekday, hour) with the most messages, the earliest of equals; None for none."""
        if self.peak == 0:
            return None
        return min((d, h) for d in range(7) for h in range(24) if self.counts[d][h] == self.peak)

    def level(self, day: int, hour: int) -> int:
        count = self.counts[day][hour]
        if count == 0 or self.peak == 0:
            return 0
        return max(1, round(LEVELS * count / self.peak))


def open_minutes(hours: OpeningHours) -> tuple[tuple[int, ...], ...]:
    """Minutes of each weekday hour covered by the weekly hours (past midnight included)."""
    grid = [[0] * 24 for _ in range(7)]
    for day, intervals in enumerate(hours.weekly):
        for iv in intervals:
            start = iv.start.hour * 60 + iv.start.minute
            end = iv.end.hour * 60 + iv.end.minute
            if end <= start:
                end += 24 * 60  # into the next day (00:00 as the end: until midnight)
            for minute_hour in range(start // 60, (end + 59) // 60):
                lo, hi = max(start, minute_hour * 60), min(end, (minute_hour + 1) * 60)
                if hi > lo:
                    d, h = (day + minute_hour // 24) % 7, minute_hour % 24
                    grid[d][h] = min(60, grid[d][h] + hi - lo)
    return tuple(tuple(row) for row in grid)


def heatmap(session: Session, hours: OpeningHours, *, since: datetime, until: datetime) -> Heatmap:
    """Customers' messages from `since` to `until` by weekday and hour, in business time.

    The bound above leaves out a time no message can have (see events.plausible) that was
    stored before such times were replaced: it would not fit the calendar in local time.
    """
    tz = ZoneInfo(hours.timezone)
    # Open or closed from the period's open stretches, by bisection: per message, is_open
    # would work out two days of opening hours again.
    clock = statistics.OpenClock(hours, since, until + timedelta(seconds=1))
    stamps = (
        session.connection()
        .scalars(
            select(Message.timestamp)
            .where(
                Message.direction == Direction.IN,
                Message.timestamp >= since,
                Message.timestamp <= until,
                Message.type.not_in(NOT_WRITTEN),
            )
            .order_by(Message.timestamp.desc())
            .limit(MAX_MESSAGES)
        )
        .all()
    )
    counts = [[0] * 24 for _ in range(7)]
    total = closed = 0
    for stamp in stamps:
        local = stamp.astimezone(tz)
        counts[local.weekday()][local.hour] += 1
        total += 1
        # Holidays, closures and special days count here, unlike in the weekly overlay.
        if not clock.covers(stamp):
            closed += 1
    return Heatmap(
        counts=tuple(tuple(row) for row in counts),
        open_minutes=open_minutes(hours),
        total=total,
        while_closed=closed,
    )


def replies_by(session: Session, *, since: datetime) -> Counter[str]:
    """Outbound replies since `since` by rule: the auto rules' names and "manual"."""
    rows = session.execute(
        select(Message.rule, func.count())
        .where(
            Message.direction == Direction.OUT,
            Message.timestamp >= since,
            Message.rule.in_([*AUTO_RULES, Rule.MANUAL]),
        )
        .group_by(Message.rule)
    )
    return Counter({rule: count for rule, count in rows if rule})


def _percent(part: int, whole: int) -> int:
    return round(100 * part / whole) if whole else 0


def _locale() -> Locale:
    return get_locale() or Locale.parse("en")


def day_names(locale: Locale) -> list[str]:
    """Monday first, abbreviated: "Mo.", "Mon"."""
    names = locale.days["format"]["abbreviated"]
    return [str(names[d]) for d in range(7)]


def hour_range(hour: int, locale: Locale) -> str:
    """One hour of the day as a range: "17–18 Uhr", "5 – 6 PM"."""
    if "H" not in locale.time_formats["short"].pattern:
        return babel.dates.format_interval(time(hour), time((hour + 1) % 24), "h", locale=locale)
    # A 24-hour clock says the hours as people do: "4–5 Uhr", not "04–05 Uhr".
    text = babel.dates.format_interval(time(hour), time((hour + 1) % 24), "H", locale=locale)
    return _LEADING_ZERO.sub(r"\1", text)


def cells(grid: Heatmap, names: list[str]) -> list[dict[str, Any]]:
    """The heatmap's rows: a weekday's name and its 24 cells with their tooltips."""
    rows = []
    for d, name in enumerate(names):
        row = []
        for h in range(24):
            count, minutes = grid.counts[d][h], grid.open_minutes[d][h]
            if minutes:
                title = ngettext(
                    "%(day)s %(hour)s:00 — %(num)d message, open %(minutes)d min",
                    "%(day)s %(hour)s:00 — %(num)d messages, open %(minutes)d min",
                    count,
                    day=name,
                    hour=f"{h:02d}",
                    minutes=minutes,
                )
            else:
                title = ngettext(
                    "%(day)s %(hour)s:00 — %(num)d message",
                    "%(day)s %(hour)s:00 — %(num)d messages",
                    count,
                    day=name,
                    hour=f"{h:02d}",
                )
            kind = " open" if minutes >= 60 else " part" if minutes else ""
            row.append({"class": f"l{grid.level(d, h)}{kind}", "title": title, "count": count})
        rows.append({"name": name, "cells": row})
    return rows


def _weeks() -> int:
    weeks = request.args.get("weeks", type=int) or DEFAULT_WEEKS
    return weeks if weeks in WEEKS else DEFAULT_WEEKS


@bp.get("/insights")
def insights() -> str:
    weeks = _weeks()
    at = now()
    since = at - timedelta(weeks=weeks)
    with get_db().session() as session:
        seed_demo(session)
        settings = load_settings(session)
        assert settings is not None
        grid = heatmap(session, settings.hours, since=since, until=at + events.AHEAD)
        by_rule = replies_by(session, since=since)
        by_week = weekly.load(session, settings.hours, weeks=weeks, at=at)
    manual = by_rule.get(Rule.MANUAL, 0)
    auto = sum(count for rule, count in by_rule.items() if rule in AUTO_RULES)
    locale = _locale()
    names = day_names(locale)
    busiest = None
    if grid.busiest is not None:
        day, hour = grid.busiest
        busiest = f"{names[day]}, {hour_range(hour, locale)}"
    return render_template(
        "admin/insights.html",
        grid=grid,
        rows=cells(grid, names),
        busiest=busiest,
        format_number=format_number,
        format_date=format_date,
        format_percent=format_percent,
        weeks=weeks,
        week_choices=WEEKS,
        timezone=settings.timezone,
        auto=auto,
        manual=manual,
        auto_percent=_percent(auto, auto + manual),
        manual_percent=_percent(manual, auto + manual),
        by_rule=sorted(
            ((rule_name(r), c) for r, c in by_rule.items() if r in AUTO_RULES),
            key=lambda x: -x[1],
        ),
        closed_percent=_percent(grid.while_closed, grid.total),
        by_week=by_week,
        chart=weekly.chart(by_week),
        duration=lambda value: weekly.duration_text(value, locale),
        iso_duration=weekly.iso_duration,
    )


def csv_header() -> list[str]:
    return [
        gettext("ISO week"),
        gettext("Week starts"),
        gettext("Received"),
        gettext("Sent"),
        gettext("Personal answers"),
        gettext("Automatic answers"),
        gettext("Broadcast messages"),
        gettext("Waits"),
        gettext("Answered"),
        gettext("Unanswered"),
        gettext("Median first response (minutes)"),
        gettext("90th percentile first response (minutes)"),
    ]


@bp.get("/insights/weekly.csv")
def insights_weekly_csv() -> Response:
    """The week-by-week figures of the page's period, one row per ISO week."""
    weeks = _weeks()
    at = now()
    with get_db().session() as session:
        seed_demo(session)
        settings = load_settings(session)
        assert settings is not None
        by_week = weekly.load(session, settings.hours, weeks=weeks, at=at)
    body = weekly.csv_text(by_week, csv_header(), _locale())
    name = f"tresen-weeks-{by_week[0].iso}-{by_week[-1].iso}.csv"
    return Response(
        body.encode("utf-8"),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
