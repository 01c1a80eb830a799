"""The team's inbox in German, on a phone and on a desktop: the owner assigns Anna's
conversation to herself, writes an internal note beside the reply box, and finds Anna under
"Meine" and Karl under "Nicht zugewiesen"; nothing scrolls sideways."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from bot import users
from bot.db import get_db
from tests.browser.conftest import PASSWORD, Shop
from tests.browser.test_inbox_browser import customer_writes

pytestmark = pytest.mark.slow


def test_assign_note_and_views(shop: Shop) -> None:
    users.add_user(
        get_db(shop.app), "berta", PASSWORD, role=users.Role.STAFF, now=datetime.now(UTC)
    )
    customer_writes(shop.app, "Ist mein Strauß fertig?", name="Anna", wa_id="4915112345678")
    customer_writes(shop.app, "Haben Sie Tulpen?", name="Karl Huber", wa_id="4917612345678")

    # Nothing is assigned to anyone: the inbox opens with all conversations.
    tab = shop.go("/admin/inbox")
    assert tab.locator(".view-tab.current").inner_text().startswith("Alle")
    assert tab.locator('.view-tab[data-view="all"] .view-unread').inner_text() == "2"
    shop.fits()

    tab.locator(".conversations a", has_text="Anna").click()
    tab.wait_for_url(re.compile(r"/admin/inbox/\d+$"))
    tab.locator(".msg.in .text", has_text="Ist mein Strauß fertig?").wait_for()
    # Choosing a person assigns at once (the button is for browsers without the script).
    assert not tab.locator("#team-bar .apply").first.is_visible()
    with tab.expect_navigation():
        tab.select_option("#assign-user", label="owner")
    assert tab.locator("#assign-user option:checked").text_content() == "owner"
    with tab.expect_navigation():
        tab.select_option("#conversation-state", "waiting")
    assert tab.locator("#conversation-state").input_value() == "waiting"
    shop.fits()

    # A note: the other mode of the reply box, yellow, never sent.
    tab.click('.reply-modes .mode[data-mode="note"]')
    assert tab.locator("#note-form").is_visible()
    assert not tab.locator("#reply-form").is_visible()
    assert "Nur Ihr Team sieht das" in tab.locator("#note-form .note-hint").inner_text()
    tab.fill("#note-text", "Stammkundin, <b>immer</b> mit Karte")
    tab.click("#note-form button[type=submit]")
    note = tab.locator(".team-note", has_text="Stammkundin, <b>immer</b> mit Karte")
    note.wait_for()
    assert "Notiz von owner" in note.inner_text()
    background = note.evaluate("n => getComputedStyle(n).backgroundColor")
    assert background == "rgb(255, 248, 214)"
    assert tab.input_value("#note-text") == ""
    shop.shot("conversation-note")

    # The views: Anna is mine, Karl nobody's.
    tab = shop.go("/admin/inbox?view=mine")
    assert tab.locator(".conversations .name").all_inner_texts() == ["Anna"]
    item = tab.locator(".conversations li", has_text="Anna")
    assert item.locator(".initials").inner_text() == "O"
    assert item.locator(".state").inner_text() == "Wartet auf Kunden"
    shop.fits()
    tab.click('.view-tab[data-view="unassigned"]')
    tab.wait_for_url(re.compile(r"view=unassigned"))
    assert tab.locator(".conversations .name").all_inner_texts() == ["Karl Huber"]
    shop.shot("inbox-unassigned")
    # A conversation opened from a view goes back to that view.
    tab.locator(".conversations a", has_text="Karl").click()
    tab.wait_for_url(re.compile(r"/admin/inbox/\d+\?view=unassigned$"))
    shop.fits()
    if shop.size != "desktop":
        tab.click(".chat-head .back")
        tab.wait_for_url(re.compile(r"/admin/inbox\?view=unassigned$"))
