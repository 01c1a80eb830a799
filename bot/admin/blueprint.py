"""The admin blueprint: every page but the login needs a logged-in user and, for a POST, a CSRF token."""

from __future__ import annotations

from datetime import datetime

from flask import Blueprint, current_app, redirect, request, url_for
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


def now() -> datetime:
    clock = current_app.config["TRESEN_CLOCK"]
    value: datetime = clock()
    return value


@bp.before_request
def guard() -> Response | None:
    csrf: CSRFProtect = current_app.extensions["csrf"]
    # CSRF first: a forged POST is refused even for a logged-out browser.
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()
    if request.endpoint in PUBLIC_ENDPOINTS or current_user.is_authenticated:
        return None
    if request.path.endswith(".json") or request.accept_mimetypes.best == "application/json":
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


@bp.context_processor
def navigation() -> dict[str, bool]:
    return {"has_broadcasts": "admin.broadcasts_page" in current_app.view_functions}
