"""Broadcasts with a file: a template's image, video or document header and a text's image,
from the CLI, each recipient's message linked to the file, and one upload for all of them."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot.db import get_db
from bot.media.store import LocalStore
from bot.models import Attachment, Broadcast
from tests.fakegraph import FakeGraph
from tests.test_admin import admin, clock, csrf_of  # noqa: F401  (fixtures)
from tests.test_broadcasts import NOW, add_contact, messages, run, shop  # noqa: F401  (fixture)
from tests.test_send_media import PDF, PHOTO, dispatch, graph, live, sha, store  # noqa: F401


def create_with(app: Flask, tmp_path: Path, name: str, data: bytes, *args: str) -> tuple[int, str]:
    path = tmp_path / name
    path.write_bytes(data)
    result = app.test_cli_runner().invoke(args=["broadcast", "create", *args, "--media", str(path)])
    return result.exit_code, result.output


def test_a_template_broadcast_with_an_image_header_uploads_once_for_everyone(
    shop: Flask,  # noqa: F811
    store: LocalStore,  # noqa: F811
    graph: FakeGraph,  # noqa: F811
    tmp_path: Path,
) -> None:
    for i in range(5):
        add_contact(shop, f"49151000000{i}", f"Kunde {i}")
    code, output = create_with(
        shop,
        tmp_path,
        "angebot.jpg",
        PHOTO,
        "--wa-template",
        "angebot",
        "--language",
        "de",
        "--param",
        "{{ contact.name }}",
    )
    assert code == 0, output
    broadcast_id = int(output.strip().splitlines()[-1])
    run(shop, broadcast_id)
    sent = messages(shop)
    assert len(sent) == 5
    header = {"type": "header", "parameters": [{"type": "image", "image": {"file": sha(PHOTO)}}]}
    assert all(m.payload["template"]["components"][0] == header for m in sent)
    with get_db(shop).session() as session:
        attachments = list(session.scalars(select(Attachment)))
        assert sorted(a.message_id for a in attachments) == sorted(m.id for m in sent)
        assert {(a.kind, a.state, a.mime_type) for a in attachments} == {
            ("image", "stored", "image/jpeg")
        }
    live(shop, graph)
    shop.config["TRESEN_CLOCK"] = lambda: NOW
    dispatch(shop, lambda: all(m.status == "sent" for m in messages(shop)))
    [upload] = graph.uploads  # once for the whole broadcast
    assert upload.data == PHOTO and upload.type == "image/jpeg"
    templates = [r.json for r in graph.requests if r.json and r.json.get("type") == "template"]
    assert len(templates) == 5
    for payload in templates:
        assert payload["template"]["components"][0] == {
            "type": "header",
            "parameters": [{"type": "image", "image": {"id": upload.id}}],
        }


def test_a_text_broadcast_carries_an_image_with_the_text_as_caption(
    shop: Flask,  # noqa: F811
    store: LocalStore,  # noqa: F811
    tmp_path: Path,
) -> None:
    add_contact(shop, "491510000001", "Anna", wrote=timedelta(hours=1))
    add_contact(shop, "491510000002", "Bert")  # outside the window: skipped, no attachment
    code, output = create_with(
        shop, tmp_path, "kranz.png", PHOTO, "--text", "Hallo {{ contact.name }}, neu da!"
    )
    assert code == 0, output
    run(shop, int(output.strip().splitlines()[-1]))
    anna, bert = messages(shop)
    assert anna.type == "image"
    assert anna.payload["image"] == {"file": sha(PHOTO), "caption": "Hallo Anna, neu da!"}
    assert bert.status == "skipped"
    with get_db(shop).session() as session:
        assert [a.message_id for a in session.scalars(select(Attachment))] == [anna.id]


def test_a_document_header_keeps_its_name(
    shop: Flask,  # noqa: F811
    store: LocalStore,  # noqa: F811
    tmp_path: Path,
) -> None:
    add_contact(shop, "491510000001", "Anna")
    code, output = create_with(
        shop, tmp_path, "Preisliste.pdf", PDF, "--wa-template", "preise", "--language", "de"
    )
    assert code == 0, output
    run(shop, int(output.strip().splitlines()[-1]))
    [message] = messages(shop)
    assert message.payload["template"]["components"] == [
        {
            "type": "header",
            "parameters": [
                {"type": "document", "document": {"file": sha(PDF), "filename": "Preisliste.pdf"}}
            ],
        }
    ]


def test_the_cli_refuses_a_file_whatsapp_would_not_send(
    shop: Flask,  # noqa: F811
    store: LocalStore,  # noqa: F811
    tmp_path: Path,
) -> None:
    code, output = create_with(shop, tmp_path, "preise.pdf", PDF, "--text", "Hallo")
    assert code == 2
    assert "JPEG" in output and "--media" in output
    code, output = create_with(
        shop,
        tmp_path,
        "huge.png",
        b"0" * (5 * 1024 * 1024 + 1),
        "--wa-template",
        "a",
        "--language",
        "de",
    )
    assert code == 2 and "5 MB" in output
    assert list(store.keys()) == []
    with get_db(shop).session() as session:
        assert list(session.scalars(select(Broadcast))) == []
    assert messages(shop) == []


# --- the admin's new broadcast page ------------------------------------------------------------


def test_the_admin_creates_a_template_broadcast_with_an_image_header(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
    store: LocalStore,  # noqa: F811
) -> None:
    page = admin.get("/admin/broadcasts/new").get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page and 'name="file"' in page
    answer = admin.post(
        "/admin/broadcasts",
        data={
            "csrf_token": csrf_of(page),
            "kind": "template",
            "template": "angebot",
            "language": "de",
            "when": "now",
            "file": (io.BytesIO(PHOTO), "angebot.png", "image/png"),
        },
        content_type="multipart/form-data",
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    with get_db(app).session() as session:
        broadcast = session.scalars(select(Broadcast)).one()
        assert broadcast.media_kind == "image" and broadcast.file is not None
        assert broadcast.file.sha256 == sha(PHOTO)


def test_the_admin_refuses_a_document_with_a_text_and_keeps_the_form(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
    store: LocalStore,  # noqa: F811
) -> None:
    page = admin.get("/admin/broadcasts/new").get_data(as_text=True)
    answer = admin.post(
        "/admin/broadcasts",
        data={
            "csrf_token": csrf_of(page),
            "kind": "text",
            "text": "Neu!",
            "when": "now",
            "file": (io.BytesIO(PDF), "preise.pdf", "application/pdf"),
        },
        content_type="multipart/form-data",
    )
    assert answer.status_code == 400
    assert "JPEG oder PNG" in answer.get_data(as_text=True)
    with get_db(app).session() as session:
        assert list(session.scalars(select(Broadcast))) == []
    assert list(store.keys()) == []


def test_a_kept_file_survives_the_confirmation_step(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
    store: LocalStore,  # noqa: F811
) -> None:
    """At night the page asks to confirm: the file chosen is kept and goes with the answer."""
    page = admin.get("/admin/broadcasts/new").get_data(as_text=True)
    fields = {
        "csrf_token": csrf_of(page),
        "kind": "template",
        "template": "angebot",
        "language": "de",
        "when": "at",
        "at": "2026-03-12T23:30",
    }
    asked = admin.post(
        "/admin/broadcasts",
        data={**fields, "file": (io.BytesIO(PHOTO), "angebot.png", "image/png")},
        content_type="multipart/form-data",
    )
    html = asked.get_data(as_text=True)
    assert asked.status_code == 200 and 'name="confirmed"' in html
    file_id = re.search(r'name="file_id" value="(\d+)"', html)
    assert file_id is not None and "angebot.png" in html
    done = admin.post(
        "/admin/broadcasts",
        data={**fields, "confirmed": "1", "file_id": file_id[1], "file_name": "angebot.png"},
    )
    assert done.status_code == 302
    with get_db(app).session() as session:
        broadcast = session.scalars(select(Broadcast)).one()
        assert broadcast.file_id == int(file_id[1]) and broadcast.media_kind == "image"
