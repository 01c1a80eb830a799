"""On SQLite, the webhook's notifications are committed to a file of their own beside the
database (the spool), and the processor moves them into the journal.

SQLite lets one writer at a time at a file. With the journal in the database file, every
webhook INSERT waited while the processor's batch held that file: in a closed loop the web
spent most of its time waiting, not working. The spool has no other writer than the webhook
and the processor's short DELETE, so an acknowledgement waits for nothing but its own INSERT.

A notification is only ever in one of two places that the processor reads, and moves from
the spool to the journal in this order: the journal's INSERT commits, then the spool's DELETE.
A crash between the two moves it again, which the journal's unique digest makes a no-op, so a
spooled notification is never lost nor processed twice. Everything else (states, failures,
`inbound` commands, pruning) stays the journal's; the health check and an erasure look here
too. PostgreSQL has no spool: its writers do not wait for one another.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import make_url, text
from sqlalchemy.exc import DBAPIError

from bot.db import Database, prepare_sqlite_file
from bot.models import NotificationState

# Beside the database file, as SQLite's own -wal and -shm are.
SUFFIX = "-inbound"
# The webhook answers 503 rather than wait longer; the spool's writers hold it for moments.
BUSY_SECONDS = 10.0
# Moved into the journal per transaction.
MOVE = 500

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS spooled ("
    "id INTEGER PRIMARY KEY, digest TEXT NOT NULL, body BLOB NOT NULL, "
    "received_at TEXT NOT NULL, priority INTEGER NOT NULL, sort_at TEXT NOT NULL)"
)
_ADD = (
    "INSERT INTO spooled (digest, body, received_at, priority, sort_at) "
    "VALUES (:digest, :body, :received_at, :priority, :sort_at)"
)
_TAKE = "SELECT id, digest, body, received_at, priority, sort_at FROM spooled ORDER BY id LIMIT ?"
# The journal's own INSERT on SQLite: the move's, and the webhook's for a database in memory.
JOURNAL_INSERT = (
    "INSERT INTO inbound_notifications (digest, body, received_at, priority, sort_at, state) "
    "VALUES (:digest, :body, :received_at, :priority, :sort_at, :state) "
    "ON CONFLICT (digest) DO NOTHING"
)


def path_of(url: str) -> Path | None:
    """The spool of a SQLite database file; None for PostgreSQL and a database in memory."""
    parsed = make_url(url)
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:":
        return None
    if name.startswith("file:"):
        return None
    return Path(name + SUFFIX)


def _connect(path: Path) -> sqlite3.Connection:
    prepare_sqlite_file(f"sqlite:///{path}")
    # Autocommit: each statement is its own transaction, as short as the spool needs.
    conn = sqlite3.connect(
        path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False
    )
    # The database file's settings (bot.db): a commit survives the process that made it.
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    # SQLite copies its WAL into the file from the commit that fills it (1,000 pages), which
    # would make some acknowledgement wait for the copy: the processor does it (checkpoint).
    conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute(_SCHEMA)
    return conn


class Spool:
    """One process's connections to a spool file: one per thread, opened on first use."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        # A forked child (a gunicorn worker) keeps its parent's thread-local values, but a
        # SQLite connection must not cross a fork: each process opens its own.
        opened: tuple[int, sqlite3.Connection] | None = getattr(self._local, "opened", None)
        if opened is None or opened[0] != os.getpid():
            opened = self._local.opened = (os.getpid(), _connect(self.path))
        return opened[1]

    def add(self, params: Mapping[str, Any]) -> None:
        """Commit one notification (times as the journal stores them). Raises DBAPIError."""
        try:
            self._conn().execute(_ADD, params)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(_ADD, None, exc, sqlite3.Error) from exc

    def take(self, limit: int) -> list[dict[str, Any]]:
        """The oldest spooled notifications, as the journal's INSERT takes them."""
        rows = self._conn().execute(_TAKE, (limit,)).fetchall()
        return [
            {
                "id": r[0],
                "digest": r[1],
                "body": r[2],
                "received_at": r[3],
                "priority": r[4],
                "sort_at": r[5],
            }
            for r in rows
        ]

    def remove(self, up_to: int) -> None:
        # Ids only grow, and a row is visible once committed: those up to the last taken are
        # exactly the ones taken.
        conn = self._conn()
        conn.execute("DELETE FROM spooled WHERE id <= ?", (up_to,))
        # PASSIVE: copies what it can without waiting for, or holding up, any writer.
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")


_spools: weakref.WeakKeyDictionary[Database, Spool] = weakref.WeakKeyDictionary()
_spools_lock = threading.Lock()


def of(database: Database) -> Spool | None:
    """This database's spool in this process; None where there is none (PostgreSQL)."""
    with _spools_lock:
        spool = _spools.get(database)
        if spool is None:
            path = path_of(database.url)
            if path is None:
                return None
            spool = _spools[database] = Spool(path)
        return spool


def move(database: Database, limit: int = MOVE) -> int:
    """Move the oldest spooled notifications into the journal; how many were in the spool.

    Raises DBAPIError when either file does not answer: then nothing was removed, and the
    move is made again later.
    """
    spool = of(database)
    if spool is None:
        return 0
    try:
        rows = spool.take(limit)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(_TAKE, None, exc, sqlite3.Error) from exc
    if not rows:
        return 0
    with database.session() as session:
        session.connection().execute(
            text(JOURNAL_INSERT),
            [{**row, "state": NotificationState.PENDING.value} for row in rows],
        )
    try:
        spool.remove(rows[-1]["id"])
    except sqlite3.Error as exc:
        # Moved but not removed: the next move finds them in the journal already.
        raise DBAPIError.instance("DELETE", None, exc, sqlite3.Error) from exc
    return len(rows)


def move_all(database: Database) -> int:
    """Move everything spooled into the journal, MOVE at a time; how many.

    The processor moves all before it takes a batch: moved in part, a contact's later message
    could be processed before an earlier one still in the spool.
    """
    total = 0
    while (moved := move(database)) > 0:
        total += moved
        if moved < MOVE:
            break
    return total


# --- what the health check and an erasure read: a connection of their own, rarely opened ------


@contextmanager
def _opened(url: str) -> Iterator[sqlite3.Connection | None]:
    """The spool, or None when there is none (yet). Raises DBAPIError when it cannot be read."""
    path = path_of(url)
    if path is None or not path.exists():
        yield None
        return
    try:
        with closing(_connect(path)) as conn:
            yield conn
    except sqlite3.Error as exc:
        raise DBAPIError.instance(str(path), None, exc, sqlite3.Error) from exc


@dataclass(frozen=True)
class Waiting:
    count: int
    oldest: datetime | None  # the oldest one's arrival


def waiting(url: str) -> Waiting:
    """How many notifications the spool holds, and the oldest one's arrival."""
    with _opened(url) as conn:
        if conn is None:
            return Waiting(0, None)
        count, oldest = conn.execute("SELECT count(*), min(received_at) FROM spooled").fetchone()
    # Stored as the journal stores times on SQLite: naive UTC.
    at = None if oldest is None else datetime.fromisoformat(oldest).replace(tzinfo=UTC)
    return Waiting(int(count), at)


def rewrite(url: str, change: Callable[[bytes], bytes | None]) -> int:
    """Pass each spooled body through `change`: a new body, the same, or None to drop the
    notification. How many were changed or dropped. For an erasure: a notification not moved
    yet must lose the customer too."""
    changed = 0
    with _opened(url) as conn:
        if conn is None:
            return 0
        for row_id, body in conn.execute("SELECT id, body FROM spooled").fetchall():
            new = change(bytes(body))
            if new is None:
                conn.execute("DELETE FROM spooled WHERE id = ?", (row_id,))
            elif new != body:
                conn.execute("UPDATE spooled SET body = ? WHERE id = ?", (new, row_id))
            else:
                continue
            changed += 1
    return changed
