"""While the owner types a reply, the page asks the server for WhatsApp's typing indicator:
once for a burst of keystrokes (the page and the server both hold to 20 seconds), with the
CSRF token, under the admin's content security policy."""

from __future__ import annotations

import re
import time

import pytest
from sqlalchemy import select

from bot.db import get_db
from bot.models import Signal
from tests.browser.conftest import Shop
from tests.browser.test_inbox_browser import customer_writes

pytestmark = pytest.mark.slow


def typing_signals(shop: Shop) -> list[Signal]:
    with get_db(shop.app).session() as session:
        return list(session.scalars(select(Signal).where(Signal.kind == "typing")))


def test_typing_a_reply_queues_one_typing_indicator(shop: Shop) -> None:
    customer_writes(shop.app, "Haben Sie noch Rosen?", name="Anna", wa_id="4915112345678")
    tab = shop.go("/admin/inbox")
    tab.locator(".conversations a", has_text="Anna").click()
    tab.wait_for_url(re.compile(r"/admin/inbox/\d+$"))
    tab.locator("#reply-text").press_sequentially("Ja, rote und weiße")
    deadline = time.monotonic() + 10
    while not typing_signals(shop) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.3)  # more keystrokes would have posted again by now
    signals = typing_signals(shop)
    assert len(signals) == 1 and signals[0].wamid.startswith("wamid.Q")
    shop.fits()
