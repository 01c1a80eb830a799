"""A fake WhatsApp Cloud API (Graph API) messages endpoint on 127.0.0.1.

For end-to-end tests and benchmarks: it records what it receives, answers like Meta,
plays scripted answers, and simulates outages. It also serves customers' media as Meta does
(`add_media`; `GET /{version}/{media-id}`, then a download URL that expires), and lists the
account's message templates page by page (`set_templates`). Standalone:
``python -m tests.fakegraph --port 8900 --latency 0.1``; there it answers any media id it does
not know with a small generated picture, so a console demo's image message shows one.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import hashlib
import itertools
import json
import logging
import re
import socket
import threading
import time
import urllib.parse
import uuid
import zlib
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple, Self, TextIO

from bot.message_templates.demo import DEMO_TEMPLATES
from bot.whatsapp.payloads import describe
from tests import fake_templates

__all__ = ["FakeGraph", "Received", "Reply", "Upload", "graph_error"]

logger = logging.getLogger("tresen.fakegraph")

_MESSAGES_PATH = re.compile(r"/(?P<version>v[0-9.]+)/(?P<phone>[^/]+)/messages/?")
_MEDIA_PATH = re.compile(r"/(?P<version>v[0-9.]+)/(?P<media_id>[^/?]+)/?(?:\?.*)?")
_DOWNLOAD_PATH = re.compile(r"/fake-media-download/(?P<ticket>[0-9a-f]+)/?")
# `GET /{version}/{phone_number_id}?fields=whatsapp_business_manager_messaging_limit`
_LIMIT_FIELD = "whatsapp_business_manager_messaging_limit"
_UPLOAD_PATH = re.compile(r"/(?P<version>v[0-9.]+)/(?P<phone>[^/]+)/media/?")
_TEMPLATES_PATH = re.compile(
    r"/(?P<version>v[0-9.]+)/(?P<waba>[^/?]+)/message_templates/?(?:\?(?P<query>.*))?"
)


class Received(NamedTuple):
    """One request the fake received."""

    path: str
    headers: dict[str, str]
    json: Any


class Upload(NamedTuple):
    """One file uploaded to ``POST /{version}/{phone}/media`` and accepted."""

    id: str
    phone: str
    data: bytes
    type: str  # the form's `type` field (the MIME type Meta is told)
    content_type: str  # the file part's own Content-Type
    filename: str


@dataclass(frozen=True)
class Reply:
    """A scripted answer: status, JSON body (or raw text) and extra headers.

    ``delay`` holds the answer back that many seconds (past a client's read timeout, the
    request is accepted but the client never learns it); ``drop`` hangs up without answering.
    """

    status: int = 200
    body: Mapping[str, Any] | str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False


def graph_error(code: int, message: str, details: str | None = None) -> dict[str, Any]:
    """A Graph API error body, shaped as Meta sends it."""
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code}
    if details is not None:
        error["error_data"] = {"messaging_product": "whatsapp", "details": details}
    error["fbtrace_id"] = "AFakeTrace" + uuid.uuid4().hex[:12]
    return {"error": error}


ReplyLike = (
    Reply
    | tuple[int, Mapping[str, Any] | str | None]
    | tuple[int, Mapping[str, Any] | str | None, Mapping[str, str]]
)


def _as_reply(item: ReplyLike) -> Reply:
    if isinstance(item, Reply):
        return item
    if len(item) == 2:
        return Reply(item[0], item[1])
    return Reply(item[0], item[1], item[2])


@dataclass(frozen=True)
class _Media:
    """A media file the fake serves: its bytes, type, and the sha256 GET reports (hex)."""

    data: bytes
    mime_type: str
    sha256: str


def sample_picture(width: int = 64, height: int = 48) -> bytes:
    """A small PNG (a colour gradient), made here: what the standalone fake serves."""
    rows = b"".join(
        b"\x00" + b"".join(bytes((x * 4 % 256, y * 5 % 256, 160)) for x in range(width))
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes((8, 2, 0, 0, 0))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # stop() must not wait for idle keep-alive connections a client still holds.
    block_on_close = False
    # Benchmarks open hundreds of connections at once; the default backlog of 5 drops them.
    request_queue_size = 1024
    fake: FakeGraph


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeGraph/1.0"
    # Headers and body go out in one write, but small answers still must not wait on Nagle.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.fake._opened(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._closed(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per message is logged by FakeGraph itself, when verbose

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        fake = self.server.fake
        if _UPLOAD_PATH.fullmatch(self.path):
            reply = fake._upload(self.path, dict(self.headers.items()), raw)
        elif fake_templates.matches(self.path):
            reply = fake._template_post(self.path, dict(self.headers.items()), raw)
        else:
            reply = fake._answer(self.path, dict(self.headers.items()), raw)
        if fake.latency or reply.delay:
            time.sleep(fake.latency + reply.delay)
        if reply.drop:
            self.close_connection = True
            return
        # A client that gave up waiting has closed its end.
        with contextlib.suppress(ConnectionError):
            self._write(reply.status, _encode(reply.body), reply.headers)

    def do_GET(self) -> None:
        fake = self.server.fake
        if _DOWNLOAD_PATH.fullmatch(self.path):
            self._download(fake._download(self.path, dict(self.headers.items())))
            return
        if _TEMPLATES_PATH.fullmatch(self.path):
            reply = fake._templates_page(self.path, dict(self.headers.items()))
            with contextlib.suppress(ConnectionError):
                self._write(reply.status, _encode(reply.body), reply.headers)
            return
        if not _MEDIA_PATH.fullmatch(self.path):
            self._write(*_error_reply(HTTPStatus.BAD_REQUEST, 100, "Unsupported get request."))
            return
        if _LIMIT_FIELD in self.path:
            reply = fake._phone_fields(dict(self.headers.items()))
            self._write(reply.status, _encode(reply.body), reply.headers)
            return
        reply = fake._media_info(self.path, dict(self.headers.items()))
        if fake.latency or reply.delay:
            time.sleep(fake.latency + reply.delay)
        if reply.drop:
            self.close_connection = True
            return
        with contextlib.suppress(ConnectionError):
            self._write(reply.status, _encode(reply.body), reply.headers)

    def _download(self, answer: Reply | _Media) -> None:
        """A media file's bytes, in pieces as a large file goes over the wire; or an error."""
        with contextlib.suppress(ConnectionError):
            if isinstance(answer, Reply):
                self._write(answer.status, _encode(answer.body), answer.headers)
                return
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Length: {len(answer.data)}\r\n"
                f"Content-Type: {answer.mime_type}\r\n\r\n"
            )
            self.wfile.write(head.encode("latin-1"))
            view = memoryview(answer.data)
            for start in range(0, len(view), 256 * 1024):
                self.wfile.write(view[start : start + 256 * 1024])

    def _write(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [f"HTTP/1.1 {status} {phrase}", f"Content-Length: {len(body)}"]
        if "Content-Type" not in headers:
            lines.append("Content-Type: application/json; charset=UTF-8")
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + body)


def _encode(body: Mapping[str, Any] | str | None) -> bytes:
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body).encode()


def _error_reply(status: int, code: int, message: str) -> tuple[int, bytes, dict[str, str]]:
    return status, _encode(graph_error(code, f"(#{code}) {message}")), {}


class FakeGraph:
    """A real HTTP server answering ``POST /{version}/{phone_number_id}/messages``.

    Success answers have Meta's shape, with a unique ``wamid.`` id per message; read
    receipts answer ``{"success": true}``. Scripted answers (`script`) are used first,
    in order; `fail_all` answers every request with one error until `recover`.
    With ``token`` set, a request without ``Authorization: Bearer <token>`` gets 401,
    Graph code 190. With ``record=False`` only counters are kept (for benchmarks).
    With ``journal`` set, each accepted message appends a line ``<time.monotonic()> <to>
    <wamid>`` to that file as it arrives: the clock is the machine's, so another process can
    tell when its message got here.
    """

    def __init__(
        self,
        latency: float = 0.0,
        port: int = 0,
        *,
        record: bool = True,
        token: str | None = None,
        verbose: bool = False,
        host: str = "127.0.0.1",
        journal: Path | None = None,
    ) -> None:
        self.latency = latency
        self._journal_path = journal
        self._journal: TextIO | None = None
        self.record = record
        self.token = token
        self.verbose = verbose
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._received = threading.Condition(self._lock)
        self._requests: list[Received] = []
        self._count = 0
        self._accepted = 0
        self._script: deque[Reply] = deque()
        self._outage: Reply | None = None
        self._ids = itertools.count(1)
        # Distinct per server, so ids from two fakes (or two runs) never collide.
        self._id_prefix = uuid.uuid4().hex[:12]
        self._connections: set[socket.socket] = set()
        # Customers' media (add_media) and the download tickets handed out for them.
        self.media_ttl = 300.0  # seconds a download URL is valid (Meta's: about five minutes)
        self.unknown_media: _Media | None = None  # served for any unknown media id
        self.media_gets = 0
        self.downloads = 0
        self._media: dict[str, _Media] = {}
        self._tickets: dict[str, tuple[str, float]] = {}
        self._uploads: list[Upload] = []
        self._upload_script: deque[Reply] = deque()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        # The account's message templates (set_templates) and the list requests received.
        self._templates: list[dict[str, Any]] = []
        self.template_requests: list[dict[str, list[str]]] = []
        # Templates submitted to the account, and sample files uploaded for them.
        self.template_desk = fake_templates.TemplateDesk()
        # The business portfolio's messaging limit tier the phone number answers with.
        self.messaging_limit_tier = "TIER_UNLIMITED"
        self.limit_reads = 0

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        if self._journal_path is not None:
            self._journal = self._journal_path.open("a", encoding="utf-8")
        server = _Server((self._host, self._port), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        # Idle keep-alive handlers would block on their sockets until the client
        # hangs up; closing the sockets lets those threads end now.
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            journal, self._journal = self._journal, None
        if journal is not None:
            journal.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, to use as ``GRAPH_API_URL``."""
        if self._server is None:
            raise RuntimeError("FakeGraph is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- what it received --------------------------------------------------------------

    @property
    def requests(self) -> list[Received]:
        """A copy of the recorded requests, oldest first (empty with ``record=False``)."""
        with self._lock:
            return list(self._requests)

    @property
    def signals(self) -> list[Received]:
        """The recorded read receipts and typing indicators (``status: "read"``), oldest first."""
        return [
            r for r in self.requests if isinstance(r.json, dict) and r.json.get("status") == "read"
        ]

    @property
    def count(self) -> int:
        """How many requests were received, whatever the answer."""
        with self._lock:
            return self._count

    @property
    def accepted(self) -> int:
        """How many requests got a success answer."""
        with self._lock:
            return self._accepted

    def wait_for(self, n: int, timeout: float = 5.0) -> bool:
        """Wait until at least ``n`` requests were received; False on timeout."""
        with self._received:
            return self._received.wait_for(lambda: self._count >= n, timeout=timeout)

    def reset(self) -> None:
        """Forget recorded requests and counters (not the script or an outage)."""
        with self._lock:
            self._requests.clear()
            self._count = self._accepted = 0

    # -- what it answers ---------------------------------------------------------------

    def script(self, replies: Iterable[ReplyLike]) -> None:
        """Queue answers, used in order before falling back to success.

        Each is a `Reply` or a tuple ``(status, body)`` / ``(status, body, headers)``.
        """
        with self._lock:
            self._script.extend(_as_reply(r) for r in replies)

    def fail_all(
        self,
        status: int = 503,
        body: Mapping[str, Any] | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer every request with this error until `recover` (an outage)."""
        if body is None:
            body = graph_error(131016, "(#131016) Service unavailable", "A service is down.")
        with self._lock:
            self._outage = Reply(status, body, dict(headers or {}))

    def recover(self) -> None:
        """End an outage started by `fail_all`."""
        with self._lock:
            self._outage = None

    # -- customers' media --------------------------------------------------------------

    def add_media(
        self, data: bytes, mime_type: str, media_id: str | None = None, *, sha256: str | None = None
    ) -> str:
        """Serve `data` as a customer's media under `media_id` (a new one if None); GET
        reports `sha256` (hex) if given, else the bytes' own (a wrong one tests checking)."""
        media_id = media_id or f"{self._id_prefix}{next(self._ids):06d}"
        digest = sha256 or hashlib.sha256(data).hexdigest()
        with self._lock:
            self._media[media_id] = _Media(data, mime_type, digest)
        return media_id

    def serve_unknown_media(self, data: bytes, mime_type: str) -> None:
        """Answer any media id not added with this file (the standalone fake's picture)."""
        self.unknown_media = _Media(data, mime_type, hashlib.sha256(data).hexdigest())

    def expire_urls(self) -> None:
        """Every download URL handed out so far expires now."""
        with self._lock:
            self._tickets.clear()

    def _phone_fields(self, headers: Mapping[str, str]) -> Reply:
        """`GET /{version}/{phone-number-id}?fields=whatsapp_business_manager_messaging_limit`:
        the tier, as Meta answers it (`{"whatsapp_business_manager_messaging_limit":
        "TIER_2K", "id": ...}`)."""
        with self._lock:
            self.limit_reads += 1
            if self._outage is not None:
                return self._outage
            if not self._authorized(headers):
                return Reply(401, graph_error(190, "Invalid OAuth access token data."))
            return Reply(200, {_LIMIT_FIELD: self.messaging_limit_tier, "id": "106540352242922"})

    def _media_info(self, path: str, headers: Mapping[str, str]) -> Reply:
        """`GET /{version}/{media-id}`: scripts and outages first, then the media's URL."""
        match = _MEDIA_PATH.fullmatch(path)
        assert match is not None
        with self._lock:
            self.media_gets += 1
            reply = self._script.popleft() if self._script else self._outage
            if reply is not None:
                return reply
            if not self._authorized(headers):
                return Reply(401, graph_error(190, "Invalid OAuth access token data."))
            media_id = match["media_id"]
            media = self._media.get(media_id, self.unknown_media)
            if media is None:
                return Reply(
                    404,
                    graph_error(
                        100,
                        f"Unsupported get request. Object with ID '{media_id}' does not exist,"
                        " cannot be loaded due to missing permissions, or does not support this"
                        " operation.",
                    ),
                )
            ticket = uuid.uuid4().hex
            self._tickets[ticket] = (media_id, time.monotonic() + self.media_ttl)
        return Reply(
            200,
            {
                "messaging_product": "whatsapp",
                "url": f"{self.url}/fake-media-download/{ticket}",
                "mime_type": media.mime_type,
                "sha256": media.sha256,
                "file_size": str(len(media.data)),
                "id": media_id,
            },
        )

    def _download(self, path: str, headers: Mapping[str, str]) -> Reply | _Media:
        """A download URL: the bytes while the URL is valid and the token is right."""
        match = _DOWNLOAD_PATH.fullmatch(path)
        assert match is not None
        with self._lock:
            self.downloads += 1
            if self._outage is not None:
                return self._outage
            if not self._authorized(headers):
                return Reply(401, "Unauthorized", {"Content-Type": "text/plain"})
            media_id, until = self._tickets.get(match["ticket"], ("", 0.0))
            media = self._media.get(media_id, self.unknown_media)
            if time.monotonic() > until or media is None:
                self._tickets.pop(match["ticket"], None)
                return Reply(404, "URL expired", {"Content-Type": "text/plain"})
            return media

    def _authorized(self, headers: Mapping[str, str]) -> bool:
        if self.token is None:
            return True
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        return auth == f"Bearer {self.token}"

    # -- request handling (handler threads) --------------------------------------------

    def _opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def _closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _answer(self, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = None
        with self._lock:
            self._count += 1
            if self.record:
                self._requests.append(Received(path, headers, payload))
            self._received.notify_all()
            reply = self._script.popleft() if self._script else self._outage
            if reply is None:
                reply = self._natural(path, headers, payload)
            if 200 <= reply.status < 300:
                self._accepted += 1
                self._write_journal(payload, reply.body)
        if self.verbose:
            what = describe(payload) if isinstance(payload, dict) else repr(raw[:80])
            logger.info("%s %s -> %d %s", path, what, reply.status, _short(reply.body))
        return reply

    def _write_journal(self, payload: Any, body: Mapping[str, Any] | str | None) -> None:
        """One line per accepted message, flushed so it can be read meanwhile (lock held)."""
        if self._journal is None or not isinstance(body, Mapping) or not body.get("messages"):
            return
        to = payload.get("to") if isinstance(payload, dict) else None
        self._journal.write(f"{time.monotonic():.6f} {to} {body['messages'][0]['id']}\n")
        self._journal.flush()

    def _natural(self, path: str, headers: Mapping[str, str], payload: Any) -> Reply:
        """What Meta would answer, absent a script or an outage (lock held)."""
        if not _MESSAGES_PATH.fullmatch(path):
            return Reply(400, graph_error(100, "Unsupported post request.", f"No route {path}"))
        if self.token is not None:
            auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
            if auth != f"Bearer {self.token}":
                return Reply(401, graph_error(190, "Invalid OAuth access token data."))
        if not isinstance(payload, dict) or payload.get("messaging_product") != "whatsapp":
            return Reply(
                400,
                graph_error(100, "(#100) Invalid parameter", "messaging_product is required"),
            )
        if payload.get("status") == "read":
            # A read receipt, with `typing_indicator: {"type": "text"}` the typing indicator.
            typing = payload.get("typing_indicator")
            if not isinstance(payload.get("message_id"), str) or (
                typing is not None and typing != {"type": "text"}
            ):
                return Reply(
                    400, graph_error(100, "(#100) Invalid parameter", "message_id is required")
                )
            return Reply(200, {"success": True})
        to = payload.get("to")
        contact = {"input": to, "wa_id": str(to).lstrip("+")}
        if to is None:
            recipient = payload.get("recipient")
            contact = {"input": recipient, "user_id": recipient}
        message_id = f"wamid.{self._id_prefix}{next(self._ids):010d}"
        return Reply(
            200,
            {
                "messaging_product": "whatsapp",
                "contacts": [contact],
                "messages": [{"id": message_id}],
            },
        )

    # -- template creation: POST /{version}/{waba}/message_templates and uploads ---------

    def _template_post(self, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        """Scripts and outages first, then the token, then what Meta would answer."""
        try:
            payload = json.loads(raw) if raw and path.endswith("message_templates") else None
        except ValueError:
            payload = None
        with self._lock:
            self._count += 1
            if self.record:
                self._requests.append(Received(path, headers, payload))
            self._received.notify_all()
            reply = self._script.popleft() if self._script else self._outage
        if reply is not None:
            return reply
        uploading = fake_templates.UPLOAD_SESSION_PATH.fullmatch(path) is not None
        if self.token is not None and not uploading and not self._authorized(headers):
            return Reply(401, graph_error(190, "Invalid OAuth access token data."))
        status, body = self.template_desk.answer(path, headers, raw, payload)
        return Reply(status, body)

    # -- media uploads: POST /{version}/{phone}/media ------------------------------------

    @property
    def uploads(self) -> list[Upload]:
        """A copy of the accepted uploads, oldest first."""
        with self._lock:
            return list(self._uploads)

    def script_uploads(self, replies: Iterable[ReplyLike]) -> None:
        """Queue answers for upload requests, used in order before the natural one."""
        with self._lock:
            self._upload_script.extend(_as_reply(r) for r in replies)

    def _upload(self, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        """Answer an upload as Meta does: a multipart form with `messaging_product`, `type`
        and `file` (with its content type) gets ``{"id": …}``; anything missing a 400."""
        with self._lock:
            scripted = self._upload_script.popleft() if self._upload_script else self._outage
        if scripted is not None:
            return scripted
        if self.token is not None:
            auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
            if auth != f"Bearer {self.token}":
                return Reply(401, graph_error(190, "Invalid OAuth access token data."))
        content_type = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        form, files = _multipart(content_type, raw)
        file = files.get("file")
        problem = None
        if form.get("messaging_product") != "whatsapp":
            problem = "messaging_product is required"
        elif file is None:
            problem = "file is required"
        elif not form.get("type"):
            problem = "type is required"
        elif not file.content_type or file.content_type == "application/octet-stream":
            problem = "the file part needs its content type"
        if problem is not None or file is None:
            return Reply(400, graph_error(100, "(#100) Invalid parameter", problem))
        match = _UPLOAD_PATH.fullmatch(path)
        assert match is not None
        media_id = f"{next(self._ids) + 10**15}"
        upload = Upload(
            media_id,
            match["phone"],
            file.read(),
            form["type"],
            file.content_type,
            file.filename or "",
        )
        with self._lock:
            self._uploads.append(upload)
        if self.verbose:
            logger.info(
                "%s upload %s (%d bytes) -> %s", path, upload.type, len(upload.data), media_id
            )
        return Reply(200, {"id": media_id})

    # -- the account's message templates -------------------------------------------------

    def set_templates(self, templates: Iterable[Mapping[str, Any]]) -> None:
        """The templates `GET /{version}/{waba-id}/message_templates` lists, in this order
        (Meta's template objects: name, language, category, status, components, …; an `id`
        is added where missing)."""
        with self._lock:
            self._templates = [
                {"id": str(900000000000 + i), **dict(t)} for i, t in enumerate(templates)
            ]

    def _templates_page(self, path: str, headers: Mapping[str, str]) -> Reply:
        """One page of the list, with Graph cursor paging: `limit` (default 25) items after
        the `after` cursor; `paging.cursors` always, `paging.next` while more follow.
        Scripted answers and outages come first, as for the other endpoints."""
        match = _TEMPLATES_PATH.fullmatch(path)
        assert match is not None
        query = urllib.parse.parse_qs(match["query"] or "")
        with self._lock:
            if self.record:
                self.template_requests.append(query)
            reply = self._script.popleft() if self._script else self._outage
            if reply is not None:
                return reply
            if not self._authorized(headers):
                return Reply(401, graph_error(190, "Invalid OAuth access token data."))
            templates = list(self._templates)
        try:
            limit = int(query.get("limit", ["25"])[0])
            start = (
                int(base64.urlsafe_b64decode(query["after"][0]).decode()) if "after" in query else 0
            )
        except (ValueError, UnicodeDecodeError, binascii.Error):
            return Reply(400, graph_error(100, "(#100) Invalid parameter"))
        if limit < 1:
            return Reply(400, graph_error(100, "(#100) Invalid parameter"))
        page = templates[start : start + limit]

        def cursor(index: int) -> str:
            return base64.urlsafe_b64encode(str(index).encode()).decode()

        body: dict[str, Any] = {"data": page}
        if page:
            body["paging"] = {
                "cursors": {"before": cursor(start), "after": cursor(start + len(page))}
            }
            if start + len(page) < len(templates):
                following = {k: v[0] for k, v in query.items() if k != "after"}
                following["after"] = cursor(start + len(page))
                base = path.split("?", 1)[0]
                body["paging"]["next"] = f"{self.url}{base}?{urllib.parse.urlencode(following)}"
        return Reply(200, body)


def _multipart(content_type: str, raw: bytes) -> tuple[dict[str, str], dict[str, Any]]:
    """The fields and files of a multipart/form-data body, as Werkzeug parses them."""
    from io import BytesIO

    from werkzeug.formparser import parse_form_data

    environ = {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(raw)),
        "wsgi.input": BytesIO(raw),
    }
    _stream, form, files = parse_form_data(environ)
    return dict(form.items()), dict(files.items())


def _short(body: Mapping[str, Any] | str | None) -> str:
    text = body if isinstance(body, str) else json.dumps(body)
    return text if len(text) <= 120 else text[:119] + "…"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per answer")
    parser.add_argument("--token", default=None, help="require this bearer token")
    parser.add_argument("--quiet", action="store_true", help="do not log each message")
    parser.add_argument(
        "--journal", type=Path, default=None, help="append a line per accepted message to this file"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    fake = FakeGraph(
        args.latency,
        args.port,
        record=False,
        token=args.token,
        verbose=not args.quiet,
        host=args.host,
        journal=args.journal,
    )
    # Any media id a console demo's message names shows this picture.
    fake.serve_unknown_media(sample_picture(), "image/png")
    # The account's templates: console mode's German demo ones, so a live-mode trial lists some.
    fake.set_templates(DEMO_TEMPLATES)
    with fake:
        print(f"fake Graph API on {fake.url} (latency {args.latency}s); Ctrl-C stops", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    print(f"received {fake.count} requests", flush=True)


if __name__ == "__main__":
    main()
