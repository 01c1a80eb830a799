"""The team's decisions about conversations, read and written: state, assignment, pin,
archive, the inbox's views as SQL conditions, and the unread totals per view."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, bindparam, exists, false, func, or_, select
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from bot.conversations import state as rules
from bot.conversations.state import TABS, State, Team, View, after_reply
from bot.conversations.unread import unread_condition
from bot.models import (
    Contact,
    Conversation,
    ConversationRead,
    ConversationState,
    User,
)
from bot.sql import insert_ignore

_conversations = cast(Table, Conversation.__table__)

# The customer wrote: an archived, waiting or done conversation is open and listed again. The
# inbound pipeline runs it only when the contact's row says there is something to change (see
# bot.contacts.lookup: `reopen`), so an ordinary message costs no statement more.
REOPEN = (
    sql_update(_conversations)
    .where(
        _conversations.c.contact_id == bindparam("conversation"),
        or_(_conversations.c.archived, _conversations.c.state != ConversationState.OPEN),
    )
    .values(
        state=ConversationState.OPEN,
        archived=False,
        updated_at=bindparam("at", type_=_conversations.c.updated_at.type),
    )
)


def needs_reopening() -> Any:
    """A correlated condition on contacts: its conversation is archived or not open. An index
    lookup by primary key, for the inbound pipeline's contact query."""
    return exists(
        select(_conversations.c.contact_id).where(
            _conversations.c.contact_id == cast(Table, Contact.__table__).c.id,
            or_(_conversations.c.archived, _conversations.c.state != ConversationState.OPEN),
        )
    )


def team_of(session: Session, contact_id: int) -> Team:
    row = session.get(Conversation, contact_id)
    if row is None:
        return Team()
    return Team(State(row.state), row.assigned_user_id, row.pinned, row.archived)


def _row(session: Session, contact_id: int, at: datetime) -> Conversation:
    """The conversation's row, written now if the contact had none, and locked."""
    session.execute(
        insert_ignore(session, Conversation, ["contact_id"]).values(
            contact_id=contact_id,
            state=ConversationState.OPEN,
            pinned=False,
            archived=False,
            updated_at=at,
        )
    )
    row = session.get(Conversation, contact_id, with_for_update=True, populate_existing=True)
    assert row is not None  # inserted just now, or there before
    return row


@dataclass(frozen=True)
class Change:
    """A field's value before and after, as words for the audit log; `changed` false when
    the request asked for what already was."""

    before: str
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def set_state(session: Session, contact_id: int, state: State, at: datetime) -> Change:
    row = _row(session, contact_id, at)
    before = row.state
    row.state, row.updated_at = state, at
    return Change(str(before), str(state))


def assign(session: Session, contact_id: int, user_id: int | None, at: datetime) -> Change:
    """Assign to an active user, or to nobody; ValueError for anyone else."""
    if user_id is not None:
        user = session.get(User, user_id)
        if user is None or not user.active:
            raise ValueError("no such active user")
    row = _row(session, contact_id, at)
    before = _user_name(session, row.assigned_user_id)
    row.assigned_user_id, row.updated_at = user_id, at
    return Change(before, _user_name(session, user_id))


def _user_name(session: Session, user_id: int | None) -> str:
    if user_id is None:
        return ""
    user = session.get(User, user_id)
    return user.name if user is not None else f"#{user_id}"


def set_pinned(session: Session, contact_id: int, pinned: bool, at: datetime) -> Change:
    row = _row(session, contact_id, at)
    before = row.pinned
    row.pinned, row.updated_at = pinned, at
    return Change(_yes(before), _yes(pinned))


def set_archived(session: Session, contact_id: int, archived: bool, at: datetime) -> Change:
    row = _row(session, contact_id, at)
    before = row.archived
    row.archived, row.updated_at = archived, at
    return Change(_yes(before), _yes(archived))


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def replied(session: Session, contact_id: int, at: datetime) -> None:
    """A person answered the customer: see state.after_reply."""
    row = _row(session, contact_id, at)
    state = after_reply(State(row.state))
    if state != row.state:
        row.state, row.updated_at = state, at


def in_view(view: View, user_id: int) -> ColumnElement[bool]:
    """state.in_view as a condition for a query that outer-joins Conversation to Contact (a
    contact without a row: open, unassigned, not archived)."""
    archived = func.coalesce(Conversation.archived, false())
    if view == View.ARCHIVED:
        return archived.is_(True)
    done = Conversation.state == ConversationState.DONE
    if view == View.DONE:
        return and_(archived.is_(False), done)
    if view == View.ALL:
        return archived.is_(False)
    not_done = or_(Conversation.state.is_(None), Conversation.state != ConversationState.DONE)
    if view == View.MINE:
        return and_(archived.is_(False), not_done, Conversation.assigned_user_id == user_id)
    return and_(archived.is_(False), not_done, Conversation.assigned_user_id.is_(None))


def pinned() -> ColumnElement[bool]:
    return func.coalesce(Conversation.pinned, false()).is_(True)


def anything_mine(session: Session, user_id: int) -> bool:
    """Whether any conversation in the Mine view is assigned to this user."""
    found = session.scalar(
        select(Conversation.contact_id)
        .where(
            Conversation.assigned_user_id == user_id,
            Conversation.archived.is_(False),
            Conversation.state != ConversationState.DONE,
        )
        .limit(1)
    )
    return found is not None


def active_users(session: Session) -> list[tuple[int, str]]:
    """Whom a conversation can be assigned to, by name."""
    return [
        (row.id, row.name)
        for row in session.execute(
            select(User.id, User.name).where(User.active.is_(True)).order_by(User.name)
        )
    ]


def user_names(session: Session) -> dict[int, str]:
    """Every user's name by id (deactivated ones too: they may still hold conversations)."""
    return {row.id: row.name for row in session.execute(select(User.id, User.name))}


# The tabs' counts look at conversations the customer wrote to this recently (and at every one
# the team's shared count or a "mark unread" calls unread): each poll of every open inbox
# counts them, and a shop's thousands of old conversations need not be looked through each time.
TOTALS_RECENT = timedelta(days=30)


def unread_totals(session: Session, user_id: int, at: datetime) -> dict[View, int]:
    """For each tab, how many of its conversations have something unread for this user (the
    same rule as bot.conversations.unread: the shared count where the user has no row)."""
    reads = and_(ConversationRead.contact_id == Contact.id, ConversationRead.user_id == user_id)
    unread = or_(
        ConversationRead.marked_unread.is_(True),
        and_(Contact.last_inbound_at >= at - TOTALS_RECENT, unread_condition(user_id)),
    )
    rows = session.execute(
        select(Conversation.assigned_user_id, Conversation.state, Conversation.archived)
        .select_from(Contact)
        .outerjoin(ConversationRead, reads)
        .outerjoin(Conversation, Conversation.contact_id == Contact.id)
        .where(Contact.last_message_at.is_not(None), unread)
    )
    totals = dict.fromkeys(TABS, 0)
    for assigned, state, archived in rows:
        team = Team(State(state or State.OPEN), assigned, False, bool(archived))
        for view in TABS:
            if rules.in_view(view, team, user_id):
                totals[view] += 1
    return totals
