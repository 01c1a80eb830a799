"""Logging in without letting logins hurt anything else.

Failed logins are counted per client address and per name typed, in the database so that every
process sees them, and each count past a few typos makes the next attempt wait longer.
Attempts that must wait are refused before any password hashing. Hashing itself (about a tenth
of a second of CPU) runs outside any database transaction, on one low-priority thread per
process, and only a couple of logins per process may be in it at once: a flood of logins
gets "busy" answers instead of taking the request threads and the CPU the webhook needs.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot import users
from bot.db import Database
from bot.models import LoginThrottle, User
from bot.sql import insert_ignore

log = logging.getLogger("tresen.logins")


@dataclass(frozen=True)
class Policy:
    """How failures of one kind (per address, per name) slow down the next attempt."""

    free: int  # failures in a row before any wait: typos
    first: timedelta  # the first wait; each further failure doubles it
    cap: timedelta


# An address that keeps guessing waits up to a quarter of an hour between guesses.
ADDRESS = Policy(free=3, first=timedelta(seconds=1), cap=timedelta(minutes=15))
# A name waits at most half a minute: anyone may type it from anywhere, so a long wait per name
# would let a stranger's occasional wrong guess keep the owner out. The per-address wait is
# what stops one guesser; this one caps guesses at a name from many addresses.
NAME = Policy(free=3, first=timedelta(seconds=1), cap=timedelta(seconds=30))
# Failures older than this are forgotten (their rows deleted at the next successful login).
FORGET_AFTER = timedelta(hours=1)
KEY_MAX = 100


def wait_after(policy: Policy, failures: int) -> timedelta | None:
    """How long the next attempt waits after `failures` failures in a row."""
    if failures < policy.free:
        return None
    # The exponent is capped before it is used: a timedelta overflows long before 2**50.
    doublings = min(failures - policy.free, 20)
    return min(policy.first * 2**doublings, policy.cap)


def address_key(address: str) -> str:
    """The throttle key of a client address; IPv6 by its /64, which one subscriber holds."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"addr:{address}"[:KEY_MAX]
    if ip.version == 6:
        return f"addr:{ipaddress.ip_network(f'{ip}/64', strict=False)}"
    return f"addr:{ip}"


def name_key(name: str) -> str:
    # Known or not: an unknown name is throttled like a real one, so waits reveal nothing.
    return f"name:{name.strip()}"[:KEY_MAX]


def claim(session: Session, keys: dict[str, Policy], *, now: datetime) -> timedelta | None:
    """Count an attempt as failed before its password is checked (`clear` undoes it).

    Counting first means a burst of parallel attempts cannot all slip past the count. Returns
    how long to wait when any key is still waiting; such an attempt is not counted, so
    hammering a waiting name or address does not make its wait longer.
    """
    session.execute(
        insert_ignore(session, LoginThrottle, ["key"]),
        [{"key": key, "failures": 0, "last_failure_at": now} for key in keys],
    )
    rows = session.scalars(
        select(LoginThrottle)
        .where(LoginThrottle.key.in_(list(keys)))
        .order_by(LoginThrottle.key)  # one order for every process: no deadlock
        .with_for_update()
    ).all()
    waits = [
        row.blocked_until - now for row in rows if row.blocked_until and row.blocked_until > now
    ]
    if waits:
        return max(waits)
    for row in rows:
        if row.last_failure_at < now - FORGET_AFTER:
            row.failures = 0
        row.failures += 1
        row.last_failure_at = now
        wait = wait_after(keys[row.key], row.failures)
        row.blocked_until = now + wait if wait is not None else None
    return None


def clear(session: Session, keys: dict[str, Policy], *, now: datetime) -> None:
    """A login succeeded: its address and name start afresh, and long-quiet rows go.

    Pruning here, not on every attempt: logins that get this far are few, and a prune racing
    the row locks of a flood of attempts could deadlock on PostgreSQL.
    """
    session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.key.in_(list(keys)) | (LoginThrottle.last_failure_at < now - FORGET_AFTER)
        )
    )


class HashGate:
    """Where the passwords of one process are checked: one at a time, at low CPU priority.

    At most `slots` logins wait here at once; the next is turned away at the door, so a
    flood of logins holds at most that many of the server's request threads.
    """

    def __init__(self, slots: int = 2, timeout: float = 10.0) -> None:
        self.slots = slots
        self.timeout = timeout
        self._after_fork()
        os.register_at_fork(after_in_child=self._after_fork)

    def _after_fork(self) -> None:
        # A forked child has none of its parent's threads: it starts its own when needed.
        self._door = threading.BoundedSemaphore(self.slots)
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    def enter(self) -> bool:
        return self._door.acquire(blocking=False)

    def leave(self) -> None:
        self._door.release()

    def check(self, check: Callable[[], bool]) -> bool | None:
        """Run `check` on the hashing thread; None when it took longer than the timeout."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="password-hash", initializer=_low_priority
                )
            future: Future[bool] = self._executor.submit(check)
        try:
            return future.result(timeout=self.timeout)
        except FutureTimeout:
            future.cancel()  # still queued: never run it for nobody
            return None


def _low_priority() -> None:
    # On Linux a thread has its own nice value: the webhook's threads get the CPU first.
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    except (AttributeError, OSError):  # not Linux, or not allowed: hashing just competes
        log.debug("could not lower the password hashing thread's priority", exc_info=True)


GATE = HashGate()


class Outcome(StrEnum):
    LOGGED_IN = "logged_in"
    REFUSED = "refused"  # wrong name or password
    WAIT = "wait"  # too many failures from this address or for this name
    BUSY = "busy"  # too many logins being checked at once
    # The right password of a deactivated user: said plainly, as only someone who knows the
    # password learns that the name exists.
    DEACTIVATED = "deactivated"


@dataclass(frozen=True)
class Attempt:
    outcome: Outcome
    user: users.SessionUser | None = None
    token: str | None = None  # the new session's, for the cookie
    retry_after: int = 0  # seconds, for WAIT and BUSY


def log_in(
    db: Database,
    name: str,
    password: str,
    *,
    address: str,
    now: datetime,
    lifetime: timedelta,
    gate: HashGate | None = None,
) -> Attempt:
    """Check a login from `address`; on success start a session (its token is returned)."""
    gate = gate or GATE
    name = name.strip()
    keys = {address_key(address): ADDRESS, name_key(name): NAME}
    if not gate.enter():
        return Attempt(Outcome.BUSY, retry_after=1)
    try:
        with db.session() as session:
            wait = claim(session, keys, now=now)
            found = users.find(session, name) if wait is None else None
        if wait is not None:
            return Attempt(Outcome.WAIT, retry_after=max(1, math.ceil(wait.total_seconds())))
        stored_hash = found[1] if found else None
        # Outside any transaction: on SQLite an open one would hold up every writer meanwhile.
        matches = gate.check(lambda: users.password_matches(stored_hash, password))
        if matches is None:
            return Attempt(Outcome.BUSY, retry_after=1)
        if not matches or found is None:
            return Attempt(Outcome.REFUSED)
        with db.session() as session:
            user = session.get(User, found[0], with_for_update=True)
            if user is None or user.password_hash != stored_hash:
                return Attempt(Outcome.REFUSED)  # deleted or given a new password meanwhile
            if not user.active:
                return Attempt(Outcome.DEACTIVATED)
            clear(session, keys, now=now)
            user.last_login_at = now
            token = users.start_session(session, user.id, now=now, lifetime=lifetime)
            found_user = users.SessionUser(
                user.id, user.name, users.Role(user.role), user.locale, user.may_broadcast
            )
            return Attempt(Outcome.LOGGED_IN, found_user, token)
    finally:
        gate.leave()
