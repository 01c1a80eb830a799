"""Quick replies: the shortcut rules, their page, the reply box's suggestions rendered for a
contact; and the inbox's small texts (never wrote, skipped broadcasts, the busiest hour, the
window with its day, the poll's words in the page's language)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.broadcasts.runs import OUTSIDE_WINDOW
from bot.db import get_db
from bot.models import Contact, Message, QuickReply
from bot.quick_replies import ShortcutError, ShortcutProblem, clean_shortcut, typed_prefix
from bot.settings.stored import load_settings, save_settings
from bot.settings.writer import dump_settings
from tests.test_admin import (  # noqa: F401  (fixtures)
    NOW,
    XSS_NAME,
    XSS_TEXT,
    admin,
    clock,
    contact_id,
    csrf_of,
    receive,
)

PAGE = "/admin/quick-replies"


def page(admin: FlaskClient, path: str = PAGE) -> str:  # noqa: F811
    return admin.get(path).get_data(as_text=True)


def save(admin: FlaskClient, shortcut: str, text: str, **extra: str) -> Any:  # noqa: F811
    data = {"shortcut": shortcut, "text": text, "csrf_token": csrf_of(page(admin)), **extra}
    return admin.post(PAGE, data=data, follow_redirects=True)


def stored(app: Flask) -> list[tuple[str, str]]:
    with get_db(app).session() as session:
        return [(q.shortcut, q.text) for q in session.scalars(select(QuickReply).order_by("id"))]


def suggestions(admin: FlaskClient, cid: int, typed: str) -> list[dict[str, Any]]:  # noqa: F811
    answer = admin.get(f"/admin/inbox/{cid}/quick-replies.json", query_string={"q": typed})
    assert answer.status_code == 200
    replies: list[dict[str, Any]] = answer.get_json()["replies"]
    return replies


def use_locale(app: Flask, locale: str) -> None:
    with get_db(app).session() as session:
        settings = load_settings(session)
        assert settings is not None
        save_settings(session, dump_settings(settings).replace(settings.locale, locale, 1))


# --- the shortcut -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "kept"),
    [("/danke", "danke"), ("  /Danke ", "danke"), ("DANKE", "danke"), ("/Grüße-2", "grüße-2")],
)
def test_a_shortcut_is_kept_lowercase_without_its_slash(typed: str, kept: str) -> None:
    assert clean_shortcut(typed) == kept


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("/", ShortcutProblem.EMPTY),
        ("   ", ShortcutProblem.EMPTY),
        ("/" + "a" * 33, ShortcutProblem.TOO_LONG),
        ("/zwei worte", ShortcutProblem.CHARACTERS),
        ("/<b>", ShortcutProblem.CHARACTERS),
        ("/-danke", ShortcutProblem.CHARACTERS),
    ],
)
def test_a_shortcut_that_is_not_one_word_is_refused(typed: str, problem: ShortcutProblem) -> None:
    with pytest.raises(ShortcutError) as refused:
        clean_shortcut(typed)
    assert refused.value.problem == problem


def test_what_was_typed_is_matched_as_stored() -> None:
    assert typed_prefix("/Da") == "da"
    assert typed_prefix("") == ""


# --- the page ---------------------------------------------------------------------------------


def test_add_edit_and_delete_a_quick_reply(app: Flask, admin: FlaskClient) -> None:  # noqa: F811
    html = page(admin)
    assert "Schnellantworten" in html and "Noch keine Schnellantworten" in html
    assert '<html lang="de">' in html
    html = save(admin, "/Danke", "Danke, [Name]! Bis bald.").get_data(as_text=True)
    assert "Schnellantwort /danke gespeichert." in html
    assert stored(app) == [("danke", "Danke, [Name]! Bis bald.")]
    assert ">/danke<" in html and "Danke, [Name]! Bis bald." in html

    with get_db(app).session() as session:
        reply_id = session.scalars(select(QuickReply.id)).one()
    form = page(admin, f"{PAGE}?edit={reply_id}")
    assert "Schnellantwort ändern" in form and 'value="/danke"' in form
    save(admin, "/merci", "Merci, [Name]!", id=str(reply_id))
    assert stored(app) == [("merci", "Merci, [Name]!")]

    html = page(admin)
    assert 'data-confirm="Die Schnellantwort /merci löschen?"' in html
    gone = admin.post(
        f"{PAGE}/{reply_id}/delete", data={"csrf_token": csrf_of(html)}, follow_redirects=True
    )
    assert "Schnellantwort /merci gelöscht." in gone.get_data(as_text=True)
    assert stored(app) == []


def test_a_shortcut_is_one_whatever_the_case(app: Flask, admin: FlaskClient) -> None:  # noqa: F811
    save(admin, "/danke", "Danke!")
    again = save(admin, "/DANKE", "Nochmal danke!")
    assert again.status_code == 400
    assert "Es gibt schon eine Schnellantwort /danke." in again.get_data(as_text=True)
    assert stored(app) == [("danke", "Danke!")]


@pytest.mark.parametrize(
    ("shortcut", "text", "message"),
    [
        ("/zwei worte", "Hallo", "Ein Kürzel ist ein Wort aus Buchstaben"),
        ("/", "Hallo", "Bitte geben Sie ein Kürzel ein"),
        ("/hallo", "   ", "Bitte schreiben Sie den Text der Schnellantwort."),
        ("/hallo", "", "Bitte schreiben Sie den Text der Schnellantwort."),
        ("/" + "a" * 40, "Hallo", "Das Kürzel ist zu lang"),
    ],
)
def test_what_cannot_be_saved_is_said_in_german_beside_its_field(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
    shortcut: str,
    text: str,
    message: str,
) -> None:
    answer = save(admin, shortcut, text)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400
    assert message in html
    assert "Bitte korrigieren Sie die markierten Felder." in html
    assert stored(app) == []


def test_the_placeholder_buttons_insert_tokens_in_the_pages_language(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    html = page(admin)
    for token in ("[Name]", "[nächste Öffnung]", "[Öffnungszeiten]", "[Geschäftsname]"):
        assert f'data-insert="{token}"' in html
    use_locale(app, "en_GB")
    assert 'data-insert="[next opening]"' in page(admin)


def test_the_posts_need_a_csrf_token(app: Flask, admin: FlaskClient) -> None:  # noqa: F811
    assert admin.post(PAGE, data={"shortcut": "/x", "text": "y"}).status_code == 400
    save(admin, "/danke", "Danke!")
    assert admin.post(f"{PAGE}/1/delete").status_code == 400
    assert stored(app) == [("danke", "Danke!")]


def test_quick_replies_are_escaped_on_their_page(app: Flask, admin: FlaskClient) -> None:  # noqa: F811
    save(admin, "/boese", XSS_TEXT + XSS_NAME)
    html = page(admin)
    assert XSS_TEXT not in html and XSS_NAME not in html
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
    edit = page(admin, f"{PAGE}?edit=1")
    assert XSS_TEXT not in edit and "&lt;script&gt;" in edit


# --- in the reply box -------------------------------------------------------------------------


def test_the_reply_box_offers_matching_quick_replies_rendered_for_the_contact(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    receive(admin, name="Anna")
    cid = contact_id(app)
    save(admin, "/danke", "Danke, [Name]! Ihr Team von [Geschäftsname]")
    save(admin, "/dauer", "Das dauert etwa eine Stunde.")
    save(admin, "/hallo", "Hallo [Name], wir haben [Öffnungszeiten]")
    found = suggestions(admin, cid, "/DA")
    assert [(s["shortcut"], s["text"]) for s in found] == [
        ("danke", "Danke, Anna! Ihr Team von Blumen Müller"),
        ("dauer", "Das dauert etwa eine Stunde."),
    ]
    assert [s["shortcut"] for s in suggestions(admin, cid, "")] == ["danke", "dauer", "hallo"]
    assert suggestions(admin, cid, "x") == []
    assert suggestions(admin, cid, "%") == [] and suggestions(admin, cid, "_") == []
    hours = suggestions(admin, cid, "hallo")[0]["text"]
    assert hours.startswith("Hallo Anna, wir haben ") and "Mo" in hours
    assert admin.get("/admin/inbox/999/quick-replies.json").status_code == 404


def test_a_quick_reply_for_a_contact_without_a_name_reads_well(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    with get_db(app).session() as session:
        contact = Contact(wa_id="4915100000009")
        session.add(contact)
        session.flush()
        cid = contact.id
    save(admin, "/hallo", "Hallo [Name], schön von Ihnen zu hören.")
    assert suggestions(admin, cid, "h")[0]["text"] == "Hallo, schön von Ihnen zu hören."


def test_customer_and_owner_text_in_a_quick_reply_stays_text(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    receive(admin, name=XSS_NAME)
    cid = contact_id(app)
    save(admin, "/x", "{{ 7 * 7 }} " + XSS_TEXT + " [Name]")
    answer = admin.get(f"/admin/inbox/{cid}/quick-replies.json?q=x")
    assert answer.mimetype == "application/json"
    # Rendered as text: the braces the owner typed are not run, the markup is for the page's
    # script to put into the text box as text.
    assert answer.get_json()["replies"][0]["text"] == f"{{{{ 7 * 7 }}}} {XSS_TEXT} {XSS_NAME}"
    html = page(admin, f"/admin/inbox/{cid}")
    assert XSS_NAME not in html


# --- the small things -------------------------------------------------------------------------


def test_a_contact_who_never_wrote_is_not_said_to_have_written_a_day_ago(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    with get_db(app).session() as session:
        contact = Contact(wa_id="4915100000009", name="Klaus Becker")
        session.add(contact)
        session.flush()
        cid = contact.id
    html = page(admin, f"/admin/inbox/{cid}")
    assert "Dieser Kunde hat noch nie geschrieben." in html
    assert "mehr als 24 Stunden" not in html
    assert 'id="reply-form"' not in html


def test_the_closed_window_says_its_day(app: Flask, admin: FlaskClient) -> None:  # noqa: F811
    receive(admin, at=NOW - timedelta(hours=25))
    html = page(admin, f"/admin/inbox/{contact_id(app)}")
    # NOW is Wednesday 11 March 10:00 in Munich; the customer wrote Tuesday 09:00.
    assert (
        'Fenster geschlossen seit <time datetime="2026-03-11T08:00:00+00:00">Mi., 11.3., 09:00</time>'
        in html
    )


def test_the_open_window_says_until_when_with_its_day(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    receive(admin, at=NOW - timedelta(hours=1))
    html = page(admin, f"/admin/inbox/{contact_id(app)}")
    assert "Freier Text ist möglich bis <time" in html and ">Do., 12.3., 09:00</time>" in html


def test_a_skipped_broadcast_message_is_a_note_not_an_empty_bubble(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    receive(admin, at=NOW - timedelta(days=3))
    cid = contact_id(app)
    with get_db(app).session() as session:
        session.add(
            Message(
                contact_id=cid,
                direction="out",
                type="text",
                status="skipped",
                rule="broadcast",
                error_reason=OUTSIDE_WINDOW,
                timestamp=NOW,
                priority=1,
            )
        )
    html = page(admin, f"/admin/inbox/{cid}")
    assert "Rundsendung übersprungen: außerhalb des 24-Stunden-Fensters" in html
    notes = admin.get(f"/admin/inbox/{cid}/messages.json").get_json()["messages"]
    assert notes[-1]["note"] == "Rundsendung übersprungen: außerhalb des 24-Stunden-Fensters"


def test_the_busiest_hour_is_a_time_range_in_business_time(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
    clock: Any,  # noqa: F811
) -> None:
    # Sunday 8 March, 20:30 and 20:40 in Munich.
    for minute, wa_id in ((30, "4915100000001"), (40, "4915100000002")):
        at = datetime(2026, 3, 8, 19, minute, tzinfo=UTC)
        clock.at = at
        receive(admin, at=at, wa_id=wa_id)
    clock.at = NOW
    html = page(admin, "/admin/insights")
    assert "Meiste Nachrichten: So., 20–21 Uhr (2 Nachrichten)" in html
    assert 'title="So. 20:00 — 2 Nachrichten"' in html
    use_locale(app, "en_US")
    html = page(admin, "/admin/insights")
    assert "Busiest hour: Sun, 8\u2009–\u20099\u202fPM (2 messages)" in html


def test_the_poll_says_its_words_in_the_pages_language(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    receive(admin, {"type": "image", "image": {"id": "m1", "mime_type": "image/jpeg"}})
    cid = contact_id(app)
    with get_db(app).session() as session:
        reply = session.scalars(select(Message).where(Message.direction == "out")).first()
        assert reply is not None
        reply.status = "sent"
    data = admin.get(f"/admin/inbox/{cid}/messages.json").get_json()
    assert data["messages"][0]["note"] == "📷 Foto"
    out = next(m for m in data["messages"] if m["direction"] == "out")
    assert out["rule"] == "Automatisch: Begrüßung"
    assert {s["status_word"] for s in data["statuses"].values()} == {"gesendet"}
    preview = admin.get("/admin/inbox.json").get_json()["conversations"][0]["preview"]
    assert preview.startswith("Automatisch: ")
    use_locale(app, "en_GB")
    data = admin.get(f"/admin/inbox/{cid}/messages.json").get_json()
    assert data["messages"][0]["note"] == "📷 Photo"
    assert {s["status_word"] for s in data["statuses"].values()} == {"sent"}
