"""Picking an approved template in the browser, in German, on a phone and a desktop: in a
conversation whose 24-hour window has closed, and for a broadcast; the preview filled for
the contact (or the broadcast's first recipient) before anything is sent."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.db import get_db
from bot.models import Broadcast, Contact, Message, utcnow
from tests.browser.conftest import Shop
from tests.test_template_picker import ORDER_READY, WELCOME_BACK, seed

pytestmark = pytest.mark.slow


def add_customer(shop: Shop, name: str, wa_id: str, *, wrote_days_ago: int = 2) -> int:
    with get_db(shop.app).session() as session:
        at = utcnow() - timedelta(days=wrote_days_ago)
        contact = Contact(
            wa_id=wa_id, name=name, opted_in=True, last_inbound_at=at, last_message_at=at
        )
        session.add(contact)
        session.flush()
        return contact.id


def test_pick_a_template_in_a_closed_conversation(shop: Shop) -> None:
    ids = seed(shop.app, ORDER_READY, WELCOME_BACK)
    cid = add_customer(shop, "Anna Berger", "4915112345678")
    tab = shop.go(f"/admin/inbox/{cid}")
    assert "WhatsApp erlaubt jetzt nur eine genehmigte Nachrichtenvorlage" in tab.inner_text("main")
    tab.select_option("#tp-select", value=str(ids["order_ready"]))
    chosen = tab.locator(f".tp-template[data-template='{ids['order_ready']}']")
    assert "Hallo {{1}}, Ihre Bestellung {{2}} ist abholbereit." in chosen.inner_text()
    # {{1}}: the customer's name; {{2}}: a fixed text, typed in.
    chosen.locator("select[name=source_1]").select_option("name")
    chosen.locator("select[name=source_2]").select_option("text")
    chosen.locator("input[name=text_2]").fill("#1234")
    tab.wait_for_function(
        "() => document.querySelector('.tp-preview-body').textContent"
        " === 'Hallo Anna Berger, Ihre Bestellung #1234 ist abholbereit.'"
    )
    assert tab.inner_text(".tp-preview .p-title") == "Vorschau für Anna Berger"
    shop.shot("template-picker-conversation")
    tab.click("#template-form button[type=submit]")
    tab.wait_for_selector(
        "#messages :text('Hallo Anna Berger, Ihre Bestellung #1234 ist abholbereit.')"
    )
    with get_db(shop.app).session() as session:
        sent = session.scalars(select(Message).where(Message.direction == "out")).one()
        assert sent.status == "queued" and sent.payload is not None
        assert sent.payload["template"]["name"] == "order_ready"


def test_a_mismatch_is_shown_and_nothing_is_sent(shop: Shop) -> None:
    ids = seed(shop.app, ORDER_READY)
    cid = add_customer(shop, "Anna Berger", "4915112345678")
    tab = shop.go(f"/admin/inbox/{cid}")
    tab.select_option("#tp-select", value=str(ids["order_ready"]))
    chosen = tab.locator(f".tp-template[data-template='{ids['order_ready']}']")
    chosen.locator("select[name=source_1]").select_option("name")
    chosen.locator("select[name=source_2]").select_option("text")  # and left empty
    tab.click("#template-form button[type=submit]")
    tab.wait_for_selector("#send-error:visible")
    assert "der Wert für {{2}} ist leer" in tab.inner_text("#send-error")
    with get_db(shop.app).session() as session:
        assert session.scalars(select(Message).where(Message.direction == "out")).all() == []


def test_pick_a_template_for_a_broadcast(shop: Shop) -> None:
    ids = seed(shop.app, WELCOME_BACK)
    add_customer(shop, "Berta Klein", "4915111111111")
    add_customer(shop, "Carl Weiß", "4915122222222")
    tab = shop.go("/admin/broadcasts/new")
    tab.check("input[name=kind][value=template]")
    tab.select_option("#tp-select", value=str(ids["welcome_back"]))
    chosen = tab.locator(f".tp-template[data-template='{ids['welcome_back']}']")
    chosen.locator("select[name=source_1]").select_option("name")
    # The preview: the first recipient of the audience.
    tab.wait_for_function(
        "() => document.getElementById('preview-text').textContent"
        " === 'Hallo Berta Klein, wir sind wieder für Sie da!'"
    )
    assert tab.inner_text("#preview-title") == "Vorschau für Berta Klein"
    shop.shot("template-picker-broadcast")
    tab.click("button:has-text('Rundsendung anlegen')")
    tab.wait_for_url(re.compile(r"/admin/broadcasts(/\d+)?$"))
    if tab.is_visible("#confirm"):  # at night or while the shop is closed: confirm
        tab.click("button:has-text('Ja, trotzdem anlegen')")
    tab.wait_for_url(re.compile(r"/admin/broadcasts/\d+$"))
    assert "Die Rundsendung ist angelegt." in tab.inner_text(".flashes")
    with get_db(shop.app).session() as session:
        stored = session.scalars(select(Broadcast)).one()
        assert (stored.template_name, stored.params) == ("welcome_back", ["{{ contact.name }}"])
