"""The handler for a customer message: stored once, its contact's times updated, and its
auto-reply (see bot.autoreply) queued in the outbox, in the processor's transaction."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    delete,
    exists,
    func,
    insert,
    null,
    select,
    update,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from bot import storable
from bot.autoreply import Ready, reply_for
from bot.contacts.consent import ConsentSource, set_opt_in
from bot.contacts.lookup import (
    NAME_LENGTH,
    PHONE_NUMBER_ID_LENGTH,
    ContactRow,
    fitting,
    latest,
    locked_contact,
)
from bot.contacts.names import name_after_message
from bot.conversations.team import REOPEN
from bot.media.kinds import MediaKind, kind_of
from bot.media.sending import CAPTION_KINDS
from bot.models import (
    Attachment,
    AttachmentState,
    Contact,
    Direction,
    MediaFile,
    Message,
    MessageStatus,
)
from bot.outbound import outbox
from bot.rules import History, Inbound, Rule
from bot.settings import BusinessSettings, KeywordFile
from bot.sql import insert_ignore
from bot.webhooks_out import store as webhooks
from bot.whatsapp import events
from bot.whatsapp.payloads import CAPTION_MAX, media_payload, text_payload

log = logging.getLogger("tresen.inbound")

_contacts = cast(Table, Contact.__table__)
# One update per new message: the contact's names, times and unread count.
_TOUCH = (
    update(_contacts)
    .where(_contacts.c.id == bindparam("contact_id"))
    .values(
        name=bindparam("name", type_=_contacts.c.name.type),
        profile_name=bindparam("profile_name", type_=_contacts.c.profile_name.type),
        last_inbound_at=bindparam("last_inbound_at", type_=_contacts.c.last_inbound_at.type),
        last_message_at=bindparam("last_message_at", type_=_contacts.c.last_message_at.type),
        last_away_at=bindparam("last_away_at", type_=_contacts.c.last_away_at.type),
        unread=func.coalesce(_contacts.c.unread, 0) + 1,
    )
)


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
    # The reply's attachment row (a keyword rule's file) but its message id.
    attachment: dict[str, Any] | None = None


def store_message(
    session: Session,
    event: events.Message,
    now: datetime,
    settings: BusinessSettings | None,
    ready: Ready | None = None,
    *,
    answer: bool = True,
) -> Stored | None:
    """Store one customer message and queue its auto-reply under `settings` (None: the
    business has none yet, nothing is answered); None when it was stored before (a
    redelivery), or cannot be (no id that fits its column). `ready`: see Ready.

    Without `answer` (a message to another number of the app) it is stored and nothing else:
    no reply, no opt-in or opt-out by keyword, and the contact's times and unread count, which
    are the conversation with our number, stay as they were.

    This runs for every customer message, so it speaks SQL directly and no ORM objects: the
    contact is read and locked, the reply decided, and then the message, its reply and the
    contact's new times are written together (see _written).
    """
    wa_id, user_id = _sender(event)
    unkeyed = _unkeyed(event, wa_id, user_id)
    if unkeyed is None and (wa_id, user_id) != (event.from_wa_id, event.from_user_id):
        log.warning("message %s: a sender id longer than any valid one left out", event.id)
    if unkeyed is not None:
        log.error(
            "message %s not stored: %s; its JSON: %s",
            event.id[:100],
            unkeyed,
            storable.for_log(event.raw),
        )
        return None
    if session.new or session.dirty:
        session.flush()  # earlier events of this notification, before SQL that bypasses them
    conn = session.connection()
    profile_name = storable.clipped(event.profile_name, NAME_LENGTH)
    contact = locked_contact(conn, wa_id, user_id, now, profile_name)
    # The shop's name for the contact stays; the profile name is kept beside it.
    name = name_after_message(contact.name, contact.name_by_shop, profile_name)
    reply = None
    if settings is not None and answer:
        history = History(
            last_inbound_at=contact.last_inbound_at,
            last_away_at=contact.last_away_at,
            last_consent_at=latest(contact.opted_in_changed_at, contact.last_consent_event_at),
            last_human_reply_at=contact.last_human_reply_at,
        )
        inbound = Inbound(event.text, event.type_name, event.timestamp)
        reply = auto_reply(settings, contact, name, inbound, history, now, ready, conn=conn)
    queued = reply.row if reply is not None else None
    message = {
        "contact_id": contact.id,
        "direction": Direction.IN,
        "wamid": event.id,
        # Shown, never matched: a cut one is still the truth as far as it goes.
        "phone_number_id": event.phone_number_id[:PHONE_NUMBER_ID_LENGTH],
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
        "profile_name": profile_name or contact.profile_name,
        "last_inbound_at": latest(contact.last_inbound_at, event.timestamp),
        "last_message_at": latest(
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
    if answer and contact.reopen:
        # Put aside (waiting, done, archived) until the customer wrote again: open and listed.
        conn.execute(REOPEN, {"conversation": contact.id, "at": now})
    media = _attachment(event)
    if media is not None:
        # Only media costs a statement more; a redelivery never gets here.
        conn.execute(_ATTACH, {**media, "message_id": message_id, "created_at": now})
    if event.revoke is not None:
        apply_revoke(conn, contact.id, event, now)
    elif event.edit is not None:
        _edit_of_revoked(conn, contact.id, event)
    replied = None
    if reply is not None and reply_id is not None:
        replied = Replied(reply_id, reply.rule)
        if reply.attachment is not None:
            conn.execute(insert(Attachment), {**reply.attachment, "message_id": reply_id})
    if reply is not None and reply.opt_in is not None:
        # With or without its reply: the customer's word counts however late it arrives, as of
        # when they sent it, so that of two words arriving out of order the later one wins.
        full = session.get(Contact, contact.id, populate_existing=True)
        assert full is not None
        set_opt_in(session, full, reply.opt_in, ConsentSource.KEYWORD, event.timestamp)
    if answer:
        webhooks.message_received(session, message_id, contact.id, now)
    return Stored(message_id, event.id, event.type_name, contact.id, replied)


def _sender(event: events.Message) -> tuple[str | None, str | None]:
    """The sender's ids that fit their columns (a longer one keys nothing)."""
    return fitting("wa_id", event.from_wa_id), fitting("user_id", event.from_user_id)


def _unkeyed(event: events.Message, wa_id: str | None, user_id: str | None) -> str | None:
    """Why the message cannot be stored, or None."""
    if fitting("wamid", event.id) is None:
        return "its id is longer than any wamid"
    if not (wa_id or user_id):
        return "no sender id is a valid one"
    return None


def create_contacts(session: Session, messages: Iterable[events.Message], now: datetime) -> None:
    """Create the contacts of a batch's messages that are new, in one statement, before the
    messages are stored: each store_message then finds its contact at once, instead of a
    look that misses and an INSERT.

    The rows are the ones store_message would create, in the order it would: for a message
    it stores, with the profile name; one whose user id or number is known already conflicts
    and is left out (store_message finds that contact, and moves a new number or user id to
    it as ever).
    """
    rows = []
    for event in messages:
        wa_id, user_id = _sender(event)
        if _unkeyed(event, wa_id, user_id) is None:
            name = storable.clipped(event.profile_name, NAME_LENGTH)
            rows.append(
                {
                    "wa_id": wa_id,
                    "user_id": user_id,
                    "name": name,
                    "profile_name": name,
                    "created_at": now,
                }
            )
    if rows:
        conn = session.connection()
        conn.execute(insert_ignore(conn, Contact, None), rows)


_attachments = cast(Table, Attachment.__table__)
_ATTACH = insert(_attachments)


def _attachment(event: events.Message) -> dict[str, Any] | None:
    """The attachment row of a media message (without its message id), or None; pending,
    for the fetcher to fetch. Meta's values are cut to their columns: shown, never trusted."""
    media = event.media
    if media is None or event.type not in events.MEDIA_TYPES:
        return None
    return {
        "kind": MediaKind(event.type.value),
        "media_id": media.id[:255],
        "mime_type": storable.clipped(media.mime_type, 255),
        "declared_sha256": storable.clipped(media.sha256, 128),
        "filename": storable.clipped(media.filename, 512),
        "voice": bool(media.voice),
        "animated": bool(media.animated),
        "state": AttachmentState.PENDING,
        "attempts": 0,
    }


def auto_reply(
    settings: BusinessSettings,
    contact: ContactRow,
    name: str | None,
    inbound: Inbound,
    history: History,
    now: datetime,
    ready: Ready | None = None,
    *,
    conn: Connection | None = None,
) -> Reply | None:
    """The rules' reply to a new message, rendered and ready to queue, or None. A keyword
    rule's file goes with its answer as the caption (`conn` finds the stored file)."""
    found = reply_for(
        settings, inbound, history, now, contact_name=name, wa_id=contact.wa_id, ready=ready
    )
    if found is None:
        return None
    decision, text = found.decision, found.text
    if text is None:
        return Reply(decision.rule, None, decision.opt_in)
    recipient = contact.wa_id or contact.user_id or ""
    attachment = None
    try:
        payload = None
        if decision.file is not None and conn is not None:
            payload, attachment = _with_file(conn, recipient, text, decision.file, now)
        if payload is None:
            payload = text_payload(recipient, text)
    except ValueError as exc:
        # Meta would refuse it too (a sender id that is no number, a text over the limit).
        log.warning("no %s reply to contact %s: %s", decision.rule, contact.id, exc)
        return Reply(decision.rule, None, decision.opt_in)
    row = outbox.row(contact.id, payload, now=now, text=text, rule=decision.rule)
    return Reply(decision.rule, row, decision.opt_in, attachment)


def _with_file(
    conn: Connection, recipient: str, text: str, file: KeywordFile, now: datetime
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """A keyword answer with its file, the text as the caption, and the attachment's row;
    (None, None) when it must go as text only: the file is not stored (any more), or the
    text is longer than a caption may be."""
    found = conn.execute(
        select(MediaFile.id, MediaFile.content_type).where(MediaFile.sha256 == file.sha256)
    ).first()
    if found is None:
        log.warning("keyword file %r is not stored: the answer goes as text only", file.name)
        return None, None
    file_id, content_type = found
    kind = kind_of(content_type)
    caption = text if kind in CAPTION_KINDS else None
    if caption is not None and len(caption) > CAPTION_MAX:
        log.warning(
            "keyword answer with %r is longer than a caption (%d characters): sent as text only",
            file.name,
            CAPTION_MAX,
        )
        return None, None
    payload = media_payload(
        recipient,
        kind,
        file=file.sha256,
        caption=caption,
        filename=file.name if kind == MediaKind.DOCUMENT else None,
    )
    attachment = {
        "kind": str(kind),
        "mime_type": content_type,
        "filename": file.name,
        "state": AttachmentState.STORED,
        "file_id": file_id,
        "created_at": now,
    }
    return payload, attachment


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
    # Its media goes too: the file, once nothing else uses it, with the next cleanup.
    conn.execute(delete(_attachments).where(_attachments.c.message_id == message_id))


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
