"""Read receipts and the typing indicator: the settings, the rules, queueing from the inbox
(once per message, rate-limited), and sending through the shared send rate, stale ones
dropped; `responses` at the Graph boundary, the fake Graph API end to end."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient
from responses import matchers
from responses.registries import OrderedRegistry
from sqlalchemy import select

from bot import users
from bot.channels.console import ConsoleTransport
from bot.channels.errors import PermanentError, RetryLater
from bot.db import Database, get_db
from bot.models import (
    AuditEntry,
    Contact,
    ConversationRead,
    Message,
    Signal,
    SignalKind,
    SignalState,
    User,
)
from bot.outbound import outbox, signals
from bot.outbound.dispatcher import Dispatcher
from bot.outbound.ratelimit import SharedRate
from bot.outbound.signal_sender import SignalSender
from bot.settings import (
    InboxSignals,
    SettingsError,
    dump_settings,
    parse_settings,
)
from bot.settings.stored import load_settings, save_settings
from bot.whatsapp.graph import GraphClient
from bot.whatsapp.payloads import text_payload
from tests.fakegraph import FakeGraph
from tests.test_admin import NOW, Clock, contact_id, csrf_of, login, make_user, receive

TOKEN = "EAAG-test-token"
PHONE = "106540352242922"
BASE = "https://graph.facebook.com"
URL = f"{BASE}/v24.0/{PHONE}/messages"
HEAD = "business: {name: Kiosk}\n"


# --- the settings ------------------------------------------------------------------------------


def test_inbox_settings_default_to_typing_without_receipts() -> None:
    assert parse_settings(HEAD).inbox == InboxSignals(read_receipts=False, typing_indicator=True)
    s = parse_settings(HEAD + "inbox: {read_receipts: true, typing_indicator: false}\n")
    assert s.inbox == InboxSignals(read_receipts=True, typing_indicator=False)
    assert parse_settings(HEAD + "inbox: {read_receipts: yes}\n").inbox.typing_indicator is True


@pytest.mark.parametrize("receipts", [True, False])
@pytest.mark.parametrize("typing", [True, False])
def test_inbox_settings_round_trip(receipts: bool, typing: bool) -> None:
    s = parse_settings(
        HEAD + f"inbox: {{read_receipts: {str(receipts).lower()}, "
        f"typing_indicator: {str(typing).lower()}}}\n"
    )
    text = dump_settings(s)
    assert f"inbox: {{read_receipts: {str(receipts).lower()}, " in text
    assert parse_settings(text) == s


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("inbox:\n  read_receipts: sometimes\n", "inbox.read_receipts must be true or false"),
        ("inbox:\n  typing_indicator: 5\n", "inbox.typing_indicator must be true or false"),
        ("inbox:\n  typing: true\n", "unknown key 'typing' in inbox"),
    ],
)
def test_a_bad_inbox_value_names_its_line(text: str, reason: str) -> None:
    with pytest.raises(SettingsError) as info:
        parse_settings(HEAD + text)
    assert info.value.line == 3
    assert reason in info.value.reason


# --- the rules ---------------------------------------------------------------------------------

ON = InboxSignals(read_receipts=True, typing_indicator=True)
OFF = InboxSignals(read_receipts=False, typing_indicator=False)


def test_read_due_once_and_only_when_wanted_and_unread() -> None:
    assert signals.read_due(ON, unread_by_anyone=True, receipt_queued_before=False)
    assert not signals.read_due(ON, unread_by_anyone=True, receipt_queued_before=True)
    assert not signals.read_due(ON, unread_by_anyone=False, receipt_queued_before=False)
    assert not signals.read_due(OFF, unread_by_anyone=True, receipt_queued_before=False)


def test_typing_due_within_the_window_every_20_seconds() -> None:
    wrote = NOW - timedelta(hours=1)
    assert signals.typing_due(ON, last_inbound_at=wrote, last_typing_at=None, now=NOW)
    recent = NOW - timedelta(seconds=19)
    assert not signals.typing_due(ON, last_inbound_at=wrote, last_typing_at=recent, now=NOW)
    earlier = NOW - timedelta(seconds=20)
    assert signals.typing_due(ON, last_inbound_at=wrote, last_typing_at=earlier, now=NOW)
    long_ago = NOW - timedelta(hours=24)
    assert not signals.typing_due(ON, last_inbound_at=long_ago, last_typing_at=None, now=NOW)
    assert not signals.typing_due(ON, last_inbound_at=None, last_typing_at=None, now=NOW)
    assert not signals.typing_due(OFF, last_inbound_at=wrote, last_typing_at=None, now=NOW)


def test_a_typing_indicator_older_than_25_seconds_is_stale_a_receipt_never() -> None:
    typing = signals.Claimed(1, SignalKind.TYPING, "wamid.x", NOW, 1)
    assert not signals.is_stale(typing, NOW + timedelta(seconds=25))
    assert signals.is_stale(typing, NOW + timedelta(seconds=26))
    read = signals.Claimed(2, SignalKind.READ, "wamid.x", NOW, 1)
    assert not signals.is_stale(read, NOW + timedelta(days=2))


def test_rate_limits_and_server_errors_are_retried_a_couple_of_times() -> None:
    first = signals.Claimed(1, SignalKind.READ, "wamid.x", NOW, 1)
    busy = RetryLater("HTTP 429", http_status=429, retry_after=2.0)
    retry = signals.after_error(first, busy, NOW)
    assert (
        retry.kind == "retry" and retry.due is not None and retry.due >= NOW + timedelta(seconds=2)
    )
    last = signals.Claimed(1, SignalKind.READ, "wamid.x", NOW, signals.MAX_ATTEMPTS)
    assert signals.after_error(last, busy, NOW).kind == "failed"
    refused = PermanentError("(#100) Invalid parameter", http_status=400, code=100)
    assert signals.after_error(first, refused, NOW) == signals.Outcome(
        1, "failed", error=refused.reason
    )


# --- queueing from the inbox -------------------------------------------------------------------


@pytest.fixture
def clock(app: Flask) -> Clock:
    fixed = Clock(NOW)
    app.config["TRESEN_CLOCK"] = fixed
    return fixed


@pytest.fixture
def owner(app: Flask, client: FlaskClient, clock: Clock) -> FlaskClient:
    make_user(app)
    use(app, receipts=True, typing=True)
    assert login(client).status_code == 302
    return client


def use(app: Flask, *, receipts: bool, typing: bool) -> None:
    """The stored settings (the demo's at first) with these inbox settings."""
    with get_db(app).session() as session:
        settings = load_settings(session)
        base = _without_inbox(dump_settings(settings) if settings is not None else HEAD)
        flags = f"read_receipts: {str(receipts).lower()}, typing_indicator: {str(typing).lower()}"
        save_settings(session, base + f"inbox: {{{flags}}}\n")


def _without_inbox(text: str) -> str:
    return "".join(line for line in text.splitlines(keepends=True) if not line.startswith("inbox:"))


def stored(app: Flask) -> list[Signal]:
    with get_db(app).session() as session:
        return list(session.scalars(select(Signal).order_by(Signal.id)))


def open_conversation(owner: FlaskClient, cid: int) -> str:
    response = owner.get(f"/admin/inbox/{cid}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_opening_an_unread_conversation_queues_one_read_receipt(
    app: Flask, owner: FlaskClient, clock: Clock
) -> None:
    receive(owner, {"id": "wamid.first"}, at=NOW - timedelta(minutes=2))
    last = receive(owner, {"id": "wamid.second"}, at=NOW - timedelta(minutes=1))
    cid = contact_id(app)
    open_conversation(owner, cid)
    open_conversation(owner, cid)  # opened again: read already, and never twice anyway
    rows = stored(app)
    assert [(s.kind, s.wamid, s.state) for s in rows] == [("read", last, "pending")]
    assert rows[0].contact_id == cid and rows[0].created_at == NOW

    # A new message, then opened again: its own receipt.
    clock.at = NOW + timedelta(minutes=5)
    newer = receive(owner, {"id": "wamid.third"}, at=clock.at)
    open_conversation(owner, cid)
    assert [s.wamid for s in stored(app)] == [last, newer]


def test_no_read_receipt_when_the_setting_is_off(app: Flask, owner: FlaskClient) -> None:
    use(app, receipts=False, typing=True)
    receive(owner, {"id": "wamid.off"})
    open_conversation(owner, contact_id(app))
    assert stored(app) == []


def test_no_read_receipt_for_a_message_someone_has_read(app: Flask, owner: FlaskClient) -> None:
    receive(owner, {"id": "wamid.seen"})
    cid = contact_id(app)
    with get_db(app).session() as session:
        message = session.scalars(select(Message).where(Message.wamid == "wamid.seen")).one()
        # Another user opened it before (and the shared count is up again meanwhile).
        users.create_or_reset(session, "staff", "another password 123", now=NOW)
        other = session.scalars(select(User).where(User.name == "staff")).one()
        session.add(ConversationRead(user_id=other.id, contact_id=cid, read_up_to=message.id))
    open_conversation(owner, cid)
    assert stored(app) == []


def test_a_receipt_for_the_same_message_is_never_queued_twice(app: Flask) -> None:
    with get_db(app).session() as session:
        contact = Contact(wa_id="4915100000001", name="Anna", unread=1, last_inbound_at=NOW)
        session.add(contact)
        session.flush()
        session.add(_inbound(contact.id, "wamid.once"))
        session.flush()
        assert signals.queue_read(session, contact, ON, now=NOW) is not None
        # Still unread by the team (nobody's view marked it seen): the wamid decides.
        assert signals.queue_read(session, contact, ON, now=NOW) is None
    assert len(stored(app)) == 1


def _inbound(contact_id: int, wamid: str, at: datetime = NOW) -> Message:
    return Message(
        contact_id=contact_id,
        direction="in",
        wamid=wamid,
        type="text",
        text="Hallo",
        created_at=at,
        timestamp=at,
        status="received",
        status_at=at,
    )


def typing(owner: FlaskClient, cid: int, token: str) -> Any:
    return owner.post(
        f"/admin/inbox/{cid}/typing",
        headers={"X-CSRFToken": token, "Accept": "application/json"},
    )


def test_typing_posts_within_20_seconds_queue_one_indicator(
    app: Flask, owner: FlaskClient, clock: Clock
) -> None:
    use(app, receipts=False, typing=True)
    last = receive(owner, {"id": "wamid.typing"}, at=NOW - timedelta(minutes=1))
    cid = contact_id(app)
    token = csrf_of(open_conversation(owner, cid))
    assert typing(owner, cid, token).get_json() == {"queued": True}
    clock.at = NOW + timedelta(seconds=10)
    assert typing(owner, cid, token).get_json() == {"queued": False}
    assert [(s.kind, s.wamid) for s in stored(app)] == [("typing", last)]
    clock.at = NOW + timedelta(seconds=20)
    assert typing(owner, cid, token).get_json() == {"queued": True}
    assert [s.kind for s in stored(app)] == ["typing", "typing"]
    # Typing changes nothing a person would look for in the audit log.
    with get_db(app).session() as session:
        assert session.scalars(select(AuditEntry.action)).all() == []


def test_no_typing_indicator_when_off_or_outside_the_window(
    app: Flask, owner: FlaskClient, clock: Clock
) -> None:
    receive(owner, {"id": "wamid.old"}, at=NOW - timedelta(hours=25))
    cid = contact_id(app)
    token = csrf_of(open_conversation(owner, cid))
    assert typing(owner, cid, token).get_json() == {"queued": False}
    use(app, receipts=False, typing=False)
    receive(owner, {"id": "wamid.new"}, at=NOW)
    assert typing(owner, cid, token).get_json() == {"queued": False}
    assert [s.kind for s in stored(app)] == ["read"]  # from opening, receipts were on then


def test_the_typing_post_needs_the_csrf_token_and_a_login(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    make_user(app)
    receive(client, {"id": "wamid.csrf"})
    cid = contact_id(app)
    assert client.post(f"/admin/inbox/{cid}/typing").status_code in (400, 403)
    assert login(client).status_code == 302
    assert client.post(f"/admin/inbox/{cid}/typing").status_code in (400, 403)
    token = csrf_of(open_conversation(client, cid))
    assert typing(client, cid, token).status_code == 200
    assert typing(client, 999999, token).status_code == 404


def test_the_conversation_page_loads_the_typing_script(app: Flask, owner: FlaskClient) -> None:
    receive(owner)
    html = open_conversation(owner, contact_id(app))
    assert "/admin/static/typing.js" in html
    script = owner.get("/admin/static/typing.js").get_data(as_text=True)
    assert "X-CSRFToken" in script and "20000" in script


# --- sending ---------------------------------------------------------------------------------


def queue_signal(
    app: Flask, kind: SignalKind, wamid: str, *, at: datetime = NOW, wa_id: str = "4915100000009"
) -> int:
    with get_db(app).session() as session:
        contact = session.scalar(select(Contact).where(Contact.wa_id == wa_id))
        if contact is None:
            contact = Contact(wa_id=wa_id, name="Anna", last_inbound_at=at)
            session.add(contact)
            session.flush()
        signal = Signal(
            contact_id=contact.id,
            kind=kind,
            wamid=wamid,
            state=SignalState.PENDING,
            created_at=at,
            attempts=0,
        )
        session.add(signal)
        session.flush()
        return signal.id


@pytest.fixture
def graph_api() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(
        assert_all_requests_are_fired=True, registry=OrderedRegistry
    ) as rsps:
        yield rsps


def sender_for(
    app: Flask, transport: Any, clock: Clock, rate: SharedRate | None = None
) -> SignalSender:
    return SignalSender(get_db(app), transport, rate=rate, worker="w1", clock=clock)


def test_a_read_receipt_and_a_typing_indicator_go_as_metas_requests(
    app: Flask, graph_api: responses.RequestsMock
) -> None:
    queue_signal(app, SignalKind.READ, "wamid.r")
    queue_signal(app, SignalKind.TYPING, "wamid.t")
    headers = matchers.header_matcher({"Authorization": f"Bearer {TOKEN}"})
    read = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.r"}
    shown = {**read, "message_id": "wamid.t", "typing_indicator": {"type": "text"}}
    for body in (read, shown):
        graph_api.post(
            URL, json={"success": True}, match=[headers, matchers.json_params_matcher(body)]
        )
    clock = Clock(NOW + timedelta(seconds=1))
    with GraphClient(BASE, "v24.0", PHONE, TOKEN) as client:
        assert sender_for(app, client, clock).turn(threading.Event()) == 2
    rows = stored(app)
    assert [(s.state, s.attempts, s.error, s.claimed_by) for s in rows] == [
        ("sent", 1, None, None),
        ("sent", 1, None, None),
    ]
    assert rows[0].sent_at == clock.at


def test_a_429_is_retried_and_a_refusal_recorded(
    app: Flask, graph_api: responses.RequestsMock
) -> None:
    busy = queue_signal(app, SignalKind.READ, "wamid.busy")
    graph_api.post(URL, status=429, json={"error": {"message": "slow down", "code": 4}})
    clock = Clock(NOW)
    with GraphClient(BASE, "v24.0", PHONE, TOKEN) as client:
        sender = sender_for(app, client, clock)
        sender.turn(threading.Event())
        (row,) = stored(app)
        assert (row.state, row.attempts) == ("pending", 1) and row.error
        assert row.claimed_until is not None and row.claimed_until > NOW
        assert sender.turn(threading.Event()) == 0  # not due yet
        clock.at = NOW + timedelta(minutes=1)
        graph_api.post(URL, json={"success": True})
        assert sender.turn(threading.Event()) == 1
        assert [(s.id, s.state, s.attempts) for s in stored(app)] == [(busy, "sent", 2)]

        refused = queue_signal(app, SignalKind.READ, "wamid.gone")
        graph_api.post(
            URL,
            status=400,
            json={"error": {"message": "(#100) Invalid parameter", "code": 100}},
        )
        sender.turn(threading.Event())
    row = next(s for s in stored(app) if s.id == refused)
    assert row.state == "failed" and "Invalid parameter" in (row.error or "")


def test_a_typing_indicator_whose_turn_comes_late_is_dropped(
    app: Flask, graph_api: responses.RequestsMock
) -> None:
    queue_signal(app, SignalKind.TYPING, "wamid.late", at=NOW)
    clock = Clock(NOW + timedelta(seconds=26))
    with GraphClient(BASE, "v24.0", PHONE, TOKEN) as client:
        assert sender_for(app, client, clock).turn(threading.Event()) == 1
    (row,) = stored(app)
    assert (row.state, row.error) == ("failed", "stale")
    assert len(graph_api.calls) == 0


def test_console_mode_logs_the_signals(app: Flask, caplog: pytest.LogCaptureFixture) -> None:
    queue_signal(app, SignalKind.TYPING, "wamid.console")
    with caplog.at_level(logging.INFO, logger="tresen.outbound"):
        sender_for(app, ConsoleTransport(), Clock(NOW)).turn(threading.Event())
    assert "would send read receipt for wamid.console with typing indicator" in caplog.text
    assert [s.state for s in stored(app)] == ["sent"]


def test_a_claim_run_out_is_taken_over_and_claims_skip_each_other(app: Flask) -> None:
    first = queue_signal(app, SignalKind.READ, "wamid.a")
    second = queue_signal(app, SignalKind.READ, "wamid.b")
    lease = timedelta(seconds=30)
    with get_db(app).session() as session:
        assert [c.id for c in signals.claim(session, "w1", 1, now=NOW, lease=lease)] == [first]
    with get_db(app).session() as session:
        assert [c.id for c in signals.claim(session, "w2", 5, now=NOW, lease=lease)] == [second]
    later = NOW + lease + timedelta(seconds=1)
    with get_db(app).session() as session:
        again = signals.claim(session, "w2", 5, now=later, lease=lease)
        assert [(c.id, c.attempts) for c in again] == [(first, 2), (second, 2)]
        # A late result of the first claimer changes nothing.
        signals.record(session, "w1", [signals.Outcome(first, "sent")], now=later)
    assert [s.state for s in stored(app)] == ["pending", "pending"]


# --- with the dispatcher, through one send rate, against the fake Graph API ----------------------


class Timed:
    """A transport that notes when each request went out."""

    def __init__(self, inner: GraphClient) -> None:
        self.inner = inner
        self.times: list[float] = []
        self._lock = threading.Lock()

    def send(self, payload: dict[str, Any]) -> str:
        with self._lock:
            self.times.append(time.monotonic())
        return self.inner.send(payload)


def test_signals_and_messages_share_the_send_rate(app: Flask) -> None:
    now = datetime.now(UTC)
    for i in range(4):
        queue_signal(app, SignalKind.READ, f"wamid.rate{i}", at=now)
    with get_db(app).session() as session:
        for i in range(2):
            contact = Contact(wa_id=f"49151000100{i}", name=f"Kunde {i}")
            session.add(contact)
            session.flush()
            outbox.enqueue(session, contact, text_payload(contact.wa_id or "", "Hallo"), now=now)
    url = get_db(app).url
    with FakeGraph(token=TOKEN) as graph:
        client = GraphClient(graph.url, "v24.0", PHONE, TOKEN, pool_size=4)
        timed = Timed(client)
        dispatcher = Dispatcher(
            Database(url), timed, rate=SharedRate(Database(url), 2.0, PHONE), poll=0.05
        )
        sender = SignalSender(
            Database(url), timed, rate=SharedRate(Database(url), 2.0, PHONE), worker="s", poll=0.05
        )
        stop = threading.Event()
        threads = [
            threading.Thread(target=dispatcher.run, args=(stop,)),
            threading.Thread(target=sender.run, args=(stop,)),
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        try:
            assert graph.wait_for(6, timeout=20)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
        assert len(graph.signals) == 4
        assert {r.json["message_id"] for r in graph.signals} == {f"wamid.rate{i}" for i in range(4)}
    times = sorted(timed.times)
    assert len(times) == 6
    # Six requests at 2 a second, whoever sends them: the n-th no earlier than n half seconds
    # after the start (a request may go a little after its slot, never before it).
    for n, sent in enumerate(times):
        assert sent - started >= n * 0.5 - 0.02, (n, [t - started for t in times])


def test_end_to_end_a_person_opens_and_types_and_the_customer_sees_it(
    app: Flask, owner: FlaskClient, clock: Clock
) -> None:
    last = receive(owner, {"id": "wamid.e2e"}, at=NOW - timedelta(minutes=1))
    cid = contact_id(app)
    token = csrf_of(open_conversation(owner, cid))
    assert typing(owner, cid, token).get_json() == {"queued": True}
    with FakeGraph(token=TOKEN) as graph:
        client = GraphClient(graph.url, "v24.0", PHONE, TOKEN)
        sender = SignalSender(
            Database(get_db(app).url), client, rate=None, worker="e2e", clock=clock, poll=0.05
        )
        stop = threading.Event()
        thread = threading.Thread(target=sender.run, args=(stop,))
        thread.start()
        try:
            assert graph.wait_for(2, timeout=10)
        finally:
            stop.set()
            thread.join(10)
        bodies = [r.json for r in graph.signals]
    read = {"messaging_product": "whatsapp", "status": "read", "message_id": last}
    assert bodies == [read, {**read, "typing_indicator": {"type": "text"}}]
    assert [s.state for s in stored(app)] == ["sent", "sent"]
