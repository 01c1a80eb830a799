"""The web admin under /admin: login, inbox, settings, broadcasts and insights."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, render_template
from flask_wtf.csrf import CSRFError, CSRFProtect

# The pages register their routes on `bp` when imported.
from bot.admin import auth, broadcasts_page, inbox, insights, settings_page  # noqa: F401
from bot.admin.blueprint import bp


def init_app(app: Flask) -> None:
    """Sessions, logins and CSRF for the admin pages, and the blueprint itself."""
    # An owner keeps the inbox open on a phone for days: no token expiry within a session,
    # and a login lasts two weeks.
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)
    app.config.setdefault("PERMANENT_SESSION_LIFETIME", timedelta(days=14))
    app.config.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    # CSRF is checked by the admin blueprint itself (blueprint.guard), so Meta's signed
    # webhook posts and other machine endpoints are never asked for a token.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf = CSRFProtect(app)
    csrf.exempt("webhook")
    auth.init_login(app)
    app.register_blueprint(bp)

    @app.errorhandler(CSRFError)
    def csrf_refused(error: CSRFError) -> tuple[str, int]:
        return render_template("admin/error.html", reason=error.description), 400
