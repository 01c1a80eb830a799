"""Signs of life for the customer: a read receipt (blue ticks) when a person opens an unread
conversation, WhatsApp's typing indicator while a person writes a reply.

Each is a row of `signals`, queued by the admin's inbox in its own transaction and sent by the
worker (bot.outbound.signal_sender) through the send rate messages share. A read receipt goes
once per customer message; a typing indicator at most every TYPING_EVERY per contact, and only
while the 24-hour window is open, since it promises a reply. The rules deciding what to queue,
what is stale and what to retry are pure functions; the rest reads and writes the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.orm import Session

from bot.channels.errors import RetryLater, SendError
from bot.contacts.audiences import SERVICE_WINDOW
from bot.models import (
    Contact,
    ConversationRead,
    Direction,
    Message,
    Signal,
    SignalKind,
    SignalState,
)
from bot.outbound import backoff
from bot.settings import InboxSignals
from bot.sql import dialect_name

# The page posts at most this often while a person types; the server holds to it as well.
TYPING_EVERY = timedelta(seconds=20)
# WhatsApp shows the indicator this long (or until the reply): one sent later shows nothing
# the customer can still relate to, so it is dropped.
TYPING_SHOWS = timedelta(seconds=25)
# Tries of one signal in all: a receipt that cannot go after a few is not worth more requests
# than the messages waiting behind it.
MAX_ATTEMPTS = 3
STALE = "stale"


@dataclass(frozen=True)
class Claimed:
    id: int
    kind: str  # a SignalKind
    wamid: str
    created_at: datetime
    attempts: int  # including this one


@dataclass(frozen=True)
class Outcome:
    signal_id: int
    kind: Literal["sent", "failed", "retry", "released"]
    error: str | None = None
    due: datetime | None = None


# --- the rules (pure) -------------------------------------------------------------------------


def read_due(inbox: InboxSignals, *, unread_by_anyone: bool, receipt_queued_before: bool) -> bool:
    """Whether opening a conversation sends a read receipt for its last customer message."""
    return inbox.read_receipts and unread_by_anyone and not receipt_queued_before


def typing_due(
    inbox: InboxSignals,
    *,
    last_inbound_at: datetime | None,
    last_typing_at: datetime | None,
    now: datetime,
) -> bool:
    """Whether a person typing now sends the typing indicator: on, within the 24-hour window
    (it says a reply is coming, which only a template could be after it), and not within
    TYPING_EVERY of the last one to this contact."""
    if not inbox.typing_indicator or last_inbound_at is None:
        return False
    if now - last_inbound_at >= SERVICE_WINDOW:
        return False
    return last_typing_at is None or now - last_typing_at >= TYPING_EVERY


def is_stale(signal: Claimed, now: datetime) -> bool:
    """A typing indicator whose turn comes after WhatsApp would have hidden it anyway."""
    return signal.kind == SignalKind.TYPING and now - signal.created_at > TYPING_SHOWS


def after_error(signal: Claimed, exc: SendError, now: datetime) -> Outcome:
    """A refused or failed request: tried again later for a rate limit or a server error,
    a couple of times at most; failed with the reason otherwise."""
    if isinstance(exc, RetryLater) and signal.attempts < MAX_ATTEMPTS:
        wait = backoff.delay(signal.attempts, retry_after=exc.retry_after, cap=10.0)
        return Outcome(signal.id, "retry", error=exc.reason, due=now + timedelta(seconds=wait))
    return Outcome(signal.id, "failed", error=exc.reason)


# --- queueing (the admin's inbox) -------------------------------------------------------------


def last_customer_message(session: Session, contact_id: int) -> Message | None:
    """The contact's latest message to the business that WhatsApp gave an id."""
    return session.scalars(
        select(Message)
        .where(
            Message.contact_id == contact_id,
            Message.direction == Direction.IN,
            Message.wamid.is_not(None),
        )
        .order_by(Message.timestamp.desc(), Message.id.desc())
        .limit(1)
    ).first()


def _lock(session: Session, contact_id: int) -> None:
    # Two people opening the conversation (or two typing posts) at once queue one signal:
    # the second waits here and then finds the first one's row. SQLite writes one at a time.
    session.execute(select(Contact.id).where(Contact.id == contact_id).with_for_update())


def _unread_by_anyone(session: Session, contact: Contact, message: Message) -> bool:
    """Nobody of the team has seen `message`: the shared count is up and nobody has read the
    conversation up to it. Ask before the opening view marks it seen."""
    if (contact.unread or 0) <= 0:
        return False
    seen = session.scalar(
        select(ConversationRead.user_id)
        .where(
            ConversationRead.contact_id == contact.id,
            ConversationRead.read_up_to >= message.id,
        )
        .limit(1)
    )
    return seen is None


def queue_read(
    session: Session, contact: Contact, inbox: InboxSignals, *, now: datetime
) -> Signal | None:
    """A person opens the conversation: a read receipt for its last customer message if that
    is unread by everyone and the shop wants receipts; once per message, ever."""
    if not inbox.read_receipts:
        return None
    _lock(session, contact.id)
    message = last_customer_message(session, contact.id)
    if message is None or message.wamid is None:
        return None
    queued_before = session.scalar(
        select(Signal.id)
        .where(
            Signal.contact_id == contact.id,
            Signal.kind == SignalKind.READ,
            Signal.wamid == message.wamid,
        )
        .limit(1)
    )
    unread = _unread_by_anyone(session, contact, message)
    if not read_due(
        inbox, unread_by_anyone=unread, receipt_queued_before=queued_before is not None
    ):
        return None
    return _add(session, contact.id, SignalKind.READ, message.wamid, now)


def queue_typing(
    session: Session, contact: Contact, inbox: InboxSignals, *, now: datetime
) -> Signal | None:
    """A person is typing a reply: the typing indicator on the last customer message, unless
    one went to this contact within TYPING_EVERY or the window is closed."""
    if not typing_due(inbox, last_inbound_at=contact.last_inbound_at, last_typing_at=None, now=now):
        return None
    _lock(session, contact.id)
    last_typing_at = session.scalar(
        select(Signal.created_at)
        .where(
            Signal.contact_id == contact.id,
            Signal.kind == SignalKind.TYPING,
            Signal.created_at > now - TYPING_EVERY,
        )
        .order_by(Signal.created_at.desc())
        .limit(1)
    )
    if not typing_due(
        inbox, last_inbound_at=contact.last_inbound_at, last_typing_at=last_typing_at, now=now
    ):
        return None
    message = last_customer_message(session, contact.id)
    if message is None or message.wamid is None:
        return None
    return _add(session, contact.id, SignalKind.TYPING, message.wamid, now)


def _add(session: Session, contact_id: int, kind: SignalKind, wamid: str, now: datetime) -> Signal:
    signal = Signal(
        contact_id=contact_id,
        kind=kind,
        wamid=wamid,
        state=SignalState.PENDING,
        created_at=now,
        attempts=0,
    )
    session.add(signal)
    session.flush()
    return signal


# --- sending (the worker) ---------------------------------------------------------------------


@lru_cache(maxsize=2)
def _claimable(skip_locked: bool) -> Any:
    now = bindparam("now", type_=Signal.__table__.c.created_at.type)
    query = (
        select(Signal.id)
        .where(
            Signal.state == SignalState.PENDING,
            # Unclaimed and due (a retry waits until claimed_until), or a claim run out.
            or_(Signal.claimed_until.is_(None), Signal.claimed_until <= now),
        )
        .order_by(Signal.id)
        .limit(bindparam("limit"))
    )
    if skip_locked:
        # Other workers skip what this one is claiming instead of waiting for it.
        query = query.with_for_update(skip_locked=True, of=Signal)
    return query


def any_due(session: Session, *, now: datetime) -> bool:
    """Whether a signal waits to be claimed: the sender's poll, in a read-only session (see
    Database.reading), so that finding none takes no write turn."""
    return session.scalar(_claimable(False), {"now": now, "limit": 1}) is not None


def claim(
    session: Session, worker: str, limit: int, *, now: datetime, lease: timedelta
) -> list[Claimed]:
    """Claim up to `limit` due signals for `worker` until `now + lease`, oldest first.

    A claim whose worker died runs out and is claimed again: the request may have gone out,
    but a read receipt or typing indicator twice does no harm."""
    if limit <= 0:
        return []
    query = _claimable(dialect_name(session) == "postgresql")
    ids = list(session.scalars(query, {"now": now, "limit": limit}))
    if not ids:
        return []
    rows = session.execute(
        update(Signal)
        .where(Signal.id.in_(ids))
        .values(claimed_by=worker, claimed_until=now + lease, attempts=Signal.attempts + 1)
        .returning(Signal.id, Signal.kind, Signal.wamid, Signal.created_at, Signal.attempts)
        .execution_options(synchronize_session=False)
    ).all()
    claimed = [Claimed(r.id, r.kind, r.wamid, r.created_at, r.attempts) for r in rows]
    claimed.sort(key=lambda c: c.id)
    return claimed


def record(session: Session, worker: str, outcomes: list[Outcome], *, now: datetime) -> None:
    """Settle what `worker` sent: sent, failed with the error, due again later, or given back.
    A signal whose claim another worker took over meanwhile is left to that one."""
    for o in outcomes:
        held = and_(
            Signal.id == o.signal_id,
            Signal.state == SignalState.PENDING,
            Signal.claimed_by == worker,
        )
        values: dict[str, Any]
        if o.kind == "sent":
            values = {"state": SignalState.SENT, "sent_at": now, "error": None}
        elif o.kind == "failed":
            values = {"state": SignalState.FAILED, "error": (o.error or "")[:300]}
        elif o.kind == "retry":
            # claimed_until without a claimer: not claimable before then.
            values = {"claimed_until": o.due, "error": (o.error or "")[:300]}
        else:
            values = {"claimed_until": None, "attempts": Signal.attempts - 1}
        values.setdefault("claimed_until", None)
        session.execute(
            update(Signal)
            .where(held)
            .values(claimed_by=None, **values)
            .execution_options(synchronize_session=False)
        )
