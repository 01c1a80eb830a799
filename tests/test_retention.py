"""Retention: old messages and media deleted by the leader's daily pass, in batches, with the
weekly statistics' counts kept as daily totals (an injected clock throughout)."""

from __future__ import annotations

import os
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, insert, select

from bot.admin import weekly
from bot.broadcasts.runs import RunStatus, business_settings
from bot.broadcasts.scheduler import SchedulerService
from bot.db import Database, get_db
from bot.media.store import LocalStore, MediaStore
from bot.models import (
    Attachment,
    AttachmentState,
    Broadcast,
    BroadcastRun,
    Contact,
    Direction,
    MediaFile,
    Message,
    MessageStatus,
    MessageTotal,
)
from bot.retention import DailyRetention
from bot.rules import Rule
from bot.settings import dump_settings
from bot.settings.stored import save_settings
from bot.settings.values import Retention
from tests.test_admin import NOW as ADMIN_NOW
from tests.test_admin import Clock, demo_owner

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)  # a Wednesday


def keep(app: Flask, messages_days: int | None, media_days: int | None = None) -> None:
    with get_db(app).session() as session:
        settings = business_settings(session)
        changed = replace(settings, retention=Retention(messages_days, media_days))
        save_settings(session, dump_settings(changed))


def contact(app: Flask, wa_id: str = "4915112345678") -> int:
    with get_db(app).session() as session:
        row = Contact(wa_id=wa_id)
        session.add(row)
        session.flush()
        return row.id


def message(
    app: Flask,
    contact_id: int,
    at: datetime,
    *,
    direction: Direction = Direction.IN,
    status: MessageStatus = MessageStatus.RECEIVED,
    rule: Rule | None = None,
    **more: Any,
) -> int:
    with get_db(app).session() as session:
        row = Message(
            contact_id=contact_id,
            direction=direction,
            type=more.pop("type", "text"),
            text="Hallo",
            status=status,
            rule=rule,
            timestamp=at,
            created_at=at,
            **more,
        )
        session.add(row)
        session.flush()
        return row.id


def ids(app: Flask) -> set[int]:
    with get_db(app).session() as session:
        return set(session.scalars(select(Message.id)))


def test_old_messages_go_newer_and_pending_stay(app: Flask) -> None:
    keep(app, messages_days=30)
    anna = contact(app)
    old = NOW - timedelta(days=40)
    received = message(app, anna, old)
    answered = message(
        app, anna, old, direction=Direction.OUT, status=MessageStatus.READ, rule=Rule.MANUAL
    )
    queued = message(app, anna, old, direction=Direction.OUT, status=MessageStatus.QUEUED)
    deferred = message(app, anna, old, direction=Direction.OUT, status=MessageStatus.DEFERRED)
    sending = message(app, anna, old, direction=Direction.OUT, status=MessageStatus.SENDING)
    with get_db(app).session() as session:
        broadcast = Broadcast(kind="text", text="Hi", audience="all", timezone="Europe/Berlin")
        session.add(broadcast)
        session.flush()
        run = BroadcastRun(
            broadcast_id=broadcast.id, due_at=old, status=RunStatus.WRITING, started_at=old
        )
        session.add(run)
        session.flush()
        run_id = run.id
    of_running_broadcast = message(
        app,
        anna,
        old,
        direction=Direction.OUT,
        status=MessageStatus.SENT,
        rule=Rule.BROADCAST,
        broadcast_run_id=run_id,
    )
    newer = message(app, anna, NOW - timedelta(days=10), in_reply_to=received)

    job = DailyRetention(get_db(app), None)
    removed = job(NOW)

    assert removed is not None and removed.messages == 2
    assert ids(app) == {queued, deferred, sending, of_running_broadcast, newer}
    assert received not in ids(app) and answered not in ids(app)
    with get_db(app).session() as session:
        reply = session.get(Message, newer)
        assert reply is not None and reply.in_reply_to is None
    # Once a day: the same day again does nothing; the next day runs again.
    message(app, anna, NOW - timedelta(days=31))
    assert job(NOW + timedelta(hours=23)) is None
    again = job(NOW + timedelta(days=1))
    assert again is not None and again.messages == 1


def test_nothing_is_deleted_without_retention_settings(app: Flask) -> None:
    keep(app, None, None)
    anna = contact(app)
    old = message(app, anna, NOW - timedelta(days=4000))
    removed = DailyRetention(get_db(app), None)(NOW)
    assert removed is not None and removed.messages == 0
    assert ids(app) == {old}


def put(app: Flask, store: MediaStore) -> int:
    stored = store.put([os.urandom(64)])
    with get_db(app).session() as session:
        row = MediaFile(
            sha256=stored.sha256,
            size=stored.size,
            content_type="image/jpeg",
            created_at=NOW - timedelta(days=100),
        )
        session.add(row)
        session.flush()
        return row.id


def attach(app: Flask, message_id: int, file_id: int) -> None:
    with get_db(app).session() as session:
        session.add(
            Attachment(
                message_id=message_id, kind="image", state=AttachmentState.STORED, file_id=file_id
            )
        )


def keys(app: Flask) -> dict[int, str]:
    with get_db(app).session() as session:
        return {
            row.id: row.sha256 for row in session.execute(select(MediaFile.id, MediaFile.sha256))
        }


def test_old_media_goes_files_used_elsewhere_stay(app: Flask, tmp_path: Path) -> None:
    keep(app, messages_days=None, media_days=10)
    store = LocalStore(tmp_path / "media")
    anna = contact(app)
    old, new = NOW - timedelta(days=20), NOW - timedelta(days=2)
    only_old, also_newer, also_broadcast, to_send = (put(app, store) for _ in range(4))
    shas = keys(app)
    first = message(app, anna, old, type="image")
    attach(app, first, only_old)
    for file_id in (also_newer, also_broadcast):
        attach(app, message(app, anna, old, type="image"), file_id)
    attach(app, message(app, anna, new, type="image"), also_newer)
    with get_db(app).session() as session:
        session.add(
            Broadcast(
                kind="text",
                text="Hi",
                audience="all",
                timezone="Europe/Berlin",
                file_id=also_broadcast,
                media_kind="image",
            )
        )
    queued = message(
        app, anna, old, type="image", direction=Direction.OUT, status=MessageStatus.QUEUED
    )
    attach(app, queued, to_send)

    removed = DailyRetention(get_db(app), store)(NOW)

    assert removed is not None
    assert (removed.messages, removed.media, removed.files) == (0, 3, 1)
    assert set(keys(app)) == {also_newer, also_broadcast, to_send}
    assert not store.exists(shas[only_old])
    assert all(store.exists(shas[i]) for i in (also_newer, also_broadcast, to_send))
    with get_db(app).session() as session:
        expired = session.scalar(select(Attachment).where(Attachment.message_id == first))
        assert expired is not None
        assert (expired.file_id, expired.state, expired.failure) == (None, "failed", "expired")
    assert len(ids(app)) == 5  # the messages themselves stay


def test_weekly_statistics_keep_the_counts_of_deleted_weeks(app: Flask) -> None:
    keep(app, messages_days=30)
    anna, ben = contact(app), contact(app, "4915187654321")
    week_ago = NOW - timedelta(weeks=8)
    for who in (anna, anna, ben):
        message(app, who, week_ago)
    for who in (anna, ben):
        message(
            app,
            who,
            week_ago + timedelta(hours=1),
            direction=Direction.OUT,
            status=MessageStatus.READ,
            rule=Rule.MANUAL,
        )
    message(app, anna, week_ago, direction=Direction.OUT, status=MessageStatus.SENT, rule="away")
    message(app, anna, NOW - timedelta(days=1))  # this week's, kept

    def weeks() -> list[tuple[int, int, int, int]]:
        with get_db(app).session() as session:
            settings = business_settings(session)
            found = weekly.load(session, settings.hours, weeks=12, at=NOW)
        return [(w.received, w.personal, w.automatic, w.broadcast) for w in found]

    before = weeks()
    assert before[-9] == (3, 2, 1, 0) and before[-1] == (1, 0, 0, 0)
    removed = DailyRetention(get_db(app), None)(NOW)
    assert removed is not None and removed.messages == 6
    assert weeks() == before
    with get_db(app).session() as session:
        assert session.scalar(select(func.sum(MessageTotal.count))) == 6


def test_the_scheduler_leader_runs_retention_on_its_pass(app: Flask) -> None:
    calls: list[datetime] = []
    service = SchedulerService(get_db(app), clock=lambda: NOW, retention=calls.append)
    service.tend(threading.Event())
    assert calls == [NOW]


def test_100000_old_messages_go_in_batches_while_the_inbox_answers(
    app: Flask, client: FlaskClient
) -> None:
    app.config["TRESEN_CLOCK"] = Clock(NOW)
    admin = demo_owner(app, client)
    keep(app, messages_days=30)
    database = get_db(app)
    with database.session() as session:  # the demo shop's own conversations
        before = session.scalar(select(func.count()).select_from(Message)) or 0
    anna = contact(app)
    old = NOW - timedelta(days=60)
    rows = [
        {
            "contact_id": anna,
            "direction": "in",
            "type": "text",
            "text": f"Nachricht {i}",
            "status": "received",
            "timestamp": old + timedelta(seconds=i),
            "created_at": old,
            "priority": 0,
            "attempts": 0,
        }
        for i in range(100_000)
    ]
    with database.session() as session:
        session.execute(insert(Message), rows)
    recent = message(app, anna, NOW - timedelta(days=1))

    # Another engine reads what the inbox reads between the job's batches: each batch is its
    # own committed transaction, so the reader sees the count go down and never waits.
    inbox = Database(database.url, pool_size=1)
    seen: list[tuple[int, int]] = []

    def between(done: int) -> None:
        with inbox.session() as session:
            left = session.scalar(select(func.count()).select_from(Message))
            latest = session.scalar(
                select(Message.id).where(Message.contact_id == anna).order_by(Message.id.desc())
            )
        assert latest == recent
        seen.append((done, left or 0))
        if done % 10_000 == 0:  # and the inbox itself, as the shop owner opens it
            assert admin.get("/admin/inbox").status_code == 200
            page = admin.get(f"/admin/inbox/{anna}")
            assert page.status_code == 200 and "Hallo" in page.get_data(as_text=True)

    try:
        removed = DailyRetention(database, None, batch=1000, between=between)(NOW)
    finally:
        inbox.dispose()
    assert removed is not None and removed.messages == 100_000
    assert len(seen) == 100
    assert all(left == before + 100_001 - done for done, left in seen)
    assert recent in ids(app)
    with database.session() as session:
        assert session.scalar(select(func.sum(MessageTotal.count))) == 100_000


def test_the_conversation_says_a_file_was_deleted_after_the_retention_period(
    app: Flask, client: FlaskClient, tmp_path: Path
) -> None:
    app.config["TRESEN_CLOCK"] = Clock(ADMIN_NOW)
    admin = demo_owner(app, client)
    keep(app, messages_days=None, media_days=10)
    store = LocalStore(tmp_path / "media")
    anna = contact(app)
    photo = message(app, anna, ADMIN_NOW - timedelta(days=20), type="image")
    attach(app, photo, put(app, store))
    DailyRetention(get_db(app), store)(ADMIN_NOW)
    page = admin.get(f"/admin/inbox/{anna}").get_data(as_text=True)
    assert "nach der in den Einstellungen festgelegten Aufbewahrungsfrist gelöscht" in page
