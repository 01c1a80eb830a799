"""The settings pages' previews of late messages: what the late policy does with the settings
as they stand in the form, worded in the page's language."""

# ruff: noqa: F811  (`owner` is the imported fixture, asked for by name)

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from bot.admin.settings_previews import LATE_ROWS
from bot.db import get_db
from bot.settings import dump_settings
from bot.settings.stored import load_settings, save_settings
from tests.test_accounts import owner  # noqa: F401  (the fixture, taken by name below)
from tests.test_admin import csrf_of
from tests.test_admin_settings import settings_form

# The demo shop is open on Wednesday 11 March 2026 at 10:00 and closes at 12:30.
AT = "2026-03-11T10:00"


def late_previews(owner: FlaskClient, **changes: str) -> dict[str, dict[str, object]]:
    data, _ = settings_form(owner, "answers")
    data.update({"preview_text": "Hallo", "preview_at": AT, **changes})
    result = owner.post("/admin/settings/preview", data=data).get_json()
    assert result["ok"] is True, result["errors"]
    return {key: result["previews"][key] for key in LATE_ROWS}


def without(data: dict[str, str], *prefixes: str) -> dict[str, str]:
    return {k: v for k, v in data.items() if not k.startswith(prefixes)}


def test_late_messages_in_german(owner: FlaskClient) -> None:
    rows = late_previews(owner)
    away = rows["late-away"]
    assert away["title"] == "Kommt 2 Stunden zu spät an, während geschlossen ist:"
    assert (away["rule"], away["text"]) == (None, None)
    assert "Landet im Posteingang" in str(away["note"])
    assert "mehr als 60 Minuten" in str(away["note"])
    assert "12:30 (geschlossen)" in str(away["when"])
    keyword = rows["late-keyword"]
    assert keyword["rule"] == "keyword"
    assert "Unsere Öffnungszeiten" in str(keyword["text"])
    assert str(keyword["note"]).startswith("Wird trotzdem beantwortet")
    old = rows["late-old"]
    assert (old["rule"], old["text"]) == (None, None)
    assert "Nach einem Tag" in str(old["note"])
    assert "auch kein Stichwort" in str(old["note"])
    optout = rows["late-optout"]
    assert (optout["rule"], optout["text"]) == ("optout", None)
    assert str(optout["note"]).startswith("Abgemeldet")
    assert "keine Angebote und Neuigkeiten mehr" in str(optout["note"])


def in_english(app: Flask) -> None:
    with get_db(app).session() as session:
        settings = load_settings(session)
        assert settings is not None
        save_settings(session, dump_settings(settings).replace("de_DE", "en_US", 1))


def test_late_messages_in_english_with_the_limit_from_the_form(
    app: Flask, owner: FlaskClient
) -> None:
    in_english(app)
    # Not saved: the previews use the form as it stands.
    rows = late_previews(owner, stale_minutes="90")
    away = rows["late-away"]
    assert away["title"] == "Arrives 2 hours late, while you are closed:"
    assert away["rule"] is None
    assert "Kept in the inbox" in str(away["note"])
    assert "more than 90 minutes" in str(away["note"])
    assert "(closed)" in str(away["when"])
    assert rows["late-keyword"]["rule"] == "keyword"
    assert str(rows["late-keyword"]["note"]).startswith("Still answered")
    assert rows["late-old"]["rule"] is None
    assert "after a day nothing is answered" in str(rows["late-old"]["note"])
    assert (rows["late-optout"]["rule"], rows["late-optout"]["text"]) == ("optout", None)
    assert str(rows["late-optout"]["note"]).startswith("Unsubscribed")


def test_a_longer_limit_still_gets_the_away_reply(owner: FlaskClient) -> None:
    away = late_previews(owner, stale_minutes="180")["late-away"]
    assert away["rule"] == "away"
    assert "Blumen Müller" in str(away["text"])
    assert "binnen 180 Minuten" in str(away["note"])


def test_late_previews_without_away_greeting_keywords_or_stop_words(
    app: Flask, owner: FlaskClient
) -> None:
    in_english(app)
    data, _ = settings_form(owner, "keywords")
    assert owner.post("/admin/settings/keywords", data=without(data, "kw-")).status_code == 302
    data, _ = settings_form(owner, "answers")
    data = without(data, "away_on", "greeting_on")
    data.update({"optout_stop": "", "optout_start": "", "preview_at": AT})
    result = owner.post("/admin/settings/preview", data=data).get_json()
    assert result["ok"] is True, result["errors"]
    rows = result["previews"]
    assert rows["late-away"]["rule"] is None
    assert "there would be none on time either" in rows["late-away"]["note"]
    assert rows["late-keyword"]["note"] == "Add a keyword rule with words to see this."
    assert rows["late-optout"]["note"] == "No stop words set."
    # Saved like that, the page still shows the late-message previews.
    saved = owner.post("/admin/settings/answers", data=data)
    assert saved.status_code == 302
    page = owner.get("/admin/settings/answers")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-preview="late-away"' in html
    assert "A stop word, 2 days late:" in html


def test_the_page_shows_the_late_previews_in_the_page_language(owner: FlaskClient) -> None:
    html = owner.get("/admin/settings/answers").get_data(as_text=True)
    csrf_of(html)  # the form still carries its token
    for key in LATE_ROWS:
        assert f'data-preview="{key}"' in html
    assert "Kommt 2 Stunden zu spät an, während geschlossen ist:" in html
    assert "Ein Stopp-Wort, 2 Tage zu spät:" in html
    assert "Arrives 2 hours late" not in html
