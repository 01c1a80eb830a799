"""The inbound processor: works through the journal, customer messages first and each
contact's in the order they were sent, handing every event to its kind's handler.

A batch of notifications is one transaction, so a crash anywhere in it only repeats work:
every handler is idempotent (a message is keyed by its wamid, statuses only move forward). A
notification that cannot be processed (a shape this version does not know, a bug) is parked
as failed with its error, and the others go on.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import make_url
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.orm import Session

from bot import storable
from bot.autoreply import Ready, prepare
from bot.db import Database
from bot.inbound import journal, spool
from bot.inbound.messages import Stored, create_contacts, store_message
from bot.inbound.preferences import apply_preference
from bot.inbound.receive import decode
from bot.inbound.statuses import apply_status
from bot.message_templates.changes import apply_update
from bot.models import utcnow
from bot.rules import Inbound
from bot.settings import BusinessSettings
from bot.settings.stored import load_settings
from bot.whatsapp import events

log = logging.getLogger("tresen.inbound")

# How many notifications one transaction takes. SQLite has one writer per file: a batch holds
# up the database file's other writers (the dispatcher, the admin; the webhook writes to the
# spool), so its batches are kept shorter.
BATCH = {"postgresql": 200, "sqlite": 50}
# SQLite has no LISTEN: the processor of another process looks this often.
SQLITE_POLL = 0.05
# PostgreSQL wakes it by NOTIFY, sent at most every journal.NOTIFY_EVERY per web process: a
# notification committed just after a NOTIFY is found by this look, well inside 100 ms.
PG_POLL = 0.05
# One processor at a time on PostgreSQL keeps each contact's order exact; the others wait
# as standbys and take over when its session ends (the lock goes with it).
LEADER_LOCK = 0x7472_6573_656E_0001
PRUNE_EVERY = timedelta(hours=1)
# Acknowledgements first: when the machine is short of processor time, the web's answers to
# Meta go before processing (Linux schedules threads; this is added to the thread's nice
# value). The journal makes the wait safe, and a quiet machine does not see it.
NICER = 10


class Unprocessable(Exception):
    """A journalled notification this version cannot read."""


class LostLead(Exception):
    """The connection that held the leader lock and listened is gone."""


@dataclass(frozen=True)
class Parsed:
    row: journal.Waiting
    events: tuple[events.Event, ...]


@dataclass
class Batch:
    """What every handler of one batch shares."""

    now: datetime
    ours: str | None  # the business number answered for; None: every number
    settings: BusinessSettings | None
    ready: dict[str, Ready]
    stored: list[Stored]


def read(row: journal.Waiting) -> tuple[events.Event, ...]:
    """A journalled body's events, as the webhook checked them, with plausible timestamps."""
    try:
        parsed = events.parse(decode(row.body))
    except (ValueError, RecursionError, events.PayloadError) as exc:
        raise Unprocessable(f"{exc.__class__.__name__}: {exc}") from exc
    out: list[events.Event] = []
    for event in parsed:
        if isinstance(event, events.Malformed):
            log.warning(
                "notification %d: skipped an event of the wrong shape: %s: %s; its JSON: %s",
                row.id,
                event.path,
                event.problem,
                storable.for_log(event.raw),
            )
        elif isinstance(event, events.Unhandled):
            out.append(event)
        else:
            at = events.plausible(event.timestamp, row.received_at)
            out.append(event if at == event.timestamp else replace(event, timestamp=at))
    return tuple(out)


# --- one handler per event kind ----------------------------------------------------------------


def _message(session: Session, event: events.Message, batch: Batch) -> None:
    ours = batch.ours is None or event.phone_number_id == batch.ours
    stored = store_message(
        session, event, batch.now, batch.settings, batch.ready.get(event.id), answer=ours
    )
    if stored is not None:
        batch.stored.append(stored)


def _status(session: Session, event: events.Status, batch: Batch) -> None:
    # Another number's messages never had a wamid of ours: nothing to hold it for.
    if batch.ours is None or event.phone_number_id == batch.ours:
        apply_status(session, event, batch.now)


def _preference(session: Session, event: events.UserPreference, batch: Batch) -> None:
    # Stopping another number's offers is no word about ours.
    if batch.ours is None or event.phone_number_id in (None, batch.ours):
        apply_preference(session, event, batch.now)


def _template(session: Session, event: events.TemplateUpdate, batch: Batch) -> None:
    apply_update(session, event, batch.now)


def _unhandled(_session: Session, _event: events.Unhandled, _batch: Batch) -> None:
    """A field Tresen does not subscribe to: kept in the journal until processed, no more."""


HANDLERS: dict[type, Callable[[Session, Any, Batch], None]] = {
    events.Message: _message,
    events.Status: _status,
    events.UserPreference: _preference,
    events.TemplateStatusUpdate: _template,
    events.TemplateCategoryUpdate: _template,
    events.TemplateQualityUpdate: _template,
    events.Unhandled: _unhandled,
}


def handle(session: Session, event: events.Event, batch: Batch) -> None:
    HANDLERS[type(event)](session, event, batch)


# --- a batch -----------------------------------------------------------------------------------


def process_batch(
    database: Database,
    now: datetime,
    *,
    ours: str | None,
    limit: int | None = None,
    only: Sequence[int] | None = None,
) -> int:
    """Process the next waiting notifications (`only`: of these ids); how many were taken
    (0: none waiting).

    Raises DBAPIError when the database does not answer: nothing is marked, and the same
    notifications are taken again later.
    """
    limit = limit or BATCH.get(database.dialect, 50)
    spool.move_all(database)  # SQLite: what the webhook committed since, into the journal
    # A look that writes nothing (on SQLite: no write turn while the journal is empty).
    with database.reading() as session:
        rows = journal.waiting(session, limit, only)
        if not rows:
            return 0
        settings = load_settings(session)
    parsed: list[Parsed] = []
    unreadable: list[tuple[int, str]] = []
    for row in rows:
        try:
            parsed.append(Parsed(row, read(row)))
        except Unprocessable as exc:
            unreadable.append((row.id, str(exc)))
            log.error("notification %d parked: %s", row.id, exc)
    batch = Batch(now, ours, settings, _ready(parsed, settings, now), [])
    try:
        with database.session() as session:
            ordered = list(_in_order(parsed))
            create_contacts(session, (e for e in ordered if isinstance(e, events.Message)), now)
            for event in ordered:
                handle(session, event, batch)
            _finish(session, [p.row.id for p in parsed], unreadable, now)
    except Exception as exc:
        if _is_outage(exc):
            raise
        # Rolled back as a whole: each notification once more in a transaction of its own,
        # so that only the one at fault is parked. Everything is idempotent.
        log.warning("a batch failed (%s); processing its notifications one by one", _line(exc))
        batch.stored.clear()
        for one in parsed:
            _process_alone(database, one, batch)
        with database.session() as session:
            _finish(session, [], unreadable, now)
    _log_stored(batch.stored)
    return len(rows)


def _ready(
    parsed: Sequence[Parsed], settings: BusinessSettings | None, now: datetime
) -> dict[str, Ready]:
    """Keyword matches and rendered replies, worked out before the write transaction: neither
    should run while SQLite's write turn or a contact's row is held (see autoreply.Ready)."""
    if settings is None:
        return {}
    out = {}
    for one in parsed:
        for event in one.events:
            if isinstance(event, events.Message):
                inbound = Inbound(event.text, event.type_name, event.timestamp)
                out[event.id] = prepare(
                    settings,
                    inbound,
                    now,
                    contact_name=event.profile_name,
                    wa_id=event.from_wa_id,
                )
    return out


def _in_order(parsed: Sequence[Parsed]) -> Iterator[events.Event]:
    """Customer messages first, oldest first (so each contact's in the order sent), then the
    rest in journal order."""
    messages = [
        (event.timestamp, n, event)
        for n, one in enumerate(parsed)
        for event in one.events
        if isinstance(event, events.Message)
    ]
    messages.sort(key=lambda item: (item[0], item[1]))
    yield from (message for _at, _n, message in messages)
    for one in parsed:
        yield from (e for e in one.events if not isinstance(e, events.Message))


def _process_alone(database: Database, one: Parsed, batch: Batch) -> None:
    try:
        with database.session() as session:
            for event in _in_order([one]):
                try:
                    with session.begin_nested():
                        handle(session, event, batch)
                except Exception as exc:
                    if not _is_data_error(exc):
                        raise
                    # Refused as a value: that event is lost, the rest of it is stored.
                    log.error(
                        "notification %d: %s refused by the database, skipped: %s; its JSON: %s",
                        one.row.id,
                        _described(event),
                        _line(exc),
                        storable.for_log(getattr(event, "raw", None)),
                    )
            journal.mark_processed(session, [one.row.id], batch.now)
    except Exception as exc:
        if _is_outage(exc):
            raise
        log.error("notification %d parked: %s", one.row.id, _line(exc), exc_info=True)
        with database.session() as session:
            journal.mark_failed(session, one.row.id, _error_text(exc), batch.now)


def _finish(
    session: Session, processed: list[int], unreadable: list[tuple[int, str]], now: datetime
) -> None:
    journal.mark_processed(session, processed, now)
    for notification_id, error in unreadable:
        journal.mark_failed(session, notification_id, error, now)


def _log_stored(stored: list[Stored]) -> None:
    # Once committed, and out of SQLite's write turn: one line per message.
    for new in stored:
        log.info(
            "stored %s message %s from contact %s; %s",
            new.type_name,
            new.wamid,
            new.contact_id,
            f"queued {new.reply.rule} reply {new.reply.id}" if new.reply else "no auto-reply",
        )


def _is_outage(exc: BaseException) -> bool:
    """The database did not answer (rather than refused a value): try the batch again later."""
    return isinstance(exc, DBAPIError) and not _is_data_error(exc)


def _is_data_error(exc: BaseException) -> bool:
    """Whether the database (or its driver) refused a value, rather than failed to answer.

    Integrity errors count too: the unique keys a redelivery meets are expected and never
    raise, so any other is this data's. Connection and server trouble (OperationalError,
    InterfaceError, ...) is an outage.
    """
    if isinstance(exc, DataError | IntegrityError):
        return True
    if isinstance(exc, DBAPIError):
        return False
    if isinstance(exc, StatementError):  # a value no bind processor could convert
        return isinstance(exc.orig, ValueError | OverflowError)
    # What a driver raises itself (SQLite: a number over 64 bits, text it cannot encode).
    return isinstance(exc, ValueError | OverflowError)


def _line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).splitlines()
    return f"{exc.__class__.__name__}: {lines[0] if lines else ''}"


def _error_text(exc: BaseException) -> str:
    """The error and where it was raised, for `inbound list --failed`."""
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    place = f" (at {where[0].filename.rsplit('/', 1)[-1]}:{where[0].lineno})" if where else ""
    return _line(exc) + place


def _described(event: events.Event) -> str:
    if isinstance(event, events.Message):
        return f"message {event.id[:100]}"
    if isinstance(event, events.Status):
        return f"{event.status.value} status of {event.message_id[:100]}"
    return type(event).__name__


# --- the thread --------------------------------------------------------------------------------


class Processor:
    """Runs process_batch whenever notifications wait, until stopped."""

    def __init__(
        self,
        database: Database,
        *,
        ours: str | None,
        clock: Callable[[], datetime] = utcnow,
        on_queued: Callable[[], None] | None = None,
        batch: int | None = None,
    ) -> None:
        self.database = database
        self.ours = ours
        self.clock = clock
        self.on_queued = on_queued
        self.batch = batch
        self.processed = 0
        self._wake = threading.Event()

    def run(self, stop: threading.Event) -> None:
        _lower_priority(NICER)
        log.info("inbound processor started")
        journal.subscribe(self._wake)
        try:
            while not stop.is_set():
                try:
                    with self._leading(stop) as waiter:
                        if waiter is not None:
                            self._loop(stop, waiter)
                except LostLead as exc:
                    log.warning("inbound processor lost its database session (%s)", exc)
                    stop.wait(1.0)
        finally:
            journal.unsubscribe(self._wake)
        log.info("inbound processor stopped")

    def _loop(self, stop: threading.Event, wait: Callable[[float], None]) -> None:
        pause = 0.5
        pruned_at: datetime | None = None
        while not stop.is_set():
            try:
                now = self.clock()
                taken = process_batch(self.database, now, ours=self.ours, limit=self.batch)
                if pruned_at is None or now - pruned_at > PRUNE_EVERY:
                    with self.database.session() as session:
                        journal.prune(session, now)
                    pruned_at = now
                pause = 0.5
            except DBAPIError as exc:
                log.error("inbound processing paused: %s; trying again in %.0fs", _line(exc), pause)
                stop.wait(pause)
                pause = min(pause * 2, 15.0)
                continue
            if taken:
                self.processed += taken
                if self.on_queued is not None:
                    self.on_queued()
                continue  # more may wait
            wait(SQLITE_POLL if self.database.dialect == "sqlite" else PG_POLL)

    def stop_waiting(self) -> None:
        self._wake.set()

    @contextmanager
    def _leading(self, stop: threading.Event) -> Iterator[Callable[[float], None] | None]:
        """Yields how to wait for the next notification, once this processor may process; on
        PostgreSQL after it holds the leader lock, woken by NOTIFY."""
        if self.database.dialect != "postgresql":
            yield self._wait_local
            return
        import psycopg  # only PostgreSQL's processor needs the driver directly

        url = make_url(self.database.url).set(drivername="postgresql")
        conninfo = url.render_as_string(hide_password=False)
        conn = None
        try:
            while not stop.is_set():
                try:
                    if conn is None or conn.closed:
                        conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=5)
                    locked = conn.execute(
                        "SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,)
                    ).fetchone()
                    if locked and locked[0]:
                        conn.execute(f"LISTEN {journal.CHANNEL}")
                        break
                except psycopg.Error as exc:
                    log.warning("inbound processor: %s; trying again", exc.__class__.__name__)
                    conn = None
                stop.wait(2.0)  # a standby: another process is processing
            if stop.is_set() or conn is None:
                yield None
                return
            listening = conn

            def wait(timeout: float) -> None:
                if self._wake.is_set():
                    self._wake.clear()
                    return
                deadline = time.monotonic() + timeout
                # NOTIFY, or the in-process wake, or the timeout: whichever comes first.
                try:
                    while not stop.is_set() and time.monotonic() < deadline:
                        step = max(0.001, min(0.05, deadline - time.monotonic()))
                        if any(True for _ in listening.notifies(timeout=step, stop_after=1)):
                            break
                        if self._wake.is_set():
                            break
                    # Notifications that came together wake once.
                    for _ in listening.notifies(timeout=0.0):
                        pass
                except psycopg.Error as exc:
                    raise LostLead(exc.__class__.__name__) from exc
                self._wake.clear()

            yield wait
        finally:
            if conn is not None:
                conn.close()

    def _wait_local(self, timeout: float) -> None:
        self._wake.wait(timeout)
        self._wake.clear()


def _lower_priority(by: int) -> None:
    """Lower this thread's scheduling priority (Linux: per thread; elsewhere left as it is)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        thread = threading.get_native_id()
        os.setpriority(
            os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + by)
        )
    except OSError as exc:  # not permitted in some containers: then it runs as it is
        log.debug("inbound processor keeps its priority: %s", exc)


def start_thread(
    database: Database,
    stop: threading.Event,
    *,
    ours: str | None,
    on_queued: Callable[[], None] | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> tuple[threading.Thread, Processor]:
    processor = Processor(database, ours=ours, on_queued=on_queued, clock=clock)
    thread = threading.Thread(target=processor.run, args=(stop,), name="inbound", daemon=True)
    thread.start()
    return thread, processor
