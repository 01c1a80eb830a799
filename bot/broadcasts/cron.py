"""When a broadcast is due: cron lines in the standard meaning, in the business time zone, as
APScheduler triggers, and their next times. No database, no clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger


class Timing(Protocol):
    """A broadcast's schedule as stored: once at `at`, or at every `cron` time in `timezone`."""

    @property
    def at(self) -> datetime | None: ...
    @property
    def cron(self) -> str | None: ...
    @property
    def timezone(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...


_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _weekdays(field: str) -> str:
    """A cron day-of-week field (0 or 7 = Sunday, names too) as APScheduler's day names.

    APScheduler 3 counts Monday as 0, so numbers cannot be passed through as they are.
    """
    days: set[int] = set()
    for part in field.lower().split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"day-of-week step {step_text!r} must be at least 1")
        if base == "*":
            first, last = 0, 6
        else:
            start, dash, end = base.partition("-")
            first = _day_number(start)
            last = _day_number(end) if dash else (6 if step_text else first)
            if dash and end.strip() in ("7",):
                last = 7  # "5-7": Friday to Sunday
            if last < first:
                raise ValueError(f"day-of-week range {base!r} runs backwards")
        days.update(d % 7 for d in range(first, last + 1, step))
    return ",".join(_DAY_NAMES[d] for d in sorted(days))


def _day_number(text: str) -> int:
    value = text.strip()
    if value in _DAY_NAMES:
        return _DAY_NAMES.index(value)
    if value.isdigit() and 0 <= int(value) <= 7:
        return int(value) % 7 if value != "7" else 7
    raise ValueError(f"day of week {text!r}: use 0-7 (0 and 7 are Sunday) or sun-sat")


def cron_trigger(expr: str, timezone: str) -> CronTrigger:
    """A trigger for `m h dom mon dow` (standard cron meaning) in `timezone`; ValueError
    naming the problem."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"{expr!r} has {len(fields)} fields; a cron line has 5: m h dom mon dow")
    minute, hour, day, month, dow = fields
    try:
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_weekdays(dow),
            timezone=ZoneInfo(timezone),
        )
    except (ValueError, KeyError) as exc:
        raise ValueError(f"{expr!r} is not a valid cron line: {exc}") from exc


def trigger_for(broadcast: Timing) -> BaseTrigger:
    if broadcast.cron is not None:
        return cron_trigger(broadcast.cron, broadcast.timezone)
    # A one-off without a time was due when it was created.
    return DateTrigger(run_date=broadcast.at or broadcast.created_at, timezone=UTC)


def occurrence(broadcast: Timing, now: datetime) -> datetime:
    """The key of the occurrence firing at `now`: a one-off's time, or a cron's minute."""
    if broadcast.cron is None and broadcast.at is not None:
        return broadcast.at
    return now.astimezone(UTC).replace(second=0, microsecond=0)


def next_times(trigger: BaseTrigger, after: datetime, n: int) -> list[datetime]:
    """The next `n` fire times of a trigger after `after` (for `broadcast show`, and tests)."""
    times: list[datetime] = []
    previous = None
    now = after
    while len(times) < n:
        nxt = trigger.get_next_fire_time(previous, now)
        if nxt is None:
            break
        times.append(nxt)
        previous, now = nxt, nxt + timedelta(microseconds=1)
    return times
