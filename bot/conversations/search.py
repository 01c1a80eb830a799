"""Searching message texts: which conversations have a message containing the words, and the
newest such message of each."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.conversations.text import like_pattern
from bot.models import Message

# How far back a search looks, in messages (the newest ones, by id: a range of the primary
# key, so the scan costs the same however long the shop has been running), and how many
# conversations it finds at most.
SCAN = 50_000
FOUND_MAX = 200


def in_messages(session: Session, query: str) -> dict[int, tuple[int, str]]:
    """Contact id → (message id, text) of the newest message containing `query`
    (case-insensitive, LIKE's characters taken literally), among the newest SCAN messages."""
    query = query.strip()
    if not query:
        return {}
    newest = session.scalar(select(func.max(Message.id)))
    if newest is None:
        return {}
    matching = (
        select(func.max(Message.id).label("id"))
        .where(
            Message.id > newest - SCAN,
            Message.text.is_not(None),
            Message.text.ilike(like_pattern(query), escape="\\"),
        )
        .group_by(Message.contact_id)
        .order_by(func.max(Message.id).desc())
        .limit(FOUND_MAX)
        .subquery()
    )
    rows = session.execute(
        select(Message.contact_id, Message.id, Message.text).where(
            Message.id.in_(select(matching.c.id))
        )
    )
    return {row.contact_id: (row.id, row.text or "") for row in rows}
