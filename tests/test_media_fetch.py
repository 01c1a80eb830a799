"""Customers' media end to end: a signed webhook post, the real processor, the real fetcher,
the fake Graph API over real HTTP, and the media store (a folder; the S3 store as well)."""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import event, select

from bot import create_app
from bot.db import get_db
from bot.media import kinds
from bot.media.fetch import MediaClient, Unavailable, as_hex_sha256
from bot.media.fetcher import Fetcher, claim, media_client, record
from bot.media.kinds import Failure, MediaKind
from bot.media.store import LocalStore, MediaStore, StoreUnavailable, get_media_store
from bot.models import Attachment, AttachmentState, MediaFile, Message, utcnow
from tests.conftest import make_env, post_notification
from tests.fakegraph import FakeGraph, graph_error, sample_picture
from tests.payloads import notification

TOKEN = "EAAGfaketoken1234567890"
PICTURE = sample_picture()


class Clock:
    """The app's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with FakeGraph(token=TOKEN) as fake:
        yield fake


@pytest.fixture(params=["local", "s3"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """MEDIA_STORE: a folder, or a bucket of an S3-compatible server on 127.0.0.1."""
    if request.param == "local":
        return str(tmp_path / "media")
    return str(request.getfixturevalue("s3_media_url"))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(
    database_url: str, tmp_path: Path, fake: FakeGraph, store_url: str, clock: Clock
) -> Iterator[Flask]:
    """An app with a token, fetching from the fake Graph API, on the store of the test."""
    env = make_env(
        database_url,
        WHATSAPP_TOKEN=TOKEN,
        WHATSAPP_PHONE_NUMBER_ID="106540352242922",
        WHATSAPP_VERIFY_TOKEN="verify",
        SECRET_KEY="test-secret-key-of-some-length-0123456789",
        GRAPH_API_URL=fake.url,
        MEDIA_STORE=store_url,
    )
    app = create_app(env, instance_path=tmp_path / "instance")
    app.config["TESTING"] = True
    app.config["TRESEN_CLOCK"] = clock
    yield app
    get_db(app).dispose()


@pytest.fixture
def fetcher(app: Flask, clock: Clock) -> Iterator[Fetcher]:
    fetcher = Fetcher(
        get_db(app),
        media_client(app.config["TRESEN"], pool_size=4),
        get_media_store(app),
        threads=4,
        clock=clock,
        cleanup_every=None,
        worker="test-worker",
    )
    yield fetcher
    if fetcher.client is not None:
        fetcher.client.close()


def image_message(media_id: str, data: bytes = PICTURE, **media: Any) -> dict[str, Any]:
    """An image message as Meta sends it: the webhook's sha256 in base64."""
    sha = base64.b64encode(hashlib.sha256(data).digest()).decode()
    return notification(
        {
            "type": "image",
            "image": {"id": media_id, "mime_type": "image/png", "sha256": sha, **media},
        }
    )


def attachment(app: Flask) -> Attachment:
    with get_db(app).session() as session:
        rows = session.scalars(select(Attachment)).all()
        assert len(rows) == 1
        row = rows[0]
        session.expunge(row)
        return row


def stored_file(app: Flask, file_id: int | None) -> MediaFile:
    with get_db(app).session() as session:
        row = session.get(MediaFile, file_id)
        assert row is not None
        return row


def read_all(store: MediaStore, key: str) -> bytes:
    with store.open(key) as file:
        return file.read()


# -- the acceptance cases ---------------------------------------------------------------------


def test_an_image_is_fetched_checked_and_stored(
    app: Flask, fake: FakeGraph, fetcher: Fetcher
) -> None:
    media_id = fake.add_media(PICTURE, "image/png")
    doc = image_message(media_id, caption="so ungefähr")
    assert post_notification(app.test_client(), doc).status_code == 200

    pending = attachment(app)
    assert (pending.state, pending.kind, pending.media_id) == ("pending", "image", media_id)
    assert pending.mime_type == "image/png"
    assert as_hex_sha256(pending.declared_sha256) == hashlib.sha256(PICTURE).hexdigest()

    assert fetcher.run_once() == 1
    done = attachment(app)
    assert done.state == AttachmentState.STORED
    assert (done.failure, done.error, done.claimed_by) == (None, None, None)
    file = stored_file(app, done.file_id)
    assert file.sha256 == hashlib.sha256(PICTURE).hexdigest()
    assert (file.size, file.content_type) == (len(PICTURE), "image/png")
    assert read_all(get_media_store(app), file.sha256) == PICTURE
    assert (fake.media_gets, fake.downloads) == (1, 1)
    with get_db(app).session() as session:
        message = session.scalars(select(Message)).one()
        assert (message.type, message.text) == ("image", "so ungefähr")


def test_a_wrong_sha256_is_tried_a_few_times_then_recorded(
    app: Flask, fake: FakeGraph, fetcher: Fetcher, clock: Clock
) -> None:
    media_id = fake.add_media(PICTURE, "image/png", sha256="ab" * 32)
    post_notification(app.test_client(), image_message(media_id))
    for _ in range(3):
        assert fetcher.run_once() == 1
        clock.advance(minutes=5)
    failed = attachment(app)
    assert (failed.state, failed.failure, failed.attempts) == ("failed", Failure.CHECKSUM, 3)
    assert (failed.error or "").startswith("checksum 3/3: ")
    assert "ab" * 32 in (failed.error or "")
    assert failed.file_id is None
    assert list(get_media_store(app).keys()) == []
    assert fetcher.run_once() == 0


def test_checksum_tries_count_only_checksum_failures(
    app: Flask, fake: FakeGraph, fetcher: Fetcher, clock: Clock
) -> None:
    media_id = fake.add_media(PICTURE, "image/png", sha256="ab" * 32)
    post_notification(app.test_client(), image_message(media_id))
    fake.fail_all(503)
    for _ in range(3):
        fetcher.run_once()
        clock.advance(hours=1)
    fake.recover()
    fetcher.run_once()
    after_outage = attachment(app)
    assert (after_outage.state, after_outage.attempts) == ("pending", 4)
    assert (after_outage.error or "").startswith("checksum 1/3: ")


def test_a_webhook_sha256_that_differs_from_gets_is_overruled_by_get(
    app: Flask, fake: FakeGraph, fetcher: Fetcher
) -> None:
    media_id = fake.add_media(PICTURE, "image/png")
    post_notification(app.test_client(), image_message(media_id, sha256="cd" * 32))
    fetcher.run_once()
    assert attachment(app).state == AttachmentState.STORED


def test_an_expired_url_is_fetched_again(app: Flask, fake: FakeGraph, fetcher: Fetcher) -> None:
    media_id = fake.add_media(PICTURE, "image/png")
    post_notification(app.test_client(), image_message(media_id))

    class Late(MediaClient):
        """Comes to the first download after its URL expired (five minutes late)."""

        late = True

        def download(self, url: str) -> Any:
            if self.late:
                self.late = False
                fake.expire_urls()
            return super().download(url)

    config = app.config["TRESEN"]
    fetcher.client = Late(config.graph_api_url, config.graph_api_version, TOKEN)
    fetcher.run_once()
    done = attachment(app)
    assert done.state == AttachmentState.STORED, done.error
    assert (fake.media_gets, fake.downloads) == (2, 2)


def test_media_meta_does_not_have_fails_as_not_found_and_the_message_stays(
    app: Flask, fake: FakeGraph, fetcher: Fetcher
) -> None:
    post_notification(app.test_client(), image_message("1234567890"))
    fetcher.run_once()
    failed = attachment(app)
    assert (failed.state, failed.failure) == ("failed", Failure.NOT_FOUND)
    assert "does not exist" in (failed.error or "")
    with get_db(app).session() as session:
        assert session.scalars(select(Message.type)).all() == ["image"]


def test_an_oversized_document_is_refused_and_nothing_kept(
    app: Flask, fake: FakeGraph, fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(kinds.RECEIVE_LIMITS, MediaKind.DOCUMENT, 100_000)
    media_id = fake.add_media(os.urandom(100_001), "application/pdf")
    doc = notification(
        {
            "type": "document",
            "document": {"id": media_id, "mime_type": "application/pdf", "filename": "a.pdf"},
        }
    )
    post_notification(app.test_client(), doc)
    fetcher.run_once()
    failed = attachment(app)
    assert (failed.state, failed.failure, failed.filename) == ("failed", "too_large", "a.pdf")
    assert fake.downloads == 0  # refused on GET's file_size, before downloading
    assert list(get_media_store(app).keys()) == []


def test_a_download_larger_than_declared_is_cut_off_by_the_store(
    app: Flask, fake: FakeGraph, fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(kinds.RECEIVE_LIMITS, MediaKind.IMAGE, 1000)
    media_id = fake.add_media(PICTURE, "image/png")
    monkeypatch.setattr(
        MediaClient, "info", _with_size(MediaClient.info, 10)
    )  # Meta said it was small
    post_notification(app.test_client(), image_message(media_id))
    fetcher.run_once()
    assert attachment(app).failure == Failure.TOO_LARGE
    assert fake.downloads == 1
    assert list(get_media_store(app).keys()) == []


def _with_size(info: Callable[..., Any], size: int) -> Callable[..., Any]:
    def patched(self: MediaClient, *args: Any) -> Any:
        from dataclasses import replace

        return replace(info(self, *args), file_size=size)

    return patched


def test_a_redelivered_media_message_is_stored_once(
    app: Flask, fake: FakeGraph, fetcher: Fetcher
) -> None:
    media_id = fake.add_media(PICTURE, "image/png")
    doc = image_message(media_id)
    client = app.test_client()
    post_notification(client, doc)
    post_notification(client, doc)
    assert fetcher.run_once() == 1
    post_notification(client, doc)
    assert fetcher.run_once() == 0
    assert attachment(app).state == AttachmentState.STORED
    assert fake.media_gets == 1


def test_the_same_picture_twice_is_one_file(app: Flask, fake: FakeGraph, fetcher: Fetcher) -> None:
    client = app.test_client()
    for _ in range(2):
        post_notification(client, image_message(fake.add_media(PICTURE, "image/png")))
    assert fetcher.run_once() == 2
    with get_db(app).session() as session:
        file_ids = session.scalars(select(Attachment.file_id)).all()
        assert len(set(file_ids)) == 1 and None not in file_ids
        assert len(session.scalars(select(MediaFile)).all()) == 1


def test_an_outage_is_retried_with_backoff_then_recovers(
    app: Flask, fake: FakeGraph, fetcher: Fetcher, clock: Clock
) -> None:
    media_id = fake.add_media(PICTURE, "image/png")
    post_notification(app.test_client(), image_message(media_id))
    fake.fail_all(503, headers={"Retry-After": "30"})
    assert fetcher.run_once() == 1
    waiting = attachment(app)
    assert (waiting.state, waiting.attempts) == ("pending", 1)
    assert waiting.claimed_by is None
    assert "131016" in (waiting.error or "")
    assert waiting.next_attempt_at is not None
    assert waiting.next_attempt_at >= clock.now + timedelta(seconds=30)  # Retry-After honoured
    assert fetcher.run_once() == 0  # not before then
    clock.advance(seconds=31)
    assert fetcher.run_once() == 1  # still down: waits longer
    second = attachment(app)
    assert second.attempts == 2 and second.next_attempt_at is not None
    fake.recover()
    clock.now = second.next_attempt_at
    assert fetcher.run_once() == 1
    done = attachment(app)
    assert (done.state, done.attempts, done.error) == ("stored", 3, None)


def test_a_connection_refused_is_retried(app: Flask, fake: FakeGraph, clock: Clock) -> None:
    media_id = fake.add_media(PICTURE, "image/png")
    post_notification(app.test_client(), image_message(media_id))
    config = app.config["TRESEN"]
    down = Fetcher(
        get_db(app),
        MediaClient("http://127.0.0.1:9", config.graph_api_version, TOKEN),
        get_media_store(app),
        clock=clock,
        cleanup_every=None,
    )
    down.run_once()
    waiting = attachment(app)
    assert (waiting.state, waiting.attempts) == ("pending", 1)
    assert "connection error" in (waiting.error or "")


def test_media_unreachable_for_seven_days_is_given_up(
    app: Flask, fake: FakeGraph, fetcher: Fetcher, clock: Clock
) -> None:
    post_notification(app.test_client(), image_message(fake.add_media(PICTURE, "image/png")))
    fake.fail_all(500)
    tries = 0
    while attachment(app).state == AttachmentState.PENDING and tries < 40:
        tries += fetcher.run_once()
        clock.advance(hours=6)
    failed = attachment(app)
    assert (failed.state, failed.failure) == ("failed", Failure.UNREACHABLE)
    assert "HTTP 500" in (failed.error or "")
    assert timedelta(days=6) < clock.now - failed.created_at < timedelta(days=7, hours=7)


def test_a_refused_token_is_recorded_without_the_token(
    app: Flask, fake: FakeGraph, fetcher: Fetcher
) -> None:
    post_notification(app.test_client(), image_message(fake.add_media(PICTURE, "image/png")))
    fake.script([(400, graph_error(190, f"Malformed access token {TOKEN}"))])
    fetcher.run_once()
    failed = attachment(app)
    assert (failed.state, failed.failure) == ("failed", Failure.REFUSED)
    assert "190" in (failed.error or "") and "[token]" in (failed.error or "")
    assert TOKEN not in (failed.error or "")


def test_a_store_that_is_away_is_retried(
    app: Flask, fake: FakeGraph, fetcher: Fetcher, tmp_path: Path
) -> None:
    class Away(LocalStore):
        def put(self, *args: Any, **kwargs: Any) -> Any:
            raise StoreUnavailable("the store does not answer")

    fetcher.store = Away(tmp_path / "away")
    post_notification(app.test_client(), image_message(fake.add_media(PICTURE, "image/png")))
    fetcher.run_once()
    waiting = attachment(app)
    assert (waiting.state, waiting.attempts) == ("pending", 1)
    assert "does not answer" in (waiting.error or "")


def test_media_deleted_for_everyone_goes_with_its_message(
    app: Flask, fake: FakeGraph, fetcher: Fetcher
) -> None:
    doc = image_message(fake.add_media(PICTURE, "image/png"))
    wamid = doc["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    client = app.test_client()
    post_notification(client, doc)
    fetcher.run_once()
    revoke = {"id": "wamid.revoke1", "type": "revoke", "revoke": {"original_message_id": wamid}}
    post_notification(client, notification(revoke))
    with get_db(app).session() as session:
        assert session.scalars(select(Attachment)).all() == []
        # The file stays until the cleanup finds nothing uses it.
        assert len(session.scalars(select(MediaFile)).all()) == 1


def test_a_text_message_costs_no_attachment_statement(app: Flask) -> None:
    statements: list[str] = []
    engine = get_db(app).engine

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        post_notification(app.test_client(), notification())
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert not [s for s in statements if "attachments" in s]
    with get_db(app).session() as session:
        assert session.scalars(select(Attachment)).all() == []


@pytest.mark.parametrize(
    ("kind", "media"),
    [
        ("audio", {"mime_type": "audio/ogg; codecs=opus", "voice": True}),
        ("sticker", {"mime_type": "image/webp", "animated": True}),
        ("video", {"mime_type": "video/mp4", "caption": "hier"}),
        ("document", {"mime_type": "application/pdf", "filename": "Preise.pdf"}),
    ],
)
def test_each_media_kind_gets_its_attachment(
    app: Flask, fake: FakeGraph, fetcher: Fetcher, kind: str, media: dict[str, Any]
) -> None:
    data = os.urandom(2000)
    media_id = fake.add_media(data, media["mime_type"])
    post_notification(
        app.test_client(), notification({"type": kind, kind: {"id": media_id, **media}})
    )
    row = attachment(app)
    assert (row.kind, row.voice, row.animated) == (
        kind,
        bool(media.get("voice")),
        bool(media.get("animated")),
    )
    assert row.filename == media.get("filename")
    fetcher.run_once()
    done = attachment(app)
    assert done.state == AttachmentState.STORED
    assert stored_file(app, done.file_id).content_type == media["mime_type"]


# -- the queue -------------------------------------------------------------------------------


def test_a_claim_is_one_workers_until_its_lease_ends(
    app: Flask, fake: FakeGraph, clock: Clock
) -> None:
    client = app.test_client()
    for _ in range(3):
        post_notification(client, image_message(fake.add_media(os.urandom(50), "image/png")))
    database = get_db(app)
    lease = timedelta(minutes=10)
    first = claim(database, "a", 2, now=clock.now, lease=lease)
    second = claim(database, "b", 5, now=clock.now, lease=lease)
    assert len(first) == 2 and len(second) == 1
    assert not {c.id for c in first} & {c.id for c in second}
    assert claim(database, "c", 5, now=clock.now, lease=lease) == []
    # "a" and "b" died: once their leases end, their claims are taken over, and a late word
    # of theirs is ignored.
    later = clock.now + lease + timedelta(seconds=1)
    taken = claim(database, "c", 5, now=later, lease=lease)
    assert {c.id for c in taken} == {c.id for c in first + second}
    assert record(database, "a", first[0], Unavailable("late"), now=later) == "lost"


def test_workers_claiming_at_once_never_share_one(
    app: Flask, fake: FakeGraph, clock: Clock
) -> None:
    client = app.test_client()
    for _ in range(40):
        post_notification(client, image_message(fake.add_media(os.urandom(50), "image/png")))
    database = get_db(app)
    got: dict[str, list[int]] = {}
    start = threading.Barrier(4)

    def worker(name: str) -> None:
        start.wait()
        ids: list[int] = []
        while batch := claim(database, name, 3, now=clock.now):
            ids += [c.id for c in batch]
        got[name] = ids

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    every = [i for ids in got.values() for i in ids]
    assert len(every) == len(set(every)) == 40


def test_the_fetcher_thread_is_woken_by_the_processor(app: Flask, fake: FakeGraph) -> None:
    """The embedded default's wiring: processor and fetcher on threads of one process."""
    from bot.worker import start_in_background

    fake.latency = 0.0
    dispatcher, stop = start_in_background(app)
    try:
        media_id = fake.add_media(PICTURE, "image/png")
        body_doc = image_message(media_id)
        import json

        from tests.conftest import signed_headers

        body = json.dumps(body_doc).encode()
        response = app.test_client().post(
            "/webhooks/whatsapp", data=body, headers=signed_headers(body)
        )
        assert response.status_code == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with get_db(app).session() as session:
                state = session.scalars(select(Attachment.state)).first()
            if state == AttachmentState.STORED:
                break
            time.sleep(0.05)
        assert state == AttachmentState.STORED
    finally:
        stop.set()
        dispatcher.join(10)


# -- console mode ------------------------------------------------------------------------------


def console_app(database_url: str, tmp_path: Path, **env: str) -> Flask:
    app = create_app(make_env(database_url, **env), instance_path=tmp_path / "instance")
    get_db(app).upgrade()
    return app


def test_console_mode_without_a_graph_api_marks_media_console(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = console_app(database_url, tmp_path)
    client = media_client(app.config["TRESEN"], pool_size=1)
    assert client is None
    post_notification(app.test_client(), image_message("42"))
    Fetcher(get_db(app), None, get_media_store(app), cleanup_every=None).run_once()
    failed = attachment(app)
    assert (failed.state, failed.failure) == ("failed", Failure.CONSOLE)
    assert "GRAPH_API_URL" in caplog.text
    get_db(app).dispose()


def test_console_mode_fetches_from_a_fake_graph_api_without_a_token(
    database_url: str, tmp_path: Path
) -> None:
    with FakeGraph() as fake:
        app = console_app(database_url, tmp_path, GRAPH_API_URL=fake.url)
        media_id = fake.add_media(PICTURE, "image/png")
        post_notification(app.test_client(), image_message(media_id))
        client = media_client(app.config["TRESEN"], pool_size=1)
        assert client is not None
        Fetcher(get_db(app), client, get_media_store(app), cleanup_every=None).run_once()
        assert attachment(app).state == AttachmentState.STORED
        get_db(app).dispose()


# -- pure parts --------------------------------------------------------------------------------


def test_sha256_in_hex_or_base64() -> None:
    digest = hashlib.sha256(b"x")
    hexed = digest.hexdigest()
    assert as_hex_sha256(hexed.upper()) == hexed
    assert as_hex_sha256(base64.b64encode(digest.digest()).decode()) == hexed
    assert as_hex_sha256(base64.urlsafe_b64encode(digest.digest()).decode().rstrip("=")) == hexed
    assert as_hex_sha256("not a digest") is None
    assert as_hex_sha256(base64.b64encode(b"short").decode()) is None
    assert as_hex_sha256(None) is None


# -- the worker process --------------------------------------------------------------------------


@pytest.mark.slow
def test_the_worker_process_fetches_what_its_inbound_child_stored(
    database_url: str, tmp_path: Path, fake: FakeGraph, store_url: str
) -> None:
    """web and worker as the Procfile runs them: the processor (the worker's child process)
    stores the attachment, the worker's fetcher (woken through the child's pipe) fetches it."""
    import json

    import requests

    from bot.whatsapp.signature import sign
    from tests.conftest import APP_SECRET
    from tests.processes import Process, gunicorn, run

    env = make_env(
        database_url,
        WHATSAPP_TOKEN=TOKEN,
        WHATSAPP_PHONE_NUMBER_ID="106540352242922",
        WHATSAPP_VERIFY_TOKEN="verify",
        SECRET_KEY="k" * 32,
        GRAPH_API_URL=fake.url,
        MEDIA_STORE=store_url,
    )
    assert run(["flask", "--app", "app", "db", "upgrade"], env).returncode == 0
    web, url = gunicorn(env, tmp_path / "web.log")
    worker = Process(["flask", "--app", "app", "worker"], env, tmp_path / "worker.log")
    with web, worker:
        body = json.dumps(image_message(fake.add_media(PICTURE, "image/png"))).encode()
        headers = {
            "X-Hub-Signature-256": sign(body, APP_SECRET),
            "Content-Type": "application/json",
        }
        response = requests.post(f"{url}/webhooks/whatsapp", data=body, headers=headers, timeout=10)
        assert response.status_code == 200
        app = create_app(env, instance_path=tmp_path / "instance")
        deadline = time.monotonic() + 30
        state = None
        while time.monotonic() < deadline and state != AttachmentState.STORED:
            time.sleep(0.1)
            with get_db(app).session() as session:
                state = session.scalars(select(Attachment.state)).first()
        assert state == AttachmentState.STORED, worker.output()[-3000:]
        file = stored_file(app, attachment(app).file_id)
        assert read_all(get_media_store(app), file.sha256) == PICTURE
        get_db(app).dispose()
