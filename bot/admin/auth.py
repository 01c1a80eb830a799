"""Logging in and out: Flask-Login sessions, each a row in the database (see bot/users.py).

The cookie holds only the session's random token, so logging out, a new password or deleting
the user ends a session on every process at once.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import (
    Flask,
    Request,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
from flask_babel import gettext, lazy_gettext, ngettext
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from werkzeug.wrappers import Response

from bot import logins, users, webhook
from bot.admin.blueprint import BACKGROUND_ENDPOINTS, bp, now
from bot.admin.forms import LoginForm
from bot.db import get_db

# Meta's notifications: no session (see SessionInterface.open_session).
WEBHOOK_PATHS = f"{webhook.bp.url_prefix}/"
REFUSED_MESSAGE = lazy_gettext("Wrong name or password.")
BUSY_MESSAGE = lazy_gettext("Many logins are being checked right now: try again in a moment.")
DEACTIVATED_MESSAGE = lazy_gettext(
    "This user is deactivated. An owner of the shop can activate it again on the team page."
)


def wait_message(seconds: int) -> str:
    if seconds >= 120:
        minutes = -(-seconds // 60)
        return gettext("Too many failed attempts: try again in %(n)s minutes.", n=minutes)
    return ngettext(
        "Too many failed attempts: try again in %(num)s second.",
        "Too many failed attempts: try again in %(num)s seconds.",
        seconds,
    )


@dataclass(frozen=True)
class AdminUser(UserMixin):
    id: int
    name: str
    token: str  # the session's: random, nothing derived from the password
    role: users.Role = users.Role.OWNER
    locale: str | None = None  # the admin language the user chose; none: the business's
    may_broadcast: bool = True  # staff only: owners always may

    def get_id(self) -> str:
        return self.token

    @property
    def is_owner(self) -> bool:
        return self.role is users.Role.OWNER

    @property
    def can_broadcast(self) -> bool:
        return self.is_owner or self.may_broadcast


def admin_user(user: users.SessionUser, token: str) -> AdminUser:
    return AdminUser(user.id, user.name, token, user.role, user.locale, user.may_broadcast)


def load_user(token: str) -> AdminUser | None:
    with get_db().session() as db_session:
        user = users.session_user(
            db_session, token, now=now(), lifetime=current_app.permanent_session_lifetime
        )
    return admin_user(user, token) if user is not None else None


def client_address() -> str:
    """The browser's address, as told by the proxy in front when there is one.

    A proxy (Caddy, nginx, Heroku's router) reaches us from a private or loopback address and
    appends the address it was reached from to X-Forwarded-For; anything before that entry
    came from the client and may be forged. A client reaching us directly is not believed.
    """
    peer = request.remote_addr or ""
    forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
    try:
        behind_proxy = ipaddress.ip_address(peer).is_private
    except ValueError:
        behind_proxy = False
    return forwarded if forwarded and behind_proxy else peer


class SessionInterface(SecureCookieSessionInterface):
    """The session cookie is `Secure` whenever the browser reached us over HTTPS.

    Behind a TLS-terminating proxy (Heroku's router, nginx) the request arrives as plain HTTP
    with `X-Forwarded-Proto: https`; only the cookie flag reads that header, so a forged
    header can only make a cookie stricter.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        # Meta's notifications carry no cookie and need no session; checking for one cost
        # a fortieth of a webhook's time. None: Flask gives the request its null session.
        if request.path.startswith(WEBHOOK_PATHS):
            return None
        return super().open_session(app, request)

    def should_set_cookie(self, app: Flask, session: SessionMixin) -> bool:
        if session.modified:
            return True
        # Only a page load renews an unchanged cookie. A script's request in the background
        # (a preview, a poll, the event stream) still carries the cookie from before a form's redirect, and
        # answering it with that cookie would wipe the message the redirect left ("Gespeichert").
        background = (
            request.method != "GET"
            or request.path.endswith(".json")
            or request.endpoint in BACKGROUND_ENDPOINTS
        )
        return not background and super().should_set_cookie(app, session)

    def get_cookie_secure(self, app: Flask) -> bool:
        forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
        return bool(super().get_cookie_secure(app) or request.is_secure or forwarded == "https")


def init_login(app: Flask) -> None:
    manager = LoginManager()
    manager.login_view = "admin.login"
    manager.login_message = None
    manager.user_loader(load_user)
    manager.init_app(app)
    app.session_interface = SessionInterface()


def _safe_next(target: str | None) -> str:
    """Only a path of the admin pages: `next` must not send anyone to another site."""
    default = url_for("admin.inbox")
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/admin") or "\\" in target:
        return default
    return target


@bp.route("/login", methods=["GET", "POST"])
def login() -> tuple[str, int, dict[str, str]] | Response:
    if current_user.is_authenticated and request.method == "GET":
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    error, status, headers = None, 200, {}
    if form.validate_on_submit():
        attempt = logins.log_in(
            get_db(),
            form.name.data or "",
            form.password.data or "",
            address=client_address(),
            now=now(),
            lifetime=current_app.permanent_session_lifetime,
        )
        if attempt.user is not None and attempt.token is not None:
            if current_user.is_authenticated:  # logged in again over an open session
                with get_db().session() as db_session:
                    users.end_session(db_session, current_user.token)
            session.clear()  # nothing from before the login survives it
            session.permanent = True
            login_user(admin_user(attempt.user, attempt.token))
            return redirect(_safe_next(request.args.get("next")))
        if attempt.outcome is logins.Outcome.WAIT:
            error, status = wait_message(attempt.retry_after), 429
        elif attempt.outcome is logins.Outcome.BUSY:
            error, status = str(BUSY_MESSAGE), 503
        elif attempt.outcome is logins.Outcome.DEACTIVATED:
            error, status = str(DEACTIVATED_MESSAGE), 403
        else:
            error, status = str(REFUSED_MESSAGE), 401
        if attempt.retry_after:
            headers["Retry-After"] = str(attempt.retry_after)
    return render_template("admin/login.html", form=form, error=error), status, headers


@bp.post("/logout")
def logout() -> Response:
    if current_user.is_authenticated:
        with get_db().session() as db_session:
            users.end_session(db_session, current_user.token)
    logout_user()
    session.clear()
    flash(gettext("Logged out."))
    return redirect(url_for("admin.login"))
