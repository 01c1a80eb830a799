"""The admin's webhooks page (the demo shop speaks German): an owner adds a webhook (its
secret shown on that answer only), is refused a private address, changes its events, sends a
test event, makes a new secret, switches it on again and deletes it, each in the audit log;
staff cannot open it, and a form without its CSRF token is refused."""

from __future__ import annotations

import html
import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.db import get_db
from bot.models import AuditEntry, WebhookDelivery, WebhookEndpoint
from tests.test_admin import NOW, csrf_of
from tests.test_team import owner, post, staff_client  # noqa: F401  (fixture)

SECRET = re.compile(r"whsec_[\w-]{43}")
PUBLIC = "https://93.184.216.34/tresen"  # an address: no name to look up offline


def create(client: FlaskClient, url: str, *events: str) -> tuple[int, str]:
    token = csrf_of(client.get("/admin/webhooks").get_data(as_text=True))
    response = client.post(
        "/admin/webhooks", data={"csrf_token": token, "url": url, "event": list(events)}
    )
    return response.status_code, response.get_data(as_text=True)


def audit_actions(app: Flask) -> list[str]:
    with get_db(app).session() as session:
        return [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def test_the_secret_is_shown_once_and_kept_to_sign(app: Flask, owner: FlaskClient) -> None:  # noqa: F811
    status, page = create(owner, PUBLIC, "message.received", "contact.opted_out")
    assert status == 200
    [secret] = set(SECRET.findall(page))
    assert "nur dieses eine Mal angezeigt" in page
    with get_db(app).session() as session:
        endpoint = session.scalars(select(WebhookEndpoint)).one()
        assert endpoint.url == PUBLIC and endpoint.secret == secret
        assert endpoint.events == ["message.received", "contact.opted_out"]
        assert endpoint.created_by_id is not None
        entry = session.scalars(select(AuditEntry)).one()
        assert entry.action == "webhook.created" and secret not in (entry.after or "")
    listing = owner.get("/admin/webhooks").get_data(as_text=True)
    assert not SECRET.search(listing)  # never shown again
    assert PUBLIC in html.unescape(listing) and "noch nichts gesendet" in listing
    detail = owner.get(f"/admin/webhooks/{endpoint.id}").get_data(as_text=True)
    assert not SECRET.search(detail)


def test_a_private_or_bad_address_is_refused_with_a_clear_message(
    app: Flask,
    owner: FlaskClient,  # noqa: F811
) -> None:
    status, page = create(owner, "http://10.1.2.3/hook", "message.received")
    assert status == 400 and "An 10.1.2.3 sendet Tresen keine Webhooks" in page
    status, page = create(owner, "http://[::ffff:127.0.0.1]:8080/", "message.received")
    assert status == 400 and "127.0.0.1" in page and "WEBHOOKS_ALLOW_PRIVATE" in page
    status, page = create(owner, "ftp://shop.example/", "message.received")
    assert status == 400 and "muss mit https://" in page
    status, page = create(owner, PUBLIC)
    assert status == 400 and "mindestens ein Ereignis" in page
    with get_db(app).session() as session:
        assert session.scalars(select(WebhookEndpoint)).all() == []


def test_the_owner_manages_a_webhook_and_each_change_is_audited(
    app: Flask,
    owner: FlaskClient,  # noqa: F811
) -> None:
    create(owner, PUBLIC, "message.received")
    with get_db(app).session() as session:
        endpoint = session.scalars(select(WebhookEndpoint)).one()
        endpoint_id, first_secret = endpoint.id, endpoint.secret
        endpoint.disabled_at, endpoint.disabled_reason = NOW, "no success for 3 days"
    base = f"/admin/webhooks/{endpoint_id}"
    assert post(owner, f"{base}/test").status_code == 302  # refused while switched off
    assert post(owner, f"{base}/enable").status_code == 302
    assert post(owner, f"{base}/events", {"event": "message.status"}).status_code == 302
    assert post(owner, f"{base}/test").status_code == 302
    rotated = post(owner, f"{base}/secret").get_data(as_text=True)
    [new_secret] = set(SECRET.findall(rotated))
    assert new_secret != first_secret
    page = owner.get(base).get_data(as_text=True)
    assert "Test-Ereignis" in page and "wartet" in page and not SECRET.search(page)
    with get_db(app).session() as session:
        endpoint = session.get(WebhookEndpoint, endpoint_id)
        assert endpoint is not None
        assert endpoint.disabled_at is None and endpoint.events == ["message.status"]
        assert endpoint.secret == new_secret
        [ping] = session.scalars(select(WebhookDelivery)).all()
        assert ping.event == "ping"
    assert post(owner, f"{base}/delete").status_code == 302
    with get_db(app).session() as session:
        assert session.scalars(select(WebhookEndpoint)).all() == []
        assert session.scalars(select(WebhookDelivery)).all() == []
    assert audit_actions(app) == [
        "webhook.created",
        "webhook.enabled",
        "webhook.changed",
        "webhook.tested",
        "webhook.secret",
        "webhook.deleted",
    ]


def test_staff_cannot_open_or_change_webhooks(app: Flask, owner: FlaskClient) -> None:  # noqa: F811
    create(owner, PUBLIC, "message.received")
    staff = staff_client(app)
    assert staff.get("/admin/webhooks").status_code == 403
    assert staff.get("/admin/webhooks/1").status_code == 403
    refused = post(staff, "/admin/webhooks", {"url": PUBLIC, "event": "message.received"})
    assert refused.status_code == 403
    assert post(staff, "/admin/webhooks/1/delete").status_code == 403
    with get_db(app).session() as session:
        assert len(session.scalars(select(WebhookEndpoint)).all()) == 1


def test_forms_without_their_csrf_token_are_refused(app: Flask, owner: FlaskClient) -> None:  # noqa: F811
    response = owner.post("/admin/webhooks", data={"url": PUBLIC, "event": "message.received"})
    assert response.status_code == 400
    create(owner, PUBLIC, "message.received")
    assert owner.post("/admin/webhooks/1/delete", data={"csrf_token": "forged"}).status_code == 400
    with get_db(app).session() as session:
        assert len(session.scalars(select(WebhookEndpoint)).all()) == 1


def test_the_account_page_links_to_the_webhooks(owner: FlaskClient) -> None:  # noqa: F811
    page = owner.get("/admin/account").get_data(as_text=True)
    assert 'href="/admin/webhooks"' in page and "Webhooks für Shop-Systeme" in page
