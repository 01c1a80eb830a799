"""The loop that sends queued read receipts and typing indicators (bot.outbound.signals), on a
thread beside the dispatcher in the worker and in `python app.py`.

Each signal takes a slot of the same shared send rate as the dispatcher's messages (the same
SharedRate key), so together they keep SEND_RATE. Signals are few and small: one thread sends
them one after another. A typing indicator whose turn comes too late is dropped as stale.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.exc import DBAPIError

from bot.channels.errors import SendError
from bot.channels.transport import Transport
from bot.db import Database
from bot.models import SignalKind, utcnow
from bot.outbound import signals
from bot.outbound.ratelimit import SharedRate
from bot.polling import poll
from bot.whatsapp.payloads import read_payload

log = logging.getLogger("tresen.signals")

# Where `python app.py` keeps its sender in app.extensions, for the inbox to wake it.
SIGNAL_SENDER = "tresen.signal_sender"


class SignalSender:
    def __init__(
        self,
        database: Database,
        transport: Transport,
        *,
        rate: SharedRate | None,
        worker: str,
        clock: Callable[[], datetime] = utcnow,
        poll: float = 0.25,
        lease: timedelta = timedelta(seconds=30),
        batch: int = 16,
    ) -> None:
        self.database = database
        self.transport = transport
        self.rate = rate
        self.worker = worker
        self.clock = clock
        self.poll = poll
        self.lease = lease
        self.batch = batch
        self.sent = 0
        self._wake = threading.Event()

    def wake(self) -> None:
        """A signal was queued in this process: look now rather than at the next poll."""
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        """Send until `stop` is set."""
        poll(
            stop,
            lambda: self.turn(stop),
            every=self.poll,
            what="signals",
            log=log,
            wake=self._wake,
        )

    def turn(self, stop: threading.Event) -> int:
        """Claim due signals, send them within the rate, record the outcomes; how many were
        claimed."""
        # Most looks find nothing: a read first, and the write turn only for a claim.
        with self.database.reading() as session:
            if not signals.any_due(session, now=self.clock()):
                return 0
        with self.database.session() as session:
            claimed = signals.claim(
                session, self.worker, self.batch, now=self.clock(), lease=self.lease
            )
        if not claimed:
            return 0
        outcomes: list[signals.Outcome] = []
        fresh: list[signals.Claimed] = []
        for signal in claimed:
            # Stale already: not worth a send slot.
            if signals.is_stale(signal, self.clock()):
                outcomes.append(self._stale(signal))
            else:
                fresh.append(signal)
        try:
            # Slots are unix times of the real clock, shared with the dispatchers.
            starts = (
                self.rate.reserve(len(fresh), time.time())
                if self.rate and fresh
                else [0.0] * len(fresh)
            )
        except DBAPIError as exc:
            log.warning("cannot reserve send slots for signals (%s)", type(exc).__name__)
            starts = []
            outcomes += [signals.Outcome(s.id, "released") for s in fresh]
        for signal, start in zip(fresh, starts, strict=False):
            outcomes.append(self._send(signal, start, stop))
        with self.database.session() as session:
            signals.record(session, self.worker, outcomes, now=self.clock())
        return len(claimed)

    def _send(
        self, signal: signals.Claimed, start: float, stop: threading.Event
    ) -> signals.Outcome:
        wait = start - time.time()
        if wait > 0 and stop.wait(wait):
            return signals.Outcome(signal.id, "released")
        now = self.clock()
        if signals.is_stale(signal, now):
            return self._stale(signal)
        payload = read_payload(signal.wamid, typing=signal.kind == SignalKind.TYPING)
        try:
            self.transport.send(payload)
        except SendError as exc:
            outcome = signals.after_error(signal, exc, self.clock())
            log.info("%s signal %s: %s (%s)", signal.kind, signal.id, exc.reason, outcome.kind)
            return outcome
        except Exception as exc:  # a bug must not stop the loop: the signal fails with it
            log.exception("%s signal %s could not be sent", signal.kind, signal.id)
            return signals.Outcome(signal.id, "failed", error=f"{type(exc).__name__}: {exc}")
        self.sent += 1
        log.info("%s signal %s sent for %s", signal.kind, signal.id, signal.wamid)
        return signals.Outcome(signal.id, "sent")

    def _stale(self, signal: signals.Claimed) -> signals.Outcome:
        log.info("typing signal %s dropped: its 25 seconds are over", signal.id)
        return signals.Outcome(signal.id, "failed", error=signals.STALE)
