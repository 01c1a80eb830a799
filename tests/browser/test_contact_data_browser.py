"""A customer's data in the browser: the owner downloads it from the contact page, then
erases the contact after typing the number again."""

from __future__ import annotations

import json
import re
import zipfile

import pytest

from tests.browser.conftest import Shop
from tests.browser.test_contacts_browser import import_customers

pytestmark = pytest.mark.slow


def test_download_and_erase_a_customers_data(shop: Shop) -> None:
    import_customers(shop)
    tab = shop.go("/admin/contacts")
    tab.get_by_role("link", name=re.compile("Klaus Becker")).click()
    shop.shot("contact-data")

    with tab.expect_download() as waiting:
        tab.get_by_role("link", name="Daten herunterladen (ZIP)").click()
    download = waiting.value
    assert download.suggested_filename.startswith("4915123456789-")
    with zipfile.ZipFile(download.path()) as archive:
        doc = json.loads(archive.read("contact.json"))
    assert (doc["contact"]["wa_id"], doc["contact"]["name"]) == ("4915123456789", "Klaus Becker")
    assert doc["contact"]["labels"] == ["Neuer Kunde"]

    tab.get_by_role("link", name="Daten löschen…").click()
    field = tab.get_by_label(re.compile("Zur Bestätigung die Nummer"))
    field.fill("0151 999")
    tab.get_by_role("button", name="Endgültig löschen").click()
    assert "Geben Sie zur Bestätigung" in tab.locator(".flashes").inner_text()
    shop.shot("contact-erase")
    tab.get_by_label(re.compile("Zur Bestätigung die Nummer")).fill("+49 151 23456789")
    tab.get_by_role("button", name="Endgültig löschen").click()
    assert "Kontakt gelöscht." in tab.locator(".flashes").inner_text()
    names = tab.locator(".contact-list .name").all_inner_texts()
    assert "Klaus Becker" not in names and "Anna Huber" in names
