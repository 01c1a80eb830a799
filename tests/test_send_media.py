"""The shop sends files: Meta's limits checked before anything is kept, the reply box's file,
quick replies with a file, and the upload to Meta once per file (bot.whatsapp.uploads), at the
HTTP boundary with `responses` and end to end against the fake Graph API."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from bot.channels.errors import PermanentError, RetryLater
from bot.db import Database, get_db
from bot.media.kinds import MediaKind
from bot.media.sending import Problem, Refused, check, keep, refusal_text
from bot.media.store import LocalStore
from bot.models import Attachment, Contact, MediaFile, MediaUpload, Message, QuickReply
from bot.outbound import outbox
from bot.whatsapp.payloads import file_references, header_media, media_payload, template_payload
from bot.whatsapp.uploads import ConsoleUploader, GraphUploader, UploadingTransport
from bot.worker import make_dispatcher
from tests.fakegraph import FakeGraph, graph_error
from tests.test_admin import (  # noqa: F401  (fixtures)
    NOW,
    admin,
    clock,
    contact_id,
    csrf_of,
    receive,
)

TOKEN = "EAAG-upload-secret-token"
PHONE = "106540352242922"
GRAPH = "https://graph.test"
UPLOAD_URL = f"{GRAPH}/v24.0/{PHONE}/media"
MESSAGES_URL = f"{GRAPH}/v24.0/{PHONE}/messages"
# A PNG's first bytes and some more: the store does not look inside.
PHOTO = b"\x89PNG\r\n\x1a\n" + b"wreath" * 1000
PDF = b"%PDF-1.7\n" + b"prices" * 500


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(app: Flask, tmp_path: Path) -> LocalStore:
    kept = LocalStore(tmp_path / "media")
    app.extensions["tresen.media"] = kept
    return kept


def stored_file(app: Flask, store: LocalStore, data: bytes, content_type: str) -> MediaFile:
    with get_db(app).session() as session:
        row, _kind = keep(session, store, [data], content_type, now=NOW)
        session.expunge(row)
    return row


class Recorder:
    """The transport under the uploading one: records what would go to the messages endpoint."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, payload: dict[str, Any]) -> str:
        self.sent.append(payload)
        return f"wamid.{len(self.sent)}"


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def uploading(app: Flask, store: LocalStore, at: Clock) -> tuple[UploadingTransport, Recorder]:
    recorder = Recorder()
    transport = UploadingTransport(
        recorder,
        GraphUploader(GRAPH, "v24.0", PHONE, TOKEN),
        get_db(app),
        store,
        phone_number_id=PHONE,
        clock=at,
    )
    return transport, recorder


def body_of(request: Any) -> bytes:
    body = request.body
    if hasattr(body, "read"):
        return b"".join(iter(lambda: body.read(8192), b""))
    return body if isinstance(body, bytes) else body.encode()


# --- Meta's limits, before anything is kept ---------------------------------------------------


def test_limits_are_checked_before_anything_is_stored(app: Flask, store: LocalStore) -> None:
    assert check("image/png", 5 * 1024 * 1024) == MediaKind.IMAGE
    assert check("application/pdf", 100 * 1024 * 1024) == MediaKind.DOCUMENT
    with pytest.raises(Refused) as refused:
        check("image/png", 5 * 1024 * 1024 + 1)
    assert refused.value.problem == Problem.SIZE
    with pytest.raises(Refused) as refused:
        check("image/svg+xml")
    assert refused.value.problem == Problem.TYPE
    with app.test_request_context():
        assert "PDF, Word, Excel" in refusal_text(refused.value)
    # Streaming past the limit stores nothing, row or bytes.
    with get_db(app).session() as session, pytest.raises(Refused):
        keep(session, store, [b"x" * (5 * 1024 * 1024 + 1)], "image/jpeg", now=NOW)
    assert list(store.keys()) == []
    with get_db(app).session() as session:
        assert session.scalar(select(func.count(MediaFile.id))) == 0


def test_the_same_file_kept_twice_is_one_row(app: Flask, store: LocalStore) -> None:
    first = stored_file(app, store, PHOTO, "image/png")
    second = stored_file(app, store, PHOTO, "image/png")
    assert first.id == second.id and first.sha256 == sha(PHOTO)
    assert list(store.keys()) == [sha(PHOTO)]


def test_payloads_name_stored_files() -> None:
    digest = sha(PHOTO)
    message = media_payload("4915112345678", "image", file=digest, caption="Ihr Kranz")
    assert message["image"] == {"file": digest, "caption": "Ihr Kranz"}
    template = template_payload(
        "4915112345678", "angebot", "de", [header_media("image", file=digest)]
    )
    assert [m["file"] for m in file_references(template)] == [digest]
    assert list(file_references(media_payload("4915112345678", "image", media_id="1"))) == []
    with pytest.raises(ValueError, match="sha256"):
        media_payload("4915112345678", "image", file="not-a-hash")
    with pytest.raises(ValueError, match="header"):
        header_media("audio", file=digest)


# --- the upload, at the HTTP boundary ---------------------------------------------------------


@responses.activate
def test_uploaded_once_then_sent_by_the_cached_id(app: Flask, store: LocalStore) -> None:
    row = stored_file(app, store, PHOTO, "image/png")
    seen: list[bytes] = []

    def upload(request: Any) -> tuple[int, dict[str, str], str]:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert int(request.headers["Content-Length"]) > len(PHOTO)
        seen.append(body_of(request))
        return 200, {}, '{"id": "7001"}'

    responses.add_callback(responses.POST, UPLOAD_URL, callback=upload)
    fixed = Clock(NOW)
    transport, recorder = uploading(app, store, fixed)
    payload = media_payload("4915112345678", "image", file=row.sha256, caption="Ihr Kranz")
    assert transport.send(payload) == "wamid.1"
    assert transport.send(payload) == "wamid.2"
    assert len(seen) == 1
    body = seen[0]
    assert b'name="messaging_product"\r\n\r\nwhatsapp' in body
    assert b'name="type"\r\n\r\nimage/png' in body
    assert b"Content-Type: image/png\r\n\r\n" + PHOTO in body
    assert recorder.sent[0]["image"] == {"id": "7001", "caption": "Ihr Kranz"}
    assert recorder.sent[1]["image"] == {"id": "7001", "caption": "Ihr Kranz"}
    assert payload["image"] == {"file": row.sha256, "caption": "Ihr Kranz"}  # stored as queued
    with get_db(app).session() as session:
        upload_row = session.scalars(select(MediaUpload)).one()
        assert (upload_row.media_id, upload_row.phone_number_id) == ("7001", PHONE)
        assert upload_row.expires_at == NOW + timedelta(days=30)


@responses.activate
def test_an_expiring_upload_is_uploaded_again(app: Flask, store: LocalStore) -> None:
    row = stored_file(app, store, PDF, "application/pdf")
    responses.add(responses.POST, UPLOAD_URL, json={"id": "1"})
    responses.add(responses.POST, UPLOAD_URL, json={"id": "2"})
    fixed = Clock(NOW)
    transport, recorder = uploading(app, store, fixed)
    payload = media_payload("4915112345678", "document", file=row.sha256, filename="Preisliste.pdf")
    transport.send(payload)
    fixed.at = NOW + timedelta(days=28, hours=23)  # still a day and more left
    transport.send(payload)
    fixed.at = NOW + timedelta(days=29, hours=1)  # within the safety margin: upload anew
    transport.send(payload)
    assert [p["document"]["id"] for p in recorder.sent] == ["1", "1", "2"]
    assert recorder.sent[0]["document"]["filename"] == "Preisliste.pdf"
    assert b'filename="Preisliste.pdf"' in body_of(responses.calls[0].request)
    assert len(responses.calls) == 2


@responses.activate
def test_upload_server_errors_retry_later_and_never_count_as_sent(
    app: Flask, store: LocalStore, caplog: pytest.LogCaptureFixture
) -> None:
    row = stored_file(app, store, PHOTO, "image/png")
    responses.add(responses.POST, UPLOAD_URL, status=503, json=graph_error(2, f"down {TOKEN}"))
    responses.add(responses.POST, UPLOAD_URL, status=429, headers={"Retry-After": "7"})
    transport, recorder = uploading(app, store, Clock(NOW))
    payload = media_payload("4915112345678", "image", file=row.sha256)
    caplog.set_level(logging.DEBUG)
    for _ in range(2):
        with pytest.raises(RetryLater) as error:
            transport.send(payload)
        assert error.value.maybe_sent is False
        assert TOKEN not in str(error.value) and TOKEN not in caplog.text
    assert error.value.retry_after == 7
    assert recorder.sent == []


@responses.activate
def test_upload_refused_fails_permanently_with_metas_reason(app: Flask, store: LocalStore) -> None:
    row = stored_file(app, store, PHOTO, "image/png")
    responses.add(
        responses.POST,
        UPLOAD_URL,
        status=400,
        json=graph_error(131053, "(#131053) Media upload error", "Unsupported file type"),
    )
    transport, recorder = uploading(app, store, Clock(NOW))
    with pytest.raises(PermanentError) as error:
        transport.send(media_payload("4915112345678", "image", file=row.sha256))
    assert error.value.code == 131053
    assert "Unsupported file type" in error.value.reason
    assert recorder.sent == []


@responses.activate
def test_a_timeout_retries_later(app: Flask, store: LocalStore) -> None:
    import requests

    row = stored_file(app, store, PHOTO, "image/png")
    responses.add(responses.POST, UPLOAD_URL, body=requests.ReadTimeout("slow"))
    transport, _recorder = uploading(app, store, Clock(NOW))
    with pytest.raises(RetryLater) as error:
        transport.send(media_payload("4915112345678", "image", file=row.sha256))
    assert error.value.maybe_sent is False


def test_a_file_not_stored_fails_the_message(app: Flask, store: LocalStore) -> None:
    transport, _recorder = uploading(app, store, Clock(NOW))
    with pytest.raises(PermanentError, match="not stored"):
        transport.send(media_payload("4915112345678", "image", file="0" * 64))


def test_console_mode_logs_the_upload_and_sends_nothing(
    app: Flask, store: LocalStore, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.channels.console import ConsoleTransport

    row = stored_file(app, store, PHOTO, "image/png")
    transport = UploadingTransport(
        ConsoleTransport(), ConsoleUploader(), get_db(app), store, phone_number_id="console"
    )
    caplog.set_level(logging.INFO, logger="tresen.outbound")
    assert transport.send(media_payload("4915112345678", "image", file=row.sha256)).startswith(
        "wamid.console."
    )
    assert "would upload" in caplog.text and "image/png" in caplog.text


def test_threads_sending_one_file_upload_it_once(app: Flask, store: LocalStore) -> None:
    """The dispatcher's threads sending a broadcast's picture at once: one upload."""
    row = stored_file(app, store, PHOTO, "image/png")
    uploads: list[int] = []

    class Slow:
        def upload(self, file: Any, size: int, content_type: str, filename: str) -> str:
            time.sleep(0.2)
            uploads.append(size)
            return "42"

    recorder = Recorder()
    transport = UploadingTransport(
        recorder, Slow(), Database(get_db(app).url), store, phone_number_id=PHONE
    )
    payload = media_payload("4915112345678", "image", file=row.sha256)
    threads = [threading.Thread(target=transport.send, args=(payload,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert uploads == [len(PHOTO)]
    assert len(recorder.sent) == 6


# --- the reply box ---------------------------------------------------------------------------


def reply(
    admin: FlaskClient,  # noqa: F811
    cid: int,
    text: str,
    file: tuple[bytes, str, str] | None = None,
    **extra: str,
) -> Any:
    page = admin.get(f"/admin/inbox/{cid}").get_data(as_text=True)
    data: dict[str, Any] = {"text": text, "csrf_token": csrf_of(page), **extra}
    if file is not None:
        data["file"] = (io.BytesIO(file[0]), file[1], file[2])
    return admin.post(
        f"/admin/inbox/{cid}/reply",
        data=data,
        content_type="multipart/form-data",
        headers={"Accept": "application/json"},
    )


def test_the_conversation_offers_a_file_with_metas_types(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    receive(admin)
    page = admin.get(f"/admin/inbox/{contact_id(app)}").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page
    assert 'type="file" name="file"' in page and "application/pdf" in page
    assert "image/svg" not in page


def test_a_reply_with_a_photo_is_queued_with_its_attachment(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
    store: LocalStore,
) -> None:
    receive(admin)
    cid = contact_id(app)
    answer = reply(admin, cid, "So sieht der Kranz aus", (PHOTO, "kranz.png", "image/png"))
    assert answer.status_code == 200, answer.get_json()
    assert answer.get_json()["ok"] is True
    with get_db(app).session() as session:
        message = session.scalars(select(Message).where(Message.rule == "manual")).one()
        assert message.type == "image" and message.rule == "manual"
        assert message.payload["image"] == {"file": sha(PHOTO), "caption": "So sieht der Kranz aus"}
        attachment = session.scalars(select(Attachment)).one()
        assert attachment.message_id == message.id
        assert (attachment.state, attachment.kind, attachment.filename) == (
            "stored",
            "image",
            "kranz.png",
        )
        assert attachment.mime_type == "image/png"
        assert attachment.file is not None and attachment.file.sha256 == sha(PHOTO)
    assert store.exists(sha(PHOTO))


def test_a_document_goes_with_its_name_and_no_text_needed(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
    store: LocalStore,
) -> None:
    receive(admin)
    cid = contact_id(app)
    # A browser that does not know the type: the name tells.
    answer = reply(admin, cid, "", (PDF, "Preisliste 2026.pdf", "application/octet-stream"))
    assert answer.get_json()["ok"] is True
    with get_db(app).session() as session:
        message = session.scalars(select(Message).where(Message.rule == "manual")).one()
        assert message.payload["document"] == {
            "file": sha(PDF),
            "filename": "Preisliste 2026.pdf",
        }


@pytest.mark.parametrize(
    ("file", "words"),
    [
        ((b"<svg onload=alert(1)>", "x.svg", "image/svg+xml"), "PDF, Word, Excel"),
        ((b"\xff\xd8" + b"0" * (5 * 1024 * 1024), "big.jpg", "image/jpeg"), "5 MB"),
    ],
)
def test_a_file_whatsapp_refuses_is_neither_stored_nor_queued(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
    store: LocalStore,
    file: tuple[bytes, str, str],
    words: str,
) -> None:
    receive(admin)
    answer = reply(admin, contact_id(app), "Hier", file)
    assert answer.status_code == 400
    assert words in answer.get_json()["error"]
    assert list(store.keys()) == []
    with get_db(app).session() as session:
        assert session.scalar(select(func.count(Message.id)).where(Message.rule == "manual")) == 0


def test_a_file_larger_than_any_whatsapp_takes_gets_a_friendly_413(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
    store: LocalStore,
) -> None:
    from bot.admin.blueprint import UPLOAD_BODY_MAX

    receive(admin)
    cid = contact_id(app)
    page = admin.get(f"/admin/inbox/{cid}").get_data(as_text=True)
    body = b"0" * (UPLOAD_BODY_MAX + 1)
    answer = admin.post(
        f"/admin/inbox/{cid}/reply",
        data={
            "csrf_token": csrf_of(page),
            "file": (io.BytesIO(body), "huge.pdf", "application/pdf"),
        },
        content_type="multipart/form-data",
    )
    assert answer.status_code == 413
    assert "100 MB" in answer.get_data(as_text=True)
    # Other admin forms keep the small limit of 3 MB.
    answer = admin.post(
        f"/admin/inbox/{cid}/labels",
        data={"csrf_token": csrf_of(page), "labels": "x" * (4 * 1024 * 1024)},
    )
    assert answer.status_code == 413


def test_a_file_reply_needs_the_csrf_token(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
    store: LocalStore,
) -> None:
    receive(admin)
    answer = admin.post(
        f"/admin/inbox/{contact_id(app)}/reply",
        data={"text": "x", "file": (io.BytesIO(PHOTO), "a.png", "image/png")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 400
    assert list(store.keys()) == []


# --- quick replies with a file ---------------------------------------------------------------


def test_a_quick_reply_with_a_file_attaches_it_in_the_reply_box(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
    store: LocalStore,
) -> None:
    page = admin.get("/admin/quick-replies").get_data(as_text=True)
    assert 'type="file" name="file"' in page
    saved = admin.post(
        "/admin/quick-replies",
        data={
            "shortcut": "/preise",
            "text": "Unsere Preisliste, [Name]",
            "csrf_token": csrf_of(page),
            "file": (io.BytesIO(PDF), "Preisliste.pdf", "application/pdf"),
        },
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert saved.status_code == 200
    assert "Preisliste.pdf" in saved.get_data(as_text=True)
    receive(admin)
    cid = contact_id(app)
    found = admin.get(f"/admin/inbox/{cid}/quick-replies.json?q=pre").get_json()["replies"]
    assert found[0]["file_name"] == "Preisliste.pdf"
    answer = reply(admin, cid, found[0]["text"], quick_reply=str(found[0]["id"]))
    assert answer.get_json()["ok"] is True
    with get_db(app).session() as session:
        message = session.scalars(select(Message).where(Message.rule == "manual")).one()
        assert message.payload["document"] == {
            "file": sha(PDF),
            "caption": "Unsere Preisliste, Anna",
            "filename": "Preisliste.pdf",
        }
        assert session.scalars(select(Attachment)).one().filename == "Preisliste.pdf"
        quick = session.scalars(select(QuickReply)).one()
        assert quick.file is not None and quick.file.sha256 == sha(PDF)


def test_a_quick_reply_refuses_a_file_whatsapp_would_not_send(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
    store: LocalStore,
) -> None:
    page = admin.get("/admin/quick-replies").get_data(as_text=True)
    answer = admin.post(
        "/admin/quick-replies",
        data={
            "shortcut": "/x",
            "text": "x",
            "csrf_token": csrf_of(page),
            "file": (io.BytesIO(b"<html>"), "x.html", "text/html"),
        },
        content_type="multipart/form-data",
    )
    assert answer.status_code == 400
    assert "PDF, Word, Excel" in answer.get_data(as_text=True)
    with get_db(app).session() as session:
        assert session.scalar(select(func.count(QuickReply.id))) == 0


# --- end to end against the fake Graph API ---------------------------------------------------


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph(token=TOKEN) as fake:
        yield fake


def live(app: Flask, graph: FakeGraph) -> None:
    """The app as configured for Meta, the fake standing in for the Graph API."""
    app.config["TRESEN"] = dataclasses.replace(
        app.config["TRESEN"],
        whatsapp_token=TOKEN,
        phone_number_id=PHONE,
        verify_token="v",
        graph_api_url=graph.url,
        graph_api_version="v24.0",
    )


def dispatch(app: Flask, until: Any, timeout: float = 20.0) -> None:
    """The worker's dispatcher, as `make_dispatcher` builds it, until `until()` holds."""
    dispatcher = make_dispatcher(app, concurrency=4)
    dispatcher.poll = 0.05
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, "not sent in time"
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(30)
        dispatcher.database.dispose()


def statuses(app: Flask, rule: str | None = "manual") -> list[str]:
    with get_db(app).session() as session:
        query = select(Message.status).where(Message.direction == "out").order_by(Message.id)
        if rule is not None:
            query = query.where(Message.rule == rule)
        return list(session.scalars(query))


def test_a_reply_with_a_photo_reaches_the_fake_uploaded_once(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
    store: LocalStore,
    graph: FakeGraph,
) -> None:
    live(app, graph)
    receive(admin)
    cid = contact_id(app)
    assert reply(admin, cid, "Ihr Kranz", (PHOTO, "kranz.png", "image/png")).status_code == 200
    dispatch(app, lambda: statuses(app) == ["sent"])
    [upload] = graph.uploads
    assert (upload.data, upload.type, upload.content_type, upload.phone) == (
        PHOTO,
        "image/png",
        "image/png",
        PHONE,
    )
    assert upload.filename.endswith(".png")
    sent = [r.json for r in graph.requests if r.json and r.json.get("type") == "image"]
    assert sent[0]["image"] == {"id": upload.id, "caption": "Ihr Kranz"}
    # The same photo again: sent by the id Meta gave, not uploaded again.
    assert reply(admin, cid, "Noch einmal", (PHOTO, "kranz.png", "image/png")).status_code == 200
    dispatch(app, lambda: statuses(app) == ["sent", "sent"])
    assert len(graph.uploads) == 1
    sent = [r.json for r in graph.requests if r.json and r.json.get("type") == "image"]
    assert sent[1]["image"] == {"id": upload.id, "caption": "Noch einmal"}


def test_an_upload_outage_is_retried_as_never_sent(
    app: Flask,
    store: LocalStore,
    graph: FakeGraph,
) -> None:
    live(app, graph)
    row = stored_file(app, store, PHOTO, "image/png")
    graph.script_uploads([(503, graph_error(131016, "(#131016) Service unavailable"))])
    # A clock that runs fast: the retry's backoff passes within the test.
    start = time.monotonic()
    app.config["TRESEN_CLOCK"] = lambda: NOW + timedelta(seconds=(time.monotonic() - start) * 600)
    now = NOW
    with get_db(app).session() as session:
        contact = Contact(wa_id="4915100000001", name="Bea", last_inbound_at=now)
        session.add(contact)
        session.flush()
        outbox.enqueue(
            session, contact, media_payload(contact.wa_id or "", "image", file=row.sha256), now=now
        )
    dispatch(app, lambda: statuses(app, None) == ["sent"])
    assert len(graph.uploads) == 1
    with get_db(app).session() as session:
        assert session.scalars(select(Message.attempts)).one() == 2
        assert session.scalars(select(Message.uncertain_attempts)).one() == 0


def test_a_quick_reply_whose_file_was_taken_off_sends_the_text(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
    store: LocalStore,
) -> None:
    with get_db(app).session() as session:
        session.add(QuickReply(shortcut="danke", text="Danke!"))
    receive(admin)
    cid = contact_id(app)
    with get_db(app).session() as session:
        quick_id = session.scalars(select(QuickReply.id)).one()
    answer = reply(admin, cid, "Danke!", quick_reply=str(quick_id))
    assert answer.get_json()["ok"] is True
    with get_db(app).session() as session:
        message = session.scalars(select(Message).where(Message.rule == "manual")).one()
        assert message.payload["text"]["body"] == "Danke!"
