"""Retention: messages older than `retention.messages_days` and media older than
`retention.media_days` are deleted by the scheduler leader once a day, in short batches so the
inbox keeps answering. Before messages go, what the weekly statistics count of them is kept as
daily totals per kind (`message_totals`). Unset settings keep everything.

Settled outgoing webhook deliveries (their bodies repeat messages and contacts) are deleted 30
days after they were made, whatever the settings (bot.webhooks_out.store.KEEP_SETTLED).

Never deleted: outbound messages still to go out (drafts of a broadcast, queued, sending,
deferred) and every message of a broadcast run still being written (the run's unique
recipients rest on them). Rows that refer to a message go with it (its attachment) or let go
of it (a newer message's `in_reply_to`); notes, consent records and contacts are not messages
and stay.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.orm import Session

from bot import statistics
from bot.broadcasts.runs import RunStatus
from bot.db import Database
from bot.media import cleanup, expiry
from bot.media.store import MediaStore
from bot.models import BroadcastRun, Message, MessageStatus, MessageTotal
from bot.settings.stored import load_settings
from bot.statistics import Kind
from bot.webhooks_out import store as webhooks

__all__ = ["BATCH", "KEEP_STATUSES", "DailyRetention", "Removed", "delete_messages", "tally"]

log = logging.getLogger("tresen.retention")

BATCH: Final = 1000
# Outbound messages still on their way out: deleting one would lose a send.
KEEP_STATUSES: Final = frozenset(
    {MessageStatus.DRAFT, MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.DEFERRED}
)


@dataclass(frozen=True)
class Removed:
    """What one pass deleted: counts only, never content (they are logged)."""

    messages: int = 0
    media: int = 0  # attachments whose file was let go
    files: int = 0  # stored files deleted, row and bytes
    webhook_deliveries: int = 0  # settled ones over 30 days old


def cutoff(now: datetime, days: int | None) -> datetime | None:
    """The instant before which data older than `days` days is deleted; None: keep all."""
    return None if days is None else now - timedelta(days=days)


def tally(
    rows: Iterable[tuple[datetime, str, str, str | None, int | None, str]], timezone: str
) -> Counter[tuple[date, Kind]]:
    """Messages (timestamp, direction, type, rule, broadcast run, status) counted per local
    day and statistics kind; those the statistics do not count are left out."""
    tz = ZoneInfo(timezone)
    counts: Counter[tuple[date, Kind]] = Counter()
    for at, direction, type_, rule, run_id, status in rows:
        kind = statistics.kind_of(direction, type_, rule, run_id, status)
        if kind is not None:
            counts[(at.astimezone(tz).date(), kind)] += 1
    return counts


def add_totals(session: Session, counts: Counter[tuple[date, Kind]]) -> None:
    """Add `counts` to the kept daily totals (only the leader writes them: no race)."""
    for (day, kind), n in counts.items():
        changed = session.execute(
            update(MessageTotal)
            .where(MessageTotal.day == day, MessageTotal.kind == kind.value)
            .values(count=MessageTotal.count + n)
        ).rowcount  # type: ignore[attr-defined]
        if not changed:
            session.add(MessageTotal(day=day, kind=kind.value, count=n))
    session.flush()


def _deletable(before: datetime) -> list[object]:
    writing = exists().where(
        BroadcastRun.id == Message.broadcast_run_id, BroadcastRun.status == RunStatus.WRITING
    )
    return [
        Message.timestamp < before,
        Message.status.not_in(list(KEEP_STATUSES)),
        or_(Message.broadcast_run_id.is_(None), ~writing),
    ]


def delete_messages(
    database: Database,
    *,
    before: datetime,
    timezone: str,
    batch: int = BATCH,
    between: Callable[[int], object] | None = None,
) -> int:
    """Delete the messages from before `before` that may go, `batch` per transaction, their
    totals kept in the same transaction; `between(deleted so far)` after each batch."""
    total = 0
    while True:
        with database.session() as session:
            rows = session.execute(
                select(
                    Message.id,
                    Message.timestamp,
                    Message.direction,
                    Message.type,
                    Message.rule,
                    Message.broadcast_run_id,
                    Message.status,
                )
                .where(*_deletable(before))  # type: ignore[arg-type]
                .order_by(Message.id)
                .limit(batch)
            ).all()
            if rows:
                add_totals(session, tally((tuple(row)[1:] for row in rows), timezone))  # type: ignore[misc]
                session.execute(delete(Message).where(Message.id.in_([row.id for row in rows])))
        total += len(rows)
        if rows and between is not None:
            between(total)
        if len(rows) < batch:
            return total


class DailyRetention:
    """The scheduler leader's retention pass: at its first pass (so after any downtime, which
    the cut-off by age catches up on) and then once a day; after a failure an hour later."""

    EVERY: Final = timedelta(hours=24)
    RETRY: Final = timedelta(hours=1)

    def __init__(
        self,
        database: Database,
        store: MediaStore | None,
        *,
        batch: int = BATCH,
        between: Callable[[int], object] | None = None,
    ) -> None:
        """`store`: where the files are, to delete those nothing uses any more (None: left to
        the media fetcher's hourly cleanup); `between`: called after every batch."""
        self.database = database
        self.store = store
        self.batch = batch
        self.between = between
        self.next_at: datetime | None = None

    def __call__(self, now: datetime) -> Removed | None:
        if self.next_at is not None and now < self.next_at:
            return None
        try:
            removed = self.run(now)
        except Exception:
            self.next_at = now + self.RETRY
            raise
        self.next_at = now + self.EVERY
        return removed

    def run(self, now: datetime) -> Removed:
        """Delete what the settings no longer keep at `now`."""
        with self.database.session() as session:
            settings = load_settings(session)
            deliveries = webhooks.prune(session, now)
        if deliveries:
            log.info("retention: deleted %d settled webhook deliveries", deliveries)
        if settings is None:
            return Removed(webhook_deliveries=deliveries)
        days = settings.retention
        messages = media = files = 0
        before = cutoff(now, days.messages_days)
        if before is not None:
            messages = delete_messages(
                self.database,
                before=before,
                timezone=settings.hours.timezone,
                batch=self.batch,
                between=self.between,
            )
        before = cutoff(now, days.media_days)
        if before is not None:
            media = expiry.expire(
                self.database,
                before=before,
                keep_statuses=KEEP_STATUSES,
                batch=self.batch,
                between=self.between,
            )
        if (messages or media) and self.store is not None:
            files = cleanup.sweep(self.database, self.store, now=now).files
        removed = Removed(messages, media, files, deliveries)
        if messages or media:
            log.info(
                "retention: deleted %d messages (kept %s days), let go of %d media (kept %s "
                "days), deleted %d files",
                messages,
                days.messages_days,
                media,
                days.media_days,
                files,
            )
        return removed
