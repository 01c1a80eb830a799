"""The web admin through Flask's test client: login, CSRF, inbox, replies, insights (the settings
pages: test_admin_settings.py)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask, request
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from bot import broadcasts, create_app, users
from bot.contacts.audiences import parse_audience
from bot.contacts.label_names import default_labels
from bot.db import get_db
from bot.models import (
    ConsentEvent,
    Contact,
    Label,
    Message,
    QuickReply,
    User,
    WebhookDelivery,
    WebhookEndpoint,
)
from bot.settings.stored import seed_demo
from tests.conftest import make_env, post_notification
from tests.payloads import notification, status_notification

# A Wednesday, 10:00 in Munich: the demo flower shop is open (09:00-12:30).
NOW = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"
XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_TEXT = "<script>alert(2)</script>"


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def clock(app: Flask) -> Clock:
    fixed = Clock(NOW)
    app.config["TRESEN_CLOCK"] = fixed
    return fixed


def make_user(app: Flask, name: str = "owner", password: str = PASSWORD) -> None:
    with get_db(app).session() as session:
        users.create_or_reset(session, name, password, now=NOW)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def _unescape(text: str) -> str:
    import html

    return html.unescape(text)


def token(client: FlaskClient, path: str = "/admin/login") -> str:
    return csrf_of(client.get(path).get_data(as_text=True))


def login(client: FlaskClient, name: str = "owner", password: str = PASSWORD) -> Any:
    return client.post(
        "/admin/login", data={"name": name, "password": password, "csrf_token": token(client)}
    )


def demo_owner(app: Flask, client: FlaskClient) -> FlaskClient:
    """`client` logged in as the owner of the demo shop (what `python app.py` seeds on its
    first start)."""
    make_user(app)
    with get_db(app).session() as session:
        seed_demo(session)
    assert login(client).status_code == 302
    return client


@pytest.fixture
def admin(app: Flask, client: FlaskClient, clock: Clock) -> FlaskClient:
    return demo_owner(app, client)


def receive(
    client: FlaskClient,
    msg: dict[str, Any] | None = None,
    *,
    at: datetime = NOW,
    wa_id: str = "4915112345678",
    name: str = "Anna",
) -> str:
    msg = {"type": "text", "text": {"body": "Hallo!"}, **(msg or {})}
    msg["timestamp"] = str(int(at.timestamp()))
    msg["id"] = msg.get("id") or f"wamid.A{int(at.timestamp())}{len(str(msg))}{wa_id[-4:]}"
    assert post_notification(client, notification(msg, wa_id=wa_id, name=name)).status_code == 200
    return str(msg["id"])


def contact_id(app: Flask, wa_id: str = "4915112345678") -> int:
    with get_db(app).session() as session:
        found = session.scalar(select(Contact.id).where(Contact.wa_id == wa_id))
    assert found is not None
    return found


def conversation(app: Flask, admin: FlaskClient, *, at: datetime = NOW) -> tuple[int, str]:
    """A customer writes at `at`; their contact id and the conversation page the admin sees."""
    receive(admin, at=at)
    cid = contact_id(app)
    return cid, admin.get(f"/admin/inbox/{cid}").get_data(as_text=True)


def outbound(app: Flask) -> list[Message]:
    with get_db(app).session() as session:
        query = select(Message).where(Message.direction == "out").order_by(Message.id)
        return list(session.scalars(query))


# --- login ------------------------------------------------------------------------------------

GET_PAGES = [
    "/admin/",
    "/admin/inbox",
    "/admin/inbox/1",
    "/admin/settings",
    "/admin/settings/hours",
    "/admin/settings/yaml",
    "/admin/insights",
    "/admin/quick-replies",
]
POSTS = [
    "/admin/logout",
    "/admin/inbox/1/reply",
    "/admin/inbox/1/template",
    "/admin/inbox/1/labels",
    "/admin/inbox/1/optin",
    "/admin/settings/business",
    "/admin/settings/hours",
    "/admin/settings/closures",
    "/admin/settings/answers",
    "/admin/settings/keywords",
    "/admin/settings/preview",
    "/admin/settings/text",
    "/admin/settings/yaml",
    "/admin/quick-replies",
    "/admin/quick-replies/1/delete",
]


@pytest.mark.parametrize("path", GET_PAGES)
def test_pages_need_a_login(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login?next=")


@pytest.mark.parametrize("path", ["/admin/inbox.json", "/admin/inbox/1/messages.json"])
def test_json_needs_a_login(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert response.get_json() == {"error": "log in first"}


@pytest.mark.parametrize("path", POSTS)
def test_posts_without_csrf_token_are_refused(admin: FlaskClient, path: str) -> None:
    response = admin.post(path, data={"text": "hi", "labels": "x", "yaml": "business: {}"})
    assert response.status_code == 400
    assert "Das Formular wurde abgelehnt" in response.get_data(as_text=True)
    # ...and with a wrong one too
    response = admin.post(path, data={"csrf_token": "forged", "text": "hi"})
    assert response.status_code == 400


def test_login_without_csrf_token_is_refused(app: Flask, client: FlaskClient) -> None:
    make_user(app)
    response = client.post("/admin/login", data={"name": "owner", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/admin/inbox").status_code == 302


def test_login_then_logout(app: Flask, client: FlaskClient, clock: Clock) -> None:
    make_user(app)
    response = client.post(
        "/admin/login?next=/admin/settings",
        data={"name": "owner", "password": PASSWORD, "csrf_token": token(client)},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/settings"
    page = client.get("/admin/inbox")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert client.post("/admin/logout", data={"csrf_token": csrf_of(html)}).status_code == 302
    assert client.get("/admin/inbox").status_code == 302


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/admin", "/elsewhere", "/admin\\@evil"]
)
def test_login_never_redirects_off_the_admin(
    app: Flask, client: FlaskClient, clock: Clock, target: str
) -> None:
    make_user(app)
    response = client.post(
        "/admin/login",
        query_string={"next": target},
        data={"name": "owner", "password": PASSWORD, "csrf_token": token(client)},
    )
    assert response.headers["Location"] == "/admin/inbox"


def test_wrong_password_and_unknown_user_look_the_same(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    make_user(app)
    wrong = login(client, password="not the password")
    unknown = login(client, name="nobody", password="not the password")
    assert wrong.status_code == unknown.status_code == 401

    def page(response: Any) -> str:
        # The CSRF token carries a timestamp; everything else must be the same.
        text = response.get_data(as_text=True).replace('value="nobody"', 'value="owner"')
        return re.sub(r'(name="csrf_token"[^>]*value=")[^"]+', r"\1", text)

    assert page(wrong) == page(unknown)
    assert "Benutzername oder Passwort ist falsch." in wrong.get_data(as_text=True)


def test_passwords_are_stored_hashed(app: Flask) -> None:
    make_user(app)
    with get_db(app).session() as session:
        stored = session.scalars(select(User)).one().password_hash
    assert PASSWORD not in stored
    assert stored.startswith(("scrypt:", "pbkdf2:"))


def test_background_requests_leave_the_cookie_a_redirect_set(admin: FlaskClient) -> None:
    # A preview sent just before a save answers after it: its cookie must not replace the
    # one that carries the save's message.
    html = admin.get("/admin/settings/answers").get_data(as_text=True)
    assert "Set-Cookie" not in admin.get("/admin/inbox.json").headers
    preview = admin.post(
        "/admin/settings/preview",
        data={"csrf_token": csrf_of(html), "section": "answers"},
    )
    assert preview.status_code == 200 and "Set-Cookie" not in preview.headers
    # A page load still renews the login.
    assert "Set-Cookie" in admin.get("/admin/inbox").headers


def test_session_cookie_flags(app: Flask, client: FlaskClient, clock: Clock) -> None:
    make_user(app)
    client.get("/admin/login")
    response = client.post(
        "/admin/login",
        data={"name": "owner", "password": PASSWORD, "csrf_token": token(client)},
    )
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie
    proxied = app.test_client()
    proxied.get("/admin/login", headers={"X-Forwarded-Proto": "https"})
    response = proxied.post(
        "/admin/login",
        headers={"X-Forwarded-Proto": "https"},
        data={
            "name": "owner",
            "password": PASSWORD,
            "csrf_token": csrf_of(
                proxied.get("/admin/login", headers={"X-Forwarded-Proto": "https"}).get_data(
                    as_text=True
                )
            ),
        },
    )
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]


def test_webhook_posts_open_no_session(app: Flask, admin: FlaskClient) -> None:
    """Meta's notifications skip the session cookie's work; the admin pages keep theirs."""
    interface = app.session_interface
    with app.test_request_context("/webhooks/whatsapp", method="POST"):
        assert interface.open_session(app, request) is None
    with app.test_request_context("/admin/inbox"):
        opened = interface.open_session(app, request)
        assert opened is not None and not interface.is_null_session(opened)
    # A logged-in browser posting to the webhook changes nothing about its session.
    answer = post_notification(admin, notification({"type": "text", "text": {"body": "x"}}))
    assert answer.status_code == 200
    assert "Set-Cookie" not in answer.headers
    assert admin.get("/admin/inbox").status_code == 200


def test_a_new_password_ends_old_sessions(app: Flask, admin: FlaskClient) -> None:
    assert admin.get("/admin/inbox").status_code == 200
    make_user(app, password="another password")
    assert admin.get("/admin/inbox").status_code == 302


def test_pages_carry_a_strict_content_security_policy(admin: FlaskClient) -> None:
    policy = admin.get("/admin/inbox").headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy


# --- users create -----------------------------------------------------------------------------


def test_users_create_with_password(app: Flask) -> None:
    result = app.test_cli_runner().invoke(args=["users", "create", "anna", "--password", PASSWORD])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "user anna created: log in at /admin/login"
    assert login(app.test_client(), "anna", PASSWORD).status_code == 302


def test_users_create_asks_twice_and_resets(app: Flask) -> None:
    runner = app.test_cli_runner()
    assert runner.invoke(args=["users", "create", "anna", "--password", PASSWORD]).exit_code == 0
    result = runner.invoke(args=["users", "create", "anna"], input="new secret 1\nnew secret 1\n")
    assert result.exit_code == 0, result.output
    assert "user anna updated" in result.output
    assert login(app.test_client(), "anna", PASSWORD).status_code == 401
    assert login(app.test_client(), "anna", "new secret 1").status_code == 302


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["users", "create", "anna", "--password", "short"], "at least 8 characters"),
        (["users", "create", "an na", "--password", PASSWORD], "must not contain spaces"),
    ],
)
def test_users_create_refuses(app: Flask, args: list[str], message: str) -> None:
    result = app.test_cli_runner().invoke(args=args)
    assert result.exit_code == 1
    assert message in result.output


# --- inbox ------------------------------------------------------------------------------------


def test_inbox_lists_conversations_by_last_message_with_unread_counts(
    app: Flask, admin: FlaskClient
) -> None:
    receive(admin, at=NOW - timedelta(hours=3), wa_id="4915100000001", name="Berta")
    receive(admin, at=NOW - timedelta(hours=1), wa_id="4915100000002", name="Carla")
    receive(admin, at=NOW - timedelta(minutes=30), wa_id="4915100000002", name="Carla",
            msg={"text": {"body": "noch da?"}})  # fmt: skip
    html = admin.get("/admin/inbox").get_data(as_text=True)
    assert html.index("Carla") < html.index("Berta")
    items = admin.get("/admin/inbox.json").get_json()["conversations"]
    assert [(c["name"], c["unread"]) for c in items] == [("Carla", 2), ("Berta", 1)]


def test_inbox_search_by_name_or_number_and_filter_by_label(app: Flask, admin: FlaskClient) -> None:
    receive(admin, wa_id="4915100000001", name="Berta")
    receive(admin, wa_id="4917600000002", name="Carla")
    with get_db(app).session() as session:
        carla = session.scalars(select(Contact).where(Contact.name == "Carla")).one()
        carla.labels = [Label(name="VIP")]

    def names(**query: str) -> list[str]:
        data = admin.get("/admin/inbox.json", query_string=query).get_json()
        return [c["name"] for c in data["conversations"]]

    assert names(q="bert") == ["Berta"]
    assert names(q="+49 176") == ["Carla"]
    assert names(label="VIP") == ["Carla"]
    assert names(q="%") == []
    assert "Berta" not in admin.get("/admin/inbox?label=VIP").get_data(as_text=True)


def test_conversation_shows_the_whole_history(app: Flask, admin: FlaskClient) -> None:
    first = receive(admin, {"text": {"body": "Haben Sie Rosen?"}}, at=NOW - timedelta(minutes=9))
    receive(
        admin,
        {
            "type": "image",
            "image": {"id": "m1", "mime_type": "image/jpeg", "caption": "diese hier"},
        },
        at=NOW - timedelta(minutes=8),
    )
    receive(
        admin,
        {
            "type": "location",
            "location": {"latitude": 48.137, "longitude": 11.575, "name": "Marienplatz"},
        },
        at=NOW - timedelta(minutes=7),
    )
    receive(
        admin,
        {
            "type": "interactive",
            "interactive": {
                "type": "button_reply",
                "button_reply": {"id": "yes", "title": "Ja, bitte"},
            },
        },
        at=NOW - timedelta(minutes=6),
    )
    receive(
        admin,
        {"type": "reaction", "reaction": {"message_id": first, "emoji": "👍"}},
        at=NOW - timedelta(minutes=5),
    )
    receive(admin, {"type": "audio", "audio": {"id": "a1", "voice": True}}, at=NOW)
    cid = contact_id(app)
    html = admin.get(f"/admin/inbox/{cid}").get_data(as_text=True)
    for expected in (
        "Haben Sie Rosen?",
        "📷 Foto",
        "diese hier",
        "📍 Standort",
        '<div class="place-name" translate="no">Marienplatz</div>',
        "48.13700, 11.57500",
        "https://www.openstreetmap.org/?mlat=48.137000&amp;mlon=11.575000",
        "↩ Hat auf eine Schaltfläche getippt",
        "Ja, bitte",
        "Hat reagiert",
        "👍",
        "auf „Haben Sie Rosen?“",
        "🎤 Sprachnachricht",
        "Automatisch: Begrüßung",
    ):
        assert expected in html, expected


def test_opening_a_conversation_resets_its_unread_count(app: Flask, admin: FlaskClient) -> None:
    receive(admin)
    cid = contact_id(app)
    assert admin.get("/admin/inbox.json").get_json()["conversations"][0]["unread"] == 1
    admin.get(f"/admin/inbox/{cid}")
    assert admin.get("/admin/inbox.json").get_json()["conversations"][0]["unread"] == 0


def test_delivery_ticks_follow_status_notifications(app: Flask, admin: FlaskClient) -> None:
    receive(admin)
    cid = contact_id(app)
    reply = outbound(app)[0]
    with get_db(app).session() as session:
        session.get_one(Message, reply.id).wamid = "wamid.OUT1"
        session.get_one(Message, reply.id).status = "sent"
    statuses = admin.get(f"/admin/inbox/{cid}/messages.json").get_json()["statuses"]
    assert statuses[str(reply.id)]["tick"] == "✓"
    ts = int(NOW.timestamp())
    post_notification(admin, status_notification("wamid.OUT1", "delivered", ts + 1))
    statuses = admin.get(f"/admin/inbox/{cid}/messages.json").get_json()["statuses"]
    assert (statuses[str(reply.id)]["tick"], statuses[str(reply.id)]["status"]) == (
        "✓✓",
        "delivered",
    )
    post_notification(admin, status_notification("wamid.OUT1", "read", ts + 2))
    html = admin.get(f"/admin/inbox/{cid}").get_data(as_text=True)
    assert 'class="tick status-read" title="gelesen"' in html


def test_a_message_from_the_year_9999_is_stored_at_its_arrival_and_every_page_shows(
    app: Flask, admin: FlaskClient
) -> None:
    # A phone whose clock says 9999-12-31 23:59:59, the last second Python can hold.
    last_second = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    wamid = receive(admin, {"text": {"body": "aus der Zukunft"}}, at=last_second)
    cid = contact_id(app)
    with get_db(app).session() as session:
        message = session.scalars(select(Message).where(Message.wamid == wamid)).one()
        assert message.timestamp == NOW  # when it reached us
        assert message.raw is not None and message.raw["timestamp"] == "253402300799"
        contact = session.get_one(Contact, cid)
        assert contact.last_inbound_at == NOW
        assert contact.last_message_at is not None and contact.last_message_at <= NOW
        reply = session.scalars(select(Message).where(Message.direction == "out")).first()
        assert reply is not None
        reply.wamid, reply.status = "wamid.OUT9999", "sent"
    # Delivery statuses the same way, and one from before WhatsApp existed.
    post_notification(admin, status_notification("wamid.OUT9999", "delivered", 253402300799))
    post_notification(admin, status_notification("wamid.OUT9999", "read", 1))
    with get_db(app).session() as session:
        reply = session.scalars(select(Message).where(Message.wamid == "wamid.OUT9999")).one()
        assert (reply.status, reply.delivered_at, reply.read_at) == ("read", NOW, NOW)
    for path in ("/admin/inbox", "/admin/inbox.json", f"/admin/inbox/{cid}", "/admin/insights"):
        assert admin.get(path).status_code == 200, path
    assert "aus der Zukunft" in admin.get(f"/admin/inbox/{cid}").get_data(as_text=True)


IBAN = "DE89 3704 0044 0532 0130 00"


def revoke_of(wamid: str, revoke_id: str) -> dict[str, Any]:
    """The message Meta sends when the customer deletes `wamid` for everyone."""
    return {"id": revoke_id, "type": "revoke", "revoke": {"original_message_id": wamid}}


def stored(app: Flask, wamid: str) -> Message:
    with get_db(app).session() as session:
        return session.scalars(select(Message).where(Message.wamid == wamid)).one()


def test_a_message_deleted_for_everyone_leaves_only_a_tombstone(
    app: Flask, admin: FlaskClient
) -> None:
    sent = receive(admin, {"id": "wamid.IBAN", "text": {"body": f"Meine IBAN: {IBAN}"}})
    receive(
        admin,
        {
            "id": "wamid.EDIT",
            "type": "edit",
            "edit": {
                "original_message_id": sent,
                "message": {"type": "text", "text": {"body": f"IBAN: {IBAN} (richtig)"}},
            },
        },
        at=NOW + timedelta(seconds=5),
    )
    cid = contact_id(app)
    assert IBAN in admin.get(f"/admin/inbox/{cid}").get_data(as_text=True)

    receive(admin, revoke_of(sent, "wamid.REVOKE"), at=NOW + timedelta(minutes=1))
    for wamid in (sent, "wamid.EDIT"):
        message = stored(app, wamid)
        assert (message.text, message.status) == (None, "revoked")
        assert IBAN not in str(message.raw)
        assert message.raw is not None and message.raw["id"] == wamid
        assert message.raw["revoked"]["id"] == "wamid.REVOKE"
    assert stored(app, sent).timestamp == NOW  # ids and times stay
    assert stored(app, sent).raw == {
        "id": sent,
        "from": "4915112345678",
        "timestamp": str(int(NOW.timestamp())),
        "type": "text",
        "revoked": {"id": "wamid.REVOKE", "timestamp": str(int(NOW.timestamp()) + 60)},
    }
    html = admin.get(f"/admin/inbox/{cid}").get_data(as_text=True)
    assert IBAN not in html
    assert html.count("Nachricht vom Kunden gelöscht") == 2
    poll = admin.get(f"/admin/inbox/{cid}/messages.json").get_data(as_text=True)
    notes = [m["note"] for m in json.loads(poll)["messages"]]
    assert IBAN not in poll and "🗑 Nachricht vom Kunden gelöscht" in notes


def test_a_deletion_that_overtakes_its_message_keeps_the_message_out(
    app: Flask, admin: FlaskClient
) -> None:
    receive(admin, revoke_of("wamid.LATE", "wamid.REVOKE2"), at=NOW + timedelta(minutes=1))
    receive(admin, {"id": "wamid.LATE", "text": {"body": f"IBAN {IBAN}"}})
    message = stored(app, "wamid.LATE")
    assert (message.text, message.status) == (None, "revoked")
    assert IBAN not in str(message.raw)
    html = admin.get(f"/admin/inbox/{contact_id(app)}").get_data(as_text=True)
    assert IBAN not in html and "Nachricht vom Kunden gelöscht" in html


def test_an_edit_that_comes_after_the_deletion_is_emptied_too(
    app: Flask, admin: FlaskClient
) -> None:
    sent = receive(admin, {"id": "wamid.FIRST", "text": {"body": "Hallo"}})
    receive(admin, revoke_of(sent, "wamid.REVOKE4"), at=NOW + timedelta(minutes=1))
    edit = {
        "id": "wamid.EDIT2",
        "type": "edit",
        "edit": {
            "original_message_id": sent,
            "message": {"type": "text", "text": {"body": f"IBAN {IBAN}"}},
        },
    }
    receive(admin, edit, at=NOW + timedelta(seconds=30))
    message = stored(app, "wamid.EDIT2")
    assert (message.text, message.status) == (None, "revoked")
    assert IBAN not in str(message.raw)
    assert IBAN not in admin.get(f"/admin/inbox/{contact_id(app)}").get_data(as_text=True)


def test_a_customer_cannot_delete_another_customers_message(app: Flask, admin: FlaskClient) -> None:
    sent = receive(admin, {"id": "wamid.ANNA", "text": {"body": IBAN}})
    receive(admin, revoke_of(sent, "wamid.REVOKE3"), wa_id="4915199999999", name="Mallory")
    message = stored(app, sent)
    assert (message.text, message.status) == (IBAN, "received")


def test_poll_returns_only_new_messages(app: Flask, admin: FlaskClient) -> None:
    receive(admin, at=NOW - timedelta(minutes=1))
    cid = contact_id(app)
    first = admin.get(f"/admin/inbox/{cid}/messages.json").get_json()
    last_id = max(m["id"] for m in first["messages"])
    assert (
        admin.get(f"/admin/inbox/{cid}/messages.json?after={last_id}").get_json()["messages"] == []
    )
    receive(admin, {"text": {"body": "noch eine Frage"}})
    new = admin.get(f"/admin/inbox/{cid}/messages.json?after={last_id}").get_json()["messages"]
    assert [m["text"] for m in new] == ["noch eine Frage"]
    assert first["window_open"] is True


def test_reply_by_hand_is_queued_in_the_outbox(app: Flask, admin: FlaskClient) -> None:
    cid, html = conversation(app, admin)
    response = admin.post(
        f"/admin/inbox/{cid}/reply",
        data={"text": "  Ja, rote und weiße.  ", "csrf_token": csrf_of(html)},
    )
    assert response.status_code == 302
    mine = outbound(app)[-1]
    assert (mine.rule, mine.status, mine.text) == ("manual", "queued", "Ja, rote und weiße.")
    assert mine.payload == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "4915112345678",
        "type": "text",
        "text": {"body": "Ja, rote und weiße.", "preview_url": False},
    }
    assert "von Hand" in admin.get(f"/admin/inbox/{cid}").get_data(as_text=True)


def test_reply_as_json_for_the_page_script(app: Flask, admin: FlaskClient) -> None:
    cid, html = conversation(app, admin)
    answer = admin.post(
        f"/admin/inbox/{cid}/reply",
        data={"text": "Gern!", "csrf_token": csrf_of(html)},
        headers={"Accept": "application/json"},
    )
    assert answer.get_json()["message"]["text"] == "Gern!"
    empty = admin.post(
        f"/admin/inbox/{cid}/reply",
        data={"text": "   ", "csrf_token": csrf_of(html)},
        headers={"Accept": "application/json"},
    )
    assert empty.status_code == 400
    assert empty.get_json()["ok"] is False


def test_outside_the_24_hour_window_only_a_template_is_offered(
    app: Flask, admin: FlaskClient
) -> None:
    cid, html = conversation(app, admin, at=NOW - timedelta(hours=25))
    assert 'id="reply-form"' not in html
    assert "WhatsApp erlaubt jetzt nur eine genehmigte Nachrichtenvorlage" in html
    refused = admin.post(
        f"/admin/inbox/{cid}/reply",
        data={"text": "Hallo?", "csrf_token": csrf_of(html)},
        follow_redirects=True,
    )
    assert "erlaubt jetzt nur noch eine genehmigte Vorlage" in refused.get_data(as_text=True)
    assert all(m.rule != "manual" for m in outbound(app))
    response = admin.post(
        f"/admin/inbox/{cid}/template",
        data={
            "name": "order_ready",
            "language": "de",
            "params": "Anna\n\n#1234\n",
            "csrf_token": csrf_of(html),
        },
    )
    assert response.status_code == 302
    sent = outbound(app)[-1]
    assert sent.rule == "manual"
    assert sent.payload is not None
    assert sent.payload["template"] == {
        "name": "order_ready",
        "language": {"code": "de"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Anna"}, {"type": "text", "text": "#1234"}],
            }
        ],
    }
    assert "Vorlage order_ready (de)" in admin.get(f"/admin/inbox/{cid}").get_data(as_text=True)


def test_template_needs_a_name(app: Flask, admin: FlaskClient) -> None:
    cid, html = conversation(app, admin)
    response = admin.post(
        f"/admin/inbox/{cid}/template",
        data={"name": "", "language": "de", "csrf_token": csrf_of(html)},
        follow_redirects=True,
    )
    # The field's label, then WTForms' own German for a required field.
    assert "Name der Vorlage: Dieses Feld wird benötigt." in response.get_data(as_text=True)


def test_labels_and_opt_in_from_the_conversation(app: Flask, admin: FlaskClient) -> None:
    cid, html = conversation(app, admin)
    admin.post(
        f"/admin/inbox/{cid}/labels",
        data={"labels": "Stammkunde, Hochzeit , Stammkunde", "csrf_token": csrf_of(html)},
    )
    admin.post(f"/admin/inbox/{cid}/optin", data={"opted_in": "y", "csrf_token": csrf_of(html)})
    with get_db(app).session() as session:
        contact = session.get_one(Contact, cid)
        assert sorted(lbl.name for lbl in contact.labels) == ["Hochzeit", "Stammkunde"]
        assert (contact.opted_in, contact.opted_in_source, contact.opted_in_changed_at) == (
            True,
            "admin",
            NOW,
        )
    admin.post(f"/admin/inbox/{cid}/labels", data={"labels": "", "csrf_token": csrf_of(html)})
    admin.post(f"/admin/inbox/{cid}/optin", data={"csrf_token": csrf_of(html)})
    with get_db(app).session() as session:
        contact = session.get_one(Contact, cid)
        assert (contact.labels, contact.opted_in) == ([], False)
    too_long = admin.post(
        f"/admin/inbox/{cid}/labels",
        data={"labels": "x" * 65, "csrf_token": csrf_of(html)},
        follow_redirects=True,
    )
    assert "Labels nicht geändert" in too_long.get_data(as_text=True)


def test_the_admins_opt_in_and_out_is_on_the_consent_record(app: Flask, admin: FlaskClient) -> None:
    cid, html = conversation(app, admin)
    admin.post(f"/admin/inbox/{cid}/optin", data={"opted_in": "y", "csrf_token": csrf_of(html)})
    app.config["TRESEN_CLOCK"].at = NOW + timedelta(hours=2)
    admin.post(f"/admin/inbox/{cid}/optin", data={"csrf_token": csrf_of(html)})
    admin.post(f"/admin/inbox/{cid}/optin", data={"csrf_token": csrf_of(html)})  # no change
    with get_db(app).session() as session:
        query = select(ConsentEvent.opted_in, ConsentEvent.source, ConsentEvent.at)
        events = [tuple(r) for r in session.execute(query.order_by(ConsentEvent.id))]
        contact = session.get_one(Contact, cid)
        assert (contact.opted_in, contact.opted_in_source, contact.opted_in_changed_at) == (
            False,
            "admin",
            NOW + timedelta(hours=2),
        )
    assert events == [(True, "admin", NOW), (False, "admin", NOW + timedelta(hours=2))]


def test_labels_differing_only_in_case_are_one_label_in_admin_import_and_broadcasts(
    app: Flask, admin: FlaskClient, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    receive(admin, wa_id="4917600000002", name="Carla")
    receive(admin, wa_id="4915100000001", name="Berta")
    carla, berta = contact_id(app, "4917600000002"), contact_id(app, "4915100000001")
    html = admin.get(f"/admin/inbox/{carla}").get_data(as_text=True)
    for cid, labels in ((carla, "VIP, Straße"), (berta, "vip, Vip, STRASSE")):
        admin.post(
            f"/admin/inbox/{cid}/labels", data={"labels": labels, "csrf_token": csrf_of(html)}
        )
        admin.post(f"/admin/inbox/{cid}/optin", data={"opted_in": "y", "csrf_token": csrf_of(html)})
    csv_file = tmp_path / "contacts.csv"
    csv_file.write_text("wa_id,name,labels,opted_in\n+49 151 33333333,Dana,Vip;strasse,true\n")
    result = runner.invoke(args=["contacts", "import", str(csv_file)])
    assert result.exit_code == 0, result.output
    with get_db(app).session() as session:
        # The first spelling stays, whoever wrote the later ones (beside the starting labels).
        starting = {name for name, _color in default_labels("de_DE")}
        made = set(session.scalars(select(Label.name))) - starting
        assert sorted(made) == ["Straße", "VIP"]

    def names(label: str) -> list[str]:
        data = admin.get("/admin/inbox.json", query_string={"label": label}).get_json()
        return [c["name"] for c in data["conversations"]]

    assert names("vip") == names("VIP") == names("STRASSE") == ["Berta", "Carla", "Dana"]
    with get_db(app).session() as session:
        content = broadcasts.Content(template="weekly_offer", language="de")
        b = broadcasts.create(
            session, content, parse_audience("label:vip"), timezone="Europe/Berlin", now=NOW
        )
        run_id = broadcasts.start_run(session, b.id, NOW, NOW)
    assert run_id is not None
    broadcasts.write_run(get_db(app), run_id, clock=lambda: NOW)
    with get_db(app).session() as session:
        reached = session.scalars(
            select(Contact.name)
            .join(Message, Message.contact_id == Contact.id)
            .where(Message.broadcast_run_id == run_id)
        )
        assert sorted(reached) == ["Berta", "Carla", "Dana"]


def test_customer_text_is_escaped(app: Flask, admin: FlaskClient) -> None:
    receive(admin, {"text": {"body": XSS_TEXT}}, name=XSS_NAME)
    cid = contact_id(app)
    with get_db(app).session() as session:
        session.add(QuickReply(shortcut="xss", text=XSS_NAME + " [Name]", created_at=NOW))
    for path in ("/admin/inbox", "/admin/quick-replies?edit=1", f"/admin/inbox/{cid}"):
        html = admin.get(path).get_data(as_text=True)
        assert XSS_NAME not in html
        assert XSS_TEXT not in html
        assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html


# Stored customer data a page must show whatever it is: raw JSON of any shape, times at both
# ends of the calendar, no name or number, an enormous text. Written directly, as an older
# version, a restored backup or a hand-edited database may have left it.
LATEST, EARLIEST = datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=UTC)
HOSTILE_INBOUND: list[tuple[str, Any, str | None]] = [
    ("image", [1, 2], None),
    ("location", "a string", None),
    ("location", {"location": {"latitude": "nan", "longitude": "1e308", "name": 5}}, None),
    ("edit", {"edit": "x"}, "edited"),
    ("edit", {"edit": {"message": {"type": "image", "image": "x"}}}, None),
    ("contacts", {"contacts": "x"}, None),
    ("contacts", {"contacts": [{"name": "x"}, 5]}, None),
    ("order", {"order": {"product_items": 5}}, None),
    ("reaction", {"reaction": {"message_id": 5}}, "👍"),
    ("reaction", {"reaction": {"message_id": "wamid.gone"}}, None),
    ("system", {"system": 5}, None),
    ("interactive", {"interactive": []}, "Ja"),
    ("revoke", {"revoke": None}, None),
    ("text", None, "x" * 1_000_000),
    ("x" * 32, {}, None),
]
HOSTILE_OUTBOUND: list[Any] = [
    {"type": "template", "template": {"components": 5, "language": "de", "name": 5}},
    {"type": "template", "template": "x"},
    {"type": "image", "image": 5},
    {"type": "interactive", "interactive": {"body": 5}},
    [1],
    None,
]


def admin_get_paths(
    app: Flask,
    contact_ids: list[int],
    broadcast_ids: list[int] | None = None,
    attachment_ids: list[int] | None = None,
    template_ids: list[int] | None = None,
    endpoint_ids: list[int] | None = None,
) -> list[str]:
    """Every page of the admin a GET reaches, for each of these contacts (broadcasts, files)
    where it names one."""
    paths = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/admin/") or "GET" not in (rule.methods or ()):
            continue
        if "<path:" in rule.rule:
            continue  # static files
        if "<token>" in rule.rule:
            continue  # an invitation's page, whose unknown token answers 404 (test_team.py)
        if "<int:contact_id>" in rule.rule:
            paths += [rule.rule.replace("<int:contact_id>", str(cid)) for cid in contact_ids]
        elif "<int:broadcast_id>" in rule.rule:
            paths += [
                rule.rule.replace("<int:broadcast_id>", str(bid)) for bid in broadcast_ids or []
            ]
        elif "<int:attachment_id>" in rule.rule:
            paths += [
                rule.rule.replace("<int:attachment_id>", str(aid)) for aid in attachment_ids or []
            ]
        elif "<int:template_id>" in rule.rule:
            paths += [rule.rule.replace("<int:template_id>", str(t)) for t in template_ids or []]
        elif "<int:endpoint_id>" in rule.rule:
            paths += [rule.rule.replace("<int:endpoint_id>", str(e)) for e in endpoint_ids or []]
        else:
            paths.append(rule.rule)
    return paths


# Attachments as an older version or a hand-edited database may have left them: states,
# kinds and failures of no known kind, markup and line breaks in names and types, sizes at
# the ends of the column. (kind, state, failure, filename, declared type, file's type, size)
HOSTILE_ATTACHMENTS: list[tuple[str, str, str | None, str | None, str | None, str, int]] = [
    ("image", "stored", None, None, None, "image/jpeg", 0),
    ("x" * 16, "weird", "weird", (XSS_NAME * 20)[:512], "text/html\r\nX: 1", "", 1),
    ("audio", "failed", None, "", "audio/ogg", "", 1),
    ("document", "stored", "x", "../\r\n" + XSS_TEXT, None, "x" * 255, 2**62),
    ("sticker", "pending", None, None, XSS_TEXT, "", 1),
    ("video", "stored", None, "\u202e" * 500, "video/mp4", "<b>/<i>", -5),
]


def hostile_attachments(app: Flask, session: Any, message_ids: list[int]) -> list[int]:
    """HOSTILE_ATTACHMENTS on the first of these messages, with files in the store where
    their rows say stored; the ids of those the media route serves."""
    from bot.media.store import get_media_store
    from bot.models import Attachment, MediaFile

    served = []
    for message_id, (kind, state, failure, name, declared, file_type, size) in zip(
        message_ids, HOSTILE_ATTACHMENTS, strict=False
    ):
        file = None
        if state == "stored":
            stored = get_media_store(app).put([f"{kind}{file_type}".encode()])
            file = session.scalar(select(MediaFile).where(MediaFile.sha256 == stored.sha256))
            if file is None:
                file = MediaFile(sha256=stored.sha256, size=size, content_type=file_type)
                session.add(file)
                session.flush()
        row = Attachment(
            message_id=message_id,
            kind=kind,
            state=state,
            failure=failure,
            filename=name,
            mime_type=declared,
            voice=kind == "audio",
            file_id=file.id if file is not None else None,
        )
        session.add(row)
        session.flush()
        if file is not None:
            served.append(row.id)
    return served


def hostile_broadcasts(session: Any, *contacts: Contact) -> list[int]:
    """Broadcasts as an older version or a hand-edited database may have left them: a text of
    markup, a template with markup parameters, a cron line the scheduler refuses, times at both
    ends of the calendar, recipients with markup reasons and statuses of no known kind."""
    from bot.models import Broadcast, BroadcastRun

    made = [
        Broadcast(kind="text", text=XSS_TEXT, audience="all", at=LATEST, timezone="Europe/Berlin"),
        Broadcast(
            kind="template",
            template_name=XSS_NAME,
            language="<b>",
            params=[XSS_TEXT],
            audience=f"label:{XSS_NAME}",
            cron="61 25 * * mon",
            timezone="Europe/Berlin",
            created_at=EARLIEST,
        ),
        Broadcast(
            kind="text", text="", audience="all", cron="0 9 * * mon,thu", timezone="Europe/Berlin"
        ),
    ]
    session.add_all(made)
    session.flush()
    for i, broadcast in enumerate(made):
        run = BroadcastRun(
            broadcast_id=broadcast.id,
            due_at=(LATEST, EARLIEST, NOW)[i],
            status=("written", "weird", "writing")[i],
            started_at=NOW,
        )
        session.add(run)
        session.flush()
        session.add_all(
            Message(
                contact_id=contact.id,
                direction="out",
                type="text",
                status=("failed", "skipped", "weird")[(i + j) % 3],
                error_reason=XSS_TEXT,
                broadcast_run_id=run.id,
                timestamp=NOW,
            )
            for j, contact in enumerate(contacts)
        )
    session.flush()
    return [b.id for b in made]


def test_no_admin_page_fails_on_stored_customer_data(app: Flask, admin: FlaskClient) -> None:
    crawl_with_hostile_rows(app, admin)


def test_times_at_the_calendar_ends_read_back_whatever_the_servers_time_zone(
    database_url: str, tmp_path: Path
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite keeps no time zone")
    # A server whose default zone is 14 hours ahead of UTC (the URL's options add to its own).
    url = database_url + quote(" -c TimeZone=Pacific/Kiritimati")
    app = create_app(make_env(url), instance_path=tmp_path / "instance")
    app.config["TESTING"] = True
    app.config["TRESEN_CLOCK"] = Clock(NOW)
    get_db(app).upgrade()
    try:
        make_user(app)
        with get_db(app).session() as session:
            seed_demo(session)
        client = app.test_client()
        assert login(client).status_code == 302
        crawl_with_hostile_rows(app, client)
    finally:
        get_db(app).dispose()


def hostile_templates(session: Any) -> list[int]:
    """WhatsApp templates as a newer Meta or a hand-edited database may leave them: unknown
    words, markup, components of the wrong shape."""
    from bot.models import MessageTemplate

    rows = [
        MessageTemplate(
            name=XSS_NAME,
            language="x" * 16,
            category="weird",
            previous_category=XSS_TEXT,
            status="weird",
            quality="weird",
            parameter_format="weird",
            components=[
                "text",
                {"type": "HEADER", "format": "WEIRD", "text": XSS_TEXT},
                {"type": "BODY", "text": "{{" + XSS_TEXT + "}} {{1}} {{ 2 }}", "example": 5},
                {"type": "BUTTONS", "buttons": [None, {"type": 1, "url": "{{1}}", "example": {}}]},
            ],
            reason=XSS_TEXT,
            origin="weird",
            synced_at=EARLIEST,
            updated_at=LATEST,
        ),
        MessageTemplate(
            name="leer", language="de", category="", status="", components=[], origin="demo"
        ),
    ]
    session.add_all(rows)
    session.flush()
    return [row.id for row in rows]


def hostile_webhooks(session: Any, contact_id: int) -> list[int]:
    """Webhooks as an older version or a hand-edited database may have left them: events and
    states of no known kind, markup in the URL and the errors, no time anywhere."""
    odd = WebhookEndpoint(
        url="https://x.example/" + XSS_NAME,
        events=["weird", "message.received"],
        secret="whsec_x",
        disabled_at=EARLIEST,
        disabled_reason=XSS_TEXT,
        last_attempt_at=LATEST,
        last_error=XSS_TEXT * 10,
        failing_since=EARLIEST,
    )
    plain = WebhookEndpoint(url="http://", events=[], secret="")
    session.add_all([odd, plain])
    session.flush()
    session.add_all(
        WebhookDelivery(
            endpoint_id=odd.id,
            event_id=event_id,
            event=event,
            body=XSS_TEXT,
            contact_id=contact_id,
            status=status,
            attempts=attempts,
            due_at=EARLIEST,
            last_status=last_status,
            last_error=error,
            created_at=at,
        )
        for event_id, event, status, attempts, last_status, error, at in [
            ("", "weird", "weird", 0, None, None, EARLIEST),
            ("x" * 36, "ping", "failed", 99999, 599, XSS_NAME, LATEST),
            ("e", "message.status", "sent", 1, 200, None, LATEST),
        ]
    )
    session.flush()
    return [odd.id, plain.id]


def crawl_with_hostile_rows(app: Flask, admin: FlaskClient) -> None:
    """Store HOSTILE_INBOUND and HOSTILE_OUTBOUND directly; every admin page must show."""
    with get_db(app).session() as session:
        nameless = Contact(last_message_at=LATEST, last_inbound_at=LATEST, unread=1)
        ancient = Contact(
            wa_id="491", name="n" * 256, last_message_at=EARLIEST, last_inbound_at=EARLIEST
        )
        session.add_all([nameless, ancient])
        session.flush()
        rows = [
            Message(
                contact_id=contact.id,
                direction="in",
                type=kind,
                text=text,
                raw=raw,
                timestamp=at,
                status="received",
            )
            for contact in (nameless, ancient)
            for at in (LATEST, EARLIEST)
            for kind, raw, text in HOSTILE_INBOUND
        ]
        rows += [
            Message(
                contact_id=nameless.id,
                direction="out",
                type="template",
                payload=payload,
                timestamp=at,
                status=status,
                rule="weird",
            )
            for payload in HOSTILE_OUTBOUND
            for at in (LATEST, EARLIEST)
            for status in ("failed", "weird")
        ]
        session.add_all(rows)
        # An owner's quick reply as long and odd as the form lets through.
        session.add(QuickReply(shortcut="x" * 32, text="{{ [Name] }} {% " + "ü" * 4090))
        session.flush()
        ids = [nameless.id, ancient.id]
        broadcast_ids = hostile_broadcasts(session, nameless, ancient)
        attachment_ids = hostile_attachments(
            app, session, [r.id for r in rows if r.direction == "in"]
        )
        template_ids = hostile_templates(session)
        endpoint_ids = hostile_webhooks(session, nameless.id)
    paths = admin_get_paths(app, ids, broadcast_ids, attachment_ids, template_ids, endpoint_ids)
    assert f"/admin/webhooks/{endpoint_ids[0]}" in paths
    assert f"/admin/media/{attachment_ids[0]}" in paths
    assert f"/admin/broadcasts/{broadcast_ids[0]}" in paths
    assert "/admin/inbox.json" in paths and f"/admin/inbox/{ids[0]}/messages.json" in paths
    for path in paths:
        for query in ("", "?q=n&label=x", "?weeks=26", "?after=1", "?q=x&edit=1"):
            response = admin.get(path + query)
            assert response.status_code in (200, 302), (path + query, response.status_code)


def test_unknown_conversation_is_404(admin: FlaskClient) -> None:
    assert admin.get("/admin/inbox/999").status_code == 404


# --- insights ---------------------------------------------------------------------------------


def test_insights_heatmap_in_business_time_and_who_answered(
    app: Flask, admin: FlaskClient, clock: Clock
) -> None:
    # Sunday 2026-03-08 20:30 in Munich (closed) and Wednesday 10:00 (open).
    for at, wa_id in [
        (NOW - timedelta(weeks=20), "4915100000004"),  # outside the last 8 weeks
        (datetime(2026, 3, 8, 19, 30, tzinfo=UTC), "4915100000001"),
        (datetime(2026, 3, 8, 19, 40, tzinfo=UTC), "4915100000002"),
        (NOW, "4915100000003"),
    ]:
        clock.at = at
        receive(admin, at=at, wa_id=wa_id)
    cid = contact_id(app, "4915100000003")
    html = admin.get(f"/admin/inbox/{cid}").get_data(as_text=True)
    admin.post(f"/admin/inbox/{cid}/reply", data={"text": "Gern", "csrf_token": csrf_of(html)})
    page = admin.get("/admin/insights").get_data(as_text=True)
    assert "3 Nachrichten in den letzten 8 Wochen" in page
    assert "2 (67\xa0%) kamen, während das Geschäft geschlossen war." in page
    assert 'title="So. 20:00 — 2 Nachrichten"' in page
    assert 'class="l5"' in page  # the busiest hour
    assert 'class="l2 open" title="Mi. 10:00 — 1 Nachricht, geöffnet 60 Min."' in page
    assert re.search(r'class="l0 part" title="Mi. 12:00 — 0 Nachrichten, geöffnet 30 Min."', page)
    assert "<li>Abwesenheitsnachricht: 2</li>" in page
    # 3 automatic replies (2 away, 1 greeting) in the period, 1 by hand
    assert "3 automatisch (75\xa0%)" in page
    assert "1 von einer Person (25\xa0%)" in page


# --- broadcasts -------------------------------------------------------------------------------


def test_broadcasts_create_list_and_cancel(app: Flask, admin: FlaskClient) -> None:
    html = admin.get("/admin/broadcasts/new").get_data(as_text=True)
    response = admin.post(
        "/admin/broadcasts",
        data={
            "csrf_token": csrf_of(html),
            "audience": "all",
            "kind": "template",
            "template": "spring_sale",
            "language": "de",
            "params": "{{ contact.name }}\n",
            "when": "at",
            "at": "2026-04-01T09:30",
        },
    )
    assert response.status_code == 302
    with get_db(app).session() as session:
        from bot.models import Broadcast

        stored = session.scalars(select(Broadcast)).one()
        assert (stored.template_name, stored.params, stored.at) == (
            "spring_sale",
            ["{{ contact.name }}"],
            datetime(2026, 4, 1, 7, 30, tzinfo=UTC),
        )
    assert response.headers["Location"] == f"/admin/broadcasts/{stored.id}"
    page = admin.get("/admin/broadcasts").get_data(as_text=True)
    assert "WhatsApp-Vorlage" in page and "spring_sale (de)" in page
    assert "Geplant" in page
    assert "Mi., 1. Apr. 2026, 09:30" in page
    cancel = admin.post(f"/admin/broadcasts/{stored.id}/cancel", data={"csrf_token": csrf_of(page)})
    assert cancel.status_code == 302
    assert "Abgebrochen" in admin.get(f"/admin/broadcasts/{stored.id}").get_data(as_text=True)


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"kind": "text", "text": "  ", "when": "now"}, "text", "Schreiben Sie"),
        ({"kind": "text", "text": "Hi", "when": "cron", "cron": "0 9 *"}, "cron", "cron-Zeile"),
        ({"kind": "text", "text": "Hi", "when": "at", "at": ""}, "at", "Datum"),
        (
            {"kind": "text", "text": "Hi", "when": "weekly", "weekly_time": "10:00"},
            "days",
            "Wochentag",
        ),
        ({"kind": "template", "template": "", "when": "now"}, "template", "genehmigten"),
        ({"kind": "text", "text": "{% if %}", "when": "now"}, "text", "Platzhalter"),
        ({"kind": "text", "text": "{{ 'x' * 5000 }}", "when": "now"}, "text", "zu lang"),
    ],
)
def test_broadcast_errors_are_shown(
    admin: FlaskClient, data: dict[str, str], field: str, message: str
) -> None:
    html = admin.get("/admin/broadcasts/new").get_data(as_text=True)
    response = admin.post("/admin/broadcasts", data={"csrf_token": csrf_of(html), **data})
    assert response.status_code == 400
    match = re.search(
        rf'data-error-for="{field}" role="alert">([^<]*)<', response.get_data(as_text=True)
    )
    assert match and message in _unescape(match.group(1))


def test_broadcast_pages_need_login_and_csrf(client: FlaskClient) -> None:
    assert client.get("/admin/broadcasts").status_code == 302
    assert client.get("/admin/broadcasts/new").status_code == 302
    assert client.get("/admin/broadcasts/1").status_code == 302
    assert client.post("/admin/broadcasts/check.json", data={}).status_code == 400
    assert client.post("/admin/broadcasts", data={}).status_code == 400
    assert client.post("/admin/broadcasts/1/cancel", data={}).status_code == 400
