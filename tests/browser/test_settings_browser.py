"""The settings pages in the owner's browser, in German, on a phone and on a desktop: each
test a shop owner's task from the overview to the saved setting."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.db import get_db
from bot.settings import BusinessSettings
from bot.settings.stored import load_settings
from tests.browser.conftest import Shop

pytestmark = pytest.mark.slow

# Sunday 29 November 2026, 13:00 in Munich: the flower shop is closed until Monday at 9.
SUNDAY = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def preview_says(tab: Any, key: str, text: str) -> None:
    """Wait until the preview `key` shows `text` (the previews are worked out as one types)."""
    tab.wait_for_function(
        '([key, text]) => (document.querySelector(`[data-preview="${key}"]`) || {})'
        ".textContent?.includes(text)",
        arg=[key, text],
    )


def open_section(shop: Shop, title: str) -> Any:
    tab = shop.go("/admin/settings")
    tab.click(f"main .sections a:has-text('{title}')")
    tab.wait_for_url(re.compile(r"/admin/settings/\w+$"))
    return tab


def saved(shop: Shop) -> BusinessSettings:
    with get_db(shop.app).session() as session:
        settings = load_settings(session)
    assert settings is not None
    return settings


def test_set_saturday_hours_and_see_the_preview(shop: Shop) -> None:
    tab = open_section(shop, "Öffnungszeiten")
    assert tab.locator("h1").inner_text() == "Öffnungszeiten"
    preview_says(tab, "week", "Samstag: 09:00–14:00")
    tab.fill("input[name=hours-sat-0-start]", "10:00")
    tab.fill("input[name=hours-sat-0-end]", "16:00")
    preview_says(tab, "week", "Samstag: 10:00–16:00")
    # A customer writing on Saturday at three in the afternoon: now the shop is open.
    tab.fill("input[name=preview_at]", "2026-12-05T15:00")
    preview_says(tab, "custom", "beantwortet von: Begrüßung")
    preview_says(tab, "custom", "Hallo Anna, schön, dass Sie sich bei Blumen Müller melden!")
    shop.shot("settings-hours")
    tab.click("button:has-text('Speichern')")
    tab.locator(".flash", has_text="Gespeichert.").wait_for()
    assert tab.input_value("input[name=hours-sat-0-end]") == "16:00"
    saturday = saved(shop).hours.weekly[5]
    assert [f"{iv.start:%H:%M}-{iv.end:%H:%M}" for iv in saturday] == ["10:00-16:00"]
    assert shop.dialogs == []


def test_add_a_christmas_closure(shop: Shop) -> None:
    tab = open_section(shop, "Feiertage und Schließtage")
    # The empty row after the demo's two closures is there to be filled in.
    tab.fill("input[name=closure-2-from]", "2027-12-24")
    tab.fill("input[name=closure-2-to]", "2027-12-26")
    tab.fill("input[name=closure-2-reason]", "Weihnachten")
    # Christmas Eve 2027 is a Friday: a customer then hears of Monday the 27th.
    tab.fill("input[name=preview_at]", "2027-12-24T10:00")
    preview_says(tab, "custom", "Montag, 27. Dezember, 9 Uhr")
    preview_says(tab, "custom", "beantwortet von: Abwesenheitsnachricht")
    shop.shot("settings-closures")
    tab.click("button:has-text('Speichern')")
    tab.locator(".flash", has_text="Gespeichert.").wait_for()
    closures = saved(shop).hours.closures
    assert (str(closures[-1].start), str(closures[-1].end), closures[-1].reason) == (
        "2027-12-24",
        "2027-12-26",
        "Weihnachten",
    )


def test_write_the_away_text_with_the_next_opening_button(shop: Shop) -> None:
    shop.app.config["TRESEN_CLOCK"] = lambda: SUNDAY
    tab = open_section(shop, "Automatische Antworten")
    area = tab.locator("#away-text")
    area.fill("Hallo")
    area.press("Control+End")
    tab.click("#field-away button:has-text('Name')")
    area.press("Control+End")
    tab.keyboard.type(", wir sind ab ")
    tab.click("#field-away button:has-text('nächste Öffnung')")
    area.press("Control+End")
    tab.keyboard.type(" wieder für Sie da.")
    assert area.input_value() == "Hallo [Name], wir sind ab [nächste Öffnung] wieder für Sie da."
    preview_says(
        tab, "away", "Hallo Anna, wir sind ab Montag, 30. November, 9 Uhr wieder für Sie da."
    )
    # The advanced switch shows the Jinja behind it, and switches back.
    tab.check("input[name=away-advanced]")
    code = tab.locator("#away-jinja")
    code.wait_for()
    assert "{{ next_open | format_opening }}" in code.input_value()
    tab.uncheck("input[name=away-advanced]")
    area.wait_for()
    assert area.input_value().endswith("[nächste Öffnung] wieder für Sie da.")
    shop.shot("settings-answers")
    tab.click("button:has-text('Speichern')")
    tab.locator(".flash", has_text="Gespeichert.").wait_for()
    assert saved(shop).templates["away"] == (
        "Hallo{% if contact.name %} {{ contact.name }}{% endif %}, wir sind ab "
        "{{ next_open | format_opening }} wieder für Sie da."
    )
    assert shop.dialogs == []


def test_add_a_keyword_with_its_answer(shop: Shop) -> None:
    tab = open_section(shop, "Stichwörter")
    rule = tab.locator("#field-kw-3")
    rule.locator("input[name=kw-3-match]").fill("weihnachten, heiligabend")
    rule.locator("#kw-3-text").fill("An Weihnachten haben wir geschlossen. Ab ")
    rule.locator("#kw-3-text").press("Control+End")
    rule.locator("button:has-text('nächste Öffnung')").click()
    rule.locator("#kw-3-text").press("Control+End")
    tab.keyboard.type(" sind wir wieder da.")
    tab.fill("input[name=preview_text]", "Habt ihr an Weihnachten offen?")
    preview_says(tab, "custom", "beantwortet von: Stichwort")
    preview_says(tab, "custom", "An Weihnachten haben wir geschlossen. Ab ")
    preview_says(tab, "kw-3", "An Weihnachten haben wir geschlossen.")
    shop.shot("settings-keywords")
    tab.click("button:has-text('Speichern')")
    tab.locator(".flash", has_text="Gespeichert.").wait_for()
    assert tab.input_value("input[name=kw-3-match]") == "weihnachten, heiligabend"
    assert tab.input_value("#kw-3-text").startswith("An Weihnachten haben wir")
    settings = saved(shop)
    assert settings.keywords[3].match == ("weihnachten", "heiligabend")
    assert "format_opening" in settings.templates[settings.keywords[3].template]


def test_a_refused_save_opens_at_the_summary_and_leads_to_the_field(shop: Shop) -> None:
    tab = shop.go("/admin/settings/hours")
    tab.fill("input[name=hours-tue-0-end]", "")
    tab.click("button:has-text('Speichern')")
    summary = tab.locator("#error-summary")
    summary.wait_for()
    assert "Nicht gespeichert" in summary.inner_text()
    tab.wait_for_function("() => document.activeElement.id === 'error-summary'")
    assert summary.bounding_box()["y"] < 844
    shop.shot("settings-refused")
    summary.locator("a:has-text('Dienstag')").click()
    tab.wait_for_function("() => document.activeElement.closest('#field-hours-tue') !== null")


def test_leaving_with_unsaved_changes_asks_first(shop: Shop) -> None:
    tab = shop.go("/admin/settings/business")
    tab.fill("input[name=name]", "Blumen Maier")
    tab.click("header nav a:has-text('Posteingang')")
    tab.wait_for_url(re.compile(r"/admin/inbox"))
    assert shop.dialogs == [
        "Sie haben Änderungen, die noch nicht gespeichert sind. Trotzdem verlassen?"
    ]
    assert saved(shop).name == "Blumen Müller"


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/admin/settings", "settings"),
        ("/admin/settings/business", "settings-business"),
        ("/admin/settings/hours", "settings-hours-page"),
        ("/admin/settings/closures", "settings-closures-page"),
        ("/admin/settings/answers", "settings-answers-page"),
        ("/admin/settings/keywords", "settings-keywords-page"),
        ("/admin/settings/yaml", "settings-yaml"),
    ],
)
def test_every_settings_page_fits_the_screen(shop: Shop, path: str, name: str) -> None:
    tab = shop.go(path)
    tab.wait_for_load_state("networkidle")
    shop.shot(name)
