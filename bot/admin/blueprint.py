"""The admin blueprint: every page but the login needs a logged-in user and, for a POST, a CSRF token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, redirect, request, url_for
from flask_babel import get_locale, get_timezone, lazy_gettext
from flask_login import current_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.wrappers import Response

bp = Blueprint(
    "admin",
    __name__,
    url_prefix="/admin",
    static_folder="static",
    static_url_path="/static",
)

# Reachable without logging in: the login page itself and the CSS and script it uses.
PUBLIC_ENDPOINTS = frozenset({"admin.login", "admin.static"})

# Scripts and styles come from our own static files only: no inline script can run even if
# something customer-supplied ever slipped into a page unescaped.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)


# Endpoints whose forms carry a file: their bodies may be as large as the largest file WhatsApp
# sends (100 MB) and the form around it; every other request keeps the app's small limit.
UPLOAD_ENDPOINTS: set[str] = set()
UPLOAD_BODY_MAX = 100 * 1024 * 1024 + 1024 * 1024

# Endpoints only a page's script asks (besides the .json ones): a logged-out request gets 401
# rather than the login page, and the answer never renews the session cookie (see auth.py).
BACKGROUND_ENDPOINTS: set[str] = set()


def now() -> datetime:
    clock = current_app.config["TRESEN_CLOCK"]
    value: datetime = clock()
    return value


@bp.before_request
def guard() -> Response | None:
    csrf: CSRFProtect = current_app.extensions["csrf"]
    if request.endpoint in UPLOAD_ENDPOINTS:
        # Before anything reads the form (the CSRF check does): the limit applies when parsed.
        request.max_content_length = UPLOAD_BODY_MAX
    # CSRF first: a forged POST is refused even for a logged-out browser.
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()
    if request.endpoint in PUBLIC_ENDPOINTS or current_user.is_authenticated:
        # The language and time zone come from the database: read them now, before a view
        # opens its own session. On SQLite a second session would wait for the view's writes
        # (opening a conversation marks it read) and, timing out, fall back to German.
        get_locale()
        get_timezone()
        return None
    if (
        request.path.endswith(".json")
        or request.endpoint in BACKGROUND_ENDPOINTS
        or request.accept_mimetypes.best == "application/json"
    ):
        return Response('{"error": "log in first"}', 401, mimetype="application/json")
    return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))


@bp.after_request
def headers(response: Response) -> Response:
    response.headers.setdefault("Content-Security-Policy", CSP)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if request.endpoint != "admin.static":
        # Pages show customers' messages: keep them out of shared caches and the back button.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


# What admin.js shows (confirmations, hints), in the page's language: each area adds its own
# with lazy_gettext; base.html hands them to the script as JSON.
SCRIPT_TEXTS: dict[str, Any] = {
    "unsaved": lazy_gettext("You have changes that are not saved. Leave anyway?"),
}


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: Any  # a lazy translation
    # The endpoints (by prefix) under which this item is the current one.
    prefixes: tuple[str, ...]


# The main menu, in its order; an item whose page is not registered is left out.
NAV = (
    NavItem("admin.inbox", lazy_gettext("Inbox"), ("admin.inbox", "admin.conversation")),
    NavItem("admin.contacts", lazy_gettext("Contacts"), ("admin.contact", "admin.label")),
    NavItem("admin.broadcasts_page", lazy_gettext("Broadcasts"), ("admin.broadcast",)),
    NavItem("admin.settings", lazy_gettext("Settings"), ("admin.settings", "admin.quick_repl")),
    NavItem("admin.insights", lazy_gettext("Insights"), ("admin.insights",)),
    NavItem("admin.account", lazy_gettext("Account"), ("admin.account", "admin.users")),
)


@bp.context_processor
def navigation() -> dict[str, Any]:
    endpoint = request.endpoint or ""
    items = [
        {
            "url": url_for(item.endpoint),
            "label": str(item.label),
            "current": endpoint.startswith(item.prefixes),
        }
        for item in NAV
        if item.endpoint in current_app.view_functions
    ]
    return {
        "nav_items": items,
        "js_texts": {key: str(text) for key, text in SCRIPT_TEXTS.items()},
    }
