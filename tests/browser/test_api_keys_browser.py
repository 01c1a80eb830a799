"""API keys in the owner's browser: a key created for the shop system is shown once, works
against /api/v1/, is gone from the page when it is opened again, and can be revoked."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import Shop

pytestmark = pytest.mark.slow


def test_the_owner_creates_a_key_and_sees_it_once(shop: Shop) -> None:
    tab = shop.go("/admin/account")
    tab.get_by_role("link", name="API-Schlüssel für Shop-Systeme").click()
    tab.wait_for_url(re.compile(r"/admin/api-keys$"))
    assert "Noch keine API-Schlüssel." in tab.locator("main").inner_text()
    tab.get_by_label("Name (welches System ihn benutzt)").fill("Webshop")
    scopes = tab.get_by_role("group", name="Was der Schlüssel darf")
    assert "einen Text innerhalb von 24 Stunden" in scopes.inner_text()  # each scope explained
    scopes.locator("label", has_text="Nachrichten senden").locator("input").check()
    scopes.locator("label", has_text="Nachrichten lesen").locator("input").check()
    tab.get_by_role("button", name="Schlüssel erstellen").click()
    shown = tab.locator("#new-key")
    assert "Nur dieses eine Mal zu sehen" in shown.inner_text()
    token = tab.locator("#api-key-token").input_value()
    assert re.fullmatch(r"tresen_[0-9a-f]{8}_[\w-]{43}", token)
    shop.shot("api-key-created")
    prefix = token.split("_")[1]
    # The shop system uses it.
    answer = tab.request.get(
        f"{shop.url}/api/v1/messages/1", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status == 404 and answer.json()["error"]["code"] == "not_found"
    # Opened again, the page shows only the key's beginning, and when it was last used.
    tab.goto(f"{shop.url}/admin/api-keys")
    main = tab.locator("main").inner_text()
    assert token not in tab.content() and tab.locator("#new-key").count() == 0
    assert f"tresen_{prefix}_…" in main and "zuletzt benutzt" in main
    shop.shot("api-keys")
    tab.get_by_role("button", name="Widerrufen").click()
    tab.wait_for_url(re.compile(r"/admin/api-keys$"))
    assert shop.dialogs[-1].startswith("Den Schlüssel „Webshop“ widerrufen?")
    assert "ist widerrufen" in tab.locator(".flashes").inner_text()
    refused = tab.request.get(
        f"{shop.url}/api/v1/messages/1", headers={"Authorization": f"Bearer {token}"}
    )
    assert refused.status == 401
