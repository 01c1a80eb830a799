"""When a broadcast goes out, as a shop owner chooses it: weekly on chosen days at a time (the
cron line the scheduler runs), and whether a chosen time falls at night or while the shop is
closed. Pure: no database, no clock (times are parameters)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from bot.broadcasts.cron import cron_trigger, next_times
from bot.hours import OpeningHours, is_open

# The week as the page shows it, Monday first; the names are cron's.
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# Customers should not get a message between these local times.
NIGHT_STARTS, NIGHT_ENDS = time(22, 0), time(7, 0)
# How many coming times of a repeating broadcast are checked for night and closed hours:
# a week of a daily broadcast, every day of a weekly one.
LOOKAHEAD = 7

_WEEKLY = re.compile(r"(\d{1,2}) (\d{1,2}) \* \* ([a-z]{3}(?:,[a-z]{3})*)")


def weekly_cron(days: Iterable[str], at: time) -> str:
    """The cron line for every chosen weekday (`mon` … `sun`) at the local time `at`:
    `weekly_cron(["thu", "mon"], time(10))` is `"0 10 * * mon,thu"`. ValueError without a day
    or with a name that is not a weekday."""
    chosen = {d.strip().lower() for d in days}
    unknown = sorted(chosen - set(WEEKDAYS))
    if unknown:
        raise ValueError(f"not a weekday: {', '.join(unknown)}")
    if not chosen:
        raise ValueError("choose at least one weekday")
    ordered = ",".join(d for d in WEEKDAYS if d in chosen)
    return f"{at.minute} {at.hour} * * {ordered}"


def weekly_of(cron: str) -> tuple[tuple[str, ...], time] | None:
    """The weekdays and time of a cron line `weekly_cron` writes; None for any other line."""
    match = _WEEKLY.fullmatch(" ".join(cron.split()).lower())
    if match is None:
        return None
    minute, hour, names = int(match[1]), int(match[2]), match[3].split(",")
    if minute > 59 or hour > 23 or not set(names) <= set(WEEKDAYS):
        return None
    return tuple(d for d in WEEKDAYS if d in names), time(hour, minute)


def send_times(
    *, now: datetime, timezone: str, at: datetime | None = None, cron: str | None = None
) -> list[datetime]:
    """When a broadcast would go out, in the business time zone: now, once at `at`, or the next
    `LOOKAHEAD` times of a cron line (ValueError for a line that is not valid)."""
    zone = ZoneInfo(timezone)
    if cron is not None:
        times = next_times(cron_trigger(cron, timezone), now, LOOKAHEAD)
    else:
        times = [at or now]
    return [t.astimezone(zone) for t in times]


@dataclass(frozen=True)
class QuietTime:
    """A time a broadcast would go out while customers may not want it."""

    at: datetime  # in the business time zone
    night: bool  # between 22:00 and 07:00 local time
    closed: bool  # outside the opening hours


def is_night(local: datetime) -> bool:
    wall = local.time()
    return wall >= NIGHT_STARTS or wall < NIGHT_ENDS


def quiet_times(hours: OpeningHours, times: Iterable[datetime]) -> list[QuietTime]:
    """Those of `times` that fall at night or while closed, in order; the rest are fine."""
    zone = ZoneInfo(hours.timezone)
    found = []
    for at in times:
        local = at.astimezone(zone)
        night, closed = is_night(local), not is_open(hours, at)
        if night or closed:
            found.append(QuietTime(local, night, closed))
    return found
