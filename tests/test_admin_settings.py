"""The settings pages through Flask's test client: one page per section, each saving only its
part through the settings file's validation; keyword rules with their answers; reply texts as
plain text with placeholders or as Jinja; the previews."""

from __future__ import annotations

# ruff: noqa: F811  (test_admin's fixtures, imported, are this module's parameters)
import html as html_lib
import re
import time
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bot.db import get_db
from bot.models import Business
from bot.settings import BusinessSettings, dump_settings
from bot.settings.stored import BUSINESS_ID, load_settings, save_settings
from tests.test_admin import (  # noqa: F401  (fixtures)
    Clock,
    admin,
    clock,
    csrf_of,
    login,
    outbound,
    receive,
)

SECTIONS = ("business", "hours", "closures", "answers", "keywords")
# Sunday 29 November 2026, 13:00 in Munich: the demo shop is closed and opens on Monday at 9.
SUNDAY = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def settings_form(admin: FlaskClient, section: str) -> tuple[dict[str, str], str]:
    """A section's form fields as a browser would submit them (first option of selects)."""
    html = admin.get(f"/admin/settings/{section}").get_data(as_text=True)
    form = html[html.index('id="settings-form"') :]
    data: dict[str, str] = {}
    for tag in re.finditer(r"<input\b[^>]*>", form):
        attrs = dict(re.findall(r'(\w[\w-]*)="([^"]*)"', tag.group(0)))
        name = attrs.get("name")
        unchecked = attrs.get("type") in ("checkbox", "radio") and "checked" not in tag.group(0)
        if not name or unchecked:
            continue
        data[name] = html_lib.unescape(attrs.get("value", ""))
    for area in re.finditer(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', form, re.S):
        data[area.group(1)] = html_lib.unescape(area.group(2))
    for select_tag in re.finditer(r'<select name="([^"]+)">(.*?)</select>', form, re.S):
        chosen = re.search(r'<option value="([^"]*)"[^>]* selected', select_tag.group(2))
        first = re.search(r'<option value="([^"]*)"', select_tag.group(2))
        found = chosen or first
        data[select_tag.group(1)] = found.group(1) if found else ""
    return data, html


def stored(app: Flask) -> BusinessSettings:
    with get_db(app).session() as session:
        settings = load_settings(session)
    assert settings is not None
    return settings


def stored_yaml(app: Flask) -> str:
    with get_db(app).session() as session:
        business = session.get_one(Business, BUSINESS_ID)
        return business.settings_yaml


def replace_settings(app: Flask, text: str) -> None:
    with get_db(app).session() as session:
        save_settings(session, text)


# --- the pages --------------------------------------------------------------------------------


def test_the_overview_leads_to_every_section_in_german(admin: FlaskClient) -> None:
    html = admin.get("/admin/settings").get_data(as_text=True)
    for section in SECTIONS:
        assert f'href="/admin/settings/{section}"' in html
    for title in ("Geschäft", "Öffnungszeiten", "Feiertage und Schließtage", "Stichwörter"):
        assert title in html
    assert 'href="/admin/settings/yaml"' in html


@pytest.mark.parametrize("section", SECTIONS)
def test_each_section_saved_unchanged_changes_nothing(
    app: Flask, admin: FlaskClient, section: str
) -> None:
    before = stored(app)
    data, html = settings_form(admin, section)
    assert 'id="texts"' in html and "Trotzdem verlassen?" in html  # the leaving question
    response = admin.post(f"/admin/settings/{section}", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    assert response.headers["Location"] == f"/admin/settings/{section}"
    assert stored(app) == before
    page = admin.get(f"/admin/settings/{section}").get_data(as_text=True)
    assert "Gespeichert." in page


def test_saving_a_section_changes_only_that_section(app: Flask, admin: FlaskClient) -> None:
    before = stored(app)
    data, _ = settings_form(admin, "hours")
    assert (data["hours-sat-0-start"], data["hours-sat-0-end"]) == ("09:00", "14:00")
    data.update({"hours-sat-0-start": "10:00", "hours-sat-0-end": "16:00"})
    # Fields of other sections posted along are not this page's: they change nothing.
    data.update({"name": "Blumen Maier", "away_cooldown": "1", "closure-0-from": "2026-01-01"})
    assert admin.post("/admin/settings/hours", data=data).status_code == 302
    after = stored(app)
    assert [f"{iv.start:%H:%M}-{iv.end:%H:%M}" for iv in after.hours.weekly[5]] == ["10:00-16:00"]
    assert after.name == before.name and after.away == before.away
    assert after.hours.closures == before.hours.closures
    assert after.templates == before.templates and after.keywords == before.keywords


def test_the_business_section_keeps_the_texts_in_their_language(
    app: Flask, admin: FlaskClient
) -> None:
    data, _ = settings_form(admin, "business")
    data.update({"name": "Blumen Maier", "locale": "en_GB"})
    assert admin.post("/admin/settings/business", data=data).status_code == 302
    after = stored(app)
    assert (after.name, after.locale) == ("Blumen Maier", "en_GB")
    # The built-in greeting was not written into the settings: it follows the language.
    assert "greeting" not in after.templates


def test_a_christmas_closure_is_added(app: Flask, admin: FlaskClient) -> None:
    data, _ = settings_form(admin, "closures")
    assert data["closure-0-reason"] == "Weihnachten"
    data.update({"closure-2-from": "2027-12-24", "closure-2-to": "2027-12-26"})
    data["closure-2-reason"] = "Weihnachten 2027"
    assert admin.post("/admin/settings/closures", data=data).status_code == 302
    closures = stored(app).hours.closures
    assert [(str(c.start), str(c.end), c.reason) for c in closures][-1] == (
        "2027-12-24",
        "2027-12-26",
        "Weihnachten 2027",
    )


@pytest.mark.parametrize(
    ("section", "changes", "field", "message"),
    [
        ("hours", {"hours-tue-0-end": ""}, "hours-tue", "Geben Sie beide Zeiten an"),
        ("hours", {"hours-tue-0-end": "09:00"}, "hours-tue", "dieselbe Uhrzeit"),
        ("business", {"timezone": "Mars/Olympus"}, "timezone", "Unbekannte Zeitzone"),
        ("business", {"name": ""}, "name", "Das darf nicht leer sein."),
        ("closures", {"closure-0-to": "2026-12-01"}, "closure-0", "vor dem ersten"),
        (
            "answers",
            {"away_limit": "hours", "away_cooldown": "soon"},
            "away",
            "Geben Sie eine Zahl ein.",
        ),
        ("answers", {"stale_minutes": "1.5"}, "stale", "Geben Sie eine ganze Zahl ein."),
        ("answers", {"away-advanced": "1", "away-jinja": "{% if %}"}, "away", "template 'away'"),
        ("keywords", {"kw-1-match": "(a+)+$"}, "kw-1", "repeats something that itself repeats"),
        ("keywords", {"kw-1-text": " "}, "kw-1", "Schreiben Sie die Antwort"),
    ],
)
def test_a_refused_save_opens_at_a_summary_linked_to_the_fields(
    app: Flask,
    admin: FlaskClient,
    section: str,
    changes: dict[str, str],
    field: str,
    message: str,
) -> None:
    data, _ = settings_form(admin, section)
    before = stored(app)
    data.update(changes)
    response = admin.post(f"/admin/settings/{section}", data=data)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    summary = html[html.index('id="error-summary"') : html.index('id="settings-form"')]
    assert "Nicht gespeichert" in summary
    link = re.search(rf'<a href="#field-{field}" data-field="{field}">([^<]+)</a>', summary)
    assert link, f"no link to {field} in the summary"
    assert message in html_lib.unescape(summary)
    assert f'id="field-{field}"' in html  # the link's target is on the page
    next_to = re.search(rf'data-error-for="{field}" role="alert" translate="no" >([^<]*)<', html)
    assert next_to and message in html_lib.unescape(next_to.group(1))
    # What was typed is still there.
    for name, value in changes.items():
        if name.endswith(("-jinja", "-match")):
            assert html_lib.escape(value, quote=False) in html
    assert stored(app) == before


def test_the_summary_names_fields_in_german(app: Flask, admin: FlaskClient) -> None:
    data, _ = settings_form(admin, "hours")
    data.update({"hours-tue-0-end": "", "hours-fri-0-end": ""})
    html = admin.post("/admin/settings/hours", data=data).get_data(as_text=True)
    assert '<a href="#field-hours-tue" data-field="hours-tue">Dienstag</a>' in html


# --- keywords and their answers ---------------------------------------------------------------


def test_a_new_keyword_rule_saves_its_answer_and_shows_it_again(
    app: Flask, admin: FlaskClient
) -> None:
    data, html = settings_form(admin, "keywords")
    assert "kw-3-match" in data  # three demo rules and an empty one to fill in
    data.update(
        {
            "kw-3-match": "weihnachten, heiligabend",
            "kw-3-when": "always",
            "kw-3-text": "Hallo [Name], an Weihnachten haben wir zu. Ab [nächste Öffnung] wieder!",
        }
    )
    response = admin.post("/admin/settings/keywords", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    settings = stored(app)
    rule = settings.keywords[3]
    assert rule.match == ("weihnachten", "heiligabend") and rule.template == "keyword-1"
    assert settings.templates["keyword-1"] == (
        "Hallo{% if contact.name %} {{ contact.name }}{% endif %}, an Weihnachten haben wir zu. "
        "Ab {{ next_open | format_opening }} wieder!"
    )
    assert "keyword-1:" in stored_yaml(app)
    # The page shows it as it was written, the other rules with their texts as before.
    data, html = settings_form(admin, "keywords")
    assert data["kw-3-text"] == (
        "Hallo [Name], an Weihnachten haben wir zu. Ab [nächste Öffnung] wieder!"
    )
    assert data["kw-3-template"] == "keyword-1"
    assert "Danke für Ihre Nachricht zu Ihrer Bestellung!" in data["kw-1-text"]
    # No field asks for a template's name any more.
    assert "Reply text" not in html and 'list="template-names"' not in html


def test_a_keyword_answer_is_changed_in_place_and_goes_with_its_rule(
    app: Flask, admin: FlaskClient
) -> None:
    data, _ = settings_form(admin, "keywords")
    data["kw-1-text"] = "Wir sehen nach, [Name]!"
    assert admin.post("/admin/settings/keywords", data=data).status_code == 302
    settings = stored(app)
    assert settings.keywords[1].template == "order"  # its own text, changed where it is
    assert settings.templates["order"] == (
        "Wir sehen nach,{% if contact.name %} {{ contact.name }}{% endif %}!"
    )
    # A rule added and removed again leaves no text behind.
    data, _ = settings_form(admin, "keywords")
    data.update({"kw-3-match": "x", "kw-3-text": "Ein Text"})
    admin.post("/admin/settings/keywords", data=data)
    assert "keyword-1" in stored(app).templates
    data, _ = settings_form(admin, "keywords")
    data = {k: v for k, v in data.items() if not k.startswith("kw-3-")}
    assert admin.post("/admin/settings/keywords", data=data).status_code == 302
    assert "keyword-1" not in stored(app).templates


def test_rules_sharing_a_text_show_it_and_get_their_own_when_one_changes(
    app: Flask, admin: FlaskClient
) -> None:
    text = dump_settings(stored(app))
    text = text.replace("template: address", "template: hours")
    replace_settings(app, text)
    data, _ = settings_form(admin, "keywords")
    assert "Unsere Öffnungszeiten:" in data["kw-2-jinja"]  # the shared built-in text
    assert data.get("kw-2-advanced") == "1"  # its Jinja is more than placeholders
    data.pop("kw-2-advanced")
    data["kw-2-text"] = "Blumenstraße 12, [Geschäftsname]"
    assert admin.post("/admin/settings/keywords", data=data).status_code == 302
    settings = stored(app)
    assert settings.keywords[0].template == "hours"
    assert settings.keywords[2].template == "keyword-1"
    assert settings.templates["keyword-1"] == "Blumenstraße 12, {{ business.name }}"
    assert "hours" not in settings.templates


# --- plain text and Jinja ---------------------------------------------------------------------


def test_the_advanced_switch_converts_both_ways(admin: FlaskClient) -> None:
    html = admin.get("/admin/settings/answers").get_data(as_text=True)
    token = csrf_of(html)
    plain = "Hallo [Name], ab [nächste Öffnung] sind wir da. {Klammern}"
    jinja = admin.post(
        "/admin/settings/text", data={"csrf_token": token, "to": "jinja", "text": plain}
    ).get_json()["text"]
    assert "{{ next_open | format_opening }}" in jinja
    back = admin.post(
        "/admin/settings/text", data={"csrf_token": token, "to": "plain", "text": jinja}
    ).get_json()["text"]
    assert back == plain
    own = admin.post(
        "/admin/settings/text",
        data={"csrf_token": token, "to": "plain", "text": "{% if is_open %}Ja{% endif %}"},
    ).get_json()
    assert own == {"text": None}


def test_texts_open_plain_or_advanced_and_save_either_way(app: Flask, admin: FlaskClient) -> None:
    data, html = settings_form(admin, "answers")
    # The demo's away text is plain text with placeholders, in the page's language.
    assert data["away-text"].startswith("Hallo [Name], danke für Ihre Nachricht!")
    assert "[nächste Öffnung]" in data["away-text"] and "away-advanced" not in data
    for label in ("+ Name", "+ nächste Öffnung", "+ Öffnungszeiten", "+ Geschäftsname"):
        assert label in html
    # Saved as Jinja of one's own, it opens in the advanced editor.
    data["away-advanced"] = "1"
    data["away-jinja"] = "{% if is_open %}Offen{% else %}Zu, {{ contact.name }}{% endif %}"
    assert admin.post("/admin/settings/answers", data=data).status_code == 302
    assert stored(app).templates["away"] == data["away-jinja"]
    again, _ = settings_form(admin, "answers")
    assert again["away-advanced"] == "1" and again["away-jinja"] == data["away-jinja"]
    # Written plain again.
    again.pop("away-advanced")
    again["away-text"] = "Zu, [Name]. Ab [nächste Öffnung]."
    assert admin.post("/admin/settings/answers", data=again).status_code == 302
    assert stored(app).templates["away"] == (
        "Zu,{% if contact.name %} {{ contact.name }}{% endif %}. "
        "Ab {{ next_open | format_opening }}."
    )


# --- previews ---------------------------------------------------------------------------------


def previews(admin: FlaskClient, section: str, **changes: str) -> dict[str, dict[str, object]]:
    data, _ = settings_form(admin, section)
    data.update(changes)
    result = admin.post("/admin/settings/preview", data=data).get_json()
    assert result["ok"] is True, result["errors"]
    return dict(result["previews"])


def test_the_away_preview_greets_anna_with_the_next_opening(
    admin: FlaskClient, clock: Clock
) -> None:
    clock.at = SUNDAY
    assert login(admin).status_code == 302  # a login of March is over by November
    data, _ = settings_form(admin, "answers")
    assert data["preview_at"] == "2026-11-29T13:00"
    text = "Hallo [Name], wir sind ab [nächste Öffnung] wieder da."
    away = previews(admin, "answers", **{"away-text": text})["away"]
    assert away["text"] == "Hallo Anna, wir sind ab Montag, 30. November, 9 Uhr wieder da."
    assert away["label"] == "beantwortet von: Abwesenheitsnachricht"
    assert "Sonntag, 29. November 2026, 13:00 (geschlossen)" in str(away["when"])


def test_the_hours_preview_shows_the_week_as_customers_read_it(admin: FlaskClient) -> None:
    rows = previews(
        admin,
        "hours",
        **{"hours-sat-0-start": "10:00", "hours-sat-0-end": "16:00"},
        preview_text="Hallo",
        preview_at="2026-12-05T15:00",
    )
    assert "Samstag: 10:00–16:00" in str(rows["week"]["text"])
    assert rows["custom"]["rule"] == "greeting"
    assert str(rows["custom"]["text"]).startswith("Hallo Anna, schön, dass Sie sich")


def test_preview_renders_each_rule_for_the_chosen_time(admin: FlaskClient) -> None:
    rows = previews(admin, "keywords", preview_text="Hallo", preview_at="2026-03-11T10:00")
    assert rows["custom"]["rule"] == "greeting"
    assert rows["away"]["rule"] == "away"
    assert "Mittwoch, 11. März 2026, 12:30 (geschlossen)" in str(rows["away"]["when"])
    assert "Blumen Müller" in str(rows["away"]["text"])
    assert rows["kw-0"]["rule"] == "keyword"
    # The same instant with Wednesday closed: now the away reply answers.
    closed = previews(
        admin,
        "hours",
        **{"hours-wed-0-start": "", "hours-wed-0-end": ""},
        preview_text="Hallo",
        preview_at="2026-03-11T10:00",
    )
    assert closed["custom"]["rule"] == "away"
    assert "Donnerstag, 12. März, 9 Uhr" in str(closed["custom"]["text"])


def test_preview_of_a_slow_pattern_answers_promptly(admin: FlaskClient) -> None:
    # Accepted when saved (no nested repetition), but its alternatives overlap: a backtracking
    # search without a limit tries every way of splitting the a's, for days on this text.
    started = time.monotonic()
    rows = previews(admin, "keywords", **{"kw-1-match": "(a|aa)+$"}, preview_text="a" * 60 + "!")
    assert time.monotonic() - started < 5  # generous: the old search took days
    assert rows["custom"]["rule"] in ("greeting", "away")
    assert rows["kw-1"]["rule"] is None


def test_preview_reports_errors_by_field(admin: FlaskClient) -> None:
    data, _ = settings_form(admin, "hours")
    data.update({"hours-mon-0-start": "13:00", "hours-mon-0-end": "13:00"})
    result = admin.post("/admin/settings/preview", data=data).get_json()
    assert result["ok"] is False
    assert "hours-mon" in result["errors"]


def test_preview_names_a_template_over_the_bounds(admin: FlaskClient) -> None:
    data, _ = settings_form(admin, "answers")
    data.update(
        {"away-advanced": "1", "away-jinja": "{{ 'Hallo %s' % contact.name.center(20000) }}"}
    )
    result = admin.post("/admin/settings/preview", data=data).get_json()
    assert result["ok"] is False
    assert result["errors"]["away"] == (
        "template 'away' fails while open, for Anna writing 'Hallo': "
        "center() would build 20,000 characters (at most 10,000)"
    )


# --- the settings file ------------------------------------------------------------------------


def test_yaml_editor_saves_and_refuses_like_settings_import(app: Flask, admin: FlaskClient) -> None:
    html = admin.get("/admin/settings/yaml").get_data(as_text=True)
    assert "Blumen Müller" in html and "Einstellungen als YAML" in html
    bad = admin.post(
        "/admin/settings/yaml",
        data={"yaml": "business:\n  name: X\n  timezone: Nowhere\n", "csrf_token": csrf_of(html)},
    )
    assert bad.status_code == 400
    assert "line 3: unknown time zone" in bad.get_data(as_text=True)
    good = admin.post(
        "/admin/settings/yaml",
        data={"yaml": "business:\n  name: Kiosk\n", "csrf_token": csrf_of(html)},
    )
    assert good.status_code == 302
    assert stored(app).name == "Kiosk"


def test_settings_with_a_lone_surrogate_are_refused_with_the_line(
    app: Flask, admin: FlaskClient
) -> None:
    html = admin.get("/admin/settings/yaml").get_data(as_text=True)
    bad = admin.post(
        "/admin/settings/yaml",
        data={"yaml": 'business:\n  name: "Kiosk \\ude00"\n', "csrf_token": csrf_of(html)},
    )
    assert bad.status_code == 400
    assert "line 2: \\ude00 is half of a character" in bad.get_data(as_text=True)
    assert stored(app).name == "Blumen Müller"
    # The settings pages and the webhook go on working.
    for section in SECTIONS:
        assert admin.get(f"/admin/settings/{section}").status_code == 200
    receive(admin)


def test_settings_saved_with_a_lone_surrogate_before_it_was_refused_still_work(
    app: Flask, admin: FlaskClient, clock: Clock
) -> None:
    # What an older version stored for a template "Bis bald \\ud83d".
    with get_db(app).session() as session:
        business = session.get_one(Business, 1)
        business.settings_yaml = re.sub(
            r"(?m)^  away: Hallo.*$", r'  away: "Bis bald \\uD83D"', business.settings_yaml
        )
    clock.at = sunday = datetime(2026, 3, 8, 19, 30, tzinfo=UTC)  # closed: the away reply
    receive(admin, at=sunday)
    assert [m.text for m in outbound(app)] == ["Bis bald \ufffd"]
    for section in SECTIONS:
        assert admin.get(f"/admin/settings/{section}").status_code == 200
    html = admin.get("/admin/settings/yaml").get_data(as_text=True)
    assert "Bis bald \\uD83D" in html


def test_settings_texts_are_escaped(app: Flask, admin: FlaskClient) -> None:
    evil = "<img src=x onerror=alert(1)>"
    data, _ = settings_form(admin, "keywords")
    data.update({"kw-3-match": evil, "kw-3-text": evil})
    assert admin.post("/admin/settings/keywords", data=data).status_code == 302
    data, _ = settings_form(admin, "business")
    data["name"] = evil
    assert admin.post("/admin/settings/business", data=data).status_code == 302
    for section in (*SECTIONS, "yaml"):
        page = admin.get(f"/admin/settings/{section}").get_data(as_text=True)
        assert evil not in page, section


def test_an_english_page_offers_english_placeholders(app: Flask, admin: FlaskClient) -> None:
    replace_settings(app, dump_settings(stored(app)).replace("de_DE", "en_GB", 1))
    data, html = settings_form(admin, "answers")
    assert '<html lang="en">' in html
    for label in ("+ Name", "+ next opening", "+ opening hours", "+ shop name"):
        assert label in html
    assert 'data-insert="[next opening]"' in html
    # The demo's own (German) away text, with the placeholders in the page's words.
    assert data["away-text"].startswith("Hallo [name], danke für Ihre Nachricht!")
    assert "[next opening]" in data["away-text"]
