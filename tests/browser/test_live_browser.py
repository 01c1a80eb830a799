"""The shop owner keeps the inbox open: a customer writes, and the list and the tab's title
show it within a moment, without a reload; sound and notifications can be turned on in the
header. At a phone's and a desktop's size."""

from __future__ import annotations

import re
import time

import pytest

from tests.browser.conftest import Shop
from tests.browser.test_inbox_browser import customer_writes

pytestmark = pytest.mark.slow


def test_a_new_message_shows_in_the_open_inbox_at_once(shop: Shop) -> None:
    customer_writes(shop.app, "Guten Morgen!", name="Anna", wa_id="4915112345678")
    tab = shop.go("/admin/inbox")
    tab.wait_for_function("() => window.tresenLive && window.tresenLive.up")
    # Anna's message is unread and hers is nobody's conversation: it counts for me.
    tab.wait_for_function("() => document.title === '(1) Posteingang · Tresen'")
    shop.fits()

    started = time.monotonic()
    customer_writes(shop.app, "Haben Sie Tulpen?", name="Karl Huber", wa_id="4917612345678")
    tab.locator(".conversations a", has_text="Karl Huber").wait_for(timeout=3000)
    tab.wait_for_function("() => document.title === '(2) Posteingang · Tresen'", timeout=3000)
    assert time.monotonic() - started < 2.5
    assert tab.locator(".conversations li").first.inner_text().startswith("Karl Huber")
    shop.shot("live-inbox")

    # The header's controls: sound (kept in this browser), and the notification button.
    sound = tab.get_by_role("button", name="Ton bei neuen Nachrichten")
    assert sound.get_attribute("aria-pressed") == "false"
    sound.click()
    assert sound.get_attribute("aria-pressed") == "true"
    assert tab.evaluate("() => localStorage.getItem('tresen.sound')") == "on"
    permission = tab.evaluate("() => Notification.permission")
    button = tab.locator("#live-notify")
    assert button.count() == 1
    assert button.get_attribute("title") == "Benachrichtigungen einschalten"
    if permission == "default":
        assert button.is_visible()
    else:  # already granted or refused in this browser: nothing to ask
        assert button.is_hidden()

    # A conversation page hears it too, and keeps the sound setting.
    tab.locator(".conversations a", has_text="Karl Huber").click()
    tab.wait_for_url(re.compile(r"/admin/inbox/\d+(\?.*)?$"))  # the list's view may follow
    tab.wait_for_function("() => window.tresenLive && window.tresenLive.up")
    assert (
        tab.get_by_role("button", name="Ton bei neuen Nachrichten").get_attribute("aria-pressed")
        == "true"
    )
    customer_writes(shop.app, "Rote bitte.", name="Karl Huber", wa_id="4917612345678")
    tab.locator(".msg.in .text", has_text="Rote bitte.").wait_for(timeout=3000)
    shop.fits()
    shop.shot("live-conversation")


def test_without_the_stream_the_page_polls(shop: Shop) -> None:
    from bot.admin import live

    live.streams(shop.app).capacity = 0  # every stream refused: the 5 s poll stays
    # The page before may still be answered a stream it asked for before the change: wait for
    # this page's refusal (a timeout here fails the test as surely as a 200 would).
    with shop.tab.expect_response(
        lambda r: re.search(r"/admin/events$", r.url) is not None and r.status == 503
    ) as refused:
        tab = shop.go("/admin/inbox")
    assert refused.value.status == 503
    with tab.expect_request(re.compile(r"/admin/inbox\.json"), timeout=7000):
        pass
    assert tab.evaluate("() => window.tresenLive.up") is False
    assert tab.locator("#live").is_visible()
