"""Media in a conversation for the tests: a customer's message through the signed webhook, a
message the shop sent, and their attachments written straight to the database and the store
(as the fetcher and the sender would leave them: pending, stored or failed).

The files in fixtures/media/ are small and real (fixtures/media/README.md says how each was
made); the SVG and HTML below are the hostile ones a customer might send.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import select

from bot.db import get_db
from bot.media.kinds import Failure, MediaKind
from bot.media.store import get_media_store
from bot.models import (
    Attachment,
    AttachmentState,
    Contact,
    Direction,
    MediaFile,
    Message,
    MessageStatus,
)
from bot.rules import Rule
from tests.conftest import post_notification
from tests.payloads import notification

MEDIA = Path(__file__).resolve().parent / "fixtures" / "media"
PHOTO = (MEDIA / "photo.png").read_bytes()  # 640×480 PNG
VOICE = (MEDIA / "voice.ogg").read_bytes()  # one second of Opus in Ogg
STICKER = (MEDIA / "sticker.webp").read_bytes()  # 160×160 WebP
# Sound only (the tests ship no film), but a stream a browser's video element plays; a few
# bytes more than the voice note, so it is a file of its own with its own type.
VIDEO = VOICE + b"\0" * 8
# A customer's "image" that would run script if it were ever shown in our origin.
EVIL_SVG = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="200" height="200" '
    b'onload="alert(\'svg onload\')"><script>alert("svg script");'
    b'console.log("svg ran")</script><circle cx="100" cy="100" r="80"/></svg>'
)
EVIL_HTML = (
    b"<!doctype html><html><body><h1>Angebot</h1><script>alert('html script');"
    b"console.log('html ran');document.title='ran'</script>"
    b'<img src="x" onerror="alert(\'html onerror\')"></body></html>'
)
PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def customer_sends(
    app: Flask,
    msg: dict[str, Any],
    *,
    wa_id: str = "4915112345678",
    name: str = "Anna",
    at: datetime | None = None,
) -> int:
    """A customer's message (Cloud API fields: type and its object) through the signed
    webhook, processed; the stored Message's id."""
    wamid = f"wamid.M{time.monotonic_ns()}"
    moment = at or datetime.now(UTC)
    doc = notification(
        {**msg, "id": wamid, "timestamp": str(int(moment.timestamp()))}, wa_id=wa_id, name=name
    )
    assert post_notification(app.test_client(), doc).status_code == 200
    with get_db(app).session() as session:
        found = session.scalar(select(Message.id).where(Message.wamid == wamid))
    assert found is not None
    return found


def contact_of(app: Flask, wa_id: str = "4915112345678") -> int:
    with get_db(app).session() as session:
        found = session.scalar(select(Contact.id).where(Contact.wa_id == wa_id))
    assert found is not None
    return found


def shop_sent(
    app: Flask, contact_id: int, kind: str, *, caption: str | None = None, at: datetime
) -> int:
    """A message with a file the shop sent by hand (delivered); its id."""
    media: dict[str, Any] = {"id": f"meta-{time.monotonic_ns()}"}
    if caption:
        media["caption"] = caption
    with get_db(app).session() as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None
        message = Message(
            contact_id=contact_id,
            direction=Direction.OUT,
            type=kind,
            text=caption,
            payload={
                "messaging_product": "whatsapp",
                "to": contact.wa_id,
                "type": kind,
                kind: media,
            },
            rule=Rule.MANUAL,
            status=MessageStatus.DELIVERED,
            timestamp=at,
            created_at=at,
            sent_at=at,
            delivered_at=at,
        )
        session.add(message)
        contact.last_message_at = at
        session.flush()
        return message.id


def attach(
    app: Flask,
    message_id: int,
    kind: MediaKind | str,
    data: bytes | None = None,
    content_type: str | None = None,
    *,
    state: AttachmentState | None = None,
    failure: str | None = None,
    filename: str | None = None,
    voice: bool = False,
) -> int:
    """The message's attachment: its file put in the store when `data` is given (stored),
    else pending or failed as `state` says; an attachment already there is replaced."""
    state = state or (AttachmentState.STORED if data is not None else AttachmentState.PENDING)
    with get_db(app).session() as session:
        file = None
        if data is not None:
            stored = get_media_store(app).put([data])
            file = session.scalar(select(MediaFile).where(MediaFile.sha256 == stored.sha256))
            if file is None:
                file = MediaFile(
                    sha256=stored.sha256, size=stored.size, content_type=content_type or ""
                )
                session.add(file)
                session.flush()
        row = session.scalar(select(Attachment).where(Attachment.message_id == message_id))
        if row is None:
            row = Attachment(message_id=message_id)
            session.add(row)
        row.kind = str(kind)
        row.mime_type = content_type
        row.state = state
        row.failure = failure
        row.error = f"test: {failure}" if failure else None
        row.filename = filename
        row.voice = voice
        row.file_id = file.id if file is not None else None
        session.flush()
        return row.id


LOCATION = {
    "type": "location",
    "location": {
        "latitude": 48.137154,
        "longitude": 11.576124,
        "name": "Blumen Müller",
        "address": "Marienplatz 1, 80331 München",
    },
}
CONTACTS = {
    "type": "contacts",
    "contacts": [
        {
            "name": {"formatted_name": "Karl Huber", "first_name": "Karl"},
            "phones": [
                {"phone": "+49 176 1234567", "wa_id": "491761234567", "type": "CELL"},
                {"phone": "+49 89 123456", "type": "WORK"},
            ],
        },
        {"name": {"formatted_name": "Gärtnerei Berg"}, "phones": [{"phone": "+49 8161 9876"}]},
    ],
}


def every_kind(
    app: Flask, at: datetime, *, wa_id: str = "4915112345678", name: str = "Anna"
) -> dict[str, int]:
    """A conversation with a file of every kind, a location and contact cards: name → the
    message's id (and "<name>_file" → the attachment's id where there is one)."""
    ids: dict[str, int] = {}
    step = iter(range(100))

    def sends(key: str, msg: dict[str, Any]) -> int:
        moment = at.replace(microsecond=0) - timedelta(minutes=30 - next(step))
        ids[key] = customer_sends(app, msg, wa_id=wa_id, name=name, at=moment)
        return ids[key]

    def media(kind: str, mime: str, **extra: Any) -> dict[str, Any]:
        return {"type": kind, kind: {"id": f"m-{time.monotonic_ns()}", "mime_type": mime, **extra}}

    photo = sends("photo", media("image", "image/png", caption="So ungefähr der Kranz"))
    ids["photo_file"] = attach(app, photo, MediaKind.IMAGE, PHOTO, "image/png")
    voice = sends("voice", media("audio", "audio/ogg; codecs=opus", voice=True))
    ids["voice_file"] = attach(
        app, voice, MediaKind.AUDIO, VOICE, "audio/ogg; codecs=opus", voice=True
    )
    video = sends("video", media("video", "video/ogg"))
    ids["video_file"] = attach(app, video, MediaKind.VIDEO, VIDEO, "video/ogg")
    doc = sends("document", media("document", "application/pdf", filename="Preisliste 2026.pdf"))
    ids["document_file"] = attach(
        app, doc, MediaKind.DOCUMENT, PDF, "application/pdf", filename="Preisliste 2026.pdf"
    )
    sticker = sends("sticker", media("sticker", "image/webp"))
    ids["sticker_file"] = attach(app, sticker, MediaKind.STICKER, STICKER, "image/webp")
    svg = sends("svg", media("document", "image/svg+xml", filename="kranz.svg"))
    ids["svg_file"] = attach(
        app, svg, MediaKind.DOCUMENT, EVIL_SVG, "image/svg+xml", filename="kranz.svg"
    )
    page = sends("html", media("document", "text/html", filename="angebot.html"))
    ids["html_file"] = attach(
        app, page, MediaKind.DOCUMENT, EVIL_HTML, "text/html", filename="angebot.html"
    )
    pending = sends("pending", media("image", "image/jpeg"))
    ids["pending_file"] = attach(app, pending, MediaKind.IMAGE, content_type="image/jpeg")
    large = sends("too_large", media("video", "video/mp4"))
    ids["too_large_file"] = attach(
        app,
        large,
        MediaKind.VIDEO,
        content_type="video/mp4",
        state=AttachmentState.FAILED,
        failure=Failure.TOO_LARGE,
    )
    sends("location", LOCATION)
    sends("contacts", CONTACTS)
    ids["contact"] = contact = contact_of(app, wa_id)
    ids["sent"] = shop_sent(
        app, contact, "image", caption="Ihr Kranz ist fertig", at=at.replace(microsecond=0)
    )
    ids["sent_file"] = attach(app, ids["sent"], MediaKind.IMAGE, PHOTO, "image/png")
    return ids
