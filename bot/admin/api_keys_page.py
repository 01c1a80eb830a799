"""API keys in the admin (owners only): make one with a name and scopes (its token shown on
that answer only, never again), see when each was last used, revoke one."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from bot import audit
from bot.admin.blueprint import bp, log_change, now
from bot.api.keys import NAME_MAX, clean_scopes, create_key, revoke
from bot.api.scopes import Scope
from bot.db import get_db
from bot.models import ApiKey

# What each scope allows, in words a shop owner reads.
SCOPE_TEXTS: dict[Scope, tuple[Any, Any]] = {
    Scope.SEND: (
        lazy_gettext("Send messages"),
        lazy_gettext(
            "Send WhatsApp messages to customers: a text within 24 hours after they wrote, "
            "otherwise an approved template (for example “your order is ready”)."
        ),
    ),
    Scope.CONTACTS: (
        lazy_gettext("Contacts"),
        lazy_gettext(
            "Look up contacts by phone number and change their name, labels and whether they "
            "get broadcasts."
        ),
    ),
    Scope.MESSAGES: (
        lazy_gettext("Read messages"),
        lazy_gettext("Read conversations and whether a message was delivered and read."),
    ),
}


def _page(
    created: dict[str, str] | None = None, error: str | None = None, status: int = 200
) -> Any:
    with get_db().session() as session:
        keys = list(
            session.scalars(
                select(ApiKey).order_by(ApiKey.revoked_at.is_not(None), ApiKey.id.desc())
            )
        )
    scopes = [
        {"value": str(scope), "label": label, "hint": hint}
        for scope, (label, hint) in SCOPE_TEXTS.items()
    ]
    names = {str(scope): label for scope, (label, _hint) in SCOPE_TEXTS.items()}
    page = render_template(
        "admin/api_keys.html",
        keys=keys,
        scopes=scopes,
        scope_names=names,
        created=created,
        error=error,
        name_max=NAME_MAX,
    )
    return page, status


@bp.get("/api-keys", endpoint="api_keys")
def api_keys_page() -> Any:
    return _page()


@bp.post("/api-keys", endpoint="api_keys_create")
def api_keys_create() -> Any:
    name = " ".join(request.form.get("name", "").split())
    scopes = clean_scopes(request.form.getlist("scope"))
    if not name:
        return _page(
            error=gettext("Give the key a name, for example the shop system's."), status=400
        )
    if not scopes:
        return _page(error=gettext("Choose at least one thing the key may do."), status=400)
    with get_db().session() as session:
        key, token = create_key(session, name, scopes, by=current_user.id, now=now())
        log_change(
            session,
            audit.Action.API_KEY_CREATED,
            subject=f"api_key:{key.prefix}",
            after=f"{key.name}: {', '.join(key.scopes)}",
        )
        created = {"name": key.name, "token": token}
    # Shown on this answer only, never stored or flashed (a flash lives in the cookie).
    return _page(created=created)


@bp.post("/api-keys/<int:key_id>/revoke", endpoint="api_keys_revoke")
def api_keys_revoke(key_id: int) -> Response:
    with get_db().session() as session:
        key = revoke(session, key_id, now())
        if key is not None:
            log_change(
                session,
                audit.Action.API_KEY_REVOKED,
                subject=f"api_key:{key.prefix}",
                before=key.name,
            )
            name = key.name
    if key is None:
        flash(gettext("There is no such key."), "error")
    else:
        flash(gettext("The key “%(name)s” is revoked: it works no more.", name=name))
    return redirect(url_for("admin.api_keys"))
