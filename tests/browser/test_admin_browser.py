"""The admin pages in real headless Chromium (Debian's package), driven by Playwright.

The app is served for real on 127.0.0.1 by a werkzeug server on a thread; replies go out
through a dispatcher to the fake Graph API. Skipped when chromium or Playwright is missing.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from bot.db import get_db
from bot.settings.stored import seed_demo
from tests.browser.conftest import ARTIFACTS, CHROMIUM, SIZES, Served
from tests.conftest import post_notification
from tests.fakegraph import FakeGraph
from tests.payloads import notification
from tests.test_admin import PASSWORD, XSS_NAME, XSS_TEXT, make_user
from tests.test_dispatcher import TOKEN, Running

PHONE = SIZES["phone"]
DESKTOP = SIZES["desktop"]

sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")
# Locally they skip without chromium; in CI (which installs it) a missing browser is a failure.
if os.environ.get("CI") and not Path(CHROMIUM).exists():
    raise RuntimeError(f"CI runs the browser tests, but there is no chromium at {CHROMIUM}")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no chromium at {CHROMIUM}"),
]


@pytest.fixture(scope="module")
def browser(chromium: Any) -> Any:
    # The one Chromium of tests/browser/conftest.py: a second Playwright in the same process
    # (as the shop tests start one) is refused.
    return chromium


@pytest.fixture
def site(app: Flask) -> Iterator[str]:
    with get_db(app).session() as session:
        seed_demo(session)
    make_user(app)
    with Served(app) as served:
        yield served.url


@pytest.fixture
def page(browser: Any, site: str) -> Iterator[Any]:
    context = browser.new_context(viewport=DESKTOP)
    context.set_default_timeout(10_000)
    tab = context.new_page()
    dialogs: list[str] = []
    tab.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    tab.dialogs = dialogs
    yield tab
    context.close()


def log_in(page: Any, site: str) -> None:
    page.goto(f"{site}/admin/inbox")
    assert "/admin/login" in page.url
    page.fill("input[name=name]", "owner")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/admin/inbox$"))


def customer_writes(
    app: Flask, text: str, *, name: str = "Anna", wa_id: str = "4915112345678"
) -> None:
    msg = {
        "type": "text",
        "text": {"body": text},
        "id": f"wamid.B{time.monotonic_ns()}",
        "timestamp": str(int(datetime.now(UTC).timestamp())),
    }
    response = post_notification(app.test_client(), notification(msg, wa_id=wa_id, name=name))
    assert response.status_code == 200


def test_log_in_read_a_conversation_and_reply(app: Flask, page: Any, site: str) -> None:
    customer_writes(app, "Haben Sie heute Tulpen?", name="Anna Berger")
    customer_writes(app, "Guten Morgen!", name="Karl", wa_id="4917612345678")
    with FakeGraph(token=TOKEN) as graph, Running(app, graph):
        log_in(page, site)
        page.click("text=Anna Berger")
        page.wait_for_url(re.compile(r"/admin/inbox/\d+$"))
        assert page.locator(".msg.in .text").first.inner_text() == "Haben Sie heute Tulpen?"
        page.fill("#reply-text", "Ja, gelbe und rote!")
        page.click("#reply-form button[type=submit]")
        # The reply shows at once, and the tick moves on once the fake Graph API accepted it.
        mine = page.locator(".msg.out", has_text="Ja, gelbe und rote!")
        mine.wait_for()
        assert graph.wait_for(2, timeout=10)  # the auto-replies went out too
        deadline = time.monotonic() + 10
        while not any(
            r.json.get("text", {}).get("body") == "Ja, gelbe und rote!" for r in graph.requests
        ):
            assert time.monotonic() < deadline, "the reply never reached the Graph API"
            time.sleep(0.05)
        mine.locator(".tick.status-sent").wait_for()
        assert page.input_value("#reply-text") == ""
        # A new message appears without a reload.
        customer_writes(app, "Super, bis gleich.", name="Anna Berger")
        page.locator(".msg.in .text", has_text="Super, bis gleich.").wait_for()
        assert page.dialogs == []


def test_inbox_screenshots_at_phone_and_desktop_width(
    app: Flask, browser: Any, page: Any, site: str
) -> None:
    for i, (name, text) in enumerate(
        [
            ("Anna Berger", "Haben Sie heute Tulpen?"),
            ("Karl Huber", "Ist die Bestellung #4711 fertig?"),
            ("Maria Schneider-Leutheusser", "Danke, die Rosen waren wunderschön! 🌹"),
        ]
    ):
        customer_writes(app, text, name=name, wa_id=f"49151000000{i}")
    ARTIFACTS.mkdir(exist_ok=True)
    log_in(page, site)
    page.screenshot(path=str(ARTIFACTS / "inbox-desktop.png"), full_page=True)
    page.click("text=Karl Huber")
    page.locator(".msg.out").first.wait_for()
    page.screenshot(path=str(ARTIFACTS / "conversation-desktop.png"))
    phone = browser.new_context(viewport=PHONE, storage_state=page.context.storage_state())
    try:
        tab = phone.new_page()
        tab.goto(f"{site}/admin/inbox")
        tab.locator(".conversations li").first.wait_for()
        tab.screenshot(path=str(ARTIFACTS / "inbox-phone.png"), full_page=True)
        tab.click("text=Karl Huber")
        tab.wait_for_load_state("load")  # the conversation page with its stylesheet applied
        tab.locator(".msg.in").first.wait_for()
        # On a phone the conversation takes the whole screen.
        tab.locator(".list-pane").wait_for(state="hidden", timeout=5000)
        assert not tab.locator(".list-pane").is_visible()
        tab.screenshot(path=str(ARTIFACTS / "conversation-phone.png"))
    finally:
        phone.close()
    for shot in ("inbox-desktop", "conversation-desktop", "inbox-phone", "conversation-phone"):
        assert (ARTIFACTS / f"{shot}.png").stat().st_size > 5_000


def test_hostile_customer_shows_as_text_and_runs_nothing(app: Flask, page: Any, site: str) -> None:
    customer_writes(app, XSS_TEXT, name=XSS_NAME)
    log_in(page, site)
    assert page.locator(".conversations .name").first.inner_text() == XSS_NAME
    page.click(".conversations a")
    page.locator(".msg.in .text").first.wait_for()
    assert page.locator("h1").inner_text() == XSS_NAME
    assert page.locator(".msg.in .text").first.inner_text() == XSS_TEXT
    # Through the live update (the script builds the message) as well.
    customer_writes(app, "<img src=y onerror=alert(3)>", name=XSS_NAME)
    page.locator(".msg.in .text", has_text="onerror=alert(3)").wait_for()
    page.goto(f"{site}/admin/inbox")
    page.wait_for_timeout(300)
    assert page.dialogs == []
    assert page.locator("img").count() == 0


def test_schedule_a_broadcast(app: Flask, page: Any, site: str) -> None:
    log_in(page, site)
    page.click("nav >> text=Rundsendungen")
    page.click("text=Neue Rundsendung")
    page.check("input[name=kind][value=template]")
    page.fill("input[name=template]", "spring_sale")
    page.fill("textarea[name=params]", "{{ contact.name }}")
    page.check("input[name=when][value=at]")
    page.fill("input[name=at]", "2030-04-01T09:30")  # a Monday morning: the shop is open
    page.click("button:has-text('Rundsendung anlegen')")
    page.locator(".flash", has_text="angelegt").wait_for()
    main = page.inner_text("main")
    assert "WhatsApp-Vorlage spring_sale (de)" in main
    assert "Geplant" in main and "Mo., 1. Apr. 2030, 09:30" in main
    # Cancelling asks first; this browser says no, so it stays scheduled.
    page.click("button:has-text('Rundsendung abbrechen')")
    assert page.dialogs and page.dialogs[-1].startswith("Diese Rundsendung abbrechen?")
    page.goto(f"{site}/admin/broadcasts")
    assert "Geplant" in page.locator("#coming .broadcast").first.inner_text()
