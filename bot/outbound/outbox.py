"""The outbox: outbound message rows, claimed by dispatchers and settled as sent or failed.

A message is queued in the transaction of the event that caused it. A dispatcher claims due
rows for a lease; a claim that is not settled before its lease runs out (the process died) is
claimed again by any dispatcher. Right before its request goes out, a message is marked
launched (`launch`): counted as an uncertain attempt, taken back when Meta's answer is
recorded. So the count says how many requests went out without an answer, whoever sent them:
a message whose sender died before launching it is simply sent by the next one. Only the
oldest unsettled message of a contact is claimable, so a contact's messages go out in order
and never two at once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased, object_session

from bot import storable
from bot.broadcasts.limits import CAP_RETRY_AFTER, CAPPED_CODE
from bot.models import Contact, Direction, HeldStatus, Message, MessageStatus
from bot.sql import dialect_name
from bot.webhooks_out import store as webhooks
from bot.webhooks_out.events import EventKind
from bot.whatsapp.events import StatusKind

PENDING = (MessageStatus.QUEUED, MessageStatus.SENDING)
# Statuses only move forward; failed is handled on its own. Meta's "played" (a voice message
# listened to) counts as read.
STATUS_RANK: dict[str, int] = {
    MessageStatus.QUEUED: 0,
    MessageStatus.SENDING: 1,
    MessageStatus.SENT: 2,
    MessageStatus.DELIVERED: 3,
    MessageStatus.READ: 4,
    StatusKind.PLAYED: 4,
}
# The statuses an outgoing webhook tells of: what Meta says of a message, not the queue's own.
TOLD: frozenset[str] = frozenset(
    {MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ, MessageStatus.FAILED}
)
# Statuses worth holding when they arrive before the wamid is recorded.
HELD_KINDS: frozenset[str] = frozenset(
    {StatusKind.SENT, StatusKind.DELIVERED, StatusKind.READ, StatusKind.PLAYED, StatusKind.FAILED}
)


@dataclass(frozen=True)
class Claimed:
    id: int
    payload: dict[str, Any]
    attempts: int  # including this one
    created_at: datetime
    # Earlier requests that went out without an answer (launched by a sender that died
    # included): each may have delivered the message already.
    uncertain: int = 0
    broadcast: bool = False


QUEUE = insert(Message).returning(Message.id)


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
    if contact.id is None:
        session.flush()
    values = row(contact.id, payload, now=now, text=text, rule=rule, priority=priority)
    inserted = session.connection().execute(QUEUE, {**values, "in_reply_to": in_reply_to})
    contact.last_message_at = now
    message = session.get(Message, inserted.scalar_one())
    assert message is not None
    return message


def row(
    contact_id: int,
    payload: dict[str, Any],
    *,
    now: datetime,
    text: str | None = None,
    rule: str | None = None,
    priority: int = 0,
) -> dict[str, Any]:
    """The outbox row of one message to send now (QUEUE inserts it; add `in_reply_to`)."""
    return {
        "contact_id": contact_id,
        "direction": Direction.OUT,
        "wamid": None,
        "type": str(payload.get("type", "text")),
        "text": text,
        "payload": payload,
        "rule": rule,
        "created_at": now,
        "timestamp": now,
        "status": MessageStatus.QUEUED,
        "status_at": now,
        "priority": priority,
        "attempts": 0,
        "next_attempt_at": now,
    }


def claim(
    session: Session, worker: str, limit: int, *, now: datetime, lease: timedelta
) -> list[Claimed]:
    """Claim up to `limit` due messages for `worker` until `now + lease`.

    Taken-over claims of a dead process come first, then queued messages by priority and age.
    A taken-over claim is not counted here: if the dead process had launched its request, the
    launch mark counts it already; if not, nothing went out.
    Each is its own query walking the (status, priority, id) index, so a claim stops after
    `limit` rows however long the queue is (one query with an OR would sort the whole backlog).
    """
    expired = _candidates(session, _Due.EXPIRED, limit, now)
    queued = _candidates(session, _Due.QUEUED, limit - len(expired), now)
    ids = expired + queued
    if not ids:
        return []
    rows = session.connection().execute(
        _CLAIM, {"ids": ids, "worker": worker, "until": now + lease}
    )
    claimed = [
        Claimed(
            r.id,
            r.payload or {},
            r.attempts,
            # Queued since: a deferred broadcast message counts from its release.
            max(r.created_at, r.status_at),
            uncertain=r.uncertain_attempts,
            broadcast=r.broadcast_run_id is not None,
        )
        for r in rows
    ]
    claimed.sort(key=lambda c: c.id)
    return claimed


def launch(session: Session, worker: str, ids: list[int]) -> set[int]:
    """Mark these messages' requests as going out now: each counts as an uncertain attempt
    until `answered` takes it back, so a sender that dies from here on leaves it counted.

    Only messages `worker` still holds are marked; returns their ids. A message not marked
    must not be sent (its claim was lost: another dispatcher may be sending it)."""
    if not ids:
        return set()
    marked = session.connection().execute(_LAUNCH, {"ids": ids, "worker": worker})
    return set(marked.scalars())


def renew(session: Session, worker: str, *, now: datetime, lease: timedelta) -> None:
    """Extend `worker`'s claims on the messages it is still sending until `now + lease`."""
    session.execute(
        update(Message)
        .where(Message.status == MessageStatus.SENDING, Message.claimed_by == worker)
        .values(claimed_until=now + lease)
        .execution_options(synchronize_session=False)
    )


class _Due(enum.Enum):
    EXPIRED = "expired"  # being sent under a claim that ran out
    QUEUED = "queued"  # queued and due


def _candidates(session: Session, due: _Due, limit: int, now: datetime) -> list[int]:
    if limit <= 0:
        return []
    query = _candidates_query(due, dialect_name(session) == "postgresql")
    # On the connection: the ORM's execution around a query of plain ids is all cost.
    return list(session.connection().execute(query, {"now": now, "limit": limit}).scalars())


@lru_cache(maxsize=4)
def _candidates_query(due: _Due, skip_locked: bool) -> Any:
    """Built once: building this ORM query was a tenth of the dispatcher's processor time."""
    now = bindparam("now", type_=Message.__table__.c.created_at.type)
    condition = (
        and_(Message.status == MessageStatus.SENDING, Message.claimed_until < now)
        if due is _Due.EXPIRED
        else and_(Message.status == MessageStatus.QUEUED, Message.next_attempt_at <= now)
    )
    older = aliased(Message)
    # A contact's messages go out in order, one at a time; but a reply the customer waits
    # for goes before that contact's broadcast message, not behind it.
    behind_another = exists().where(
        older.contact_id == Message.contact_id,
        older.status.in_(PENDING),
        or_(
            older.priority < Message.priority,
            and_(older.priority == Message.priority, older.id < Message.id),
        ),
    )
    query = (
        select(Message.id)
        .where(condition, ~behind_another)
        .order_by(Message.priority, Message.id)
        .limit(bindparam("limit"))
    )
    if skip_locked:
        # Other dispatchers skip what this one is claiming instead of waiting for it.
        query = query.with_for_update(skip_locked=True, of=Message)
    return query


def mark_sent(
    session: Session, message_id: int, wamid: str, *, now: datetime, answered: bool = False
) -> None:
    mark_sent_many(session, [(message_id, wamid)], now=now, answered=answered)


_messages = cast(Table, Message.__table__)
# Core, not the ORM's bulk UPDATE by primary key: that runs one statement per row as soon as
# a value is an expression (the launch mark taken back).
MARK_SENT = (
    update(_messages)
    .where(_messages.c.id == bindparam("message_id"))
    .values(
        status=MessageStatus.SENT,
        wamid=bindparam("sent_wamid"),
        sent_at=bindparam("now"),
        status_at=bindparam("now"),
        claimed_by=None,
        claimed_until=None,
        error_code=None,
        error_reason=None,
        uncertain_attempts=_messages.c.uncertain_attempts - bindparam("taken_back"),
    )
)


# The dispatcher's statements, built once (building them per batch through the ORM cost
# more than running them): `ids` expands to the batch's ids.
_CLAIM = (
    update(_messages)
    .where(_messages.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        status=MessageStatus.SENDING,
        claimed_by=bindparam("worker"),
        claimed_until=bindparam("until", type_=_messages.c.claimed_until.type),
        attempts=_messages.c.attempts + 1,
    )
    .returning(
        _messages.c.id,
        _messages.c.payload,
        _messages.c.attempts,
        _messages.c.created_at,
        _messages.c.status_at,
        _messages.c.uncertain_attempts,
        _messages.c.broadcast_run_id,
    )
)
_LAUNCH = (
    update(_messages)
    .where(
        _messages.c.id.in_(bindparam("ids", expanding=True)),
        _messages.c.claimed_by == bindparam("worker"),
        _messages.c.status == MessageStatus.SENDING,
    )
    .values(uncertain_attempts=_messages.c.uncertain_attempts + 1)
    .returning(_messages.c.id)
)
_held_statuses = cast(Table, HeldStatus.__table__)
_ANY_HELD = (
    select(_held_statuses.c.id)
    .where(_held_statuses.c.wamid.in_(bindparam("wamids", expanding=True)))
    .limit(1)
)


def mark_sent_many(
    session: Session, sent: list[tuple[int, str]], *, now: datetime, answered: bool = False
) -> None:
    """`mark_sent` for many (message id, wamid) pairs with one executemany UPDATE.

    `answered`: these are the answers to requests marked by `launch`; their marks are taken
    back."""
    if not sent:
        return
    taken_back = 1 if answered else 0
    session.connection().execute(
        MARK_SENT,
        [
            {"message_id": message_id, "sent_wamid": wamid, "now": now, "taken_back": taken_back}
            for message_id, wamid in sent
        ],
    )
    _tell(session, [message_id for message_id, _wamid in sent], now)
    apply_held(session, sent)


def _tell(session: Session, message_ids: list[int], now: datetime) -> None:
    """Tell the subscribed webhooks of messages the dispatcher settled (sent, or failed
    before Meta took them): read back only when some endpoint is subscribed."""
    if not message_ids or not webhooks.subscribed(session, EventKind.MESSAGE_STATUS):
        return
    for message in session.scalars(
        select(Message).where(Message.id.in_(message_ids)).execution_options(populate_existing=True)
    ):
        if message.status in TOLD:
            webhooks.message_status(session, message, now)


def mark_failed(
    session: Session,
    message_id: int,
    *,
    code: int | None,
    reason: str,
    now: datetime,
    answered: bool = False,
    worker: str | None = None,
) -> None:
    """Settle a message as failed; `answered` when this is Meta's answer to a request marked
    by `launch` (its mark is taken back; a request without an answer stays counted).

    With `worker`, only while that worker still holds the claim (see `_held`).

    A broadcast message refused with 131049 (Meta's per-customer marketing cap) the first
    time is capped instead: deferred for one retry a day later, through the pacer. A second
    refusal, or any other message refused so, fails with the reason."""
    if code == CAPPED_CODE:
        capped = session.execute(
            update(Message)
            .where(
                _held(message_id, worker),
                Message.broadcast_run_id.is_not(None),
                Message.capped_at.is_(None),
            )
            .values(
                claimed_by=None,
                claimed_until=None,
                **_capped_values(now, code, reason),
                **_taken_back(answered),
            )
            .execution_options(synchronize_session=False)
        )
        if getattr(capped, "rowcount", 0):
            return
    _unclaim(
        session,
        _held(message_id, worker),
        **({"capped_at": func.coalesce(Message.capped_at, now)} if code == CAPPED_CODE else {}),
        status=MessageStatus.FAILED,
        failed_at=now,
        status_at=now,
        error_code=code,
        error_reason=reason,
        **_taken_back(answered),
    )
    _tell(session, [message_id], now)


def _capped_values(now: datetime, code: int, reason: str) -> dict[str, Any]:
    code_kept, reason_kept = _storable_error(code, reason)
    return {
        "status": MessageStatus.DEFERRED,
        "capped_at": now,
        "status_at": now,
        "next_attempt_at": now + CAP_RETRY_AFTER,
        "error_code": code_kept,
        "error_reason": reason_kept,
    }


def retry_at(
    session: Session,
    message_id: int,
    when: datetime,
    *,
    code: int | None = None,
    reason: str | None = None,
    answered: bool = False,
    worker: str | None = None,
) -> None:
    """Back to the queue, due at `when`; the last error stays on record meanwhile.

    `answered` as for `mark_failed`. With `worker`, only while that worker still holds the
    claim (see `_held`)."""
    _unclaim(
        session,
        _held(message_id, worker),
        status=MessageStatus.QUEUED,
        next_attempt_at=when,
        error_code=code,
        error_reason=reason,
        **_taken_back(answered),
    )


def _held(message_id: int, worker: str | None) -> ColumnElement[bool]:
    # A claim can run out while its holder lives (a database outage longer than the lease):
    # another dispatcher has taken the message over and may be sending it. The first
    # holder's late failure or retry must not put it back in the queue or settle it under
    # the new holder; a late success is recorded whoever holds it, as it is Meta's answer.
    if worker is None:
        return Message.id == message_id
    return and_(Message.id == message_id, Message.claimed_by == worker)


def _taken_back(answered: bool) -> dict[str, Any]:
    return {"uncertain_attempts": Message.uncertain_attempts - 1} if answered else {}


def release(session: Session, message_id: int, *, now: datetime, worker: str | None = None) -> None:
    """Give a claimed message back untried (shutdown): due now, this attempt not counted."""
    _unclaim(
        session,
        and_(_held(message_id, worker), Message.status == MessageStatus.SENDING),
        status=MessageStatus.QUEUED,
        next_attempt_at=now,
        attempts=Message.attempts - 1,
    )


def _unclaim(session: Session, where: ColumnElement[bool], **values: Any) -> None:
    """Settle a claimed message: the given changes, and the claim given up."""
    if "error_code" in values:
        values["error_code"], values["error_reason"] = _storable_error(
            values["error_code"], values.get("error_reason")
        )
    session.execute(
        update(Message)
        .where(where)
        .values(claimed_by=None, claimed_until=None, **values)
        .execution_options(synchronize_session=False)
    )


def oldest_unsent(session: Session) -> datetime | None:
    """When the oldest message still waiting to go out was queued."""
    # status_at: when it was queued; a broadcast message deferred by the pacer for days
    # waits from when it was released, not from when its run wrote it.
    return session.scalar(
        select(Message.status_at)
        .where(Message.direction == Direction.OUT, Message.status.in_(PENDING))
        .order_by(Message.id)
        .limit(1)
    )


def advance(
    message: Message,
    kind: str,
    at: datetime,
    *,
    error_code: int | None = None,
    error_reason: str | None = None,
    now: datetime | None = None,
) -> None:
    """Move an outbound message along sent → delivered → read, or to failed; never back.

    A broadcast message failed with 131049 the first time is capped, as in `mark_failed`; the
    statuses of that first attempt arriving later change nothing while it waits. A change the
    shop's systems may hear of is told to the webhooks subscribed (bot.webhooks_out)."""
    before = message.status
    _advance(message, kind, at, error_code=error_code, error_reason=error_reason)
    if message.status != before and message.status in TOLD:
        session = object_session(message)
        if session is not None:
            webhooks.message_status(session, message, now or at)


def _advance(
    message: Message,
    kind: str,
    at: datetime,
    *,
    error_code: int | None,
    error_reason: str | None,
) -> None:
    if message.capped_at is not None and message.status in (
        MessageStatus.DEFERRED,
        MessageStatus.QUEUED,
        MessageStatus.SENDING,
    ):
        return
    if kind == StatusKind.FAILED:
        if message.status in (MessageStatus.DELIVERED, MessageStatus.READ):
            return
        if error_code == CAPPED_CODE:
            if message.broadcast_run_id is not None and message.capped_at is None:
                for key, value in _capped_values(at, error_code, error_reason or "capped").items():
                    setattr(message, key, value)
                return
            message.capped_at = message.capped_at or at
        message.status = MessageStatus.FAILED
        message.failed_at = at
        message.status_at = at
        message.error_code, message.error_reason = _storable_error(
            error_code, error_reason or "failed (no reason given)"
        )
        return
    if kind not in STATUS_RANK:
        return
    # Statuses arrive out of order; each moment is the earliest evidence of it (a read
    # implies delivered and sent).
    message.sent_at = _earliest(message.sent_at, at)
    if kind in (StatusKind.DELIVERED, StatusKind.READ, StatusKind.PLAYED):
        message.delivered_at = _earliest(message.delivered_at, at)
    if kind in (StatusKind.READ, StatusKind.PLAYED):
        message.read_at = _earliest(message.read_at, at)
    if message.status == MessageStatus.FAILED:
        return
    if STATUS_RANK[kind] > STATUS_RANK.get(message.status, -1):
        message.status = MessageStatus.READ if kind == StatusKind.PLAYED else MessageStatus(kind)
        message.status_at = at


def hold_status(
    session: Session,
    wamid: str,
    kind: str,
    at: datetime,
    *,
    error_code: int | None,
    error_reason: str | None,
    now: datetime,
) -> None:
    """Keep a status whose message has no wamid yet: Meta's status notification can arrive
    before the dispatcher has recorded Meta's answer to the send. `apply_held` applies it
    when the wamid is recorded, `reconcile_held` if the two happened at the same moment."""
    error_code, error_reason = _storable_error(error_code, error_reason)
    session.add(
        HeldStatus(
            wamid=wamid[:255],
            status=kind[:16],
            at=at,
            error_code=error_code,
            error_reason=error_reason,
            received_at=now,
        )
    )


def _storable_error(code: int | None, reason: str | None) -> tuple[int | None, str | None]:
    """Meta's error code and reason as the columns hold them. Codes are integers of no stated
    size: one past 32 bits is kept only in the reason (which starts with it), and the reason,
    Meta's text, may hold what PostgreSQL refuses."""
    if code is not None and storable.int32(code) is None:
        if not reason or str(code) not in reason:
            reason = f"{code}: {reason}" if reason else str(code)
        code = None
    return code, None if reason is None else storable.cleaned(reason)


def apply_held(session: Session, sent: list[tuple[int, str]]) -> None:
    """Apply the statuses held for these just recorded (message id, wamid) pairs."""
    if not sent:
        return
    ids = dict((wamid, message_id) for message_id, wamid in sent)
    # Almost always none: a look by the index first, the rows as objects only when some wait.
    if session.connection().execute(_ANY_HELD, {"wamids": list(ids)}).first() is None:
        return
    held = list(
        session.scalars(select(HeldStatus).where(HeldStatus.wamid.in_(ids)).order_by(HeldStatus.id))
    )
    _apply(session, held, ids)


def reconcile_held(session: Session, limit: int = 1000) -> int:
    """Apply held statuses whose wamid has been recorded meanwhile: a status and the send's
    answer recorded at the same moment by two transactions can miss each other."""
    held = list(
        session.scalars(
            select(HeldStatus)
            .where(exists().where(Message.wamid == HeldStatus.wamid))
            .order_by(HeldStatus.id)
            .limit(limit)
        )
    )
    wamids = {h.wamid for h in held}
    rows = session.execute(select(Message.wamid, Message.id).where(Message.wamid.in_(wamids)))
    _apply(session, held, {w: i for w, i in rows if w is not None})
    return len(held)


def _apply(session: Session, held: list[HeldStatus], ids: dict[str, int]) -> None:
    if not held:
        return
    for h in held:
        message = session.get(Message, ids[h.wamid], populate_existing=True, with_for_update=True)
        if message is not None:
            advance(message, h.status, h.at, error_code=h.error_code, error_reason=h.error_reason)
    session.execute(delete(HeldStatus).where(HeldStatus.id.in_([h.id for h in held])))


def prune_held(session: Session, before: datetime) -> int:
    """Forget held statuses no send ever claimed (messages sent from elsewhere)."""
    result = session.execute(delete(HeldStatus).where(HeldStatus.received_at < before))
    return int(getattr(result, "rowcount", 0) or 0)


def _earliest(current: datetime | None, at: datetime) -> datetime:
    return at if current is None or at < current else current
