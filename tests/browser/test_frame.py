"""The frame every admin page shares, in the owner's browser: German, and no page wider than
the screen."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Shop

pytestmark = pytest.mark.slow


def test_the_menu_is_german_and_fits(shop: Shop) -> None:
    tab = shop.go("/admin/inbox")
    assert tab.get_attribute("html", "lang") == "de"
    menu = tab.locator("header.top nav")
    assert "Posteingang" in menu.inner_text()
    shop.fits()
