"""The dispatcher: claims queued messages, sends many at once within the shared rate, settles
each as sent, failed with its reason, or due again later.

One thread talks to the database (claims, launch marks and settlements, in batches); a
bounded pool of threads talks to the Graph API. On stop it claims nothing more, lets what is
in flight finish, and gives back what had not started.

A request that may have reached Meta without an answer (a read timeout, a connection dropped
after the request went out, a sender that died after launching it) is uncertain: Meta may have
delivered it. A reply is sent once more after such a request, after a pause; a broadcast
message is not sent again. Either then fails with a reason saying so, rather than risk a
duplicate. What counts is only what went out: each request is marked launched in the database
before it is posted, and the mark is taken back when Meta's answer is recorded; a message its
dead sender had claimed but not launched (still waiting for its send slot) is sent normally.

The instants it stores and compares with stored times (claims, leases, settlements, due
times) come from its `clock`. The shared send rate and the pause after a refused token follow
the real clock: they pace requests to Meta in real seconds, whatever instant is injected.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from bot.broadcasts.limits import LIMIT_REACHED_CODE
from bot.channels.errors import AuthError, RecipientRateLimited, RetryLater, SendError
from bot.channels.transport import Transport
from bot.db import Database
from bot.models import utcnow
from bot.outbound import backoff, messaging_limit, outbox
from bot.outbound.ratelimit import SharedRate

log = logging.getLogger("tresen.dispatcher")

# Meta lets a business send one message to a given user about every 6 seconds on average.
PAIR_RATE_WAIT = 6.0
# After this, retrying is pointless: the 24-hour window is gone and the reply stale.
GIVE_UP_AFTER = timedelta(hours=24)
AUTH_PAUSE = 60.0
# Finished requests wait at most this long to be recorded when no claim is due meanwhile.
SETTLE_AFTER = 0.05
# A reply gets one more try after an uncertain request, after this pause (Meta may still be
# working on the first); a broadcast message none: a missed offer is better than two.
UNCERTAIN_WAIT = timedelta(seconds=45)
UNCERTAIN_RESENDS_REPLY = 1
UNCERTAIN_RESENDS_BROADCAST = 0
NOT_SENT_AGAIN = "not sent again to avoid a duplicate"


@dataclass(frozen=True)
class Outcome:
    message_id: int
    kind: Literal["sent", "failed", "retry", "released"]
    wamid: str | None = None
    code: int | None = None
    reason: str | None = None
    due: datetime | None = None
    # The request may have reached Meta: its launch mark stays.
    uncertain: bool = False
    # Marked launched before its request went out (see `outbox.launch`).
    launched: bool = False

    @property
    def answered(self) -> bool:
        """Meta answered the launched request: its launch mark is taken back."""
        return self.launched and not self.uncertain


class Launch:
    """A sending thread's request to have its message marked launched before it posts it.

    The database thread answers it: `marked` says whether it was, `done` is set then."""

    __slots__ = ("done", "marked", "message_id")

    def __init__(self, message_id: int) -> None:
        self.message_id = message_id
        self.done = threading.Event()
        self.marked = False


def _sent(outcomes: list[Outcome]) -> list[tuple[int, str]]:
    return [(o.message_id, o.wamid) for o in outcomes if o.kind == "sent" and o.wamid]


def _retry(message: outbox.Claimed, exc: SendError, due: datetime) -> Outcome:
    """Back in the queue at `due`, with what the channel said on record meanwhile."""
    return Outcome(message.id, "retry", code=exc.code, reason=exc.reason, due=due)


def may_send_again(message: outbox.Claimed, uncertain: int) -> bool:
    """Whether `message` may be sent once more with `uncertain` requests behind it that may
    have reached Meta."""
    allowed = UNCERTAIN_RESENDS_BROADCAST if message.broadcast else UNCERTAIN_RESENDS_REPLY
    return uncertain <= allowed


def worker_name() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def default_concurrency(send_rate: float) -> int:
    # Enough requests in flight to fill the rate at ~300 ms per Graph answer, within reason.
    return max(4, min(256, int(send_rate * 0.3) + 4))


# Put in the dispatcher's inbox by wake(): ends its wait for results early.
_WAKE = None


class Dispatcher:
    def __init__(
        self,
        database: Database,
        transport: Transport,
        *,
        rate: SharedRate | None,
        concurrency: int = 32,
        lease: timedelta = timedelta(seconds=30),
        poll: float = 0.25,
        worker: str | None = None,
        uncertain_wait: timedelta = UNCERTAIN_WAIT,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.database = database
        self.transport = transport
        self.rate = rate
        self.concurrency = concurrency
        self.lease = lease
        self.poll = poll
        self.worker = worker or worker_name()
        self.uncertain_wait = uncertain_wait
        self.clock = clock
        self.sent = 0
        # Finished requests and launch requests, for the database thread.
        self._inbox: queue.SimpleQueue[Outcome | Launch | None] = queue.SimpleQueue()
        self._launches: list[Launch] = []  # received, not yet marked (database thread only)
        self._closed = False  # the database thread has returned: no launch is marked any more
        self._paused_until = 0.0  # monotonic
        self._renew_at = 0.0  # monotonic

    # --- the database thread ---------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Dispatch until `stop` is set, then drain what is in flight and return."""
        log.info("dispatcher %s started (%d in flight at most)", self.worker, self.concurrency)
        inflight = 0  # claimed by this process and not yet recorded as settled
        done: list[Outcome] = []  # finished, not yet recorded
        oldest = 0.0  # when the first of `done` finished (monotonic)
        with (
            ThreadPoolExecutor(self.concurrency, thread_name_prefix="send") as pool,
            self._closing(),
        ):
            while True:
                if not done:
                    oldest = time.monotonic()
                done.extend(self._drain())
                if self._launches:
                    self._mark_launched()
                # One instant per pass: a pass is a few short transactions, and the next one
                # starts with a new instant.
                now = self.clock()
                if inflight > len(done):
                    self._renew(inflight - len(done), now)
                if stop.is_set():
                    if done and self._settle(done, now):
                        inflight -= len(done)
                        done = []
                    if inflight == 0:
                        break
                    if inflight == len(done):  # all finished, the database just not answering
                        self._settle_before_exit(done)
                        break
                    self._wait_result(done, 0.1)
                    continue
                # A finished request frees its slot at once: its result is recorded in the
                # same transaction that claims the next messages. Claims come in batches of
                # an eighth of the slots or more, not one row per finished request.
                free = self.concurrency - inflight + len(done)
                want = free if inflight == len(done) or free * 8 >= self.concurrency else 0
                lingered = time.monotonic() - oldest
                full = False
                if want or (done and lingered >= SETTLE_AFTER):
                    started = self._turn(pool, done, want, stop, now)
                    if started is not None:
                        inflight += started - len(done)
                        done = []
                        full = want > 0 and started == want
                if not full:
                    wait = SETTLE_AFTER - lingered if done else self.poll
                    self._wait_result(done, max(0.001, min(self.poll, wait)))
        log.info("dispatcher %s stopped", self.worker)

    @contextlib.contextmanager
    def _closing(self) -> Iterator[None]:
        # However the loop ends: sending threads still waiting for a launch mark give their
        # message back, and the pool can shut down.
        try:
            yield
        finally:
            self._closed = True

    def _turn(
        self,
        pool: ThreadPoolExecutor,
        done: list[Outcome],
        want: int,
        stop: threading.Event,
        now: datetime,
    ) -> int | None:
        """Record `done` and claim up to `want` more in one transaction, and start those.

        Returns how many were started, or None when the database failed (nothing recorded).
        """
        if time.monotonic() < self._paused_until:
            want = 0
        try:
            with self.database.session() as session:
                self._record(session, done, now)
                claimed = (
                    outbox.claim(session, self.worker, want, now=now, lease=self.lease)
                    if want
                    else []
                )
                # The send slots in the same transaction: one commit less per batch, and a
                # claim is never left without its slots (nothing to give back if the
                # reservation fails: the claim goes with it). Slots are unix times of the
                # real clock, shared by all processes.
                starts = (
                    self.rate.reserve_in(session, len(claimed), time.time())
                    if self.rate and claimed
                    else [0.0] * len(claimed)
                )
        except DBAPIError as exc:
            log.warning(
                "cannot record results or claim messages (%s); trying again",
                exc.__class__.__name__,
            )
            stop.wait(1.0)
            return None
        self._recorded(done)
        for message, start in zip(claimed, starts, strict=True):
            pool.submit(self._send, message, start, stop)
        return len(claimed)

    def _renew(self, holding: int, now: datetime) -> None:
        """Every third of the lease, extend the claims of the messages still being sent.

        A claim that runs out is taken over as possibly sent; while this process lives, a
        slow answer or a long wait for a send slot must not look like that.
        """
        if time.monotonic() < self._renew_at:
            return
        try:
            with self.database.session() as session:
                outbox.renew(session, self.worker, now=now, lease=self.lease)
        except DBAPIError as exc:
            log.warning(
                "cannot extend the claims of %d messages in flight (%s); trying again",
                holding,
                exc.__class__.__name__,
            )
            self._renew_at = time.monotonic() + min(1.0, self.lease.total_seconds() / 3)
            return
        self._renew_at = time.monotonic() + self.lease.total_seconds() / 3

    def _drain(self) -> list[Outcome]:
        done: list[Outcome] = []
        while True:
            try:
                self._take(self._inbox.get_nowait(), done)
            except queue.Empty:
                return done

    def _wait_result(self, into: list[Outcome], timeout: float) -> None:
        """Wait up to `timeout` for a result or a launch request (a sending thread waits for
        that one: the loop goes round at once to mark it)."""
        with contextlib.suppress(queue.Empty):
            self._take(self._inbox.get(timeout=timeout), into)

    def wake(self) -> None:
        """New messages were queued in this process: look now rather than at the next poll."""
        self._inbox.put(_WAKE)

    def _take(self, item: Outcome | Launch | None, done: list[Outcome]) -> None:
        if isinstance(item, Launch):
            self._launches.append(item)
        elif item is not None:
            done.append(item)

    def _mark_launched(self) -> None:
        """Mark the requests of all waiting sending threads as launched, in one transaction,
        and let them go: a thread whose mark was not committed gives its message back."""
        launches, self._launches = self._launches, []
        try:
            with self.database.session() as session:
                marked = outbox.launch(session, self.worker, [x.message_id for x in launches])
        except DBAPIError as exc:
            log.warning(
                "cannot mark %d messages as going out (%s); giving them back",
                len(launches),
                exc.__class__.__name__,
            )
            marked = set()
        for launch in launches:
            launch.marked = launch.message_id in marked
            launch.done.set()

    def _settle(self, outcomes: list[Outcome], now: datetime) -> bool:
        try:
            with self.database.session() as session:
                self._record(session, outcomes, now)
        except DBAPIError as exc:
            # Kept in memory and written when the database is back; if this process dies
            # first, the lease runs out and the messages are sent again by someone.
            log.warning(
                "cannot record %d results (%s); keeping them", len(outcomes), exc.__class__.__name__
            )
            return False
        self._recorded(outcomes)
        return True

    def _record(self, session: Session, outcomes: list[Outcome], now: datetime) -> None:
        # The common case in one statement for all: at hundreds of messages a second, one
        # UPDATE built and run per message cost more CPU than sending the message did.
        # Every request answered with a message id was launched: its mark is taken back.
        outbox.mark_sent_many(session, _sent(outcomes), now=now, answered=True)
        for o in outcomes:
            if o.kind == "sent" and o.wamid:
                continue
            if o.kind == "failed":
                outbox.mark_failed(
                    session,
                    o.message_id,
                    code=o.code,
                    reason=o.reason or "",
                    now=now,
                    answered=o.answered,
                    worker=self.worker,
                )
            elif o.kind == "retry" and o.due is not None:
                if o.code == LIMIT_REACHED_CODE:
                    # The messaging limit is reached: the pacer releases no more for now.
                    messaging_limit.learn_refusal(session, now)
                outbox.retry_at(
                    session,
                    o.message_id,
                    o.due,
                    code=o.code,
                    reason=o.reason,
                    answered=o.answered,
                    worker=self.worker,
                )
            else:
                outbox.release(session, o.message_id, now=now, worker=self.worker)

    def _recorded(self, outcomes: list[Outcome]) -> None:
        # Logged here, by the one database thread, rather than by each sending thread: a
        # hundred threads taking turns at the log handler's lock slowed every send down.
        sent = _sent(outcomes)
        for message_id, wamid in sent:
            log.info("message %s sent as %s", message_id, wamid)
        self.sent += len(sent)

    def _settle_before_exit(self, outcomes: list[Outcome]) -> None:
        """On shutdown, try a little longer to record the last results."""
        for _ in range(10):
            # Each try is its own instant: they are half a second apart.
            if self._settle(outcomes, self.clock()):
                return
            time.sleep(0.5)
        log.error("stopping with %d results unrecorded; their leases will expire", len(outcomes))

    # --- the sending threads -----------------------------------------------------------------

    def _send(self, message: outbox.Claimed, start: float, stop: threading.Event) -> None:
        try:
            outcome = self._attempt(message, start, stop)
        except Exception as exc:  # a bug must not lose the message: it fails with the reason
            log.exception("message %s could not be sent", message.id)
            outcome = Outcome(message.id, "failed", reason=f"{type(exc).__name__}: {exc}"[:300])
        self._inbox.put(outcome)

    def _attempt(self, message: outbox.Claimed, start: float, stop: threading.Event) -> Outcome:
        wait = start - time.time()  # `start` is a slot of the shared rate, in real time
        if wait > 0 and stop.wait(wait):
            return Outcome(message.id, "released")
        if time.monotonic() < self._paused_until:
            return Outcome(message.id, "released")
        if not may_send_again(message, message.uncertain):
            # Its claim ran out while it was being sent: the process sending it died.
            reason = (
                f"uncertain: the sending process stopped before WhatsApp answered; {NOT_SENT_AGAIN}"
            )
            log.warning("message %s failed: %s", message.id, reason)
            return Outcome(message.id, "failed", reason=reason)
        if not self._launch(message.id):
            return Outcome(message.id, "released")
        try:
            wamid = self.transport.send(message.payload)
        except SendError as exc:
            # Read when the answer is in, not with the claim: the wait for a send slot and
            # the request itself may have taken a while, and the next try counts from now.
            return replace(self._after_error(message, exc, self.clock()), launched=True)
        return Outcome(message.id, "sent", wamid=wamid, launched=True)

    def _launch(self, message_id: int) -> bool:
        """Have the database thread mark this message launched; whether it was committed.

        From the commit on, a death of this process leaves the message counted as possibly
        sent; before it, the message is sent by whoever takes it over."""
        launch = Launch(message_id)
        self._inbox.put(launch)
        while not launch.done.wait(1.0):
            if self._closed:
                # The database thread marks nothing after it has returned.
                return launch.done.is_set() and launch.marked
        return launch.marked

    def _after_error(self, message: outbox.Claimed, exc: SendError, now: datetime) -> Outcome:
        reason = exc.reason
        if isinstance(exc, AuthError | RetryLater) and now - message.created_at > GIVE_UP_AFTER:
            log.warning(
                "message %s failed after %d attempts: %s", message.id, message.attempts, reason
            )
            return Outcome(
                message.id,
                "failed",
                code=exc.code,
                reason=f"gave up after {message.attempts} attempts: {reason}",
            )
        if isinstance(exc, AuthError):
            self._paused_until = time.monotonic() + AUTH_PAUSE
            log.error(
                "the Graph API refused the access token (%s): sending paused for %ds; "
                "check WHATSAPP_TOKEN",
                reason,
                AUTH_PAUSE,
            )
            return _retry(message, exc, now + timedelta(seconds=AUTH_PAUSE))
        if isinstance(exc, RetryLater) and exc.maybe_sent:
            return self._after_uncertain(message, exc, now)
        if isinstance(exc, RetryLater):
            retry_after = exc.retry_after
            if isinstance(exc, RecipientRateLimited):
                retry_after = max(retry_after or 0.0, PAIR_RATE_WAIT)
            wait = backoff.delay(message.attempts, retry_after=retry_after)
            log.info("message %s: %s; trying again in %.1fs", message.id, reason, wait)
            return _retry(message, exc, now + timedelta(seconds=wait))
        log.warning("message %s failed: %s", message.id, reason)
        return Outcome(message.id, "failed", code=exc.code, reason=reason)

    def _after_uncertain(self, message: outbox.Claimed, exc: SendError, now: datetime) -> Outcome:
        """The request may have reached Meta: one more try for a reply, none for a broadcast.

        No wamid came back, so a later status notification for this request cannot be matched
        to the message: a message failed here stays failed even if Meta delivered it.
        """
        if not may_send_again(message, message.uncertain + 1):
            first = message.uncertain == 0
            reason = (
                f"uncertain: no answer from WhatsApp{'' if first else ' twice'}; "
                f"{NOT_SENT_AGAIN} ({exc.reason})"
            )
            log.warning("message %s failed: %s", message.id, reason)
            return Outcome(message.id, "failed", code=exc.code, reason=reason, uncertain=True)
        wait = max(self.uncertain_wait.total_seconds(), exc.retry_after or 0.0)
        log.info(
            "message %s: %s, it may have reached WhatsApp; trying once more in %.0fs",
            message.id,
            exc.reason,
            wait,
        )
        return replace(
            _retry(message, exc, now + timedelta(seconds=wait)),
            reason=f"uncertain: {exc.reason}",
            uncertain=True,
        )
