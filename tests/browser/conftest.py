"""What the shop owner's browser tests share: Debian's Chromium, the app on a real port, a
logged-in German tab at a phone's and a desktop's size, screenshots and the no-overflow check.

A test that takes `shop` runs twice, at 390×844 and at 1280×800.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from bot.db import get_db
from bot.settings.stored import seed_demo
from tests.conftest import ROOT

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # The browser's own widgets (time fields) in German too: a 24-hour clock.
    "--lang=de-DE",
]
ARTIFACTS = ROOT / "artifacts"
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
PASSWORD = "correct horse battery"


def _sync_api() -> Any:
    return pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    if os.environ.get("CI") and not Path(CHROMIUM).exists():
        raise RuntimeError(f"CI runs the browser tests, but there is no chromium at {CHROMIUM}")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}")
    with _sync_api().sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield launched
        launched.close()


class Served:
    """The app on a real port, on a thread."""

    def __init__(self, app: Flask) -> None:
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class Shop:
    """A logged-in owner's tab in German at one size, and what the tests check on every page."""

    def __init__(self, app: Flask, tab: Any, url: str, size: str) -> None:
        self.app = app
        self.tab = tab
        self.url = url
        self.size = size
        self.dialogs: list[str] = []

    def go(self, path: str) -> Any:
        self.tab.goto(f"{self.url}{path}")
        return self.tab

    def fits(self) -> None:
        """Nothing on the page is wider than the screen: no horizontal scrolling."""
        # Measured once the page's stylesheets are in: a page just posted to can already show
        # its text while a slow machine still lays it out without them.
        self.tab.wait_for_load_state("load")
        overflow = self.tab.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, f"{self.tab.url} scrolls sideways by {overflow}px at {self.size}"

    def shot(self, name: str) -> Path:
        """A full-page screenshot in artifacts/, named by page and size; the page must fit."""
        self.fits()
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}-{self.size}.png"
        self.tab.screenshot(path=str(path), full_page=True)
        return path


def log_in(tab: Any, url: str, name: str = "owner", password: str = PASSWORD) -> None:
    tab.goto(f"{url}/admin/")
    tab.fill("input[name=name]", name)
    tab.fill("input[name=password]", password)
    tab.click("button[type=submit]")
    tab.wait_for_url(re.compile(r"/admin/(?!login)"))


@pytest.fixture
def served(app: Flask) -> Iterator[str]:
    """The app with the demo business and an owner, on a real port."""
    from bot import users
    from bot.models import utcnow

    with get_db(app).session() as session:
        seed_demo(session)
        users.create_or_reset(session, "owner", PASSWORD, now=utcnow())
    with Served(app) as server:
        yield server.url


@pytest.fixture(params=sorted(SIZES))
def shop(request: Any, app: Flask, chromium: Any, served: str) -> Iterator[Shop]:
    size = request.param
    context = chromium.new_context(viewport=SIZES[size], locale="de-DE")
    context.set_default_timeout(10_000)
    tab = context.new_page()
    owner = Shop(app, tab, served, size)

    def answer(dialog: Any) -> None:
        owner.dialogs.append(dialog.message)
        dialog.accept()

    tab.on("dialog", answer)
    log_in(tab, served)
    yield owner
    context.close()
