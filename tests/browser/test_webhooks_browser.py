"""Webhooks in the owner's browser: a webhook added for the shop system shows its signing
secret once; a test event sent from its page reaches the shop's receiver signed with that
secret, and the page then shows the receiver's answer as the last result."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from bot.db import get_db
from bot.webhooks_out.deliverer import Deliverer
from bot.webhooks_out.guard import parse_allowed
from bot.webhooks_out.sending import Poster
from tests.browser.conftest import Shop
from tests.test_webhooks_out import Receiver, verified

pytestmark = pytest.mark.slow


def test_the_owner_adds_a_webhook_sees_its_secret_once_and_its_last_result(shop: Shop) -> None:
    receiver = Receiver(200)
    try:
        # The shop system runs on this machine: the operator allowed its address.
        allowed = parse_allowed("127.0.0.1/32")
        shop.app.config["TRESEN"] = replace(
            shop.app.config["TRESEN"], webhooks_allow_private=allowed
        )
        tab = shop.go("/admin/account")
        tab.get_by_role("link", name="Webhooks für Shop-Systeme").click()
        tab.wait_for_url(re.compile(r"/admin/webhooks$"))
        tab.get_by_label("Adresse, unter der Ihr System empfängt").fill(receiver.url)
        tab.locator("label.check", has_text="message.received").locator("input").check()
        tab.get_by_role("button", name="Webhook hinzufügen").click()
        created = tab.locator("#new-webhook")
        assert f"Der Webhook an {receiver.url} ist hinzugefügt" in created.inner_text()
        secret = tab.locator("#webhook-secret").input_value()
        assert secret.startswith("whsec_")
        shop.shot("webhook-created")
        created.get_by_role("link").last.click()
        tab.wait_for_url(re.compile(r"/admin/webhooks/\d+$"))
        assert secret not in tab.content()  # shown that once only
        assert "noch nichts gesendet" in tab.locator("main").inner_text()
        tab.get_by_role("button", name="Test-Ereignis senden").click()
        tab.wait_for_url(re.compile(r"/admin/webhooks/\d+$"))
        # What the worker's webhook thread does on its next turn.
        sent = Deliverer(get_db(shop.app), Poster(allowed), worker="w1").turn()
        assert sent == 1 and len(receiver.requests) == 1
        headers, body = receiver.requests[0]
        assert verified(secret, headers, body, datetime.now(UTC))
        assert b'"event": "ping"' in body or b'"event":"ping"' in body
        tab.reload()
        state = tab.locator("main").inner_text()
        assert "zuletzt gesendet am" in state and "HTTP 200" in state
        shop.shot("webhook")
    finally:
        receiver.close()
