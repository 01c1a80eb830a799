"""Outgoing webhooks in the admin (owners only): register a URL for events (its signing secret
shown on that answer only), see each endpoint's last result and recent deliveries, change its
events, switch it on again, make a new secret, send a test event, delete it."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import current_user
from werkzeug.wrappers import Response

from bot import audit
from bot.admin.blueprint import bp, log_change, now
from bot.admin.contacts_page import when
from bot.config import Config
from bot.db import get_db
from bot.models import WebhookEndpoint
from bot.webhooks_out import store
from bot.webhooks_out.events import SUBSCRIBABLE, EventKind, clean_events
from bot.webhooks_out.guard import URL_MAX, UrlProblem, host_of, url_problem
from bot.webhooks_out.sending import check_host

# What each event is, in words a shop owner reads.
EVENT_TEXTS: dict[EventKind, Any] = {
    EventKind.MESSAGE_RECEIVED: lazy_gettext("A customer's message arrives"),
    EventKind.MESSAGE_STATUS: lazy_gettext(
        "A message sent to a customer is sent, delivered, read or fails"
    ),
    EventKind.CONTACT_OPTED_IN: lazy_gettext("A contact subscribes to broadcasts"),
    EventKind.CONTACT_OPTED_OUT: lazy_gettext("A contact unsubscribes from broadcasts"),
    EventKind.PING: lazy_gettext("Test event"),
}
STATUS_TEXTS: dict[str, Any] = {
    "pending": lazy_gettext("waiting"),
    "sent": lazy_gettext("delivered"),
    "failed": lazy_gettext("failed"),
}


def _url_error(url: str) -> str | None:
    """Why `url` cannot be saved, in the page's language; None when it can."""
    problem = url_problem(url)
    if problem is UrlProblem.SCHEME:
        return gettext("The address must start with https:// (or http://).")
    if problem is UrlProblem.CREDENTIALS:
        return gettext("The address must not contain a user name or password.")
    if problem is not None:
        return gettext("This is not a web address Tresen can send to.")
    config: Config = current_app.config["TRESEN"]
    try:
        refused = check_host(url, config.webhooks_allow_private)
    except OSError:
        return gettext(
            "The host %(host)s cannot be found: check the address.", host=host_of(url)[0]
        )
    if refused is not None:
        return gettext(
            "Tresen does not send webhooks to %(address)s: it is an address inside a private "
            "network or of this server itself. If that is intended, the operator can allow it "
            "with WEBHOOKS_ALLOW_PRIVATE.",
            address=refused.address,
        )
    return None


def _events() -> list[dict[str, Any]]:
    return [{"value": str(kind), "label": EVENT_TEXTS[kind]} for kind in SUBSCRIBABLE]


def _page(
    created: dict[str, str] | None = None,
    error: str | None = None,
    form: dict[str, Any] | None = None,
    status: int = 200,
) -> Any:
    with get_db().session() as session:
        endpoints = store.overview(session)
    page = render_template(
        "admin/webhooks.html",
        endpoints=endpoints,
        events=_events(),
        event_names={str(k): v for k, v in EVENT_TEXTS.items()},
        created=created,
        error=error,
        form=form or {"url": "", "events": []},
        url_max=URL_MAX,
        when=when,
    )
    return page, status


def _endpoint(session: Any, endpoint_id: int) -> WebhookEndpoint:
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None:
        abort(404)
    return endpoint


@bp.get("/webhooks", endpoint="webhooks")
def webhooks_page() -> Any:
    return _page()


@bp.post("/webhooks", endpoint="webhooks_create")
def webhooks_create() -> Any:
    url = request.form.get("url", "").strip()
    kinds = clean_events(request.form.getlist("event"))
    form = {"url": url, "events": kinds}
    error = _url_error(url) if url else gettext("Enter the address your system receives at.")
    if error is None and not kinds:
        error = gettext("Choose at least one event.")
    if error is not None:
        return _page(error=error, form=form, status=400)
    with get_db().session() as session:
        endpoint, secret = store.create_endpoint(session, url, kinds, by=current_user.id, now=now())
        log_change(
            session,
            audit.Action.WEBHOOK_CREATED,
            subject=f"webhook:{endpoint.id}",
            after=f"{url}: {', '.join(kinds)}",
        )
        created = {"url": url, "secret": secret, "id": str(endpoint.id)}
    # Shown on this answer only, never flashed (a flash lives in the cookie).
    return _page(created=created)


def _detail(endpoint_id: int, secret: str | None = None, error: str | None = None) -> Any:
    with get_db().session() as session:
        endpoint = _endpoint(session, endpoint_id)
        deliveries = store.recent(session, endpoint_id)
    return render_template(
        "admin/webhook.html",
        endpoint=endpoint,
        deliveries=deliveries,
        events=_events(),
        event_names={str(k): v for k, v in EVENT_TEXTS.items()},
        status_names=STATUS_TEXTS,
        secret=secret,
        error=error,
        when=when,
    ), (400 if error else 200)


@bp.get("/webhooks/<int:endpoint_id>", endpoint="webhooks_detail")
def webhooks_detail(endpoint_id: int) -> Any:
    return _detail(endpoint_id)


@bp.post("/webhooks/<int:endpoint_id>/events", endpoint="webhooks_events")
def webhooks_events(endpoint_id: int) -> Any:
    kinds = clean_events(request.form.getlist("event"))
    if not kinds:
        return _detail(endpoint_id, error=gettext("Choose at least one event."))
    with get_db().session() as session:
        endpoint = _endpoint(session, endpoint_id)
        before = ", ".join(endpoint.events)
        store.set_events(session, endpoint, kinds)
        log_change(
            session,
            audit.Action.WEBHOOK_CHANGED,
            subject=f"webhook:{endpoint_id}",
            before=before,
            after=", ".join(kinds),
        )
    flash(gettext("The events are saved."))
    return redirect(url_for("admin.webhooks_detail", endpoint_id=endpoint_id))


@bp.post("/webhooks/<int:endpoint_id>/enable", endpoint="webhooks_enable")
def webhooks_enable(endpoint_id: int) -> Response:
    with get_db().session() as session:
        endpoint = _endpoint(session, endpoint_id)
        store.enable(session, endpoint)
        log_change(session, audit.Action.WEBHOOK_ENABLED, subject=f"webhook:{endpoint_id}")
    flash(gettext("The webhook is on again: new events are sent to it."))
    return redirect(url_for("admin.webhooks_detail", endpoint_id=endpoint_id))


@bp.post("/webhooks/<int:endpoint_id>/secret", endpoint="webhooks_rotate")
def webhooks_rotate(endpoint_id: int) -> Any:
    with get_db().session() as session:
        endpoint = _endpoint(session, endpoint_id)
        secret = store.rotate_secret(session, endpoint)
        log_change(session, audit.Action.WEBHOOK_SECRET_ROTATED, subject=f"webhook:{endpoint_id}")
    return _detail(endpoint_id, secret=secret)


@bp.post("/webhooks/<int:endpoint_id>/test", endpoint="webhooks_test")
def webhooks_test(endpoint_id: int) -> Response:
    with get_db().session() as session:
        endpoint = _endpoint(session, endpoint_id)
        if endpoint.disabled_at is not None:
            flash(gettext("Switch the webhook on first."), "error")
        else:
            store.ping(session, endpoint, now())
            log_change(session, audit.Action.WEBHOOK_TESTED, subject=f"webhook:{endpoint_id}")
            flash(gettext("A test event is on its way: its result shows below in a moment."))
    return redirect(url_for("admin.webhooks_detail", endpoint_id=endpoint_id))


@bp.post("/webhooks/<int:endpoint_id>/delete", endpoint="webhooks_delete")
def webhooks_delete(endpoint_id: int) -> Response:
    with get_db().session() as session:
        endpoint = _endpoint(session, endpoint_id)
        url = endpoint.url
        store.delete_endpoint(session, endpoint)
        log_change(
            session, audit.Action.WEBHOOK_DELETED, subject=f"webhook:{endpoint_id}", before=url
        )
    flash(gettext("The webhook to %(url)s is deleted.", url=url))
    return redirect(url_for("admin.webhooks"))
