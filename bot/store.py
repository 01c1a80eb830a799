"""Storing parsed notifications: customer messages, delivery statuses, marketing preferences.

Everything of one notification is written in one transaction, so a 200 to Meta means it is all
stored. A redelivered message id hits the unique key and changes nothing. An event the database
refuses as data (not as an outage) is skipped and logged, and the others of its notification
are stored: Meta would deliver it the same way again, for a week.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import lru_cache
from typing import Any, TypeAlias, cast

from sqlalchemy import Connection, Row, Table, bindparam, exists, func, insert, null, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlalchemy.orm import Session

from bot import events, storable
from bot.contacts_store import ConsentSource, set_opt_in
from bot.db import Database
from bot.inbound import StoreUnavailable
from bot.models import ConsentEvent, Contact, Direction, Message, MessageStatus, utcnow
from bot.outbound import outbox
from bot.outbound.graph import text_payload
from bot.replies import build_context, render
from bot.rules import NO_HISTORY, History, Inbound, KeywordHits, Rule, choose, keyword_hits
from bot.settings import BusinessSettings
from bot.settings import stored as business
from bot.sql import insert_ignore

log = logging.getLogger("tresen.store")


def store_events(
    database: Database,
    evs: Iterable[events.Event],
    now: datetime | None = None,
    *,
    phone_number_id: str | None = None,
) -> None:
    """Store every event of one notification in one transaction, or raise StoreUnavailable.

    `phone_number_id` is the business number this server answers for: messages to another
    number of the same app are stored with theirs and never answered, and statuses of their
    messages are not ours. None (console mode without a number): every number is ours.
    """
    now = now or utcnow()
    evs = tuple(_plausible(event, now) for event in evs)
    for attempt in (1, 2):
        try:
            try:
                _store_all(database, evs, now, phone_number_id)
            except Exception as exc:
                if not _is_data_error(exc):
                    raise
                # Rolled back as a whole: once more with each event on its own, so that only
                # the one refused is lost. Everything below is idempotent.
                log.warning(
                    "notification refused as data (%s); storing its events one by one",
                    _first_line(exc),
                )
                _store_all(database, evs, now, phone_number_id, one_by_one=True)
            return
        except DBAPIError as exc:
            if exc.connection_invalidated and attempt == 1:
                # A pooled connection the server dropped (it restarted, or an administrator
                # ended the session): once more on a new one. Everything below is idempotent,
                # so this is safe even if the drop came after the commit went through.
                continue
            # One line: the reason, not a traceback (a restarting database is not a bug).
            log.error("notification not stored: %s: %s", exc.__class__.__name__, _first_line(exc))
            raise StoreUnavailable(str(exc)) from exc


def _plausible(event: events.Event, now: datetime) -> events.Event:
    """The event with a timestamp it could have (events.plausible); its `raw` keeps the one
    that came."""
    if isinstance(event, events.Unhandled):
        return event
    at = events.plausible(event.timestamp, now)
    return event if at == event.timestamp else replace(event, timestamp=at)


# The settings this process last stored a message under. A new message's keyword rules are
# matched and its reply rendered under them before the transaction (see Prepared), so that
# neither runs while the database is locked (SQLite's write turn, the contact's row); if the
# settings changed since, that work is done again under the lock.
_recent_settings: BusinessSettings | None = None


@dataclass(frozen=True)
class Prepared:
    """The costly part of a message's reply, worked out before any lock: which keyword rules
    its text matches, and the reply a contact with no history would get, rendered.

    The contact's history (cooldown, inactivity, consent, a person's answer) can only take that
    reply away, never change it to another, so under the lock the text is used as it is when
    the settings, the template, the name and the number are still those it was rendered with.
    """

    settings: BusinessSettings
    hits: KeywordHits
    template: str | None
    name: str | None
    wa_id: str | None
    text: str | None


def prepare(settings: BusinessSettings, event: events.Message, now: datetime) -> Prepared:
    hits = keyword_hits(settings.keywords, event.text)
    inbound = Inbound(event.text, event.type_name, event.timestamp)
    decision = choose(inbound, NO_HISTORY, settings, now, hits)
    if decision is None or not decision.reply_due or event.profile_name is None:
        return Prepared(settings, hits, None, None, None, None)
    name, wa_id = event.profile_name, event.from_wa_id
    context = build_context(
        settings, now=now, contact_name=name, wa_id=wa_id, message_text=event.text
    )
    text = render(settings, decision.template, context)
    return Prepared(settings, hits, decision.template, name, wa_id, text)


def _is_data_error(exc: BaseException) -> bool:
    """Whether the database (or its driver) refused a value, rather than failed to answer.

    Integrity errors count too: the unique keys a redelivery meets are expected and never
    raise, so any other is this data's. Connection and server trouble (OperationalError,
    InterfaceError, ...) is an outage: Meta should deliver again.
    """
    if isinstance(exc, DataError | IntegrityError):
        return True
    if isinstance(exc, DBAPIError):
        return False
    if isinstance(exc, StatementError):  # a value no bind processor could convert
        return isinstance(exc.orig, ValueError | OverflowError)
    # What a driver raises itself (SQLite: a number over 64 bits, text it cannot encode).
    return isinstance(exc, ValueError | OverflowError)


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).splitlines()
    return lines[0] if lines else ""


def _store_all(
    database: Database,
    evs: tuple[events.Event, ...],
    now: datetime,
    ours: str | None,
    *,
    one_by_one: bool = False,
) -> None:
    """All events in one transaction; `one_by_one`, each in a savepoint of it, skipping (and
    logging) those refused as data. The fast way first: a savepoint costs two round trips."""
    stored: list[Stored] = []
    settings = _recent_settings
    prepared: dict[str | None, Prepared] = {}
    if settings is not None:
        for event in evs:
            if isinstance(event, events.Message):
                prepared[event.id] = prepare(settings, event, now)
    with database.session() as session:
        for event in evs:
            if not one_by_one:
                new = _store_one(session, event, now, ours, prepared.get(_key(event)))
            else:
                try:
                    with session.begin_nested():
                        new = _store_one(session, event, now, ours, prepared.get(_key(event)))
                except Exception as exc:
                    if not _is_data_error(exc):
                        raise
                    log.error(
                        "%s refused by the database, skipped: %s: %s; its JSON: %s",
                        _described(event),
                        exc.__class__.__name__,
                        _first_line(exc),
                        _raw_json(event),
                    )
                    continue
            if new is not None:
                stored.append(new)
    # Once committed, and out of SQLite's write turn: one line per message, as at hundreds a
    # second each log record is a noticeable cost.
    for new in stored:
        log.info(
            "stored %s message %s from contact %s; %s",
            new.type_name,
            new.wamid,
            new.contact_id,
            f"queued {new.reply.rule} reply {new.reply.id}" if new.reply else "no auto-reply",
        )


def _store_one(
    session: Session,
    event: events.Event,
    now: datetime,
    ours: str | None,
    prepared: Prepared | None,
) -> Stored | None:
    if isinstance(event, events.Message):
        return store_message(
            session, event, now, prepared, answer=ours is None or event.phone_number_id == ours
        )
    if isinstance(event, events.Status):
        # Another number's messages never had a wamid of ours: nothing to hold it for.
        if ours is None or event.phone_number_id == ours:
            apply_status(session, event)
    elif isinstance(event, events.UserPreference) and (
        # Stopping another number's offers is no word about ours.
        ours is None or event.phone_number_id in (None, ours)
    ):
        apply_preference(session, event)
    return None


def _key(event: events.Event) -> str | None:
    return event.id if isinstance(event, events.Message) else None


def _described(event: events.Event) -> str:
    if isinstance(event, events.Message):
        return f"message {event.id[:100]}"
    if isinstance(event, events.Status):
        return f"{event.status.value} status of {event.message_id[:100]}"
    return type(event).__name__


def _raw_json(event: events.Event) -> str:
    return storable.for_log(getattr(event, "raw", None))


_contacts = cast(Table, Contact.__table__)
_consents = cast(Table, ConsentEvent.__table__)
# A row of _CONTACT: the columns below.
ContactRow: TypeAlias = Row[*tuple[Any, ...]]
# What the webhook needs of a contact: the rules' history, and what it updates. The business's
# settings come along: on PostgreSQL a statement of its own was a seventh of a webhook's round
# trips, and each text is parsed only once per process anyway (business.parsed).
_CONTACT = select(
    _contacts.c.id,
    _contacts.c.wa_id,
    _contacts.c.user_id,
    _contacts.c.name,
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
    business.SETTINGS_TEXT.scalar_subquery().label("settings_yaml"),
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
# One update per new message: the contact's name, times and unread count.
_TOUCH = (
    update(_contacts)
    .where(_contacts.c.id == bindparam("contact_id"))
    .values(
        name=bindparam("name", type_=_contacts.c.name.type),
        last_inbound_at=bindparam("last_inbound_at", type_=_contacts.c.last_inbound_at.type),
        last_message_at=bindparam("last_message_at", type_=_contacts.c.last_message_at.type),
        last_away_at=bindparam("last_away_at", type_=_contacts.c.last_away_at.type),
        unread=func.coalesce(_contacts.c.unread, 0) + 1,
    )
)


def find_or_create_contact(
    session: Session, wa_id: str | None, user_id: str | None, name: str | None = None
) -> Contact:
    """The contact for a business-scoped user id or a phone number, locked for this transaction
    (see locked_contact)."""
    if session.new or session.dirty:
        session.flush()  # the reload below must not drop changes of this transaction
    row = locked_contact(session.connection(), wa_id, user_id, name)
    contact = session.get(Contact, row.id, populate_existing=True)
    assert contact is not None
    return contact


def locked_contact(
    conn: Connection, wa_id: str | None, user_id: str | None, name: str | None = None
) -> ContactRow:
    """The contact row for a business-scoped user id or a phone number, created if new and
    locked for this transaction.

    The user id comes first: it stays when a customer changes their number, so a known user id
    with a new number is the same contact, now at that number.
    """
    if not (wa_id or user_id):
        raise ValueError("a contact needs a wa_id or a user_id")
    row = _locked(conn, user_id, wa_id)
    if row is None:
        # Insert-or-ignore then read: two processes creating the same contact both end up
        # with the one row instead of one of them failing on a unique key.
        conn.execute(
            insert_ignore(conn, Contact, None),
            {"wa_id": wa_id, "user_id": user_id, "name": name, "created_at": utcnow()},
        )
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


def _locked(conn: Connection, user_id: str | None, wa_id: str | None) -> ContactRow | None:
    for key, value in (("user_id", user_id), ("wa_id", wa_id)):
        if value:
            row = conn.execute(_CONTACT_BY[key], {"value": value}).one_or_none()
            if row is not None:
                return row
    return None


def _free(conn: Connection, key: str, value: str) -> bool:
    return conn.execute(_TAKEN[key], {"value": value}).first() is None


@dataclass(frozen=True)
class Replied:
    id: int
    rule: str


@dataclass(frozen=True)
class Stored:
    """A customer message stored for the first time, and the reply queued with it."""

    id: int
    wamid: str
    type_name: str
    contact_id: int
    reply: Replied | None


@dataclass(frozen=True)
class Reply:
    """What a new message gets: its rule, its reply's outbox row, and any opt-in change."""

    rule: str
    row: dict[str, Any] | None  # None: no reply is sent (too late, or Meta would refuse it)
    opt_in: bool | None


def store_message(
    session: Session,
    event: events.Message,
    now: datetime,
    prepared: Prepared | None = None,
    *,
    answer: bool = True,
) -> Stored | None:
    """Store one customer message and queue its auto-reply under the stored settings; None
    when it was stored before (a redelivery), or cannot be (no id that fits its column).
    `prepared`: see Prepared.

    Without `answer` (a message to another number of the app) it is stored and nothing else:
    no reply, no opt-in or opt-out by keyword, and the contact's times and unread count, which
    are the conversation with our number, stay as they were.

    This runs for every customer message while Meta waits for the answer, so it speaks SQL
    directly and no ORM objects: the contact is read and locked, the reply decided, and then
    the message, its reply and the contact's new times are written together (see _written).
    """
    wa_id, user_id = _fitting("wa_id", event.from_wa_id), _fitting("user_id", event.from_user_id)
    unkeyed = None
    if _fitting("wamid", event.id) is None:
        unkeyed = "its id is longer than any wamid"
    elif not (wa_id or user_id):
        unkeyed = "no sender id is a valid one"
    elif (wa_id, user_id) != (event.from_wa_id, event.from_user_id):
        log.warning("message %s: a sender id longer than any valid one left out", event.id)
    if unkeyed is not None:
        log.error(
            "message %s not stored: %s; its JSON: %s", event.id[:100], unkeyed, _raw_json(event)
        )
        return None
    if session.new or session.dirty:
        session.flush()  # earlier events of this notification, before SQL that bypasses them
    conn = session.connection()
    profile_name = storable.clipped(event.profile_name, _NAME_LENGTH)
    contact = locked_contact(conn, wa_id, user_id, profile_name)
    name = profile_name or contact.name
    settings = None if contact.settings_yaml is None else business.parsed(contact.settings_yaml)
    reply = None
    if settings is not None and answer:
        _remember(settings)
        history = History(
            last_inbound_at=contact.last_inbound_at,
            last_away_at=contact.last_away_at,
            last_consent_at=_latest(contact.opted_in_changed_at, contact.last_consent_event_at),
            last_human_reply_at=contact.last_human_reply_at,
        )
        inbound = Inbound(event.text, event.type_name, event.timestamp)
        reply = auto_reply(settings, contact, name, inbound, history, now, prepared)
    queued = reply.row if reply is not None else None
    message = {
        "contact_id": contact.id,
        "direction": Direction.IN,
        "wamid": event.id,
        # Shown, never matched: a cut one is still the truth as far as it goes.
        "phone_number_id": event.phone_number_id[:_PHONE_NUMBER_ID_LENGTH],
        "type": event.type_name[:32],
        "text": event.text,
        "raw": event.raw,
        "created_at": now,
        "timestamp": event.timestamp,
        "status": MessageStatus.RECEIVED,
        "priority": 0,
        "attempts": 0,
    }
    touch: dict[str, Any] | None = {
        "contact_id": contact.id,
        "name": name,
        "last_inbound_at": _latest(contact.last_inbound_at, event.timestamp),
        "last_message_at": _latest(
            contact.last_message_at, event.timestamp, now if queued else None
        ),
        "last_away_at": now
        if reply and queued and reply.rule == Rule.AWAY
        else contact.last_away_at,
    }
    if not answer:
        touch = None  # the contact's conversation with our number is unchanged
    written = _written(conn, message, queued, touch)
    if written is None:
        log.info("message %s delivered again: already stored", event.id)
        return None
    message_id, reply_id = written
    if event.revoke is not None:
        apply_revoke(conn, contact.id, event, now)
    elif event.edit is not None:
        _edit_of_revoked(conn, contact.id, event)
    replied = None
    if reply is not None and reply_id is not None:
        replied = Replied(reply_id, reply.rule)
    if reply is not None and reply.opt_in is not None:
        # With or without its reply: the customer's word counts however late it arrives, as of
        # when they sent it, so that of two words arriving out of order the later one wins.
        full = session.get(Contact, contact.id, populate_existing=True)
        assert full is not None
        set_opt_in(session, full, reply.opt_in, ConsentSource.KEYWORD, event.timestamp)
    return Stored(message_id, event.id, event.type_name, contact.id, replied)


def _remember(settings: BusinessSettings) -> None:
    global _recent_settings
    _recent_settings = settings


def _length(column: Any) -> int:
    length = getattr(column.type, "length", None)
    assert isinstance(length, int)
    return length


# What the columns hold, on every database (SQLite would take more, PostgreSQL refuses it).
_KEY_LENGTHS = {
    "wa_id": _length(_contacts.c.wa_id),
    "user_id": _length(_contacts.c.user_id),
    "wamid": _length(cast(Table, Message.__table__).c.wamid),
}
_NAME_LENGTH = _length(_contacts.c.name)
_PHONE_NUMBER_ID_LENGTH = _length(cast(Table, Message.__table__).c.phone_number_id)


def _fitting(kind: str, value: str | None) -> str | None:
    """`value` if it fits its column, else None: a longer one is no valid id, and cut it
    could be another's, so it keys nothing."""
    return value if value is None or len(value) <= _KEY_LENGTHS[kind] else None


def _latest(*times: datetime | None) -> datetime | None:
    return max((t for t in times if t is not None), default=None)


def auto_reply(
    settings: BusinessSettings,
    contact: ContactRow,
    name: str | None,
    inbound: Inbound,
    history: History,
    now: datetime,
    prepared: Prepared | None = None,
) -> Reply | None:
    """The rules' reply to a new message, rendered and ready to queue, or None; what was
    `prepared` under the same settings is not worked out again."""
    if prepared is not None and prepared.settings is not settings:
        prepared = None
    decision = choose(inbound, history, settings, now, prepared.hits if prepared else None)
    if decision is None:
        return None
    if not decision.reply_due:
        return Reply(decision.rule, None, decision.opt_in)
    if (
        prepared is not None
        and prepared.text is not None
        and (prepared.template, prepared.name, prepared.wa_id)
        == (decision.template, name, contact.wa_id)
    ):
        text = prepared.text
    else:
        context = build_context(
            settings,
            now=now,
            contact_name=name,
            wa_id=contact.wa_id,
            message_text=inbound.text,
        )
        text = render(settings, decision.template, context)
    recipient = contact.wa_id or contact.user_id or ""
    try:
        payload = text_payload(recipient, text)
    except ValueError as exc:
        # Meta would refuse it too (a sender id that is no number, a text over the limit).
        log.warning("no %s reply to contact %s: %s", decision.rule, contact.id, exc)
        return Reply(decision.rule, None, decision.opt_in)
    row = outbox.row(contact.id, payload, now=now, text=text, rule=decision.rule)
    return Reply(decision.rule, row, decision.opt_in)


def _written(
    conn: Connection,
    message: dict[str, Any],
    reply: dict[str, Any] | None,
    touch: dict[str, Any] | None,
) -> tuple[int, int | None] | None:
    """Insert the message unless its wamid is stored already; if it is new, queue `reply`
    (in reply to it) and update the contact with `touch`. The new ids, or None for a
    redelivery.

    On PostgreSQL this is one statement, a round trip instead of three: on the webhook's path
    each statement costs the web process about as much CPU as rendering the reply does.
    """
    if conn.dialect.name == "postgresql":
        params = {**_prefixed("in_", message), **(touch or {})}
        if reply is not None:
            params.update(_prefixed("out_", reply))
        statement = _write_all(
            tuple(message), tuple(reply) if reply is not None else None, touch is not None
        )
        row = conn.execute(statement, params).one()
        return None if row.message_id is None else (int(row.message_id), row.reply_id)
    message_id = conn.execute(_store_ignore(conn), message).scalar_one_or_none()
    if message_id is None:
        return None
    reply_id = None
    if reply is not None:
        reply_id = int(
            conn.execute(outbox.QUEUE, {**reply, "in_reply_to": message_id}).scalar_one()
        )
    if touch is not None:
        conn.execute(_TOUCH, touch)
    return int(message_id), reply_id


def _prefixed(prefix: str, row: dict[str, Any]) -> dict[str, Any]:
    return {prefix + key: value for key, value in row.items()}


_messages = cast(Table, Message.__table__)


@lru_cache(maxsize=8)
def _write_all(message: tuple[str, ...], reply: tuple[str, ...] | None, touch: bool) -> Any:
    """_written's statement for PostgreSQL, for rows with these columns: data-modifying WITH
    clauses, which see the message's new id and are left empty for a redelivery."""
    columns = _messages.c

    def params(prefix: str, names: Iterable[str]) -> dict[str, Any]:
        return {n: bindparam(prefix + n, type_=columns[n].type) for n in names}

    inbound = (
        postgresql.insert(_messages)
        .values(params("in_", message))
        .on_conflict_do_nothing(index_elements=["wamid"])
        .returning(columns.id)
        .cte("inbound")
    )
    new = exists(select(inbound.c.id))
    reply_id: Any = null()
    if reply is not None:
        queued = params("out_", reply)
        queue = (
            insert(_messages)
            .from_select([*queued, "in_reply_to"], select(*queued.values(), inbound.c.id))
            .returning(columns.id)
            .cte("reply")
        )
        reply_id = select(queue.c.id).scalar_subquery()
    statement = select(
        select(inbound.c.id).scalar_subquery().label("message_id"), reply_id.label("reply_id")
    )
    return statement.add_cte(_TOUCH.where(new).cte("touched")) if touch else statement


def _store_ignore(conn: Connection) -> Any:
    return _returning_id(insert_ignore(conn, Message, ["wamid"]))


@lru_cache(maxsize=4)
def _returning_id(statement: Any) -> Any:
    # Once per dialect's statement (insert_ignore keeps one each), like the statements above.
    return statement.returning(Message.id)


# What a deleted message keeps of its raw JSON: who sent it, when, and what kind it was.
_TOMBSTONE_KEYS = ("id", "from", "from_user_id", "timestamp", "type")


def apply_revoke(conn: Connection, contact_id: int, event: events.Message, now: datetime) -> None:
    """Honour a customer's "delete for everyone": the message (and any edit of it) keeps its
    ids and times, but its text and content are gone and its status is revoked.

    A revocation can overtake its message: then a tombstone with the message's wamid takes
    its place, and the message, when it comes, is dropped like a redelivery.
    """
    assert event.revoke is not None
    original = event.revoke.original_message_id
    revoked = {"id": event.id, "timestamp": event.raw.get("timestamp")}
    columns = _messages.c
    rows = conn.execute(
        select(columns.id, columns.wamid, columns.raw).where(
            columns.contact_id == contact_id,
            columns.direction == Direction.IN,
            (columns.wamid == original) | (columns.type == "edit"),
        )
    ).all()
    found = False
    for row in rows:
        raw = row.raw if isinstance(row.raw, dict) else {}
        edit = raw.get("edit")
        edited = isinstance(edit, dict) and edit.get("original_message_id") == original
        if row.wamid != original and not edited:
            continue
        found = found or row.wamid == original
        _tombstone(conn, row.id, raw, revoked)
    if not found:
        conn.execute(
            insert_ignore(conn, Message, ["wamid"]),
            {
                "contact_id": contact_id,
                "direction": Direction.IN,
                "wamid": original,
                "type": events.MessageType.UNKNOWN.value,
                "text": None,
                "raw": {"id": original, "revoked": revoked},
                "created_at": now,
                "timestamp": event.timestamp,
                "status": MessageStatus.REVOKED,
                "priority": 0,
                "attempts": 0,
            },
        )


def _tombstone(conn: Connection, message_id: int, raw: dict[str, Any], revoked: Any) -> None:
    """Empty a revoked message: no text, and of its raw JSON only the ids and times."""
    kept = {key: raw[key] for key in _TOMBSTONE_KEYS if key in raw}
    edit = raw.get("edit")
    if isinstance(edit, dict) and "original_message_id" in edit:
        kept["edit"] = {"original_message_id": edit["original_message_id"]}
    conn.execute(
        update(_messages)
        .where(_messages.c.id == message_id)
        .values(text=None, raw={**kept, "revoked": revoked}, status=MessageStatus.REVOKED)
    )


def _edit_of_revoked(conn: Connection, contact_id: int, event: events.Message) -> None:
    """An edit that comes after its message was deleted (deliveries can overtake each other)
    is emptied like the message."""
    assert event.edit is not None
    columns = _messages.c
    original = conn.execute(
        select(columns.raw).where(
            columns.wamid == event.edit.original_message_id,
            columns.contact_id == contact_id,
            columns.status == MessageStatus.REVOKED,
        )
    ).one_or_none()
    if original is None:
        return
    revoked = original.raw.get("revoked") if isinstance(original.raw, dict) else None
    edit = conn.execute(select(columns.id).where(columns.wamid == event.id)).scalar_one()
    _tombstone(conn, edit, event.raw, revoked)


def apply_status(session: Session, event: events.Status) -> None:
    """Move an outbound message along sent → delivered → read, or to failed; never back."""
    if _fitting("wamid", event.message_id) is None:
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
            now=utcnow(),
        )
        return
    if message is None:
        return
    outbox.advance(
        message, event.status.value, event.timestamp, error_code=code, error_reason=reason
    )


def apply_preference(session: Session, event: events.UserPreference) -> None:
    """A customer stopped or resumed marketing messages inside WhatsApp itself."""
    if event.category != "marketing_messages" or event.value not in ("stop", "resume"):
        return
    wa_id, user_id = _fitting("wa_id", event.wa_id), _fitting("user_id", event.user_id)
    if not (wa_id or user_id):
        return  # no id that could key a contact, so no contact of ours
    contact = find_or_create_contact(session, wa_id, user_id)
    set_opt_in(session, contact, event.value == "resume", ConsentSource.WHATSAPP, event.timestamp)


# Meta's reasons are a line or two; this keeps one that is not from filling the row.
_REASON_LENGTH = 1000


def _reason(error: events.ErrorInfo) -> str:
    """The error as text, code first: the code column holds only what fits 32 bits."""
    parts = [str(error.code)] if error.code is not None else []
    text = " — ".join(p for p in (error.title, error.details) if p)
    reason = ": ".join([*parts, text]) if text else (parts[0] if parts else "failed")
    return storable.clipped(reason, _REASON_LENGTH) or reason
