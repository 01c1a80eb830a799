"""The owner reads the week-by-week statistics on a phone and on a desktop: the thirty
hand-computed conversations (tests/fixtures/statistics_30.py), a chart and a table that fit."""

from __future__ import annotations

from datetime import UTC

import pytest

from tests.browser.conftest import Shop
from tests.test_admin import Clock
from tests.test_statistics import NOW, store_conversations

pytestmark = pytest.mark.slow


def test_the_weeks_fit_and_say_what_was_computed_by_hand(shop: Shop) -> None:
    store_conversations(shop.app)
    shop.app.config["TRESEN_CLOCK"] = Clock(NOW.astimezone(UTC))
    tab = shop.go("/admin/insights?weeks=4")
    section = tab.locator("section.weekly")
    assert section.locator("h2").inner_text() == "Woche für Woche"
    assert section.locator("svg.weekly-chart rect.median").count() == 4
    assert section.locator("svg.weekly-chart").is_visible()

    rows = section.locator("tbody tr")
    assert rows.count() == 4
    current = rows.nth(0)
    assert "KW 15" in current.locator("th").inner_text()
    assert "(bisher)" in current.locator("th").inner_text()
    w13 = rows.nth(2)
    assert w13.locator("td.received").inner_text().endswith("11")
    assert w13.locator("td.median").inner_text().endswith("40 Min.")
    assert w13.locator("td.p90").inner_text().endswith("54 Std.")
    # On a phone each week is a card of labels and values; on a desktop a table row.
    label = w13.locator("td.median").evaluate("td => getComputedStyle(td, '::before').content")
    assert (label == '"Erste Antwort: Median"') == (shop.size == "phone")

    # Nothing in the section scrolls sideways, the chart included.
    assert section.evaluate("s => s.scrollWidth - s.clientWidth") <= 0
    section.locator("details.definitions summary").click()
    section.get_by_text("dauerte 25 Minuten", exact=False).wait_for()
    section.scroll_into_view_if_needed()
    shop.shot("insights-weekly")
