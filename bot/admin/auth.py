"""Logging in and out: Flask-Login sessions for the users of bot/users.py."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from flask import Flask, Request, flash, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from werkzeug.wrappers import Response

from bot import users, webhook
from bot.admin.blueprint import bp, now
from bot.admin.forms import LoginForm
from bot.db import get_db

# Meta's notifications: no session (see SessionInterface.open_session).
WEBHOOK_PATHS = f"{webhook.bp.url_prefix}/"
REFUSED_MESSAGE = (
    "Wrong name or password, or too many failed attempts: wait a little and try again."
)


@dataclass(frozen=True)
class AdminUser(UserMixin):
    id: int
    name: str
    key: str  # changes with the password: a reset logs out every other session

    def get_id(self) -> str:
        return f"{self.id}:{self.key}"


def load_user(user_id: str) -> AdminUser | None:
    raw_id, _, key = user_id.partition(":")
    if not raw_id.isdigit():
        return None
    with get_db().session() as db_session:
        user = users.load(db_session, int(raw_id), key)
        return AdminUser(user.id, user.name, key) if user is not None else None


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
def login() -> tuple[str, int] | Response:
    if current_user.is_authenticated and request.method == "GET":
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        with get_db().session() as db_session:
            result = users.authenticate(
                db_session, form.name.data or "", form.password.data or "", now=now()
            )
        if result.ok and result.user_id is not None and result.session_key is not None:
            session.clear()  # nothing from before the login survives it
            session.permanent = True
            login_user(
                AdminUser(result.user_id, (form.name.data or "").strip(), result.session_key)
            )
            return redirect(_safe_next(request.args.get("next")))
        error = REFUSED_MESSAGE
    status = 401 if error else 200
    return render_template("admin/login.html", form=form, error=error), status


@bp.post("/logout")
def logout() -> Response:
    logout_user()
    session.clear()
    flash("Logged out.")
    return redirect(url_for("admin.login"))
