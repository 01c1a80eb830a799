"""The database: engine and sessions per app, SQLite tuning, and migrations applied on demand."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from flask import Flask, current_app
from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from bot import private_files
from bot.config import ConfigError

log = logging.getLogger("tresen.db")

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Several processes write to one SQLite file: wait for the lock rather than fail at once.
SQLITE_BUSY_MS = 30_000
# Inside a transaction (which holds the write lock already) waits are rare and short.
SQLITE_SHORT_BUSY_MS = 50
# A database that does not answer must fail a request well inside gunicorn's 30 s timeout.
PG_CONNECT_TIMEOUT = 5
# Files SQLite keeps beside the database while it writes.
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
# A pooled PostgreSQL connection idle longer than this is pinged before use (seconds).
PING_AFTER_IDLE = 1.0


class Database:
    """One engine and session factory; web requests, workers and commands each hold their own."""

    def __init__(self, url: str, *, pool_size: int = 5) -> None:
        self.url = url
        self.engine = make_engine(url, pool_size=pool_size)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessions = _read_sessions(self.engine)
        self._turn: contextlib.AbstractContextManager[Any] = (
            _sqlite_turn(url) if url.startswith("sqlite") else contextlib.nullcontext()
        )

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session whose transaction commits on success and rolls back on any error."""
        with self._turn, self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A session for a look that writes nothing: on SQLite it takes neither this process's
        turn nor the write lock, so a poll that finds nothing holds up no writer (a web
        request's journal INSERT). Elsewhere it is an ordinary transaction."""
        with self.read_sessions() as session, session.begin():
            yield session

    def turn(self) -> contextlib.AbstractContextManager[Any]:
        """This process's turn at writing to a SQLite file (see SQLiteTurn); nothing elsewhere."""
        return self._turn

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception:  # any failure means "not answering"; the caller reports it
            log.warning("database ping failed", exc_info=True)
            return False
        return True

    def resize(self, pool_size: int, *, max_overflow: int | None = None) -> None:
        """Size the pool for this process before it serves (gunicorn: a connection per thread
        and one spare), so that processes times pool stays within the server's connections."""
        if self.dialect == "sqlite":
            return
        self.engine.dispose()
        self.engine = make_engine(self.url, pool_size=pool_size, max_overflow=max_overflow)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessions = _read_sessions(self.engine)

    def upgrade(self) -> None:
        upgrade(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


# The execution option that marks a read-only session's connection (see _tune_sqlite).
READ_ONLY = "tresen_read_only"


def _read_sessions(engine: Engine) -> sessionmaker[Session]:
    if engine.dialect.name != "sqlite":
        return sessionmaker(engine, expire_on_commit=False)
    return sessionmaker(engine.execution_options(**{READ_ONLY: True}), expire_on_commit=False)


class FifoRLock:
    """A reentrant lock that threads get in the order they asked for it, handed over directly.

    threading.RLock lets a thread that just released it take it again before the waiters
    wake, so under load some waiters wait many turns: SQLite's closed-loop webhook p99 was
    about half again as long with it.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._queue: deque[tuple[int, threading.Lock]] = deque()
        self._owner: int | None = None
        self._count = 0

    def acquire(self) -> None:
        me = threading.get_ident()
        with self._mutex:
            if self._owner == me:
                self._count += 1
                return
            if self._owner is None:
                self._owner, self._count = me, 1
                return
            gate = threading.Lock()
            gate.acquire()
            self._queue.append((me, gate))
        try:
            gate.acquire()  # released by release(), which made this thread the owner
        except BaseException:  # a signal handler raised while waiting
            with self._mutex:
                if (me, gate) in self._queue:
                    self._queue.remove((me, gate))
                    raise
            self.release()  # it was handed over meanwhile: hand it on
            raise

    def release(self) -> None:
        with self._mutex:
            if self._owner != threading.get_ident():
                raise RuntimeError("release of a lock this thread does not hold")
            self._count -= 1
            if self._count:
                return
            if self._queue:
                self._owner, gate = self._queue.popleft()
                self._count = 1
                gate.release()
            else:
                self._owner = None


class SQLiteTurn:
    """Writers of one SQLite file take turns: first the threads of a process, then processes.

    SQLite's own wait for a busy database sleeps in growing steps of up to 100 ms and is not
    first-come-first-served; with a dozen threads waiting, some waited half a second. Here the
    threads of a process queue in order on a FifoRLock, and one thread per process waits on an exclusive
    flock of a file beside the database, which the kernel hands on the moment it is released.
    """

    def __init__(self, path: str | None) -> None:
        self._path = path
        self._fd: int | None = None
        self._after_fork()

    def _after_fork(self) -> None:
        # A forked child starts with its parent's lock state (held, if the forking thread held
        # it) and shares the parent's open lock file, whose flock is the parent's: start anew.
        # Closing the inherited descriptor leaves the parent's flock in place.
        self._threads = FifoRLock()
        self._depth = 0  # nesting of the owning thread; changed only while holding _threads
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> None:
        self._threads.acquire()
        self._depth += 1
        if self._depth == 1 and self._path is not None:
            try:
                fcntl.flock(self._lock_file(), fcntl.LOCK_EX)
            except BaseException:
                self._depth -= 1
                self._threads.release()
                raise

    def __exit__(self, *_exc: object) -> None:
        try:
            if self._depth == 1 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._depth -= 1
            self._threads.release()

    def _lock_file(self) -> int:
        if self._fd is None:
            assert self._path is not None
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd


_sqlite_turns: dict[str, SQLiteTurn] = {}
_sqlite_turns_lock = threading.Lock()


def _turns_after_fork() -> None:
    global _sqlite_turns_lock
    _sqlite_turns_lock = threading.Lock()
    for turn in _sqlite_turns.values():
        turn._after_fork()


os.register_at_fork(after_in_child=_turns_after_fork)


def _sqlite_turn(url: str) -> SQLiteTurn:
    """The one turn per SQLite file in this process."""
    path = url.split(":///", 1)[-1] if ":///" in url else ""
    lock_path = None if path in ("", ":memory:") or path.startswith("file:") else f"{path}-turn"
    with _sqlite_turns_lock:
        return _sqlite_turns.setdefault(url, SQLiteTurn(lock_path))


def make_engine(url: str, *, pool_size: int = 5, max_overflow: int | None = None) -> Engine:
    if url.startswith("sqlite"):
        prepare_sqlite_file(url)
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_MS / 1000})
        _tune_sqlite(engine)
        return engine
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size if max_overflow is None else max_overflow,
        connect_args={"connect_timeout": PG_CONNECT_TIMEOUT},
        pool_recycle=1800,
    )
    _ping_when_idle(engine)
    _utc_sessions(engine)
    return engine


def _utc_sessions(engine: Engine) -> None:
    """Every PostgreSQL session in UTC, whatever the server's default zone.

    The driver reads a time in the session's zone, and a stored time near either end of the
    calendar (9999-12-31 23:59 UTC) does not fit it in another zone: every read of that row
    would fail. Set at connection time, so it costs no round trip.
    """

    @event.listens_for(engine, "do_connect")
    def on_connect(_dialect: Any, _record: Any, _args: Any, params: dict[str, Any]) -> None:
        # After any options of the URL (a search_path), so theirs are kept.
        params["options"] = f"{params.get('options', '')} -c TimeZone=UTC".strip()


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection on checkout when it has been idle a while.

    A connection the server dropped (restart, pg_terminate_backend) is found out this way and
    replaced. One in steady use is not pinged: that round trip was an eighth of a webhook's.
    If it drops mid-transaction, that transaction fails with a DBAPIError (the webhook answers
    503), and SQLAlchemy discards it and every pooled connection older than the failure.
    """

    @event.listens_for(engine, "checkin")
    def on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE:
            return  # new, or in use a moment ago
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # whatever the driver raises for a dead connection
            raise DisconnectionError(str(exc)) from exc
        if not alive:
            raise DisconnectionError("connection did not answer a ping")


def prepare_sqlite_file(url: str) -> None:
    """Create the database file for its owner only before SQLite opens it.

    SQLite would create it readable by all (0644 under the usual umask), and it gives the -wal,
    -shm and -journal files it makes later the database file's mode: one file made 0600 here
    keeps all of them private. Files of an older version are tightened.
    """
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    try:
        if not path.parent.exists():
            private_files.make_folder(path.parent)
        created = private_files.create_file(path)
    except OSError as exc:
        raise ConfigError(f"the SQLite database {path} cannot be created: {exc}") from exc
    if not created:
        for each in (path, *(path.with_name(path.name + end) for end in _SQLITE_SIDE_FILES)):
            private_files.tighten(each)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so that BEGIN IMMEDIATE below is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # From here on, waiting for the write lock is on_begin's job (see there).
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_SHORT_BUSY_MS}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn: Any) -> None:
        # A deferred transaction that later writes fails at once with SQLITE_BUSY when another
        # process wrote meanwhile; taking the write lock up front makes it wait its turn instead.
        # SQLite's own wait sleeps in steps growing to 100 ms, which under contention left some
        # requests waiting a second; retrying every few milliseconds keeps the wait short.
        raw = conn.connection.dbapi_connection
        if conn.get_execution_options().get(READ_ONLY):
            # A reader (Database.reading): a deferred transaction, which in WAL mode neither
            # waits for nor blocks a writer.
            raw.execute("BEGIN")
            return
        deadline = time.monotonic() + SQLITE_BUSY_MS / 1000
        pause = 0.0005
        while True:
            try:
                raw.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc
            time.sleep(pause * (0.5 + random.random()))  # noqa: S311 (jitter, not secrets)
            pause = min(pause * 2, 0.004)


def alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def init_app(app: Flask, database: Database) -> None:
    app.extensions["tresen.db"] = database


def get_db(app: Flask | None = None) -> Database:
    db: Database = (app or current_app).extensions["tresen.db"]
    return db
