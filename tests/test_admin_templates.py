"""The admin's templates pages: the list with category, status, quality and the wording (Meta's
words escaped, variables marked), one template's page, and the owner's sync button."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.db import get_db
from bot.message_templates.sync import store_templates
from bot.models import AuditEntry, MessageTemplate
from tests.conftest import build_app
from tests.fakegraph import FakeGraph, graph_error
from tests.test_admin import NOW, Clock, admin, clock, csrf_of, demo_owner  # noqa: F401  (fixtures)
from tests.test_team import staff_client

XSS = "<script>alert(1)</script>"
TOKEN = "EAAadmintoken"


def hostile(name: str = "boese") -> dict[str, object]:
    return {
        "name": name,
        "language": "de",
        "category": "UTILITY",
        "status": "REJECTED",
        "rejected_reason": "INVALID_FORMAT",
        "quality_score": {"score": "YELLOW"},
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": f"Kopf {XSS}"},
            {"type": "BODY", "text": f"Hallo {{{{1}}}} {XSS} & Co"},
            {"type": "FOOTER", "text": f"Fuß {XSS}"},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": f"Knopf {XSS}"}]},
        ],
    }


def post(client: FlaskClient, path: str) -> object:
    token = csrf_of(client.get("/admin/templates").get_data(as_text=True))
    return client.post(path, data={"csrf_token": token})


def test_the_list_shows_the_demo_templates_in_german(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    response = post(admin, "/admin/templates/sync")  # console mode: the demo templates
    assert response.status_code == 302  # type: ignore[attr-defined]
    html = admin.get("/admin/templates").get_data(as_text=True)
    assert "Konsolenmodus" in html
    for name in ("wieder_da", "wochenangebot", "abholbereit", "herbstgruss"):
        assert name in html
    assert "Service-Nachricht" in html and "Marketing" in html
    assert "Freigegeben" in html and "Pausiert" in html
    assert '<mark class="variable">{{vorname}}</mark>' in html
    assert '<mark class="variable">{{1}}</mark>' in html
    assert "Kopfzeile: Bild" in html  # the picture header of wochenangebot
    nav = re.search(r'<nav aria-label="Hauptmenü">(.*?)</nav>', html, re.S)
    assert nav and 'aria-current="page">Vorlagen</a>' in nav.group(1)
    with get_db(app).session() as session:
        entry = session.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()))
    assert entry is not None and entry.action == "templates.synced"


def test_meta_words_are_escaped_on_both_pages(app: Flask, admin: FlaskClient) -> None:  # noqa: F811
    with get_db(app).session() as session:
        store_templates(session, [hostile()], NOW)
        template_id = session.scalar(select(MessageTemplate.id))
    for path in ("/admin/templates", f"/admin/templates/{template_id}"):
        html = admin.get(path).get_data(as_text=True)
        assert XSS not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "Abgelehnt" in html and "Mittel" in html
    detail = admin.get(f"/admin/templates/{template_id}").get_data(as_text=True)
    assert "INVALID_FORMAT" in detail and "Anna" not in detail
    assert admin.get("/admin/templates/999999").status_code == 404


def test_staff_see_the_templates_but_only_owners_fetch_them(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    staff = staff_client(app)
    html = staff.get("/admin/templates").get_data(as_text=True)
    assert staff.get("/admin/templates").status_code == 200
    assert "/admin/templates/sync" not in html
    assert post(staff, "/admin/templates/sync").status_code == 403  # type: ignore[attr-defined]
    assert "/admin/templates/sync" in admin.get("/admin/templates").get_data(as_text=True)


@pytest.fixture
def live_owner(database_url: str, tmp_path: Path) -> Iterator[tuple[Flask, FlaskClient, FakeGraph]]:
    with FakeGraph(token=TOKEN) as fake:
        app = build_app(
            database_url,
            tmp_path,
            WHATSAPP_TOKEN=TOKEN,
            WHATSAPP_PHONE_NUMBER_ID="106540352242922",
            WHATSAPP_VERIFY_TOKEN="verify",
            SECRET_KEY="s" * 32,
            GRAPH_API_URL=fake.url,
            WHATSAPP_BUSINESS_ACCOUNT_ID="102290129340398",
        )
        app.config["TRESEN_CLOCK"] = Clock(NOW)
        client = demo_owner(app, app.test_client())
        yield app, client, fake
        get_db(app).dispose()


def test_the_sync_button_fetches_from_meta_and_says_what_failed(
    live_owner: tuple[Flask, FlaskClient, FakeGraph],
) -> None:
    _app, client, fake = live_owner
    html = client.get("/admin/templates").get_data(as_text=True)
    assert "Noch nicht von WhatsApp geholt" in html
    fake.set_templates([hostile("eins"), hostile("zwei")])
    post(client, "/admin/templates/sync")
    html = client.get("/admin/templates").get_data(as_text=True)
    assert "2 Vorlagen von WhatsApp geholt: 2 neu" in html
    assert "eins" in html and "zwei" in html and "Von WhatsApp geholt:" in html
    fake.fail_all(401, graph_error(190, "Error validating access token"))
    post(client, "/admin/templates/sync")
    html = client.get("/admin/templates").get_data(as_text=True)
    assert "WhatsApp hat die Vorlagen nicht herausgegeben" in html
    assert "Error validating access token" in html and TOKEN not in html
    assert "eins" in html  # nothing changed


def test_the_templates_pages_need_a_login(client: FlaskClient) -> None:
    for path in ("/admin/templates", "/admin/templates/1"):
        response = client.get(path)
        assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
