"""Two people at one counter, in two browsers: the owner assigns Anna's conversation to Berta;
Berta, with the inbox open, hears of Anna's next message (tab title, notification) and finds it
under "Meine"; she writes a note for the team, then answers Anna; Anna's next message gets no
away reply during the pause, while Karl, who nobody answered, still gets one; the owner reads
all of it in the audit log. At a phone's and a desktop's size."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from textwrap import dedent
from typing import Any

import pytest
from sqlalchemy import select

from bot import users
from bot.db import get_db
from bot.models import Contact, Direction, Message, Note
from bot.settings.stored import save_settings
from tests.browser.conftest import PASSWORD, SIZES, Shop, log_in
from tests.browser.test_inbox_browser import customer_writes

pytestmark = pytest.mark.slow

ANNA, KARL = "4915112345678", "4917612345678"

# Closed all week: every message would get the away reply, each time (no cooldown), unless a
# person has answered the contact within the pause.
CLOSED = dedent(
    """\
    business: {name: Blumen Müller, timezone: Europe/Berlin, locale: de_DE}
    hours: {}
    replies:
      away: {template: away, cooldown_hours: 0}
      human_pause_minutes: 120
    templates:
      away: "Wir sind gerade nicht da."
    """
)

# A stand-in for the browser's notifications that records them; and a tab that can be told it
# is in the background, as when Berta's phone shows another app.
RECORD_NOTIFICATIONS = """
window.__notes = [];
window.Notification = function (title, options) {
  window.__notes.push({title: title, body: (options || {}).body});
  this.close = function () {};
};
window.Notification.permission = "granted";
window.Notification.requestPermission = function () { return Promise.resolve("granted"); };
window.__hidden = false;
Object.defineProperty(document, "hidden", {get: function () { return window.__hidden; }});
"""


@pytest.fixture
def berta(shop: Shop, chromium: Any) -> Iterator[Any]:
    """Berta's own browser (staff), at the same size as the owner's."""
    users.add_user(get_db(shop.app), "berta", PASSWORD, role=users.Role.STAFF, now=_now())
    context = chromium.new_context(viewport=SIZES[shop.size], locale="de-DE")
    context.set_default_timeout(10_000)
    context.add_init_script(RECORD_NOTIFICATIONS)
    tab = context.new_page()
    log_in(tab, shop.url, "berta")
    yield tab
    context.close()


def _now() -> datetime:
    return datetime.now(UTC)


def replies_to(shop: Shop, wa_id: str) -> list[str | None]:
    """The rules of the automatic replies this customer got, oldest first."""
    with get_db(shop.app).session() as session:
        contact = session.scalars(select(Contact).where(Contact.wa_id == wa_id)).one()
        rows = session.scalars(
            select(Message.rule)
            .where(Message.contact_id == contact.id, Message.direction == Direction.OUT)
            .order_by(Message.id)
        )
        return list(rows)


def test_two_people_answer_together(shop: Shop, berta: Any) -> None:
    with get_db(shop.app).session() as session:
        save_settings(session, CLOSED)
    customer_writes(shop.app, "Ist mein Strauß fertig?", name="Anna", wa_id=ANNA)
    assert replies_to(shop, ANNA) == ["away"]

    # Berta waits with her inbox open; nothing is hers yet.
    berta.goto(f"{shop.url}/admin/inbox?view=mine")
    assert berta.locator(".conversations .name").count() == 0

    # The owner gives Anna's conversation to Berta, whose tab is in the background: her page
    # hears of it at once, lists it under "Meine" and notifies her.
    berta.evaluate("window.__hidden = true")
    tab = shop.go("/admin/inbox")
    tab.locator(".conversations a", has_text="Anna").click()
    tab.wait_for_url(re.compile(r"/admin/inbox/\d+$"))
    with tab.expect_navigation():
        tab.select_option("#assign-user", label="berta")
    assert tab.locator("#assign-user option:checked").text_content() == "berta"
    shop.fits()
    berta.locator(".conversations .name", has_text="Anna").wait_for()
    berta.wait_for_function("() => window.__notes.length > 0")
    assert berta.evaluate("window.__notes[0]") == {
        "title": "Anna",
        "body": "owner hat Ihnen das Gespräch zugewiesen",
    }

    # Anna writes again: counted in Berta's tab title, and told.
    customer_writes(shop.app, "Und kann ich ihn heute abholen?", name="Anna", wa_id=ANNA)
    try:
        berta.wait_for_function("() => /^\\(1\\) /.test(document.title)")
    except Exception:
        raise AssertionError(berta.title()) from None
    berta.wait_for_function("() => window.__notes.length > 1")
    note = berta.evaluate("window.__notes[1]")
    assert note["title"] == "Anna"
    assert "heute abholen" in note["body"]
    berta.evaluate("window.__hidden = false")

    # Berta opens it, writes a note for the team first, then answers Anna.
    berta.locator(".conversations a", has_text="Anna").click()
    berta.wait_for_url(re.compile(r"/admin/inbox/\d+(\?.*)?$"))
    berta.locator(".msg.in .text", has_text="heute abholen").wait_for()
    berta.click('.reply-modes .mode[data-mode="note"]')
    berta.fill("#note-text", "Strauß steht hinten links, bezahlt.")
    berta.click("#note-form button[type=submit]")
    berta.locator(".team-note", has_text="Strauß steht hinten links").wait_for()
    berta.click('.reply-modes .mode[data-mode="reply"]')
    berta.fill("#reply-text", "Ja, bis 18 Uhr liegt er für Sie bereit.")
    berta.click("#reply-form button[type=submit]")
    berta.locator(".msg.out .text", has_text="bis 18 Uhr liegt er").wait_for()
    overflow = berta.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0

    # The note stayed in the team: only Berta's answer went to Anna.
    with get_db(shop.app).session() as session:
        assert session.scalars(select(Note.text)).all() == ["Strauß steht hinten links, bezahlt."]
        sent = session.scalars(
            select(Message.text).where(Message.direction == Direction.OUT, Message.rule == "manual")
        ).all()
        assert sent == ["Ja, bis 18 Uhr liegt er für Sie bereit."]

    # Anna thanks her: a person is talking with her, so no "we are closed" in between. Karl,
    # whom nobody has answered, still gets the away reply.
    customer_writes(shop.app, "Danke, bis später!", name="Anna", wa_id=ANNA)
    customer_writes(shop.app, "Haben Sie Tulpen?", name="Karl Huber", wa_id=KARL)
    assert replies_to(shop, ANNA) == ["away", "away", "manual"]
    assert replies_to(shop, KARL) == ["away"]

    # The owner reads who did what.
    tab = shop.go("/admin/audit")
    log = tab.locator(".audit-log").inner_text()
    entries = tab.locator(".audit-log li")
    assigned = entries.filter(has_text="owner").filter(has_text="berta")
    assert assigned.count() >= 1, log
    assert entries.filter(has_text="berta").filter(has_text="Notiz").count() >= 1, log
    assert entries.filter(has_text="berta").filter(has_text="Antwort").count() >= 1, log
    shop.shot("audit-log-team")
