"""Outgoing webhooks: the signature, the address guard, the events each edge emits, and
deliveries to real HTTP receivers on 127.0.0.1 (retried, never redirected, never sent to a
refused address), and an endpoint disabled after three days of failures."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from bot.contacts.consent import ConsentSource, set_opt_in
from bot.db import get_db
from bot.models import (
    Contact,
    Direction,
    Message,
    MessageStatus,
    Notice,
    WebhookDelivery,
    WebhookEndpoint,
)
from bot.outbound import outbox
from bot.retention import DailyRetention
from bot.settings.stored import seed_demo
from bot.webhooks_out import events, guard, sending, store
from bot.webhooks_out.deliverer import Deliverer
from bot.webhooks_out.events import DeliveryStatus, EventKind
from bot.webhooks_out.guard import NOTHING_ALLOWED, parse_allowed
from bot.webhooks_out.sending import Poster
from tests.conftest import build_app, post_notification, process_inbound, signed_headers
from tests.payloads import notification, status_notification
from tests.test_admin import NOW, Clock
from tests.test_api import make_key

ANNA = "4915112345678"
ALL_EVENTS = [str(kind) for kind in events.SUBSCRIBABLE]


# --- the signature ---------------------------------------------------------------------------


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # Worked out with `openssl dgst -sha256 -hmac whsec_test` over `1700000000.{"id":"1"}`.
    expected = "sha256=11bf4466ea17c3df3fd743af0b435368e16b7a05eb8eced85e8c4670767bdec5"
    assert events.signature("whsec_test", 1700000000, b'{"id":"1"}') == expected


def test_a_receiver_refuses_a_changed_body_another_secret_and_an_old_timestamp() -> None:
    body = b'{"id":"1"}'
    at = datetime.fromtimestamp(1700000000, UTC)
    signed = events.signature("whsec_test", 1700000000, body)
    assert events.verify("whsec_test", "1700000000", signed, body, at + timedelta(minutes=4))
    assert not events.verify("whsec_test", "1700000000", signed, b'{"id":"2"}', at)
    assert not events.verify("whsec_other", "1700000000", signed, body, at)
    assert not events.verify("whsec_test", "1700000000", signed, body, at + timedelta(minutes=6))


def test_secrets_are_prefixed_random_and_long() -> None:
    one, two = events.new_secret(), events.new_secret()
    assert one.startswith("whsec_") and len(one) == 6 + 43 and one != two


def test_the_body_is_the_envelope_with_id_event_time_and_data() -> None:
    text = events.body("e-1", EventKind.PING, NOW, {"a": "ü"})
    assert json.loads(text) == {
        "id": "e-1",
        "event": "ping",
        "created_at": "2026-03-11T09:00:00+00:00",
        "data": {"a": "ü"},
    }


# --- the address guard -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("::1", "::1 is a loopback address"),
        ("10.1.2.3", "10.1.2.3 is a private address"),
        ("172.16.0.1", "172.16.0.1 is a private address"),
        ("172.31.255.254", "172.31.255.254 is a private address"),
        ("192.168.1.10", "192.168.1.10 is a private address"),
        ("169.254.169.254", "169.254.169.254 is a link-local address"),
        ("fc00::1", "fc00::1 is a private address"),
        ("fd12:3456::1", "fd12:3456::1 is a private address"),
        ("fe80::1", "fe80::1 is a link-local address"),
        ("::ffff:10.0.0.1", "10.0.0.1 is a private address"),
        ("::ffff:127.0.0.1", "127.0.0.1 is a loopback address"),
        ("0.0.0.0", "0.0.0.0 is an unspecified address"),
        ("::", ":: is an unspecified address"),
        ("224.0.0.251", "224.0.0.251 is a multicast address"),
        ("100.64.0.1", "100.64.0.1 is not a public address"),
        ("93.184.216.34", None),
        ("172.32.0.1", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_private_and_special_addresses_are_refused(address: str, reason: str | None) -> None:
    refused = guard.refusal(address, NOTHING_ALLOWED)
    assert (None if refused is None else str(refused)) == (
        None if reason is None else f"address refused: {reason}"
    )


def test_the_allow_list_takes_networks_addresses_and_host_names() -> None:
    allowed = parse_allowed(" 127.0.0.1/32, 10.0.0.0/8 ,fd00::/8, hooks.internal.")
    assert guard.refusal("127.0.0.1", allowed) is None
    assert guard.refusal("10.200.0.1", allowed) is None
    assert guard.refusal("::ffff:10.0.0.1", allowed) is None
    assert guard.refusal("fd00::5", allowed) is None
    assert str(guard.refusal("127.0.0.2", allowed)).endswith("127.0.0.2 is a loopback address")
    assert guard.refusal("192.168.0.1", allowed, "hooks.internal") is None
    assert guard.refusal("192.168.0.1", allowed, "other.internal") is not None
    assert parse_allowed("") == NOTHING_ALLOWED
    with pytest.raises(ValueError, match=r"10\.0\.0\.0/33"):
        parse_allowed("10.0.0.0/33")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://shop.example/hook", None),
        ("http://127.0.0.1:8080/hook", None),
        ("ftp://shop.example/hook", guard.UrlProblem.SCHEME),
        ("file:///etc/passwd", guard.UrlProblem.SCHEME),
        ("https://user:pw@shop.example/", guard.UrlProblem.CREDENTIALS),
        ("https:///hook", guard.UrlProblem.HOST),
        ("https://shop.example:99999/", guard.UrlProblem.FORM),
    ],
)
def test_only_http_urls_with_a_host_are_taken(url: str, problem: guard.UrlProblem | None) -> None:
    assert guard.url_problem(url) == problem


# --- a receiver on 127.0.0.1 -------------------------------------------------------------------


class Receiver:
    """An HTTP server answering POSTs with the scripted statuses in turn (then the last one),
    recording each request."""

    def __init__(self, *statuses: int, location: str | None = None) -> None:
        self.statuses = list(statuses) or [200]
        self.location = location
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                receiver.requests.append((dict(self.headers.items()), self.rfile.read(length)))
                turn = min(len(receiver.requests), len(receiver.statuses)) - 1
                status = receiver.statuses[turn]
                self.send_response(status)
                if receiver.location and 300 <= status < 400:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                receiver.arrived.set()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for receiver in made:
        receiver.close()


def receiver(made: list[Receiver], *statuses: int, location: str | None = None) -> Receiver:
    one = Receiver(*statuses, location=location)
    made.append(one)
    return one


@pytest.fixture
def hooks_app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The app with 127.0.0.1 allowed for webhooks, as an operator would allow it."""
    app = build_app(database_url, tmp_path, WEBHOOKS_ALLOW_PRIVATE="127.0.0.1/32")
    app.config["TRESEN_CLOCK"] = Clock(NOW)
    yield app
    get_db(app).dispose()


def endpoint(app: Flask, url: str, kinds: list[str] | None = None) -> tuple[int, str]:
    with get_db(app).session() as session:
        made, secret = store.create_endpoint(
            session, url, ALL_EVENTS if kinds is None else kinds, by=None, now=NOW
        )
        return made.id, secret


def deliverer(app: Flask, allowed: guard.Allowed | None = None) -> Deliverer:
    config = app.config["TRESEN"]
    poster = Poster(config.webhooks_allow_private if allowed is None else allowed)
    return Deliverer(get_db(app), poster, worker="w1", clock=app.config["TRESEN_CLOCK"])


def deliveries(app: Flask) -> list[WebhookDelivery]:
    with get_db(app).session() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def ping(app: Flask, endpoint_id: int, at: datetime = NOW) -> None:
    with get_db(app).session() as session:
        found = session.get(WebhookEndpoint, endpoint_id)
        assert found is not None
        store.ping(session, found, at)


def verified(secret: str, headers: dict[str, str], body: bytes, now: datetime) -> bool:
    """What a shop's receiver does, written here on its own (as the README shows it)."""
    timestamp = headers["Tresen-Timestamp"]
    if abs(now.timestamp() - int(timestamp)) > 300:
        return False
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + mac.hexdigest(), headers["Tresen-Signature"])


def test_a_receiver_that_fails_twice_then_recovers_gets_the_event_once_signed(
    hooks_app: Flask, receivers: list[Receiver]
) -> None:
    app, clock = hooks_app, hooks_app.config["TRESEN_CLOCK"]
    shop = receiver(receivers, 500, 500, 200)
    endpoint_id, secret = endpoint(app, shop.url, ["message.received"])
    post_notification(app.test_client(), notification(wa_id=ANNA, name="Anna"))
    [queued] = deliveries(app)
    assert queued.status == DeliveryStatus.PENDING and queued.event == "message.received"
    sender = deliverer(app)

    assert sender.turn() == 1  # 500
    [after_one] = deliveries(app)
    assert (after_one.status, after_one.attempts, after_one.last_status) == ("pending", 1, 500)
    assert after_one.due_at > NOW
    assert sender.turn() == 0  # not due yet: it waits its backoff
    clock.at = after_one.due_at
    assert sender.turn() == 1  # 500 again
    [after_two] = deliveries(app)
    clock.at = after_two.due_at
    assert sender.turn() == 1  # 200
    assert sender.turn() == 0

    [sent] = deliveries(app)
    assert (sent.status, sent.attempts, sent.last_status, sent.last_error) == ("sent", 3, 200, None)
    assert len(shop.requests) == 3
    for headers, body in shop.requests:
        assert verified(secret, headers, body, clock.at)
        assert body.decode() == sent.body
        assert headers["Tresen-Event"] == "message.received"
        assert headers["Tresen-Delivery"] == str(sent.id)
        assert headers["User-Agent"] == "Tresen-Webhooks/1"
    doc = json.loads(shop.requests[-1][1])
    assert doc["event"] == "message.received" and doc["id"] == sent.event_id
    assert doc["data"]["contact"]["wa_id"] == ANNA and doc["data"]["contact"]["name"] == "Anna"
    assert doc["data"]["message"]["text"] == "Hallo!"
    assert doc["data"]["message"]["wamid"].startswith("wamid.")
    with get_db(app).session() as session:
        shown = session.get(WebhookEndpoint, endpoint_id)
        assert shown is not None
        assert (shown.last_status, shown.last_error, shown.failing_since) == (200, None, None)


def test_a_redirect_to_another_host_is_not_followed(
    hooks_app: Flask, receivers: list[Receiver]
) -> None:
    elsewhere = receiver(receivers, 200)
    shop = receiver(receivers, 302, location=elsewhere.url)
    endpoint_id, _secret = endpoint(hooks_app, shop.url)
    ping(hooks_app, endpoint_id)
    deliverer(hooks_app).turn()
    [delivery] = deliveries(hooks_app)
    assert len(shop.requests) == 1 and elsewhere.requests == []
    assert delivery.status == "pending" and delivery.last_error == "redirect refused (HTTP 302)"


def test_an_address_not_allowed_is_never_connected_to(
    app: Flask, receivers: list[Receiver]
) -> None:
    app.config["TRESEN_CLOCK"] = Clock(NOW)
    shop = receiver(receivers, 200)  # on 127.0.0.1, which this app does not allow
    endpoint_id, _secret = endpoint(app, shop.url)
    ping(app, endpoint_id)
    deliverer(app).turn()
    [delivery] = deliveries(app)
    assert shop.requests == []
    assert delivery.status == DeliveryStatus.FAILED  # no retry mends a refused address
    assert delivery.last_error == "address refused: 127.0.0.1 is a loopback address"


def test_a_name_resolving_to_a_private_address_is_refused_and_the_checked_address_used(
    hooks_app: Flask, receivers: list[Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = receiver(receivers, 200)
    looked_up: list[str] = []

    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        address = guard.literal(host) and host  # an address stands for itself
        if not address:
            looked_up.append(host)
            address = {"shop.example": "127.0.0.1", "intranet.example": "10.1.2.3"}[host]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(sending.socket, "getaddrinfo", resolve)
    refused_id, _ = endpoint(hooks_app, f"http://intranet.example:{shop.port}/hook")
    allowed_id, _ = endpoint(hooks_app, f"http://shop.example:{shop.port}/hook")
    ping(hooks_app, refused_id)
    ping(hooks_app, allowed_id)
    deliverer(hooks_app).turn()
    refused, sent = deliveries(hooks_app)
    assert refused.last_error == "address refused: 10.1.2.3 is a private address"
    assert refused.status == "failed" and sent.status == "sent"
    # Looked up once, connected to the address checked, the URL's host kept for the request.
    assert looked_up == ["intranet.example", "shop.example"]
    [(headers, _body)] = shop.requests
    assert headers["Host"] == f"shop.example:{shop.port}"


def test_a_url_with_a_private_literal_address_fails_with_the_reason(app: Flask) -> None:
    app.config["TRESEN_CLOCK"] = Clock(NOW)
    endpoint_id, _secret = endpoint(app, "http://10.1.2.3/hook")
    ping(app, endpoint_id)
    deliverer(app).turn()
    [delivery] = deliveries(app)
    assert delivery.last_error == "address refused: 10.1.2.3 is a private address"


def test_an_endpoint_failing_for_three_days_is_disabled_with_a_notice(
    hooks_app: Flask, receivers: list[Receiver]
) -> None:
    app, clock = hooks_app, hooks_app.config["TRESEN_CLOCK"]
    shop = receiver(receivers, 503)
    endpoint_id, _secret = endpoint(app, shop.url)
    ping(app, endpoint_id)
    sender = deliverer(app)
    sender.turn()
    clock.at = NOW + timedelta(days=2)
    ping(app, endpoint_id, clock.at)  # a newer event, still pending when the rule strikes
    with get_db(app).session() as session:
        shown = session.get(WebhookEndpoint, endpoint_id)
        assert shown is not None and shown.failing_since == NOW and shown.disabled_at is None
    clock.at = NOW + timedelta(days=3)
    while sender.turn():
        pass
    first, second = deliveries(app)
    assert first.status == "failed" and first.last_status == 503
    assert (second.status, second.last_error) == ("failed", "endpoint disabled")
    with get_db(app).session() as session:
        shown = session.get(WebhookEndpoint, endpoint_id)
        assert shown is not None and shown.disabled_at == clock.at
        assert "no success for 3 days" in (shown.disabled_reason or "")
        [notice] = session.scalars(select(Notice)).all()
        assert notice.kind == "webhook_disabled" and notice.details["url"] == shop.url
    # Disabled: new events are not queued for it.
    post_notification(app.test_client(), notification(wa_id=ANNA))
    assert len(deliveries(app)) == 2


def test_a_receiver_that_never_recovers_ends_failed_after_three_days(
    hooks_app: Flask, receivers: list[Receiver]
) -> None:
    app, clock = hooks_app, hooks_app.config["TRESEN_CLOCK"]
    shop = receiver(receivers, 500)
    endpoint_id, _secret = endpoint(app, shop.url)
    ping(app, endpoint_id)
    sender = deliverer(app)
    tries = 0
    while clock.at < NOW + timedelta(days=4) and tries < 200:
        tries += sender.turn()
        [delivery] = deliveries(app)
        if delivery.status != "pending":
            break
        clock.at = max(clock.at, delivery.due_at)
    assert delivery.status == "failed" and delivery.settled_at is not None
    assert NOW + timedelta(days=3) <= delivery.settled_at < NOW + timedelta(days=3, hours=2)
    assert 10 < tries == len(shop.requests)  # retried, backing off up to an hour apart


# --- events from each edge ----------------------------------------------------------------------


def kinds_queued(app: Flask) -> list[str]:
    return [d.event for d in deliveries(app)]


def test_no_endpoint_means_no_delivery_and_no_body_built(app: Flask) -> None:
    app.config["TRESEN_CLOCK"] = Clock(NOW)
    post_notification(app.test_client(), notification(wa_id=ANNA))
    assert deliveries(app) == []
    with get_db(app).session() as session:
        built: list[int] = []
        store.emit(session, EventKind.PING, lambda: built.append(1) or {}, now=NOW)
        assert built == []


def test_each_edge_emits_its_event(app: Flask, client: FlaskClient) -> None:
    from tests.test_team import owner as _owner  # noqa: F401
    from tests.test_team import post

    app.config["TRESEN_CLOCK"] = Clock(NOW)
    from tests.test_admin import demo_owner

    demo_owner(app, client)
    endpoint(app, "https://shop.example/hook")
    web = app.test_client()
    # A customer message, then their STOP: received twice, and opted out by keyword.
    post_notification(web, notification(wa_id=ANNA, name="Anna"))
    with get_db(app).session() as session:
        contact = session.scalars(select(Contact).where(Contact.wa_id == ANNA)).one()
        set_opt_in(session, contact, True, ConsentSource.IMPORT, NOW - timedelta(days=1))
        cid = contact.id
    stop = notification({"type": "text", "text": {"body": "STOP"}}, wa_id=ANNA, name="Anna")
    post_notification(web, stop)
    # A status callback for a message the shop sent.
    with get_db(app).session() as session:
        contact = session.get(Contact, cid)
        assert contact is not None
        sent = outbox.enqueue(session, contact, {"type": "text", "text": {"body": "Hi"}}, now=NOW)
        outbox.mark_sent(session, sent.id, "wamid.OUT-1", now=NOW)
    post_notification(web, status_notification("wamid.OUT-1", "delivered", 1773219700))
    # The admin opts them in, the API out again.
    assert post(client, f"/admin/inbox/{cid}/optin", {"opted_in": "y"}).status_code == 302
    token = make_key(app)
    patched = web.patch(
        f"/api/v1/contacts/{cid}",
        json={"opted_in": False},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert patched.status_code == 200
    assert kinds_queued(app) == [
        "message.received",
        "contact.opted_in",  # the import
        "contact.opted_out",  # by keyword, in the transaction storing the STOP
        "message.received",  # STOP
        "message.status",  # sent (the dispatcher's record)
        "message.status",  # delivered (Meta's callback)
        "contact.opted_in",  # admin
        "contact.opted_out",  # API
    ]
    docs = [json.loads(d.body) for d in deliveries(app)]
    assert all(d.contact_id == cid for d in deliveries(app))
    assert [d["data"]["source"] for d in docs if d["event"].startswith("contact.")] == [
        "import",
        "keyword",
        "admin",
        "api",
    ]
    statuses = [d["data"] for d in docs if d["event"] == "message.status"]
    assert [s["status"] for s in statuses] == ["sent", "delivered"]
    assert statuses[1]["message"]["wamid"] == "wamid.OUT-1"
    assert statuses[1]["contact"]["wa_id"] == ANNA


def test_a_batch_reads_the_endpoints_once_however_many_messages_it_stores(app: Flask) -> None:
    """The hot path: a batch of notifications costs one small query more, not one per message
    (and none is built when no endpoint wants it)."""
    app.config["TRESEN_CLOCK"] = Clock(NOW)
    web = app.test_client()
    for n in range(5):
        body = json.dumps(notification(wa_id=f"4915100000{n:03d}")).encode()
        assert (
            web.post("/webhooks/whatsapp", data=body, headers=signed_headers(body)).status_code
            == 200
        )
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = get_db(app).engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        assert process_inbound(app) == 5
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert sum("webhook_endpoints" in s for s in statements) == 1
    assert not any("webhook_deliveries" in s for s in statements)


def test_an_endpoint_gets_only_the_events_it_chose(app: Flask) -> None:
    app.config["TRESEN_CLOCK"] = Clock(NOW)
    endpoint(app, "https://a.example/", ["contact.opted_out"])
    endpoint(app, "https://b.example/", ["message.received"])
    post_notification(app.test_client(), notification(wa_id=ANNA))
    assert [(d.endpoint_id, d.event) for d in deliveries(app)] == [(2, "message.received")]


def test_a_failed_status_says_why(app: Flask) -> None:
    app.config["TRESEN_CLOCK"] = Clock(NOW)
    endpoint(app, "https://shop.example/hook", ["message.status"])
    with get_db(app).session() as session:
        contact = Contact(wa_id=ANNA, name="Anna", created_at=NOW)
        session.add(contact)
        session.flush()
        session.add(
            Message(
                contact_id=contact.id,
                direction=Direction.OUT,
                wamid="wamid.F",
                type="text",
                status=MessageStatus.SENT,
                created_at=NOW,
                timestamp=NOW,
            )
        )
    error = {"code": 131026, "title": "Message undeliverable"}
    doc = status_notification("wamid.F", "failed", 1773219700, errors=[error])
    post_notification(app.test_client(), doc)
    [delivery] = deliveries(app)
    data = json.loads(delivery.body)["data"]
    assert data["status"] == "failed"
    assert data["message"]["error"]["code"] == 131026
    assert "Message undeliverable" in data["message"]["error"]["reason"]


def test_settled_deliveries_are_deleted_after_thirty_days(app: Flask) -> None:
    app.config["TRESEN_CLOCK"] = Clock(NOW)
    with get_db(app).session() as session:
        seed_demo(session)
    endpoint_id, _secret = endpoint(app, "https://shop.example/hook")
    ping(app, endpoint_id)
    ping(app, endpoint_id)
    with get_db(app).session() as session:
        first, _second = session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id))
        first.status = DeliveryStatus.SENT
    DailyRetention(get_db(app), None).run(NOW + timedelta(days=30, seconds=1))
    [kept] = deliveries(app)
    assert kept.status == "pending"  # a pending one is never deleted, only settled ones


def test_python_app_py_delivers_on_a_thread_of_its_own(
    hooks_app: Flask, receivers: list[Receiver]
) -> None:
    """The embedded default's wiring: processor and deliverer on threads of one process."""
    from bot.worker import start_in_background

    shop = receiver(receivers, 200)
    endpoint(hooks_app, shop.url, ["message.received"])
    dispatcher, stop = start_in_background(hooks_app)
    try:
        body = json.dumps(notification(wa_id=ANNA)).encode()
        web = hooks_app.test_client()
        assert (
            web.post("/webhooks/whatsapp", data=body, headers=signed_headers(body)).status_code
            == 200
        )
        assert shop.arrived.wait(10)
    finally:
        stop.set()
        dispatcher.join(10)
    [(headers, _body)] = shop.requests
    assert headers["Tresen-Event"] == "message.received"
