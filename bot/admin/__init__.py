"""The web admin under /admin: login, inbox, settings, broadcasts and insights."""

from __future__ import annotations

from datetime import timedelta

from flask import Flask, g
from flask_login import current_user
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.exc import SQLAlchemyError

from bot import i18n

# The pages register their routes on `bp` when imported.
from bot.admin import (  # noqa: F401
    account,
    api_keys_page,
    audit_page,
    auth,
    broadcasts_page,
    contact_data_page,
    contacts_page,
    errors,
    inbox,
    inbox_team,
    insights,
    labels_page,
    live,
    media_page,
    notices_page,
    quick_replies_page,
    settings_page,
    signals_page,
    team_page,
    templates_new_page,
    templates_page,
    webhooks_page,
)
from bot.admin.blueprint import bp
from bot.db import get_db
from bot.settings import DEFAULT_LOCALE, DEFAULT_TIMEZONE, BusinessSettings
from bot.settings.stored import load_settings


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
    live.init_app(app)
    i18n.init_app(app, choose=page_locale, timezone=business_timezone)
    app.register_blueprint(bp)
    errors.init_app(app)


def business() -> BusinessSettings | None:
    """The business's settings, read once per request."""
    if "business_settings" not in g:
        try:
            with get_db().session() as session:
                g.business_settings = load_settings(session)
        except SQLAlchemyError:
            # A page about a database that does not answer still needs a language.
            g.business_settings = None
    settings: BusinessSettings | None = g.business_settings
    return settings


def page_locale() -> str:
    """The admin's locale for this request: the user's choice, else the business's."""
    chosen = getattr(current_user, "locale", None) if current_user else None
    if chosen:
        return str(chosen)
    settings = business()
    return settings.locale if settings else DEFAULT_LOCALE


def business_timezone() -> str:
    settings = business()
    return settings.timezone if settings else DEFAULT_TIMEZONE
