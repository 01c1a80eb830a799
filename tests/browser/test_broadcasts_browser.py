"""A shop owner's broadcasts in the browser, in German, on a phone and a desktop: send three
regular customers a weekly broadcast, be warned before a broadcast at night, and read how many
read the last broadcast."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot import broadcasts
from bot.contacts.audiences import parse_audience
from bot.db import get_db
from bot.models import Message, utcnow
from tests.browser.conftest import Shop
from tests.conftest import post_notification
from tests.payloads import status_notification
from tests.test_admin_broadcasts import REGULARS, import_csv

pytestmark = pytest.mark.slow


def shot(shop: Shop, name: str) -> None:
    """A screenshot from the top of the page, where the menu is."""
    shop.tab.evaluate("window.scrollTo(0, 0)")
    shop.shot(name)


def test_send_three_regulars_a_weekly_broadcast(shop: Shop) -> None:
    import_csv(shop.app, REGULARS, at=utcnow())
    tab = shop.go("/admin/broadcasts")
    tab.click("text=Neue Rundsendung")
    tab.wait_for_url(re.compile(r"/admin/broadcasts/new$"))
    # 1. Who: the label, spelled as the shop spelled it first.
    tab.select_option("select[name=audience]", label="Stammkunde")
    tab.wait_for_selector("#recipients-text[data-count='3']")
    assert tab.inner_text("#recipients-text") == "3 Kontakte bekommen diese Rundsendung."
    # 2. What: a text with the customer's name, previewed for the first of the three.
    # Written without code: the name is a placeholder the button puts in.
    tab.fill("textarea[name=text]", "Hallo")
    tab.click("button[data-insert='[Name]']")
    tab.press("textarea[name=text]", "End")
    tab.type("textarea[name=text]", ", die Tulpen sind da!")
    assert tab.input_value("textarea[name=text]") == "Hallo [Name], die Tulpen sind da!"
    tab.wait_for_function(
        "() => document.getElementById('preview-text').textContent"
        " === 'Hallo Anna Berger, die Tulpen sind da!'"
    )
    assert tab.inner_text("#preview-title") == "Vorschau für Anna Berger"
    # 3. When: every Monday and Thursday at 10:00.
    assert not tab.is_visible("input[name=weekly_time]")
    tab.check("input[name=when][value=weekly]")
    tab.check("label.day:has(input[value=mon])")
    tab.check("label.day:has(input[value=thu])")
    tab.fill("input[name=weekly_time]", "10:00")
    tab.wait_for_function(
        "() => document.getElementById('when-text').textContent"
        ".startsWith('Geht jeden Mo., Do. um 10:00 Uhr raus')"
    )
    shot(shop, "broadcast-new")
    tab.click("button:has-text('Rundsendung anlegen')")
    # Around Christmas a Monday or Thursday may fall on a closed day: confirm it then.
    tab.wait_for_url(re.compile(r"/admin/broadcasts(/\d+)?$"))
    if tab.is_visible("#confirm"):
        tab.click("button:has-text('Ja, trotzdem anlegen')")
    tab.wait_for_url(re.compile(r"/admin/broadcasts/\d+$"))
    assert "Die Rundsendung ist angelegt." in tab.inner_text(".flashes")
    assert "Jede Woche Mo., Do. um 10:00 Uhr" in tab.inner_text("main")
    tab.click("text=← Alle Rundsendungen")
    coming = tab.locator("#coming .broadcast").first
    text = coming.inner_text()
    assert "Hallo [Name], die Tulpen sind da!" in text
    assert "Stammkunde" in text and "Jede Woche Mo., Do. um 10:00 Uhr" in text
    assert "Geplant" in text and "Nächster Versand:" in text
    shot(shop, "broadcasts-list")
    # Cancelling asks first, in German.
    coming.locator("button:has-text('Rundsendung abbrechen')").click()
    tab.locator(".flash", has_text="abgebrochen").wait_for()
    assert shop.dialogs and shop.dialogs[0].startswith("Diese Rundsendung abbrechen?")
    assert "Abgebrochen" in tab.inner_text("main")


def test_a_broadcast_at_night_is_warned_about_and_confirmed(shop: Shop) -> None:
    import_csv(shop.app, REGULARS, at=utcnow())
    tab = shop.go("/admin/broadcasts/new")
    tab.fill("textarea[name=text]", "Gute Nacht!")
    tab.check("input[name=when][value=at]")
    tomorrow = datetime.now(UTC).date().toordinal() + 1
    day = datetime.fromordinal(tomorrow).strftime("%Y-%m-%d")
    tab.fill("input[name=at]", f"{day}T23:00")
    # The warning is checked again for the time typed: wait for that answer, not the one for
    # the moment the choice "at" was made (which is night only when the test runs at night).
    tab.wait_for_function(
        "() => !document.getElementById('quiet').hidden"
        " && document.getElementById('quiet').textContent.includes('23:00 ist nachts')"
    )
    tab.click("button:has-text('Rundsendung anlegen')")
    confirm = tab.locator("#confirm")
    confirm.wait_for()
    assert "Zu dieser Zeit senden?" in confirm.inner_text()
    assert "23:00 ist nachts" in confirm.inner_text()
    shot(shop, "broadcast-confirm")
    confirm.locator("button:has-text('Ja, trotzdem anlegen')").click()
    tab.wait_for_url(re.compile(r"/admin/broadcasts/\d+$"))
    assert "Die Rundsendung ist angelegt." in tab.inner_text(".flashes")


def sent_to_regulars(shop: Shop) -> int:
    """A template to the three regulars, accepted by the Graph API; then WhatsApp reports it
    delivered to all three and read by two of them, as its status notifications do."""
    app = shop.app
    now = utcnow()
    import_csv(app, REGULARS, at=now)
    with get_db(app).session() as session:
        created = broadcasts.create(
            session,
            broadcasts.Content(template="tulpen", language="de", params=("{{ contact.name }}",)),
            parse_audience("label:Stammkunde"),
            timezone="Europe/Berlin",
            now=now,
        )
        broadcast_id = created.id
        run_id = broadcasts.start_run(session, broadcast_id, now, now)
    assert run_id is not None
    broadcasts.write_run(get_db(app), run_id, clock=utcnow)
    with get_db(app).session() as session:
        messages = session.scalars(
            select(Message).where(Message.broadcast_run_id == run_id).order_by(Message.id)
        ).all()
        assert len(messages) == 3
        wamids = []
        for i, message in enumerate(messages):
            message.status, message.wamid, message.sent_at = "sent", f"wamid.T{i}{run_id}", now
            wamids.append(message.wamid)
    client = app.test_client()
    stamp = int(time.time())
    for i, wamid in enumerate(wamids):
        post_notification(client, status_notification(wamid, "delivered", stamp))
        if i < 2:
            post_notification(client, status_notification(wamid, "read", stamp + 1))
    return broadcast_id


def test_read_how_many_read_the_last_broadcast(shop: Shop) -> None:
    broadcast_id = sent_to_regulars(shop)
    tab = shop.go("/admin/broadcasts")
    past = tab.locator("#past .broadcast").first
    assert "3 Empfänger · 2 gelesen (67\xa0%)" in past.inner_text()
    shot(shop, "broadcasts-list-sent")
    past.locator("h3 a").click()
    tab.wait_for_url(re.compile(rf"/admin/broadcasts/{broadcast_id}$"))
    read = tab.locator(".funnel-row[data-key=read]")
    assert read.locator(".f-label").inner_text() == "Gelesen"
    assert read.locator(".f-count").inner_text() == "2"
    assert read.locator(".f-share").inner_text() == "67\xa0%"
    delivered = tab.locator(".funnel-row[data-key=delivered]")
    assert delivered.locator(".f-count").inner_text() == "3"
    recipients = tab.inner_text("#recipients")
    for name in ("Anna Berger", "Klaus Becker", "Carla Vogt"):
        assert name in recipients
    assert "Gelesen" in recipients and "Zugestellt" in recipients
    shot(shop, "broadcast-page")
