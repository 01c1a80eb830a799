"""Broadcasts stored and their runs: create, the funnel, cancel; and the runs, which write an
occurrence's recipients to the outbox in batches, rendered per contact, resumable after a crash.

A run's recipients are written with INSERT … SELECT in contact id order, a batch per
transaction, with the run's cursor moved in the same transaction; the unique key per
(run, contact) on messages makes a repeated batch write nothing twice. Memory stays flat:
a batch of contacts at a time, never the audience.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Integer,
    String,
    Text,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal,
    null,
    select,
    update,
)
from sqlalchemy.orm import Session

from bot.broadcasts import pacing
from bot.broadcasts.content import BroadcastError, BroadcastKind, Content, Media, Renderer
from bot.broadcasts.stored import with_stored
from bot.contacts.audiences import Audience, parse_audience, window_start
from bot.contacts.labels import find_label
from bot.db import Database
from bot.media.kinds import MediaKind
from bot.media.sending import attach_query
from bot.models import (
    Broadcast,
    BroadcastRun,
    Contact,
    Direction,
    Message,
    MessageStatus,
    UTCDateTime,
    contact_labels,
    utcnow,
)
from bot.rules import Rule
from bot.settings import BusinessSettings
from bot.settings.stored import load_settings, seed_demo
from bot.sql import insert_ignore

log = logging.getLogger("tresen.broadcasts")

BATCH_SIZE = 1000
# Broadcasts queue behind replies a customer is waiting for (priority 0).
PRIORITY = 1
PENDING = (
    MessageStatus.DRAFT,
    MessageStatus.DEFERRED,
    MessageStatus.QUEUED,
    MessageStatus.SENDING,
)
SENT = (MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ)
OUTSIDE_WINDOW = "outside the 24-hour customer-service window"
CANCELLED = "broadcast cancelled"


class RunStatus(enum.StrEnum):
    """A run writes its recipients to the outbox until written, or until cancelled."""

    WRITING = "writing"
    WRITTEN = "written"
    CANCELLED = "cancelled"


class BroadcastStatus(enum.StrEnum):
    """Where a broadcast stands, from its runs and messages; `broadcast show --json` prints it."""

    SCHEDULED = "scheduled"
    RUNNING = "running"
    DONE = "done"
    CANCELLED = "cancelled"


STATUSES = tuple(BroadcastStatus)


@dataclass(frozen=True)
class Funnel:
    """A broadcast's recipients by where they stand. Each is pending, sent, failed or skipped:
    those four add up to `total`. `deferred` counts the pending ones held back by the quiet
    hours or the messaging limit (a part of `pending`); `capped` those Meta refused with 131049
    (its per-customer marketing cap): waiting for their one retry they are pending, given up
    failed. A broadcast stays running while any are deferred."""

    id: int
    status: BroadcastStatus
    total: int = 0
    pending: int = 0
    sent: int = 0
    delivered: int = 0
    read: int = 0
    failed: int = 0
    skipped: int = 0
    capped: int = 0
    deferred: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- broadcasts ------------------------------------------------------------------------------


def create(
    session: Session,
    content: Content,
    audience: Audience,
    *,
    timezone: str,
    now: datetime,
    at: datetime | None = None,
    cron: str | None = None,
) -> Broadcast:
    """Store a new broadcast; without `at` or `cron` it is due now."""
    settings = load_settings(session)
    content.check(settings, now)
    content = with_stored(session, content)
    if content.stored is not None and settings is not None:
        sample = reach(session, audience, now)
        content.check_stored(settings, now, sample.first_name, sample.first_wa_id)
    if at is not None and cron is not None:
        raise BroadcastError("give --at or --cron, not both")
    broadcast = Broadcast(
        kind=content.kind,
        text=content.text,
        template_name=content.template,
        language=content.language,
        params=list(content.params) if content.template is not None else None,
        file_id=content.media.file_id if content.media is not None else None,
        media_kind=content.media.kind if content.media is not None else None,
        media_name=content.media.filename if content.media is not None else None,
        audience=str(audience),
        at=None if cron is not None else (at or now),
        cron=cron,
        timezone=timezone,
        created_at=now,
    )
    session.add(broadcast)
    session.flush()
    return broadcast


def content_of(broadcast: Broadcast) -> Content:
    media = None
    if broadcast.file is not None and broadcast.media_kind is not None:
        media = Media(
            broadcast.file.id, broadcast.file.sha256, broadcast.media_kind, broadcast.media_name
        )
    if broadcast.kind == BroadcastKind.TEXT:
        return Content(text=broadcast.text or "", media=media)
    return Content(
        template=broadcast.template_name,
        language=broadcast.language,
        params=tuple(broadcast.params or ()),
        media=media,
    )


def funnels(session: Session, broadcasts: Iterable[Broadcast]) -> dict[int, Funnel]:
    """The funnel of each broadcast, with one aggregate query over their runs' messages.

    A recurring broadcast's runs add up: its funnel counts the recipients of all its runs.
    """
    by_id = {b.id: b for b in broadcasts}
    if not by_id:
        return {}
    status = Message.status

    def count(*values: str) -> Any:
        return func.coalesce(func.sum(case((status.in_(values), 1), else_=0)), 0)

    rows = session.execute(
        select(
            BroadcastRun.broadcast_id,
            func.count(Message.id),
            count(*PENDING),
            count(*SENT),
            count(MessageStatus.DELIVERED, MessageStatus.READ),
            count(MessageStatus.READ),
            count(MessageStatus.FAILED),
            count(MessageStatus.SKIPPED),
            func.coalesce(func.sum(case((Message.capped_at.is_not(None), 1), else_=0)), 0),
            count(MessageStatus.DEFERRED),
        )
        .join(Message, Message.broadcast_run_id == BroadcastRun.id)
        .where(BroadcastRun.broadcast_id.in_(by_id))
        .group_by(BroadcastRun.broadcast_id)
    ).all()
    counts = {r[0]: tuple(int(v) for v in r[1:]) for r in rows}
    runs = session.execute(
        select(BroadcastRun.broadcast_id, BroadcastRun.status).where(
            BroadcastRun.broadcast_id.in_(by_id)
        )
    ).all()
    run_states: dict[int, set[str]] = {}
    for broadcast_id, run_status in runs:
        run_states.setdefault(broadcast_id, set()).add(run_status)
    result = {}
    for broadcast_id, broadcast in by_id.items():
        total, pending, sent, delivered, read, failed, skipped, capped, deferred = counts.get(
            broadcast_id, (0, 0, 0, 0, 0, 0, 0, 0, 0)
        )
        states = run_states.get(broadcast_id, set())
        if broadcast.cancelled_at is not None:
            state = BroadcastStatus.CANCELLED
        elif RunStatus.WRITING in states or pending > 0:
            state = BroadcastStatus.RUNNING
        elif broadcast.cron is None and states:
            state = BroadcastStatus.DONE
        else:
            state = BroadcastStatus.SCHEDULED
        result[broadcast_id] = Funnel(
            broadcast_id,
            state,
            total,
            pending,
            sent,
            delivered,
            read,
            failed,
            skipped,
            capped,
            deferred,
        )
    return result


def funnel(session: Session, broadcast_id: int) -> Funnel | None:
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None:
        return None
    return funnels(session, [broadcast])[broadcast_id]


def cancel(session: Session, broadcast_id: int, now: datetime) -> int:
    """Cancel a broadcast: no more runs; its messages not yet on their way are skipped.

    Returns how many messages were withdrawn; BroadcastError if there is no such broadcast
    or it is done already.
    """
    broadcast = session.get(Broadcast, broadcast_id, with_for_update=True)
    if broadcast is None:
        raise BroadcastError(f"there is no broadcast {broadcast_id}")
    if broadcast.cancelled_at is not None:
        return 0
    state = funnels(session, [broadcast])[broadcast_id].status
    if state == BroadcastStatus.DONE:
        raise BroadcastError(f"broadcast {broadcast_id} is done already")
    broadcast.cancelled_at = now
    runs = select(BroadcastRun.id).where(BroadcastRun.broadcast_id == broadcast_id)
    session.execute(
        update(BroadcastRun)
        .where(BroadcastRun.broadcast_id == broadcast_id, BroadcastRun.status == RunStatus.WRITING)
        .values(status=RunStatus.CANCELLED, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    # Messages a dispatcher has claimed ("sending") are on their way and stay so.
    result = session.execute(
        update(Message)
        .where(
            Message.broadcast_run_id.in_(runs),
            Message.status.in_((MessageStatus.DRAFT, MessageStatus.DEFERRED, MessageStatus.QUEUED)),
        )
        .values(status=MessageStatus.SKIPPED, status_at=now, error_reason=CANCELLED)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- audiences -------------------------------------------------------------------------------


def audience_members(session: Session, audience: Audience) -> ColumnElement[bool] | None:
    """Which contacts a run for this audience goes to, as a condition on contacts: opted in,
    with a number or user id to send to, and the label (case not counting); None when there is
    no such label, so nobody."""
    condition = and_(
        Contact.opted_in.is_(True),
        (Contact.wa_id.is_not(None)) | (Contact.user_id.is_not(None)),
    )
    if audience.label is None:
        return condition
    found = find_label(session, audience.label)
    if found is None:
        return None
    return and_(
        condition,
        exists().where(
            contact_labels.c.contact_id == Contact.id, contact_labels.c.label_id == found.id
        ),
    )


def inside_window(now: datetime) -> ColumnElement[bool]:
    """Contacts a free text may go to at `now`: they wrote within the last 24 hours."""
    return and_(Contact.last_inbound_at.is_not(None), Contact.last_inbound_at > window_start(now))


@dataclass(frozen=True)
class Reach:
    """Who a broadcast to an audience would reach if it started now."""

    total: int  # the recipients: opted-in contacts of the audience
    reachable: int  # of them, inside the 24-hour window: a free text goes to these only
    first_name: str | None = None  # the first recipient, for a preview of the message
    first_wa_id: str | None = None


def reach(session: Session, audience: Audience, now: datetime) -> Reach:
    """The recipients a run for `audience` starting at `now` would have, counted as the run
    chooses them (`audience_members`), and the first of them."""
    members = audience_members(session, audience)
    if members is None:
        return Reach(0, 0)
    total, reachable = session.execute(
        select(
            func.count(Contact.id),
            func.coalesce(func.sum(case((inside_window(now), 1), else_=0)), 0),
        ).where(members)
    ).one()
    first = session.execute(
        select(Contact.name, Contact.wa_id).where(members).order_by(Contact.id).limit(1)
    ).first()
    name, wa_id = (first[0], first[1]) if first is not None else (None, None)
    return Reach(int(total), int(reachable), name, wa_id)


# --- runs ------------------------------------------------------------------------------------


def start_run(session: Session, broadcast_id: int, due_at: datetime, now: datetime) -> int | None:
    """The run of this occurrence, created if new; None if the broadcast is gone or cancelled."""
    broadcast = session.get(Broadcast, broadcast_id)
    if broadcast is None or broadcast.cancelled_at is not None:
        return None
    session.execute(
        insert_ignore(session, BroadcastRun, ["broadcast_id", "due_at"]).values(
            broadcast_id=broadcast_id,
            due_at=due_at,
            status=RunStatus.WRITING,
            cursor=0,
            started_at=now,
        )
    )
    return session.scalar(
        select(BroadcastRun.id).where(
            BroadcastRun.broadcast_id == broadcast_id, BroadcastRun.due_at == due_at
        )
    )


def unfinished_runs(session: Session) -> list[int]:
    return list(
        session.scalars(
            select(BroadcastRun.id)
            .where(BroadcastRun.status == RunStatus.WRITING)
            .order_by(BroadcastRun.id)
        )
    )


def business_settings(session: Session) -> BusinessSettings:
    """The business settings, the demo's stored first if there are none yet."""
    settings = load_settings(session)
    if settings is None:
        seed_demo(session)
        settings = load_settings(session)
    assert settings is not None
    return settings


@dataclass(frozen=True)
class _Batch:
    run_id: int
    after: int  # contact ids in (after, last] belong to this batch
    last: int
    content: Content
    settings: BusinessSettings
    media_type: str | None = None  # the file's content type, when it sends one


def write_batch(
    database: Database, run_id: int, now: datetime, batch_size: int = BATCH_SIZE
) -> bool:
    """Write the next batch of a run's recipients, rendered; False when the run is complete.

    Recipients are the opted-in contacts of the audience now; a text goes only to those
    inside the 24-hour window, the others are written as skipped with the reason. Three
    short transactions: the rows as drafts, reading them, then the rendered messages with
    the run's cursor; rendering holds no lock. A crash in between leaves drafts that the
    next attempt (same batch, the cursor not moved) renders: nothing is written twice.
    Rendered messages are deferred; the pacer (`pacing.release`, in the same transaction)
    queues them as far as the quiet hours and the messaging limit allow.
    """
    with database.session() as session:
        batch = _insert_drafts(session, run_id, now, batch_size)
    if batch is None:
        return False
    with database.session() as session:
        drafts = session.execute(
            select(Message.id, Contact.name, Contact.wa_id, Contact.user_id)
            .join(Contact, Contact.id == Message.contact_id)
            .where(
                Message.broadcast_run_id == run_id,
                Message.contact_id > batch.after,
                Message.contact_id <= batch.last,
                Message.status == MessageStatus.DRAFT,
            )
        ).all()
    renderer = Renderer(batch.content, batch.settings, now)
    changes = []
    for message_id, name, wa_id, user_id in drafts:
        change: dict[str, Any] = {
            "b_id": message_id,
            "type": str(batch.content.kind),
            # Deferred: the pacer queues it when the quiet hours and the limit allow.
            "status": MessageStatus.DEFERRED,
            "payload": None,
            "text": None,
            "error_reason": None,
            "failed_at": None,
        }
        try:
            change["payload"], change["text"] = renderer.payload(
                wa_id or user_id or "", name, wa_id
            )
            change["type"] = str(change["payload"]["type"])  # a text with an image: "image"
        except ValueError as exc:
            # This contact's message cannot be built; it fails with the reason, the rest go.
            change.update(status=MessageStatus.FAILED, error_reason=str(exc)[:500], failed_at=now)
        changes.append(change)
    with database.session() as session:
        if changes:
            # Only drafts: a cancel meanwhile has turned them to skipped, and that stands.
            session.connection().execute(
                update(Message)
                .where(Message.id == bindparam("b_id"), Message.status == MessageStatus.DRAFT)
                .values(
                    type=bindparam("type"),
                    status=bindparam("status"),
                    payload=bindparam("payload", type_=JSON()),
                    text=bindparam("text"),
                    error_reason=bindparam("error_reason"),
                    failed_at=bindparam("failed_at", type_=UTCDateTime()),
                ),
                changes,
            )
        media = batch.content.media
        if media is not None:
            # Each queued message links to the file (for the inbox, retention and erasure),
            # written with the messages, so a crash leaves neither without the other.
            carrying = select(Message.id).where(
                Message.broadcast_run_id == run_id,
                Message.contact_id > batch.after,
                Message.contact_id <= batch.last,
                Message.status.not_in((MessageStatus.SKIPPED, MessageStatus.FAILED)),
            )
            session.execute(
                attach_query(
                    session,
                    carrying,
                    file_id=media.file_id,
                    kind=MediaKind(media.kind),
                    content_type=batch.media_type or "",
                    filename=media.filename,
                    now=now,
                )
            )
        session.execute(
            update(BroadcastRun)
            .where(BroadcastRun.id == run_id, BroadcastRun.cursor == batch.after)
            .values(cursor=batch.last)
            .execution_options(synchronize_session=False)
        )
        # At once, so that a broadcast in allowed hours and within the limit starts now.
        pacing.release(session, batch.settings, now)
    return True


def _insert_drafts(session: Session, run_id: int, now: datetime, batch_size: int) -> _Batch | None:
    run = session.get(BroadcastRun, run_id, with_for_update=True, populate_existing=True)
    if run is None or run.status != RunStatus.WRITING:
        return None
    broadcast = session.get_one(Broadcast, run.broadcast_id)
    if broadcast.cancelled_at is not None:
        run.status, run.finished_at = RunStatus.CANCELLED, now
        return None
    audience = parse_audience(broadcast.audience)
    members = audience_members(session, audience)
    if members is None:
        run.status, run.finished_at = RunStatus.WRITTEN, now
        log.info("run %s: no contact has the label %r", run_id, audience.label)
        return None
    chosen = select(Contact.id).where(members, Contact.id > run.cursor)
    batch = chosen.order_by(Contact.id).limit(batch_size).subquery()
    last = session.scalar(select(func.max(batch.c.id)))
    if last is None:
        run.status, run.finished_at = RunStatus.WRITTEN, now
        log.info("run %s of broadcast %s: all recipients written", run_id, broadcast.id)
        return None

    when = literal(now, UTCDateTime())
    status: Any
    reason: Any
    if broadcast.kind == BroadcastKind.TEXT:
        inside = inside_window(now)
        status = case(
            (inside, literal(MessageStatus.DRAFT, String())),
            else_=literal(MessageStatus.SKIPPED, String()),
        )
        reason = case((inside, null()), else_=literal(OUTSIDE_WINDOW))
    else:
        status, reason = literal(MessageStatus.DRAFT, String()), literal(None, Text())
    columns = {
        "contact_id": Contact.id,
        "direction": literal(Direction.OUT, String()),
        "type": literal(broadcast.kind),
        "rule": literal(Rule.BROADCAST, String()),
        "status": status,
        "error_reason": reason,
        "created_at": when,
        "timestamp": when,
        "status_at": when,
        "next_attempt_at": when,
        "priority": literal(PRIORITY, Integer()),
        "attempts": literal(0, Integer()),
        "broadcast_run_id": literal(run.id, Integer()),
    }
    session.execute(
        insert_ignore(session, Message, ["broadcast_run_id", "contact_id"]).from_select(
            list(columns),
            select(*columns.values()).where(Contact.id.in_(select(batch.c.id))),
        )
    )
    content = with_stored(session, content_of(broadcast), strict=False)
    media_type = broadcast.file.content_type if broadcast.file is not None else None
    return _Batch(run.id, run.cursor, last, content, business_settings(session), media_type)


def write_run(
    database: Database,
    run_id: int,
    *,
    clock: Callable[[], datetime] = utcnow,
    batch_size: int = BATCH_SIZE,
    keep_going: Callable[[], bool] = lambda: True,
) -> None:
    """Write all of a run's recipients, batch by batch (resumable at any point)."""
    while keep_going():
        if not write_batch(database, run_id, clock(), batch_size):
            return
