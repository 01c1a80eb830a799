"""Retention for media: the files of messages older than `retention.media_days` are let go.

A message's attachment stops using its file (it stays, marked expired, so the inbox says what
there was); the file itself goes with the next cleanup (bot.media.cleanup), which keeps any
file something else still uses: a newer message with the same bytes, a broadcast, a quick
reply, the settings. Outbound messages still to be sent keep theirs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Final

from sqlalchemy import select, update

from bot.db import Database
from bot.media.kinds import Failure
from bot.models import Attachment, AttachmentState, Message

__all__ = ["BATCH", "expire"]

BATCH: Final = 1000


def expire(
    database: Database,
    *,
    before: datetime,
    keep_statuses: Collection[str],
    batch: int = BATCH,
    between: Callable[[int], object] | None = None,
) -> int:
    """Unlink the files of messages from before `before` (not those in `keep_statuses`), one
    short transaction per `batch`; `between(done so far)` after each. The number unlinked."""
    total = 0
    while True:
        with database.session() as session:
            ids = list(
                session.scalars(
                    select(Attachment.id)
                    .join(Message, Message.id == Attachment.message_id)
                    .where(
                        Attachment.file_id.is_not(None),
                        Message.timestamp < before,
                        Message.status.not_in(list(keep_statuses)),
                    )
                    .order_by(Attachment.id)
                    .limit(batch)
                )
            )
            if ids:
                session.execute(
                    update(Attachment)
                    .where(Attachment.id.in_(ids))
                    .values(
                        file_id=None,
                        state=AttachmentState.FAILED,
                        failure=Failure.EXPIRED,
                        error="deleted after the retention period (retention.media_days)",
                    )
                )
        total += len(ids)
        if ids and between is not None:
            between(total)
        if len(ids) < batch:
            return total
