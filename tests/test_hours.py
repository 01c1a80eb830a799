"""Opening hours: DST weekends, holidays, closures, special days, overnight hours, properties."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.hours import (
    Closure,
    Interval,
    OpeningHours,
    SpecialDay,
    closed_since,
    format_interval,
    is_open,
    next_close,
    next_open,
    parse_interval,
    week_lines,
)
from tests.conftest import examples

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TICK = timedelta(microseconds=1)


def make(
    tz: str,
    week: dict[str, list[str]],
    *,
    country: str | None = None,
    subdivision: str | None = None,
    closures: tuple[Closure, ...] = (),
    special: dict[str, list[str]] | None = None,
) -> OpeningHours:
    """OpeningHours from the settings-file shape: day keys, "HH:MM-HH:MM" strings."""
    return OpeningHours(
        timezone=tz,
        weekly=tuple(tuple(parse_interval(s) for s in week.get(day, [])) for day in DAYS),
        holiday_country=country,
        holiday_subdivision=subdivision,
        closures=closures,
        special_days=tuple(
            SpecialDay(date.fromisoformat(d), tuple(parse_interval(s) for s in ivs))
            for d, ivs in (special or {}).items()
        ),
    )


def local(tz: str, text: str) -> datetime:
    """A local wall-clock time (fold=0: the first occurrence of a repeated time)."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz))


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def as_utc(moment: datetime | None) -> datetime | None:
    # A result in a repeated (fall-back) hour never equals a datetime of another zone (PEP 495).
    return None if moment is None else moment.astimezone(UTC)


WEEKDAYS_9_18 = {d: ["09:00-18:00"] for d in DAYS[:5]}
SHOP = make(
    "Europe/Berlin",
    {
        "mon": ["09:00-12:30", "14:00-18:00"],
        "tue": ["09:00-18:00"],
        "wed": ["09:00-18:00"],
        "thu": ["09:00-18:00"],
        "fri": ["09:00-18:00", "22:00-02:00"],
        "sat": ["10:00-14:00"],
    },
    country="DE",
    subdivision="BY",
    closures=(Closure(date(2026, 12, 24), date(2026, 12, 26), "Weihnachten"),),
    special={"2026-12-31": ["09:00-12:00"]},
)
NIGHTLY = {d: ["22:00-04:00"] for d in DAYS}


# --- daylight saving time ----------------------------------------------------------------------

DST_CASES = [
    # Europe/Berlin spring forward, Sun 2026-03-29 02:00 CET -> 03:00 CEST (01:00 UTC).
    # Sat 22:00-04:00 spans the gap: 21:00 UTC to 02:00 UTC, five real hours.
    ("Europe/Berlin", NIGHTLY, "2026-03-28 21:00", "2026-03-29 20:00", "2026-03-29 02:00"),
    ("Europe/Berlin", NIGHTLY, "2026-03-29 00:59", "2026-03-29 20:00", "2026-03-29 02:00"),
    # An opening time inside the gap takes effect at 03:00 CEST.
    ("Europe/Berlin", {"sun": ["02:30-05:00"]}, "2026-03-28 12:00", "2026-03-29 01:00", None),
    ("Europe/Berlin", {"sun": ["02:30-05:00"]}, "2026-03-29 02:00", None, "2026-03-29 03:00"),
    # A closing time inside the gap, too.
    ("Europe/Berlin", {"sat": ["20:00-02:30"]}, "2026-03-28 22:00", None, "2026-03-29 01:00"),
    # The Monday after keeps its local times: 09:00 CEST is 07:00 UTC.
    ("Europe/Berlin", WEEKDAYS_9_18, "2026-03-28 12:00", "2026-03-30 07:00", None),
    # An interval entirely inside the gap never opens that day.
    ("Europe/Berlin", {"sun": ["02:00-02:45"]}, "2026-03-28 12:00", "2026-04-05 00:00", None),
    # Europe/Berlin fall back, Sun 2026-10-25 03:00 CEST -> 02:00 CET (01:00 UTC).
    # Sat 22:00-04:00 spans the repeated hour: 20:00 UTC to 03:00 UTC, seven real hours.
    ("Europe/Berlin", NIGHTLY, "2026-10-24 20:30", "2026-10-25 21:00", "2026-10-25 03:00"),
    # 02:30 happens twice: opening and closing take the first one (00:30 UTC).
    ("Europe/Berlin", {"sun": ["02:30-05:00"]}, "2026-10-24 12:00", "2026-10-25 00:30", None),
    ("Europe/Berlin", {"sun": ["01:00-02:30"]}, "2026-10-24 23:30", None, "2026-10-25 00:30"),
    # Sunday after fall back: 09:00 CET is 08:00 UTC.
    ("Europe/Berlin", {"sun": ["09:00-12:00"]}, "2026-10-24 12:00", "2026-10-25 08:00", None),
    # America/New_York spring forward, Sun 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC).
    ("America/New_York", {"sun": ["01:00-04:00"]}, "2026-03-08 06:30", None, "2026-03-08 08:00"),
    ("America/New_York", {"sun": ["02:30-05:00"]}, "2026-03-08 00:00", "2026-03-08 07:00", None),
    ("America/New_York", NIGHTLY, "2026-03-08 03:30", "2026-03-09 02:00", "2026-03-08 08:00"),
    # America/New_York fall back, Sun 2026-11-01 02:00 EDT -> 01:00 EST (06:00 UTC).
    ("America/New_York", NIGHTLY, "2026-11-01 02:30", "2026-11-02 03:00", "2026-11-01 09:00"),
    ("America/New_York", {"sun": ["01:30-03:00"]}, "2026-11-01 00:00", "2026-11-01 05:30", None),
    ("America/New_York", {"sun": ["00:30-01:30"]}, "2026-11-01 04:45", None, "2026-11-01 05:30"),
]


@pytest.mark.parametrize(("tz", "week", "after", "opens", "closes"), DST_CASES)
def test_dst_transitions(
    tz: str, week: dict[str, list[str]], after: str, opens: str | None, closes: str | None
) -> None:
    hours = make(tz, week)
    if opens is not None:
        assert as_utc(next_open(hours, utc(after))) == utc(opens)
    if closes is not None:
        assert as_utc(next_close(hours, utc(after))) == utc(closes)


@pytest.mark.parametrize(
    ("tz", "week", "at", "expected"),
    [
        # Europe/Berlin, 2026-10-25: 02:15 CEST (00:15 UTC) and 02:15 CET (01:15 UTC).
        ("Europe/Berlin", {"sun": ["01:00-02:30"]}, "2026-10-25 00:15", True),
        ("Europe/Berlin", {"sun": ["01:00-02:30"]}, "2026-10-25 01:15", False),
        ("Europe/Berlin", {"sun": ["02:30-05:00"]}, "2026-10-25 00:29", False),
        ("Europe/Berlin", {"sun": ["02:30-05:00"]}, "2026-10-25 01:15", True),
        ("Europe/Berlin", NIGHTLY, "2026-10-25 02:59", True),
        ("Europe/Berlin", NIGHTLY, "2026-10-25 03:00", False),
        ("Europe/Berlin", NIGHTLY, "2026-03-29 01:59", True),
        ("Europe/Berlin", NIGHTLY, "2026-03-29 02:00", False),
        ("Europe/Berlin", {"sun": ["02:30-05:00"]}, "2026-03-29 00:59", False),
        ("Europe/Berlin", {"sun": ["02:30-05:00"]}, "2026-03-29 01:00", True),
        ("America/New_York", {"sun": ["01:00-04:00"]}, "2026-03-08 07:59", True),
        ("America/New_York", {"sun": ["01:00-04:00"]}, "2026-03-08 08:00", False),
        ("America/New_York", {"sun": ["00:30-01:30"]}, "2026-11-01 05:29", True),
        ("America/New_York", {"sun": ["00:30-01:30"]}, "2026-11-01 06:15", False),
    ],
)
def test_is_open_around_dst(tz: str, week: dict[str, list[str]], at: str, expected: bool) -> None:
    assert is_open(make(tz, week), utc(at)) is expected


def test_results_are_in_the_business_zone() -> None:
    hours = make("Europe/Berlin", {"sun": ["02:30-05:00"]})
    opens = next_open(hours, utc("2026-03-28 12:00"))
    assert opens is not None
    assert opens.tzinfo == ZoneInfo("Europe/Berlin")
    assert opens.isoformat() == "2026-03-29T03:00:00+02:00"
    closes = next_close(hours, opens)
    assert closes is not None
    assert closes.isoformat() == "2026-03-29T05:00:00+02:00"


# --- holidays, closures, special days, overnight intervals -------------------------------------

SHOP_CASES = [
    # Saturday afternoon before Pfingstmontag (2026-05-25): next opening is Tuesday.
    ("2026-05-23 15:00", False, "2026-05-26 09:00", "2026-05-26 18:00"),
    ("2026-05-25 10:00", False, "2026-05-26 09:00", "2026-05-26 18:00"),
    # Monday lunch break.
    ("2026-05-18 13:00", False, "2026-05-18 14:00", "2026-05-18 18:00"),
    ("2026-05-18 12:30", False, "2026-05-18 14:00", "2026-05-18 18:00"),
    ("2026-05-18 12:29", True, "2026-05-18 14:00", "2026-05-18 12:30"),
    # At an opening instant it is open, at a closing instant closed: both look further.
    ("2026-05-18 09:00", True, "2026-05-18 14:00", "2026-05-18 12:30"),
    # Friday night runs past midnight into Saturday.
    ("2026-06-12 23:00", True, "2026-06-13 10:00", "2026-06-13 02:00"),
    ("2026-06-13 01:00", True, "2026-06-13 10:00", "2026-06-13 02:00"),
    ("2026-06-13 02:00", False, "2026-06-13 10:00", "2026-06-13 14:00"),
    # Christmas closures 24-26 December (Thu-Sat), then Sunday: next opening Monday the 28th.
    ("2026-12-23 19:00", False, "2026-12-28 09:00", "2026-12-28 12:30"),
    ("2026-12-25 23:00", False, "2026-12-28 09:00", "2026-12-28 12:30"),
    # New Year's Eve special hours 09:00-12:00, then New Year's Day (Friday) is a holiday.
    ("2026-12-31 10:00", True, "2027-01-02 10:00", "2026-12-31 12:00"),
    ("2026-12-31 13:00", False, "2027-01-02 10:00", "2027-01-02 14:00"),
    # Good Friday 2026-04-03: no Friday night either, it starts on the holiday.
    ("2026-04-03 23:00", False, "2026-04-04 10:00", "2026-04-04 14:00"),
    # Heilige Drei Könige 2026-01-06 (Tuesday) is a holiday in Bavaria.
    ("2026-01-06 10:00", False, "2026-01-07 09:00", "2026-01-07 18:00"),
]


@pytest.mark.parametrize(("at", "open_now", "opens", "closes"), SHOP_CASES)
def test_shop_calendar(at: str, open_now: bool, opens: str, closes: str) -> None:
    tz = "Europe/Berlin"
    assert is_open(SHOP, local(tz, at)) is open_now
    assert next_open(SHOP, local(tz, at)) == local(tz, opens)
    assert next_close(SHOP, local(tz, at)) == local(tz, closes)


def test_overnight_tail_runs_into_a_closed_day() -> None:
    # Saturday 2026-06-13 is a closure day; Friday's 22:00-02:00 started the day before.
    hours = make(
        "Europe/Berlin",
        {"fri": ["22:00-02:00"], "sat": ["10:00-14:00"]},
        closures=(Closure(date(2026, 6, 13), date(2026, 6, 13)),),
    )
    assert is_open(hours, local("Europe/Berlin", "2026-06-13 01:00"))
    assert not is_open(hours, local("Europe/Berlin", "2026-06-13 02:00"))
    assert not is_open(hours, local("Europe/Berlin", "2026-06-13 11:00"))
    assert next_open(hours, local("Europe/Berlin", "2026-06-13 01:00")) == local(
        "Europe/Berlin", "2026-06-19 22:00"
    )


@pytest.mark.parametrize(
    ("subdivision", "at", "open_now", "opens"),
    [
        ("BY", "2026-01-06 10:00", False, "2026-01-07 09:00"),
        ("BE", "2026-01-06 10:00", True, "2026-01-07 09:00"),
        ("BY", "2026-01-05 19:00", False, "2026-01-07 09:00"),
        ("BE", "2026-01-05 19:00", False, "2026-01-06 09:00"),
        # Fronleichnam 2026-06-04: Bavaria, not Berlin.
        ("BY", "2026-06-04 10:00", False, "2026-06-05 09:00"),
        ("BE", "2026-06-04 10:00", True, "2026-06-05 09:00"),
        # Pfingstmontag is nationwide.
        ("BE", "2026-05-25 10:00", False, "2026-05-26 09:00"),
    ],
)
def test_holidays_by_subdivision(subdivision: str, at: str, open_now: bool, opens: str) -> None:
    hours = make("Europe/Berlin", WEEKDAYS_9_18, country="DE", subdivision=subdivision)
    assert is_open(hours, local("Europe/Berlin", at)) is open_now
    assert next_open(hours, local("Europe/Berlin", at)) == local("Europe/Berlin", opens)


def test_special_day_wins_over_holiday_and_closure_wins_over_special_day() -> None:
    tz = "Europe/Berlin"
    hours = make(
        tz,
        WEEKDAYS_9_18,
        country="DE",
        subdivision="BY",
        special={"2026-05-25": ["10:00-12:00"], "2026-08-05": ["10:00-12:00"]},
        closures=(Closure(date(2026, 8, 3), date(2026, 8, 9), "Betriebsferien"),),
    )
    assert is_open(hours, local(tz, "2026-05-25 11:00"))
    assert not is_open(hours, local(tz, "2026-05-25 09:30"))
    assert next_close(hours, local(tz, "2026-05-25 11:00")) == local(tz, "2026-05-25 12:00")
    assert not is_open(hours, local(tz, "2026-08-05 11:00"))


def test_special_day_closed_and_special_hours_on_a_weekend() -> None:
    tz = "Europe/Berlin"
    hours = make(tz, WEEKDAYS_9_18, special={"2026-06-10": [], "2026-06-14": ["12:00-16:00"]})
    assert not is_open(hours, local(tz, "2026-06-10 10:00"))
    assert next_open(hours, local(tz, "2026-06-09 19:00")) == local(tz, "2026-06-11 09:00")
    assert next_open(hours, local(tz, "2026-06-13 08:00")) == local(tz, "2026-06-14 12:00")


def test_a_week_of_closures() -> None:
    tz = "Europe/Berlin"
    hours = make(tz, WEEKDAYS_9_18, closures=(Closure(date(2026, 8, 3), date(2026, 8, 9)),))
    assert next_open(hours, local(tz, "2026-07-31 18:30")) == local(tz, "2026-08-10 09:00")
    for day in range(3, 10):
        assert not is_open(hours, local(tz, f"2026-08-{day:02d} 12:00"))
    assert next_close(hours, local(tz, "2026-07-31 18:30")) == local(tz, "2026-08-10 18:00")


def test_several_closures_in_a_row() -> None:
    tz = "Europe/Berlin"
    closures = (
        Closure(date(2026, 8, 3), date(2026, 8, 5)),
        Closure(date(2026, 8, 6), date(2026, 8, 6)),
        Closure(date(2026, 8, 7), date(2026, 8, 12)),
    )
    hours = make(tz, WEEKDAYS_9_18, closures=closures)
    assert next_open(hours, local(tz, "2026-08-01 12:00")) == local(tz, "2026-08-13 09:00")


@pytest.mark.parametrize(
    ("tz", "after", "opens", "closes", "offset"),
    [
        # Asia/Tokyo, UTC+9 all year: Monday 09:00 JST is Monday 00:00 UTC.
        ("Asia/Tokyo", "2026-05-31 12:00", "2026-06-01 00:00", "2026-06-01 08:00", 9 * 60),
        ("Asia/Tokyo", "2026-12-31 23:30", "2027-01-01 00:00", "2027-01-01 08:00", 9 * 60),
        # Asia/Kolkata, UTC+5:30: 09:00 IST is 03:30 UTC, 17:00 IST is 11:30 UTC.
        ("Asia/Kolkata", "2026-05-31 12:00", "2026-06-01 03:30", "2026-06-01 11:30", 330),
        ("Asia/Kolkata", "2026-06-01 11:29", "2026-06-02 03:30", "2026-06-01 11:30", 330),
    ],
)
def test_zones_without_dst(tz: str, after: str, opens: str, closes: str, offset: int) -> None:
    hours = make(tz, {d: ["09:00-17:00"] for d in DAYS[:5]})
    opened = next_open(hours, utc(after))
    closed = next_close(hours, utc(after))
    assert opened == utc(opens)
    assert closed == utc(closes)
    assert opened is not None and opened.utcoffset() == timedelta(minutes=offset)


@pytest.mark.parametrize(
    ("week", "at", "closes", "opens"),
    [
        # Adjacent and overlapping intervals make one stretch.
        ({"mon": ["09:00-12:00", "12:00-14:00"]}, "06-01 10:00", "06-01 14:00", "06-08 09:00"),
        ({"mon": ["12:00-14:00", "09:00-13:00"]}, "06-01 10:00", "06-01 14:00", "06-08 09:00"),
        ({"mon": ["09:00-12:00", "10:00-11:00"]}, "06-01 10:00", "06-01 12:00", "06-08 09:00"),
        # Until midnight, then on from midnight: no close at midnight.
        (
            {"mon": ["18:00-00:00"], "tue": ["00:00-02:00"]},
            "06-01 20:00",
            "06-02 02:00",
            "06-08 18:00",
        ),
        (
            {"mon": ["18:00-24:00"], "tue": ["00:00-02:00"]},
            "06-01 20:00",
            "06-02 02:00",
            "06-08 18:00",
        ),
        ({"mon": ["22:00-00:00"]}, "06-01 23:00", "06-02 00:00", "06-08 22:00"),
        (
            {"mon": ["22:00-03:00"], "tue": ["01:00-05:00"]},
            "06-01 23:00",
            "06-02 05:00",
            "06-08 22:00",
        ),
        (
            {"sun": ["00:00-24:00"], "mon": ["00:00-24:00"], "tue": ["00:00-12:00"]},
            "05-31 12:00",
            "06-02 12:00",
            "06-07 00:00",
        ),
    ],
)
def test_merging(week: dict[str, list[str]], at: str, closes: str, opens: str) -> None:
    tz = "Europe/Berlin"
    hours = make(tz, week)
    after = local(tz, f"2026-{at}")
    assert is_open(hours, after)
    assert next_close(hours, after) == local(tz, f"2026-{closes}")
    assert next_open(hours, after) == local(tz, f"2026-{opens}")


def test_always_closed_and_always_open() -> None:
    after = utc("2026-03-28 12:00")
    closed = make("Europe/Berlin", {})
    assert not is_open(closed, after)
    assert next_open(closed, after) is None
    assert next_close(closed, after) is None

    always = make("Europe/Berlin", {d: ["00:00-24:00"] for d in DAYS}, country="DE")
    # Holidays close the whole day, so only without them is it always open.
    assert next_close(always, after) == local("Europe/Berlin", "2026-04-03 00:00")
    always = make("Europe/Berlin", {d: ["00:00-24:00"] for d in DAYS})
    for at in (after, utc("2026-10-25 01:30"), utc("2026-12-31 23:00")):
        assert is_open(always, at)
        assert next_close(always, at) is None
        assert next_open(always, at) is None


def test_always_open_until_a_closure() -> None:
    tz = "America/New_York"
    hours = make(
        tz,
        {d: ["00:00-24:00"] for d in DAYS},
        closures=(Closure(date(2026, 11, 26), date(2026, 11, 26), "Thanksgiving"),),
    )
    after = local(tz, "2026-06-01 12:00")
    assert next_close(hours, after) == local(tz, "2026-11-26 00:00")
    assert next_open(hours, after) == local(tz, "2026-11-27 00:00")


def test_nothing_found_beyond_a_year() -> None:
    tz = "Europe/Berlin"
    hours = make(tz, {}, special={"2027-09-01": ["09:00-10:00"]})
    assert next_open(hours, local(tz, "2026-06-01 12:00")) is None
    assert next_open(hours, local(tz, "2026-09-03 12:00")) == local(tz, "2027-09-01 09:00")


@pytest.mark.parametrize("func", [is_open, next_open, next_close])
def test_naive_datetimes_are_refused(func: object) -> None:
    naive = datetime(2026, 6, 1, 12, 0)  # noqa: DTZ001 (the point of the test)
    with pytest.raises(ValueError, match="timezone-aware"):
        func(SHOP, naive)  # type: ignore[operator]


# --- parsing, formatting, validation, week lines -----------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "end", "canonical"),
    [
        ("09:00-12:30", time(9), time(12, 30), "09:00-12:30"),
        ("22:00-02:00", time(22), time(2), "22:00-02:00"),
        ("00:00-24:00", time(0), time(0), "00:00-24:00"),
        ("22:00-00:00", time(22), time(0), "22:00-00:00"),
        ("22:00-24:00", time(22), time(0), "22:00-00:00"),
        (" 9:05 - 17:45 ", time(9, 5), time(17, 45), "09:05-17:45"),
        ("09:00–12:00", time(9), time(12), "09:00-12:00"),  # as week_lines writes it
    ],
)
def test_parse_and_format(text: str, start: time, end: time, canonical: str) -> None:
    iv = parse_interval(text)
    assert iv == Interval(start, end)
    assert format_interval(iv) == canonical
    assert parse_interval(format_interval(iv)) == iv


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("25:00-26:00", "bad time '25:00' in '25:00-26:00' (expected HH:MM-HH:MM)"),
        ("09:00-09:00", "empty interval '09:00-09:00'"),
        ("00:00-00:00", "write 00:00-24:00 for the whole day"),
        ("9-17", "bad time '9' in '9-17'"),
        ("09:60-10:00", "bad time '09:60'"),
        ("24:00-02:00", "bad time '24:00'"),
        ("09:00-24:30", "bad time '24:30'"),
        ("09:00", "bad interval '09:00'"),
        ("", "bad interval ''"),
        ("09:00-10:00-11:00", "bad interval"),
        ("nine-ten", "bad time 'nine'"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_interval(text)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: OpeningHours("Europe/Berlin", ((),) * 6), "need 7 days"),
        (lambda: OpeningHours("Mars/Olympus", ((),) * 7), "unknown time zone 'Mars/Olympus'"),
        (lambda: OpeningHours("Europe", ((),) * 7), "unknown time zone 'Europe'"),
        (lambda: OpeningHours("UTC", ((),) * 7, "XX"), "public holiday region"),
        (lambda: OpeningHours("UTC", ((),) * 7, "DE", "XY"), "public holiday region"),
        (lambda: OpeningHours("UTC", ((),) * 7, None, "BY"), "without a country"),
        (
            lambda: OpeningHours(
                "UTC", ((),) * 7, special_days=(SpecialDay(date(2026, 1, 2), ()),) * 2
            ),
            "special hours given twice for 2026-01-02",
        ),
        (lambda: Closure(date(2026, 1, 2), date(2026, 1, 1)), "ends (2026-01-01) before"),
        (lambda: Interval(time(9), time(9)), "empty interval 09:00-09:00"),
        (lambda: Interval(time(9, 0, 30), time(10)), "whole local minutes"),
    ],
)
def test_validation(build: object, message: str) -> None:
    with pytest.raises(ValueError) as info:
        build()  # type: ignore[operator]
    assert message in str(info.value)


def test_week_lines() -> None:
    hours = make(
        "Europe/Berlin",
        {
            "mon": ["14:00-18:00", "09:00-12:30"],
            "fri": ["09:00-18:00", "22:00-02:00"],
            "sat": ["00:00-24:00"],
        },
    )
    assert week_lines(hours, "de_DE") == [
        "Montag: 09:00–12:30, 14:00–18:00",
        "Dienstag: geschlossen",
        "Mittwoch: geschlossen",
        "Donnerstag: geschlossen",
        "Freitag: 09:00–18:00, 22:00–02:00",
        "Samstag: 00:00–24:00",
        "Sonntag: geschlossen",
    ]
    assert week_lines(hours, "en")[0] == "Monday: 09:00–12:30, 14:00–18:00"
    assert week_lines(hours, "en_US")[6] == "Sunday: closed"


@pytest.mark.parametrize(
    ("locale", "sunday"),
    [
        ("de", "Sonntag: geschlossen"),
        ("de-AT", "Sonntag: geschlossen"),
        ("en_GB", "Sunday: closed"),
        ("fr_FR", "dimanche: closed"),  # no word for "closed" in French: English
        ("xx_YY", "Sunday: closed"),  # unknown locale: English
    ],
)
def test_week_lines_locales(locale: str, sunday: str) -> None:
    assert week_lines(make("UTC", {}), locale)[6] == sunday


# --- properties ---------------------------------------------------------------------------------

ZONES = ["Europe/Berlin", "America/New_York"]
TRANSITIONS = [
    utc("2026-03-08 07:00"),
    utc("2026-03-29 01:00"),
    utc("2026-10-25 01:00"),
    utc("2026-11-01 06:00"),
    utc("2027-03-14 07:00"),
    utc("2027-03-28 01:00"),
    utc("2027-10-31 01:00"),
    utc("2027-11-07 06:00"),
]


@st.composite
def intervals(draw: st.DrawFn) -> Interval:
    # Quarter hours make adjacent and overlapping intervals likely, and hit the DST hours.
    start = draw(st.integers(0, 95)) * 15
    if start == 0 and draw(st.booleans()):
        return Interval(time(0), time(0))
    length = draw(st.integers(1, 95)) * 15
    end = (start + length) % 1440
    return Interval(time(start // 60, start % 60), time(end // 60, end % 60))


def schedules(zones: list[str]) -> st.SearchStrategy[OpeningHours]:
    day = st.lists(intervals(), max_size=3).map(tuple)
    special = st.builds(
        SpecialDay,
        st.dates(date(2026, 1, 1), date(2027, 12, 31)),
        st.lists(intervals(), max_size=2).map(tuple),
    )
    closure = st.dates(date(2026, 1, 1), date(2027, 12, 31)).flatmap(
        lambda d: st.integers(0, 10).map(lambda n: Closure(d, d + timedelta(days=n)))
    )
    return st.builds(
        OpeningHours,
        timezone=st.sampled_from(zones),
        weekly=st.tuples(day, day, day, day, day, day, day),
        holiday_country=st.sampled_from([None, "DE"]),
        closures=st.lists(closure, max_size=2).map(tuple),
        special_days=st.lists(special, max_size=2, unique_by=lambda s: s.day).map(tuple),
    )


instants = st.one_of(
    st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31), timezones=st.just(UTC)),  # noqa: DTZ001
    st.builds(
        lambda t, minutes: t + timedelta(minutes=minutes),
        st.sampled_from(TRANSITIONS),
        st.integers(-3 * 1440, 3 * 1440),
    ),
)


def sample_between(a: datetime, b: datetime, n: int = 8) -> list[datetime]:
    step = (b - a) / n
    return [a + step * i for i in range(n)] + [b - TICK]


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hours=schedules(ZONES), t=instants)
def test_next_open_properties(hours: OpeningHours, t: datetime) -> None:
    opens = as_utc(next_open(hours, t))
    if opens is None:
        if not is_open(hours, t):
            assert not any(is_open(hours, t + timedelta(hours=h)) for h in range(0, 8700, 7))
        return
    assert opens > t
    assert is_open(hours, opens)
    assert not is_open(hours, opens - TICK)
    if is_open(hours, t):
        closes = as_utc(next_close(hours, t))
        assert closes is not None and t < closes < opens
        assert all(is_open(hours, x) for x in sample_between(t, closes))
        assert not any(is_open(hours, x) for x in sample_between(closes, opens))
    else:
        assert not any(is_open(hours, x) for x in sample_between(t, opens))


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hours=schedules(ZONES), t=instants)
def test_next_close_properties(hours: OpeningHours, t: datetime) -> None:
    closes = as_utc(next_close(hours, t))
    if closes is None:
        if is_open(hours, t):
            assert all(is_open(hours, t + timedelta(hours=h)) for h in range(0, 8700, 7))
        return
    assert closes > t
    assert not is_open(hours, closes)
    assert is_open(hours, closes - TICK)
    if is_open(hours, t):
        assert all(is_open(hours, x) for x in sample_between(t, closes))
    else:
        opens = as_utc(next_open(hours, t))
        assert opens is not None and t < opens < closes
        assert all(is_open(hours, x) for x in sample_between(opens, closes))
    # The stretch after the close is closed until the next opening.
    reopens = as_utc(next_open(hours, closes))
    if reopens is not None:
        assert reopens > closes
        assert not any(is_open(hours, x) for x in sample_between(closes, reopens))


def brute_force(hours: OpeningHours, t: datetime, minutes: int) -> tuple[datetime | None, ...]:
    """The first opening and closing after minute-aligned t, one minute at a time."""
    found_open: datetime | None = None
    found_close: datetime | None = None
    before = is_open(hours, t)
    for i in range(1, minutes):
        m = t + timedelta(minutes=i)
        now = is_open(hours, m)
        if now and not before and found_open is None:
            found_open = m
        if before and not now and found_close is None:
            found_close = m
        before = now
    return found_open, found_close


@settings(max_examples=examples(15), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hours=schedules(ZONES),
    transition=st.sampled_from(TRANSITIONS),
    minutes=st.integers(-2 * 1440, 1440),
)
def test_against_brute_force(hours: OpeningHours, transition: datetime, minutes: int) -> None:
    t = transition + timedelta(minutes=minutes)
    window = 3 * 1440
    found_open, found_close = brute_force(hours, t, window)
    end = t + timedelta(minutes=window)
    for found, actual in ((found_open, next_open(hours, t)), (found_close, next_close(hours, t))):
        if found is not None:
            assert as_utc(actual) == found
        else:
            assert actual is None or actual >= end


def wall_clock_open(hours: OpeningHours, at: datetime) -> bool:
    """Independent is_open by comparing local wall-clock times (valid away from DST changes)."""
    wall = at.astimezone(ZoneInfo(hours.timezone)).replace(tzinfo=None)
    for day in (wall.date() - timedelta(days=1), wall.date()):
        for iv in hours.weekly[day.weekday()]:
            start = datetime.combine(day, iv.start)  # wall clock on purpose
            end_day = day if iv.end > iv.start else day + timedelta(days=1)
            end = datetime.combine(end_day, iv.end)
            if start <= wall < end:
                return True
    return False


@settings(max_examples=examples(100), deadline=None)
@given(
    hours=schedules(["Europe/Berlin", "America/New_York", "Asia/Tokyo", "Asia/Kolkata"]).map(
        lambda h: OpeningHours(h.timezone, h.weekly)
    ),
    t=instants,
)
def test_is_open_matches_wall_clock(hours: OpeningHours, t: datetime) -> None:
    tz = ZoneInfo(hours.timezone)
    if (t - timedelta(days=3)).astimezone(tz).utcoffset() != (t + timedelta(days=3)).astimezone(
        tz
    ).utcoffset():
        return  # a DST change nearby: wall-clock comparison does not apply
    assert is_open(hours, t) is wall_clock_open(hours, t)


# --- when the current closed period began ---------------------------------------------------

CLOSED_SINCE_CASES = [
    # Friday after hours, the weekend, Monday before opening: all since Friday 18:00.
    ("Europe/Berlin", WEEKDAYS_9_18, "2026-11-27 20:00", "2026-11-27 18:00"),
    ("Europe/Berlin", WEEKDAYS_9_18, "2026-11-29 12:00", "2026-11-27 18:00"),
    ("Europe/Berlin", WEEKDAYS_9_18, "2026-11-30 08:59", "2026-11-27 18:00"),
    # At the closing instant it is closed: the period begins right then.
    ("Europe/Berlin", WEEKDAYS_9_18, "2026-11-27 18:00", "2026-11-27 18:00"),
    # While open, the latest close before now.
    ("Europe/Berlin", WEEKDAYS_9_18, "2026-11-30 10:00", "2026-11-27 18:00"),
    # The lunch break is a closed period of its own.
    (
        "Europe/Berlin",
        {"mon": ["09:00-12:30", "14:00-18:00"]},
        "2026-11-30 13:00",
        "2026-11-30 12:30",
    ),
    # An interval past midnight closes on the next date.
    (
        "Europe/Berlin",
        {"fri": ["09:00-18:00", "22:00-02:00"]},
        "2026-11-28 03:00",
        "2026-11-28 02:00",
    ),
    (
        "Europe/Berlin",
        {"fri": ["09:00-18:00", "22:00-02:00"]},
        "2026-11-27 21:00",
        "2026-11-27 18:00",
    ),
    # Adjacent intervals across midnight are one stretch: no close at midnight.
    (
        "Europe/Berlin",
        {"sat": ["20:00-24:00"], "sun": ["00:00-03:00"]},
        "2026-11-29 05:00",
        "2026-11-29 03:00",
    ),
    # DST spring forward (Sun 2026-03-29): Saturday 22:00-04:00 closes 04:00 CEST = 02:00 UTC.
    ("Europe/Berlin", {"sat": ["22:00-04:00"]}, "2026-03-29 10:00", "2026-03-29 04:00"),
    # A close inside the gap takes effect at 03:00 CEST.
    ("Europe/Berlin", {"sat": ["20:00-02:30"]}, "2026-03-29 10:00", "2026-03-29 03:00"),
    # DST fall back (Sun 2026-10-25): 02:30 happens twice; the first (CEST) is the close.
    ("Europe/Berlin", {"sat": ["22:00-02:30"]}, "2026-10-25 10:00", "2026-10-25 02:30"),
    # New York, spring forward on Sun 2026-03-08.
    ("America/New_York", {"sat": ["18:00-03:00"]}, "2026-03-08 12:00", "2026-03-08 03:00"),
]


@pytest.mark.parametrize(("tz", "week", "at", "expected"), CLOSED_SINCE_CASES)
def test_closed_since_at_chosen_instants(
    tz: str, week: dict[str, list[str]], at: str, expected: str
) -> None:
    result = closed_since(make(tz, week), local(tz, at))
    assert as_utc(result) == as_utc(local(tz, expected))
    assert result.tzinfo == ZoneInfo(tz)


def test_closed_since_across_a_weekend_with_a_public_holiday_and_closures() -> None:
    # Whit Monday 2026-05-25 is a public holiday in Bavaria: closed from Friday to Tuesday.
    shop = make("Europe/Berlin", WEEKDAYS_9_18, country="DE", subdivision="BY")
    friday_close = local("Europe/Berlin", "2026-05-22 18:00")
    for at in ("2026-05-22 19:00", "2026-05-24 12:00", "2026-05-25 12:00", "2026-05-26 08:00"):
        assert as_utc(closed_since(shop, local("Europe/Berlin", at))) == as_utc(friday_close)
    assert as_utc(closed_since(SHOP, local("Europe/Berlin", "2026-12-26 12:00"))) == as_utc(
        local("Europe/Berlin", "2026-12-23 18:00")
    )
    # Special hours end the day early.
    assert as_utc(closed_since(SHOP, local("Europe/Berlin", "2026-12-31 15:00"))) == as_utc(
        local("Europe/Berlin", "2026-12-31 12:00")
    )


def test_closed_since_looks_back_a_year_at_most() -> None:
    at = local("Europe/Berlin", "2026-11-29 12:00")
    never = make("Europe/Berlin", {})
    assert as_utc(closed_since(never, at)) == as_utc(at - timedelta(days=365))
    always = make("Europe/Berlin", {d: ["00:00-24:00"] for d in DAYS})
    assert as_utc(closed_since(always, at)) == as_utc(at - timedelta(days=365))
    # A closure of more than a year: closed since a year ago, not since the day before it.
    long = make(
        "Europe/Berlin", WEEKDAYS_9_18, closures=(Closure(date(2025, 6, 1), date(2026, 12, 31)),)
    )
    assert as_utc(closed_since(long, at)) == as_utc(at - timedelta(days=365))


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hours=schedules(ZONES), t=instants)
def test_closed_since_properties(hours: OpeningHours, t: datetime) -> None:
    began = as_utc(closed_since(hours, t))
    assert began is not None and t - timedelta(days=365) <= began <= t
    if began == t - timedelta(days=365):
        return
    assert is_open(hours, began - TICK)
    assert not is_open(hours, began)
    if not is_open(hours, t):
        # Closed all the way from then to now: the next opening after it is after now.
        reopens = as_utc(next_open(hours, began))
        assert reopens is None or reopens > t
