"""Files nothing uses are deleted, row and bytes, after a grace period; used ones stay."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import Column, ForeignKey, Integer, Table, select

from bot.db import get_db
from bot.media import cleanup
from bot.media.store import LocalStore, MediaStore, open_store
from bot.models import (
    Attachment,
    AttachmentState,
    Contact,
    Direction,
    MediaFile,
    MediaUpload,
    Message,
    MessageStatus,
    utcnow,
)


def put_file(app: Flask, store: MediaStore, *, age: timedelta) -> MediaFile:
    stored = store.put([os.urandom(100)])
    with get_db(app).session() as session:
        row = MediaFile(
            sha256=stored.sha256,
            size=stored.size,
            content_type="image/jpeg",
            created_at=utcnow() - age,
        )
        session.add(row)
    return row


def attach(app: Flask, file: MediaFile) -> None:
    with get_db(app).session() as session:
        contact = Contact(wa_id=f"49151{os.getpid()}{file.id}")
        session.add(contact)
        session.flush()
        message = Message(
            contact_id=contact.id,
            direction=Direction.IN,
            wamid=f"wamid.{file.sha256[:20]}",
            type="image",
            status=MessageStatus.RECEIVED,
            created_at=utcnow(),
            timestamp=utcnow(),
            priority=0,
            attempts=0,
        )
        session.add(message)
        session.flush()
        session.add(
            Attachment(
                message_id=message.id,
                kind="image",
                state=AttachmentState.STORED,
                file_id=file.id,
            )
        )


def remaining(app: Flask) -> set[str]:
    with get_db(app).session() as session:
        return set(session.scalars(select(MediaFile.sha256)))


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> MediaStore:
    if request.param == "local":
        return LocalStore(tmp_path / "media")
    return open_store(request.getfixturevalue("s3_media_url"))


def test_unused_old_files_go_used_and_new_ones_stay(app: Flask, store: MediaStore) -> None:
    unused = put_file(app, store, age=timedelta(days=2))
    used = put_file(app, store, age=timedelta(days=2))
    fresh = put_file(app, store, age=timedelta(minutes=5))  # an upload not linked yet
    attach(app, used)

    swept = cleanup.sweep(get_db(app), store, now=utcnow())

    assert swept.files == 1
    assert remaining(app) == {used.sha256, fresh.sha256}
    assert not store.exists(unused.sha256)
    assert store.exists(used.sha256) and store.exists(fresh.sha256)
    assert cleanup.sweep(get_db(app), store, now=utcnow()).files == 0


def test_an_upload_to_meta_is_no_use_and_goes_with_its_file(app: Flask, tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "media")
    file = put_file(app, store, age=timedelta(days=2))
    with get_db(app).session() as session:
        session.add(
            MediaUpload(
                file_id=file.id,
                phone_number_id="106540352242922",
                media_id="1234",
                uploaded_at=utcnow(),
                expires_at=utcnow() + timedelta(days=30),
            )
        )
    assert cleanup.sweep(get_db(app), store, now=utcnow()).files == 1
    with get_db(app).session() as session:
        assert session.scalars(select(MediaUpload)).all() == []
    assert not store.exists(file.sha256)


def test_uses_are_every_foreign_key_to_media_files() -> None:
    names = {f"{column.table.name}.{column.name}" for column in cleanup.uses()}
    assert "attachments.file_id" in names
    assert "media_uploads.file_id" not in names  # ON DELETE CASCADE: the file's own


def test_a_foreign_key_added_later_counts_by_itself() -> None:
    from bot.models import Base

    extra = Table(
        "quick_reply_files_example",
        Base.metadata,
        Column("id", Integer, primary_key=True),
        Column("file_id", ForeignKey("media_files.id")),
    )
    try:
        names = {f"{column.table.name}.{column.name}" for column in cleanup.uses()}
        assert "quick_reply_files_example.file_id" in names
    finally:
        Base.metadata.remove(extra)


def test_the_fetcher_cleans_up_when_it_starts_and_every_hour(app: Flask, tmp_path: Path) -> None:
    import threading
    import time

    from bot.media.fetcher import Fetcher

    store = LocalStore(tmp_path / "media")
    now = [utcnow()]
    fetcher = Fetcher(get_db(app), None, store, clock=lambda: now[0], poll=0.01)
    first = put_file(app, store, age=timedelta(days=2))
    stop = threading.Event()
    thread = threading.Thread(target=fetcher.run, args=(stop,))
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while first.sha256 in remaining(app) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert first.sha256 not in remaining(app)
        second = put_file(app, store, age=timedelta(days=2))
        time.sleep(0.2)
        assert second.sha256 in remaining(app)  # not before the hour is up
        now[0] += timedelta(hours=1, seconds=1)
        deadline = time.monotonic() + 10
        while second.sha256 in remaining(app) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert second.sha256 not in remaining(app)
    finally:
        stop.set()
        thread.join(10)


def test_a_file_the_settings_name_is_kept(app: Flask, tmp_path: Path) -> None:
    """A keyword rule's price list is named in the settings by its SHA-256, not by a key."""
    from bot.models import Business
    from bot.settings.stored import seed_demo

    store = LocalStore(tmp_path / "media")
    named = put_file(app, store, age=timedelta(days=2))
    unnamed = put_file(app, store, age=timedelta(days=2))
    with get_db(app).session() as session:
        seed_demo(session)
    with get_db(app).session() as session:
        business = session.get(Business, 1)
        assert business is not None
        business.settings_yaml += f"\n# file: {{name: Preise.pdf, sha256: {named.sha256}}}\n"
    assert cleanup.sweep(get_db(app), store, now=utcnow()).files == 1
    assert remaining(app) == {named.sha256}
    assert store.exists(named.sha256) and not store.exists(unnamed.sha256)
