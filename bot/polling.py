"""The loop of the worker's small senders (read receipts and typing indicators, outgoing
webhooks): take a turn at once again while turns find work, wait for the next poll (or a
wake) when one finds none, and ride out a database that does not answer."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.exc import DBAPIError

# A database that did not answer is asked again after this long.
RETRY_AFTER = 1.0


def poll(
    stop: threading.Event,
    turn: Callable[[], int],
    *,
    every: float,
    what: str,
    log: logging.Logger,
    wake: threading.Event | None = None,
) -> None:
    """Run `turn` (how much it found to do) until `stop` is set; when it finds nothing, wait
    `every` seconds, or less when `wake` is set meanwhile (with a `wake`, a stop during the
    wait is seen at its end: keep `every` short then)."""
    waiting = stop if wake is None else wake
    while not stop.is_set():
        try:
            busy = turn()
        except DBAPIError as exc:
            log.warning("cannot claim or record %s (%s); trying again", what, type(exc).__name__)
            stop.wait(RETRY_AFTER)
            continue
        if not busy and not stop.is_set():
            waiting.wait(every)
            if wake is not None:
                wake.clear()
