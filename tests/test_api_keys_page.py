"""The admin's API keys page: an owner creates a key (the demo shop speaks German) (its token shown on that answer only),
sees when it was last used, revokes it; staff cannot open it; each change is in the audit log."""

from __future__ import annotations

import html
import re

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.api.keys import key_hash
from bot.db import get_db
from bot.models import ApiKey, AuditEntry
from tests.test_team import owner, post, staff_client  # noqa: F401  (fixture)

TOKEN = re.compile(r"tresen_[0-9a-f]{8}_[\w-]{43}")


def create(client: FlaskClient, name: str, *scopes: str) -> str:
    html_page = client.get("/admin/api-keys").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html_page)
    assert token
    data = {"csrf_token": token.group(1), "name": name, "scope": list(scopes)}
    response = client.post("/admin/api-keys", data=data)
    return response.get_data(as_text=True)


def test_a_key_is_shown_once_kept_hashed_and_works(app: Flask, owner: FlaskClient) -> None:  # noqa: F811
    page = create(owner, "Webshop <Shopware>", "send", "contacts")
    [token] = TOKEN.findall(page)
    assert "Webshop &lt;Shopware&gt;" in page  # the name escaped
    with get_db(app).session() as session:
        key = session.scalars(select(ApiKey)).one()
        assert key.key_hash == key_hash(token) and key.scopes == ["send", "contacts"]
        assert key.created_by_id is not None
        entry = session.scalars(select(AuditEntry)).one()
        assert entry.action == "api_key.created" and entry.subject == f"api_key:{key.prefix}"
        assert token not in (entry.after or "")
    again = owner.get("/admin/api-keys").get_data(as_text=True)
    assert not TOKEN.search(again)  # never shown again
    assert f"tresen_{key.prefix}_…" in html.unescape(again) and "noch nie benutzt" in again
    used = app.test_client().get("/api/v1/contacts/1", headers={"Authorization": f"Bearer {token}"})
    assert used.status_code == 404  # let in: there is just no contact 1
    assert "zuletzt benutzt" in owner.get("/admin/api-keys").get_data(as_text=True)


def test_a_key_needs_a_name_and_a_scope(app: Flask, owner: FlaskClient) -> None:  # noqa: F811
    assert "Geben Sie dem Schlüssel einen Namen" in create(owner, "  ", "send")
    assert "Wählen Sie mindestens eine" in create(owner, "Shop", "everything")
    with get_db(app).session() as session:
        assert session.scalars(select(ApiKey)).all() == []


def test_a_revoked_key_is_refused_at_once(app: Flask, owner: FlaskClient) -> None:  # noqa: F811
    [token] = TOKEN.findall(create(owner, "Shop", "messages"))
    with get_db(app).session() as session:
        key_id = session.scalars(select(ApiKey.id)).one()
    response = post(owner, f"/admin/api-keys/{key_id}/revoke")
    assert response.status_code == 302
    page = owner.get("/admin/api-keys").get_data(as_text=True)
    assert "ist widerrufen" in page and "Widerrufen</button>" not in page
    refused = app.test_client().get(
        "/api/v1/messages/1", headers={"Authorization": f"Bearer {token}"}
    )
    assert refused.status_code == 401 and "revoked" in refused.get_json()["error"]["message"]
    with get_db(app).session() as session:
        actions = [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert actions == ["api_key.created", "api_key.revoked"]


def test_staff_cannot_open_or_create_keys(app: Flask, owner: FlaskClient) -> None:  # noqa: F811
    staff = staff_client(app)
    assert staff.get("/admin/api-keys").status_code == 403
    assert post(staff, "/admin/api-keys", {"name": "x", "scope": "send"}).status_code == 403
    with get_db(app).session() as session:
        assert session.scalars(select(ApiKey)).all() == []
