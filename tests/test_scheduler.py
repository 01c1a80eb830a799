"""The scheduler: trigger times at chosen instants, one run per occurrence, a missed run after
downtime runs once, the one-scheduler lock, and real worker processes (two of them; SIGKILL)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from apscheduler.job import Job
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from bot import broadcasts
from bot.broadcasts import cron, scheduler
from bot.broadcasts.cron import cron_trigger, next_times
from bot.broadcasts.leader import LeaseLock, make_lock
from bot.broadcasts.scheduler import SchedulerService
from bot.contacts.audiences import Audience
from bot.db import Database, get_db
from bot.models import (
    Broadcast,
    BroadcastRun,
    Contact,
    HeldStatus,
    Message,
    apscheduler_jobs,
)
from tests.fakegraph import FakeGraph
from tests.processes import Process
from tests.test_dispatcher import (
    TOKEN,
    assert_only_the_launched_may_miss,
    launched_by,
    wait_until,
    worker,
)

BERLIN = "Europe/Berlin"
DAY = timedelta(days=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("cron", "after", "expected"),
    [
        # Mondays 09:00 in Berlin: winter time is UTC+1
        ("0 9 * * 1", utc(2026, 12, 1, 9, 30), [utc(2026, 12, 7, 8), utc(2026, 12, 14, 8)]),
        # daily 08:30 across the spring change (2026-03-29): 07:30Z, then 06:30Z
        ("30 8 * * *", utc(2026, 3, 28, 7), [utc(2026, 3, 28, 7, 30), utc(2026, 3, 29, 6, 30)]),
        # first of the month at 00:00 local
        ("0 0 1 * *", utc(2026, 12, 15), [utc(2026, 12, 31, 23), utc(2027, 1, 31, 23)]),
        # every 15 minutes
        (
            "*/15 * * * *",
            utc(2026, 12, 1, 9, 1),
            [utc(2026, 12, 1, 9, 15), utc(2026, 12, 1, 9, 30)],
        ),
    ],
)
def test_cron_times_in_the_business_time_zone(
    cron: str, after: datetime, expected: list[datetime]
) -> None:
    assert next_times(cron_trigger(cron, BERLIN), after, 2) == expected


def test_a_one_off_time_already_past_still_fires() -> None:
    at = utc(2026, 12, 1, 8)
    b = Broadcast(at=at, cron=None, timezone=BERLIN)
    assert next_times(cron.trigger_for(b), at + timedelta(hours=5), 1) == [at]


@pytest.fixture
def service(app: Flask) -> Iterator[SchedulerService]:
    s = SchedulerService(Database(get_db(app).url), tick=0.1)
    yield s
    s._step_down()
    s.lock.release()
    s.database.dispose()


def new_broadcast(app: Flask, *, cron: str | None = None, at: datetime | None = None) -> int:
    with get_db(app).session() as session:
        return broadcasts.create(
            session,
            broadcasts.Content(template="offer", language="de"),
            Audience(),
            timezone=BERLIN,
            now=utc(2026, 12, 1, 9, 30),
            at=at,
            cron=cron,
        ).id


def runs(app: Flask) -> list[tuple[int, datetime]]:
    with get_db(app).session() as session:
        return [
            (r.broadcast_id, r.due_at)
            for r in session.scalars(select(BroadcastRun).order_by(BroadcastRun.id))
        ]


def test_a_recurring_broadcast_gets_one_run_per_occurrence(
    app: Flask, service: SchedulerService
) -> None:
    b = new_broadcast(app, cron="*/15 * * * *")
    nine = utc(2026, 12, 1, 9, 0)
    first = service.start_occurrence(b, nine + timedelta(seconds=1))
    # The same occurrence fired again (a retry, a second firing) is the same run.
    assert service.start_occurrence(b, nine + timedelta(seconds=40)) == first
    second = service.start_occurrence(b, nine + timedelta(minutes=15, seconds=2))
    assert second != first
    assert runs(app) == [(b, nine), (b, nine + timedelta(minutes=15))]
    with get_db(app).session() as session:
        broadcasts.cancel(session, b, nine + timedelta(minutes=20))
    assert service.start_occurrence(b, nine + timedelta(minutes=30)) is None
    assert len(runs(app)) == 2


def test_a_run_missed_while_down_runs_once_when_back(
    app: Flask, service: SchedulerService, monkeypatch: pytest.MonkeyPatch
) -> None:
    b = new_broadcast(app, cron="0 * * * *")
    with get_db(app).session() as session:
        stored = session.get_one(Broadcast, b)
    # The last worker stored the hourly job and went down three occurrences ago.
    store = SQLAlchemyJobStore(engine=get_db(app).engine)
    down = BackgroundScheduler(jobstores={"default": store}, timezone=UTC)
    store.start(down, "default")
    store.add_job(
        Job(
            down,
            **scheduler.job_options(stored),
            next_run_time=datetime.now(UTC) - timedelta(hours=3, minutes=1),
        )
    )
    fired: list[int] = []
    original = SchedulerService.start_occurrence

    def counted(self: SchedulerService, broadcast_id: int, now: datetime) -> int | None:
        fired.append(broadcast_id)
        return original(self, broadcast_id, now)

    monkeypatch.setattr(SchedulerService, "start_occurrence", counted)
    assert service.lock.acquire(datetime.now(UTC))
    service._lead()
    wait_until(lambda: len(runs(app)) >= 1, timeout=10)
    time.sleep(0.5)
    assert fired == [b]
    assert len(runs(app)) == 1
    with get_db(app).session() as session:
        next_run = session.scalar(select(apscheduler_jobs.c.next_run_time))
    assert next_run is not None and next_run > time.time()


def test_sync_gives_new_broadcasts_their_job_and_a_due_one_runs_now(
    app: Flask, service: SchedulerService
) -> None:
    with get_db(app).session() as session:
        session.add(Contact(wa_id="4915111111111", name="Anna", opted_in=True))
    b = new_broadcast(app, at=datetime.now(UTC) - timedelta(minutes=1))
    later = new_broadcast(app, at=datetime.now(UTC) + timedelta(days=1))
    assert service.lock.acquire(datetime.now(UTC))
    service._lead()
    service.sync_jobs()
    wait_until(lambda: len(runs(app)) == 1, timeout=10)
    service.process_runs(__import__("threading").Event())
    with get_db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 1

    def jobs() -> set[str]:
        with get_db(app).session() as session:
            return set(session.scalars(select(apscheduler_jobs.c.id)))

    # APScheduler drops a one-off job from its store after handing it to its executor, which
    # may have started the run already.
    wait_until(lambda: jobs() == {f"{scheduler.JOB_PREFIX}{later}"}, timeout=10)
    assert runs(app)[0][0] == b


def test_runs_their_messages_and_pruning_follow_the_schedulers_clock(app: Flask) -> None:
    """Driven by a clock far in the past, the scheduler starts the run, writes its messages
    and keeps held statuses on that clock's time, not the wall clock's."""
    past = utc(2001, 2, 3, 4, 5, 6)
    with get_db(app).session() as session:
        session.add(Contact(wa_id="4915111111111", name="Anna", opted_in=True))
        # A day old at `past`: kept (statuses are held two days); years old by the wall clock.
        session.add(
            HeldStatus(wamid="wamid.ELSEWHERE", status="delivered", at=past, received_at=past - DAY)
        )
    b = new_broadcast(app, at=past)
    service = SchedulerService(Database(get_db(app).url), tick=0.1, clock=lambda: past)
    try:
        assert service.lock.acquire(past)
        service._lead()
        service.sync_jobs()
        wait_until(lambda: len(runs(app)) == 1, timeout=10)
        service.tend(threading.Event())
    finally:
        service._step_down()
        service.lock.release()
        service.database.dispose()
    with get_db(app).session() as session:
        run = session.scalars(select(BroadcastRun)).one()
        message = session.scalars(select(Message)).one()
        held = session.scalar(select(func.count()).select_from(HeldStatus))
    assert (run.broadcast_id, run.due_at, run.started_at) == (b, past, past)
    assert (run.status, run.finished_at) == ("written", past)
    assert message.created_at == message.next_attempt_at == message.status_at == past
    assert held == 1


def test_only_one_holder_of_the_scheduler_lock(app: Flask) -> None:
    url = get_db(app).url
    one, two = Database(url), Database(url)
    lease = timedelta(seconds=10)
    a, b = make_lock(one, "a", lease), make_lock(two, "b", lease)
    t = utc(2026, 12, 1, 9)
    try:
        assert a.acquire(t)
        assert not b.acquire(t + timedelta(seconds=1))
        assert a.renew(t + timedelta(seconds=5))
        if isinstance(a, LeaseLock):
            # The holder stopped renewing (it died): after its lease another takes over.
            assert not b.acquire(t + timedelta(seconds=14))
            assert b.acquire(t + timedelta(seconds=16))
            assert not a.renew(t + timedelta(seconds=17))
        else:
            # PostgreSQL drops the advisory lock with the holder's connection.
            a.release()
            assert b.acquire(t + timedelta(seconds=6))
            assert not a.acquire(t + timedelta(seconds=7))
    finally:
        a.release()
        b.release()
        one.dispose()
        two.dispose()


# --- real worker processes -------------------------------------------------------------------


def audience(app: Flask, n: int) -> set[str]:
    numbers = {f"4915{i:09d}" for i in range(n)}
    with get_db(app).session() as session:
        session.add_all(Contact(wa_id=w, name=f"K{w[-3:]}", opted_in=True) for w in numbers)
    return numbers


def show(runner: FlaskCliRunner, broadcast_id: int) -> dict[str, int | str]:
    import json

    result = runner.invoke(args=["broadcast", "show", str(broadcast_id), "--json"])
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


def create(runner: FlaskCliRunner) -> int:
    result = runner.invoke(
        args=["broadcast", "create", "--wa-template", "offer", "--language", "de",
              "--param", "{{ contact.name }}"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return int(result.stdout)


def elected(*processes: Process) -> list[bool]:
    return ["scheduler elected" in p.output() for p in processes]


@pytest.mark.slow
def test_two_workers_one_scheduler_and_a_takeover(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    numbers = audience(app, 60)
    with FakeGraph(latency=0.02, token=TOKEN) as graph:
        one = worker(app, graph, tmp_path / "w1.log", "--concurrency", "8")
        two = worker(app, graph, tmp_path / "w2.log", "--concurrency", "8")
        with one, two:
            wait_until(lambda: any(elected(one, two)), timeout=20)
            b = create(runner)
            wait_until(lambda: show(runner, b)["status"] == "done", timeout=20)
            assert sorted(elected(one, two)) == [False, True]
            leader, other = (one, two) if elected(one, two)[0] else (two, one)
            assert "run 1 started" in leader.output()
            assert "run 1 started" not in other.output()
            leader.kill()
            # PostgreSQL: at once; SQLite: when the dead leader's 10 s lease is over.
            wait_until(lambda: "scheduler elected" in other.output(), timeout=20)
    assert Counter(r.json["to"] for r in graph.requests if r.json) == Counter(numbers)


@pytest.mark.slow
def test_sigkill_mid_broadcast_then_restart_reaches_everyone_once(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    numbers = audience(app, 200)
    # Slower than 8 requests of 0.3 s allow: some claimed messages wait for their send slot
    # when the worker is killed; they were never sent and reach their customer all the same.
    rate = 20
    with FakeGraph(latency=0.3, token=TOKEN) as graph:
        first = worker(
            app, graph, tmp_path / "w1.log", "--concurrency", "8", "--lease", "2", send_rate=rate
        )
        wait_until(lambda: "scheduler elected" in first.output(), timeout=20)
        b = create(runner)
        wait_until(lambda: graph.count >= 40, timeout=20)
        first.kill()
        first.stop()
        launched = launched_by(app, first)
        assert show(runner, b)["pending"] > 0
        with worker(
            app, graph, tmp_path / "w2.log", "--concurrency", "16", "--lease", "2", send_rate=rate
        ):
            wait_until(lambda: show(runner, b)["status"] == "done", timeout=40)
    funnel = show(runner, b)
    assert (funnel["total"], funnel["pending"]) == (200, 0)
    # What the killed worker had on the wire (8 at most) may have reached Meta: it fails as
    # uncertain and is not sent again. Everyone else gets the message, and no one twice.
    assert funnel["sent"] + funnel["failed"] == 200
    assert funnel["failed"] <= len(launched) <= 8
    per_recipient = Counter(r.json["to"] for r in graph.requests if r.json)
    assert_only_the_launched_may_miss(app, launched, per_recipient, numbers)


@pytest.mark.parametrize(
    ("dow", "names"),
    [
        ("*", "sun,mon,tue,wed,thu,fri,sat"),
        ("1", "mon"),
        ("0", "sun"),
        ("7", "sun"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("5-7", "sun,fri,sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("mon,wed", "mon,wed"),
        ("sat-sun".replace("sat-sun", "6,0"), "sun,sat"),
    ],
)
def test_cron_weekdays_mean_what_cron_means(dow: str, names: str) -> None:
    assert cron._weekdays(dow) == names


@pytest.mark.slow
def test_a_broadcast_to_5000_survives_the_leader_killed_mid_run(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    """Two workers; the elected one is SIGKILLed mid-run: the other takes over the scheduler,
    finishes the run, and every recipient gets the message once, but for those whose request
    the killed worker had sent without an answer yet: they may have it, so they fail as
    uncertain. What it had claimed but not sent yet (waiting for the shared send rate) goes
    out as usual."""
    numbers = audience(app, 5000)
    with FakeGraph(latency=0.05, token=TOKEN, record=True) as graph:
        one = worker(app, graph, tmp_path / "w1.log", "--concurrency", "16", "--lease", "2")
        two = worker(app, graph, tmp_path / "w2.log", "--concurrency", "16", "--lease", "2")
        with one, two:
            wait_until(lambda: any(elected(one, two)), timeout=20)
            leader, other = (one, two) if elected(one, two)[0] else (two, one)
            b = create(runner)
            wait_until(lambda: graph.count >= 1000, timeout=30)
            leader.kill()
            launched = launched_by(app, leader)
            assert show(runner, b)["pending"] > 0
            wait_until(lambda: "scheduler elected" in other.output(), timeout=20)
            wait_until(lambda: show(runner, b)["status"] == "done", timeout=60)
    funnel = show(runner, b)
    assert (funnel["total"], funnel["pending"]) == (5000, 0)
    assert funnel["sent"] + funnel["failed"] == 5000
    assert funnel["failed"] <= len(launched) <= 16  # what the killed worker had on the wire
    with get_db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(BroadcastRun)) == 1
    # A request cut off by the kill arrives without its body: it never reached "Meta".
    per_recipient = Counter(r.json["to"] for r in graph.requests if r.json)
    assert_only_the_launched_may_miss(app, launched, per_recipient, numbers)
