"""Finding the contact a notification is about, by business-scoped user id or phone number,
created if new and locked for the transaction; and which ids fit their columns."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any, TypeAlias, cast

from sqlalchemy import Connection, Row, Table, bindparam, false, func, null, select, update
from sqlalchemy.orm import Session

from bot.conversations.team import needs_reopening
from bot.models import ConsentEvent, Contact, Message
from bot.sql import insert_ignore

_contacts = cast(Table, Contact.__table__)
_consents = cast(Table, ConsentEvent.__table__)
# A row of _CONTACT: the columns below.
ContactRow: TypeAlias = Row[*tuple[Any, ...]]
# What the processor needs of a contact: the rules' history, and what it updates.
_CONTACT = select(
    _contacts.c.id,
    _contacts.c.wa_id,
    _contacts.c.user_id,
    _contacts.c.name,
    _contacts.c.name_by_shop,
    _contacts.c.profile_name,
    _contacts.c.last_inbound_at,
    _contacts.c.last_message_at,
    _contacts.c.last_away_at,
    _contacts.c.last_human_reply_at,
    _contacts.c.opted_in_changed_at,
    # The latest opt-in change or customer's word on record (an index lookup): an opt-out or
    # opt-in word sent before it and delivered after it changes nothing and gets no reply.
    select(func.max(_consents.c.at))
    .where(_consents.c.contact_id == _contacts.c.id)
    .scalar_subquery()
    .label("last_consent_event_at"),
    # Whether a message from the customer reopens the team's conversation (an index lookup):
    # the pipeline writes to `conversations` only then.
    needs_reopening().label("reopen"),
)
# The two ways a contact is known, each unique.
_KEYS = {"user_id": _contacts.c.user_id, "wa_id": _contacts.c.wa_id}
_CONTACT_BY = {
    key: _CONTACT.where(column == bindparam("value")).with_for_update(of=_contacts)
    for key, column in _KEYS.items()
}
_TAKEN = {
    key: select(_contacts.c.id).where(column == bindparam("value")) for key, column in _KEYS.items()
}


def find_or_create_contact(
    session: Session, wa_id: str | None, user_id: str | None, now: datetime, name: str | None = None
) -> Contact:
    """The contact for a business-scoped user id or a phone number, locked for this transaction
    (see locked_contact)."""
    if session.new or session.dirty:
        session.flush()  # the reload below must not drop changes of this transaction
    row = locked_contact(session.connection(), wa_id, user_id, now, name)
    contact = session.get(Contact, row.id, populate_existing=True)
    assert contact is not None
    return contact


def locked_contact(
    conn: Connection, wa_id: str | None, user_id: str | None, now: datetime, name: str | None = None
) -> ContactRow:
    """The contact row for a business-scoped user id or a phone number, created if new (with
    `name`, the customer's profile name) and locked for this transaction.

    The user id comes first: it stays when a customer changes their number, so a known user id
    with a new number is the same contact, now at that number.
    """
    if not (wa_id or user_id):
        raise ValueError("a contact needs a wa_id or a user_id")
    row = _locked(conn, user_id, wa_id)
    if row is None:
        # Insert-or-ignore, the new row returned as _CONTACT reads it (no second look); if
        # another process created it meanwhile, it is read: both end up with the one row
        # instead of one of them failing on a unique key.
        row = conn.execute(
            _returning_contact(insert_ignore(conn, Contact, None)),
            {
                "wa_id": wa_id,
                "user_id": user_id,
                "name": name,
                "profile_name": name,
                "created_at": now,
            },
        ).one_or_none()
        if row is None:  # created meanwhile by another transaction
            row = _locked(conn, user_id, wa_id)
        assert row is not None
    moved = {}
    if user_id and row.user_id is None and _free(conn, "user_id", user_id):
        moved["user_id"] = user_id
    if wa_id and row.wa_id != wa_id and _free(conn, "wa_id", wa_id):
        moved["wa_id"] = wa_id
    if moved:
        conn.execute(update(_contacts).where(_contacts.c.id == row.id).values(**moved))
        row = conn.execute(_CONTACT.where(_contacts.c.id == row.id)).one()
    return row


@lru_cache(maxsize=4)
def _returning_contact(statement: Any) -> Any:
    """The contact's INSERT … ON CONFLICT DO NOTHING (one per dialect, see insert_ignore)
    returning the columns _CONTACT selects; no row when it existed. Built once per dialect.

    A row just inserted has no consent event and no conversation: both would have gone with
    an earlier contact of the same id (ON DELETE CASCADE), and no one else sees it yet.
    """
    plain = [c for c in _CONTACT.selected_columns if c.name not in _DERIVED]
    return statement.returning(
        *plain, null().label("last_consent_event_at"), false().label("reopen")
    )


_DERIVED = ("last_consent_event_at", "reopen")


def _locked(conn: Connection, user_id: str | None, wa_id: str | None) -> ContactRow | None:
    for key, value in (("user_id", user_id), ("wa_id", wa_id)):
        if value:
            row = conn.execute(_CONTACT_BY[key], {"value": value}).one_or_none()
            if row is not None:
                return row
    return None


def _free(conn: Connection, key: str, value: str) -> bool:
    return conn.execute(_TAKEN[key], {"value": value}).first() is None


def _length(column: Any) -> int:
    length = getattr(column.type, "length", None)
    assert isinstance(length, int)
    return length


# What the columns hold, on every database (SQLite would take more, PostgreSQL refuses it).
KEY_LENGTHS = {
    "wa_id": _length(_contacts.c.wa_id),
    "user_id": _length(_contacts.c.user_id),
    "wamid": _length(cast(Table, Message.__table__).c.wamid),
}
NAME_LENGTH = _length(_contacts.c.name)
PHONE_NUMBER_ID_LENGTH = _length(cast(Table, Message.__table__).c.phone_number_id)


def fitting(kind: str, value: str | None) -> str | None:
    """`value` if it fits its column, else None: a longer one is no valid id, and cut it
    could be another's, so it keys nothing."""
    return value if value is None or len(value) <= KEY_LENGTHS[kind] else None


def latest(*times: datetime | None) -> datetime | None:
    return max((t for t in times if t is not None), default=None)
