"""Writing a new template in the admin and submitting it to the fake Graph API over real HTTP:
Meta's refusal in plain words with the form kept, a success stored as pending, the media
header's sample through the Resumable Upload API, console mode's demo, owners only, CSRF."""

from __future__ import annotations

import html
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.db import get_db
from bot.message_templates.store import find
from bot.models import AuditEntry, MessageTemplate
from tests.conftest import build_app
from tests.fakegraph import FakeGraph, Reply
from tests.test_admin import NOW, Clock, csrf_of, demo_owner
from tests.test_team import staff_client

TOKEN = "test-token-templates"
WABA = "102290129340398"
APP_ID = "7700112233"

FORM = {
    "name": "wir_sind_zurueck",
    "language": "de",
    "category": "utility",
    "header": "none",
    "body": "Hallo {{vorname}}, wir sind wieder für dich da. Deine Bestellung {{nummer}} ist fertig.",
    "example-vorname": "Anna",
    "example-nummer": "4711",
    "footer": "Blumen Müller",
    "button-0-kind": "quick_reply",
    "button-0-text": "Danke!",
}


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with FakeGraph(token=TOKEN) as server:
        yield server


def live_app(database_url: str, tmp_path: Path, fake: FakeGraph, **more: str) -> Flask:
    app = build_app(
        database_url,
        tmp_path,
        WHATSAPP_TOKEN=TOKEN,
        WHATSAPP_PHONE_NUMBER_ID="1234567890",
        WHATSAPP_VERIFY_TOKEN="verify",
        SECRET_KEY="test secret key",
        GRAPH_API_URL=fake.url,
        **more,
    )
    app.config["TRESEN_CLOCK"] = Clock(NOW)
    return app


@pytest.fixture
def live(database_url: str, tmp_path: Path, fake: FakeGraph) -> Iterator[Flask]:
    app = live_app(
        database_url, tmp_path, fake, WHATSAPP_BUSINESS_ACCOUNT_ID=WABA, WHATSAPP_APP_ID=APP_ID
    )
    yield app
    get_db(app).dispose()


@pytest.fixture
def owner(live: Flask) -> FlaskClient:
    return demo_owner(live, live.test_client())


def submit(client: FlaskClient, form: dict[str, Any] | None = None, **changes: Any) -> Any:
    page = client.get("/admin/templates/new").get_data(as_text=True)
    data = {"csrf_token": csrf_of(page), **(form or FORM), **changes}
    return client.post("/admin/templates/new", data=data, content_type="multipart/form-data")


def text_of(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_the_page_offers_languages_kinds_and_example_fields(owner: FlaskClient) -> None:
    page = text_of(owner.get("/admin/templates/new"))
    assert "Neue Vorlage schreiben" in page
    assert "Deutsch (de)" in page and "Englisch (Vereinigte Staaten) (en_US)" in page
    assert "Service-Nachrichten (Utility)" in page and "Anmeldecodes (Authentifizierung)" in page
    assert "kostenlos, solange das 24-Stunden-Fenster" in page
    assert "templates_new.js" in page


def test_a_submission_is_stored_as_pending_with_metas_id(
    live: Flask, owner: FlaskClient, fake: FakeGraph
) -> None:
    response = submit(owner)
    assert response.status_code == 302
    sent = [r for r in fake.requests if r.path.endswith("/message_templates")]
    assert len(sent) == 1
    assert sent[0].path == f"/v24.0/{WABA}/message_templates"
    assert sent[0].headers.get("Authorization") == f"Bearer {TOKEN}"
    assert sent[0].json["parameter_format"] == "named"
    assert sent[0].json["components"][0]["example"] == {
        "body_text_named_params": [
            {"param_name": "vorname", "example": "Anna"},
            {"param_name": "nummer", "example": "4711"},
        ]
    }
    with get_db(live).session() as session:
        row = find(session, "wir_sind_zurueck", "de")
        assert row is not None
        assert (row.status, row.origin, row.category, row.parameter_format) == (
            "pending",
            "submitted",
            "utility",
            "named",
        )
        assert row.meta_id == fake.template_desk.created[("wir_sind_zurueck", "de")]["id"]
        assert row.components == sent[0].json["components"]
        entry = session.scalars(select(AuditEntry)).all()[-1]
        assert (entry.action, entry.subject) == (
            "template.submitted",
            "template:wir_sind_zurueck:de",
        )
    shown = text_of(owner.get(response.headers["Location"]))
    assert "Die Vorlage wir_sind_zurueck (de) wurde WhatsApp zur Prüfung gesendet" in shown
    assert "Ihr Status: pending" in shown
    # The same name and language again: refused here, before Meta is asked.
    again = submit(owner)
    assert again.status_code == 422
    assert "Es gibt schon eine Vorlage mit diesem Namen in dieser Sprache" in text_of(again)
    assert len([r for r in fake.requests if r.path.endswith("/message_templates")]) == 1


def test_metas_refusal_is_shown_in_plain_words_and_the_form_kept(
    live: Flask, owner: FlaskClient, fake: FakeGraph
) -> None:
    # Deleted at Meta a week ago: the name stays blocked, which only Meta knows.
    fake.template_desk.being_deleted.add("wir_sind_zurueck")
    response = submit(owner)
    assert response.status_code == 422
    page = text_of(response)
    assert "WhatsApp hat die Vorlage nicht angenommen" in page
    assert "WhatsApp sperrt diesen Namen in dieser Sprache noch" in page
    # Meta's own words beside ours, for whoever helps the shop.
    assert "Message template language is being deleted" in page
    # Nothing is lost: the form comes back filled.
    assert 'value="wir_sind_zurueck"' in page
    assert "Deine Bestellung {{nummer}} ist fertig." in page
    assert 'value="4711"' in page and 'value="Danke!"' in page
    with get_db(live).session() as session:
        assert session.scalars(select(MessageTemplate)).all() == []


def test_an_unknown_refusal_shows_metas_message(owner: FlaskClient, fake: FakeGraph) -> None:
    fake.script(
        [
            Reply(
                400,
                {
                    "error": {
                        "message": "Invalid parameter",
                        "code": 100,
                        "error_subcode": 2388999,
                        "error_user_title": "Sample does not fit",
                        "error_user_msg": "The sample for nummer looks like a phone number.",
                    }
                },
            )
        ]
    )
    page = text_of(submit(owner))
    assert "WhatsApp nennt einen Grund, den Tresen noch nicht kennt" in page
    assert "Sample does not fit: The sample for nummer looks like a phone number." in page


def test_an_unreachable_meta_is_no_500(owner: FlaskClient, fake: FakeGraph) -> None:
    fake.script([Reply(drop=True)])
    response = submit(owner)
    assert response.status_code == 503
    assert "WhatsApp war nicht erreichbar" in text_of(response)


def test_local_checks_come_first_with_a_name_suggestion(
    owner: FlaskClient, fake: FakeGraph
) -> None:
    response = submit(
        owner,
        name="Wir sind zurück",
        body="{{vorname}}, wir sind wieder da {{nummer}}",
        **{"example-nummer": ""},
    )
    assert response.status_code == 422
    page = text_of(response)
    assert "zum Beispiel wir_sind_zurueck" in page
    assert "Der Text darf nicht mit einer Variablen beginnen" in page
    assert "Der Text darf nicht mit einer Variablen enden" in page
    assert "WhatsApp möchte ein Beispiel für {{nummer}}" in page
    assert fake.requests == []


def test_a_photo_header_goes_through_the_resumable_upload(
    live: Flask, owner: FlaskClient, fake: FakeGraph
) -> None:
    picture = b"\x89PNG\r\n\x1a\n" + b"0" * 100
    response = submit(owner, header="image", header_file=(io.BytesIO(picture), "laden.png"))
    assert response.status_code == 302, text_of(response)
    paths = [r.path for r in fake.requests]
    assert paths[0].startswith(f"/v24.0/{APP_ID}/uploads?")
    assert "file_length=108" in paths[0] and "file_type=image%2Fpng" in paths[0]
    assert paths[1].startswith("/v24.0/upload:")
    upload = fake.requests[1]
    assert upload.headers.get("Authorization") == f"OAuth {TOKEN}"
    assert upload.headers.get("file_offset") == "0"
    assert list(fake.template_desk.uploads.values()) == [picture]
    header = fake.requests[2].json["components"][0]
    assert header["format"] == "IMAGE"
    assert header["example"]["header_handle"][0] in fake.template_desk.handles


def test_a_media_header_without_an_app_id_is_explained(
    database_url: str, tmp_path: Path, fake: FakeGraph
) -> None:
    app = live_app(database_url, tmp_path, fake, WHATSAPP_BUSINESS_ACCOUNT_ID=WABA)
    try:
        client = demo_owner(app, app.test_client())
        assert "braucht WHATSAPP_APP_ID" in text_of(client.get("/admin/templates/new"))
        response = submit(client, header="image", header_file=(io.BytesIO(b"x"), "a.png"))
        assert response.status_code == 422
        assert "braucht WHATSAPP_APP_ID" in text_of(response)
        assert fake.requests == []
    finally:
        get_db(app).dispose()


def test_without_the_account_id_the_page_says_what_is_missing(
    database_url: str, tmp_path: Path, fake: FakeGraph
) -> None:
    app = live_app(database_url, tmp_path, fake)
    try:
        client = demo_owner(app, app.test_client())
        page = text_of(client.get("/admin/templates/new"))
        assert "WHATSAPP_BUSINESS_ACCOUNT_ID" in page
        assert submit(client).status_code == 422
        assert fake.requests == []
    finally:
        get_db(app).dispose()


def test_console_mode_keeps_a_demo_template(app: Flask, client: FlaskClient) -> None:
    app.config["TRESEN_CLOCK"] = Clock(NOW)
    owner = demo_owner(app, client)
    assert "Konsolenmodus" in text_of(owner.get("/admin/templates/new"))
    response = submit(owner)
    assert response.status_code == 302
    assert "als Demo gespeichert" in text_of(owner.get(response.headers["Location"]))
    with get_db(app).session() as session:
        row = find(session, "wir_sind_zurueck", "de")
        assert row is not None
        assert (row.origin, row.status, row.meta_id) == ("demo", "approved", None)


def test_only_owners_and_only_with_a_csrf_token(live: Flask, owner: FlaskClient) -> None:
    staff = staff_client(live)
    assert staff.get("/admin/templates/new").status_code == 403
    assert staff.post("/admin/templates/new", data=FORM).status_code in (400, 403)
    refused = owner.post("/admin/templates/new", data=FORM)
    assert refused.status_code == 400
    with get_db(live).session() as session:
        assert session.scalars(select(MessageTemplate)).all() == []
