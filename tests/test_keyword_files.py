"""A keyword rule that answers with a file (the price list): the settings key, the answer
queued as the file with its text as caption and linked to the message, and the admin's
keyword page that chooses the file."""

from __future__ import annotations

import io

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.db import get_db
from bot.media.store import LocalStore
from bot.models import Attachment
from bot.settings import KeywordFile, SettingsError, dump_settings, parse_settings
from bot.settings.stored import save_settings
from tests.test_admin import admin, clock  # noqa: F401  (fixtures)
from tests.test_admin_settings import settings_form, stored
from tests.test_autoreply import SHOP, TUESDAY_MORNING, at, replies, say
from tests.test_send_media import PDF, sha, store, stored_file  # noqa: F401  (fixture)

PRICES = SHOP.replace(
    '    - {match: ["öffnungszeiten", "hours"], template: hours}\n',
    '    - {match: ["öffnungszeiten", "hours"], template: hours}\n'
    "    - {match: [preisliste, preise], template: prices,"
    f" file: {{name: Preisliste 2026.pdf, sha256: {sha(PDF)}}}}}\n",
).replace(
    '  greeting: "Willkommen',
    '  prices: "Hallo {{ contact.name }}, hier unsere Preise."\n  greeting: "Willkommen',
)


def test_the_settings_file_names_the_file_readably_and_round_trips() -> None:
    settings = parse_settings(PRICES)
    rule = settings.keywords[1]
    assert rule.file == KeywordFile(name="Preisliste 2026.pdf", sha256=sha(PDF))
    written = dump_settings(settings)
    assert f"file: {{name: Preisliste 2026.pdf, sha256: {sha(PDF)}}}" in written
    assert parse_settings(written) == settings


@pytest.mark.parametrize(
    ("file", "reason"),
    [
        ("{name: a.pdf, sha256: xyz}", "64 hexadecimal digits"),
        ("{name: a.pdf}", "needs 'name' and 'sha256'"),
        ("{name: a.pdf, sha256: " + "0" * 64 + ", kind: pdf}", "unknown key 'kind'"),
    ],
)
def test_a_bad_file_is_refused_with_its_line(file: str, reason: str) -> None:
    text = SHOP.replace("template: hours}", f"template: hours, file: {file}}}")
    with pytest.raises(SettingsError) as error:
        parse_settings(text)
    assert reason in error.value.reason and error.value.line == 15


def test_the_keyword_answer_is_the_file_with_its_text_as_caption(
    app: Flask,
    client: FlaskClient,
    store: LocalStore,  # noqa: F811
) -> None:
    row = stored_file(app, store, PDF, "application/pdf")
    with get_db(app).session() as session:
        save_settings(session, PRICES)
    at(app, TUESDAY_MORNING)
    say(client, "Was kostet ein Kranz? Gibt es eine Preisliste?", TUESDAY_MORNING)
    [answer] = replies(app)
    assert answer.rule == "keyword" and answer.type == "document"
    assert answer.payload["document"] == {
        "file": sha(PDF),
        "caption": "Hallo Anna, hier unsere Preise.",
        "filename": "Preisliste 2026.pdf",
    }
    with get_db(app).session() as session:
        attachment = session.scalars(select(Attachment)).one()
        assert (attachment.message_id, attachment.file_id) == (answer.id, row.id)
        assert (attachment.kind, attachment.state, attachment.filename) == (
            "document",
            "stored",
            "Preisliste 2026.pdf",
        )


def test_a_file_no_longer_stored_leaves_the_text(
    app: Flask,
    client: FlaskClient,
    store: LocalStore,  # noqa: F811
) -> None:
    with get_db(app).session() as session:
        save_settings(session, PRICES)
    at(app, TUESDAY_MORNING)
    say(client, "preise?", TUESDAY_MORNING)
    [answer] = replies(app)
    assert answer.type == "text" and answer.text == "Hallo Anna, hier unsere Preise."


def test_the_keyword_page_chooses_a_file_for_a_rule(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
    store: LocalStore,  # noqa: F811
) -> None:
    data, html = settings_form(admin, "keywords")
    assert 'enctype="multipart/form-data"' in html and 'name="kw-0-upload"' in html
    data["kw-0-match"] = "preisliste, preise"
    data["kw-0-text"] = "Hier unsere Preisliste."
    answer = admin.post(
        "/admin/settings/keywords",
        data={**data, "kw-0-upload": (io.BytesIO(PDF), "Preisliste.pdf", "application/pdf")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    rule = stored(app).keywords[0]
    assert rule.file == KeywordFile(name="Preisliste.pdf", sha256=sha(PDF))
    # Shown on the page again, and kept when the rule is saved without a new file.
    data, html = settings_form(admin, "keywords")
    assert "Preisliste.pdf" in html
    assert admin.post("/admin/settings/keywords", data=data).status_code == 302
    assert stored(app).keywords[0].file == rule.file
    # Taken off by its checkbox.
    answer = admin.post("/admin/settings/keywords", data={**data, "kw-0-nofile": "1"})
    assert answer.status_code == 302
    assert stored(app).keywords[0].file is None


def test_the_keyword_page_refuses_a_file_whatsapp_would_not_send(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
    store: LocalStore,  # noqa: F811
) -> None:
    data, _html = settings_form(admin, "keywords")
    data["kw-0-match"] = "preise"
    data["kw-0-text"] = "Preise"
    answer = admin.post(
        "/admin/settings/keywords",
        data={**data, "kw-0-upload": (io.BytesIO(b"<svg/>"), "x.svg", "image/svg+xml")},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 400
    assert "PDF, Word, Excel" in answer.get_data(as_text=True)
    assert list(store.keys()) == []


def test_simulate_names_the_file_of_the_answer(app: Flask) -> None:
    with get_db(app).session() as session:
        save_settings(session, PRICES)
    result = app.test_cli_runner().invoke(
        args=["simulate", "--text", "Preisliste bitte", "--at", "2026-12-01T10:30"]
    )
    assert result.exit_code == 0, result.output
    assert "rule: keyword" in result.output
    assert "file: Preisliste 2026.pdf (the reply is its caption)" in result.output
