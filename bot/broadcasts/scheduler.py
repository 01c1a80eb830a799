"""The broadcast scheduler: APScheduler in the worker, run by the elected leader only.

Each broadcast is an APScheduler job in the SQLAlchemy job store, so its next time survives
restarts: a time missed while no worker ran fires once when one is back (no misfire limit,
coalesced). A firing creates the occurrence's run; the leader's runner thread writes runs'
recipients, resuming any a dead leader left unfinished.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import exists, or_, select
from sqlalchemy.exc import DBAPIError

from bot.api import idempotency
from bot.broadcasts import limits, pacing, runs
from bot.broadcasts.cron import occurrence, trigger_for
from bot.broadcasts.leader import make_lock
from bot.channels.errors import SendError
from bot.db import Database
from bot.followups.job import FollowUps
from bot.models import Broadcast, BroadcastRun, apscheduler_jobs, utcnow
from bot.outbound import messaging_limit, outbox
from bot.outbound.dispatcher import worker_name

log = logging.getLogger("tresen.scheduler")

JOB_PREFIX = "broadcast:"
# Stored with each job and looked up when the job is loaded: renaming it needs a migration.
FIRE = "bot.broadcasts.scheduler:fire"
HOLD_STATUSES_FOR = timedelta(days=2)
# Meta re-evaluates messaging limits every few hours; a failed reading is tried again sooner.
READ_LIMIT_EVERY = timedelta(hours=3)
READ_LIMIT_AGAIN = timedelta(minutes=10)
# Reads the messaging limit tier from the Graph API (`GraphClient.messaging_limit`).
LimitReader = Callable[[], str]


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
        batch_size: int = runs.BATCH_SIZE,
        name: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        template_sync: Callable[[datetime], object] | None = None,
        read_limit: LimitReader | None = None,
        retention: Callable[[datetime], object] | None = None,
    ) -> None:
        """`read_limit`: in WhatsApp mode, how to read the messaging limit (console mode has
        none: unlimited unless a limit is stored); `retention`: the daily deletion of old
        messages and media (bot.retention.DailyRetention), which decides itself when it is due."""
        self.retention = retention
        self.database = database
        self.read_limit = read_limit
        self._limit_read_at: datetime | None = None
        self.clock = clock
        # The daily template sync (bot.message_templates.sync.DailySync): it decides itself
        # when it is due, at the first pass and then once a day.
        self.template_sync = template_sync
        self.tick = tick
        self.lease = timedelta(seconds=lease)
        self.batch_size = batch_size
        self.name = name or worker_name()
        self.lock = make_lock(database, self.name, self.lease)
        self.scheduler: BackgroundScheduler | None = None
        self._wake = threading.Event()
        self._leading = threading.Event()
        # The template follow-up after a closure, looked for on the leader's ticks.
        self.follow_ups = FollowUps(database)

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
        written, the messaging limit read now and then, deferred broadcast messages released
        as the quiet hours and the limit allow, held statuses applied or, once old, forgotten;
        the templates synced when due, follow-ups after a closure queued, the API's
        Idempotency-Key answers forgotten after 24 hours, and once a day old messages and
        media deleted (retention)."""
        # The limit first: the runs release what they write as far as it allows.
        self.read_messaging_limit(self.clock())
        self.sync_jobs()
        self.process_runs(stop)
        # Read after the runs, which may have taken long.
        now = self.clock()
        self.pace(now)
        with self.database.session() as session:
            outbox.reconcile_held(session)
            outbox.prune_held(session, now - HOLD_STATUSES_FOR)
            idempotency.prune(session, now)  # API answers kept for their 24 hours only
        if self.template_sync is not None:
            self.template_sync(now)
        self.follow_ups.run(now)
        if self.retention is not None:
            self.retention(now)

    def read_messaging_limit(self, now: datetime) -> None:
        """On start and every few hours: the tier from the Graph API, kept with source api;
        Meta's start (250) until a reading succeeds."""
        if self.read_limit is None:
            return
        if self._limit_read_at is not None and now - self._limit_read_at < READ_LIMIT_EVERY:
            return
        with self.database.session() as session:
            messaging_limit.ensure_default(session, now)
        try:
            tier = self.read_limit()
            limits.tier_limit(tier)
        except (SendError, ValueError) as exc:
            log.warning("cannot read the messaging limit (%s); trying again later", exc)
            self._limit_read_at = now - READ_LIMIT_EVERY + READ_LIMIT_AGAIN
            return
        with self.database.session() as session:
            messaging_limit.store(session, tier, messaging_limit.LimitSource.API, now)
        self._limit_read_at = now
        log.info("messaging limit: %s", tier)

    def pace(self, now: datetime) -> None:
        """Release deferred broadcast messages as the quiet hours and the limit allow."""
        with self.database.session() as session:
            settings = runs.business_settings(session)
            released = pacing.release(session, settings, now)
        if released.held_back:
            log.info("quiet hours: %d broadcast messages wait", released.held_back)

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
            run_id = runs.start_run(session, broadcast_id, occurrence(broadcast, now), now)
        if run_id is not None:
            log.info("broadcast %s: run %s started", broadcast_id, run_id)
        self._wake.set()
        return run_id

    def process_runs(self, stop: threading.Event) -> None:
        """Write every unfinished run, oldest first (also those a dead leader left)."""
        with self.database.session() as session:
            unfinished = runs.unfinished_runs(session)
        for run_id in unfinished:
            runs.write_run(
                self.database,
                run_id,
                clock=self.clock,
                batch_size=self.batch_size,
                keep_going=lambda: self.leading and not stop.is_set(),
            )


def start_thread(
    database: Database,
    stop: threading.Event,
    *,
    clock: Callable[[], datetime] = utcnow,
    template_sync: Callable[[datetime], object] | None = None,
    read_limit: LimitReader | None = None,
    retention: Callable[[datetime], object] | None = None,
) -> threading.Thread:
    """The scheduler service on a daemon thread of this process."""
    service = SchedulerService(
        database,
        clock=clock,
        template_sync=template_sync,
        read_limit=read_limit,
        retention=retention,
    )
    thread = threading.Thread(target=service.run, args=(stop,), name="scheduler", daemon=True)
    thread.start()
    return thread
