"""Stored files sent through WhatsApp: uploaded to Meta once, then sent by the media id.

A queued payload names a file of the media store (``{"file": sha256}``, see
`bot.whatsapp.payloads.FILE_KEY`). `UploadingTransport` wraps the channel's transport and puts
Meta's media id in its place before sending: the id recorded for this file and phone number
(`MediaUpload`) while it is valid, else the id of a fresh upload
(``POST /{version}/{phone-number-id}/media``, the file streamed from the store). A broadcast's
picture is so uploaded once for all its recipients.

An upload that fails is classified like a send (`bot.whatsapp.errors.classify`): 5xx, 429 and
timeouts retry later, and never count as a message that may have gone out (no message was
posted); a 4xx fails the message with Meta's reason.
"""

from __future__ import annotations

import copy
import logging
import mimetypes
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import BinaryIO, Final, Protocol

import requests
from sqlalchemy import and_, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from bot.channels.errors import PermanentError, RetryLater, SendError
from bot.channels.transport import Payload, Transport
from bot.db import Database
from bot.media.store import MediaStore, MissingFile
from bot.models import MediaFile, MediaUpload, utcnow
from bot.whatsapp.errors import classify
from bot.whatsapp.payloads import FILE_KEY, file_references, read_payload

__all__ = [
    "UPLOAD_VALID",
    "ConsoleUploader",
    "GraphUploader",
    "Uploader",
    "UploadingTransport",
]

logger = logging.getLogger("tresen.outbound")

# Meta keeps an uploaded file for 30 days. A media id is used until a day before that, so a
# message queued behind a slow outbox never goes out with an id Meta has just dropped.
UPLOAD_VALID: Final = timedelta(days=30)
SAFETY_MARGIN: Final = timedelta(days=1)
CHUNK: Final = 64 * 1024


class Uploader(Protocol):
    """Uploads one file to the channel and returns the media id it gave."""

    def upload(self, file: BinaryIO, size: int, content_type: str, filename: str) -> str: ...


class _Multipart:
    """A multipart/form-data body read from an open file as it is sent, never whole in
    memory; its length is known up front, so it goes with a Content-Length (Meta's upload
    endpoint, like many, does not take a chunked body)."""

    def __init__(
        self, fields: dict[str, str], file: BinaryIO, size: int, content_type: str, filename: str
    ) -> None:
        self.boundary = uuid.uuid4().hex
        quoted = filename.replace("\\", "_").replace('"', "_").replace("\r", "").replace("\n", "")
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
            f"{value}\r\n".encode()
            for name, value in fields.items()
        )
        head += (
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{quoted}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        self._head = head
        self._tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._file = file
        self._size = size
        self._parts = self._chunks()

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self._head) + self._size + len(self._tail)

    def _chunks(self) -> Iterator[bytes]:
        yield self._head
        sent = 0
        while chunk := self._file.read(CHUNK):
            sent += len(chunk)
            yield chunk
        if sent != self._size:
            # The Content-Length would lie: better no request than a truncated file.
            raise OSError(f"the stored file has {sent} bytes, expected {self._size}")
        yield self._tail

    def __iter__(self) -> Iterator[bytes]:
        return self._parts

    def read(self, size: int = -1) -> bytes:
        # http.client and urllib3 read a body with `read(blocksize)`: a chunk at a time is as
        # good. Only a caller asking for everything (a test double) gets it whole.
        if size is None or size < 0:
            return b"".join(self._parts)
        return next(self._parts, b"")


class GraphUploader:
    """``POST {GRAPH_API_URL}/{version}/{phone-number-id}/media``: the Cloud API's upload."""

    def __init__(
        self,
        base_url: str,
        version: str,
        phone_number_id: str,
        token: str,
        *,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (3.05, 120),
    ) -> None:
        self.url = f"{base_url.rstrip('/')}/{version}/{phone_number_id}/media"
        self._token = token
        self._session = session or requests.Session()
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"GraphUploader({self.url!r})"

    def upload(self, file: BinaryIO, size: int, content_type: str, filename: str) -> str:
        body = _Multipart(
            {"messaging_product": "whatsapp", "type": content_type},
            file,
            size,
            content_type,
            filename,
        )
        headers = {
            "Authorization": f"Bearer {self._token}",
            "Content-Type": body.content_type,
            "Content-Length": str(len(body)),
            "Accept": "application/json",
        }
        try:
            response = self._session.post(
                self.url, data=body, headers=headers, timeout=self.timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            kind = "timeout" if isinstance(exc, requests.Timeout) else "connection error"
            detail = self._scrub(f"{type(exc).__name__}: {exc}")
            # Whether or not Meta got the file, no message went out: send again freely.
            raise RetryLater(f"upload {kind}: {detail}"[:300], maybe_sent=False) from exc
        if not 200 <= response.status_code < 300:
            error = classify(
                response.status_code, response.content, response.headers.get("Retry-After")
            )
            error.maybe_sent = False
            error.message = self._scrub(f"upload refused: {error.message}")
            error.args = (error.message,)
            if error.details is not None:
                error.details = self._scrub(error.details)
            raise error
        try:
            answer = response.json()
        except ValueError:
            answer = None
        media_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(media_id, str | int) or not str(media_id):
            raise PermanentError(
                self._scrub(f"upload answer without a media id: {answer!r}")[:200],
                http_status=response.status_code,
            )
        return str(media_id)

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "[token]")


class ConsoleUploader:
    """Console mode: logs what would be uploaded, uploads nothing."""

    def upload(self, file: BinaryIO, size: int, content_type: str, filename: str) -> str:
        logger.info("console mode: would upload %s (%s, %d bytes)", filename, content_type, size)
        return f"console.{uuid.uuid4().hex}"


def _filename(sha256: str, content_type: str, given: object) -> str:
    if isinstance(given, str) and given.strip():
        return given.strip()
    extension = mimetypes.guess_extension(content_type) or ""
    return f"{sha256[:16]}{extension}"


class UploadingTransport:
    """A transport that sends payloads naming stored files: each file uploaded once per phone
    number and sent by its media id while that is valid; everything else passes through."""

    def __init__(
        self,
        transport: Transport,
        uploader: Uploader,
        database: Database,
        store: MediaStore,
        *,
        phone_number_id: str,
        clock: Callable[[], datetime] = utcnow,
        margin: timedelta = SAFETY_MARGIN,
    ) -> None:
        self.transport = transport
        self.uploader = uploader
        self.database = database
        self.store = store
        self.phone_number_id = phone_number_id
        self.clock = clock
        self.margin = margin
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"UploadingTransport({self.transport!r}, {self.uploader!r})"

    def send(self, payload: Payload) -> str:
        if next(file_references(payload), None) is None:
            return self.transport.send(payload)
        ready = copy.deepcopy(payload)  # the stored payload keeps naming the file
        for media in file_references(ready):
            sha256 = str(media.pop(FILE_KEY))
            media["id"] = self.media_id(sha256, media.get("filename"))
        return self.transport.send(ready)

    def mark_read(self, message_id: str, typing: bool = False) -> None:
        self.send(read_payload(message_id, typing=typing))

    def media_id(self, sha256: str, filename: object = None) -> str:
        """Meta's media id for the stored file: the recorded one while valid, else uploaded."""
        # One upload per file at a time in this process: the dispatcher's threads sending a
        # broadcast's picture to many at once wait for the first and take its id.
        with self._lock(sha256):
            try:
                return self._media_id(sha256, filename)
            except DBAPIError as exc:
                raise RetryLater(f"database: {type(exc).__name__}"[:300], maybe_sent=False) from exc

    def _lock(self, sha256: str) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(sha256, threading.Lock())

    def _media_id(self, sha256: str, filename: object) -> str:
        with self.database.session() as session:
            row = session.execute(
                select(
                    MediaFile.id,
                    MediaFile.size,
                    MediaFile.content_type,
                    MediaUpload.media_id,
                    MediaUpload.expires_at,
                )
                .outerjoin(
                    MediaUpload,
                    and_(
                        MediaUpload.file_id == MediaFile.id,
                        MediaUpload.phone_number_id == self.phone_number_id,
                    ),
                )
                .where(MediaFile.sha256 == sha256)
            ).first()
        if row is None:
            raise PermanentError(f"media file {sha256[:16]}… is not stored")
        file_id, size, content_type, media_id, expires_at = row
        now = self.clock()
        if media_id is not None and expires_at is not None and now < expires_at - self.margin:
            return str(media_id)
        try:
            opened = self.store.open(sha256)
        except MissingFile:
            raise PermanentError(f"media file {sha256[:16]}… is missing from the store") from None
        except OSError as exc:
            raise RetryLater(f"media store: {exc}"[:300], maybe_sent=False) from exc
        try:
            with opened:
                media_id = self.uploader.upload(
                    opened, size, content_type, _filename(sha256, content_type, filename)
                )
        except SendError:
            raise
        except OSError as exc:  # reading the store failed midway
            raise RetryLater(f"media store: {exc}"[:300], maybe_sent=False) from exc
        self._record(file_id, media_id, now)
        logger.info("uploaded %s… as media %s", sha256[:16], media_id)
        return media_id

    def _record(self, file_id: int, media_id: str, now: datetime) -> None:
        try:
            with self.database.session() as session:
                found = session.scalar(
                    select(MediaUpload).where(
                        MediaUpload.file_id == file_id,
                        MediaUpload.phone_number_id == self.phone_number_id,
                    )
                )
                if found is None:
                    found = MediaUpload(file_id=file_id, phone_number_id=self.phone_number_id)
                    session.add(found)
                found.media_id = media_id
                found.uploaded_at = now
                found.expires_at = now + UPLOAD_VALID
        except IntegrityError:
            pass  # another process recorded its upload of the same file meanwhile: as good
