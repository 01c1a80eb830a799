"""Weekly statistics for the owner: messages in and out, and how long customers wait for a person.

What is counted (the page says the same in plain words):

- Week: an ISO week, Monday 00:00 to the next Monday 00:00 in the business time zone. A period
  of N weeks is the current week (so far) and the N - 1 weeks before it.
- Received: the messages customers wrote (text, photos, voice, locations, …). Reactions,
  WhatsApp's system notices and "message deleted" notices are not messages of their own.
- Sent: the business's messages that went out or are on their way. A broadcast's drafts and
  skipped recipients and messages that failed are not counted. They split into
  personal answers (written, a file or a WhatsApp template sent by a person from the inbox:
  rule "manual"), broadcasts (rule "broadcast" or written by a broadcast run) and automatic
  answers (everything else: opt-out, opt-in, keyword, away and greeting replies).
- Wait: a customer waits from their first message after the last personal answer (or their
  first message ever) until the next personal answer that did not fail. Automatic answers and
  broadcasts do not end a wait; internal notes are not messages at all. Two messages before
  one answer are one wait, from the first.
- First-response time: the time the business was open during a wait (weekly hours, public
  holidays, closures, special days, intervals past midnight, daylight-saving changes), added
  up exactly from the open stretches between the two instants. A message on Friday 17:50
  answered on Monday 09:15, open until 18:00 and from 09:00, took 10 + 15 = 25 minutes; a
  message and its answer both while closed took 0 minutes.
- A wait belongs to the week in which it started. Median and p90 are over the waits of the
  week that have been answered; unanswered are the waits that started in the week and have
  had no personal answer up to now.
- Median and p90 use the nearest-rank method: of n times in order, the one at rank
  ⌈p · n⌉ (p = 0.5 or 0.9), so each is a time that was measured; the median of four is the
  second.
"""

from __future__ import annotations

import enum
from bisect import bisect_right
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bot.hours import OpeningHours, open_spans
from bot.rules import Rule

# Inbound kinds that are not something a customer wrote.
NOT_WRITTEN = frozenset({"reaction", "system", "revoke", "status"})
# Outbound rows that never went out (a broadcast's drafts and skipped) or never arrived.
NOT_SENT = frozenset({"draft", "skipped", "failed"})
WEEK = timedelta(weeks=1)


class Kind(enum.StrEnum):
    """What a message is to the statistics."""

    CUSTOMER = "customer"
    PERSONAL = "personal"
    AUTOMATIC = "automatic"
    BROADCAST = "broadcast"


@dataclass(frozen=True, slots=True)
class Event:
    contact: int
    at: datetime  # aware
    kind: Kind


def kind_of(
    direction: str, type_: str, rule: str | None, broadcast_run_id: int | None, status: str
) -> Kind | None:
    """How a stored message counts, or None when it does not count at all."""
    if direction == "in":
        return None if type_ in NOT_WRITTEN else Kind.CUSTOMER
    if status in NOT_SENT:
        return None
    if rule == Rule.BROADCAST or broadcast_run_id is not None:
        return Kind.BROADCAST
    if rule == Rule.MANUAL:
        return Kind.PERSONAL
    return Kind.AUTOMATIC


@dataclass(frozen=True)
class Wait:
    contact: int
    start: datetime
    end: datetime | None  # the personal answer; None: not answered yet


@dataclass(frozen=True)
class Week:
    monday: date  # local date the ISO week starts
    received: int = 0
    automatic: int = 0
    personal: int = 0
    broadcast: int = 0
    waits: int = 0  # started in this week
    unanswered: int = 0
    median: timedelta | None = None  # first-response time in opening hours, nearest rank
    p90: timedelta | None = None

    @property
    def sent(self) -> int:
        return self.automatic + self.personal + self.broadcast

    @property
    def answered(self) -> int:
        return self.waits - self.unanswered

    @property
    def iso(self) -> str:
        """ "2026-W48"."""
        year, week, _ = self.monday.isocalendar()
        return f"{year}-W{week:02d}"

    @property
    def number(self) -> int:
        return self.monday.isocalendar()[1]


class OpenClock:
    """Open seconds between any two instants within a range, each in O(log n) after one pass
    over the range's open stretches (cumulative sums, then a bisection)."""

    def __init__(self, hours: OpeningHours, start: datetime, end: datetime) -> None:
        self._starts: list[float] = []
        self._ends: list[float] = []
        self._before: list[float] = []  # open seconds before each stretch
        total = 0.0
        if end > start:
            for lo, hi in open_spans(hours, start, end):
                a, b = lo.timestamp(), hi.timestamp()
                self._starts.append(a)
                self._ends.append(b)
                self._before.append(total)
                total += b - a

    def covers(self, at: datetime) -> bool:
        """Whether it is open at `at` (within the range), as hours.is_open says."""
        t = at.timestamp()
        i = bisect_right(self._starts, t) - 1
        return i >= 0 and t < self._ends[i]

    def _up_to(self, t: float) -> float:
        i = bisect_right(self._starts, t) - 1
        if i < 0:
            return 0.0
        return self._before[i] + min(t, self._ends[i]) - self._starts[i]

    def between(self, start: datetime, end: datetime) -> float:
        """Open seconds from `start` to `end` (0 when end is not after start)."""
        return max(0.0, self._up_to(end.timestamp()) - self._up_to(start.timestamp()))


def open_seconds(hours: OpeningHours, start: datetime, end: datetime) -> float:
    """Seconds the business is open from `start` to `end`."""
    return OpenClock(hours, start, end).between(start, end)


def nearest_rank(ordered: Sequence[float], percent: int) -> float | None:
    """The value at rank ⌈percent/100 · n⌉ of the ordered values; None for none."""
    if not ordered:
        return None
    rank = -(-percent * len(ordered) // 100)  # integer ceiling: no float rounding at n·0.9
    return ordered[max(rank, 1) - 1]


def waits(events: Iterable[Event], *, waiting_before: Collection[int] = ()) -> list[Wait]:
    """Every wait that starts in `events`; contacts in `waiting_before` were already waiting
    when the events begin, so their first messages continue that earlier wait."""
    by_contact: dict[int, list[Event]] = {}
    for event in events:
        if event.kind in (Kind.CUSTOMER, Kind.PERSONAL):
            by_contact.setdefault(event.contact, []).append(event)
    found = []
    for contact, own in by_contact.items():
        own.sort(key=lambda e: e.at)  # stable: equal times keep the order they came in
        earlier = contact in waiting_before
        since: datetime | None = None
        for event in own:
            if event.kind is Kind.CUSTOMER:
                if since is None and not earlier:
                    since = event.at
            else:
                if since is not None:
                    found.append(Wait(contact, since, event.at))
                since, earlier = None, False
        if since is not None:
            found.append(Wait(contact, since, None))
    return found


def week_start(hours: OpeningHours, at: datetime, weeks_back: int = 0) -> datetime:
    """Monday 00:00 (business time) of the week `at` falls in, `weeks_back` weeks earlier."""
    tz = ZoneInfo(hours.timezone)
    local = at.astimezone(tz).date()
    monday = local - timedelta(days=local.weekday()) - weeks_back * WEEK
    return datetime.combine(monday, time(), tzinfo=tz).astimezone(UTC)


def weekly(
    events: Iterable[Event],
    hours: OpeningHours,
    *,
    now: datetime,
    weeks: int,
    waiting_before: Collection[int] = (),
) -> list[Week]:
    """The last `weeks` ISO weeks up to `now`, oldest first.

    `events`: the messages from the first week's start on (later ones than the current week
    are left out); `waiting_before`: the contacts already waiting at that start.
    """
    tz = ZoneInfo(hours.timezone)
    first = week_start(hours, now, weeks - 1).astimezone(tz).date()
    mondays = [first + i * WEEK for i in range(weeks + 1)]
    # The weeks' bounds as POSIX times: a bisection per message, no time zone arithmetic.
    bounds = [datetime.combine(m, time(), tzinfo=tz).timestamp() for m in mondays]
    mondays.pop()
    counts = [dict.fromkeys(Kind, 0) for _ in mondays]

    def week_of(at: datetime) -> int | None:
        i = bisect_right(bounds, at.timestamp()) - 1
        return i if 0 <= i < weeks else None

    kept = []
    for event in events:
        i = week_of(event.at)
        if i is None:
            continue
        counts[i][event.kind] += 1
        kept.append(event)

    found = waits(kept, waiting_before=waiting_before)
    ends = [w.end for w in found if w.end is not None]
    clock = OpenClock(hours, min(w.start for w in found), max(ends)) if ends else None
    times: list[list[float]] = [[] for _ in mondays]
    started = [0] * weeks
    open_now = [0] * weeks
    for wait in found:
        i = week_of(wait.start)
        if i is None:
            continue
        started[i] += 1
        if wait.end is None:
            open_now[i] += 1
        else:
            assert clock is not None
            times[i].append(clock.between(wait.start, wait.end))

    result = []
    for i, monday in enumerate(mondays):
        ordered = sorted(times[i])
        median, p90 = nearest_rank(ordered, 50), nearest_rank(ordered, 90)
        result.append(
            Week(
                monday=monday,
                received=counts[i][Kind.CUSTOMER],
                automatic=counts[i][Kind.AUTOMATIC],
                personal=counts[i][Kind.PERSONAL],
                broadcast=counts[i][Kind.BROADCAST],
                waits=started[i],
                unanswered=open_now[i],
                median=None if median is None else timedelta(seconds=round(median)),
                p90=None if p90 is None else timedelta(seconds=round(p90)),
            )
        )
    return result


def with_totals(weeks: Sequence[Week], totals: Iterable[tuple[date, Kind, int]]) -> list[Week]:
    """`weeks` with the kept daily totals of deleted messages (retention) added to their
    counts: (local day, kind, count). Waits and response times are not kept for them."""
    found = list(weeks)
    for day, kind, count in totals:
        for i, week in enumerate(found):
            if week.monday <= day < week.monday + WEEK:
                found[i] = replace(
                    week,
                    received=week.received + (count if kind is Kind.CUSTOMER else 0),
                    automatic=week.automatic + (count if kind is Kind.AUTOMATIC else 0),
                    personal=week.personal + (count if kind is Kind.PERSONAL else 0),
                    broadcast=week.broadcast + (count if kind is Kind.BROADCAST else 0),
                )
                break
    return found
