"""What changed in the inbox since a mark: the push channel's questions to the database.

Each is one short query, asked by an open event stream about once a second (bot/admin/live.py),
so each must stay cheap however large the history: the newest message is the primary key's end,
and the rest is asked only when that or a conversation's state moved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from bot.audit import Action
from bot.conversations.unread import for_me, unread_condition
from bot.models import (
    AuditEntry,
    Contact,
    Conversation,
    ConversationRead,
    Direction,
    Message,
    MessageStatus,
)

# A customer writing in a burst, or a stream reconnecting after a laptop slept: one item per
# conversation, and no more than this many.
NEWS_MAX = 10
# How many of the newest messages are looked through to find those conversations.
NEWS_SCAN = 200
_MARK = re.compile(r"(\d{1,18})-(\d{1,18})")
_CONTACT = re.compile(r"contact:(\d{1,18})")


@dataclass(frozen=True, order=False)
class Mark:
    """Where the inbox stood: its newest message, and its conversations' latest change (ms)."""

    latest: int
    changed: int

    def __str__(self) -> str:
        return f"{self.latest}-{self.changed}"

    @classmethod
    def parse(cls, text: str | None) -> Mark | None:
        """A mark as an event's id gave it back (Last-Event-ID); None for anything else."""
        match = _MARK.fullmatch((text or "").strip())
        return cls(int(match[1]), int(match[2])) if match else None


@dataclass(frozen=True)
class News:
    """A customer's newest message in one conversation since a mark."""

    contact_id: int
    name: str
    message: Message
    assigned_user_id: int | None

    def for_user(self, user_id: int) -> bool:
        """Told to this user: the conversation is theirs or nobody's."""
        return self.assigned_user_id is None or self.assigned_user_id == user_id


def _millis(at: datetime | None) -> int:
    return int(at.timestamp() * 1000) if at is not None else 0


def current(session: Session) -> Mark:
    latest, changed = session.execute(
        select(
            select(func.max(Message.id)).scalar_subquery(),
            select(func.max(Conversation.updated_at)).scalar_subquery(),
        )
    ).one()
    if isinstance(changed, str):  # SQLite hands a max() of a time back as its text
        changed = datetime.fromisoformat(changed)
    return Mark(int(latest or 0), _millis(changed))


def news(session: Session, after: int) -> list[News]:
    """Customers' messages with an id above `after`: the newest per conversation, oldest
    conversation first, at most NEWS_MAX."""
    rows = session.execute(
        select(
            Message,
            Contact.name,
            Contact.wa_id,
            Contact.user_id,
            Conversation.assigned_user_id,
        )
        .join(Contact, Contact.id == Message.contact_id)
        .outerjoin(Conversation, Conversation.contact_id == Message.contact_id)
        .where(
            Message.id > after,
            Message.direction == Direction.IN,
            Message.status != MessageStatus.REVOKED,
        )
        .order_by(Message.id.desc())
        .limit(NEWS_SCAN)
    ).all()
    newest: dict[int, News] = {}
    for message, name, wa_id, user_id, assigned in rows:
        if message.contact_id in newest:
            continue
        newest[message.contact_id] = News(
            message.contact_id, name or wa_id or user_id or "?", message, assigned
        )
        if len(newest) == NEWS_MAX:
            break
    return sorted(newest.values(), key=lambda item: item.message.id)


@dataclass(frozen=True)
class Handed:
    """A conversation someone else assigned to the user since a mark."""

    contact_id: int
    name: str
    by: str


def handed_to(session: Session, user_id: int, after_ms: int) -> list[Handed]:
    """Conversations assigned to this user by someone else after `after_ms` (a mark's
    `changed`) and still theirs, at most NEWS_MAX. Read from the audit log, which knows who
    assigned: a user who takes a conversation themselves is not told of it."""
    since = datetime.fromtimestamp(after_ms / 1000, UTC)
    entries = session.execute(
        select(AuditEntry.subject, AuditEntry.user_name)
        .where(
            AuditEntry.action == Action.ASSIGNED,
            AuditEntry.at > since,
            or_(AuditEntry.user_id.is_(None), AuditEntry.user_id != user_id),
        )
        .order_by(AuditEntry.id.desc())
        .limit(NEWS_SCAN)
    ).all()
    by: dict[int, str] = {}
    for subject, name in entries:
        match = _CONTACT.fullmatch(subject or "")
        if match and int(match[1]) not in by:
            by[int(match[1])] = name or ""
    if not by:
        return []
    rows = session.execute(
        select(Contact.id, Contact.name, Contact.wa_id, Contact.user_id)
        .join(Conversation, Conversation.contact_id == Contact.id)
        .where(Contact.id.in_(list(by)), Conversation.assigned_user_id == user_id)
        .order_by(Contact.id)
        .limit(NEWS_MAX)
    ).all()
    return [Handed(cid, name or wa_id or uid or "?", by[cid]) for cid, name, wa_id, uid in rows]


def unread_conversations(session: Session, user_id: int) -> int:
    """How many conversations told to this user (bot.conversations.unread.for_me) have
    something unread for them, by the rule unread_counts follows."""
    count = session.scalar(
        select(func.count())
        .select_from(Contact)
        .outerjoin(Conversation, Conversation.contact_id == Contact.id)
        .outerjoin(
            ConversationRead,
            and_(ConversationRead.contact_id == Contact.id, ConversationRead.user_id == user_id),
        )
        .where(Contact.last_inbound_at.is_not(None), for_me(user_id), unread_condition(user_id))
    )
    return int(count or 0)
