"""Opening hours: weekly intervals in local wall-clock time, public holidays, closures and special
days, turned into concrete open spans to answer "open now?", "opens when?" and "closes when?".

Semantics:

- An interval belongs to the local date on which it starts. An interval whose end is not after
  its start runs past midnight into the next day ("22:00-02:00"); an end of 00:00 means "until
  midnight" ("22:00-00:00", written "22:00-24:00" too), and "00:00-24:00" is the whole day.
- What a date's intervals are, in order of precedence: a closure covering the date (closed);
  a special day for the date (its intervals, an empty tuple meaning closed: an explicit owner
  decision, so it wins over a public holiday); a public holiday of the configured country and
  subdivision (closed); otherwise the weekly intervals of that weekday. Each of these replaces
  only the intervals that START on that date: the overnight tail of the previous day's interval
  (Friday 22:00-02:00 into a closed Saturday) still runs.
- Times are local wall-clock times, so across a DST change an interval keeps its local times.
  A time that falls into a DST gap (02:30 in Europe/Berlin on the last Sunday of March) takes
  effect at the first instant after the gap (03:00 local); a time that occurs twice (fall back)
  takes its first occurrence (fold=0). An interval that shrinks to nothing in a gap is dropped.
- Spans are half-open: open at the opening instant, closed at the closing instant. Overlapping
  or adjacent intervals merge into one open stretch (09:00-12:00 and 12:00-14:00: no close at
  12:00), also across midnight and across the day boundary of an overnight interval.
- next_open and next_close give the first opening (closing) strictly after `after`: at an opening
  instant it is already open, so next_open is the re-opening after that stretch; at a closing
  instant it is already closed, so next_close is the close after the next opening. They look at
  the intervals starting on the local dates from the day before `after` to 365 days after it.
- Results are in the business zone. Per PEP 495 an aware datetime in a repeated (fall-back) hour
  never compares equal to one in another zone: compare results as UTC or timestamps.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from babel.core import UnknownLocaleError
from babel.dates import get_day_names

__all__ = [
    "Closure",
    "Interval",
    "OpeningHours",
    "SpecialDay",
    "closed_since",
    "format_interval",
    "is_open",
    "next_close",
    "next_open",
    "open_spans",
    "parse_interval",
    "week_lines",
]

# Local dates looked at by next_open/next_close: the day before `after`, its own date and 365 more.
_SEARCH_DAYS = 367
# How far closed_since looks back: a business closed longer than this closed a year ago.
_LOOK_BACK = timedelta(days=365)
_MIDNIGHT = time(0, 0)
_ONE_DAY = timedelta(days=1)

_INTERVAL_RE = re.compile(r"\s*([^-–]*?)\s*[-–]\s*([^-–]*?)\s*")
_TIME_RE = re.compile(r"(\d{1,2}):(\d{2})")

_CLOSED_WORD = {"de": "geschlossen", "en": "closed"}


@dataclass(frozen=True)
class Interval:
    """Local wall-clock times; end <= start means it runs past midnight into the next day."""

    start: time
    end: time  # time(0, 0) as end means "until midnight"

    def __post_init__(self) -> None:
        for t in (self.start, self.end):
            if t.tzinfo is not None or t.second or t.microsecond:
                raise ValueError(f"interval times must be whole local minutes, got {t.isoformat()}")
        # start == end would be either empty or 24 hours; only 00:00-24:00 is unambiguous.
        if self.start == self.end and self.start != _MIDNIGHT:
            raise ValueError(f"empty interval {format_interval(self)}")


@dataclass(frozen=True)
class Closure:
    """Closed on these whole local days, inclusive."""

    start: date
    end: date
    reason: str = ""

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"closure ends ({self.end}) before it starts ({self.start})")


@dataclass(frozen=True)
class SpecialDay:
    """These intervals replace the weekly ones on that local date (empty tuple: closed)."""

    day: date
    intervals: tuple[Interval, ...]


@dataclass(frozen=True)
class OpeningHours:
    timezone: str  # IANA name, e.g. "Europe/Berlin"
    weekly: tuple[tuple[Interval, ...], ...]  # exactly 7 entries, index 0 = Monday
    holiday_country: str | None = None  # e.g. "DE" (holidays package)
    holiday_subdivision: str | None = None  # e.g. "BY"
    closures: tuple[Closure, ...] = ()
    special_days: tuple[SpecialDay, ...] = ()

    def __post_init__(self) -> None:
        _zone(self.timezone)
        if len(self.weekly) != 7:
            raise ValueError(f"weekly hours need 7 days (Monday first), got {len(self.weekly)}")
        if self.holiday_subdivision is not None and self.holiday_country is None:
            raise ValueError(
                f"holiday subdivision {self.holiday_subdivision!r} given without a country"
            )
        if self.holiday_country is not None:
            _check_holiday_region(self.holiday_country, self.holiday_subdivision)
        seen: set[date] = set()
        for special in self.special_days:
            if special.day in seen:
                raise ValueError(f"special hours given twice for {special.day.isoformat()}")
            seen.add(special.day)


def parse_interval(text: str) -> Interval:
    """Parse "09:00-12:30", "22:00-02:00" (past midnight) or "00:00-24:00" (whole day)."""
    match = _INTERVAL_RE.fullmatch(text)
    if match is None:
        raise ValueError(f"bad interval {text!r} (expected HH:MM-HH:MM)")
    start = _parse_time(match.group(1), text, is_end=False)
    end = _parse_time(match.group(2), text, is_end=True)
    # "00:00-24:00" is the whole day; "00:00-00:00" reads as empty like "09:00-09:00".
    if start == end and match.group(2) != "24:00":
        hint = ", write 00:00-24:00 for the whole day" if start == _MIDNIGHT else ""
        raise ValueError(f"empty interval {text!r} (start equals end{hint})")
    return Interval(start, end)


def format_interval(iv: Interval) -> str:
    """The inverse of parse_interval: "09:00-12:30", "22:00-00:00", "00:00-24:00"."""
    return _format(iv, "-")


def is_open(hours: OpeningHours, at: datetime) -> bool:
    """Whether the business is open at the instant `at` (aware, any zone)."""
    at_utc = _as_utc(at, "at")
    tz = _zone(hours.timezone)
    today = at_utc.astimezone(tz).date()
    # Only intervals starting yesterday or today can cover `at`: none lasts more than a day.
    for day in (today - _ONE_DAY, today):
        for start, end in _day_spans(hours, tz, day):
            if start <= at_utc < end:
                return True
    return False


def closed_by_exception(hours: OpeningHours, day: date) -> bool:
    """Whether the local date `day` is closed by a closure or a public holiday (special hours
    that day open it again); a weekday closed every week is not an exception."""
    for closure in hours.closures:
        if closure.start <= day <= closure.end:
            return True
    for special in hours.special_days:
        if special.day == day:
            return not special.intervals
    return hours.holiday_country is not None and day in _holiday_dates(
        hours.holiday_country, hours.holiday_subdivision, day.year
    )


def next_open(hours: OpeningHours, after: datetime) -> datetime | None:
    """First instant after `after` at which it opens after being closed, in the business zone.

    If open at `after`, the re-opening after the current open stretch; None if none is found.
    """
    after_utc = _as_utc(after, "after")
    tz = _zone(hours.timezone)
    for start, _end, _known in _stretches(hours, tz, after_utc):
        if start > after_utc:
            return start.astimezone(tz)
    return None


def next_close(hours: OpeningHours, after: datetime) -> datetime | None:
    """First instant after `after` at which it closes, in the business zone.

    If closed at `after`, the close after the next opening; None if none is found.
    """
    after_utc = _as_utc(after, "after")
    tz = _zone(hours.timezone)
    for _start, end, known in _stretches(hours, tz, after_utc):
        if end > after_utc:
            return end.astimezone(tz) if known else None
    return None


def open_spans(
    hours: OpeningHours, start: datetime, end: datetime
) -> Iterator[tuple[datetime, datetime]]:
    """The open stretches from `start` to `end`, merged and cut to that range, in UTC, in order.

    Their lengths add up to the exact open time between the two instants (DST, holidays,
    closures, special days and intervals past midnight applied), with no sampling.
    """
    start_utc, end_utc = _as_utc(start, "start"), _as_utc(end, "end")
    tz = _zone(hours.timezone)
    day = start_utc.astimezone(tz).date() - _ONE_DAY  # yesterday's overnight interval reaches in
    last = end_utc.astimezone(tz).date()
    current: tuple[datetime, datetime] | None = None
    while day <= last:
        for span_start, span_end in _day_spans(hours, tz, day):
            lo, hi = max(span_start, start_utc), min(span_end, end_utc)
            if hi <= lo:
                continue
            if current is None:
                current = (lo, hi)
            elif lo <= current[1]:
                current = (current[0], max(current[1], hi))
            else:
                yield current
                current = (lo, hi)
        day += _ONE_DAY
    if current is not None:
        yield current


def closed_since(hours: OpeningHours, at: datetime) -> datetime:
    """The latest instant at or before `at` at which the business closed, in the business zone:
    while closed, when the current closed period began.

    It looks back a year at most: a business not open at all in the year before `at` counts
    as closed since a year before it (`at` minus 365 days).
    """
    at_utc = _as_utc(at, "at")
    tz = _zone(hours.timezone)
    floor = at_utc - _LOOK_BACK
    today = at_utc.astimezone(tz).date()
    spans: list[tuple[datetime, datetime]] = []
    # Back one local date at a time. An interval lasts a day at most, so one starting two
    # dates or more before a close cannot reach past it: a close on a date after the earliest
    # date looked at is final.
    for offset in range(_SEARCH_DAYS + 1):
        day = today - timedelta(days=offset)
        spans[:0] = _day_spans(hours, tz, day)
        close = _last_close(spans, at_utc)
        if close is not None and close.astimezone(tz).date() > day:
            return max(close, floor).astimezone(tz)
        if datetime.combine(day, _MIDNIGHT, tzinfo=tz).astimezone(UTC) < floor - _ONE_DAY:
            break
    close = _last_close(spans, at_utc)
    return max(close or floor, floor).astimezone(tz)


def _last_close(spans: list[tuple[datetime, datetime]], at_utc: datetime) -> datetime | None:
    """The end of the latest merged open stretch that ends at or before `at_utc`."""
    last: datetime | None = None
    current: tuple[datetime, datetime] | None = None
    for start, end in sorted(spans):
        if start > at_utc:
            break
        if current is not None and start <= current[1]:
            current = (current[0], max(current[1], end))
            continue
        if current is not None and current[1] <= at_utc:
            last = current[1]
        current = (start, end)
    if current is not None and current[1] <= at_utc:
        last = current[1]
    return last


def week_lines(hours: OpeningHours, locale: str) -> list[str]:
    """The weekly hours as text lines, Monday first: "Montag: 09:00–12:30, 14:00–18:00"."""
    locale = locale.replace("-", "_")
    try:
        names = get_day_names("wide", locale=locale)
    except (UnknownLocaleError, ValueError):
        locale = "en"
        names = get_day_names("wide", locale=locale)
    closed = _CLOSED_WORD.get(locale.split("_")[0].lower(), _CLOSED_WORD["en"])
    lines = []
    for weekday, intervals in enumerate(hours.weekly):  # Babel's day index 0 is Monday too
        ordered = sorted(intervals, key=lambda iv: iv.start)
        text = ", ".join(_format(iv, "–") for iv in ordered) if ordered else closed
        lines.append(f"{names[weekday]}: {text}")
    return lines


def _parse_time(part: str, text: str, *, is_end: bool) -> time:
    match = _TIME_RE.fullmatch(part)
    hour, minute = (int(match.group(1)), int(match.group(2))) if match else (-1, -1)
    if is_end and (hour, minute) == (24, 0):
        return _MIDNIGHT
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise ValueError(f"bad time {part!r} in {text!r} (expected HH:MM-HH:MM)")
    return time(hour, minute)


def _format(iv: Interval, dash: str) -> str:
    # "24:00" only for the whole day, where "00:00-00:00" would read as empty.
    end = "24:00" if iv.start == iv.end == _MIDNIGHT else iv.end.strftime("%H:%M")
    return f"{iv.start.strftime('%H:%M')}{dash}{end}"


def _zone(name: str) -> ZoneInfo:
    # ZoneInfo keeps its own cache of zones by name, so this is cheap after the first call.
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r} (expected an IANA name, e.g. Europe/Berlin)"
        ) from None


@functools.lru_cache(maxsize=64)
def _check_holiday_region(country: str, subdivision: str | None) -> None:
    try:
        holidays.country_holidays(country, subdiv=subdivision)
    except NotImplementedError as exc:
        raise ValueError(f"unknown public holiday region: {exc}") from None


@functools.lru_cache(maxsize=256)
def _holiday_dates(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    # Building a holidays object takes milliseconds; a frozenset is also the fastest lookup.
    return frozenset(holidays.country_holidays(country, subdiv=subdivision, years=year).keys())


def _as_utc(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {moment.isoformat()}")
    return moment.astimezone(UTC)


def _intervals_on(hours: OpeningHours, day: date) -> tuple[Interval, ...]:
    for closure in hours.closures:
        if closure.start <= day <= closure.end:
            return ()
    for special in hours.special_days:
        if special.day == day:
            return special.intervals
    if hours.holiday_country is not None and day in _holiday_dates(
        hours.holiday_country, hours.holiday_subdivision, day.year
    ):
        return ()
    return hours.weekly[day.weekday()]


def _day_spans(hours: OpeningHours, tz: ZoneInfo, day: date) -> list[tuple[datetime, datetime]]:
    """The UTC spans of the intervals starting on the local date `day`, sorted by start."""
    spans = []
    for iv in _intervals_on(hours, day):
        start = _local_to_utc(day, iv.start, tz)
        end = _local_to_utc(day if iv.end > iv.start else day + _ONE_DAY, iv.end, tz)
        if end > start:
            spans.append((start, end))
    spans.sort()
    return spans


def _local_to_utc(day: date, wall: time, tz: ZoneInfo) -> datetime:
    """The instant of a local wall-clock time: fold=0 when repeated, end of the gap when skipped."""
    local = datetime.combine(day, wall, tzinfo=tz)  # fold=0: the first occurrence
    instant = local.astimezone(UTC)
    back = instant.astimezone(tz)
    if back.date() == day and back.time() == wall:
        return instant
    return _gap_end(local, tz)


def _gap_end(local: datetime, tz: ZoneInfo) -> datetime:
    # In a gap the two folds give the instants on either side of the transition; bisect on
    # whole seconds (tz transitions are on whole seconds) for the instant the offset changes.
    a = int(local.astimezone(UTC).timestamp())
    b = int(local.replace(fold=1).astimezone(UTC).timestamp())
    lo, hi = min(a, b), max(a, b)
    before = datetime.fromtimestamp(lo, tz).utcoffset()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, tz).utcoffset() == before:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)


def _stretches(
    hours: OpeningHours, tz: ZoneInfo, after_utc: datetime
) -> Iterator[tuple[datetime, datetime, bool]]:
    """Merged open stretches (start, end, end_known) from the day before `after`, lazily.

    Intervals of a later date never start before those of an earlier one, so a stretch is final
    as soon as an interval starts after its end. The last one is yielded with end_known False
    when the first date not looked at continues it.
    """
    first_day = after_utc.astimezone(tz).date() - _ONE_DAY
    current: tuple[datetime, datetime] | None = None
    for offset in range(_SEARCH_DAYS):
        for start, end in _day_spans(hours, tz, first_day + timedelta(days=offset)):
            if current is None:
                current = (start, end)
            elif start <= current[1]:
                current = (current[0], max(current[1], end))
            else:
                yield current[0], current[1], True
                current = (start, end)
    if current is not None:
        beyond = first_day + timedelta(days=_SEARCH_DAYS)
        known = all(start > current[1] for start, _ in _day_spans(hours, tz, beyond))
        yield current[0], current[1], known
