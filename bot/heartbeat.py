"""A worker's sign of life: its row in worker_heartbeats, renewed every few seconds with the
number of messages it sent, removed when it stops cleanly (a killed one's row just ages)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from bot.db import Database
from bot.models import WorkerHeartbeat, utcnow
from bot.sql import dialect_name

log = logging.getLogger("tresen.heartbeat")

INTERVAL = 10.0


def beat(session: Session, name: str, sent: int, *, now: datetime) -> None:
    """Insert or renew `name`'s row: last seen `now`, `sent` messages so far."""
    module = postgresql if dialect_name(session) == "postgresql" else sqlite
    stmt = module.insert(WorkerHeartbeat).values(
        name=name, started_at=now, last_seen_at=now, sent=sent
    )
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["name"],
            set_={"last_seen_at": stmt.excluded.last_seen_at, "sent": stmt.excluded.sent},
        )
    )


def remove(session: Session, name: str) -> None:
    session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.name == name))


def newest(session: Session) -> datetime | None:
    """When the most recently seen worker was last seen."""
    return session.scalar(
        select(WorkerHeartbeat.last_seen_at).order_by(WorkerHeartbeat.last_seen_at.desc()).limit(1)
    )


class Heartbeat:
    """Renews one worker's row until `stop` is set, then removes it."""

    def __init__(
        self,
        database: Database,
        name: str,
        sent: Callable[[], int],
        *,
        interval: float = INTERVAL,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.name = name
        self.sent = sent
        self.interval = interval
        self.clock = clock

    def beat(self) -> bool:
        try:
            with self.database.session() as session:
                beat(session, self.name, self.sent(), now=self.clock())
        except DBAPIError as exc:
            # The row just ages meanwhile; /healthz/outbox reports that if it lasts.
            log.warning("heartbeat not recorded (%s)", exc.__class__.__name__)
            return False
        return True

    def remove(self) -> None:
        try:
            with self.database.session() as session:
                remove(session, self.name)
        except DBAPIError as exc:
            log.warning("heartbeat row not removed (%s); it will age", exc.__class__.__name__)

    def run(self, stop: threading.Event) -> None:
        self.beat()
        while not stop.wait(self.interval):
            self.beat()
        self.remove()


def start_thread(
    database: Database,
    name: str,
    sent: Callable[[], int],
    stop: threading.Event,
    *,
    interval: float = INTERVAL,
    clock: Callable[[], datetime] = utcnow,
) -> threading.Thread:
    """Beat on a daemon thread of its own until `stop` is set."""
    heartbeat = Heartbeat(database, name, sent, interval=interval, clock=clock)
    thread = threading.Thread(target=heartbeat.run, args=(stop,), name="heartbeat", daemon=True)
    thread.start()
    return thread
