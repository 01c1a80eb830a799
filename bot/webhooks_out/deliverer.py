"""The loop that sends webhook deliveries, on a thread of the worker (and of `python app.py`):
claim a few due ones, POST each (signed at that moment), settle each as soon as it is answered.
One at a time: receivers are the shop's own systems, and a slow one must not be hammered."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.db import Database
from bot.models import utcnow
from bot.polling import poll
from bot.webhooks_out import events, store
from bot.webhooks_out.sending import Poster

log = logging.getLogger("tresen.webhooks")


class Deliverer:
    def __init__(
        self,
        database: Database,
        poster: Poster,
        *,
        worker: str,
        clock: Callable[[], datetime] = utcnow,
        poll: float = 1.0,
        lease: timedelta = timedelta(minutes=2),
        batch: int = 4,
    ) -> None:
        # The lease covers a batch's worst case: each POST at most 5 s to connect, 10 s to read.
        self.database = database
        self.poster = poster
        self.worker = worker
        self.clock = clock
        self.poll = poll
        self.lease = lease
        self.batch = batch
        self.sent = 0

    def run(self, stop: threading.Event) -> None:
        """Deliver until `stop` is set."""
        poll(stop, self.turn, every=self.poll, what="webhooks", log=log)

    def turn(self) -> int:
        """Claim due deliveries, POST them and record each outcome; how many were claimed."""
        # Most looks find nothing: a read first, and the write turn only for a claim.
        with self.database.reading() as session:
            if not store.any_due(session, now=self.clock()):
                return 0
        with self.database.session() as session:
            claimed = store.claim(
                session, self.worker, self.batch, now=self.clock(), lease=self.lease
            )
        disabled: set[int] = set()
        for delivery in claimed:
            # A disabled endpoint's pending deliveries were failed with it: none goes out.
            if delivery.endpoint_id not in disabled and self._deliver(delivery):
                disabled.add(delivery.endpoint_id)
        return len(claimed)

    def _deliver(self, delivery: store.Claimed) -> bool:
        """POST one delivery and record the outcome; whether its endpoint got disabled."""
        payload = delivery.body.encode()
        headers = events.headers(
            delivery.secret, delivery.event, delivery.id, payload, self.clock()
        )
        try:
            attempt, final = self.poster.post(delivery.url, payload, headers)
        except Exception as exc:  # a bug must not stop the loop: the delivery fails with it
            log.exception("webhook delivery %s could not be sent", delivery.id)
            attempt, final = events.Attempt(False, error=f"{type(exc).__name__}: {exc}"), True
        with self.database.session() as session:
            settled = store.settle(
                session, self.worker, delivery, attempt, now=self.clock(), final=final
            )
        if attempt.ok:
            self.sent += 1
        log.info(
            "webhook %s %s to endpoint %s: %s (%s)",
            delivery.event,
            delivery.id,
            delivery.endpoint_id,
            attempt.result,
            settled.status or "claim lost",
        )
        return settled.disabled


def start_thread(
    database: Database,
    poster: Poster,
    stop: threading.Event,
    *,
    worker: str,
    clock: Callable[[], datetime] = utcnow,
) -> tuple[threading.Thread, Deliverer]:
    deliverer = Deliverer(database, poster, worker=worker, clock=clock)
    thread = threading.Thread(target=deliverer.run, args=(stop,), name="webhooks", daemon=True)
    thread.start()
    return thread, deliverer
