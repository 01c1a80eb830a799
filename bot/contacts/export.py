"""Exporting one contact's data on request (GDPR Art. 15): a ZIP with `contact.json` and the
media files of their messages.

Collecting (`collect`, one session) is apart from writing (`write_zip`, the store's bytes into
a file), so the command line and the admin page share both and tests read the data as it is.
"""

from __future__ import annotations

import json
import mimetypes
import re
import zipfile
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.media.store import MediaStore, MissingFile
from bot.models import (
    Attachment,
    ConsentEvent,
    Contact,
    Conversation,
    MediaFile,
    Message,
    Note,
)

FORMAT: Final = 1  # contact.json's "format": raised if its shape ever changes
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class MediaEntry:
    path: str  # in the ZIP: media/…
    sha256: str


@dataclass(frozen=True)
class ContactData:
    """One contact's data: the JSON document and the files it lists."""

    document: dict[str, Any]
    media: tuple[MediaEntry, ...]


def _at(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def media_name(message_id: int, attachment: Attachment, file: MediaFile) -> str:
    """A file's path in the ZIP: unique by its message, readable by its name or kind."""
    if attachment.filename:
        stem = _UNSAFE.sub("_", attachment.filename).strip("._")[:100] or attachment.kind
        return f"media/{message_id}-{stem}"
    extension = mimetypes.guess_extension(file.content_type.split(";")[0].strip()) or ""
    return f"media/{message_id}-{attachment.kind}{extension}"


def collect(session: Session, contact: Contact, now: datetime) -> ContactData:
    """Everything kept about `contact`: its fields, labels, opt-in and consent record, the
    team's handling and notes, and every message with its statuses and media."""
    cid = contact.id
    consent = session.scalars(
        select(ConsentEvent)
        .where(ConsentEvent.contact_id == cid)
        .order_by(ConsentEvent.at, ConsentEvent.id)
    )
    conversation = session.get(Conversation, cid)
    notes = session.scalars(select(Note).where(Note.contact_id == cid).order_by(Note.id))
    messages = session.scalars(
        select(Message).where(Message.contact_id == cid).order_by(Message.timestamp, Message.id)
    ).all()
    attachments = {
        a.message_id: a
        for a in session.scalars(
            select(Attachment)
            .where(Attachment.message_id.in_([m.id for m in messages]))
            .options(selectinload(Attachment.file))
        )
    }
    media: dict[str, MediaEntry] = {}
    rows = []
    for message in messages:
        row: dict[str, Any] = {
            "id": message.id,
            "direction": message.direction,
            "type": message.type,
            "text": message.text,
            "timestamp": _at(message.timestamp),
            "created_at": _at(message.created_at),
            "status": message.status,
            "status_at": _at(message.status_at),
            "sent_at": _at(message.sent_at),
            "delivered_at": _at(message.delivered_at),
            "read_at": _at(message.read_at),
            "failed_at": _at(message.failed_at),
            "error_code": message.error_code,
            "error_reason": message.error_reason,
            "wamid": message.wamid,
            "payload": message.payload,
            "media": None,
        }
        attachment = attachments.get(message.id)
        if attachment is not None:
            file = attachment.file
            path = media_name(message.id, attachment, file) if file is not None else None
            if file is not None and path is not None:
                media[path] = MediaEntry(path, file.sha256)
            row["media"] = {
                "kind": attachment.kind,
                "state": attachment.state,
                "filename": attachment.filename,
                "mime_type": attachment.mime_type,
                "file": path,
                "sha256": file.sha256 if file is not None else None,
                "size": file.size if file is not None else None,
                "content_type": file.content_type if file is not None else None,
            }
        rows.append(row)
    document: dict[str, Any] = {
        "format": FORMAT,
        "exported_at": _at(now),
        "contact": {
            "id": contact.id,
            "wa_id": contact.wa_id,
            "user_id": contact.user_id,
            "name": contact.name,
            "profile_name": contact.profile_name,
            "created_at": _at(contact.created_at),
            "last_inbound_at": _at(contact.last_inbound_at),
            "last_message_at": _at(contact.last_message_at),
            "labels": sorted(lb.name for lb in contact.labels),
        },
        "opt_in": {
            "opted_in": bool(contact.opted_in),
            "changed_at": _at(contact.opted_in_changed_at),
            "source": contact.opted_in_source,
        },
        "consent_events": [
            {"opted_in": e.opted_in, "source": e.source, "at": _at(e.at)} for e in consent
        ],
        "conversation": {
            "state": conversation.state if conversation else "open",
            "pinned": bool(conversation.pinned) if conversation else False,
            "archived": bool(conversation.archived) if conversation else False,
        },
        "notes": [{"text": n.text, "by": n.user_name, "at": _at(n.created_at)} for n in notes],
        "messages": rows,
    }
    return ContactData(document, tuple(media.values()))


def write_zip(data: ContactData, store: MediaStore, out: IO[bytes]) -> list[str]:
    """Write the ZIP to `out`; the files the store no longer had (listed, not included)."""
    missing: list[str] = []
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "contact.json", json.dumps(data.document, ensure_ascii=False, indent=2) + "\n"
        )
        for entry in data.media:
            try:
                source = store.open(entry.sha256)
            except MissingFile:
                missing.append(entry.path)
                continue
            with source, archive.open(entry.path, "w") as target:
                while chunk := source.read(64 * 1024):
                    target.write(chunk)
    return missing


def zip_name(contact: Contact, now: datetime) -> str:
    who = contact.wa_id or f"contact-{contact.id}"
    return f"{who}-{now:%Y-%m-%d}.zip"
