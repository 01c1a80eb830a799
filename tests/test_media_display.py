"""Media in a conversation, as the shop owner sees it: every kind of file in each state, a
location and contact cards, in German and English, escaped, loaded in one query, and
updated by the poll once a file has come."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event

from bot.admin.display import AttachmentInfo, file_size, media_status, media_view
from bot.db import get_db
from bot.media.kinds import Failure, MediaKind
from bot.models import AttachmentState
from tests.media_rows import PHOTO, VOICE, attach, contact_of, customer_sends, every_kind
from tests.test_admin import NOW, XSS_NAME, XSS_TEXT, admin, clock  # noqa: F401  (fixtures)


def page(admin: FlaskClient, contact: int) -> str:  # noqa: F811
    response = admin.get(f"/admin/inbox/{contact}")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def bubble(html_text: str, message_id: int) -> str:
    """One message's <li> on the page."""
    for part in html_text.split('<li class="msg ')[1:]:
        if re.match(rf'[^"]*" data-id="{message_id}"', part):
            return '<li class="msg ' + part.split("</li>\n<li", 1)[0].split("</ol>", 1)[0]
    raise AssertionError(f"message {message_id} is not on the page")


def english(app: Flask) -> None:
    from bot.settings.stored import load_settings, save_settings
    from bot.settings.writer import dump_settings

    with get_db(app).session() as session:
        settings = load_settings(session)
        assert settings is not None
        save_settings(session, dump_settings(settings).replace(settings.locale, "en_GB", 1))


def test_every_kind_shows_in_german(app: Flask, admin: FlaskClient) -> None:  # noqa: F811
    ids = every_kind(app, NOW)
    shown = page(admin, ids["contact"])

    photo = bubble(shown, ids["photo"])
    url = f"/admin/media/{ids['photo_file']}"
    assert f'<a class="media-image" href="{url}"' in photo
    assert f'<img src="{url}" alt="Foto" loading="lazy"' in photo
    assert 'title="In voller Größe öffnen"' in photo
    assert '<div class="text" translate="no">So ungefähr der Kranz</div>' in photo
    assert "📷 Foto" not in photo  # the picture says what it is

    voice = bubble(shown, ids["voice"])
    assert "🎤 Sprachnachricht" in voice
    assert (
        f'<audio class="media-audio" controls preload="metadata" '
        f'src="/admin/media/{ids["voice_file"]}" aria-label="Sprachnachricht"></audio>'
    ) in voice

    video = bubble(shown, ids["video"])
    assert (
        f'<video class="media-video" controls preload="metadata" playsinline src="/admin/media/{ids["video_file"]}"'
        in video
    )

    document = bubble(shown, ids["document"])
    assert f'href="/admin/media/{ids["document_file"]}" download="Preisliste 2026.pdf"' in document
    assert '<span class="file-name" translate="no">Preisliste 2026.pdf</span>' in document
    assert '<span class="file-size" translate="no">125 Byte</span>' in document
    assert "Herunterladen" in document

    sticker = bubble(shown, ids["sticker"])
    assert (
        f'<img class="media-sticker" src="/admin/media/{ids["sticker_file"]}" alt="Sticker"'
        in sticker
    )

    # A customer's SVG or HTML is a file to download, never an image or a frame.
    for key in ("svg", "html"):
        hostile = bubble(shown, ids[key])
        assert 'class="media-file"' in hostile
        assert "<img" not in hostile and "<iframe" not in hostile and "<object" not in hostile

    pending = bubble(shown, ids["pending"])
    assert "data-pending" in pending
    assert "📷 Foto" in pending
    assert "Das Foto wird von WhatsApp geholt …" in pending
    assert "/admin/media/" not in pending

    large = bubble(shown, ids["too_large"])
    assert "Das Video ist zu groß und wurde nicht gespeichert." in large
    assert "test: too_large" not in shown  # the technical details stay in the log

    place = bubble(shown, ids["location"])
    assert "📍 Standort" in place
    assert '<div class="place-name" translate="no">Blumen Müller</div>' in place
    assert '<div class="place-address" translate="no">Marienplatz 1, 80331 München</div>' in place
    assert '<span translate="no">48.13715, 11.57612</span>' in place
    assert (
        'href="https://www.openstreetmap.org/?mlat=48.137154&amp;mlon=11.576124'
        '#map=17/48.137154/11.576124" target="_blank" rel="noopener noreferrer">'
        "Auf der Karte öffnen</a>"
    ) in place

    cards = bubble(shown, ids["contacts"])
    assert "👤 Kontaktkarte" in cards
    for text in (
        "Karl Huber",
        "+49 176 1234567",
        "+49 89 123456",
        "Gärtnerei Berg",
        "+49 8161 9876",
    ):
        assert f'translate="no">{text}</span>' in cards

    sent = bubble(shown, ids["sent"])
    assert 'class="msg out has-media"' in sent
    assert f'<img src="/admin/media/{ids["sent_file"]}" alt="Foto"' in sent
    assert "Ihr Kranz ist fertig" in sent


def test_every_kind_shows_in_english(app: Flask, admin: FlaskClient) -> None:  # noqa: F811
    ids = every_kind(app, NOW)
    english(app)
    shown = page(admin, ids["contact"])
    assert 'alt="Photo"' in shown
    assert 'aria-label="Voice message"' in shown
    assert "The photo is being fetched from WhatsApp …" in shown
    assert "The video is too large and was not kept." in shown
    assert "📍 Location" in shown and "Open on the map" in shown
    assert "👤 Contact card" in shown
    assert ">Download<" in shown and ">125 byte<" in shown


@pytest.mark.parametrize(
    ("failure", "german"),
    [
        (
            Failure.NOT_FOUND,
            "Das Foto ist bei WhatsApp nicht mehr verfügbar und konnte nicht abgeholt werden.",
        ),
        (Failure.TOO_LARGE, "Das Foto ist zu groß und wurde nicht gespeichert."),
        (Failure.CHECKSUM, "Das Foto kam beschädigt an und wurde nicht gespeichert."),
        (
            Failure.UNREACHABLE,
            "Das Foto konnte nicht abgeholt werden: WhatsApp hat lange nicht geantwortet.",
        ),
        (
            Failure.REFUSED,
            "Das Foto konnte nicht abgeholt werden: WhatsApp hat den Zugriff verweigert.",
        ),
        (
            Failure.CONSOLE,
            "Das Foto wurde nicht abgeholt: Im Konsolenmodus ist Tresen nicht mit WhatsApp verbunden.",
        ),
        (None, "Das Foto konnte nicht abgeholt werden."),
        ("something new", "Das Foto konnte nicht abgeholt werden."),
    ],
)
def test_each_failure_has_a_sentence_for_the_shop_owner(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
    failure: str | None,
    german: str,
) -> None:
    message = customer_sends(app, {"type": "image", "image": {"id": "m1"}}, at=NOW)
    attach(app, message, MediaKind.IMAGE, state=AttachmentState.FAILED, failure=failure)
    shown = bubble(page(admin, contact_of(app)), message)
    assert german in shown
    assert 'class="media-status failed"' in shown
    assert "test:" not in shown


def test_every_failure_is_worded(app: Flask) -> None:
    with app.test_request_context():
        fallback = media_status("image", False, AttachmentState.FAILED, "?")
        for failure in Failure:
            said = media_status("image", False, AttachmentState.FAILED, failure)
            assert said and said != fallback, failure
        for kind in MediaKind:
            assert media_status(kind, False, AttachmentState.PENDING, None)
            assert media_status(kind, False, AttachmentState.STORED, None) is None


def test_customer_data_around_a_file_is_escaped(app: Flask, admin: FlaskClient) -> None:  # noqa: F811
    message = customer_sends(
        app,
        {
            "type": "document",
            "document": {"id": "m1", "filename": XSS_NAME, "caption": XSS_TEXT},
        },
        at=NOW,
        name=XSS_NAME,
    )
    attach(app, message, MediaKind.DOCUMENT, b"%PDF-", "application/pdf", filename=XSS_NAME)
    located = customer_sends(
        app,
        {
            "type": "location",
            "location": {"latitude": 1.5, "longitude": 2.5, "name": XSS_TEXT, "address": XSS_NAME},
        },
        at=NOW,
    )
    carded = customer_sends(
        app,
        {
            "type": "contacts",
            "contacts": [{"name": {"formatted_name": XSS_TEXT}, "phones": [{"phone": XSS_NAME}]}],
        },
        at=NOW,
    )
    shown = page(admin, contact_of(app))
    for raw in (XSS_NAME, XSS_TEXT):
        assert raw not in shown
    escaped = html.escape(XSS_NAME, quote=True)
    assert f'download="{escaped}"' in shown
    assert f'<span class="file-name" translate="no">{html.escape(XSS_NAME, quote=False)}' in shown
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in bubble(shown, located)
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in bubble(shown, carded)


@contextmanager
def counted(app: Flask) -> Iterator[list[str]]:
    statements: list[str] = []
    engine = get_db(app).engine

    def record(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_attachments_are_loaded_in_one_query_however_many(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    def photos(count: int, wa_id: str) -> int:
        for minute in range(count):
            message = customer_sends(
                app,
                {"type": "image", "image": {"id": f"p{minute}"}},
                at=NOW - timedelta(minutes=minute),
                wa_id=wa_id,
            )
            attach(app, message, MediaKind.IMAGE, PHOTO + bytes([minute]), "image/png")
        return contact_of(app, wa_id)

    one, many = photos(1, "4915100000001"), photos(8, "4915100000002")
    page(admin, one), page(admin, many)  # warm up: the settings and the session are read
    with counted(app) as few:
        first = page(admin, one)
    with counted(app) as more:
        second = page(admin, many)
    assert first.count("media-image") == 1 and second.count("media-image") == 8
    assert len(more) == len(few)
    assert sum("attachments" in s for s in more) == 1


def test_the_poll_brings_a_file_once_it_has_come(app: Flask, admin: FlaskClient) -> None:  # noqa: F811
    message = customer_sends(app, {"type": "audio", "audio": {"id": "v1", "voice": True}}, at=NOW)
    attach(app, message, MediaKind.AUDIO, voice=True)
    contact = contact_of(app)
    poll = f"/admin/inbox/{contact}/messages.json?after={message}&pending={message},x,99999"
    assert admin.get(poll).get_json()["updated"] == []
    attachment = attach(app, message, MediaKind.AUDIO, VOICE, "audio/ogg", voice=True)
    updated = admin.get(poll).get_json()["updated"]
    assert [m["id"] for m in updated] == [message]
    media = updated[0]["media"]
    assert media["shown"] == "audio" and media["url"] == f"/admin/media/{attachment}"
    assert media["label"] == "Sprachnachricht" and media["status"] is None
    # Another contact's message is not this conversation's to update.
    other = customer_sends(
        app, {"type": "image", "image": {"id": "i2"}}, at=NOW, wa_id="4917600000001"
    )
    attach(app, other, MediaKind.IMAGE, PHOTO, "image/png")
    assert (
        admin.get(f"/admin/inbox/{contact}/messages.json?pending={other}").get_json()["updated"]
        == []
    )


def test_the_pages_load_nothing_from_another_host(app: Flask, admin: FlaskClient) -> None:  # noqa: F811
    ids = every_kind(app, NOW)
    shown = page(admin, ids["contact"])
    sources = re.findall(r'\b(?:src|srcset|poster|data)="([^"]*)"', shown)
    assert sources and all(s.startswith("/") and not s.startswith("//") for s in sources)
    links = re.findall(r'<link [^>]*href="([^"]*)"', shown)
    assert all(link.startswith("/") and not link.startswith("//") for link in links)
    # The one address elsewhere is a link to follow, not anything the page loads.
    outside = {u for u in re.findall(r'"(https?://[^"]*)"', shown)}
    assert outside == {
        "https://www.openstreetmap.org/?mlat=48.137154&amp;mlon=11.576124#map=17/48.137154/11.576124"
    }


def test_file_sizes_read_as_people_write_them() -> None:
    assert file_size(125, "de_DE") == "125 Byte"
    assert file_size(340_000, "de_DE") == "340 kB"
    assert file_size(1_234_567, "de_DE") == "1,2 MB"
    assert file_size(16_000_000, "en_GB") == "16 MB"
    assert file_size(2_500_000_000, "en_GB") == "2.5 GB"


def test_a_photo_that_is_not_a_plain_image_is_a_download(app: Flask) -> None:
    with app.test_request_context():

        def shown(kind: str, content_type: str | None, state: str = AttachmentState.STORED) -> str:
            info = AttachmentInfo(
                1, kind, state, None, False, None, content_type, 10, "/admin/media/1"
            )
            return str(media_view(info, "de_DE")["shown"])

        assert shown("image", "image/jpeg") == "image"
        assert shown("image", "image/svg+xml") == "file"
        assert shown("sticker", "image/webp") == "sticker"
        assert shown("document", "image/png") == "file"  # sent as a file: kept as one
        assert shown("audio", "audio/ogg; codecs=opus") == "audio"
        assert shown("video", "video/mp4") == "video"
        assert shown("video", "text/html") == "file"
        assert shown("image", None) == "file"
        assert shown("image", "image/jpeg", AttachmentState.PENDING) == "none"


def test_stored_locations_and_cards_are_read_as_the_webhook_reads_them() -> None:
    from bot.whatsapp.events import (
        Location,
        SharedContact,
        SharedPhone,
        read_contacts,
        read_location,
    )

    assert read_location({"latitude": 48.1, "longitude": 11.5, "name": "Laden"}) == Location(
        48.1, 11.5, "Laden", None, None
    )
    for broken in (None, "x", {"latitude": "48.1", "longitude": 11.5}, {"latitude": 1}):
        assert read_location(broken) is None
    cards = read_contacts(
        [
            {"name": {"first_name": "Karl", "last_name": "Huber"}, "phones": [{"phone": "+49 1"}]},
            5,
            {"name": 5},
            {"phones": [{"wa_id": "491"}]},
        ]
    )
    assert cards == (
        SharedContact("Karl Huber", (SharedPhone("+49 1", None, None),)),
        SharedContact(None, (SharedPhone(None, "491", None),)),
    )
    assert read_contacts("x") == () and read_contacts(None) == ()
