"""The outbox: outbound message rows, claimed by dispatchers and settled as sent or failed.

A message is queued in the transaction of the event that caused it. A dispatcher claims due
rows for a lease; a claim that is not settled before its lease runs out (the process died) is
claimed again by any dispatcher. Only the oldest unsettled message of a contact is claimable,
so a contact's messages go out in order and never two at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session, aliased

from bot.models import Contact, Message

PENDING = ("queued", "sending")


@dataclass(frozen=True)
class Claimed:
    id: int
    payload: dict[str, Any]
    attempts: int  # including this one
    created_at: datetime


def enqueue(
    session: Session,
    contact: Contact,
    payload: dict[str, Any],
    *,
    now: datetime,
    text: str | None = None,
    rule: str | None = None,
    in_reply_to: int | None = None,
    priority: int = 0,
) -> Message:
    """Queue one message for the dispatcher, in the caller's transaction."""
    message = Message(
        contact_id=contact.id,
        direction="out",
        type=str(payload.get("type", "text")),
        text=text,
        payload=payload,
        rule=rule,
        in_reply_to=in_reply_to,
        created_at=now,
        timestamp=now,
        status="queued",
        status_at=now,
        priority=priority,
        attempts=0,
        next_attempt_at=now,
    )
    session.add(message)
    session.flush()
    contact.last_message_at = now
    return message


def claim(
    session: Session, worker: str, limit: int, *, now: datetime, lease: timedelta
) -> list[Claimed]:
    """Claim up to `limit` due messages for `worker` until `now + lease`."""
    older = aliased(Message)
    due = or_(
        and_(Message.status == "queued", Message.next_attempt_at <= now),
        and_(Message.status == "sending", Message.claimed_until < now),
    )
    behind_another = exists().where(
        older.contact_id == Message.contact_id,
        older.direction == "out",
        older.status.in_(PENDING),
        older.id < Message.id,
    )
    candidates = (
        select(Message.id)
        .where(Message.direction == "out", Message.status.in_(PENDING), due, ~behind_another)
        .order_by(Message.priority, Message.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Other dispatchers skip what this one is claiming instead of waiting for it.
        candidates = candidates.with_for_update(skip_locked=True, of=Message)
    ids = list(session.scalars(candidates))
    if not ids:
        return []
    rows = session.execute(
        update(Message)
        .where(Message.id.in_(ids))
        .values(
            status="sending",
            claimed_by=worker,
            claimed_until=now + lease,
            attempts=Message.attempts + 1,
        )
        .returning(Message.id, Message.payload, Message.attempts, Message.created_at)
        .execution_options(synchronize_session=False)
    ).all()
    claimed = [Claimed(r.id, r.payload or {}, r.attempts, r.created_at) for r in rows]
    claimed.sort(key=lambda c: c.id)
    return claimed


def mark_sent(session: Session, message_id: int, wamid: str, *, now: datetime) -> None:
    session.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(
            status="sent",
            wamid=wamid,
            sent_at=now,
            status_at=now,
            claimed_by=None,
            claimed_until=None,
            error_code=None,
            error_reason=None,
        )
        .execution_options(synchronize_session=False)
    )


def mark_failed(
    session: Session, message_id: int, *, code: int | None, reason: str, now: datetime
) -> None:
    session.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(
            status="failed",
            failed_at=now,
            status_at=now,
            error_code=code,
            error_reason=reason,
            claimed_by=None,
            claimed_until=None,
        )
        .execution_options(synchronize_session=False)
    )


def retry_at(
    session: Session,
    message_id: int,
    when: datetime,
    *,
    code: int | None = None,
    reason: str | None = None,
) -> None:
    """Back to the queue, due at `when`; the last error stays on record meanwhile."""
    session.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(
            status="queued",
            next_attempt_at=when,
            claimed_by=None,
            claimed_until=None,
            error_code=code,
            error_reason=reason,
        )
        .execution_options(synchronize_session=False)
    )


def release(session: Session, message_id: int, *, now: datetime) -> None:
    """Give a claimed message back untried (shutdown): due now, this attempt not counted."""
    session.execute(
        update(Message)
        .where(Message.id == message_id, Message.status == "sending")
        .values(
            status="queued",
            next_attempt_at=now,
            claimed_by=None,
            claimed_until=None,
            attempts=Message.attempts - 1,
        )
        .execution_options(synchronize_session=False)
    )


def oldest_unsent(session: Session) -> datetime | None:
    """When the oldest message still waiting to go out was queued."""
    return session.scalar(
        select(Message.created_at)
        .where(Message.direction == "out", Message.status.in_(PENDING))
        .order_by(Message.id)
        .limit(1)
    )
