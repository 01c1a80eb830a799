"""A shop owner sees a customer's media in the conversation, in German, on a phone and on a
desktop: a photo that opens full size, a voice note that plays, files to download, a location
and contact cards; a customer's SVG or HTML never runs; the page asks no other host for
anything."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bot.media.kinds import MediaKind
from tests.browser.conftest import Shop
from tests.media_rows import PHOTO, attach, contact_of, customer_sends, every_kind

pytestmark = pytest.mark.slow


def conversation(shop: Shop) -> tuple[Any, dict[str, int]]:
    ids = every_kind(shop.app, datetime.now(UTC))
    tab = shop.go(f"/admin/inbox/{ids['contact']}")
    tab.locator(f'.msg[data-id="{ids["sent"]}"]').wait_for()
    return tab, ids


def message(tab: Any, message_id: int) -> Any:
    return tab.locator(f'.msg[data-id="{message_id}"]')


def loaded(image: Any) -> int:
    """The image's natural width once the browser decoded it (0: it did not load)."""
    image.scroll_into_view_if_needed()
    image.page.wait_for_function("img => img.complete", arg=image.element_handle())
    width: int = image.evaluate("img => img.naturalWidth")
    return width


def test_a_customers_photo_shows_and_opens_full_size(shop: Shop) -> None:
    tab, ids = conversation(shop)
    shop.shot("media-conversation-end")
    photo = message(tab, ids["photo"])
    thumbnail = photo.locator("img")
    assert thumbnail.get_attribute("alt") == "Foto"
    assert loaded(thumbnail) == 640
    assert photo.locator(".text").inner_text() == "So ungefähr der Kranz"
    small = thumbnail.bounding_box()
    assert 100 <= small["width"] <= 260, small  # a thumbnail, sized by the page
    tab.locator(".messages").evaluate("list => { list.scrollTop = 0; }")
    shop.shot("media-conversation-start")

    thumbnail.click()
    dialog = tab.locator("#lightbox")
    dialog.wait_for(state="visible")
    big = dialog.locator("img")
    assert loaded(big) == 640
    assert big.bounding_box()["width"] > small["width"]
    shop.shot("media-photo-full-size")
    dialog.get_by_role("button", name="Schließen").click()
    dialog.wait_for(state="hidden")

    # The shop's own photo, sent back, shows as well.
    assert loaded(message(tab, ids["sent"]).locator("img")) == 640
    # Opened on its own (a new tab, or without the script): the picture itself.
    alone = tab.context.new_page()
    alone.goto(f"{shop.url}/admin/media/{ids['photo_file']}")
    assert alone.evaluate("document.images.length") == 1
    assert alone.evaluate("document.images[0].naturalWidth") == 640
    alone.close()


def test_a_voice_note_plays(shop: Shop) -> None:
    tab, ids = conversation(shop)
    voice = message(tab, ids["voice"])
    assert voice.locator(".note").inner_text() == "🎤 Sprachnachricht"
    player = voice.locator("audio")
    player.scroll_into_view_if_needed()
    tab.wait_for_function("a => a.readyState >= 1", arg=player.element_handle())
    assert 0.9 <= player.evaluate("a => a.duration") <= 1.2
    player.click(position={"x": 20, "y": 20})  # the owner's tap: the browser lets it play
    player.evaluate("a => a.play()")
    tab.wait_for_function("a => a.currentTime > 0.2", arg=player.element_handle())
    assert player.evaluate("a => a.error") is None
    shop.shot("media-voice-note")
    # Opened on its own in a tab, the browser's player plays it too.
    alone = tab.context.new_page()
    alone.goto(f"{shop.url}/admin/media/{ids['voice_file']}")
    alone.wait_for_function("document.querySelector('video, audio')?.readyState >= 1")
    assert 0.9 <= alone.evaluate("document.querySelector('video, audio').duration") <= 1.2
    alone.close()


def test_files_show_with_name_and_size_and_download(shop: Shop) -> None:
    tab, ids = conversation(shop)
    document = message(tab, ids["document"])
    assert document.locator(".file-name").inner_text() == "Preisliste 2026.pdf"
    assert document.locator(".file-size").inner_text() == "125 Byte"
    with tab.expect_download() as download:
        document.get_by_text("Herunterladen").click()
    assert download.value.suggested_filename == "Preisliste 2026.pdf"
    sticker = message(tab, ids["sticker"]).locator("img.media-sticker")
    assert loaded(sticker) == 160
    place = message(tab, ids["location"])
    assert place.locator(".place-name").inner_text() == "Blumen Müller"
    assert "48.13715, 11.57612" in place.inner_text()
    link = place.get_by_role("link", name="Auf der Karte öffnen")
    assert link.get_attribute("href").startswith("https://www.openstreetmap.org/?mlat=48.137154")
    cards = message(tab, ids["contacts"])
    assert cards.locator(".card-name").all_inner_texts() == ["Karl Huber", "Gärtnerei Berg"]
    assert "+49 176 1234567" in cards.inner_text()
    pending = message(tab, ids["pending"])
    assert pending.locator(".media-status").inner_text() == "Das Foto wird von WhatsApp geholt …"
    failed = message(tab, ids["too_large"])
    assert "Das Video ist zu groß und wurde nicht gespeichert." in failed.inner_text()
    failed.scroll_into_view_if_needed()
    shop.shot("media-files-and-states")


def test_a_file_fetched_while_the_page_is_open_appears(shop: Shop) -> None:
    now = datetime.now(UTC)
    photo = customer_sends(shop.app, {"type": "image", "image": {"id": "late"}}, at=now)
    attach(shop.app, photo, MediaKind.IMAGE, content_type="image/png")
    tab = shop.go(f"/admin/inbox/{contact_of(shop.app)}")
    bubble = message(tab, photo)
    assert bubble.locator(".media-status").inner_text() == "Das Foto wird von WhatsApp geholt …"
    attach(shop.app, photo, MediaKind.IMAGE, PHOTO, "image/png")
    image = bubble.locator("img")
    image.wait_for(timeout=8_000)  # the page polls every 3 seconds
    assert loaded(image) == 640
    assert bubble.locator(".media-status").count() == 0


def test_a_customers_svg_or_html_never_runs(shop: Shop) -> None:
    tab, ids = conversation(shop)
    ran: list[str] = []
    tab.context.on("console", lambda msg: ran.append(f"console: {msg.text}"))
    tab.context.on(
        "dialog", lambda dialog: (ran.append(f"dialog: {dialog.message}"), dialog.dismiss())
    )
    for key, name in (("svg", "kranz.svg"), ("html", "angebot.html")):
        link = message(tab, ids[key]).locator("a.media-file")
        with tab.expect_download() as download:
            link.click()
        assert download.value.suggested_filename == name
        url = f"{shop.url}/admin/media/{ids[f'{key}_file']}"
        # Opened directly, in a tab of its own: a download, never a page of ours.
        alone = tab.context.new_page()
        with alone.expect_download() as direct:
            try:
                alone.goto(url)
            except Exception as exc:  # Playwright: "Download is starting"
                assert "Download is starting" in str(exc) or "ERR_ABORTED" in str(exc), exc
        assert direct.value.suggested_filename == name
        alone.close()
    for key in ("svg", "html"):
        url = f"{shop.url}/admin/media/{ids[f'{key}_file']}"
        # Put in a frame or an image by a page of ours: nothing runs either.
        tab.evaluate(
            """url => {
                const frame = document.createElement("iframe");
                frame.src = url; document.body.appendChild(frame);
                const img = new Image(); img.src = url; document.body.appendChild(img);
            }""",
            url,
        )
    tab.wait_for_timeout(1500)
    assert not [line for line in ran if "ran" in line or "dialog" in line]
    assert tab.title().endswith("Tresen")
    assert shop.dialogs == []


def test_the_conversation_asks_no_other_host(shop: Shop) -> None:
    requested: list[str] = []
    shop.tab.on("request", lambda request: requested.append(request.url))
    tab, ids = conversation(shop)
    # Every message in view once, so every lazy picture and player has asked for its file.
    for bubble in tab.locator(".msg").all():
        bubble.scroll_into_view_if_needed()
    message(tab, ids["photo"]).locator("img").click()
    tab.locator("#lightbox img").wait_for()
    tab.wait_for_timeout(3500)  # a poll of the conversation and of the list
    media = {url.removeprefix(shop.url) for url in requested if "/admin/media/" in url}
    for key in ("photo_file", "voice_file", "video_file", "sticker_file", "sent_file"):
        assert f"/admin/media/{ids[key]}" in media, key
    elsewhere = [url for url in requested if not url.startswith(shop.url + "/")]
    assert elsewhere == []
