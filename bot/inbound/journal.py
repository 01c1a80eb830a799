"""The inbound journal: each webhook notification committed as it came, before the 200, and
what the processor, the health check and the `inbound` commands read and mark of it."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from bot.db import Database
from bot.inbound import spool
from bot.inbound.receive import Arrival
from bot.models import InboundNotification, NotificationState

log = logging.getLogger("tresen.inbound")

# PostgreSQL's channel: the web process notifies it in the statement that journals, so a
# processor listening on it wakes the moment the row is committed.
CHANNEL = "tresen_inbound"
# A notification waiting longer than this means no processor is working: health turns 503.
MAX_WAIT = timedelta(minutes=1)
# Meta redelivers for up to 7 days; a processed row's digest is kept a day longer, so that a
# late redelivery is still recognised, then pruned.
KEEP_PROCESSED = timedelta(days=8)
# An error kept for `inbound list`: the reason, not a whole traceback.
ERROR_LENGTH = 2000

_journal = cast(Table, InboundNotification.__table__)
_c = _journal.c
# Written out in every query of rows not processed, so that SQLite and PostgreSQL use the
# partial index that holds just those (ix_inbound_open).
_OPEN = _c.state != NotificationState.PROCESSED.value


def digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


# --- in-process wake-ups: the embedded default's processor shares the web's process -----------

_waiters: set[threading.Event] = set()
_waiters_lock = threading.Lock()


def subscribe(event: threading.Event) -> None:
    with _waiters_lock:
        _waiters.add(event)


def unsubscribe(event: threading.Event) -> None:
    with _waiters_lock:
        _waiters.discard(event)


def _wake_local() -> None:
    for event in tuple(_waiters):
        event.set()


# --- the web process's one write ---------------------------------------------------------------


def _pg_record(notify: bool) -> Any:
    """INSERT … ON CONFLICT DO NOTHING, with the NOTIFY in the same statement when `notify`:
    one round trip, and the processor is woken only for a new row, once it is committed."""
    new = (
        postgresql.insert(_journal)
        .values(
            digest=bindparam("digest"),
            body=bindparam("body"),
            received_at=bindparam("received_at", type_=_c.received_at.type),
            priority=bindparam("priority"),
            sort_at=bindparam("sort_at", type_=_c.sort_at.type),
            state=bindparam("state"),
        )
        .on_conflict_do_nothing(index_elements=["digest"])
        .returning(_c.id)
        .cte("new")
    )
    return select(func.pg_notify(CHANNEL, "") if notify else new.c.id).select_from(new)


_PG_RECORD = {True: _pg_record(True), False: _pg_record(False)}
_PG_INSERT = (
    "INSERT INTO inbound_notifications (digest, body, received_at, priority, sort_at, state) "
    "VALUES (%(digest)s, %(body)s, %(received_at)s, %(priority)s, %(sort_at)s, %(state)s) "
    "ON CONFLICT (digest) DO NOTHING"
)
_PG_SQL = {
    False: _PG_INSERT,
    True: f"WITH new AS ({_PG_INSERT} RETURNING id) SELECT pg_notify('{CHANNEL}', '') FROM new",  # noqa: S608 (constants)
}
# PostgreSQL serialises the commits of transactions that NOTIFY: under a burst, one NOTIFY per
# notification capped the webhook's rate. A process notifies at most this often; the
# processor, once woken, works until nothing waits, and looks every PG_POLL seconds anyway.
NOTIFY_EVERY = 0.01
_notified_at = 0.0


def record(database: Database, body: bytes, arrival: Arrival, now: datetime) -> None:
    """Commit `body` to the journal (a redelivery changes nothing). Raises what the database
    raises: the caller answers 503 and Meta delivers again."""
    params = {
        "digest": digest(body),
        "body": body,
        "received_at": now,
        "priority": arrival.priority,
        "sort_at": arrival.sort_at,
        "state": NotificationState.PENDING.value,
    }
    for attempt in (1, 2):
        try:
            _insert(database, params)
            break
        except DBAPIError as exc:
            if not (exc.connection_invalidated and attempt == 1):
                raise
            # A pooled connection the server dropped (it restarted, or an administrator ended
            # the session): once more on a new one. A redelivery changes nothing, so this is
            # safe even if the drop came after the commit went through.
    _wake_local()


def _insert(database: Database, params: dict[str, Any]) -> None:
    """The one INSERT, on the driver's connection with no transaction around it: the
    statement is its own (SQLAlchemy's execution around it cost the webhook half its rate).
    Errors come out as SQLAlchemy's, a broken connection invalidated, as from any query."""
    if database.dialect == "postgresql":
        global _notified_at
        started = time.monotonic()
        notify = started - _notified_at >= NOTIFY_EVERY
        if notify:
            _notified_at = started
        _autocommit(database, _PG_SQL[notify], params)
    else:
        # Times as SQLAlchemy stores them there (naive UTC text), so that they read back.
        dialect = database.engine.dialect
        for name in ("received_at", "sort_at"):
            bind = _c[name].type.bind_processor(dialect)
            if bind is not None:
                params[name] = bind(params[name])
        spooled = spool.of(database)
        if spooled is not None:
            spooled.add(params)  # the processor moves it into the journal
        else:  # a database in memory: one process, one file
            with database.turn():
                _autocommit(database, spool.JOURNAL_INSERT, params)


def _autocommit(database: Database, sql: str, params: dict[str, Any]) -> None:
    dialect = database.engine.dialect
    try:
        raw = database.engine.raw_connection()
    except dialect.loaded_dbapi.Error as exc:  # the database does not answer
        raise DBAPIError.instance(sql, None, exc, dialect.loaded_dbapi.Error) from exc
    try:
        driver: Any = raw.driver_connection
        try:
            if dialect.name == "postgresql":
                driver.autocommit = True
                try:
                    driver.execute(sql, params)
                finally:
                    driver.autocommit = False
            else:  # pysqlite without a transaction of its own (bot.db): the INSERT is one
                driver.execute(sql, params)
        except dialect.loaded_dbapi.Error as exc:
            broken = dialect.is_disconnect(exc, driver, None)
            if broken:
                raw.invalidate(exc)
            raise DBAPIError.instance(
                sql, None, exc, dialect.loaded_dbapi.Error, connection_invalidated=broken
            ) from exc
    finally:
        raw.close()


# --- the processor's reads and marks -----------------------------------------------------------


@dataclass(frozen=True)
class Waiting:
    id: int
    body: bytes
    received_at: datetime


_WAITING = (
    select(_c.id, _c.body, _c.received_at)
    .where(_OPEN, _c.state == NotificationState.PENDING.value)
    .order_by(_c.priority, _c.sort_at, _c.id)
    .limit(bindparam("limit"))
)


def waiting(session: Session, limit: int, only: Sequence[int] | None = None) -> list[Waiting]:
    """The next notifications to process: customer messages first, each kind oldest event
    first, so that a contact's messages are handled in the order they were sent. `only`:
    of these ids."""
    query = _WAITING if only is None else _WAITING.where(_c.id.in_(list(only)))
    rows = session.connection().execute(query, {"limit": limit}).all()
    return [Waiting(row.id, bytes(row.body or b""), row.received_at) for row in rows]


# Built once, `ids` expanding to the batch's: building it per batch through the ORM cost as
# much as running it.
_MARK_PROCESSED = (
    update(_journal)
    .where(_c.id.in_(bindparam("ids", expanding=True)))
    .values(
        state=NotificationState.PROCESSED.value,
        body=None,
        error=None,
        processed_at=bindparam("now", type_=_c.processed_at.type),
        attempts=_c.attempts + 1,
    )
)


def mark_processed(session: Session, ids: Sequence[int], now: datetime) -> None:
    if ids:
        session.connection().execute(_MARK_PROCESSED, {"ids": list(ids), "now": now})


def mark_failed(session: Session, notification_id: int, error: str, now: datetime) -> None:
    session.execute(
        update(_journal)
        .where(_c.id == notification_id)
        .values(
            state=NotificationState.FAILED.value,
            error=error[:ERROR_LENGTH],
            processed_at=now,
            attempts=_c.attempts + 1,
        )
    )


def retry(session: Session, ids: Iterable[int] | None) -> int:
    """Put failed notifications back in line (None: every failed one). How many."""
    query = update(_journal).where(_OPEN, _c.state == NotificationState.FAILED.value)
    if ids is not None:
        query = query.where(_c.id.in_(list(ids)))
    result = session.execute(query.values(state=NotificationState.PENDING.value))
    return int(getattr(result, "rowcount", 0) or 0)


def prune(session: Session, now: datetime) -> int:
    result = session.execute(
        delete(_journal).where(
            _c.state == NotificationState.PROCESSED.value,
            _c.received_at < now - KEEP_PROCESSED,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- what people and monitors read -------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    id: int
    state: NotificationState
    received_at: datetime
    attempts: int
    error: str | None
    size: int


def entries(
    session: Session,
    *,
    failed_only: bool,
    limit: int = 1000,
    only: Sequence[int] | None = None,
) -> list[Entry]:
    """Notifications not processed yet and those that failed, oldest first (`only`: of
    these ids)."""
    states = [NotificationState.FAILED.value]
    if not failed_only:
        states.append(NotificationState.PENDING.value)
    query = (
        select(
            _c.id,
            _c.state,
            _c.received_at,
            _c.attempts,
            _c.error,
            func.coalesce(func.length(_c.body), 0).label("size"),
        )
        .where(_OPEN, _c.state.in_(states))
        .order_by(_c.received_at, _c.id)
        .limit(limit)
    )
    if only is not None:
        query = query.where(_c.id.in_(list(only)))
    rows = session.execute(query).all()
    return [
        Entry(r.id, NotificationState(r.state), r.received_at, r.attempts, r.error, int(r.size))
        for r in rows
    ]


def known_ids(session: Session, ids: Iterable[int]) -> dict[int, NotificationState]:
    rows = session.execute(select(_c.id, _c.state).where(_c.id.in_(list(ids)))).all()
    return {row.id: NotificationState(row.state) for row in rows}


@dataclass(frozen=True)
class Health:
    oldest_waiting_age: float | None  # seconds
    waiting: int
    failed: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


def health(session: Session, now: datetime, spooled: spool.Waiting | None = None) -> Health:
    """The journal's figures, and the spool's (`spooled`) where there is one: a notification
    waits for the processor in either."""
    counts: dict[str, int] = dict(
        session.execute(select(_c.state, func.count()).where(_OPEN).group_by(_c.state)).all()
    )
    oldest = session.scalar(
        select(_c.received_at)
        .where(_OPEN, _c.state == NotificationState.PENDING.value)
        .order_by(_c.received_at)
        .limit(1)
    )
    waiting_count = int(counts.get(NotificationState.PENDING.value, 0))
    if spooled is not None and spooled.oldest is not None:
        waiting_count += spooled.count
        oldest = min(oldest or spooled.oldest, spooled.oldest)
    age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else None
    failed = int(counts.get(NotificationState.FAILED.value, 0))
    problems = []
    if age is not None and age > MAX_WAIT.total_seconds():
        problems.append(
            f"{waiting_count} notifications waiting, the oldest for {age:.0f}s: "
            "is the worker running?"
        )
    return Health(age, waiting_count, failed, tuple(problems))
