"""Unread counts per person: each user has read each conversation up to a message of their own.

A conversation a user never opened has no row for them: the customer's messages newer than the
newest message when they joined (`users.unread_from`) are unread for them. The upgrade that
brought per-person counts set that mark for everyone on the team then, and kept what the team
had not read as "marked unread" for each of them.

The team's shared count (`contacts.unread`, raised with every new message and reset by whoever
opens the conversation) still says whether anyone has seen a message (read receipts).
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from bot.models import Contact, Conversation, ConversationRead, Direction, Message, User
from bot.sql import insert_ignore


def _joined(user_id: int) -> ColumnElement[int]:
    return select(User.unread_from).where(User.id == user_id).scalar_subquery()


def unread_condition(user_id: int) -> ColumnElement[bool]:
    """Whether a conversation has something unread for this user, for a query over Contact
    that outer-joins this user's ConversationRead: the same rule as `unread_counts`."""
    newer_than_read = exists().where(
        Message.contact_id == Contact.id,
        Message.direction == Direction.IN,
        Message.id > ConversationRead.read_up_to,
    )
    newer_than_joining = exists().where(
        Message.contact_id == Contact.id,
        Message.direction == Direction.IN,
        Message.id > _joined(user_id),
    )
    return or_(
        and_(ConversationRead.user_id.is_(None), newer_than_joining),
        and_(
            ConversationRead.user_id.is_not(None),
            or_(ConversationRead.marked_unread.is_(True), newer_than_read),
        ),
    )


def unread_counts(session: Session, user_id: int, contact_ids: Sequence[int]) -> dict[int, int]:
    """The unread count of each of `contact_ids` for one user (0 where nothing is unread)."""
    if not contact_ids:
        return {}
    ids = list(contact_ids)
    reads = {
        row.contact_id: row
        for row in session.scalars(
            select(ConversationRead).where(
                ConversationRead.user_id == user_id, ConversationRead.contact_id.in_(ids)
            )
        )
    }
    counts = dict.fromkeys(ids, 0)
    never_opened = [contact_id for contact_id in ids if contact_id not in reads]
    if never_opened:
        since_joining = (
            select(Message.contact_id, func.count())
            .where(
                Message.contact_id.in_(never_opened),
                Message.direction == Direction.IN,
                Message.id > _joined(user_id),
            )
            .group_by(Message.contact_id)
        )
        for contact_id, n in session.execute(since_joining):
            counts[contact_id] = int(n)
    if reads:
        newer = (
            select(Message.contact_id, func.count())
            .join(
                ConversationRead,
                and_(
                    ConversationRead.contact_id == Message.contact_id,
                    ConversationRead.user_id == user_id,
                ),
            )
            .where(
                Message.contact_id.in_(list(reads)),
                Message.direction == Direction.IN,
                Message.id > ConversationRead.read_up_to,
            )
            .group_by(Message.contact_id)
        )
        for contact_id, n in session.execute(newer):
            counts[contact_id] = int(n)
        for contact_id, row in reads.items():
            if row.marked_unread:
                counts[contact_id] = max(1, counts[contact_id])
    return counts


def mark_seen(session: Session, user_id: int, contact_id: int, up_to: int) -> None:
    """The user has seen the conversation up to message id `up_to` (and it is no longer
    marked unread). Never moves backwards: an older page polling late changes nothing."""
    session.execute(
        insert_ignore(session, ConversationRead, ["user_id", "contact_id"]).values(
            user_id=user_id, contact_id=contact_id, read_up_to=0, marked_unread=False
        )
    )
    row = session.get(ConversationRead, (user_id, contact_id), with_for_update=True)
    assert row is not None  # inserted just now, or there before
    row.read_up_to = max(row.read_up_to, up_to)
    row.marked_unread = False


def mark_unread(session: Session, user_id: int, contact_id: int) -> None:
    """ "Mark unread": the conversation shows as unread for this user until opened again."""
    session.execute(
        insert_ignore(session, ConversationRead, ["user_id", "contact_id"]).values(
            user_id=user_id, contact_id=contact_id, read_up_to=0, marked_unread=True
        )
    )
    row = session.get(ConversationRead, (user_id, contact_id), with_for_update=True)
    assert row is not None
    row.marked_unread = True


def for_me(user_id: int) -> ColumnElement[bool]:
    """The conversations a user is told about: assigned to them or to nobody, not archived.
    A condition for a query that outer-joins Conversation to Contact."""
    return and_(
        or_(Conversation.assigned_user_id.is_(None), Conversation.assigned_user_id == user_id),
        or_(Conversation.archived.is_(None), Conversation.archived.is_(False)),
    )
