"""Who gets the template follow-up after a closure. Pure: the opening hours, the closure that
just ended and one customer's facts in; a verdict out.

The follow-up goes to a customer who got the away message during the closure and whose
24-hour customer-service window had closed by the time the shop reopened: only a template can
reach them then. A customer whose window is still open gets none: the team answers them
within the window, for free and in their own words.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.hours import OpeningHours, closed_since, is_open, next_open

# The customer-service window: free-form messages are allowed this long after the customer's
# last message, templates only after it.
WINDOW = timedelta(hours=24)
# The follow-up waits this long after reopening: a message the customer sent just before it
# (which reopens their window) is then processed, and they get no template they need not.
DELAY = timedelta(minutes=1)


@dataclass(frozen=True)
class Closure:
    """A closed period: from when the shop closed to when it opened again."""

    closed_at: datetime
    reopened_at: datetime


def closure_before(hours: OpeningHours, now: datetime) -> Closure | None:
    """The closure that the open stretch of `now` ended; None while closed.

    A worker that was down at the reopening still finds it until the shop closes again (a
    lunch break included): the follow-up catches up within the same opening span, never
    later."""
    if not is_open(hours, now):
        return None
    closed_at = closed_since(hours, now)
    reopened_at = next_open(hours, closed_at)
    if reopened_at is None or reopened_at > now:
        return None
    return Closure(closed_at=closed_at, reopened_at=reopened_at)


@dataclass(frozen=True)
class Customer:
    """What decides one customer's follow-up, as of now."""

    away_at: datetime | None  # when they last got the away message
    last_inbound_at: datetime | None  # when they last wrote
    # When a person or the bot (a keyword answer, an opt-out confirmation, ...) last wrote to
    # them, the away message, broadcasts and follow-ups not counted.
    last_answer_at: datetime | None
    last_follow_up_at: datetime | None  # when they last got the follow-up
    opted_out: bool = False  # they unsubscribed (a stop word, the admin, WhatsApp's setting)


class Verdict(enum.StrEnum):
    SEND = "send"
    NO_AWAY = "no_away"  # no away message during this closure
    WROTE_AGAIN = "wrote_again"  # they wrote after the reopening: the team answers that
    WINDOW_OPEN = "window_open"  # their window was still open at the reopening
    ANSWERED = "answered"  # someone wrote to them after the away message
    SENT_ALREADY = "sent_already"  # they got the follow-up for this closure
    OPTED_OUT = "opted_out"
    TOO_EARLY = "too_early"  # within DELAY of the reopening


def verdict(closure: Closure, customer: Customer, now: datetime) -> Verdict:
    """Whether this customer gets the follow-up for `closure` at `now`, and if not, why."""
    away = customer.away_at
    if away is None or not closure.closed_at <= away < closure.reopened_at:
        return Verdict.NO_AWAY
    if customer.last_follow_up_at is not None and customer.last_follow_up_at >= away:
        return Verdict.SENT_ALREADY
    if customer.last_answer_at is not None and customer.last_answer_at >= away:
        return Verdict.ANSWERED
    last = customer.last_inbound_at
    if last is not None and last >= closure.reopened_at:
        return Verdict.WROTE_AGAIN
    if last is not None and last + WINDOW > closure.reopened_at:
        return Verdict.WINDOW_OPEN
    # A customer who said stop expects no message they did not ask for; one from us now would
    # risk a block or report, which lowers the number's quality rating.
    if customer.opted_out:
        return Verdict.OPTED_OUT
    if now < closure.reopened_at + DELAY:
        return Verdict.TOO_EARLY
    return Verdict.SEND
