"""`/admin/media/<id>`: a message's file for logged-in users only, with headers that keep a
customer's SVG or HTML from ever running in our origin; and how bot.media.serve names and
types what it sends."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, BinaryIO

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bot.media import serve
from bot.media.kinds import Failure
from bot.media.store import MediaStore, get_media_store
from bot.models import AttachmentState
from tests.media_rows import EVIL_HTML, EVIL_SVG, PDF, PHOTO, VOICE, attach, customer_sends
from tests.test_admin import NOW, admin, clock  # noqa: F401  (fixtures)

IMAGE = {"type": "image", "image": {"id": "m-photo", "mime_type": "image/jpeg"}}
VOICE_MSG = {"type": "audio", "audio": {"id": "m-voice", "mime_type": "audio/ogg", "voice": True}}
DOCUMENT = {"type": "document", "document": {"id": "m-doc", "mime_type": "application/pdf"}}


def media_ids(app: Flask) -> dict[str, int]:
    """One stored file of each kind the headers differ for, and the attachments that have
    none (pending, failed): name → attachment id."""
    at = NOW - timedelta(minutes=5)
    ids = {}
    ids["jpeg"] = attach(app, customer_sends(app, IMAGE, at=at), "image", PHOTO, "image/jpeg")
    ids["ogg"] = attach(
        app,
        customer_sends(app, VOICE_MSG, at=at),
        "audio",
        VOICE,
        "audio/ogg; codecs=opus",
        voice=True,
    )
    ids["pdf"] = attach(
        app,
        customer_sends(app, DOCUMENT, at=at),
        "document",
        PDF,
        "application/pdf",
        filename="Preisliste Größe M.pdf",
    )
    ids["svg"] = attach(app, customer_sends(app, IMAGE, at=at), "image", EVIL_SVG, "image/svg+xml")
    ids["html"] = attach(
        app,
        customer_sends(app, DOCUMENT, at=at),
        "document",
        EVIL_HTML,
        "text/html",
        filename="angebot.html",
    )
    ids["pending"] = attach(app, customer_sends(app, IMAGE, at=at), "image")
    ids["failed"] = attach(
        app,
        customer_sends(app, IMAGE, at=at),
        "image",
        state=AttachmentState.FAILED,
        failure=Failure.TOO_LARGE,
    )
    return ids


FILE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "private, no-cache",
}


def assert_file_headers(response: Any) -> None:
    for name, value in FILE_HEADERS.items():
        assert response.headers[name] == value, name
    policy = response.headers["Content-Security-Policy"]
    assert policy.startswith("sandbox") and "default-src 'none'" in policy
    assert "script-src" not in policy and "allow-scripts" not in policy
    if response.headers["Content-Disposition"].startswith("attachment"):
        # A download keeps not even our origin, should a browser ever show it.
        assert policy == "sandbox; default-src 'none'; frame-ancestors 'none'"


@pytest.mark.parametrize(
    ("name", "content_type", "disposition", "body"),
    [
        ("jpeg", "image/jpeg", "inline", PHOTO),
        ("ogg", "audio/ogg; codecs=opus", "inline", VOICE),
        ("pdf", "application/pdf", "attachment", PDF),
        ("svg", "image/svg+xml", "attachment", EVIL_SVG),
        ("html", "text/html", "attachment", EVIL_HTML),
    ],
)
def test_a_file_is_served_with_its_type_and_safe_headers(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
    name: str,
    content_type: str,
    disposition: str,
    body: bytes,
) -> None:
    ids = media_ids(app)
    response = admin.get(f"/admin/media/{ids[name]}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["Content-Disposition"].split(";")[0] == disposition
    assert response.headers["Content-Length"] == str(len(body))
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["ETag"].strip('"') == get_media_store(app).put([body]).sha256
    assert_file_headers(response)
    assert response.get_data() == body


def test_download_names_are_the_customers_or_made_up(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    ids = media_ids(app)

    def disposition(name: str) -> str:
        return str(admin.get(f"/admin/media/{ids[name]}").headers["Content-Disposition"])

    assert disposition("jpeg") == f'inline; filename="whatsapp-{ids["jpeg"]}.jpg"'
    assert disposition("ogg") == f'inline; filename="whatsapp-{ids["ogg"]}.ogg"'
    # Non-ASCII: a plain fallback for every browser and the real name per RFC 5987.
    assert disposition("pdf") == (
        "attachment; filename=\"Preisliste Groe M.pdf\"; filename*=UTF-8''"
        "Preisliste%20Gr%C3%B6%C3%9Fe%20M.pdf"
    )
    assert disposition("html") == 'attachment; filename="angebot.html"'


def test_a_voice_note_answers_a_range_request(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    ids = media_ids(app)
    response = admin.get(f"/admin/media/{ids['ogg']}", headers={"Range": "bytes=100-199"})
    assert response.status_code == 206
    assert response.headers["Content-Range"] == f"bytes 100-199/{len(VOICE)}"
    assert response.get_data() == VOICE[100:200]
    assert_file_headers(response)
    tail = admin.get(f"/admin/media/{ids['ogg']}", headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.get_data() == VOICE[-10:]


def test_an_unchanged_file_is_not_sent_again(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    ids = media_ids(app)
    first = admin.get(f"/admin/media/{ids['jpeg']}")
    again = admin.get(
        f"/admin/media/{ids['jpeg']}", headers={"If-None-Match": first.headers["ETag"]}
    )
    assert again.status_code == 304 and again.get_data() == b""


def test_no_file_no_answer(app: Flask, admin: FlaskClient) -> None:  # noqa: F811
    ids = media_ids(app)
    for attachment_id in (ids["pending"], ids["failed"], 999_999):
        response = admin.get(f"/admin/media/{attachment_id}")
        assert response.status_code == 404, attachment_id
    assert admin.get("/admin/media/abc").status_code == 404
    # The row says stored, but the bytes are gone from the store.
    get_media_store(app).delete(get_media_store(app).put([PHOTO]).sha256)
    assert admin.get(f"/admin/media/{ids['jpeg']}").status_code == 404


def test_no_media_url_answers_without_a_login(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    ids = media_ids(app)
    stranger = app.test_client()
    secrets = (PHOTO, VOICE, PDF, EVIL_SVG, EVIL_HTML)
    for attachment_id in [*ids.values(), 999_999]:
        path = f"/admin/media/{attachment_id}"
        for method, headers in [
            ("GET", {}),
            ("HEAD", {}),
            ("GET", {"Range": "bytes=0-99"}),
            ("GET", {"Accept": "application/json"}),
        ]:
            response = stranger.open(path, method=method, headers=headers)
            assert response.status_code in (302, 401), (path, method, headers)
            if response.status_code == 302:
                assert response.headers["Location"].startswith("/admin/login")
            body = response.get_data()
            assert not any(secret[:64] in body for secret in secrets)
            assert "Content-Disposition" not in response.headers
    # Logged out again: the same.
    admin.post("/admin/logout", data={"csrf_token": _token(admin)})
    assert admin.get(f"/admin/media/{ids['jpeg']}").status_code == 302


def _token(client: FlaskClient) -> str:
    html = client.get("/admin/inbox").get_data(as_text=True)
    found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert found
    return found.group(1)


class CountingStore:
    """The app's store, recording the largest read of a file it opened."""

    def __init__(self, inner: MediaStore) -> None:
        self.inner = inner
        self.largest = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def open(self, key: str) -> BinaryIO:
        file = self.inner.open(key)
        store = self

        class Reader:
            def read(self, size: int = -1) -> bytes:
                chunk = file.read(size)
                store.largest = max(store.largest, len(chunk))
                return chunk

            def __getattr__(self, name: str) -> Any:
                return getattr(file, name)

        return Reader()  # type: ignore[return-value]


def test_a_file_is_streamed_never_read_whole(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    big = bytes(range(256)) * 8192  # 2 MiB
    message = customer_sends(app, DOCUMENT, at=NOW)
    attachment_id = attach(app, message, "document", big, "application/pdf")
    store = CountingStore(get_media_store(app))
    app.extensions["tresen.media"] = store
    response = admin.get(f"/admin/media/{attachment_id}", buffered=False)
    assert b"".join(response.response) == big
    response.close()
    assert 0 < store.largest <= 64 * 1024


# --- bot.media.serve: pure ------------------------------------------------------------------


def test_only_plain_images_audio_and_video_are_inline() -> None:
    for inline in ("image/jpeg", "image/png", "image/webp", "audio/ogg; codecs=opus", "video/mp4"):
        assert serve.is_inline(inline), inline
    for download in (
        "image/svg+xml",
        "text/html",
        "application/pdf",
        "application/xhtml+xml",
        "text/xml",
        "",
        None,
        "IMAGE/SVG+XML",
    ):
        assert not serve.is_inline(download), download


def test_the_answers_type_is_the_stored_one_without_anything_a_header_must_not_carry() -> None:
    assert serve.response_type("image/jpeg") == "image/jpeg"
    assert serve.response_type("Audio/OGG; codecs=opus") == "audio/ogg; codecs=opus"
    assert serve.response_type("text/html; charset=utf-8") == "text/html"
    for broken in ("", None, "jpeg", "text/html\r\nSet-Cookie: x=1", "a b/c", "image/"):
        assert serve.response_type(broken) == "application/octet-stream", broken


@pytest.mark.parametrize(
    ("filename", "expected"),
    [
        ("Preisliste.pdf", "Preisliste.pdf"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\anna\\Bild.png", "Bild.png"),
        ("line\r\nbreak.txt", "line break.txt"),
        ("  .hidden.  ", "hidden"),
        ("", "whatsapp-7.jpg"),
        (None, "whatsapp-7.jpg"),
        ("\u202egnp.exe", "gnp.exe"),
    ],
)
def test_download_names_lose_folders_and_control_characters(
    filename: str | None, expected: str
) -> None:
    assert serve.download_name(filename, "image/jpeg", 7) == expected


def test_a_long_download_name_keeps_its_extension() -> None:
    name = serve.download_name("a" * 300 + ".pdf", "application/pdf", 1)
    assert len(name) <= serve.NAME_MAX and name.endswith("aaa.pdf")


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("foto.jpg", 'inline; filename="foto.jpg"'),
        ('say "hi".txt', "inline; filename=\"say _hi_.txt\"; filename*=UTF-8''say%20%22hi%22.txt"),
        ("Größe.pdf", "inline; filename=\"Groe.pdf\"; filename*=UTF-8''Gr%C3%B6%C3%9Fe.pdf"),
        (
            "Фото.jpg",
            "inline; filename=\"download.jpg\"; filename*=UTF-8''%D0%A4%D0%BE%D1%82%D0%BE.jpg",
        ),
        ("a;b=c.txt", "inline; filename=\"a_b=c.txt\"; filename*=UTF-8''a%3Bb%3Dc.txt"),
    ],
)
def test_content_disposition_is_ascii_with_the_real_name_per_rfc_5987(
    name: str, header: str
) -> None:
    assert serve.content_disposition(name, inline=True) == header
    assert header.isascii()
