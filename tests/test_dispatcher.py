"""The outbox and dispatcher against a fake Graph API on 127.0.0.1: retries, failures, outages,
crashes, several dispatchers, and the shared send rate."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import event, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from bot import broadcasts
from bot.channels.errors import AuthError, RetryLater, SendError
from bot.channels.transport import Transport
from bot.contacts.audiences import parse_audience
from bot.db import Database, get_db
from bot.models import Contact, Message
from bot.outbound import outbox
from bot.outbound.dispatcher import UNCERTAIN_WAIT, Dispatcher, Outcome
from bot.outbound.ratelimit import SharedRate
from bot.whatsapp.graph import GraphClient
from bot.whatsapp.payloads import text_payload
from tests.any_hour import send_at_any_hour
from tests.fakegraph import FakeGraph, Reply, graph_error
from tests.processes import Process, free_port

TOKEN = "EAAG-test-token"
PHONE = "106540352242922"


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph(token=TOKEN) as fake:
        yield fake


def queue(
    app: Flask, n: int, *, prefix: str = "49151000", now: datetime | None = None
) -> list[int]:
    ids = []
    now = now or datetime.now(UTC)
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

    def __init__(
        self,
        app: Flask,
        graph: FakeGraph | str,
        *,
        timeout: tuple[float, float] = (3.05, 10),
        rate: object = None,
        concurrency: int = 8,
        **kwargs: object,
    ) -> None:
        database = Database(get_db(app).url)
        url = graph if isinstance(graph, str) else graph.url
        client = GraphClient(url, "v24.0", PHONE, TOKEN, pool_size=16, timeout=timeout)
        self.dispatcher = Dispatcher(
            database, client, rate=rate, concurrency=concurrency, poll=0.05, **kwargs
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


def test_claims_settlements_and_due_times_follow_the_dispatchers_clock(
    app: Flask, graph: FakeGraph
) -> None:
    """At an instant far from the wall clock's, a message queued then is due, its retry is
    due on the same clock's time, and what is recorded carries that clock's instants."""
    far = datetime(2100, 1, 1, 12, tzinfo=UTC)
    moment = [far]
    graph.script([Reply(500, "<html>Internal Server Error</html>")])
    queue(app, 1, now=far)
    with Running(app, graph, clock=lambda: moment[0]):
        wait_until(lambda: rows(app)[0].error_reason is not None)
        [retried] = rows(app)
        assert retried.status == "queued"
        assert retried.next_attempt_at is not None
        assert far <= retried.next_attempt_at <= far + timedelta(seconds=2)
        # The backoff's real seconds pass, the clock does not: not due yet.
        time.sleep(1.2)
        assert graph.count == 1
        moment[0] = far + timedelta(minutes=1)
        wait_until(lambda: settled(app))
    [sent] = rows(app)
    assert sent.status == "sent"
    assert sent.sent_at == sent.status_at == far + timedelta(minutes=1)
    assert graph.count == 2


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
    # The dead worker never launched their requests: nothing went out, nothing is uncertain.
    assert [c.uncertain for c in again] == [0, 0, 0]


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


def worker(app: Flask, graph: FakeGraph, log: Path, *extra: str, send_rate: float = 500) -> Process:
    send_at_any_hour(get_db(app))  # the worker runs on the wall clock
    env = {
        "DATABASE_URL": get_db(app).url,
        "WHATSAPP_TOKEN": TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": PHONE,
        "WHATSAPP_APP_SECRET": "s",
        "WHATSAPP_VERIFY_TOKEN": "v",
        "SECRET_KEY": "k" * 32,
        "GRAPH_API_URL": graph.url,
        "GRAPH_API_VERSION": "v24.0",
        "SEND_RATE": str(send_rate),
    }
    return Process(["flask", "--app", "app", "worker", *extra], env, log)


def launched_by(app: Flask, dead: Process) -> set[str]:
    """The recipients whose request the `dead` worker had launched (marked as going out)
    with no answer recorded: those it may have sent without anyone knowing."""
    held_by = Message.claimed_by.contains(f":{dead.proc.pid}:")
    with get_db(app).session() as session:
        return set(
            session.scalars(
                select(Contact.wa_id)
                .join(Message, Message.contact_id == Contact.id)
                .where(Message.status == "sending", held_by, Message.uncertain_attempts > 0)
            )
        )


def assert_only_the_launched_may_miss(
    app: Flask, launched: set[str], requests: Counter[str], audience: set[str]
) -> None:
    """After a worker was killed mid-broadcast: no one got two requests; the messages that
    failed are among those whose request the dead worker had launched, as uncertain; and
    everyone without a request is one of them (killed between the launch and the post)."""
    with get_db(app).session() as session:
        failed = {
            wa_id: reason
            for wa_id, reason in session.execute(
                select(Contact.wa_id, Message.error_reason)
                .join(Message, Message.contact_id == Contact.id)
                .where(Message.status == "failed")
            )
        }
    assert set(requests.values()) == {1}
    assert set(requests) <= audience
    # `launched` is read right after the kill; a COMMIT the dead worker had already written
    # to its socket may still be applied by PostgreSQL after that read, recording Meta's
    # answer: such a message ends sent, once. Every failed one was launched.
    assert set(failed) <= launched
    assert all(reason and reason.startswith("uncertain: ") for reason in failed.values())
    assert audience - set(requests) <= set(failed)


@pytest.mark.slow
def test_sigkill_mid_flight_then_restart_loses_nothing(app: Flask, tmp_path: Path) -> None:
    with FakeGraph(latency=0.5, token=TOKEN) as graph:
        ids = queue(app, 40)
        first = worker(app, graph, tmp_path / "w1.log", "--concurrency", "8", "--lease", "2")
        wait_until(lambda: graph.count >= 12, timeout=30)
        first.kill()
        first.stop()
        killed_at = graph.count
        launched = launched_by(app, first)
        with worker(app, graph, tmp_path / "w2.log", "--concurrency", "8", "--lease", "2"):
            wait_until(lambda: settled(app), timeout=60)
    stored = rows(app)
    assert [m.id for m in stored] == ids
    assert all(m.status == "sent" for m in stored)
    per_recipient = Counter(r.json["to"] for r in graph.requests if r.json)
    assert set(per_recipient) == {f"49151000{i:05d}" for i in range(40)}
    twice = {to for to, n in per_recipient.items() if n > 1}
    # Only what was on the wire when the process died may go out twice.
    assert twice <= launched
    assert len(launched) <= 8
    assert killed_at >= 12


@pytest.mark.slow
def test_sigkill_mid_broadcast_then_restart_sends_no_one_twice(
    app: Flask, tmp_path: Path, runner: FlaskCliRunner
) -> None:
    broadcast_id = broadcast_to(app, 40)
    audience = {f"49152000{i:05d}" for i in range(40)}
    # Slower than 8 requests of 0.5 s allow: claimed messages wait for their send slot, so
    # the killed worker holds some it never sent. Those reach their customer all the same.
    rate = 10
    with FakeGraph(latency=0.5, token=TOKEN) as graph:
        first = worker(
            app, graph, tmp_path / "w1.log", "--concurrency", "8", "--lease", "2", send_rate=rate
        )
        wait_until(lambda: graph.count >= 12, timeout=30)
        first.kill()
        first.stop()
        launched = launched_by(app, first)
        with worker(
            app, graph, tmp_path / "w2.log", "--concurrency", "8", "--lease", "2", send_rate=rate
        ):
            wait_until(lambda: settled(app), timeout=60)
    per_recipient = Counter(r.json["to"] for r in graph.requests if r.json)
    # What the killed process had on the wire (at most its 8 in flight) fails as uncertain.
    assert_only_the_launched_may_miss(app, launched, per_recipient, audience)
    failed = [m for m in rows(app) if m.status == "failed"]
    assert len(failed) <= 8
    funnel = show(runner, broadcast_id)
    assert (funnel["sent"], funnel["failed"], funnel["pending"]) == (
        40 - len(failed),
        len(failed),
        0,
    )


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
    app: Flask, error: SendError
) -> None:
    dispatcher = Dispatcher(
        get_db(app), GraphClient("http://127.0.0.1:9", "v24.0", PHONE, TOKEN), rate=None
    )
    now = datetime.now(UTC)
    fresh = outbox.Claimed(1, {}, attempts=3, created_at=now - timedelta(hours=1))
    stale = outbox.Claimed(2, {}, attempts=40, created_at=now - timedelta(hours=25))
    assert dispatcher._after_error(fresh, error, now).kind == "retry"
    outcome = dispatcher._after_error(stale, error, now)
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


# --- requests that may have reached Meta without an answer -------------------------------

# Answers held back past this read timeout: Meta accepted the message, the sender never knew.
QUICK = (1.0, 0.3)
SLOW = Reply(delay=1.0)
PAUSE = timedelta(seconds=0.5)


def broadcast_to(app: Flask, n: int, *, prefix: str = "49152000") -> int:
    """A template broadcast to `n` new opted-in contacts, its messages written to the outbox."""
    now = datetime.now(UTC)
    send_at_any_hour(get_db(app))
    with get_db(app).session() as session:
        for i in range(n):
            session.add(Contact(wa_id=f"{prefix}{i:05d}", name=f"Kunde {i}", opted_in=True))
        created = broadcasts.create(
            session,
            broadcasts.Content(template="angebot", language="de"),
            parse_audience("all"),
            timezone="Europe/Berlin",
            now=now,
        )
        run_id = broadcasts.start_run(session, created.id, now, now)
        broadcast_id = created.id
    assert run_id is not None
    broadcasts.write_run(get_db(app), run_id, clock=lambda: now)
    return broadcast_id


def show(runner: FlaskCliRunner, broadcast_id: int) -> dict[str, Any]:
    shown = runner.invoke(args=["broadcast", "show", str(broadcast_id), "--json"])
    assert shown.exit_code == 0, shown.output
    funnel: dict[str, Any] = json.loads(shown.stdout)
    parts = funnel["pending"] + funnel["sent"] + funnel["failed"] + funnel["skipped"]
    assert parts == funnel["total"]
    return funnel


def test_a_reply_without_an_answer_is_sent_once_more_after_a_pause(
    app: Flask, graph: FakeGraph
) -> None:
    graph.script([SLOW])
    queue(app, 1)
    started = time.monotonic()
    with Running(app, graph, timeout=QUICK, uncertain_wait=PAUSE):
        wait_until(lambda: settled(app))
    [message] = rows(app)
    assert message.status == "sent"
    assert graph.count == 2
    assert (message.attempts, message.uncertain_attempts) == (2, 1)
    assert time.monotonic() - started >= 0.3 + PAUSE.total_seconds()


def test_a_reply_twice_without_an_answer_fails_and_is_not_sent_a_third_time(
    app: Flask, graph: FakeGraph
) -> None:
    graph.script([SLOW, SLOW])
    queue(app, 1)
    with Running(app, graph, timeout=QUICK, uncertain_wait=PAUSE):
        wait_until(lambda: settled(app))
        time.sleep(1.0)  # a third try would be due by now
    [message] = rows(app)
    assert message.status == "failed"
    assert graph.count == 2
    assert graph.accepted == 2  # Meta took both: the customer may have the reply twice
    assert message.uncertain_attempts == 2
    assert message.error_reason is not None
    assert message.error_reason.startswith(
        "uncertain: no answer from WhatsApp twice; not sent again to avoid a duplicate"
    )


def test_a_dropped_answer_is_uncertain_too(app: Flask, graph: FakeGraph) -> None:
    graph.script([Reply(drop=True), Reply(drop=True)])
    queue(app, 1)
    with Running(app, graph, uncertain_wait=PAUSE):
        wait_until(lambda: settled(app))
    [message] = rows(app)
    assert message.status == "failed"
    assert graph.count == 2
    assert message.error_reason and message.error_reason.startswith("uncertain: ")


def test_a_broadcast_message_without_an_answer_is_never_sent_again(
    app: Flask, graph: FakeGraph, runner: FlaskCliRunner
) -> None:
    broadcast_id = broadcast_to(app, 3)
    graph.script([SLOW])
    with Running(app, graph, timeout=QUICK, uncertain_wait=PAUSE):
        wait_until(lambda: settled(app))
        time.sleep(1.0)
    assert graph.count == 3
    assert Counter(r.json["to"] for r in graph.requests).most_common(1)[0][1] == 1
    [failed] = [m for m in rows(app) if m.status == "failed"]
    assert failed.error_reason is not None
    assert failed.error_reason.startswith(
        "uncertain: no answer from WhatsApp; not sent again to avoid a duplicate"
    )
    assert show(runner, broadcast_id) == {
        "id": broadcast_id, "status": "done", "total": 3, "pending": 0, "sent": 2,
        "delivered": 0, "read": 0, "failed": 1, "skipped": 0,
    "capped": 0, "deferred": 0,
    }  # fmt: skip


def test_a_refused_connection_never_reached_meta_and_is_retried(
    app: Flask, runner: FlaskCliRunner
) -> None:
    port = free_port()
    broadcast_id = broadcast_to(app, 2)
    with Running(app, f"http://127.0.0.1:{port}", uncertain_wait=PAUSE):
        wait_until(lambda: all(m.attempts >= 2 for m in rows(app)))
        assert all(m.status in ("queued", "sending") for m in rows(app))
        with FakeGraph(port=port, token=TOKEN) as graph:
            wait_until(lambda: settled(app), timeout=30)
    assert [m.status for m in rows(app)] == ["sent", "sent"]
    assert all(m.uncertain_attempts == 0 for m in rows(app))
    assert graph.count == 2
    assert show(runner, broadcast_id)["sent"] == 2


def test_messages_a_dead_sender_claimed_but_never_launched_are_sent_as_usual(
    app: Flask, graph: FakeGraph, runner: FlaskCliRunner
) -> None:
    [reply] = queue(app, 1)
    broadcast_id = broadcast_to(app, 1)
    with get_db(app).session() as session:
        # A worker claimed both and died while they waited for their send slot.
        now = datetime.now(UTC)
        assert len(outbox.claim(session, "dead", 10, now=now, lease=timedelta(0))) == 2
    with Running(app, graph):
        wait_until(lambda: settled(app))
        time.sleep(0.3)
    assert graph.count == 2
    stored = rows(app)
    assert [(m.status, m.attempts, m.uncertain_attempts) for m in stored] == [("sent", 2, 0)] * 2
    assert stored[0].id == reply
    assert show(runner, broadcast_id)["sent"] == 1


def test_a_claim_that_ran_out_after_its_request_went_out_is_taken_over_as_uncertain(
    app: Flask, graph: FakeGraph, runner: FlaskCliRunner
) -> None:
    # Claims that have run out by the time anyone looks at them again.
    lease = timedelta(0)
    [twice] = queue(app, 1, prefix="49153000")
    with get_db(app).session() as session:
        now = datetime.now(UTC)
        assert len(claimed := outbox.claim(session, "dead", 10, now=now, lease=lease)) == 1
        assert outbox.launch(session, "dead", [c.id for c in claimed]) == {twice}
    [reply] = queue(app, 1)
    broadcast_id = broadcast_to(app, 1)
    with get_db(app).session() as session:
        # Its sender died mid-send; the next one took it over with two more, launched all
        # three requests, and died too.
        now = datetime.now(UTC)
        taken = outbox.claim(session, "dead too", 10, now=now, lease=lease)
        assert len(outbox.launch(session, "dead too", [c.id for c in taken])) == 3
        # A worker that lost its claim marks nothing: it must not send.
        assert outbox.launch(session, "dead", [twice]) == set()
    assert [(c.uncertain, c.broadcast) for c in taken] == [(1, False), (0, False), (0, True)]
    with Running(app, graph):
        wait_until(lambda: settled(app))
        time.sleep(0.3)
    stored = {m.id: m for m in rows(app)}
    # The reply gets its one more try; the broadcast message, and the reply that may have
    # gone out twice already, are not sent again.
    assert [r.json["to"] for r in graph.requests] == ["4915100000000"]
    assert stored[reply].status == "sent"
    assert stored[reply].uncertain_attempts == 1
    assert stored[twice].uncertain_attempts == 2
    for message in stored.values():
        if message.id != reply:
            assert message.status == "failed"
            assert message.error_reason == (
                "uncertain: the sending process stopped before WhatsApp answered; "
                "not sent again to avoid a duplicate"
            )
    assert show(runner, broadcast_id)["failed"] == 1


class Watching:
    """The Graph client, noting as each request goes out its message's count of requests
    without an answer, read on a connection of its own: only what is committed."""

    def __init__(self, transport: Transport, database: Database) -> None:
        self.transport = transport
        self.database = database
        self.seen: list[int | None] = []

    def send(self, payload: dict[str, Any]) -> str:
        with self.database.session() as session:
            self.seen.append(
                session.scalar(
                    select(Message.uncertain_attempts)
                    .join(Contact, Contact.id == Message.contact_id)
                    .where(Contact.wa_id == payload["to"], Message.direction == "out")
                )
            )
        return self.transport.send(payload)


def test_a_request_goes_out_once_its_launch_is_committed_and_an_answer_takes_it_back(
    app: Flask, graph: FakeGraph
) -> None:
    graph.script([Reply(500, "<html>Internal Server Error</html>"), SLOW])
    queue(app, 1)
    running = Running(app, graph, timeout=QUICK, uncertain_wait=PAUSE)
    watching = Watching(running.dispatcher.transport, Database(get_db(app).url))
    running.dispatcher.transport = watching
    with running:
        wait_until(lambda: settled(app), timeout=30)
    [message] = rows(app)
    # Each request counted before it left; the 500 was an answer and took its count back,
    # the request without an answer kept it: the reply still has its one more try.
    assert watching.seen == [1, 1, 2]
    assert (message.status, message.attempts, message.uncertain_attempts) == ("sent", 3, 1)
    assert graph.count == 3
    watching.database.dispose()


def test_a_request_whose_launch_cannot_be_recorded_is_not_posted_but_given_back(
    app: Flask, graph: FakeGraph, monkeypatch: pytest.MonkeyPatch, runner: FlaskCliRunner
) -> None:
    broadcast_id = broadcast_to(app, 1)
    tries: list[int] = []
    launch = outbox.launch

    def flaky(session: Session, worker: str, ids: list[int]) -> set[int]:
        tries.append(graph.count)
        if len(tries) == 1:
            raise OperationalError("UPDATE message", None, Exception("connection lost"))
        return launch(session, worker, ids)

    monkeypatch.setattr(outbox, "launch", flaky)
    with Running(app, graph):
        wait_until(lambda: settled(app))
    # Nothing was posted while the database was away; the message went out once it was back.
    assert tries == [0, 0]
    assert graph.count == 1
    [message] = rows(app)
    assert (message.status, message.attempts, message.uncertain_attempts) == ("sent", 1, 0)
    assert show(runner, broadcast_id)["sent"] == 1


def test_the_launches_of_many_sending_threads_are_marked_together(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = queue(app, 50)
    batches: list[list[int]] = []
    launch = outbox.launch

    def counted(session: Session, worker: str, ids: list[int]) -> set[int]:
        batches.append(ids)
        return launch(session, worker, ids)

    monkeypatch.setattr(outbox, "launch", counted)
    with FakeGraph(latency=0.2, token=TOKEN) as graph:
        running = Running(app, graph, concurrency=50)
        marks: list[str] = []
        event.listen(
            running.dispatcher.database.engine,
            "before_cursor_execute",
            lambda _c, _cur, statement, *_: (
                marks.append(statement) if "uncertain_attempts + " in statement else None
            ),
        )
        with running:
            wait_until(lambda: settled(app))
    assert [m.status for m in rows(app)] == ["sent"] * 50
    assert sorted(i for batch in batches for i in batch) == ids
    # Not a transaction per message: at hundreds a second, that would be the bottleneck.
    assert len(batches) <= 10
    assert len(marks) == len(batches)  # one statement a batch


@pytest.mark.parametrize(
    ("broadcast", "uncertain", "kind"),
    [(False, 0, "retry"), (False, 1, "failed"), (True, 0, "failed")],
    ids=["reply, first", "reply, second", "broadcast"],
)
def test_after_an_uncertain_request_a_reply_waits_and_a_broadcast_message_fails(
    app: Flask, broadcast: bool, uncertain: int, kind: str
) -> None:
    dispatcher = Dispatcher(
        get_db(app), GraphClient("http://127.0.0.1:9", "v24.0", PHONE, TOKEN), rate=None
    )
    now = datetime.now(UTC)
    message = outbox.Claimed(
        1, {}, attempts=1, created_at=now, uncertain=uncertain, broadcast=broadcast
    )
    timed_out = RetryLater("timeout: ReadTimeout", maybe_sent=True)
    outcome = dispatcher._after_error(message, timed_out, now)
    assert (outcome.kind, outcome.uncertain) == (kind, True)
    if kind == "retry":
        assert outcome.due is not None and outcome.due >= now + UNCERTAIN_WAIT
    # A request that never left (a refused connection) is retried as before, broadcast or not.
    refused = RetryLater("connection error: NewConnectionError", maybe_sent=False)
    outcome = dispatcher._after_error(message, refused, now)
    assert (outcome.kind, outcome.uncertain) == ("retry", False)
    assert outcome.due is not None and outcome.due <= now + timedelta(seconds=2)


def test_a_late_result_of_a_claim_taken_over_changes_nothing_but_a_success(app: Flask) -> None:
    [first, second] = queue(app, 2)
    now = datetime.now(UTC)
    lease = timedelta(seconds=30)
    late = now + timedelta(seconds=31)
    with get_db(app).session() as session:
        assert len(outbox.claim(session, "slow", 10, now=now, lease=lease)) == 2
        # The database was away longer than the lease: another dispatcher took both over.
        assert len(outbox.claim(session, "other", 10, now=late, lease=lease)) == 2
    graph = GraphClient("http://127.0.0.1:9", "v24.0", PHONE, TOKEN)
    slow = Dispatcher(get_db(app), graph, rate=None, worker="slow")
    with get_db(app).session() as session:
        slow._record(
            session,
            [
                Outcome(first, "retry", reason="HTTP 503: Service Unavailable", due=late),
                Outcome(second, "sent", wamid="wamid.LATE"),
            ],
            late,
        )
    stored = {m.id: m for m in rows(app)}
    # Not queued again while the other may be sending it; Meta's answer is recorded.
    assert (stored[first].status, stored[first].claimed_by) == ("sending", "other")
    assert (stored[second].status, stored[second].wamid) == ("sent", "wamid.LATE")


class FlakyRate:
    """The shared send rate, its database away for the first reservation."""

    def __init__(self) -> None:
        self.calls = 0

    def reserve(self, n: int, now: float) -> list[float]:
        self.calls += 1
        if self.calls == 1:
            raise OperationalError("UPDATE send_quota", None, Exception("connection lost"))
        return [now] * n

    def reserve_in(self, _session: Session, n: int, now: float) -> list[float]:
        return self.reserve(n, now)


def test_a_message_without_a_send_slot_is_given_back_not_taken_for_sent(
    app: Flask, graph: FakeGraph, runner: FlaskCliRunner
) -> None:
    broadcast_id = broadcast_to(app, 1)
    rate = FlakyRate()
    # A lease shorter than the pause after the failed reservation: a claim left to run out
    # would be taken over as possibly sent.
    with Running(app, graph, rate=rate, lease=timedelta(seconds=0.3)):
        wait_until(lambda: settled(app))
    [message] = rows(app)
    assert (message.status, message.uncertain_attempts) == ("sent", 0)
    assert rate.calls == 2
    assert graph.count == 1
    assert show(runner, broadcast_id)["sent"] == 1


def test_a_live_dispatcher_keeps_its_claims_while_meta_is_slow(
    app: Flask, runner: FlaskCliRunner
) -> None:
    [reply] = queue(app, 1)
    broadcast_id = broadcast_to(app, 1)
    lease = timedelta(seconds=0.5)
    # Each answer takes three leases; a claim left to run out would be taken over.
    with FakeGraph(latency=1.5, token=TOKEN) as graph, Running(app, graph, lease=lease):
        assert graph.wait_for(2)
        with Running(app, graph, lease=lease):
            wait_until(lambda: settled(app))
            time.sleep(0.5)
    assert graph.count == 2
    stored = rows(app)
    assert [(m.status, m.attempts, m.uncertain_attempts) for m in stored] == [("sent", 1, 0)] * 2
    assert show(runner, broadcast_id)["sent"] == 1
    assert stored[0].id == reply
