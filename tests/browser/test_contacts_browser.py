"""The shop owner's contacts and labels in the browser: import a CSV and find a contact by
surname, label three contacts at once, rename and recolour a label."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import Shop

pytestmark = pytest.mark.slow

CUSTOMERS = (
    "wa_id;name;labels;opted_in\n"
    "0151 23456789;Klaus Becker;Neuer Kunde;ja\n"
    "0151 2345678;Zu Kurz;;ja\n"
    "+49 160 11111111;Berta Blume;;ja\n"
    "+43 664 1234567;Anna Huber;;nein\n"
    "0171 5555555 5;Carla Dorn;Bezahlt;ja\n"
)


def import_customers(shop: Shop) -> None:
    tab = shop.go("/admin/contacts")
    tab.get_by_role("link", name="CSV importieren").click()
    tab.set_input_files(
        "input[type=file]",
        files=[{"name": "kunden.csv", "mimeType": "text/csv", "buffer": CUSTOMERS.encode()}],
    )
    tab.get_by_role("button", name="Importieren").click()
    tab.wait_for_selector("#report")


def test_import_a_csv_and_find_a_contact_by_surname(shop: Shop) -> None:
    import_customers(shop)
    tab = shop.tab
    report = tab.locator("#report").inner_text()
    assert "4 Kontakte importiert" in report
    assert "Zeile 3: „0151 2345678“ ist zu kurz für eine Telefonnummer" in report
    assert "1 fehlerhafte Zeile übersprungen" in report
    shop.shot("contacts-import")

    tab.get_by_role("link", name="Kontakte zeigen").click()
    tab.get_by_label("Suchen", exact=True).fill("Becker")
    tab.get_by_role("button", name="Suchen").click()
    names = tab.locator(".contact-list .name").all_inner_texts()
    assert names == ["Klaus Becker"]
    assert "+49 1512 3456789" in tab.locator(".contact-list").inner_text()
    shop.shot("contacts-search")

    tab.get_by_role("link", name=re.compile("Klaus Becker")).click()
    assert tab.locator("h1").inner_text() == "Klaus Becker"
    assert tab.get_by_role("link", name="Unterhaltung öffnen").is_visible()
    assert "Neuer Kunde" in tab.locator(".contact-head .chips").inner_text()
    assert "CSV-Import" in tab.locator("table.consent").inner_text()
    shop.shot("contact")

    tab.get_by_role("link", name="Kontakt bearbeiten").click()
    tab.get_by_label("Handynummer").fill("0151 2345678")
    tab.get_by_role("button", name="Speichern").click()
    assert "Fehlt eine Ziffer?" in tab.locator(".error-summary").inner_text()
    shop.shot("contact-edit")


def test_select_three_contacts_and_give_them_a_label(shop: Shop) -> None:
    import_customers(shop)
    tab = shop.go("/admin/contacts")
    shop.shot("contacts")
    for name in ("Anna Huber", "Berta Blume", "Klaus Becker"):
        tab.get_by_role("checkbox", name=f"{name} auswählen").check()
    tab.get_by_label("Label für die ausgewählten Kontakte").fill("Adventskranz")
    tab.get_by_role("button", name="Label vergeben").click()
    assert "Label „Adventskranz“ an 3 Kontakte vergeben." in tab.locator(".flashes").inner_text()
    tab.locator("select[name=label]").select_option("Adventskranz")
    tab.get_by_role("button", name="Suchen").click()
    names = tab.locator(".contact-list .name").all_inner_texts()
    assert names == ["Anna Huber", "Berta Blume", "Klaus Becker"]
    assert tab.locator(".contact-list .chip", has_text="Adventskranz").count() == 3
    shop.shot("contacts-labelled")

    # Select all, then take the label from everyone shown.
    tab.get_by_label("Alle auswählen").check()
    assert tab.locator("input[name=contact]:checked").count() == 3
    tab.get_by_label("Label für die ausgewählten Kontakte").fill("adventskranz")
    tab.get_by_role("button", name="Label entfernen").click()
    assert "bei 3 Kontakten entfernt" in tab.locator(".flashes").inner_text()


def test_rename_recolour_and_delete_a_label(shop: Shop) -> None:
    tab = shop.go("/admin/labels")
    chips = tab.locator(".label-list .chip").all_inner_texts()
    assert chips == [
        "Bestellung abgeschlossen",
        "Bezahlt",
        "Neue Bestellung",
        "Neuer Kunde",
        "Zahlung ausstehend",
    ]
    shop.shot("labels")
    paid = tab.locator(".label-list li", has_text="Bezahlt")
    paid.locator("summary").click()
    paid.get_by_label("Name").fill("Bezahlt (bar)")
    paid.locator(".colour-pick[title=Lila]").click()
    shop.shot("labels-edit")
    paid.get_by_role("button", name="Speichern").click()
    assert "Label „Bezahlt (bar)“ gespeichert." in tab.locator(".flashes").inner_text()
    renamed = tab.locator(".label-list .chip", has_text="Bezahlt (bar)")
    assert "c-purple" in (renamed.get_attribute("class") or "")

    tab.get_by_label("Name").last.fill("Hochzeit")
    tab.locator(".new-label .colour-pick[title=Rosa]").click()
    tab.get_by_role("button", name="Label anlegen").click()
    assert "c-pink" in (tab.locator(".chip", has_text="Hochzeit").get_attribute("class") or "")

    wedding = tab.locator(".label-list li", has_text="Hochzeit")
    wedding.locator("summary").click()
    wedding.get_by_role("button", name="Label löschen").click()
    tab.wait_for_selector(".flashes")
    assert shop.dialogs == ["Label „Hochzeit“ löschen? 0 Kontakte verlieren es."]
    assert "Hochzeit" not in tab.locator(".label-list").inner_text()
