"""Writing a new template in the owner's browser (console mode keeps it as a demo): the name
gets a suggestion WhatsApp takes, an example field appears for each variable as it is typed,
a button row shows the fields of its kind, at a phone's and a desktop's size."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Shop

pytestmark = pytest.mark.slow


def test_the_owner_writes_a_template_with_its_examples(shop: Shop) -> None:
    tab = shop.go("/admin/templates/new")
    tab.locator("#template-name").fill("Wir sind zurück")
    suggestion = tab.locator("#name-suggestion")
    assert "wir_sind_zurueck" in suggestion.inner_text()
    suggestion.get_by_role("button", name="Diesen Namen verwenden").click()
    assert tab.locator("#template-name").input_value() == "wir_sind_zurueck"
    assert suggestion.is_hidden()

    body = tab.locator("#template-body")
    body.fill("Hallo {{vorname}}, wir sind wieder da. Frag nach deiner Bestellung {{nummer}} gern.")
    tab.get_by_label("Beispiel für {{vorname}}").fill("Anna")
    tab.get_by_label("Beispiel für {{nummer}}").fill("4711")
    # A variable taken out again takes its field with it.
    body.fill("Hallo {{vorname}}, wir sind wieder da und freuen uns auf dich.")
    assert tab.get_by_label("Beispiel für {{nummer}}").count() == 0
    assert tab.get_by_label("Beispiel für {{vorname}}").input_value() == "Anna"

    kind = tab.locator("select[name=button-0-kind]")
    link = tab.locator("input[name=button-0-url]")
    assert link.is_hidden()
    kind.select_option("url")
    assert link.is_visible()
    kind.select_option("quick_reply")
    assert link.is_hidden()
    tab.locator("input[name=button-0-text]").fill("Danke!")
    tab.get_by_role("button", name="Schaltfläche hinzufügen").click()
    assert tab.locator("select[name=button-1-kind]").is_visible()
    shop.shot("template-new")

    tab.get_by_role("button", name="Als Demo-Vorlage speichern").click()
    tab.wait_for_load_state("load")
    assert "als Demo gespeichert" in tab.locator(".flashes").inner_text()
