"""The health checks: /healthz (the database) and /healthz/outbox (is the outbox moving), and
the worker heartbeat that the latter reads."""

from __future__ import annotations

import itertools
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot import heartbeat
from bot.db import Database, get_db
from bot.models import Contact, Message, WorkerHeartbeat
from bot.outbound import outbox
from bot.whatsapp.payloads import text_payload
from tests.processes import free_port

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
NUMBERS = itertools.count()


@pytest.fixture
def at(app: Flask) -> list[datetime]:
    """The web layer's clock, fixed; tests move it by assigning at[0]."""
    moment = [NOW]
    app.config["TRESEN_CLOCK"] = lambda: moment[0]
    return moment


def queue(app: Flask, *, created: datetime, status: str = "queued", n: int = 1) -> list[int]:
    ids = []
    with get_db(app).session() as session:
        for _ in range(n):
            contact = Contact(wa_id=f"4917{next(NUMBERS):08d}", name="Kim")
            session.add(contact)
            session.flush()
            message = outbox.enqueue(
                session, contact, text_payload(contact.wa_id or "", "Hallo"), now=created
            )
            message.status = status
            ids.append(message.id)
    return ids


def beat(app: Flask, name: str, at: datetime, sent: int = 0) -> None:
    with get_db(app).session() as session:
        heartbeat.beat(session, name, sent, now=at)


def get_outbox(client: FlaskClient) -> tuple[int, dict[str, Any]]:
    response = client.get("/healthz/outbox")
    return response.status_code, response.get_json()


def test_healthz_keeps_its_contract(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_an_empty_outbox_without_workers_is_healthy(
    client: FlaskClient, at: list[datetime]
) -> None:
    status, doc = get_outbox(client)
    assert status == 200
    assert doc == {
        "status": "ok",
        "oldest_unsent_age": None,
        "heartbeat_age": None,
        "queued": 0,
        "failed": 0,
        "problems": [],
    }


@pytest.mark.parametrize(
    ("queued_ago", "beat_ago", "expected", "problem"),
    [
        # a fresh message and a live worker
        (timedelta(seconds=30), timedelta(seconds=5), 200, None),
        # 4:59 is still fine, 5:01 is not
        (timedelta(seconds=299), timedelta(seconds=5), 200, None),
        (timedelta(seconds=301), timedelta(seconds=5), 503, "waited 301s"),
        # messages waiting, the only worker last seen 61 s ago
        (timedelta(seconds=10), timedelta(seconds=61), 503, "no worker seen"),
        (timedelta(seconds=10), timedelta(seconds=59), 200, None),
        # messages waiting and no worker ever
        (timedelta(seconds=10), None, 503, "last never"),
    ],
)
def test_outbox_staleness(
    app: Flask,
    client: FlaskClient,
    at: list[datetime],
    queued_ago: timedelta,
    beat_ago: timedelta | None,
    expected: int,
    problem: str | None,
) -> None:
    queue(app, created=NOW - queued_ago)
    if beat_ago is not None:
        beat(app, "w1", NOW - beat_ago)
    status, doc = get_outbox(client)
    assert status == expected
    assert doc["oldest_unsent_age"] == queued_ago.total_seconds()
    assert doc["heartbeat_age"] == (beat_ago.total_seconds() if beat_ago else None)
    assert doc["queued"] == 1
    assert doc["status"] == ("ok" if expected == 200 else "stale")
    if problem is None:
        assert doc["problems"] == []
    else:
        assert any(problem in p for p in doc["problems"]), doc["problems"]


def test_no_heartbeat_is_fine_while_nothing_waits(
    app: Flask, client: FlaskClient, at: list[datetime]
) -> None:
    queue(app, created=NOW - timedelta(hours=1), status="sent")
    queue(app, created=NOW - timedelta(hours=1), status="failed", n=2)
    beat(app, "gone", NOW - timedelta(hours=1))
    status, doc = get_outbox(client)
    assert status == 200
    assert (doc["queued"], doc["failed"], doc["oldest_unsent_age"]) == (0, 2, None)
    assert doc["heartbeat_age"] == 3600.0


def test_the_newest_heartbeat_counts_and_the_oldest_message(
    app: Flask, client: FlaskClient, at: list[datetime]
) -> None:
    queue(app, created=NOW - timedelta(seconds=40))
    queue(app, created=NOW - timedelta(seconds=20), status="sending")
    beat(app, "dead", NOW - timedelta(minutes=30))
    beat(app, "alive", NOW - timedelta(seconds=3))
    status, doc = get_outbox(client)
    assert status == 200
    assert (doc["oldest_unsent_age"], doc["heartbeat_age"], doc["queued"]) == (40.0, 3.0, 2)


def unreachable() -> Database:
    """A database nobody listens for: every connection attempt is refused at once."""
    return Database(f"postgresql+psycopg://tresen@127.0.0.1:{free_port()}/none")


def test_outbox_health_answers_503_when_the_database_does_not(
    app: Flask, client: FlaskClient
) -> None:
    app.extensions["tresen.db"] = unreachable()
    response = client.get("/healthz/outbox")
    assert response.status_code == 503
    assert response.get_json() == {"status": "unavailable", "reason": "database does not answer"}
    assert client.get("/healthz").status_code == 503


def test_heartbeat_upserts_keeps_started_at_and_counts(app: Flask) -> None:
    beat(app, "w1", NOW, sent=0)
    beat(app, "w1", NOW + timedelta(seconds=10), sent=7)
    with get_db(app).session() as session:
        [row] = session.scalars(select(WorkerHeartbeat))
        assert (row.name, row.started_at, row.last_seen_at, row.sent) == (
            "w1",
            NOW,
            NOW + timedelta(seconds=10),
            7,
        )
        assert heartbeat.newest(session) == NOW + timedelta(seconds=10)


def test_heartbeat_thread_beats_then_removes_its_row_on_stop(app: Flask) -> None:
    database = Database(get_db(app).url)
    counter = [0]
    seen = threading.Event()
    clock_calls = []

    def sent() -> int:
        counter[0] += 5
        if counter[0] >= 15:
            seen.set()
        return counter[0]

    def clock() -> datetime:
        clock_calls.append(1)
        return NOW + timedelta(seconds=len(clock_calls))

    hb = heartbeat.Heartbeat(database, "w-thread", sent, interval=0.01, clock=clock)
    stop = threading.Event()
    thread = threading.Thread(target=hb.run, args=(stop,))
    thread.start()
    assert seen.wait(10)
    with get_db(app).session() as session:
        row = session.get(WorkerHeartbeat, "w-thread")
        assert row is not None and row.sent >= 5 and row.started_at == NOW + timedelta(seconds=1)
    stop.set()
    thread.join(10)
    assert not thread.is_alive()
    with get_db(app).session() as session:
        assert session.scalars(select(WorkerHeartbeat)).all() == []
    database.dispose()


def test_heartbeat_survives_a_database_error() -> None:
    hb = heartbeat.Heartbeat(unreachable(), "w", lambda: 0)
    assert hb.beat() is False
    hb.remove()  # logs, does not raise


def test_outbound_rows_untouched_by_health_checks(
    app: Flask, client: FlaskClient, at: list[datetime]
) -> None:
    [mid] = queue(app, created=NOW - timedelta(minutes=10))
    assert client.get("/healthz/outbox").status_code == 503
    with get_db(app).session() as session:
        message = session.get_one(Message, mid)
        assert (message.status, message.attempts) == ("queued", 0)
