"""Accounts in the owner's browser: a new password, a colleague added to the team who logs in,
English for one user, and the login and error pages, at a phone's and a desktop's size."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import PASSWORD, Shop, log_in

pytestmark = pytest.mark.slow


def test_the_owner_changes_the_password_and_logs_in_with_it(shop: Shop) -> None:
    tab = shop.go("/admin/account")
    assert tab.get_attribute("html", "lang") == "de"
    shop.shot("account")
    tab.get_by_label("Bisheriges Passwort").fill(PASSWORD)
    tab.get_by_label("Neues Passwort", exact=True).fill("Tulpen im Frühling 26")
    tab.get_by_label("Neues Passwort wiederholen").fill("Tulpen im Frühling 26")
    tab.get_by_role("button", name="Passwort ändern").click()
    assert "Ihr Passwort ist geändert" in tab.locator(".flashes").inner_text()
    tab.get_by_role("button", name="Abmelden").click()
    tab.wait_for_url(re.compile(r"/admin/login"))
    assert "Sie sind abgemeldet." in tab.locator(".flashes").inner_text()
    shop.shot("login")
    tab.fill("input[name=name]", "owner")
    tab.fill("input[name=password]", PASSWORD)  # the old one: refused
    tab.click("button[type=submit]")
    assert "Benutzername oder Passwort ist falsch." in tab.locator("p.error").inner_text()
    tab.fill("input[name=password]", "Tulpen im Frühling 26")
    tab.click("button[type=submit]")
    tab.wait_for_url(re.compile(r"/admin/inbox"))


def test_the_owner_adds_a_colleague_who_logs_in(shop: Shop) -> None:
    tab = shop.go("/admin/account")
    tab.get_by_role("link", name="Team: Zugänge anlegen und entfernen").click()
    tab.wait_for_url(re.compile(r"/admin/users"))
    tab.get_by_label("Benutzername (ohne Leerzeichen)").fill("lena")
    tab.get_by_role("button", name="Anlegen").click()
    assert "lena ist angelegt" in tab.locator(".created").inner_text()
    password = tab.locator(".created code.password").inner_text().strip()
    assert len(password) >= 8
    shop.shot("team")
    # Lena, on her own phone.
    context = tab.context.browser.new_context(viewport=tab.viewport_size, locale="de-DE")
    lena = context.new_page()
    log_in(lena, shop.url, "lena", password)
    lena.goto(f"{shop.url}/admin/account")
    assert "Mitarbeiter/in" in lena.locator("main").inner_text()
    assert lena.get_by_role("link", name="Team: Zugänge anlegen und entfernen").count() == 0
    refused = lena.goto(f"{shop.url}/admin/users")
    assert refused is not None and refused.status == 403
    assert "Nicht erlaubt" in lena.locator("h1").inner_text()
    shop.tab, own_tab = lena, shop.tab
    shop.shot("forbidden")
    shop.tab = own_tab
    # The owner removes her again: asked first, and she is logged out at once.
    tab.reload()
    tab.get_by_role("button", name="Entfernen").click()
    tab.wait_for_url(re.compile(r"/admin/users$"))
    assert shop.dialogs == ["lena entfernen? Die Anmeldung endet sofort."]
    assert "lena ist entfernt" in tab.locator(".flashes").inner_text()
    lena.goto(f"{shop.url}/admin/inbox")
    assert "/admin/login" in lena.url
    context.close()


def test_a_user_switches_to_english(shop: Shop) -> None:
    tab = shop.go("/admin/account")
    tab.get_by_label("English").check()
    tab.get_by_role("button", name="Sprache speichern").click()
    tab.wait_for_url(re.compile(r"/admin/account$"))
    assert tab.get_attribute("html", "lang") == "en"
    assert "The language is saved." in tab.locator(".flashes").inner_text()
    assert "Your account" in tab.locator("h1").inner_text()
    assert "Inbox" in tab.locator("header.top nav").inner_text()
    shop.shot("account-english")


def test_an_unknown_page_is_in_the_admins_look(shop: Shop) -> None:
    answer = shop.tab.goto(f"{shop.url}/admin/kontakte-alt")
    assert answer is not None and answer.status == 404
    tab = shop.tab
    assert "Seite nicht gefunden" in tab.locator("h1").inner_text()
    assert tab.locator("header.top nav").count() == 1
    shop.shot("not-found")
    tab.get_by_role("link", name="Zum Posteingang").click()
    tab.wait_for_url(re.compile(r"/admin/inbox"))


def test_a_colleague_joins_by_invitation_and_the_owner_reads_the_audit_log(shop: Shop) -> None:
    tab = shop.go("/admin/users")
    tab.get_by_label("Mitarbeiter/in darf Rundsendungen erstellen und abbrechen").first.uncheck()
    tab.get_by_role("button", name="Einladungslink erstellen").click()
    link = tab.locator("#invite-link").input_value()
    assert "/admin/join/" in link
    tab.get_by_role("button", name="Link kopieren").click()
    tab.get_by_role("button", name="Kopiert").wait_for()  # the clipboard answers later
    shop.shot("team-invited")
    # Mia opens the link on her phone and chooses her name and password.
    context = tab.context.browser.new_context(viewport=tab.viewport_size, locale="de-DE")
    mia = context.new_page()
    mia.goto(link)
    mia.get_by_label("Benutzername (ohne Leerzeichen)").fill("mia")
    mia.get_by_label("Passwort", exact=True).fill("Mias Passwort 1")
    mia.get_by_label("Passwort wiederholen").fill("Mias Passwort 1")
    mia.get_by_role("button", name="Beitreten").click()
    mia.wait_for_url(re.compile(r"/admin/inbox"))
    assert "Willkommen, mia" in mia.locator(".flashes").inner_text()
    menu = mia.locator("header.top nav").inner_text()
    assert "Posteingang" in menu and "Einstellungen" not in menu
    mia.goto(f"{shop.url}/admin/broadcasts")
    assert mia.get_by_role("link", name="Neue Rundsendung").count() == 0
    # The link works once.
    again = context.new_page()
    answer = again.goto(link)
    assert answer is not None and answer.status == 404
    # The owner deactivates her: she is logged out at once.
    tab.goto(f"{shop.url}/admin/users")
    tab.locator("li", has_text="mia").get_by_role("button", name="Deaktivieren").click()
    tab.wait_for_url(re.compile(r"/admin/users$"))
    assert "mia ist deaktiviert" in tab.locator(".flashes").inner_text()
    shop.fits()
    mia.goto(f"{shop.url}/admin/inbox")
    assert "/admin/login" in mia.url
    context.close()
    # And reads who did what.
    tab.goto(f"{shop.url}/admin/account")
    tab.get_by_role("link", name="Protokoll").click()
    tab.wait_for_url(re.compile(r"/admin/audit"))
    log = tab.locator("ol.audit-log").inner_text()
    for said in (
        "hat einen Einladungslink erstellt",
        "ist per Einladung dem Team beigetreten",
        "hat einen Zugang deaktiviert",
    ):
        assert said in log
    shop.shot("audit")
