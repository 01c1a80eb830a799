"""A shop owner answers with a quick reply, in German, on a phone and on a desktop: saves
"/danke" on its page, types "/da" in Anna's conversation, picks it, sees her name filled in,
sends it."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest
from flask import Flask

from tests.browser.conftest import Shop
from tests.conftest import post_notification
from tests.payloads import notification

pytestmark = pytest.mark.slow


def customer_writes(app: Flask, text: str, *, name: str, wa_id: str) -> None:
    msg = {
        "type": "text",
        "text": {"body": text},
        "id": f"wamid.Q{time.monotonic_ns()}",
        "timestamp": str(int(datetime.now(UTC).timestamp())),
    }
    response = post_notification(app.test_client(), notification(msg, wa_id=wa_id, name=name))
    assert response.status_code == 200


def test_answer_with_a_quick_reply(shop: Shop) -> None:
    customer_writes(shop.app, "Ist mein Strauß fertig?", name="Anna", wa_id="4915112345678")
    customer_writes(shop.app, "Haben Sie Tulpen?", name="Karl Huber", wa_id="4917612345678")

    # The quick reply, written with the placeholder button for the name.
    tab = shop.go("/admin/quick-replies")
    assert tab.locator("h1").inner_text() == "Schnellantworten"
    tab.fill("input[name=shortcut]", "/danke")
    tab.fill("#quick-text", "Danke, ")
    tab.locator("#quick-text").press("End")
    tab.click('button[data-insert="[Name]"]')
    tab.locator("#quick-text").press_sequentially("! Ihr Strauß liegt bereit.")
    assert tab.input_value("#quick-text") == "Danke, [Name]! Ihr Strauß liegt bereit."
    tab.click("form button[type=submit].primary")
    tab.get_by_text("Schnellantwort /danke gespeichert.").wait_for()
    assert tab.locator(".qr-shortcut").all_inner_texts() == ["/danke"]
    shop.shot("quick-replies")

    tab = shop.go("/admin/inbox")
    if shop.size == "desktop":
        # The search field and the label filter beside the list are not cut off.
        assert tab.locator(".search input[type=search]").bounding_box()["width"] >= 250
        assert tab.locator(".search select").bounding_box()["width"] >= 120
    shop.shot("inbox-list")
    tab.locator(".conversations a", has_text="Anna").click()
    tab.wait_for_url(re.compile(r"/admin/inbox/\d+$"))
    tab.locator(".msg.in .text", has_text="Ist mein Strauß fertig?").wait_for()
    box = tab.locator("#reply-text")
    box.click()
    box.press_sequentially("/da")
    choice = tab.locator("#quick-list li", has_text="/danke")
    choice.wait_for()
    assert "Danke, Anna! Ihr Strauß liegt bereit." in choice.inner_text()
    shop.shot("inbox-quick-reply")
    if shop.size == "desktop":
        box.press("Enter")  # the keyboard: the first match is chosen
    else:
        choice.click()  # a tap: the list answers the pointer
    assert tab.input_value("#reply-text") == "Danke, Anna! Ihr Strauß liegt bereit."
    assert tab.locator("#quick-list").is_hidden()

    # The owner can still change it before sending.
    box.press("End")
    box.press_sequentially(" 🌷")
    tab.click("#reply-form button[type=submit]")
    sent = tab.locator(".msg.out .text", has_text="Danke, Anna! Ihr Strauß liegt bereit. 🌷")
    sent.wait_for()
    assert tab.input_value("#reply-text") == ""
    assert tab.locator(".msg.out .rule").last.inner_text() == "von Hand"
    shop.shot("inbox-conversation")

    tab = shop.go("/admin/insights")
    assert tab.locator("h1").inner_text() == "Auswertung"
    tab.locator(".busiest").wait_for()
    # The heatmap fits the card: nothing to scroll sideways even on a phone.
    assert (
        tab.evaluate(
            "() => { const w = document.querySelector('.heatmap-wrap');"
            " return w.scrollWidth - w.clientWidth; }"
        )
        <= 0
    )
    assert re.search(
        r"Meiste Nachrichten: \w\w\., \d+–\d+ Uhr", tab.locator(".busiest").inner_text()
    )
    shop.shot("insights")

    # Deleting asks first.
    tab = shop.go("/admin/quick-replies")
    tab.click("button.danger")
    tab.get_by_text("Schnellantwort /danke gelöscht.").wait_for()
    assert shop.dialogs == ["Die Schnellantwort /danke löschen?"]


def test_a_slash_that_matches_nothing_says_so(shop: Shop) -> None:
    customer_writes(shop.app, "Hallo?", name="Anna", wa_id="4915112345678")
    tab = shop.go("/admin/inbox")
    tab.locator(".conversations a", has_text="Anna").click()
    tab.wait_for_url(re.compile(r"/admin/inbox/\d+$"))
    box = tab.locator("#reply-text")
    box.click()
    box.press_sequentially("/xyz")
    tab.get_by_text("Keine Schnellantwort beginnt mit „/xyz“.").wait_for()
    box.press("Escape")
    assert tab.locator("#quick-list").is_hidden()
    assert tab.input_value("#reply-text") == "/xyz"
