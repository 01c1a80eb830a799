"""The scheduler: APScheduler in the worker, exactly one per deployment, elected by a lock.

On PostgreSQL the leader holds a session-level advisory lock on a connection of its own (it
goes with the connection if the process dies); on SQLite it holds a lease row it keeps
renewing. Each broadcast is an APScheduler job in the SQLAlchemy job store, so its next time
survives restarts: a time missed while no worker ran fires once when one is back (no
misfire limit, coalesced). A firing creates the occurrence's run; the leader's runner thread
writes runs' recipients, resuming any a dead leader left unfinished.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from sqlalchemy import Connection, exists, func, or_, select, text, update
from sqlalchemy.exc import DBAPIError

from bot import broadcasts
from bot.db import Database
from bot.models import Broadcast, BroadcastRun, SchedulerLock, apscheduler_jobs, utcnow
from bot.outbound import outbox
from bot.outbound.dispatcher import worker_name
from bot.sql import insert_ignore

log = logging.getLogger("tresen.scheduler")

ADVISORY_KEY = 7317002  # the migrations hold 7317001
LOCK_NAME = "scheduler"
JOB_PREFIX = "broadcast:"
FIRE = "bot.scheduler:fire"
HOLD_STATUSES_FOR = timedelta(days=2)


# --- triggers (no database, no clock) ------------------------------------------------------


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


def trigger_for(broadcast: Broadcast) -> BaseTrigger:
    if broadcast.cron is not None:
        return cron_trigger(broadcast.cron, broadcast.timezone)
    # A one-off without a time was due when it was created.
    return DateTrigger(run_date=broadcast.at or broadcast.created_at, timezone=UTC)


def job_options(broadcast: Broadcast) -> dict[str, Any]:
    """A broadcast's APScheduler job: a time missed while no worker ran still fires (no grace
    limit), and several missed times fire once (coalesced)."""
    return {
        "func": FIRE,
        "trigger": trigger_for(broadcast),
        "args": [broadcast.id],
        "kwargs": {},
        "id": f"{JOB_PREFIX}{broadcast.id}",
        "name": f"broadcast {broadcast.id}",
        "executor": "default",
        "misfire_grace_time": None,
        "coalesce": True,
        "max_instances": 1,
    }


def occurrence(broadcast: Broadcast, now: datetime) -> datetime:
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


# --- the lock --------------------------------------------------------------------------------


class Lock(Protocol):
    def acquire(self, now: datetime) -> bool: ...
    def renew(self, now: datetime) -> bool: ...
    def release(self) -> None: ...


class AdvisoryLock:
    """PostgreSQL: a session-level advisory lock on a dedicated connection."""

    def __init__(self, database: Database, key: int = ADVISORY_KEY) -> None:
        self.database = database
        self.key = key
        self._conn: Connection | None = None

    def acquire(self, now: datetime) -> bool:
        if self._conn is None:
            self._conn = self.database.engine.connect()
        # Keyed by schema too: deployments (or test runs) sharing one database in
        # different schemas each elect their own scheduler.
        got = bool(
            self._conn.execute(
                select(func.pg_try_advisory_lock(self.key, func.hashtext(func.current_schema())))
            ).scalar()
        )
        self._conn.commit()
        if not got:
            self._close()
        return got

    def renew(self, now: datetime) -> bool:
        """Still held while the connection answers (the server drops the lock with it)."""
        if self._conn is None:
            return False
        try:
            self._conn.execute(text("SELECT 1"))
            self._conn.commit()
        except DBAPIError:
            self._close()
            return False
        return True

    def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(DBAPIError):
                self._conn.execute(
                    text("SELECT pg_advisory_unlock(:k, hashtext(current_schema()))"),
                    {"k": self.key},
                )
                self._conn.commit()
            self._close()

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(DBAPIError):
                conn.close()


class LeaseLock:
    """SQLite: a row naming the holder until `expires_at`; the holder renews it, anyone may
    take it once it has expired."""

    def __init__(self, database: Database, holder: str, lease: timedelta) -> None:
        self.database = database
        self.holder = holder[:64]
        self.lease = lease

    def acquire(self, now: datetime) -> bool:
        with self.database.session() as session:
            session.execute(
                insert_ignore(session, SchedulerLock, ["name"]).values(
                    name=LOCK_NAME, holder=self.holder, expires_at=now + self.lease
                )
            )
            result = session.execute(
                update(SchedulerLock)
                .where(
                    SchedulerLock.name == LOCK_NAME,
                    or_(SchedulerLock.holder == self.holder, SchedulerLock.expires_at < now),
                )
                .values(holder=self.holder, expires_at=now + self.lease)
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(result, "rowcount", 0))

    def renew(self, now: datetime) -> bool:
        with self.database.session() as session:
            result = session.execute(
                update(SchedulerLock)
                .where(SchedulerLock.name == LOCK_NAME, SchedulerLock.holder == self.holder)
                .values(expires_at=now + self.lease)
                .execution_options(synchronize_session=False)
            )
            return bool(getattr(result, "rowcount", 0))

    def release(self) -> None:
        try:
            with self.database.session() as session:
                session.execute(
                    update(SchedulerLock)
                    .where(SchedulerLock.name == LOCK_NAME, SchedulerLock.holder == self.holder)
                    .values(expires_at=datetime(1970, 1, 1, tzinfo=UTC))
                    .execution_options(synchronize_session=False)
                )
        except DBAPIError:
            log.warning("could not release the scheduler lock; it expires by itself")


def make_lock(database: Database, holder: str, lease: timedelta) -> Lock:
    if database.dialect == "postgresql":
        return AdvisoryLock(database)
    return LeaseLock(database, holder, lease)


# --- the service -----------------------------------------------------------------------------

# The leader's service, for APScheduler's jobs: they are stored by reference and arguments,
# so they find the database through it. One scheduler per process.
_leader: SchedulerService | None = None


def fire(broadcast_id: int) -> None:
    """APScheduler's job for a broadcast: create the occurrence's run and wake the runner."""
    service = _leader
    if service is None:
        log.warning("broadcast %s fired with no scheduler running", broadcast_id)
        return
    service.start_occurrence(broadcast_id, service.clock())


class SchedulerService:
    """Runs on a thread of the worker: elects the leader; the leader runs APScheduler and
    writes runs' recipients on a runner thread."""

    def __init__(
        self,
        database: Database,
        *,
        tick: float = 0.25,
        lease: float = 10.0,
        batch_size: int = broadcasts.BATCH_SIZE,
        name: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.clock = clock
        self.tick = tick
        self.lease = timedelta(seconds=lease)
        self.batch_size = batch_size
        self.name = name or worker_name()
        self.lock = make_lock(database, self.name, self.lease)
        self.scheduler: BackgroundScheduler | None = None
        self._wake = threading.Event()
        self._leading = threading.Event()

    @property
    def leading(self) -> bool:
        return self._leading.is_set()

    def run(self, stop: threading.Event) -> None:
        """Campaign for the lock until `stop`; lead while holding it."""
        runner = threading.Thread(target=self._runner, args=(stop,), name="broadcast-runs")
        runner.start()
        try:
            while not stop.is_set():
                now = self.clock()
                try:
                    if self.leading:
                        if not self.lock.renew(now):
                            log.warning("scheduler %s lost the lock; stepping down", self.name)
                            self._step_down()
                    elif self.lock.acquire(now):
                        self._lead()
                except DBAPIError as exc:
                    # A lease may still hold through a short outage; the next renewal decides.
                    log.warning("scheduler lock: database error (%s)", exc.__class__.__name__)
                stop.wait(self.lease.total_seconds() / 3 if self.leading else 1.0)
        finally:
            self._step_down()
            self.lock.release()
            self._wake.set()
            runner.join(30)

    def _lead(self) -> None:
        global _leader
        _leader = self
        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self.database.engine)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )
        scheduler.start()
        self.scheduler = scheduler
        self._leading.set()
        self._wake.set()
        log.info("scheduler elected: %s runs the broadcast schedule", self.name)

    def _step_down(self) -> None:
        global _leader
        self._leading.clear()
        scheduler, self.scheduler = self.scheduler, None
        if scheduler is not None:
            # A run being written goes on only to the end of its batch (`keep_going`).
            scheduler.shutdown(wait=False)
            log.info("scheduler %s stopped", self.name)
        if _leader is self:
            _leader = None

    def _runner(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self._wake.wait(self.tick)
            self._wake.clear()
            if stop.is_set() or not self.leading:
                continue
            try:
                self.tend(stop)
            except Exception:  # the runner must outlive a bad moment of the database
                log.exception("scheduler runner: error; trying again")
                stop.wait(1.0)

    def tend(self, stop: threading.Event) -> None:
        """One pass of the leader's runner: jobs in step with the broadcasts, unfinished runs
        written, held statuses applied or, once old, forgotten."""
        self.sync_jobs()
        self.process_runs(stop)
        # Read after the runs, which may have taken long.
        now = self.clock()
        with self.database.session() as session:
            outbox.reconcile_held(session)
            outbox.prune_held(session, now - HOLD_STATUSES_FOR)

    def sync_jobs(self) -> None:
        """Give every broadcast still to start its APScheduler job; drop cancelled ones'."""
        scheduler = self.scheduler
        if scheduler is None:
            return
        with self.database.session() as session:
            jobs = set(session.scalars(select(apscheduler_jobs.c.id)))
            started = exists().where(BroadcastRun.broadcast_id == Broadcast.id)
            wanted = list(
                session.scalars(
                    select(Broadcast).where(
                        Broadcast.cancelled_at.is_(None),
                        or_(Broadcast.cron.is_not(None), ~started),
                    )
                )
            )
            cancelled = set(
                session.scalars(select(Broadcast.id).where(Broadcast.cancelled_at.is_not(None)))
            )
        for broadcast in wanted:
            job_id = f"{JOB_PREFIX}{broadcast.id}"
            if job_id in jobs:
                continue
            scheduler.add_job(**job_options(broadcast), replace_existing=True)
            log.info("broadcast %s scheduled", broadcast.id)
        for broadcast_id in cancelled:
            job_id = f"{JOB_PREFIX}{broadcast_id}"
            if job_id in jobs:
                scheduler.remove_job(job_id)

    def start_occurrence(self, broadcast_id: int, now: datetime) -> int | None:
        with self.database.session() as session:
            broadcast = session.get(Broadcast, broadcast_id)
            if broadcast is None:
                return None
            run_id = broadcasts.start_run(session, broadcast_id, occurrence(broadcast, now), now)
        if run_id is not None:
            log.info("broadcast %s: run %s started", broadcast_id, run_id)
        self._wake.set()
        return run_id

    def process_runs(self, stop: threading.Event) -> None:
        """Write every unfinished run, oldest first (also those a dead leader left)."""
        with self.database.session() as session:
            runs = broadcasts.unfinished_runs(session)
        for run_id in runs:
            broadcasts.write_run(
                self.database,
                run_id,
                clock=self.clock,
                batch_size=self.batch_size,
                keep_going=lambda: self.leading and not stop.is_set(),
            )


def start_thread(
    database: Database, stop: threading.Event, *, clock: Callable[[], datetime] = utcnow
) -> threading.Thread:
    """The scheduler service on a daemon thread of this process."""
    service = SchedulerService(database, clock=clock)
    thread = threading.Thread(target=service.run, args=(stop,), name="scheduler", daemon=True)
    thread.start()
    return thread
