"""Internal notes on a conversation: written by a person of the team, shown in the timeline
between the messages, never sent (they are not messages: nothing puts them in the outbox)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.models import Note

NOTE_MAX = 4096
NOTES_SHOWN = 200


def add_note(
    session: Session, contact_id: int, user_id: int | None, user_name: str, text: str, at: datetime
) -> Note:
    """A note by this user; ValueError for an empty or too long one."""
    text = text.strip()
    if not text:
        raise ValueError("empty")
    if len(text) > NOTE_MAX:
        raise ValueError("too long")
    note = Note(
        contact_id=contact_id, user_id=user_id, user_name=user_name, text=text, created_at=at
    )
    session.add(note)
    session.flush()
    return note


def notes_of(session: Session, contact_id: int, *, after: int = 0) -> list[Note]:
    """The conversation's newest NOTES_SHOWN notes after note id `after`, oldest first."""
    found = session.scalars(
        select(Note)
        .where(Note.contact_id == contact_id, Note.id > after)
        .order_by(Note.id.desc())
        .limit(NOTES_SHOWN)
    )
    return list(reversed(list(found)))
