"""Files the shop sends: checked against Meta's limits before anything is kept, kept in the
media store once per content, and linked to each message that carries them.

A file is refused (`Refused`) before it is stored or queued when WhatsApp would refuse it:
a type Meta does not take for sending, or larger than its kind's limit. The words for the
shop owner are `refusal_text`'s, one place for the admin and the CLI.
"""

from __future__ import annotations

import enum
import mimetypes
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any, Final

from flask_babel import gettext
from sqlalchemy import Integer, Select, String, literal, select, true
from sqlalchemy.orm import Session

from bot.media.kinds import SEND_TYPES, MediaKind, base_type, kind_of, send_problem
from bot.media.store import CHUNK, MediaStore, TooLarge
from bot.models import Attachment, AttachmentState, MediaFile, Message, UTCDateTime
from bot.sql import insert_ignore

__all__ = [
    "ACCEPT",
    "ACCEPT_HEADER",
    "ALL_KINDS",
    "CAPTION_KINDS",
    "HEADER_KINDS",
    "LARGEST",
    "Kept",
    "Problem",
    "Refused",
    "attach",
    "attach_query",
    "check",
    "chunks_of",
    "content_type_of",
    "display_filename",
    "keep",
    "keep_named",
    "limits_text",
    "refusal_text",
]

ALL_KINDS: Final = frozenset(SEND_TYPES)
# The kinds that carry a caption (Meta's image, video and document).
CAPTION_KINDS: Final = frozenset({MediaKind.IMAGE, MediaKind.VIDEO, MediaKind.DOCUMENT})
# A template's media header: Meta's IMAGE, VIDEO and DOCUMENT header formats.
HEADER_KINDS: Final = frozenset({MediaKind.IMAGE, MediaKind.VIDEO, MediaKind.DOCUMENT})
FILENAME_MAX: Final = 240
# The largest file WhatsApp takes of any kind (a document's 100 MB): an upload form's body
# may be that and the form's other fields.
LARGEST: Final = max(limit.max_bytes for limit in SEND_TYPES.values())
# A file input's `accept`: the types Meta takes, and their usual extensions (a browser
# offers files by extension).
_EXTENSIONS: Final = {
    "image/jpeg": ".jpg,.jpeg",
    "image/png": ".png",
    "video/mp4": ".mp4",
    "video/3gpp": ".3gp",
    "audio/aac": ".aac",
    "audio/amr": ".amr",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/ogg": ".ogg,.opus",
    "text/plain": ".txt",
    "application/pdf": ".pdf",
    "application/msword": ".doc",
    "application/vnd.ms-excel": ".xls",
    "application/vnd.ms-powerpoint": ".ppt",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "image/webp": ".webp",
}


def accept(kinds: Iterable[MediaKind] = ALL_KINDS) -> str:
    """The `accept` attribute of a file input for these kinds."""
    parts: list[str] = []
    for kind in sorted(kinds):
        for content_type in sorted(SEND_TYPES[kind].types):
            parts += [content_type, _EXTENSIONS.get(content_type, "")]
    return ",".join(p for p in parts if p)


ACCEPT: Final = accept()
# A file that goes with a caption (a keyword answer, a template's header).
ACCEPT_HEADER: Final = accept(HEADER_KINDS)


class Problem(enum.StrEnum):
    TYPE = "type"  # WhatsApp does not send this type (as this kind)
    SIZE = "size"  # larger than WhatsApp takes for its kind


class Refused(ValueError):
    """WhatsApp would refuse this file; nothing was stored. `refusal_text` words it."""

    def __init__(
        self, problem: Problem, kind: MediaKind, content_type: str, kinds: frozenset[MediaKind]
    ) -> None:
        limit = SEND_TYPES[kind]
        detail = (
            send_problem(kind, content_type, limit.max_bytes + 1)
            if problem == Problem.SIZE
            else f"{content_type or 'unknown type'} cannot be sent"
        )
        super().__init__(detail)
        self.problem = problem
        self.kind = kind
        self.content_type = content_type
        self.kinds = kinds


def display_filename(name: str | None) -> str | None:
    """A file's name as shown to the customer (a document's `filename`): its last part only,
    without control characters, at most FILENAME_MAX characters; None when nothing is left."""
    last = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    clean = "".join(c for c in last if c.isprintable()).strip()
    return clean[:FILENAME_MAX] or None


def chunks_of(stream: IO[bytes]) -> Iterator[bytes]:
    """An open file's bytes in chunks, for `keep` (an upload is never read whole)."""
    while chunk := stream.read(CHUNK):
        yield chunk


def content_type_of(declared: str | None, filename: str | None) -> str:
    """The file's type: as the browser (or caller) declared it, else guessed from its name."""
    value = base_type(declared)
    if value in ("", "application/octet-stream") and filename:
        value = base_type(mimetypes.guess_type(filename)[0])
    return value or "application/octet-stream"


def check(
    content_type: str, size: int | None = None, kinds: frozenset[MediaKind] = ALL_KINDS
) -> MediaKind:
    """The kind this file is sent as; `Refused` if WhatsApp would not take it."""
    kind = kind_of(content_type)
    if kind not in kinds or base_type(content_type) not in SEND_TYPES[kind].types:
        raise Refused(Problem.TYPE, kind, content_type, kinds)
    if size is not None and size > SEND_TYPES[kind].max_bytes:
        raise Refused(Problem.SIZE, kind, content_type, kinds)
    return kind


def keep(
    session: Session,
    store: MediaStore,
    chunks: Iterable[bytes],
    content_type: str,
    *,
    now: datetime,
    kinds: frozenset[MediaKind] = ALL_KINDS,
) -> tuple[MediaFile, MediaKind]:
    """Check the file, store it streaming (stopping at its kind's limit) and return its row,
    the one already there for the same content if any."""
    kind = check(content_type, None, kinds)
    try:
        stored = store.put(chunks, limit=SEND_TYPES[kind].max_bytes)
    except TooLarge:
        raise Refused(Problem.SIZE, kind, content_type, kinds) from None
    session.execute(
        insert_ignore(session, MediaFile, ["sha256"]).values(
            sha256=stored.sha256, size=stored.size, content_type=content_type, created_at=now
        )
    )
    row = session.scalars(select(MediaFile).where(MediaFile.sha256 == stored.sha256)).one()
    return row, kind


@dataclass(frozen=True)
class Kept:
    file: MediaFile
    kind: MediaKind
    name: str | None  # as the customer will see it (a document's filename)


def keep_named(
    session: Session,
    store: MediaStore,
    stream: IO[bytes],
    name: str | None,
    declared_type: str | None,
    *,
    now: datetime,
    kinds: frozenset[MediaKind] = ALL_KINDS,
) -> Kept:
    """A file that came with a name (a form's upload, a path) kept as `keep` keeps it: its
    type as declared, else guessed from the name."""
    shown = display_filename(name)
    file, kind = keep(
        session,
        store,
        chunks_of(stream),
        content_type_of(declared_type, shown),
        now=now,
        kinds=kinds,
    )
    return Kept(file, kind, shown)


def attach(
    session: Session,
    message: Message,
    file: MediaFile,
    kind: MediaKind,
    filename: str | None,
    now: datetime,
) -> Attachment:
    """The attachment of an outbound message carrying `file`: stored from the start."""
    attachment = Attachment(
        message_id=message.id,
        kind=str(kind),
        mime_type=file.content_type,
        filename=filename,
        state=AttachmentState.STORED,
        file_id=file.id,
        created_at=now,
    )
    session.add(attachment)
    return attachment


def attach_query(
    session: Session,
    messages: Select[Any],
    *,
    file_id: int,
    kind: MediaKind,
    content_type: str,
    filename: str | None,
    now: datetime,
) -> Any:
    """INSERT … SELECT of the attachments of many outbound messages at once (a broadcast's
    batch): `messages` is a select of message ids. A message that has one keeps it."""
    subquery = messages.subquery()
    values: dict[str, Any] = {
        "message_id": subquery.c[0],
        "kind": literal(str(kind), String()),
        "mime_type": literal(content_type, String()),
        "filename": literal(filename, String()),
        "state": literal(AttachmentState.STORED, String()),
        "file_id": literal(file_id, Integer()),
        "created_at": literal(now, UTCDateTime()),
    }
    return insert_ignore(session, Attachment, ["message_id"]).from_select(
        # The WHERE keeps SQLite from reading ON CONFLICT as part of a join.
        list(values),
        select(*values.values()).where(true()),
    )


_KIND_WORDS: Final = {
    MediaKind.IMAGE: "JPEG, PNG",
    MediaKind.VIDEO: "MP4, 3GP",
    MediaKind.AUDIO: "MP3, M4A, AAC, AMR, OGG",
    MediaKind.DOCUMENT: "PDF, Word, Excel, PowerPoint, TXT",
    MediaKind.STICKER: "WebP",
}


def _megabytes(kind: MediaKind) -> str:
    size = SEND_TYPES[kind].max_bytes
    return f"{size // (1024 * 1024)} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"


def limits_text(kinds: Iterable[MediaKind] = ALL_KINDS) -> str:
    """What WhatsApp takes, as a phrase for a hint or an error ("photos as JPEG or PNG up to
    5 MB, …")."""
    if MediaKind.AUDIO in kinds:
        return gettext(
            "photos as JPEG or PNG up to 5 MB, videos as MP4 or 3GP up to 16 MB, documents "
            "as PDF, Word, Excel, PowerPoint or TXT up to 100 MB, audio as MP3, M4A, AAC, AMR "
            "or OGG up to 16 MB"
        )
    if MediaKind.VIDEO in kinds:
        return gettext(
            "photos as JPEG or PNG up to 5 MB, videos as MP4 or 3GP up to 16 MB, documents "
            "as PDF, Word, Excel, PowerPoint or TXT up to 100 MB"
        )
    return gettext("photos as JPEG or PNG up to 5 MB")


def refusal_text(refused: Refused) -> str:
    """What the shop owner reads when WhatsApp would refuse the file, and what it takes."""
    if refused.problem == Problem.SIZE:
        return gettext(
            "The file is too large: WhatsApp takes %(types)s only up to %(size)s.",
            types=_KIND_WORDS[refused.kind],
            size=_megabytes(refused.kind),
        )
    return gettext(
        "WhatsApp cannot send this file (%(type)s) here. It takes %(limits)s.",
        type=refused.content_type or "?",
        limits=limits_text(refused.kinds),
    )
