"""The pacer: broadcast messages wait as deferred until the quiet hours and the messaging limit
let them go; `release` queues them for the dispatcher, oldest first, as far as both allow.

Runs write their messages deferred; the scheduler leader calls `release` after each batch and
on every tick. Outside the allowed hours, broadcast messages queued but not yet taken by a
dispatcher go back to deferred, so a broadcast pauses by itself and resumes at the next
allowed time. Text broadcasts reach only customers inside their 24-hour window and do not
count against the limit; template broadcasts do, with every other template message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from bot.broadcasts.content import BroadcastKind
from bot.broadcasts.limits import budget, finish_estimate, may_send
from bot.models import BroadcastRun, Message, MessageStatus
from bot.outbound import messaging_limit
from bot.settings import BusinessSettings

# At most this many released per call: short transactions; the next tick goes on.
CHUNK = 5000


@dataclass(frozen=True)
class Released:
    texts: int = 0  # messages that do not count against the limit
    templates: int = 0
    held_back: int = 0  # queued messages deferred again as the quiet hours began


def release(session: Session, settings: BusinessSettings, now: datetime) -> Released:
    """Queue deferred broadcast messages that are due, in id order, as far as the quiet hours
    and the messaging limit allow at `now`; outside the hours, defer queued ones again."""
    if not may_send(settings.broadcasts, settings.hours, now):
        return Released(held_back=_hold_back(session, now))
    texts = _queue(session, _due(now, template=False).limit(CHUNK), now)
    if session.scalar(_due(now, template=True).limit(1)) is None:
        return Released(texts)  # every tick: the count of the window only when it matters
    room = budget(messaging_limit.limit_now(session), messaging_limit.used(session, now))
    take = CHUNK if room is None else min(room, CHUNK)
    templates = _queue(session, _due(now, template=True).limit(take), now) if take > 0 else 0
    return Released(texts, templates)


def _due(now: datetime, *, template: bool) -> Select[Any]:
    kind = Message.type == BroadcastKind.TEMPLATE
    return (
        select(Message.id)
        .where(
            Message.status == MessageStatus.DEFERRED,
            Message.next_attempt_at <= now,
            kind if template else ~kind,
        )
        .order_by(Message.id)
    )


def _queue(session: Session, chosen: Select[Any], now: datetime) -> int:
    ids = list(session.scalars(chosen))
    if not ids:
        return 0
    # status_at: queued since now, which the dispatcher's give-up time and the outbox's
    # health count from (not from when the run wrote it, maybe days ago).
    result = session.execute(
        update(Message)
        .where(Message.id.in_(ids), Message.status == MessageStatus.DEFERRED)
        .values(status=MessageStatus.QUEUED, next_attempt_at=now, status_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _hold_back(session: Session, now: datetime) -> int:
    result = session.execute(
        update(Message)
        .where(Message.broadcast_run_id.is_not(None), Message.status == MessageStatus.QUEUED)
        .values(status=MessageStatus.DEFERRED, status_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def finish_of(
    session: Session, broadcast_id: int, settings: BusinessSettings, now: datetime
) -> datetime | None:
    """When the deferred messages of this broadcast will all have been released, about: those
    of other broadcasts before them go first; None when none of its messages wait (or no
    allowed time comes within a year)."""
    runs = select(BroadcastRun.id).where(BroadcastRun.broadcast_id == broadcast_id)
    last, kind = session.execute(
        select(func.max(Message.id), func.max(Message.type)).where(
            Message.broadcast_run_id.in_(runs), Message.status == MessageStatus.DEFERRED
        )
    ).one()
    if last is None:
        return None
    template = kind == BroadcastKind.TEMPLATE
    kind_matches = Message.type == BroadcastKind.TEMPLATE
    ahead = session.scalar(
        select(func.count(Message.id)).where(
            Message.status == MessageStatus.DEFERRED,
            Message.id <= last,
            kind_matches if template else ~kind_matches,
        )
    )
    limit = messaging_limit.limit_now(session)
    return finish_estimate(
        remaining=int(ahead or 0),
        limit=limit,
        sends=messaging_limit.sends(session, now) if template and limit is not None else (),
        now=now,
        hours=settings.broadcasts,
        opening=settings.hours,
        counted=template,
    )


def failure_reasons(session: Session, broadcast_id: int) -> list[tuple[int | None, str, int]]:
    """The failed recipients of a broadcast by Meta's error code, most first: (code, one of
    the reasons stored with it, how many)."""
    runs = select(BroadcastRun.id).where(BroadcastRun.broadcast_id == broadcast_id)
    rows = session.execute(
        select(Message.error_code, func.min(Message.error_reason), func.count(Message.id))
        .where(Message.broadcast_run_id.in_(runs), Message.status == MessageStatus.FAILED)
        .group_by(Message.error_code)
    ).all()
    found = [(code, reason or "", int(count)) for code, reason, count in rows]
    return sorted(found, key=lambda r: (-r[2], r[0] if r[0] is not None else -1))
