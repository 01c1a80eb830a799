"""The outbox and dispatcher against a fake Graph API on 127.0.0.1: retries, failures, outages,
crashes, several dispatchers, and the shared send rate."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from sqlalchemy import select

from bot.db import Database, get_db
from bot.models import Contact, Message
from bot.outbound import outbox
from bot.outbound.dispatcher import Dispatcher
from bot.outbound.errors import AuthError, GraphError, RetryLater
from bot.outbound.graph import GraphClient, text_payload
from bot.outbound.ratelimit import SharedRate
from tests.fakegraph import FakeGraph, Reply, graph_error
from tests.processes import Process

TOKEN = "EAAG-test-token"
PHONE = "106540352242922"


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph(token=TOKEN) as fake:
        yield fake


def queue(app: Flask, n: int, *, prefix: str = "49151000") -> list[int]:
    ids = []
    now = datetime.now(UTC)
    with get_db(app).session() as session:
        for i in range(n):
            contact = Contact(wa_id=f"{prefix}{i:05d}", name=f"Kunde {i}")
            session.add(contact)
            session.flush()
            payload = text_payload(contact.wa_id or "", f"Nachricht {i}")
            ids.append(outbox.enqueue(session, contact, payload, now=now, text=f"Nachricht {i}").id)
    return ids


def rows(app: Flask) -> list[Message]:
    with get_db(app).session() as session:
        return list(session.scalars(select(Message).order_by(Message.id)))


class Running:
    """A dispatcher on a thread, stopped on exit."""

    def __init__(self, app: Flask, graph: FakeGraph, **kwargs: object) -> None:
        database = Database(get_db(app).url)
        client = GraphClient(graph.url, "v24.0", PHONE, TOKEN, pool_size=16)
        self.dispatcher = Dispatcher(
            database, client, rate=None, concurrency=8, poll=0.05, **kwargs
        )  # type: ignore[arg-type]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.dispatcher.run, args=(self.stop,))

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)
        assert not self.thread.is_alive()


def wait_until(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def settled(app: Flask) -> bool:
    return all(m.status in ("sent", "failed") for m in rows(app))


def test_queued_messages_are_sent_in_the_cloud_api_form(app: Flask, graph: FakeGraph) -> None:
    queue(app, 5)
    with Running(app, graph):
        wait_until(lambda: settled(app))
    stored = rows(app)
    assert [m.status for m in stored] == ["sent"] * 5
    assert all(m.wamid and m.wamid.startswith("wamid.") for m in stored)
    received = graph.requests
    assert {r.path for r in received} == {f"/v24.0/{PHONE}/messages"}
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in received)
    assert sorted(r.json["to"] for r in received) == [f"49151000{i:05d}" for i in range(5)]
    first = next(r.json for r in received if r.json["to"] == "4915100000000")
    assert first == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "4915100000000",
        "type": "text",
        "text": {"body": "Nachricht 0", "preview_url": False},
    }


def test_server_errors_and_429_are_retried_honouring_retry_after(
    app: Flask, graph: FakeGraph
) -> None:
    graph.script(
        [
            Reply(500, "<html>Internal Server Error</html>"),
            Reply(429, graph_error(130429, "Rate limit hit"), {"Retry-After": "2"}),
        ]
    )
    queue(app, 1)
    started = time.monotonic()
    with Running(app, graph):
        wait_until(lambda: settled(app), timeout=30)
    elapsed = time.monotonic() - started
    [message] = rows(app)
    assert message.status == "sent"
    assert message.attempts == 3
    assert graph.count == 3
    assert elapsed >= 2.0  # the Retry-After of the 429 was honoured


def test_a_permanent_error_is_tried_once_and_recorded(app: Flask, graph: FakeGraph) -> None:
    graph.script(
        [
            Reply(
                400,
                graph_error(
                    131026, "(#131026) Message Undeliverable", "Unable to deliver message."
                ),
            )
        ]
    )
    queue(app, 1)
    with Running(app, graph):
        wait_until(lambda: settled(app))
        time.sleep(0.3)
    [message] = rows(app)
    assert message.status == "failed"
    assert message.error_code == 131026
    assert message.error_reason and "131026" in message.error_reason
    assert graph.count == 1


def test_an_outage_holds_replies_and_then_all_go_out(app: Flask, graph: FakeGraph) -> None:
    graph.fail_all(503)
    queue(app, 6)
    with Running(app, graph):
        wait_until(lambda: graph.count >= 6)
        assert all(m.status in ("queued", "sending") for m in rows(app))
        graph.recover()
        wait_until(lambda: settled(app), timeout=30)
    assert [m.status for m in rows(app)] == ["sent"] * 6
    assert graph.accepted == 6


def test_a_contacts_messages_go_out_in_order_one_at_a_time(app: Flask, graph: FakeGraph) -> None:
    now = datetime.now(UTC)
    with get_db(app).session() as session:
        contact = Contact(wa_id="4915112345678", name="Anna")
        session.add(contact)
        session.flush()
        for i in range(5):
            outbox.enqueue(session, contact, text_payload("4915112345678", f"Teil {i}"), now=now)
    with Running(app, graph):
        wait_until(lambda: settled(app))
    assert [r.json["text"]["body"] for r in graph.requests] == [f"Teil {i}" for i in range(5)]


def test_expired_claims_are_taken_over(app: Flask) -> None:
    queue(app, 3)
    now = datetime.now(UTC)
    with get_db(app).session() as session:
        first = outbox.claim(session, "dead-worker", 10, now=now, lease=timedelta(seconds=30))
    assert len(first) == 3
    with get_db(app).session() as session:
        assert (
            outbox.claim(
                session, "other", 10, now=now + timedelta(seconds=29), lease=timedelta(seconds=30)
            )
            == []
        )
        again = outbox.claim(
            session, "other", 10, now=now + timedelta(seconds=31), lease=timedelta(seconds=30)
        )
    assert [c.id for c in again] == [c.id for c in first]
    assert [c.attempts for c in again] == [2, 2, 2]


def test_shared_rate_spaces_slots_across_processes(app: Flask) -> None:
    url = get_db(app).url
    one, two = SharedRate(Database(url), 10.0, "p"), SharedRate(Database(url), 10.0, "p")
    a = one.reserve(3, now=1000.0)
    b = two.reserve(2, now=1000.05)
    assert a == pytest.approx([1000.0, 1000.1, 1000.2])
    assert b == pytest.approx([1000.3, 1000.4])
    # Idle time earns no burst credit.
    assert one.reserve(1, now=2000.0) == [2000.0]


def test_the_send_rate_holds_for_two_dispatchers_together(app: Flask, graph: FakeGraph) -> None:
    queue(app, 30)
    url = get_db(app).url
    stop = threading.Event()
    threads = []
    for _ in range(2):
        database = Database(url)
        client = GraphClient(graph.url, "v24.0", PHONE, TOKEN, pool_size=8)
        dispatcher = Dispatcher(
            database, client, rate=SharedRate(database, 20.0, PHONE), concurrency=8, poll=0.05
        )
        threads.append(threading.Thread(target=dispatcher.run, args=(stop,)))
    started = time.monotonic()
    for t in threads:
        t.start()
    try:
        wait_until(lambda: graph.count >= 30, timeout=30)
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    # 30 messages at 20/s take at least 29 intervals of 50 ms.
    assert elapsed >= 29 / 20 - 0.05
    assert Counter(r.json["to"] for r in graph.requests if r.json).most_common(1)[0][1] == 1


def worker(app: Flask, graph: FakeGraph, log: Path, *extra: str) -> Process:
    env = {
        "DATABASE_URL": get_db(app).url,
        "WHATSAPP_TOKEN": TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": PHONE,
        "WHATSAPP_APP_SECRET": "s",
        "WHATSAPP_VERIFY_TOKEN": "v",
        "SECRET_KEY": "k" * 32,
        "GRAPH_API_URL": graph.url,
        "GRAPH_API_VERSION": "v24.0",
        "SEND_RATE": "500",
    }
    return Process(["flask", "--app", "app", "worker", *extra], env, log)


@pytest.mark.slow
def test_sigkill_mid_flight_then_restart_loses_nothing(app: Flask, tmp_path: Path) -> None:
    with FakeGraph(latency=0.5, token=TOKEN) as graph:
        ids = queue(app, 40)
        first = worker(app, graph, tmp_path / "w1.log", "--concurrency", "8", "--lease", "2")
        wait_until(lambda: graph.count >= 12, timeout=30)
        first.kill()
        first.stop()
        killed_at = graph.count
        with worker(app, graph, tmp_path / "w2.log", "--concurrency", "8", "--lease", "2"):
            wait_until(lambda: settled(app), timeout=60)
    stored = rows(app)
    assert [m.id for m in stored] == ids
    assert all(m.status == "sent" for m in stored)
    per_recipient = Counter(r.json["to"] for r in graph.requests if r.json)
    assert set(per_recipient) == {f"49151000{i:05d}" for i in range(40)}
    twice = [to for to, n in per_recipient.items() if n > 1]
    # Only what was on the wire when the process died may go out twice.
    assert len(twice) <= 8
    assert killed_at >= 12


@pytest.mark.slow
def test_sigterm_finishes_in_flight_and_leaves_nothing_claimed(app: Flask, tmp_path: Path) -> None:
    with FakeGraph(latency=0.5, token=TOKEN) as graph:
        queue(app, 30)
        process = worker(app, graph, tmp_path / "w.log", "--concurrency", "4")
        wait_until(lambda: graph.count >= 4, timeout=30)
        assert process.stop(timeout=20) == 0
        received = graph.count
    stored = rows(app)
    assert not [m for m in stored if m.status == "sending"]
    assert sum(m.status == "sent" for m in stored) == received
    assert "finishing what is in flight" in process.output()


@pytest.mark.slow
def test_two_dispatcher_processes_send_every_message_once(app: Flask, tmp_path: Path) -> None:
    with FakeGraph(latency=0.05, token=TOKEN) as graph:
        queue(app, 200)
        one = worker(app, graph, tmp_path / "w1.log", "--concurrency", "16")
        two = worker(app, graph, tmp_path / "w2.log", "--concurrency", "16")
        with one, two:
            wait_until(lambda: settled(app), timeout=60)
    per_recipient = Counter(r.json["to"] for r in graph.requests if r.json)
    assert len(per_recipient) == 200
    assert set(per_recipient.values()) == {1}
    assert "started" in one.output() and "started" in two.output()


def test_a_reply_does_not_wait_behind_the_contacts_broadcast_message(app: Flask) -> None:
    now = datetime.now(UTC)
    with get_db(app).session() as session:
        contact = Contact(wa_id="4915112345678", name="Anna")
        session.add(contact)
        session.flush()
        news = outbox.enqueue(
            session, contact, text_payload("4915112345678", "Angebot"), now=now, priority=1
        )
        first = outbox.enqueue(
            session, contact, text_payload("4915112345678", "Antwort 1"), now=now
        )
        second = outbox.enqueue(
            session, contact, text_payload("4915112345678", "Antwort 2"), now=now
        )
        # Replies come first, one at a time; the broadcast message waits for them.
        lease = timedelta(seconds=30)
        assert [c.id for c in outbox.claim(session, "w", 10, now=now, lease=lease)] == [first.id]
        outbox.mark_sent(session, first.id, "wamid.A1", now=now)
        assert [c.id for c in outbox.claim(session, "w", 10, now=now, lease=lease)] == [second.id]
        outbox.mark_sent(session, second.id, "wamid.A2", now=now)
        assert [c.id for c in outbox.claim(session, "w", 10, now=now, lease=lease)] == [news.id]


@pytest.mark.parametrize(
    "error",
    [
        RetryLater("(#131000) Something went wrong", http_status=500, code=131000),
        AuthError("(#190) Error validating access token", http_status=401, code=190),
    ],
    ids=["retry-later", "token refused"],
)
def test_a_message_retried_for_24_hours_ends_failed_with_the_reason(
    app: Flask, error: GraphError
) -> None:
    dispatcher = Dispatcher(
        get_db(app), GraphClient("http://127.0.0.1:9", "v24.0", PHONE, TOKEN), rate=None
    )
    now = datetime.now(UTC)
    fresh = outbox.Claimed(1, {}, attempts=3, created_at=now - timedelta(hours=1))
    stale = outbox.Claimed(2, {}, attempts=40, created_at=now - timedelta(hours=25))
    assert dispatcher._after_error(fresh, error).kind == "retry"
    outcome = dispatcher._after_error(stale, error)
    assert outcome.kind == "failed"
    assert outcome.code == error.code
    assert outcome.reason is not None and outcome.reason.startswith("gave up after 40 attempts: ")


def test_the_worker_waits_out_a_database_that_is_not_ready() -> None:
    from sqlalchemy.exc import OperationalError

    from bot.worker import migrate_when_ready

    class Flaky:
        calls = 0

        def upgrade(self) -> None:
            self.calls += 1
            if self.calls < 3:
                raise OperationalError("SELECT 1", None, Exception("terminating connection"))

    flaky = Flaky()
    assert migrate_when_ready(flaky, threading.Event(), pause=0.01) is True  # type: ignore[arg-type]
    assert flaky.calls == 3
    stopped = threading.Event()
    stopped.set()
    assert migrate_when_ready(Flaky(), stopped) is False  # type: ignore[arg-type]
