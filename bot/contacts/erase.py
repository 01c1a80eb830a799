"""Erasing one contact's data on request (GDPR Art. 17).

Everything about the customer goes: messages and their media, labels, notes, the team's
handling of the conversation, read marks, signals, held statuses of their messages, the
entries of theirs in journalled webhook notifications, and what audit entries say of them.
A file of the media store goes too unless something else still uses it (the store is
content-addressed: another customer's message or a broadcast may hold the same bytes).

One thing stays, in minimal form: a customer who opted out keeps a contact row reduced to
their numbers, `opted_in` false, `erased_at`, and their consent record (opt-in and opt-out
events: a yes/no, a source, a time). Without it a later CSV import or a re-created contact
could message someone who said stop; with it the existing rules hold (broadcasts go only to
opted-in contacts) and imports skip the number (bot.contacts.importing). Any other contact is
deleted whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, cast

from sqlalchemy import Column, String, Table, delete, exists, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from bot.db import Database
from bot.inbound import spool
from bot.media.cleanup import named_in_settings, uses
from bot.media.store import MediaStore
from bot.models import (
    ApiIdempotency,
    Attachment,
    AuditEntry,
    ConsentEvent,
    Contact,
    Conversation,
    ConversationRead,
    HeldStatus,
    InboundNotification,
    MediaFile,
    MediaUpload,
    Message,
    Note,
    Signal,
    WebhookDelivery,
    contact_labels,
)

# What an audit entry about an erased contact names as its subject instead of their id.
ERASED_SUBJECT: Final = "contact:erased"
# The keys of a webhook notification's entries (messages, statuses, contacts, preferences)
# that say whose entry it is.
_WHOSE: Final = ("from", "from_user_id", "wa_id", "user_id", "recipient_id", "recipient_user_id")


@dataclass(frozen=True)
class Erased:
    """What erase_contact removed; `files` are the store keys to delete after the commit."""

    messages: int
    files: tuple[str, ...]
    kept_opt_out: bool


def find_contact(session: Session, wa_id: str) -> Contact | None:
    """The contact with this wa_id, or with this business-scoped user id."""
    return session.scalars(
        select(Contact).where((Contact.wa_id == wa_id) | (Contact.user_id == wa_id)).limit(1)
    ).first()


def keeps_opt_out(opted_in: bool, events: Iterable[tuple[datetime, bool]]) -> bool:
    """Whether an erased contact stays as an opt-out: they are opted out now and said so (or
    were opted out) on record. A contact never opted in either way has nothing to honour."""
    return not opted_in and any(not said_yes for _, said_yes in events)


def scrub_notification(doc: Any, ids: frozenset[str]) -> tuple[Any, bool]:
    """A webhook notification without the entries of the person with these ids; and whether
    anything was taken out. Other customers' entries in the same notification stay as they
    are, so the processor still stores their messages."""
    changed = False
    if not isinstance(doc, dict):
        return doc, False
    for entry in doc.get("entry") or []:
        if not isinstance(entry, dict):
            continue
        for change in entry.get("changes") or []:
            value = change.get("value") if isinstance(change, dict) else None
            if not isinstance(value, dict):
                continue
            for key, items in list(value.items()):
                if not isinstance(items, list):
                    continue
                kept = [item for item in items if not _names(item, ids)]
                if len(kept) != len(items):
                    value[key] = kept
                    changed = True
    return doc, changed


def _names(item: Any, ids: frozenset[str]) -> bool:
    return isinstance(item, dict) and any(item.get(k) in ids for k in _WHOSE)


def erase_contact(session: Session, contact: Contact, now: datetime) -> Erased:
    """Erase `contact` in the caller's transaction; delete the returned files after it."""
    cid = contact.id
    ids = frozenset(i for i in (contact.wa_id, contact.user_id) if i)
    texts = [t for t in (contact.wa_id, contact.user_id) if t]
    wamids = [
        w
        for w in session.scalars(
            select(Message.wamid).where(Message.contact_id == cid, Message.wamid.is_not(None))
        )
        if w
    ]
    file_ids: set[int] = {
        f
        for f in session.scalars(
            select(Attachment.file_id)
            .join(Message, Message.id == Attachment.message_id)
            .where(Message.contact_id == cid, Attachment.file_id.is_not(None))
        )
        if f is not None
    }
    message_ids = select(Message.id).where(Message.contact_id == cid).scalar_subquery()
    session.execute(delete(Attachment).where(Attachment.message_id.in_(message_ids)))
    messages = session.execute(delete(Message).where(Message.contact_id == cid)).rowcount  # type: ignore[attr-defined]
    for start in range(0, len(wamids), 500):
        session.execute(delete(HeldStatus).where(HeldStatus.wamid.in_(wamids[start : start + 500])))
    session.execute(delete(contact_labels).where(contact_labels.c.contact_id == cid))
    # The links are gone below the ORM: it must not delete them again with the contact.
    session.expire(contact, ["labels"])
    # Webhook deliveries' bodies hold the contact's data, sent or not.
    for model in (Note, Conversation, ConversationRead, Signal, WebhookDelivery):
        column = cast(Column[int], cast(Table, model.__table__).c.contact_id)
        session.execute(delete(model).where(column == cid))
    _scrub_audit(session, cid, texts)
    _scrub_journal(session, ids)
    for text in texts:
        # The API's kept answers (24 hours) may repeat the number they were sent to.
        session.execute(
            delete(ApiIdempotency).where(sql_cast(ApiIdempotency.response, String).contains(text))
        )
    events = [
        (e.at, e.opted_in)
        for e in session.scalars(select(ConsentEvent).where(ConsentEvent.contact_id == cid))
    ]
    kept = keeps_opt_out(bool(contact.opted_in), events)
    if kept:
        _reduce(contact, now)
    else:
        session.execute(delete(ConsentEvent).where(ConsentEvent.contact_id == cid))
        session.delete(contact)
    session.flush()
    return Erased(messages, _drop_unused(session, file_ids), kept)


def _reduce(contact: Contact, now: datetime) -> None:
    """The contact as an opt-out only: numbers, opt-out, and when it was erased."""
    contact.name = None
    contact.profile_name = None
    contact.name_by_shop = False
    contact.opted_in = False
    contact.created_at = now
    contact.last_inbound_at = None
    contact.last_message_at = None
    contact.last_away_at = None
    contact.last_human_reply_at = None
    contact.unread = 0
    contact.erased_at = now


def _scrub_audit(session: Session, contact_id: int, texts: list[str]) -> None:
    """Audit entries stay (who did what, when), without saying of whom or what of them."""
    about = select(AuditEntry).where(AuditEntry.subject == f"contact:{contact_id}")
    for entry in session.scalars(about):
        entry.subject = ERASED_SUBJECT
        entry.before = None
        entry.after = None
    for text in texts:
        naming = select(AuditEntry).where(
            AuditEntry.subject.contains(text)
            | AuditEntry.before.contains(text)
            | AuditEntry.after.contains(text)
        )
        for entry in session.scalars(naming):
            entry.subject = ERASED_SUBJECT
            entry.before = None
            entry.after = None


def _scrub_journal(session: Session, ids: frozenset[str]) -> None:
    """Journalled notifications still holding a body (not processed yet, or failed) lose the
    customer's entries; the rest of each body stays for the processor. A processed row's body
    is already emptied; its digest (a hash of the whole body) names no one readably. On SQLite
    the newest wait in the spool (bot.inbound.spool), where the same holds."""
    if not ids:
        return
    rows = session.scalars(select(InboundNotification).where(InboundNotification.body.is_not(None)))
    for row in rows:
        body = row.body or b""
        if any(i.encode() in body for i in ids):
            row.body = _scrubbed(body, ids)
            row.error = None
    spool.rewrite(
        session.get_bind().engine.url.render_as_string(hide_password=False),
        lambda body: _scrubbed(body, ids) if any(i.encode() in body for i in ids) else body,
    )


def _scrubbed(body: bytes, ids: frozenset[str]) -> bytes | None:
    """A notification's body without the customer's entries; None when nothing of it can be
    kept (unreadable, or naming them elsewhere, as in another customer's contact card)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    doc, changed = scrub_notification(doc, ids)
    if changed:
        body = json.dumps(doc, separators=(",", ":")).encode()
    return None if any(i.encode() in body for i in ids) else body


def _drop_unused(session: Session, file_ids: set[int]) -> tuple[str, ...]:
    """Delete the rows of these files nothing uses any more; their store keys."""
    if not file_ids:
        return ()
    files = cast(Table, MediaFile.__table__)
    unused = [~exists().where(column == files.c.id) for column in uses()]
    named = named_in_settings(session)
    gone: list[str] = []
    for row in session.execute(
        select(files.c.id, files.c.sha256).where(files.c.id.in_(file_ids), *unused)
    ):
        if row.sha256 in named:
            continue
        session.execute(delete(MediaUpload).where(MediaUpload.file_id == row.id))
        session.execute(delete(files).where(files.c.id == row.id))
        gone.append(row.sha256)
    return tuple(gone)


def delete_files(database: Database, store: MediaStore, keys: Iterable[str]) -> int:
    """After the commit: delete the bytes of these keys, unless a row was made for the same
    bytes meanwhile (a new upload of the same picture)."""
    files = cast(Table, MediaFile.__table__)
    count = 0
    for key in keys:
        with database.session() as session:
            again = session.execute(select(files.c.id).where(files.c.sha256 == key)).first()
        if again is None:
            store.delete(key)
            count += 1
    return count


__all__ = [
    "ERASED_SUBJECT",
    "Erased",
    "delete_files",
    "erase_contact",
    "find_contact",
    "keeps_opt_out",
    "scrub_notification",
]
