"""The inbound pipeline: journalled before the 200, processed after it, in order, with a
failed notification parked instead of holding the others up."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import event, func, select
from sqlalchemy.exc import DBAPIError

import bot.inbound.processor
from bot.contacts.consent import ConsentSource, set_opt_in
from bot.db import Database, get_db
from bot.inbound import journal, spool
from bot.inbound.processor import Processor, process_batch
from bot.inbound.receive import Arrival, Priority
from bot.models import (
    ConsentEvent,
    Contact,
    InboundNotification,
    Message,
    NotificationState,
    utcnow,
)
from bot.whatsapp import events
from tests.conftest import process_inbound, signed_headers
from tests.payloads import notification, status_notification
from tests.processes import Process
from tests.test_autoreply import SHOP, SUNDAY_EVENING, TUESDAY_MORNING, at, replies

pytestmark = pytest.mark.db


@pytest.fixture
def shop(app: Flask) -> Flask:
    from bot.settings.stored import save_settings

    with get_db(app).session() as session:
        save_settings(session, SHOP)
    return app


def message_doc(text: str, sent: datetime, *, wa_id: str = "4915112345678", wamid: str) -> Any:
    doc = notification({"type": "text", "text": {"body": text}, "id": wamid}, wa_id=wa_id)
    doc["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = str(int(sent.timestamp()))
    return doc


def post_only(client: FlaskClient, doc: Any) -> int:
    """Post as Meta does, without processing: what the web process alone does."""
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    response = client.post("/webhooks/whatsapp", data=body, headers=signed_headers(body))
    return response.status_code


def journal_states(app: Flask) -> dict[str, int]:
    """The journal's rows by state, once what SQLite's spool holds is moved in."""
    spool.move(get_db(app))
    with get_db(app).session() as session:
        rows = session.execute(
            select(InboundNotification.state, func.count()).group_by(InboundNotification.state)
        ).all()
    return {state: count for state, count in rows}


def inbound_messages(app: Flask) -> list[Message]:
    with get_db(app).session() as session:
        query = select(Message).where(Message.direction == "in").order_by(Message.id)
        return list(session.scalars(query))


# --- acknowledge first ---------------------------------------------------------------------------


def test_the_200_means_journalled_and_the_processor_does_the_rest(
    shop: Flask, client: FlaskClient
) -> None:
    at(shop, SUNDAY_EVENING)
    doc = message_doc("Hallo", SUNDAY_EVENING, wamid="wamid.first")
    assert post_only(client, doc) == 200
    assert journal_states(shop) == {"pending": 1}
    assert inbound_messages(shop) == []  # nothing decided inside the request
    assert process_inbound(shop) == 1
    [stored] = inbound_messages(shop)
    assert stored.wamid == "wamid.first"
    [away] = replies(shop)
    assert away.rule == "away" and away.in_reply_to == stored.id
    assert journal_states(shop) == {"processed": 1}
    with get_db(shop).session() as session:
        row = session.scalars(select(InboundNotification)).one()
    assert row.body is None  # the message is stored; the journal keeps only its digest


def test_a_redelivery_is_the_same_journal_row_before_and_after_processing(
    shop: Flask, client: FlaskClient
) -> None:
    at(shop, SUNDAY_EVENING)
    body = json.dumps(message_doc("Hallo", SUNDAY_EVENING, wamid="wamid.again")).encode()
    assert post_only(client, body) == 200
    assert post_only(client, body) == 200
    assert journal_states(shop) == {"pending": 1}
    process_inbound(shop)
    assert post_only(client, body) == 200
    assert journal_states(shop) == {"processed": 1}
    assert process_inbound(shop) == 0
    assert len(inbound_messages(shop)) == 1 and len(replies(shop)) == 1


def test_customer_messages_are_processed_before_status_callbacks(
    shop: Flask, client: FlaskClient
) -> None:
    at(shop, SUNDAY_EVENING)
    ts = int(SUNDAY_EVENING.timestamp()) - 60
    for n in range(5):
        assert post_only(client, status_notification(f"wamid.out{n}", "delivered", ts)) == 200
    assert post_only(client, message_doc("Hallo", SUNDAY_EVENING, wamid="wamid.in")) == 200
    process_batch(get_db(shop), SUNDAY_EVENING, ours=None, limit=1)
    assert [m.wamid for m in inbound_messages(shop)] == ["wamid.in"]
    assert journal_states(shop) == {"pending": 5, "processed": 1}


def sqlite_only(shop: Flask) -> Database:
    database = get_db(shop)
    if database.dialect != "sqlite":
        pytest.skip("SQLite's spool; PostgreSQL's writers do not wait for one another")
    return database


def _journalled_from_another_thread(shop: Flask, wamid: str) -> threading.Event:
    done = threading.Event()
    body = json.dumps(message_doc("Hallo", SUNDAY_EVENING, wamid=wamid)).encode()
    at = Arrival(Priority.MESSAGES, SUNDAY_EVENING)

    def record() -> None:
        journal.record(get_db(shop), body, at, SUNDAY_EVENING)
        done.set()

    threading.Thread(target=record, daemon=True).start()
    return done


def test_the_acknowledgement_does_not_wait_for_a_transaction_on_the_database(
    shop: Flask,
) -> None:
    """A processor's batch holds SQLite's database file (one writer at a time): the webhook's
    INSERT goes to the spool meanwhile, and is in the journal once the processor moves it."""
    database = sqlite_only(shop)
    with database.session() as session:
        session.execute(select(func.count()).select_from(Contact))  # BEGIN IMMEDIATE: held
        done = _journalled_from_another_thread(shop, "wamid.busy")
        assert done.wait(20)  # committed while the database file is held
    assert spool.waiting(database.url).count == 1
    assert journal_states(shop) == {"pending": 1}
    assert spool.waiting(database.url).count == 0
    assert process_inbound(shop) == 1
    assert [m.wamid for m in inbound_messages(shop)] == ["wamid.busy"]


def test_a_move_cut_short_before_the_spool_is_emptied_repeats_as_a_no_op(
    shop: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed between the journal's commit and the spool's DELETE: the next move finds the
    notifications in the journal already, and each is stored and answered once."""
    database = sqlite_only(shop)
    at(shop, SUNDAY_EVENING)
    for n in range(3):
        assert (
            post_only(
                client,
                message_doc("Hallo", SUNDAY_EVENING, wa_id=f"491510000{n}", wamid=f"wamid.m{n}"),
            )
            == 200
        )
    original = spool.Spool.remove

    def crash(self: spool.Spool, up_to: int) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(spool.Spool, "remove", crash)
    with pytest.raises(DBAPIError):
        spool.move(database)
    assert spool.waiting(database.url).count == 3  # still spooled, and in the journal too
    monkeypatch.setattr(spool.Spool, "remove", original)
    assert journal_states(shop) == {"pending": 3}
    assert spool.waiting(database.url).count == 0
    assert process_inbound(shop) == 3
    assert sorted(m.wamid for m in inbound_messages(shop)) == ["wamid.m0", "wamid.m1", "wamid.m2"]
    assert [r.rule for r in replies(shop)] == ["away"] * 3


def test_health_counts_what_waits_in_the_spool(shop: Flask, client: FlaskClient) -> None:
    """A dead processor leaves notifications in SQLite's spool: health must see them there."""
    database = sqlite_only(shop)
    at(shop, TUESDAY_MORNING)
    body = json.dumps(message_doc("Hallo", TUESDAY_MORNING, wamid="wamid.s")).encode()
    then = TUESDAY_MORNING - timedelta(minutes=2)
    journal.record(database, body, Arrival(Priority.MESSAGES, then), then)
    answer = client.get("/healthz/inbound")
    assert answer.status_code == 503
    doc = answer.get_json()
    assert doc["unprocessed"] == 1 and doc["oldest_unprocessed_age"] == 120.0


# --- order, backlogs --------------------------------------------------------------------------


def test_notifications_replayed_out_of_order_are_processed_in_each_contacts_order(
    shop: Flask, client: FlaskClient
) -> None:
    """1,000 notifications from 10 contacts, journalled in a shuffled order and taken in
    batches of 64: each contact's messages are stored in the order they were sent."""
    at(shop, TUESDAY_MORNING)
    start = TUESDAY_MORNING - timedelta(minutes=30)
    docs = []
    for contact in range(10):
        for n in range(100):
            sent = start + timedelta(seconds=n * 10 + contact)
            wamid = f"wamid.c{contact}n{n:03d}"
            docs.append(
                message_doc(f"Nachricht {n}", sent, wa_id=f"49151000{contact:05d}", wamid=wamid)
            )
    random.Random(15).shuffle(docs)
    for doc in docs:
        assert post_only(client, doc) == 200
    while process_batch(get_db(shop), TUESDAY_MORNING, ours=None, limit=64):
        pass
    stored = inbound_messages(shop)
    assert len(stored) == 1000
    by_contact: dict[int, list[Message]] = {}
    for message in stored:  # in the order they were stored
        by_contact.setdefault(message.contact_id, []).append(message)
    for messages in by_contact.values():
        times = [m.timestamp for m in messages]
        assert times == sorted(times)
        assert len(messages) == 100
    # Each contact is new and the shop open: exactly one greeting each, to its first message.
    greetings = [r for r in replies(shop) if r.rule == "greeting"]
    assert len(greetings) == 10
    first_ids = {messages[0].id for messages in by_contact.values()}
    assert {g.in_reply_to for g in greetings} == first_ids


def test_a_batch_creates_its_new_contacts_in_one_statement_as_one_by_one_would(
    shop: Flask, client: FlaskClient
) -> None:
    """New contacts are created for the whole batch at once, before its messages are stored;
    the contacts are those storing the messages one by one makes: a known number stays its
    contact, a user id that wrote from two numbers is one contact, now at the later number."""
    at(shop, TUESDAY_MORNING)
    with get_db(shop).session() as session:
        session.add(
            Contact(
                wa_id="4915100000001", name="Stammkundin", name_by_shop=True, created_at=utcnow()
            )
        )
    start = TUESDAY_MORNING - timedelta(minutes=5)
    docs = [
        message_doc("Hallo", start, wa_id="4915100000001", wamid="wamid.known"),
        message_doc("Hallo", start + timedelta(seconds=1), wa_id="4915100000002", wamid="wamid.n"),
    ]
    for n, wa_id in enumerate(("4915100000003", "4915100000004")):
        doc = message_doc("Hi", start + timedelta(seconds=2 + n), wa_id=wa_id, wamid=f"wamid.u{n}")
        doc["entry"][0]["changes"][0]["value"]["messages"][0]["from_user_id"] = "DE.1"
        docs.append(doc)
    for doc in docs:
        assert post_only(client, doc) == 200
    inserts: list[str] = []
    engine = get_db(shop).engine

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.startswith("INSERT INTO contacts"):
            inserts.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert process_batch(get_db(shop), TUESDAY_MORNING, ours=None) == 4
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert len(inserts) == 1
    with get_db(shop).session() as session:
        contacts = {c.id: c for c in session.scalars(select(Contact))}
    assert sorted((c.wa_id, c.user_id, c.name) for c in contacts.values()) == [
        ("4915100000001", None, "Stammkundin"),
        ("4915100000002", None, "Anna"),
        ("4915100000004", "DE.1", "Anna"),
    ]
    senders = {m.wamid: contacts[m.contact_id].wa_id for m in inbound_messages(shop)}
    assert senders == {
        "wamid.known": "4915100000001",
        "wamid.n": "4915100000002",
        "wamid.u0": "4915100000004",
        "wamid.u1": "4915100000004",
    }


def test_a_three_day_backlog_sends_no_away_reply_but_applies_every_stop(
    shop: Flask, client: FlaskClient
) -> None:
    """After an outage Meta replays what it could not deliver: everything is stored, opt-outs
    count as of when they were sent, and nobody gets "we are closed" days late."""
    now = SUNDAY_EVENING  # closed: a fresh message would get the away reply
    at(shop, now)
    docs = []
    stoppers = []
    with get_db(shop).session() as session:  # customers who opted in a week before
        for contact in range(30):
            known = Contact(wa_id=f"49152000{contact:05d}", name="Kundin")
            session.add(known)
            session.flush()
            set_opt_in(session, known, True, ConsentSource.IMPORT, now - timedelta(days=7))
    for contact in range(30):
        wa_id = f"49152000{contact:05d}"
        for hours_ago in range(72, 0, -12):
            sent = now - timedelta(hours=hours_ago, minutes=contact)
            docs.append(
                message_doc("Hallo?", sent, wa_id=wa_id, wamid=f"wamid.b{contact}h{hours_ago}")
            )
        if contact % 3 == 0:
            stoppers.append(wa_id)
            sent = now - timedelta(hours=40 + contact)
            docs.append(message_doc("STOP", sent, wa_id=wa_id, wamid=f"wamid.stop{contact}"))
    random.Random(3).shuffle(docs)
    for doc in docs:
        assert post_only(client, doc) == 200
    process_inbound(shop)
    assert len(inbound_messages(shop)) == len(docs)
    assert replies(shop) == []
    with get_db(shop).session() as session:
        opted_out = set(session.scalars(select(Contact.wa_id).where(Contact.opted_in.is_(False))))
        words = session.scalars(
            select(ConsentEvent).where(ConsentEvent.source == ConsentSource.KEYWORD)
        ).all()
    assert opted_out == set(stoppers)
    assert len(words) == len(stoppers)


# --- failures are parked, not in the way -----------------------------------------------------


def test_a_poisoned_notification_is_parked_and_the_ones_after_it_flow(
    shop: Flask, client: FlaskClient, runner: FlaskCliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    at(shop, TUESDAY_MORNING)
    real = bot.inbound.processor.HANDLERS[events.Message]

    def bug(session: Any, event: events.Message, batch: Any) -> None:
        if event.id == "wamid.poison":
            raise KeyError("a field this version did not expect")
        real(session, event, batch)

    monkeypatch.setitem(bot.inbound.processor.HANDLERS, events.Message, bug)
    for n, wamid in enumerate(["wamid.a", "wamid.poison", "wamid.b", "wamid.c"]):
        sent = TUESDAY_MORNING - timedelta(seconds=10 - n)
        doc = message_doc("Hallo", sent, wa_id=f"4915300000{n}", wamid=wamid)
        assert post_only(client, doc) == 200
    process_inbound(shop)
    assert [m.wamid for m in inbound_messages(shop)] == ["wamid.a", "wamid.b", "wamid.c"]
    assert journal_states(shop) == {"processed": 3, "failed": 1}

    listed = runner.invoke(args=["inbound", "list", "--failed", "--json"])
    assert listed.exit_code == 0, listed.output
    [parked] = json.loads(listed.output)
    assert parked["state"] == "failed" and "KeyError" in parked["error"]
    health = client.get("/healthz/inbound")
    assert health.status_code == 200  # parked is not stuck: visible, counted, not an outage
    assert health.get_json()["failed"] == 1

    monkeypatch.setitem(bot.inbound.processor.HANDLERS, events.Message, real)  # the fix
    retried = runner.invoke(args=["inbound", "retry", str(parked["id"])])
    assert retried.exit_code == 0, retried.output
    assert f"{parked['id']}: processed" in retried.output
    assert "wamid.poison" in [m.wamid for m in inbound_messages(shop)]
    assert journal_states(shop) == {"processed": 4}
    assert client.get("/healthz/inbound").get_json()["failed"] == 0


def test_a_journalled_body_this_version_cannot_read_is_parked_with_its_error(
    shop: Flask, client: FlaskClient, runner: FlaskCliRunner
) -> None:
    at(shop, TUESDAY_MORNING)
    with get_db(shop).session() as session:
        session.add(
            InboundNotification(
                digest="0" * 64,
                body=b'{"object": "whatsapp_business_account", "entry": "no list"}',
                received_at=TUESDAY_MORNING,
                priority=0,
                sort_at=TUESDAY_MORNING - timedelta(hours=1),
                state=NotificationState.PENDING,
            )
        )
    assert post_only(client, message_doc("Hallo", TUESDAY_MORNING, wamid="wamid.ok")) == 200
    process_inbound(shop)
    assert [m.wamid for m in inbound_messages(shop)] == ["wamid.ok"]
    listed = runner.invoke(args=["inbound", "list"])
    assert listed.exit_code == 0
    assert "failed" in listed.output and "PayloadError" in listed.output
    assert runner.invoke(args=["inbound", "retry", "--all-failed"]).exit_code == 1  # still bad
    assert runner.invoke(args=["inbound", "retry", "999999"]).exit_code == 1


def test_retry_needs_ids_or_all_failed(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["inbound", "retry"])
    assert result.exit_code == 2
    assert "give notification ids or --all-failed" in result.output


# --- health ------------------------------------------------------------------------------------


def test_health_turns_503_when_a_notification_waits_over_a_minute(
    shop: Flask, client: FlaskClient
) -> None:
    at(shop, TUESDAY_MORNING)
    ok = client.get("/healthz/inbound")
    assert ok.status_code == 200
    assert ok.get_json() == {
        "status": "ok",
        "oldest_unprocessed_age": None,
        "unprocessed": 0,
        "failed": 0,
        "problems": [],
    }
    assert post_only(client, message_doc("Hallo", TUESDAY_MORNING, wamid="wamid.w")) == 200
    at(shop, TUESDAY_MORNING + timedelta(seconds=30))
    assert client.get("/healthz/inbound").status_code == 200
    at(shop, TUESDAY_MORNING + timedelta(seconds=61))
    stale = client.get("/healthz/inbound")
    assert stale.status_code == 503
    doc = stale.get_json()
    assert doc["status"] == "stale" and doc["unprocessed"] == 1
    assert doc["oldest_unprocessed_age"] == pytest.approx(61)
    process_inbound(shop)
    assert client.get("/healthz/inbound").status_code == 200


def test_processed_digests_are_pruned_after_meta_stops_redelivering(
    shop: Flask, client: FlaskClient
) -> None:
    at(shop, TUESDAY_MORNING)
    assert post_only(client, message_doc("Hallo", TUESDAY_MORNING, wamid="wamid.p")) == 200
    process_inbound(shop)
    with get_db(shop).session() as session:
        assert journal.prune(session, TUESDAY_MORNING + timedelta(days=7)) == 0
        assert journal.prune(session, TUESDAY_MORNING + timedelta(days=9)) == 1


# --- the thread --------------------------------------------------------------------------------


def test_the_processor_thread_wakes_for_a_new_notification(
    shop: Flask, client: FlaskClient
) -> None:
    """In python app.py the web and the processor share a process; on PostgreSQL a separate
    worker is woken by NOTIFY. Either way the message is processed without a poll's delay
    being needed for correctness."""
    at(shop, SUNDAY_EVENING)
    stop = threading.Event()
    queued = threading.Event()
    config = shop.config["TRESEN"]
    processor = Processor(
        get_db(shop),
        ours=config.phone_number_id,
        clock=lambda: SUNDAY_EVENING,
        on_queued=queued.set,
    )
    thread = threading.Thread(target=processor.run, args=(stop,), daemon=True)
    thread.start()
    try:
        time.sleep(0.3)  # idle, waiting
        assert post_only(client, message_doc("Hallo", SUNDAY_EVENING, wamid="wamid.t")) == 200
        assert queued.wait(10)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
    assert [r.rule for r in replies(shop)] == ["away"]


# --- a crash in the middle -------------------------------------------------------------------


def test_a_processor_killed_mid_batch_and_restarted_stores_and_replies_each_message_once(
    shop: Flask, database_url: str, tmp_path: Path
) -> None:
    now = utcnow()  # the worker reads the wall clock: the messages must be fresh for it
    database = get_db(shop)
    count = 600
    for n in range(count):
        doc = message_doc("Öffnungszeiten?", now, wa_id=f"4915400{n:06d}", wamid=f"wamid.k{n}")
        body = json.dumps(doc).encode()
        journal.record(database, body, Arrival(Priority.MESSAGES, now), now)
    env = {"DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path / "instance")}

    def processed() -> int:
        return journal_states(shop).get("processed", 0)

    first = Process(["flask", "--app", "app", "worker"], env, tmp_path / "worker1.log")
    with first:
        deadline = time.monotonic() + 60
        while processed() == 0 and time.monotonic() < deadline:
            time.sleep(0.002)
        first.kill()  # SIGKILL: no chance to finish the batch or roll it back itself
    halfway = processed()
    assert 0 < halfway < count, first.output()
    with Process(["flask", "--app", "app", "worker"], env, tmp_path / "worker2.log") as second:
        deadline = time.monotonic() + 90
        while processed() < count and time.monotonic() < deadline:
            time.sleep(0.1)
        assert processed() == count, second.output()
    stored = inbound_messages(shop)
    assert sorted(m.wamid or "" for m in stored) == sorted(f"wamid.k{n}" for n in range(count))
    answers = replies(shop)
    assert len(answers) == count
    assert {a.in_reply_to for a in answers} == {m.id for m in stored}
    assert {a.rule for a in answers} == {"keyword"}


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in found.stdout.split()]


def _wait_for(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" in status.read_text()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux process handling")
def test_the_worker_and_its_processor_process_end_together(
    app: Flask, database_url: str, tmp_path: Path
) -> None:
    """A worker whose processor died stops with status 1, for the platform to start it
    anew; a processor whose worker died (even by SIGKILL) ends too."""
    env = {"DATABASE_URL": database_url, "INSTANCE_PATH": str(tmp_path / "instance")}
    with Process(["flask", "--app", "app", "worker"], env, tmp_path / "w1.log") as worker:
        assert _wait_for(lambda: bool(_children(worker.proc.pid)), 20), worker.output()
        [child] = _children(worker.proc.pid)
        os.kill(child, signal.SIGKILL)
        assert worker.proc.wait(30) == 1, worker.output()
        assert "the inbound processor ended; stopping the worker" in worker.output()
    with Process(["flask", "--app", "app", "worker"], env, tmp_path / "w2.log") as worker:
        assert _wait_for(lambda: bool(_children(worker.proc.pid)), 20), worker.output()
        [child] = _children(worker.proc.pid)
        os.kill(worker.proc.pid, signal.SIGKILL)  # the worker alone, not its group
        worker.proc.wait(10)
        assert _wait_for(lambda: _gone(child), 15), "the processor outlived its worker"
