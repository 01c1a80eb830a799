"""When a broadcast goes out as a shop owner chooses it: weekdays at a time as the scheduler's
cron line, and the night and closed-hours warning, at chosen instants (DST changes too)."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from bot.broadcasts.cron import cron_trigger, next_times
from bot.broadcasts.timing import (
    WEEKDAYS,
    is_night,
    quiet_times,
    send_times,
    weekly_cron,
    weekly_of,
)
from tests.test_hours import make

BERLIN = "Europe/Berlin"
# The demo flower shop's week, in short.
SHOP = make(
    BERLIN,
    {
        "mon": ["09:00-12:30", "14:00-18:00"],
        "thu": ["09:00-12:30", "14:00-18:00"],
        "sat": ["09:00-14:00"],
    },
)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("days", "at", "cron"),
    [
        (["mon", "thu"], time(10, 0), "0 10 * * mon,thu"),
        (["thu", "mon"], time(10, 0), "0 10 * * mon,thu"),  # the week's order, whatever is ticked
        (["SUN", "sat", "sat"], time(7, 5), "5 7 * * sat,sun"),
        (
            ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
            time(0, 0),
            "0 0 * * mon,tue,wed,thu,fri,sat,sun",
        ),
    ],
)
def test_weekdays_at_a_time_become_a_cron_line_and_read_back(
    days: list[str], at: time, cron: str
) -> None:
    assert weekly_cron(days, at) == cron
    ticked = {d.lower() for d in days}
    assert weekly_of(cron) == (tuple(d for d in WEEKDAYS if d in ticked), at)
    cron_trigger(cron, BERLIN)  # the scheduler understands it


def test_no_weekday_or_an_unknown_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        weekly_cron([], time(10))
    with pytest.raises(ValueError, match="montag"):
        weekly_cron(["montag"], time(10))


@pytest.mark.parametrize("cron", ["0 10 * * 1,4", "*/5 * * * *", "0 10 1 * mon", "0 25 * * mon"])
def test_other_cron_lines_are_not_read_as_weekly(cron: str) -> None:
    assert weekly_of(cron) is None


def test_the_weekly_line_fires_on_those_days_at_that_local_time_across_dst() -> None:
    # Monday and Thursday at 10:00 Berlin time, over the change to summer time (29 March 2026).
    times = next_times(
        cron_trigger(weekly_cron(["mon", "thu"], time(10)), BERLIN), utc("2026-03-24T12:00"), 4
    )
    assert [t.astimezone(UTC) for t in times] == [
        utc("2026-03-26T09:00"),  # Thu, CET (UTC+1)
        utc("2026-03-30T08:00"),  # Mon, CEST (UTC+2): still 10:00 on the shop's clock
        utc("2026-04-02T08:00"),
        utc("2026-04-06T08:00"),
    ]


@pytest.mark.parametrize(
    ("at", "night"),
    [
        ("2026-03-28T05:30", True),  # 06:30 CET, the day before the change to summer time
        ("2026-03-29T05:30", False),  # 07:30 CEST: the same UTC time is morning after it
        ("2026-10-24T05:30", False),  # 07:30 CEST, the day before the change back
        ("2026-10-25T05:30", True),  # 06:30 CET: winter time is back, still night
        ("2026-03-11T20:59", False),  # 21:59 CET
        ("2026-03-11T21:00", True),  # 22:00 CET
        ("2026-07-01T04:59", True),  # 06:59 CEST
        ("2026-07-01T05:00", False),  # 07:00 CEST
    ],
)
def test_night_is_22_to_7_on_the_shops_clock(at: str, night: bool) -> None:
    assert is_night(utc(at).astimezone(ZoneInfo(BERLIN))) is night


def test_a_time_at_night_or_while_closed_is_flagged_and_an_open_one_is_not() -> None:
    monday_10 = utc("2026-03-30T08:00")  # Monday 10:00 CEST: open
    monday_13 = utc("2026-03-30T11:00")  # Monday 13:00: lunch break, closed, not night
    thursday_23 = utc("2026-03-26T22:00")  # Thursday 23:00 CET: night and closed
    saturday_6 = utc("2026-03-28T05:00")  # Saturday 06:00 CET: night, and closed
    found = quiet_times(SHOP, [monday_10, monday_13, thursday_23, saturday_6])
    assert [(q.at.isoformat(), q.night, q.closed) for q in found] == [
        ("2026-03-30T13:00:00+02:00", False, True),
        ("2026-03-26T23:00:00+01:00", True, True),
        ("2026-03-28T06:00:00+01:00", True, True),
    ]


def test_a_shop_open_at_night_still_gets_the_night_warning() -> None:
    late = make(BERLIN, {"fri": ["18:00-02:00"]})
    friday_23 = utc("2026-03-27T22:00")
    (found,) = quiet_times(late, [friday_23])
    assert (found.night, found.closed) == (True, False)


def test_send_times_now_once_and_weekly() -> None:
    now = utc("2026-03-24T12:00")  # Tuesday
    assert send_times(now=now, timezone=BERLIN) == [now]
    once = utc("2026-03-29T21:30")
    assert send_times(now=now, timezone=BERLIN, at=once) == [once]
    weekly = send_times(now=now, timezone=BERLIN, cron=weekly_cron(["mon", "thu"], time(23)))
    assert len(weekly) == 7
    assert {t.strftime("%a %H:%M") for t in weekly} == {"Mon 23:00", "Thu 23:00"}
    assert all(t.utcoffset() is not None for t in weekly)
    # The weekly warning at 23:00 holds on both sides of the change to summer time.
    flagged = quiet_times(SHOP, weekly)
    assert len(flagged) == 7 and all(q.night and q.closed for q in flagged)
    with pytest.raises(ValueError):
        send_times(now=now, timezone=BERLIN, cron="0 9 *")
