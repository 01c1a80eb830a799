"""SQLite writers taking turns: threads of a process, then processes, through a file lock."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.db import Database, FifoRLock, _sqlite_turn


def _try_lock(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_a_session_holds_the_file_lock_that_other_processes_wait_on(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'tresen.db'}")
    lock = tmp_path / "tresen.db-turn"
    with database.session() as session:
        session.execute(text("SELECT 1"))
        assert not _try_lock(lock)  # another open file: what another process would see
    assert _try_lock(lock)
    database.dispose()


def test_threads_take_turns_and_each_commits(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'tresen.db'}")
    with database.session() as session:
        session.execute(text("CREATE TABLE n (v INTEGER)"))
        session.execute(text("INSERT INTO n VALUES (0)"))

    def add() -> None:
        for _ in range(50):
            with database.session() as session:
                v = session.execute(text("SELECT v FROM n")).scalar_one()
                session.execute(text("UPDATE n SET v = :v"), {"v": v + 1})

    threads = [threading.Thread(target=add) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    with database.session() as session:
        assert session.execute(text("SELECT v FROM n")).scalar_one() == 200
    database.dispose()


def _enter_after_fork(url: str, entered: multiprocessing.Queue[float]) -> None:
    with _sqlite_turn(url):
        entered.put(time.monotonic())


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_a_forked_process_waits_for_its_parents_turn(tmp_path: Path) -> None:
    """Forked while the parent holds its turn (as gunicorn forks workers), the child must not
    inherit that turn: neither the thread lock's owner nor the shared lock file's flock."""
    url = f"sqlite:///{tmp_path / 'tresen.db'}"
    context = multiprocessing.get_context("fork")
    entered: multiprocessing.Queue[float] = context.Queue()
    with _sqlite_turn(url):
        child = context.Process(target=_enter_after_fork, args=(url, entered))
        child.start()
        time.sleep(0.5)
        released = time.monotonic()
    child.join(30)
    assert child.exitcode == 0
    assert entered.get(timeout=5) >= released


def _waiting(lock: FifoRLock, n: int) -> None:
    deadline = time.monotonic() + 5
    while len(lock._queue) < n and time.monotonic() < deadline:
        time.sleep(0.001)
    assert len(lock._queue) == n


def test_threads_get_the_turn_in_the_order_they_asked() -> None:
    """The thread that lets go and asks again at once queues behind those already waiting."""
    lock = FifoRLock()
    order: list[str] = []

    def worker(name: str) -> None:
        lock.acquire()
        order.append(name)
        lock.release()

    lock.acquire()
    lock.acquire()  # reentrant: the owner may nest
    threads = []
    for k, name in enumerate(("first", "second", "third")):
        threads.append(threading.Thread(target=worker, args=(name,)))
        threads[-1].start()
        _waiting(lock, k + 1)
    lock.release()
    assert order == []  # still held once
    lock.release()
    lock.acquire()
    order.append("again")
    lock.release()
    for t in threads:
        t.join(5)
    assert order == ["first", "second", "third", "again"]
    with pytest.raises(RuntimeError):
        lock.release()


def test_a_read_only_session_takes_no_turn_and_reads_what_is_committed(tmp_path: Path) -> None:
    """A poll that finds nothing must not hold up writers: Database.reading neither takes the
    process's turn (the file lock other processes wait on) nor SQLite's write lock."""
    database = Database(f"sqlite:///{tmp_path / 'tresen.db'}")
    lock = tmp_path / "tresen.db-turn"
    with database.session() as session:
        session.execute(text("CREATE TABLE n (v INTEGER)"))
        session.execute(text("INSERT INTO n VALUES (1)"))
    with database.reading() as reader:
        assert reader.execute(text("SELECT v FROM n")).scalar_one() == 1
        assert _try_lock(lock)  # another process could take its turn meanwhile
    # Inside a writer's open transaction, which holds the turn and the write lock, a reader
    # on another connection still reads at once, and sees only what was committed.
    with database.session() as writer:
        writer.execute(text("UPDATE n SET v = 2"))
        with database.reading() as reader:
            assert reader.execute(text("SELECT v FROM n")).scalar_one() == 1
    with database.reading() as reader:
        assert reader.execute(text("SELECT v FROM n")).scalar_one() == 2
    database.dispose()
