"""Every answer carries the security headers, and no admin page loads anything from another
host: a crawl of the admin pages, logged in, from the start page on."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.test_admin import GET_PAGES, NOW, Clock, demo_owner, receive

STATIC = Path(__file__).resolve().parent.parent / "bot" / "admin" / "static"
# What loads something into a page, by tag: the attributes that name it.
LOADS = {
    "script": ("src",),
    "link": ("href",),
    "img": ("src", "srcset"),
    "iframe": ("src",),
    "frame": ("src",),
    "source": ("src", "srcset"),
    "audio": ("src",),
    "video": ("src", "poster"),
    "track": ("src",),
    "embed": ("src",),
    "object": ("data",),
    "input": ("src",),
    "form": ("action",),
}
ELSEWHERE = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.loads: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            self.links.append(values["href"] or "")
        for name in LOADS.get(tag, ()):
            if values.get(name):
                self.loads.append(values[name] or "")


def assert_secure(response: TestResponse, path: str) -> None:
    policy = response.headers.get("Content-Security-Policy", "")
    assert "default-src 'self'" in policy, path
    assert "frame-ancestors 'none'" in policy, path
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, path
    assert response.headers.get("X-Content-Type-Options") == "nosniff", path
    assert response.headers.get("Referrer-Policy") in ("same-origin", "no-referrer"), path


def test_every_admin_page_is_secured_and_loads_nothing_from_elsewhere(
    app: Flask, client: FlaskClient
) -> None:
    app.config["TRESEN_CLOCK"] = Clock(NOW)
    admin = demo_owner(app, client)
    receive(admin)  # a conversation, so the inbox and its pages have something to show
    todo = ["/admin/", *GET_PAGES]
    seen: set[str] = set()
    pages = 0
    while todo and pages < 120:
        path = todo.pop(0)
        key = urlsplit(path).path
        if key in seen:
            continue
        seen.add(key)
        response = admin.get(path)
        assert_secure(response, path)
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        pages += 1
        page = Page()
        page.feed(response.get_data(as_text=True))
        elsewhere = [url for url in page.loads if ELSEWHERE.match(url)]
        assert not elsewhere, f"{path} loads from another host: {elsewhere}"
        for link in page.links:
            target = urlsplit(link)
            ours = not target.scheme and not target.netloc and target.path.startswith("/admin")
            # Files have a sandbox policy of their own (bot.media.serve); logout is a POST.
            if ours and "/media/" not in target.path and "logout" not in target.path:
                todo.append(link)
    assert pages >= 20, f"the crawl found only {pages} pages"


def test_the_admin_styles_load_nothing_from_elsewhere() -> None:
    sheets = sorted(STATIC.glob("*.css"))
    assert sheets
    for sheet in sheets:
        css = sheet.read_text(encoding="utf-8")
        assert "@import" not in css, sheet.name
        for url in re.findall(r"url\(\s*['\"]?([^)'\"]*)", css):
            assert not ELSEWHERE.match(url), f"{sheet.name}: {url}"


@pytest.mark.parametrize(
    "path",
    [
        "/admin/login",
        "/admin/no-such-page",
        "/no-such-page",
        "/healthz",
        "/whatsapp",
        "/admin/static/admin.css",
    ],
)
def test_every_answer_carries_the_headers(client: FlaskClient, path: str) -> None:
    assert_secure(client.get(path), path)


def test_an_answer_with_its_own_policy_keeps_it(app: Flask) -> None:
    @app.get("/own-policy")
    def own() -> tuple[str, int, dict[str, str]]:
        return "x", 200, {"Content-Security-Policy": "sandbox; default-src 'none'"}

    response = app.test_client().get("/own-policy")
    assert response.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
