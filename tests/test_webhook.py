"""The webhook as Meta uses it: the subscription check, signed notifications, storage, statuses."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import joinedload

from bot import create_app, warn_console_mode
from bot.db import get_db
from bot.models import ConsentEvent, Contact, Message
from bot.whatsapp.signature import sign
from tests.conftest import (
    APP_SECRET,
    PYWA_UPDATES,
    load_json,
    make_env,
    post_notification,
    process_inbound,
    signed_headers,
)
from tests.payloads import notification, status_notification

UPDATES = PYWA_UPDATES


def messages(app: Flask) -> list[Message]:
    with get_db(app).session() as session:
        query = select(Message).options(joinedload(Message.contact)).order_by(Message.id)
        return list(session.scalars(query))


def count(app: Flask) -> int:
    """Messages stored once what was journalled is processed."""
    process_inbound(app)
    with get_db(app).session() as session:
        return session.scalar(select(func.count()).select_from(Message)) or 0


# --- the subscription check -------------------------------------------------------------


@pytest.fixture
def live_app(database_url: str, tmp_path: Path) -> Flask:
    env = make_env(database_url, WHATSAPP_VERIFY_TOKEN="open-sesame")
    app = create_app(env, instance_path=tmp_path / "instance")
    get_db(app).upgrade()
    return app


@pytest.mark.parametrize(
    ("query", "status", "body"),
    [
        (
            "hub.mode=subscribe&hub.verify_token=open-sesame&hub.challenge=1158201444",
            200,
            "1158201444",
        ),
        ("hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1158201444", 403, None),
        ("hub.mode=unsubscribe&hub.verify_token=open-sesame&hub.challenge=1", 403, None),
        ("hub.challenge=1", 403, None),
    ],
)
def test_subscription_check(live_app: Flask, query: str, status: int, body: str | None) -> None:
    response = live_app.test_client().get(f"/webhooks/whatsapp?{query}")
    assert response.status_code == status
    if body is not None:
        assert response.get_data(as_text=True) == body
        assert response.mimetype == "text/plain"


def test_subscription_check_fails_without_a_configured_token(client: FlaskClient) -> None:
    response = client.get("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=&hub.challenge=1")
    assert response.status_code == 403


# --- signatures -----------------------------------------------------------------------------


def _headers(signature: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    return headers


@pytest.mark.parametrize(
    "make_signature",
    [
        lambda body: None,
        lambda body: sign(body, "another-secret"),
        lambda body: "sha1=" + sign(body, APP_SECRET).split("=", 1)[1][:40],
        lambda body: sign(body + b" ", APP_SECRET),
        lambda body: sign(body, APP_SECRET).upper(),
        lambda body: "sha256=",
        lambda body: "garbage",
    ],
    ids=["missing", "forged", "sha1", "tampered", "mangled", "empty", "garbage"],
)
def test_bad_signatures_are_refused_and_nothing_is_stored(
    app: Flask, client: FlaskClient, make_signature: Any
) -> None:
    body = json.dumps(notification()).encode()
    response = client.post("/webhooks/whatsapp", data=body, headers=_headers(make_signature(body)))
    assert response.status_code in (401, 403)
    assert count(app) == 0


@pytest.fixture
def console_app(database_url: str, tmp_path: Path) -> Flask:
    """Console mode as a default deploy that forgot the secret: no token, no app secret."""
    app = create_app({"DATABASE_URL": database_url}, instance_path=tmp_path / "instance")
    get_db(app).upgrade()
    return app


@pytest.mark.parametrize("peer", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_unsigned_posts_from_this_machine_are_accepted_in_console_mode_without_a_secret(
    console_app: Flask, peer: str
) -> None:
    response = console_app.test_client().post(
        "/webhooks/whatsapp", json=notification(), environ_base={"REMOTE_ADDR": peer}
    )
    assert response.status_code == 200
    assert count(console_app) == 1


def test_the_start_warning_says_unsigned_posts_are_taken_from_this_machine_only(
    console_app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    warn_console_mode(console_app)  # what python app.py and each gunicorn worker say at start
    assert (
        "WHATSAPP_APP_SECRET is not set: unsigned webhook posts are accepted "
        "from this machine only" in caplog.text
    )


@pytest.mark.parametrize(
    ("peer", "headers"),
    [
        ("203.0.113.5", {}),
        ("10.1.2.3", {}),  # a platform's router
        ("2001:db8::5", {}),
        ("127.0.0.1", {"X-Forwarded-For": "203.0.113.5"}),  # a proxy on this machine
        ("127.0.0.1", {"Forwarded": "for=203.0.113.5"}),
        ("127.0.0.1", {"X-Real-IP": "203.0.113.5"}),
        ("::1", {"X-Forwarded-Proto": "https"}),
    ],
)
def test_unsigned_posts_from_elsewhere_are_refused_without_a_secret(
    console_app: Flask, peer: str, headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    response = console_app.test_client().post(
        "/webhooks/whatsapp",
        json=notification(),
        headers=headers,
        environ_base={"REMOTE_ADDR": peer},
    )
    assert response.status_code == 403
    assert "set WHATSAPP_APP_SECRET" in response.get_data(as_text=True)
    assert count(console_app) == 0
    assert f"unsigned webhook post from {peer} refused" in caplog.text


def test_with_a_secret_signed_posts_from_anywhere_are_taken_and_unsigned_ones_are_not(
    app: Flask,
) -> None:
    body = json.dumps(notification()).encode()
    client = app.test_client()
    for peer, headers in [("203.0.113.5", {}), ("127.0.0.1", {"X-Forwarded-For": "203.0.113.5"})]:
        environ = {"REMOTE_ADDR": peer}
        unsigned = client.post(
            "/webhooks/whatsapp", data=body, headers=headers, environ_base=environ
        )
        assert unsigned.status_code == 401
        signed = client.post(
            "/webhooks/whatsapp",
            data=body,
            headers={**headers, **signed_headers(body)},
            environ_base=environ,
        )
        assert signed.status_code == 200
    assert count(app) == 1  # the second is a redelivery of the same message


# --- bad bodies -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"\xff\xfe\x00", 400),
        (b"", 400),
        (b"[" * 100_000 + b"]" * 100_000, 400),
        (b"[]", 400),
        (b"42", 400),
        (b'{"object": "whatsapp_business_account"}', 400),
        (b'{"object": "whatsapp_business_account", "entry": "nope"}', 400),
        (
            json.dumps(
                {
                    "object": "whatsapp_business_account",
                    "entry": [
                        {"changes": [{"field": "messages", "value": {"messages": [{"id": 5}]}}]}
                    ],
                }
            ).encode(),
            400,
        ),
    ],
)
def test_bad_bodies_get_a_4xx(app: Flask, client: FlaskClient, body: bytes, status: int) -> None:
    response = post_notification(client, body)
    assert response.status_code == status
    assert count(app) == 0


def test_a_body_over_3_mb_is_refused(client: FlaskClient) -> None:
    body = b'{"pad": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    assert post_notification(client, body).status_code == 413


def test_unhandled_fields_answer_200_and_are_ignored(app: Flask, client: FlaskClient) -> None:
    doc = {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "1",
                "changes": [{"field": "phone_number_quality_update", "value": [1, {"x": None}]}],
            }
        ],
    }
    assert post_notification(client, doc).status_code == 200
    assert count(app) == 0


# --- storing customer messages -----------------------------------------------------------------


def _fixture_cases() -> list[tuple[str, str]]:
    return [
        (path.name, case) for path in sorted(UPDATES.glob("*.json")) for case in load_json(path)
    ]


def _fresh_ids(doc: Any, suffix: str) -> Any:
    """The fixtures reuse ids across cases; make each case's message ids its own."""
    doc = copy.deepcopy(doc)
    for entry in doc.get("entry", []):
        for change in entry.get("changes", []):
            value = change.get("value")
            if isinstance(value, dict):
                for msg in value.get("messages", []) or []:
                    msg["id"] = f"{msg['id']}.{suffix}"
    return doc


@pytest.mark.parametrize(("filename", "case"), _fixture_cases())
def test_every_real_notification_answers_200(
    app: Flask, client: FlaskClient, filename: str, case: str
) -> None:
    doc = _fresh_ids(load_json(UPDATES / filename)[case], case)
    assert post_notification(client, doc).status_code == 200
    sent = [
        m
        for e in doc["entry"]
        for c in e["changes"]
        if c["field"] == "messages"
        for m in c["value"].get("messages", [])
    ]
    # A deletion of a message not stored yet leaves a tombstone in its place (see test_admin).
    revoked = {m["revoke"]["original_message_id"] for m in sent if m["type"] == "revoke"}
    stored = [m for m in messages(app) if m.wamid not in revoked]
    assert [m.wamid for m in stored] == [m["id"] for m in sent]
    for raw, row in zip(sent, stored, strict=True):
        assert row.direction == "in"
        assert row.type == raw["type"]
        assert row.raw == raw


# What a person reading the inbox must see of each kind of message.
EXPECTED_TEXT = {
    "text": "Body Text",
    "reaction": "😀",
}


@pytest.mark.parametrize(
    ("case", "type_", "text"),
    [
        ("text", "text", "Body Text"),
        ("image", "image", None),
        ("video", "video", None),
        ("document", "document", None),
        ("audio", "audio", None),
        ("static_sticker", "sticker", None),
        ("reaction", "reaction", None),
        ("current_location", "location", None),
        ("contacts", "contacts", None),
        ("order", "order", None),
        ("unsupported", "unsupported", None),
    ],
)
def test_customer_messages_are_stored_with_type_and_content(
    app: Flask, client: FlaskClient, case: str, type_: str, text: str | None
) -> None:
    doc = _fresh_ids(load_json(UPDATES / "message.json")[case], case)
    raw = doc["entry"][0]["changes"][0]["value"]["messages"][0]
    assert post_notification(client, doc).status_code == 200
    [row] = messages(app)
    assert row.type == type_
    assert row.raw == raw
    media = raw.get(type_) if type_ in ("image", "video", "document", "audio", "sticker") else None
    if text is not None:
        assert row.text == text
    elif media and media.get("caption"):
        assert row.text == media["caption"]
    elif type_ == "reaction":
        assert row.text == (raw["reaction"].get("emoji") or None)
    assert row.contact.wa_id == raw["from"]


def test_contact_gets_profile_name_and_last_inbound_time(app: Flask, client: FlaskClient) -> None:
    doc = notification(wa_id="4917612345678", name="Jörg <b>Ünal</b>")
    ts = int(doc["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"])
    assert post_notification(client, doc).status_code == 200
    with get_db(app).session() as session:
        contact = session.scalars(select(Contact)).one()
        assert contact.name == "Jörg <b>Ünal</b>"
        assert contact.last_inbound_at is not None
        assert int(contact.last_inbound_at.timestamp()) == ts
        assert contact.unread == 1
        assert contact.opted_in is False


def test_every_entry_and_change_is_handled(app: Flask, client: FlaskClient) -> None:
    first, second, third = notification(), notification(wa_id="491700000001"), notification()
    doc = first
    doc["entry"][0]["changes"].append(second["entry"][0]["changes"][0])
    doc["entry"].append(third["entry"][0])
    assert post_notification(client, doc).status_code == 200
    assert count(app) == 3


def test_redelivery_changes_nothing(app: Flask, client: FlaskClient) -> None:
    doc = notification()
    for _ in range(3):
        assert post_notification(client, doc).status_code == 200
    assert count(app) == 1
    with get_db(app).session() as session:
        assert session.scalars(select(Contact)).one().unread == 1


def test_message_is_committed_before_the_answer(app: Flask, client: FlaskClient) -> None:
    doc = notification()
    response = post_notification(client, doc)
    assert response.status_code == 200
    # A second, independent connection sees it: it was committed, not just flushed.
    fresh = get_db(app).sessions()
    try:
        assert fresh.scalar(select(func.count()).select_from(Message)) == 1
    finally:
        fresh.close()


def test_storage_down_answers_503_so_meta_delivers_again(tmp_path: Path) -> None:
    env = make_env("postgresql://postgres@127.0.0.1:1/nothing-here")
    app = create_app(env, instance_path=tmp_path / "instance")
    response = post_notification(app.test_client(), notification())
    assert response.status_code == 503
    assert app.test_client().get("/healthz").status_code == 503


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


# --- delivery statuses ---------------------------------------------------------------------------


def sent_reply(app: Flask, wamid: str) -> None:
    """A reply to Anna recorded as sent under `wamid`, for status notifications to find."""
    with get_db(app).session() as session:
        contact = Contact(wa_id="4915112345678", name="Anna")
        session.add(contact)
        session.flush()
        session.add(
            Message(
                contact_id=contact.id,
                direction="out",
                wamid=wamid,
                type="text",
                text="Hi",
                status="sent",
            )
        )


def _status_of(app: Flask, wamid: str) -> Message:
    with get_db(app).session() as session:
        return session.scalars(select(Message).where(Message.wamid == wamid)).one()


def test_statuses_move_forward_even_out_of_order(app: Flask, client: FlaskClient) -> None:
    # Received soon after: a time more than a day ahead of ours is not believed.
    app.config["TRESEN_CLOCK"] = lambda: datetime.fromtimestamp(1_800_000_400, UTC)
    sent_reply(app, "wamid.OUT1")
    for status, ts in [
        ("read", 1_800_000_300),
        ("sent", 1_800_000_100),
        ("delivered", 1_800_000_200),
    ]:
        assert (
            post_notification(client, status_notification("wamid.OUT1", status, ts)).status_code
            == 200
        )
    message = _status_of(app, "wamid.OUT1")
    assert message.status == "read"
    assert message.read_at is not None and int(message.read_at.timestamp()) == 1_800_000_300
    assert (
        message.delivered_at is not None and int(message.delivered_at.timestamp()) == 1_800_000_200
    )
    assert message.sent_at is not None and int(message.sent_at.timestamp()) == 1_800_000_100


def test_a_read_implies_delivered(app: Flask, client: FlaskClient) -> None:
    sent_reply(app, "wamid.OUT2")
    post_notification(client, status_notification("wamid.OUT2", "read", 1_800_000_300))
    message = _status_of(app, "wamid.OUT2")
    assert message.delivered_at == message.read_at


def test_a_failed_status_records_the_reason(app: Flask, client: FlaskClient) -> None:
    sent_reply(app, "wamid.OUT3")
    doc = load_json(UPDATES / "message_status.json")["failed"]
    doc["entry"][0]["changes"][0]["value"]["statuses"][0]["id"] = "wamid.OUT3"
    assert post_notification(client, doc).status_code == 200
    message = _status_of(app, "wamid.OUT3")
    assert message.status == "failed"
    assert message.error_code == 130472
    assert message.error_reason is not None
    assert "experiment" in message.error_reason


def test_marketing_preference_stop_opts_the_contact_out(app: Flask, client: FlaskClient) -> None:
    doc = load_json(UPDATES / "user_marketing_preferences.json")["resume"]
    pref = doc["entry"][0]["changes"][0]["value"]["user_preferences"][0]
    assert post_notification(client, doc).status_code == 200
    with get_db(app).session() as session:
        contact = session.scalars(select(Contact).where(Contact.wa_id == pref["wa_id"])).one()
        assert contact.opted_in is True
        assert contact.opted_in_source == "whatsapp"
    pref["value"] = "stop"
    pref["timestamp"] = pref["timestamp"] + 60
    assert post_notification(client, doc).status_code == 200
    with get_db(app).session() as session:
        contact = session.scalars(select(Contact).where(Contact.wa_id == pref["wa_id"])).one()
        assert contact.opted_in is False


def test_marketing_preferences_out_of_order_the_later_one_wins(
    app: Flask, client: FlaskClient
) -> None:
    """Meta delivers the customer's resume, then the stop they had set a minute before it."""
    doc = load_json(UPDATES / "user_marketing_preferences.json")["resume"]
    pref = doc["entry"][0]["changes"][0]["value"]["user_preferences"][0]
    resumed = pref["timestamp"]
    assert post_notification(client, doc).status_code == 200
    pref.update(value="stop", timestamp=resumed - 60)
    assert post_notification(client, doc).status_code == 200
    assert post_notification(client, doc).status_code == 200  # delivered again
    with get_db(app).session() as session:
        contact = session.scalars(select(Contact).where(Contact.wa_id == pref["wa_id"])).one()
        assert contact.opted_in is True
        record = session.execute(
            select(ConsentEvent.opted_in, ConsentEvent.source, ConsentEvent.at).order_by(
                ConsentEvent.at
            )
        ).all()
    assert [(opted_in, source, int(at.timestamp())) for opted_in, source, at in record] == [
        (False, "whatsapp", resumed - 60),
        (True, "whatsapp", resumed),
    ]


def test_a_new_number_with_a_known_user_id_is_the_same_contact(
    app: Flask, client: FlaskClient
) -> None:
    """The business-scoped user id stays when a customer changes their number."""
    first = notification(wa_id="4915100000001", name="Anna")
    first["entry"][0]["changes"][0]["value"]["contacts"][0]["user_id"] = "DE.1349120865530274"
    assert post_notification(client, first).status_code == 200
    second = notification(wa_id="4917699999999", name="Anna")
    second["entry"][0]["changes"][0]["value"]["contacts"][0]["user_id"] = "DE.1349120865530274"
    assert post_notification(client, second).status_code == 200
    with get_db(app).session() as session:
        [contact] = session.scalars(select(Contact)).all()
        assert (contact.wa_id, contact.user_id) == ("4917699999999", "DE.1349120865530274")
    assert count(app) == 2


def test_a_connection_the_server_dropped_is_replaced_without_a_refusal(
    database_url: str, tmp_path: Path
) -> None:
    """The pool checks only connections idle a while; one dropped a moment after use fails
    its first statement, and the notification is stored on a new connection (not a 503)."""
    if database_url.startswith("sqlite"):
        pytest.skip("ends PostgreSQL sessions")
    name = f"tresen_drop_{uuid.uuid4().hex[:10]}"
    app = create_app(
        make_env(f"{database_url}&application_name={name}"), instance_path=tmp_path / "i"
    )
    get_db(app).upgrade()
    client = app.test_client()
    try:
        assert post_notification(client, notification()).status_code == 200
        admin = create_engine(get_db(app).url.split("?", 1)[0], isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            ended = conn.execute(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE application_name = :name"
                ),
                {"name": name},
            ).scalar_one()
        admin.dispose()
        assert ended >= 1
        doc = notification({"type": "text", "text": {"body": "noch da?"}})
        assert post_notification(client, doc).status_code == 200
        assert count(app) == 2
    finally:
        get_db(app).dispose()
