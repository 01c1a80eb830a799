"""The worker's small senders' loop (bot.polling): a database that does not answer is asked
again instead of ending the loop, a busy turn is followed at once by the next, and a wake cuts
the wait short."""

from __future__ import annotations

import logging
import threading

import pytest
from sqlalchemy.exc import OperationalError

from bot import polling


def test_an_outage_is_ridden_out_and_busy_turns_follow_at_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(polling, "RETRY_AFTER", 0.0)
    stop = threading.Event()
    found = [OperationalError("SELECT", None, Exception("gone")), 3, 2, 0]
    turns: list[object] = []

    def turn() -> int:
        result = found[len(turns)]
        turns.append(result)
        if isinstance(result, Exception):
            raise result
        if result == 0:
            stop.set()
        return result

    # An hour's poll: the test ends only because busy turns do not wait for it.
    with caplog.at_level(logging.WARNING):
        polling.poll(stop, turn, every=3600, what="webhooks", log=logging.getLogger("t"))
    assert turns == found
    assert [r.getMessage() for r in caplog.records] == [
        "cannot claim or record webhooks (OperationalError); trying again"
    ]


def test_a_wake_ends_the_wait_for_the_next_poll() -> None:
    stop, wake = threading.Event(), threading.Event()
    turns: list[int] = []

    def turn() -> int:
        turns.append(len(turns))
        if len(turns) == 2:
            stop.set()
        else:
            wake.set()  # something was queued meanwhile
        return 0

    polling.poll(stop, turn, every=3600, what="signals", log=logging.getLogger("t"), wake=wake)
    assert turns == [0, 1] and not wake.is_set()
