"""The shop sends pictures, in the browser, in German, on a phone and a desktop: a reply with a
photo of the finished wreath, and a broadcast whose approved template shows an offer picture.
The fake Graph API receives the upload and the messages with the media id it gave."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import broadcasts
from bot.db import get_db
from bot.media.store import LocalStore
from bot.models import Broadcast, Contact, Message
from tests.any_hour import send_at_any_hour
from tests.browser.conftest import Shop
from tests.fakegraph import FakeGraph
from tests.test_admin import receive
from tests.test_send_media import PHOTO, TOKEN, dispatch, live, sha, statuses

pytestmark = pytest.mark.slow


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def sending(shop: Shop, graph: FakeGraph, tmp_path: Path) -> Shop:
    """The shop with its media store and the fake Graph API in Meta's place."""
    shop.app.extensions["tresen.media"] = LocalStore(tmp_path / "media")
    live(shop.app, graph)
    return shop


def test_reply_with_a_photo_of_the_wreath(sending: Shop, graph: FakeGraph, tmp_path: Path) -> None:
    app = sending.app
    receive(app.test_client(), at=datetime.now(UTC), name="Anna")
    with get_db(app).session() as session:
        contact_id = session.scalars(select(Contact.id)).one()
    photo = tmp_path / "kranz.png"
    photo.write_bytes(PHOTO)

    tab = sending.go(f"/admin/inbox/{contact_id}")
    assert tab.get_attribute("#reply-file", "accept") is not None
    assert "image/png" in (tab.get_attribute("#reply-file", "accept") or "")
    tab.set_input_files("#reply-file", str(photo))
    # The chosen file shows under the box, with a way to take it off again.
    tab.wait_for_selector("#reply-attached:not([hidden])")
    assert tab.inner_text("#reply-attached-name") == "kranz.png"
    assert tab.inner_text("#reply-attached-remove") == "Datei entfernen"
    tab.fill("#reply-text", "So sieht Ihr Kranz aus")
    tab.click("#reply-form button[type=submit]")
    tab.wait_for_selector("#reply-attached[hidden]", state="attached")
    assert tab.input_value("#reply-text") == ""
    sending.shot("send-media-reply")

    dispatch(app, lambda: statuses(app) == ["sent"])
    [upload] = graph.uploads
    assert upload.data == PHOTO and upload.type == "image/png"
    [sent] = [r.json for r in graph.requests if r.json and r.json.get("type") == "image"]
    assert sent["image"] == {"id": upload.id, "caption": "So sieht Ihr Kranz aus"}


def test_a_refused_file_says_why_in_german(sending: Shop, tmp_path: Path) -> None:
    app = sending.app
    receive(app.test_client(), at=datetime.now(UTC), name="Anna")
    with get_db(app).session() as session:
        contact_id = session.scalars(select(Contact.id)).one()
    drawing = tmp_path / "skizze.gif"
    drawing.write_bytes(b"GIF89a" + b"0" * 100)
    tab = sending.go(f"/admin/inbox/{contact_id}")
    tab.set_input_files("#reply-file", str(drawing))
    tab.click("#reply-form button[type=submit]")
    tab.wait_for_selector("#send-error:not([hidden])")
    error = tab.inner_text("#send-error")
    assert "kann WhatsApp hier nicht senden" in error and "JPEG oder PNG" in error
    with get_db(app).session() as session:
        assert session.scalars(select(Message).where(Message.rule == "manual")).all() == []


def test_a_broadcast_with_an_offer_picture_goes_out(
    sending: Shop, graph: FakeGraph, tmp_path: Path
) -> None:
    app = sending.app
    with get_db(app).session() as session:
        for i, name in enumerate(("Anna", "Bert", "Carla")):
            session.add(Contact(wa_id=f"49151000000{i}", name=name, opted_in=True))
    offer = tmp_path / "angebot.png"
    offer.write_bytes(PHOTO)

    tab = sending.go("/admin/broadcasts/new")
    tab.wait_for_selector("#recipients-text[data-count='3']")
    tab.check("input[name=kind][value=template]")
    tab.fill("input[name=template]", "fruehlingsangebot")
    tab.fill("input[name=language]", "de")
    tab.set_input_files("#broadcast-file", str(offer))
    sending.shot("send-media-broadcast-new")
    tab.click("#broadcast-form .actions button[type=submit]")
    # At night or while closed, the page asks first; the picture stays chosen.
    if tab.is_visible("#confirm"):
        assert tab.inner_text(".attached").startswith("Angehängt:")
        tab.click("button[name=confirmed]")
    tab.wait_for_url(re.compile(r"/admin/broadcasts/\d+$"))
    assert "Mit einem Foto: angebot.png" in tab.inner_text(".summary")
    sending.shot("send-media-broadcast")

    # The scheduler's part: the run writes the recipients' messages, and the dispatcher sends
    # them on the wall clock: allowed at any hour, or they would wait for the morning.
    send_at_any_hour(get_db(app))
    with get_db(app).session() as session:
        broadcast = session.scalars(select(Broadcast)).one()
        assert broadcast.media_kind == "image"
        at = app.config["TRESEN_CLOCK"]()
        run_id = broadcasts.start_run(session, broadcast.id, at, at)
    assert run_id is not None
    broadcasts.write_run(get_db(app), run_id, clock=app.config["TRESEN_CLOCK"])
    dispatch(app, lambda: statuses(app, "broadcast") == ["sent"] * 3)

    [upload] = graph.uploads  # once for the three
    assert upload.data == PHOTO
    templates = [r.json for r in graph.requests if r.json and r.json.get("type") == "template"]
    assert sorted(t["to"] for t in templates) == [f"49151000000{i}" for i in range(3)]
    for payload in templates:
        assert payload["template"]["name"] == "fruehlingsangebot"
        assert payload["template"]["components"][0] == {
            "type": "header",
            "parameters": [{"type": "image", "image": {"id": upload.id}}],
        }
    with get_db(app).session() as session:
        kept = session.scalars(select(Message.payload).where(Message.rule == "broadcast")).all()
    assert all(
        p["template"]["components"][0]["parameters"][0]["image"] == {"file": sha(PHOTO)}
        for p in kept
    )
