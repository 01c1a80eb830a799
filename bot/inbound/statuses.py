"""The handler for a delivery status of an outbound message: sent → delivered → read, or
failed, never back; held when it overtakes the send's answer."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import storable
from bot.contacts.lookup import fitting
from bot.models import Direction, Message
from bot.outbound import outbox
from bot.whatsapp import events


def apply_status(session: Session, event: events.Status, now: datetime) -> None:
    """Move an outbound message along sent → delivered → read, or to failed; never back."""
    if fitting("wamid", event.message_id) is None:
        return  # longer than any wamid of ours
    query = (
        select(Message)
        .where(Message.wamid == event.message_id, Message.direction == Direction.OUT)
        .with_for_update(of=Message)
    )
    message = session.scalars(query).one_or_none()
    error = event.errors[0] if event.errors else None
    code = error.code if error else None
    reason = _reason(error) if error else None
    if message is None and event.status.value in outbox.HELD_KINDS:
        # Not recorded yet (the status overtook the send's answer) or not ours (sent from
        # the phone app): held until the dispatcher records this wamid, pruned if it never does.
        outbox.hold_status(
            session,
            event.message_id,
            event.status.value,
            event.timestamp,
            error_code=code,
            error_reason=reason,
            now=now,
        )
        return
    if message is None:
        return
    outbox.advance(
        message, event.status.value, event.timestamp, error_code=code, error_reason=reason, now=now
    )


_REASON_LENGTH = 1000


def _reason(error: events.ErrorInfo) -> str:
    """The error as text, code first: the code column holds only what fits 32 bits."""
    parts = [str(error.code)] if error.code is not None else []
    text = " — ".join(p for p in (error.title, error.details) if p)
    reason = ": ".join([*parts, text]) if text else (parts[0] if parts else "failed")
    return storable.clipped(reason, _REASON_LENGTH) or reason
