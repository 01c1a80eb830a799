"""Meta pauses a template: the shop owner sees the notice on whatever page is open, finds the
scheduled broadcast with it flagged, and dismisses the notice; in German, on a phone and a
desktop."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from bot import broadcasts
from bot.contacts.audiences import parse_audience
from bot.db import get_db
from bot.models import MessageTemplate, utcnow
from tests.browser.conftest import Shop
from tests.conftest import post_notification
from tests.payloads import template_status

pytestmark = pytest.mark.slow


def test_a_paused_template_is_told_and_its_scheduled_broadcast_flagged(shop: Shop) -> None:
    at = utcnow()
    with get_db(shop.app).session() as session:
        session.add(
            MessageTemplate(
                meta_id="1234567890",
                name="fruehlingsangebot",
                language="de",
                category="marketing",
                status="approved",
                quality="green",
                parameter_format="positional",
                components=[{"type": "BODY", "text": "Hallo {{1}}, die Tulpen sind da!"}],
                origin="synced",
                synced_at=at,
                updated_at=at,
            )
        )
        coming = broadcasts.create(
            session,
            broadcasts.Content(template="fruehlingsangebot", language="de", params=("Anna",)),
            parse_audience("all"),
            timezone="Europe/Berlin",
            now=at,
            at=at + timedelta(days=2),
        ).id
    response = post_notification(
        shop.app.test_client(),
        template_status("PAUSED", name="fruehlingsangebot", reason="LOW_QUALITY_RATING"),
    )
    assert response.status_code == 200

    # The inbox is open: the notice is there, naming the broadcast it concerns.
    tab = shop.go("/admin/inbox")
    notice = tab.locator(".notices .notice-template_paused")
    assert "Meta hat die Vorlage fruehlingsangebot (de) pausiert" in notice.inner_text()
    shop.shot("template-paused-notice")

    # The broadcast's card and its own page say why it will not go out.
    notice.locator(f"a[href$='/admin/broadcasts/{coming}']").click()
    tab.wait_for_url(re.compile(rf"/admin/broadcasts/{coming}$"))
    flag = tab.locator(".summary .template-flag")
    assert "Diese Rundsendung kann nicht rausgehen" in flag.inner_text()
    shop.shot("template-paused-broadcast")
    tab = shop.go("/admin/broadcasts")
    card = tab.locator(f"article.broadcast[data-id='{coming}']")
    assert "pausiert" in card.locator(".template-flag").inner_text()
    shop.fits()

    # Dismissed: gone from every page, still listed on the notices page.
    tab.locator(".notices .notice-template_paused button").click()
    tab.wait_for_selector(".flash")
    assert tab.locator(".notices .notice").count() == 0
    assert "pausiert" in card.locator(".template-flag").inner_text()  # the flag stays
    tab = shop.go("/admin/notices")
    assert "ausgeblendet von owner" in tab.inner_text("main")
