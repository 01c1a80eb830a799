"""/api/v1/: the web edge of the API for shop systems. Each view reads the request, checks the
key's scope and hands on to bot.api.actions; every error is answered as JSON."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app, g, jsonify, request
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException, InternalServerError

from bot.api import actions, idempotency, openapi, views
from bot.api.errors import ApiError, Code
from bot.api.keys import find_key, mark_used
from bot.api.ratelimit import Buckets, retry_after
from bot.api.requests import read_contact_patch, read_id, read_limit, read_send
from bot.api.scopes import Scope
from bot.contacts.numbers import settings_region
from bot.db import get_db
from bot.models import ApiKey
from bot.settings.stored import load_settings

log = logging.getLogger("tresen.api")

bp = Blueprint("api", __name__, url_prefix="/api/v1")

# The scope each endpoint needs; an endpoint not named here needs no key (the OpenAPI document).
SCOPES: dict[str, Scope] = {}
PUBLIC = frozenset({"api.openapi_document", "api.unknown"})


@dataclass(frozen=True)
class Caller:
    key_id: int
    name: str
    scopes: frozenset[str]


def needs(scope: Scope) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def mark(view: Callable[..., Any]) -> Callable[..., Any]:
        SCOPES[f"api.{view.__name__}"] = scope
        return view

    return mark


def _now() -> datetime:
    value: datetime = current_app.config["TRESEN_CLOCK"]()
    return value


def _buckets() -> Buckets:
    buckets = current_app.extensions.get("tresen.api_buckets")
    if buckets is None:
        # API_RATE from the environment (bot.config); tests may set API_RATE and API_BURST.
        config = current_app.config
        rate = config.get("API_RATE", config["TRESEN"].api_rate)
        buckets = Buckets(rate, config.get("API_BURST", max(1, round(2 * rate))))
        current_app.extensions["tresen.api_buckets"] = buckets
    return buckets


def _error(exc: ApiError) -> Response:
    response = jsonify(exc.body())
    response.status_code = exc.status
    response.headers.update(exc.headers)
    return response


@bp.errorhandler(ApiError)
def api_error(exc: ApiError) -> Response:
    return _error(exc)


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    if isinstance(exc, InternalServerError):
        log.error("API request failed: %s %s", request.method, request.path, exc_info=exc)
        return _error(ApiError(Code.INTERNAL, "something went wrong; it is in the server's log"))
    code = Code.NOT_FOUND if exc.code == 404 else Code.INVALID
    error = ApiError(code, exc.description or exc.name)
    response = _error(error)
    response.status_code = exc.code or 400
    return response


@bp.before_request
def authenticate() -> None:
    endpoint = request.endpoint or ""
    if endpoint in PUBLIC:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            Code.UNAUTHORIZED,
            "send the API key as `Authorization: Bearer <key>`",
            headers={"WWW-Authenticate": 'Bearer realm="api"'},
        )
    now = _now()
    # One transaction per request: the key's check and the route's work (on SQLite each
    # transaction is a turn at the one writer, so a second one would double the wait).
    with _opening() as session:
        key = find_key(session, token.strip())
        if key is None:
            raise ApiError(
                Code.UNAUTHORIZED,
                "this API key is not known",
                headers={"WWW-Authenticate": 'Bearer realm="api", error="invalid_token"'},
            )
        if key.revoked_at is not None:
            raise ApiError(
                Code.UNAUTHORIZED,
                "this API key was revoked",
                headers={"WWW-Authenticate": 'Bearer realm="api", error="invalid_token"'},
            )
        caller = Caller(key.id, key.name, frozenset(key.scopes))
        wait = _buckets().take(key.id, time.monotonic())
        if wait:
            raise ApiError(
                Code.RATE_LIMITED,
                "too many requests with this key; try again after Retry-After seconds",
                headers={"Retry-After": retry_after(wait)},
            )
        g.api_marked = mark_used(session, key, now)
    scope = SCOPES.get(endpoint)
    if scope is not None and scope not in caller.scopes:
        raise ApiError(Code.FORBIDDEN, f"this API key lacks the scope `{scope}`", scope=str(scope))
    g.api_caller = caller


@contextmanager
def _opening() -> Iterator[Session]:
    """The request's session, opened by `authenticate` and left open for the route when the
    key passes; committed or rolled back when the route's `_session()` block ends."""
    opened: AbstractContextManager[Session] = get_db().session()
    session = opened.__enter__()
    try:
        yield session
    except BaseException as exc:
        opened.__exit__(type(exc), exc, exc.__traceback__)
        raise
    g.api_session = (opened, session)


@contextmanager
def _session() -> Iterator[Session]:
    """The session `authenticate` opened for this request, ending with this block: committed
    on success, rolled back on any error (an API refusal too, except for the key's use noted
    in it, which a savepoint keeps)."""
    opened, session = g.pop("api_session")
    marked = g.get("api_marked", False)
    try:
        if marked:
            with session.begin_nested():
                yield session
        else:
            yield session
    except BaseException as exc:
        if marked and isinstance(exc, ApiError):
            opened.__exit__(None, None, None)
        else:
            opened.__exit__(type(exc), exc, exc.__traceback__)
        raise
    else:
        opened.__exit__(None, None, None)


@bp.teardown_request
def close_session(exc: BaseException | None) -> None:
    """A session no route took (an answer that did not need one) ends here."""
    left = g.pop("api_session", None)
    if left is not None:
        opened, _session = left
        opened.__exit__(None if exc is None else type(exc), exc, None)


def _caller() -> Caller:
    caller: Caller = g.api_caller
    return caller


def _json_body() -> Any:
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(Code.INVALID, "the body is not JSON (Content-Type: application/json)")
    return body


def _region(session: Session) -> str:
    return settings_region(load_settings(session))


@bp.post("/messages")
@needs(Scope.SEND)
def send_message() -> Any:
    body = _json_body()
    wanted = read_send(body)
    caller = _caller()
    idem_key = request.headers.get("Idempotency-Key", "").strip() or None
    if idem_key is not None and len(idem_key) > idempotency.KEY_MAX:
        raise ApiError(
            Code.INVALID, f"Idempotency-Key is at most {idempotency.KEY_MAX} characters long"
        )
    digest = idempotency.request_hash("POST", request.path, body)
    now = _now()
    try:
        with _session() as session:
            if idem_key is not None and (
                kept := idempotency.stored(session, caller.key_id, idem_key, now)
            ):
                return _replay(kept, digest)
            message = actions.send(session, wanted, region=_region(session), now=now)
            answer = {"id": message.id, "status": message.status, "contact_id": message.contact_id}
            if idem_key is not None and not idempotency.keep(
                session, caller.key_id, idem_key, digest, 202, answer, now
            ):
                raise _Raced
    except _Raced:
        # Another request with this key was first: this one's message is rolled back, and
        # the first one's answer is the answer.
        assert idem_key is not None
        with get_db().session() as session:
            kept = idempotency.stored(session, caller.key_id, idem_key, now)
        assert kept is not None
        return _replay(kept, digest)
    return jsonify(answer), 202


class _Raced(Exception):
    pass


def _replay(kept: idempotency.Stored, digest: str) -> Any:
    if kept.request_hash != digest:
        raise ApiError(
            Code.CONFLICT, "this Idempotency-Key was used for another request in the last 24 hours"
        )
    response = jsonify(kept.response)
    response.status_code = kept.status_code
    response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.get("/messages/<int:message_id>")
@needs(Scope.MESSAGES)
def get_message(message_id: int) -> Any:
    with _session() as session:
        return jsonify(views.message_view(actions.message_of(session, message_id)))


@bp.get("/contacts")
@needs(Scope.CONTACTS)
def find_contacts() -> Any:
    number = request.args.get("wa_id", "").strip()
    if not number:
        raise ApiError(Code.INVALID, "give the number to look up as `wa_id`", field="wa_id")
    with _session() as session:
        found = actions.find_contact(session, number, _region(session))
        contacts = [] if found is None else [views.contact_view(found)]
    return jsonify(contacts=contacts)


@bp.get("/contacts/<int:contact_id>")
@needs(Scope.CONTACTS)
def get_contact(contact_id: int) -> Any:
    with _session() as session:
        return jsonify(views.contact_view(actions.contact_of(session, contact_id)))


@bp.patch("/contacts/<int:contact_id>")
@needs(Scope.CONTACTS)
def update_contact(contact_id: int) -> Any:
    patch = read_contact_patch(_json_body())
    caller = _caller()
    with _session() as session:
        contact = actions.contact_of(session, contact_id)
        key = session.get(ApiKey, caller.key_id)
        assert key is not None
        actions.update_contact(session, contact, patch, key, _now())
        session.flush()
        return jsonify(views.contact_view(contact))


@bp.get("/contacts/<int:contact_id>/messages")
@needs(Scope.MESSAGES)
def contact_messages(contact_id: int) -> Any:
    limit = read_limit(request.args.get("limit"))
    before = read_id(request.args.get("before"), "before")
    with _session() as session:
        contact = actions.contact_of(session, contact_id)
        rows, next_before = actions.conversation(session, contact, before, limit)
        return jsonify(messages=[views.message_view(m) for m in rows], next_before=next_before)


@bp.get("/openapi.json")
def openapi_document() -> Any:
    return jsonify(openapi.document())


METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


@bp.route("/", defaults={"rest": ""}, methods=[*METHODS], endpoint="unknown")
@bp.route("/<path:rest>", methods=[*METHODS], endpoint="unknown")
def unknown(rest: str) -> Any:
    """Any other path or method under /api/v1/, answered in the API's JSON rather than the
    plain pages of the rest of the server."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    allowed = []
    for method in METHODS:
        try:
            endpoint, _args = adapter.match(request.path, method=method)
        except HTTPException:
            continue
        if endpoint != "api.unknown":
            allowed.append(method)
    if allowed:
        error = ApiError(
            Code.METHOD_NOT_ALLOWED,
            f"{request.method} is not allowed here; use {', '.join(allowed)}",
            headers={"Allow": ", ".join(allowed)},
        )
    else:
        error = ApiError(Code.NOT_FOUND, f"there is no {request.path}")
    return _error(error)
