"""A shop owner's task across two pages, as one: label three contacts on the contacts page, then
send exactly them a weekly broadcast, written without code."""

from __future__ import annotations

import re

import pytest

from tests.browser.conftest import Shop
from tests.browser.test_contacts_browser import import_customers

pytestmark = pytest.mark.slow


def test_label_three_contacts_and_send_them_a_weekly_broadcast(shop: Shop) -> None:
    import_customers(shop)
    tab = shop.go("/admin/contacts")
    for name in ("Anna Huber", "Berta Blume", "Klaus Becker"):
        tab.get_by_role("checkbox", name=f"{name} auswählen").check()
    tab.get_by_label("Label für die ausgewählten Kontakte").fill("Tulpenfreunde")
    tab.get_by_role("button", name="Label vergeben").click()
    assert "an 3 Kontakte vergeben" in tab.locator(".flashes").inner_text()

    tab.get_by_role("link", name="Rundsendungen").first.click()
    tab.click("text=Neue Rundsendung")
    tab.wait_for_url(re.compile(r"/admin/broadcasts/new$"))
    tab.select_option("select[name=audience]", label="Tulpenfreunde")
    # Anna Huber is not opted in: the two others get it.
    tab.wait_for_selector("#recipients-text[data-count='2']")
    tab.fill("textarea[name=text]", "Hallo")
    tab.click("button[data-insert='[Name]']")
    tab.press("textarea[name=text]", "End")
    tab.type("textarea[name=text]", ", die Tulpen sind da!")
    tab.wait_for_function(
        "() => /^Hallo (Berta Blume|Klaus Becker), die Tulpen sind da!$/"
        ".test(document.getElementById('preview-text').textContent)"
    )
    tab.check("input[name=when][value=weekly]")
    tab.check("label.day:has(input[value=sat])")
    tab.fill("input[name=weekly_time]", "09:30")
    tab.click("button:has-text('Rundsendung anlegen')")
    tab.wait_for_url(re.compile(r"/admin/broadcasts(/\d+)?$"))
    if tab.is_visible("#confirm"):
        tab.click("button:has-text('Ja, trotzdem anlegen')")
    tab.wait_for_url(re.compile(r"/admin/broadcasts/\d+$"))
    page = tab.inner_text("main")
    assert "Jede Woche Sa. um 09:30 Uhr" in page
    assert "Hallo [Name], die Tulpen sind da!" in page
    shop.fits()
