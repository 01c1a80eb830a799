"""Leader election: exactly one scheduler per deployment, elected by a lock.

On PostgreSQL the leader holds a session-level advisory lock on a connection of its own (it
goes with the connection if the process dies); on SQLite it holds a lease row it keeps
renewing.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection, func, or_, select, text, update
from sqlalchemy.exc import DBAPIError

from bot.db import Database
from bot.models import SchedulerLock
from bot.sql import insert_ignore

log = logging.getLogger("tresen.scheduler")

ADVISORY_KEY = 7317002  # the migrations hold 7317001
LOCK_NAME = "scheduler"


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
