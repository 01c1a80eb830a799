"""The admin blueprint: every page but the login needs a logged-in user and, for a POST, a CSRF token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from flask import Blueprint, abort, current_app, redirect, request, url_for
from flask import session as browser_session
from flask_babel import get_locale, get_timezone, lazy_gettext
from flask_login import current_user
from flask_wtf.csrf import CSRFProtect
from werkzeug.exceptions import Forbidden
from werkzeug.wrappers import Response

from bot import audit
from bot.db import get_db
from bot.headers import secure

bp = Blueprint(
    "admin",
    __name__,
    url_prefix="/admin",
    static_folder="static",
    static_url_path="/static",
)

# Reachable without logging in: the login page itself and the CSS and script it uses, and
# the page where an invited person joins the team.
PUBLIC_ENDPOINTS = frozenset({"admin.login", "admin.static", "admin.join"})


class Access(StrEnum):
    """Who may open an endpoint of the admin."""

    PUBLIC = "public"  # anyone, logged in or not (PUBLIC_ENDPOINTS)
    STAFF = "staff"  # every logged-in user
    BROADCAST = "broadcast"  # owners, and staff allowed to send broadcasts
    OWNER = "owner"  # owners only


# Who may open what, in one place, by endpoint name prefix: the longest matching prefix
# decides. An endpoint no prefix matches is for owners only, so a page added without a
# thought refuses staff rather than showing them too much; tests/test_team.py fails for it.
ACCESS: dict[str, Access] = {
    # the team, invitations, the audit log
    "admin.users": Access.OWNER,
    "admin.invitation": Access.OWNER,
    "admin.audit": Access.OWNER,
    "admin.api_keys": Access.OWNER,  # API keys for shop systems: list, create, revoke
    "admin.webhooks": Access.OWNER,  # outgoing webhooks to shop systems: all of it
    "admin.account": Access.STAFF,  # one's own password and language
    "admin.login": Access.PUBLIC,
    "admin.logout": Access.STAFF,
    "admin.join": Access.PUBLIC,
    "admin.static": Access.PUBLIC,
    # settings and what the robot answers
    "admin.settings": Access.OWNER,
    "admin.quick_replies": Access.OWNER,
    "admin.insights": Access.OWNER,
    # the daily work: the inbox and its actions, contacts, labels, media, live updates
    "admin.index": Access.STAFF,
    "admin.inbox": Access.STAFF,
    "admin.conversation": Access.STAFF,  # incl. the reply box's quick-replies.json
    "admin.reply": Access.STAFF,
    "admin.optin": Access.STAFF,
    "admin.events": Access.STAFF,
    "admin.contact": Access.STAFF,
    "admin.contact_data": Access.OWNER,  # one customer's data: export, erase
    "admin.label": Access.STAFF,
    "admin.media": Access.STAFF,
    # broadcasts: everyone sees them; making and cancelling one takes the permission
    "admin.broadcast": Access.STAFF,
    "admin.broadcast_new": Access.BROADCAST,
    "admin.broadcast_create": Access.BROADCAST,
    "admin.broadcast_check": Access.BROADCAST,
    "admin.broadcast_cancel": Access.BROADCAST,
    # WhatsApp templates: everyone reads them; fetching them from Meta is for owners
    "admin.templates_list": Access.STAFF,
    "admin.templates_detail": Access.STAFF,
    "admin.templates_sync": Access.OWNER,
    # notices (a template paused, moved to marketing …): the whole team reads and hides them
    "admin.notice": Access.STAFF,
}


class NotAllowed(Forbidden):
    """A 403 whose page says why in words of its own (errors.py shows `text`)."""

    def __init__(self, text: Any) -> None:
        super().__init__()
        self.text = text


BROADCASTS_NOT_ALLOWED = lazy_gettext(
    "Creating and cancelling broadcasts needs an owner's permission: ask an owner of the shop."
)


def access_of(endpoint: str) -> Access | None:
    """The access rule for `endpoint`; none when no prefix matches (then: owners only)."""
    matches = [prefix for prefix in ACCESS if endpoint.startswith(prefix)]
    return ACCESS[max(matches, key=len)] if matches else None


def may_open(user: Any, endpoint: str) -> bool:
    """Whether logged-in `user` (an AdminUser) may open `endpoint`."""
    rule = access_of(endpoint)
    if rule in (Access.PUBLIC, Access.STAFF):
        return True
    if user.is_owner:
        return True
    return rule is Access.BROADCAST and bool(user.may_broadcast)


# POSTs that change nothing a person would look for in the audit log: logging in and out,
# previews and conversions for a form, the typing indicator. Prefixes, as in ACCESS.
NOT_CHANGES = (
    "admin.login",
    "admin.logout",
    "admin.settings_preview",
    "admin.settings_text",
    "admin.broadcast_check",
    "admin.conversation_typing",
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
        audit.start_counting()
        endpoint = request.endpoint or ""
        if endpoint not in PUBLIC_ENDPOINTS and not may_open(current_user, endpoint):
            if access_of(endpoint) is Access.BROADCAST:
                raise NotAllowed(BROADCASTS_NOT_ALLOWED)
            abort(403)
        return None
    if (
        request.path.endswith(".json")
        or request.endpoint in BACKGROUND_ENDPOINTS
        or request.accept_mimetypes.best == "application/json"
    ):
        return Response('{"error": "log in first"}', 401, mimetype="application/json")
    return redirect(url_for("admin.login", next=request.full_path.rstrip("?")))


def actor() -> audit.Actor:
    """Who is making this request's changes, for the audit log."""
    return audit.Actor(current_user.id, current_user.name)


def log_change(
    session: Any,
    action: audit.Action,
    *,
    subject: str | None = None,
    before: str | None = None,
    after: str | None = None,
) -> None:
    """Record a change the logged-in user makes, in `session`'s transaction (bot.audit)."""
    audit.record(session, actor(), action, now(), subject=subject, before=before, after=after)


@bp.after_request
def audit_fallback(response: Response) -> Response:
    """The audit log's safety net: a change whose view recorded nothing gets an entry naming
    the endpoint (never the form's values: they may hold passwords)."""
    endpoint = request.endpoint or ""
    if (
        request.method in ("GET", "HEAD", "OPTIONS")
        or response.status_code >= 400
        or not current_user.is_authenticated
        or endpoint.startswith(NOT_CHANGES)
        or audit.counted() != 0
        or _refused_by_flash()
    ):
        return response
    with get_db().session() as session:
        audit.record(session, actor(), audit.Action.OTHER, now(), subject=endpoint)
    return response


def _refused_by_flash() -> bool:
    # A form refused with a message for the next page (a label's name taken) changed nothing.
    flashes = browser_session.get("_flashes") or []
    return any(category == "error" for category, _message in flashes)


@bp.after_request
def headers(response: Response) -> Response:
    secure(response)
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
    NavItem("admin.templates_list", lazy_gettext("Templates"), ("admin.templates",)),
    NavItem("admin.settings", lazy_gettext("Settings"), ("admin.settings", "admin.quick_repl")),
    NavItem("admin.insights", lazy_gettext("Insights"), ("admin.insights",)),
    NavItem(
        "admin.account",
        lazy_gettext("Account"),
        (
            "admin.account",
            "admin.users",
            "admin.invitation",
            "admin.audit",
            "admin.api_keys",
            "admin.webhooks",
        ),
    ),
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
        and (not current_user.is_authenticated or may_open(current_user, item.endpoint))
    ]
    return {
        "nav_items": items,
        "js_texts": {key: str(text) for key, text in SCRIPT_TEXTS.items()},
        # For a page's buttons: {% if may('admin.broadcast_new') %}
        "may": lambda name: current_user.is_authenticated and may_open(current_user, name),
    }
