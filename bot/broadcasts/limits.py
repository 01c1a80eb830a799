"""What may limit a broadcast, as pure rules: Meta's messaging limit (unique customers reached
by business-initiated messages in any 24 hours, by tier), the quiet hours of the settings, and
from both when a broadcast that has to wait will be finished. No database, no clock."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.hours import OpeningHours, closed_by_exception
from bot.settings.values import BroadcastHours

WINDOW = timedelta(hours=24)
# Meta's start for a new business portfolio, used until the limit has been read.
DEFAULT_TIER = "TIER_250"
DEFAULT_LIMIT = 250
UNLIMITED = "TIER_UNLIMITED"
# Meta's code for a message refused by the per-customer marketing cap; its advice is to wait
# at least 24 hours before sending again.
CAPPED_CODE = 131049
CAP_RETRY_AFTER = timedelta(hours=24)
# Meta's refusal when the number may not send more for now ("restrictions on how many messages
# can be sent from this phone number"): the messaging limit learnt from the error.
LIMIT_REACHED_CODE = 131048
# How far ahead quiet hours and the finish are looked for: past a year there is none.
_HORIZON_DAYS = 400

_TIER = re.compile(r"TIER_(\d+)(K?)")


def tier_limit(tier: str) -> int | None:
    """The unique customers per 24 hours of one of Meta's tiers: `TIER_2K` is 2000,
    `TIER_250` 250, `TIER_UNLIMITED` None. ValueError for a name it does not know."""
    name = tier.strip().upper()
    if name == UNLIMITED:
        return None
    match = _TIER.fullmatch(name)
    if match is None:
        raise ValueError(f"not a messaging limit tier: {tier!r}")
    return int(match[1]) * (1000 if match[2] else 1)


def budget(limit: int | None, used: int) -> int | None:
    """How many more customers may get a business-initiated message now; None: no limit."""
    if limit is None:
        return None
    return max(0, limit - used)


# --- quiet hours -----------------------------------------------------------------------------


def _span(hours: BroadcastHours, zone: ZoneInfo, day: date) -> tuple[datetime, datetime]:
    """The allowed span of a local day, as aware instants (wall times through a DST change
    land where the zone puts them)."""
    start = _instant(day, hours.send_from, zone)
    if hours.send_until is None:
        end = _instant(day + timedelta(days=1), time(0, 0), zone)
    else:
        end = _instant(day, hours.send_until, zone)
    return start, end


def _instant(day: date, wall: time, zone: ZoneInfo) -> datetime:
    # Through UTC and back: a wall time in the spring gap becomes the first real instant after.
    return datetime.combine(day, wall, zone).astimezone(ZoneInfo("UTC")).astimezone(zone)


def _day_allowed(hours: BroadcastHours, opening: OpeningHours, day: date) -> bool:
    return hours.on_closed_holidays or not closed_by_exception(opening, day)


def may_send(hours: BroadcastHours, opening: OpeningHours, at: datetime) -> bool:
    """Whether a broadcast may go out at `at`: inside the hours of the day, on a day that is
    not a public holiday or closure the opening hours keep closed (unless chosen)."""
    zone = ZoneInfo(opening.timezone)
    local = at.astimezone(zone)
    if not _day_allowed(hours, opening, local.date()):
        return False
    start, end = _span(hours, zone, local.date())
    return start <= local < end


def next_allowed(hours: BroadcastHours, opening: OpeningHours, at: datetime) -> datetime | None:
    """`at` if a broadcast may go out then, else the next moment it may; None within a year."""
    return _next_span(hours, opening, at, inside=True)


def allowed_until(hours: BroadcastHours, opening: OpeningHours, at: datetime) -> datetime:
    """The end of the allowed time `at` is in (`at` itself when not allowed)."""
    zone = ZoneInfo(opening.timezone)
    local = at.astimezone(zone)
    if not may_send(hours, opening, at):
        return at
    return _span(hours, zone, local.date())[1]


def _next_span(
    hours: BroadcastHours, opening: OpeningHours, at: datetime, *, inside: bool
) -> datetime | None:
    zone = ZoneInfo(opening.timezone)
    first = at.astimezone(zone).date()
    for offset in range(_HORIZON_DAYS):
        day = first + timedelta(days=offset)
        if not _day_allowed(hours, opening, day):
            continue
        start, end = _span(hours, zone, day)
        if end <= at:
            continue
        return max(start, at) if inside else start
    return None


# --- when a broadcast finishes ---------------------------------------------------------------


def finish_estimate(
    *,
    remaining: int,
    limit: int | None,
    sends: Iterable[tuple[datetime, int]],
    now: datetime,
    hours: BroadcastHours,
    opening: OpeningHours,
    counted: bool = True,
) -> datetime | None:
    """When the last of `remaining` recipients still to send will be released, about: at the
    allowed times, as many as the messaging limit leaves after `sends` (when, how many unique
    customers) of the last 24 hours, and more as those fall out of the window.

    `counted`: the messages count against the limit (templates); a text does not. `now` when
    nothing remains; None when no allowed time comes within a year."""
    if remaining <= 0:
        return now
    window = sorted((when, count) for when, count in sends if when > now - WINDOW)
    at = now
    for _ in range(100_000):
        allowed = next_allowed(hours, opening, at)
        if allowed is None:
            return None
        at = allowed
        window = [(when, count) for when, count in window if when > at - WINDOW]
        if limit is None or not counted:
            return at
        free = limit - sum(count for _, count in window)
        if free > 0:
            released = min(free, remaining)
            remaining -= released
            window.append((at, released))
            if remaining == 0:
                return at
        if not window:
            return None  # a limit of 0: nothing ever goes
        # Capacity frees when the oldest send of the window falls out of it.
        at = max(at, window[0][0] + WINDOW)
    return None
