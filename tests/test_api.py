"""The API for shop systems (/api/v1/) through Flask's test client: keys and scopes, sending
texts and templates through the outbox, Idempotency-Key, contacts and their consent record,
conversations, rate limits, and the OpenAPI document every answer is checked against."""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec
from sqlalchemy import func, select

from bot.api import idempotency, openapi
from bot.api.keys import create_key, key_hash
from bot.api.scopes import Scope
from bot.contacts.consent import ConsentSource, set_opt_in
from bot.contacts.erase import erase_contact
from bot.db import get_db
from bot.message_templates.demo import seed_demo_templates
from bot.models import (
    ApiIdempotency,
    ApiKey,
    AuditEntry,
    ConsentEvent,
    Contact,
    Message,
    MessageTemplate,
)
from bot.rules import Rule
from tests.conftest import build_app
from tests.test_admin import NOW, Clock

ANNA = "4915112345678"
ALL = [str(s) for s in Scope]
DOC = openapi.document()


@pytest.fixture
def clock(app: Flask) -> Clock:
    fixed = Clock(NOW)
    app.config["TRESEN_CLOCK"] = fixed
    return fixed


def make_key(app: Flask, scopes: list[str] | None = None, *, revoked: bool = False) -> str:
    with get_db(app).session() as session:
        key, token = create_key(
            session, "Shop", ALL if scopes is None else scopes, by=None, now=NOW
        )
        if revoked:
            key.revoked_at = NOW
    return token


def add_contact(app: Flask, wa_id: str = ANNA, *, wrote_ago: timedelta | None = None) -> int:
    with get_db(app).session() as session:
        contact = Contact(wa_id=wa_id, name="Anna", created_at=NOW)
        if wrote_ago is not None:
            contact.last_inbound_at = NOW - wrote_ago
        session.add(contact)
        session.flush()
        return contact.id


def messages(app: Flask) -> list[Message]:
    with get_db(app).session() as session:
        return list(session.scalars(select(Message).order_by(Message.id)))


def _operation(method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """The document's path template and operation for a concrete request path."""
    local = path.split("?")[0].removeprefix("/api/v1")
    for template, item in DOC["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", r"[^/]+", template) + "$"
        if re.match(pattern, local) and method.lower() in item:
            return template, item[method.lower()]
    return None


def checked(response: Any, method: str, path: str) -> Any:
    """Every answer the tests get fits the OpenAPI document: its status is listed for the
    operation and its body validates against that status's schema."""
    found = _operation(method, path)
    if found is None:  # no such route: the API's error shape all the same
        schema: dict[str, Any] = {"$ref": "#/components/schemas/Error"}
    else:
        template, operation = found
        answer = operation["responses"].get(str(response.status_code))
        assert answer is not None, f"{method} {template}: {response.status_code} not documented"
        content = answer.get("content")
        if content is None:
            return response
        schema = content["application/json"]["schema"]
    assert response.is_json, response.get_data(as_text=True)
    validator = Draft202012Validator({**schema, "components": DOC["components"]})
    validator.validate(response.get_json())
    return response


def call(
    client: FlaskClient,
    method: str,
    path: str,
    token: str | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> Any:
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    response = client.open(path, method=method, json=body, headers=sent)
    return checked(response, method, path)


# Every route, with the scope it needs and a body that would be accepted.
ROUTES = [
    ("POST", "/api/v1/messages", Scope.SEND, {"to": "+49 151 12345678", "text": "Hallo"}),
    ("GET", "/api/v1/messages/1", Scope.MESSAGES, None),
    ("GET", "/api/v1/contacts?wa_id=%2B4915112345678", Scope.CONTACTS, None),
    ("GET", "/api/v1/contacts/1", Scope.CONTACTS, None),
    ("PATCH", "/api/v1/contacts/1", Scope.CONTACTS, {"name": "Anna B."}),
    ("GET", "/api/v1/contacts/1/messages", Scope.MESSAGES, None),
]


@pytest.mark.parametrize(("method", "path", "scope", "body"), ROUTES)
def test_every_route_refuses_missing_wrong_revoked_and_out_of_scope_keys(
    app: Flask, client: FlaskClient, clock: Clock, method: str, path: str, scope: Scope, body: Any
) -> None:
    add_contact(app, wrote_ago=timedelta(hours=1))
    revoked = make_key(app, revoked=True)
    others = make_key(app, [s for s in ALL if s != scope])
    for token, status, words in [
        (None, 401, "Authorization: Bearer"),
        ("tresen_00000000_wrong", 401, "not known"),
        ("nothing like a key", 401, "not known"),
        (revoked, 401, "revoked"),
        (others, 403, str(scope)),
    ]:
        response = call(client, method, path, token, body)
        assert response.status_code == status, (token, response.get_json())
        error = response.get_json()["error"]
        assert words in error["message"]
        assert error["code"] == ("forbidden" if status == 403 else "unauthorized")
    assert messages(app) == []  # nothing was sent by a refused request
    # The key with the scope gets through.
    allowed = call(client, method, path, make_key(app, [str(scope)]), body)
    assert allowed.status_code in (200, 202, 404)


def test_a_bearer_header_with_another_scheme_is_refused(app: Flask, client: FlaskClient) -> None:
    token = make_key(app)
    response = client.get("/api/v1/contacts/1", headers={"Authorization": f"Basic {token}"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_text_inside_the_window_is_queued_through_the_outbox(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    contact_id = add_contact(app, wrote_ago=timedelta(hours=23))
    token = make_key(app)
    response = call(
        client, "POST", "/api/v1/messages", token, {"contact_id": contact_id, "text": "Fertig!"}
    )
    assert response.status_code == 202
    answer = response.get_json()
    assert answer["status"] == "queued" and answer["contact_id"] == contact_id
    [message] = messages(app)
    assert message.id == answer["id"]
    assert message.rule == Rule.API and message.text == "Fertig!"
    assert message.payload is not None
    assert message.payload["to"] == ANNA and message.payload["text"]["body"] == "Fertig!"
    shown = call(client, "GET", f"/api/v1/messages/{message.id}", token)
    assert shown.status_code == 200
    assert shown.get_json()["status"] == "queued" and shown.get_json()["error"] is None


def test_a_text_outside_the_window_is_refused(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    add_contact(app, wrote_ago=timedelta(hours=25))
    token = make_key(app)
    for to in ("+49 151 12345678", "+49 151 87654321"):  # a known contact and a new number
        response = call(client, "POST", "/api/v1/messages", token, {"to": to, "text": "Hallo"})
        assert response.status_code == 422
        assert response.get_json()["error"]["code"] == "outside_window"
    assert messages(app) == []
    with get_db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 1


def test_a_template_to_a_new_number_creates_the_contact(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    with get_db(app).session() as session:
        seed_demo_templates(session, NOW)
    token = make_key(app, ["send"])
    body = {
        "to": "0151 2345 6789",
        "template": {"name": "wieder_da", "language": "de", "params": ["Ben"]},
    }
    response = call(client, "POST", "/api/v1/messages", token, body)
    assert response.status_code == 202, response.get_json()
    with get_db(app).session() as session:
        contact = session.scalars(select(Contact)).one()
        assert contact.wa_id == "4915123456789"  # read in the business's country, as the admin does
    [message] = messages(app)
    assert message.contact_id == contact.id and message.rule == Rule.API
    assert message.payload is not None
    template = message.payload["template"]
    assert template["name"] == "wieder_da" and template["language"] == {"code": "de"}
    assert template["components"][0]["parameters"] == [{"type": "text", "text": "Ben"}]
    assert message.text is not None and "Hallo Ben" in message.text


def test_a_template_that_does_not_fit_is_refused_before_the_outbox(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    with get_db(app).session() as session:
        seed_demo_templates(session, NOW)
    token = make_key(app)
    body = {
        "to": "+4915123456789",
        "template": {"name": "wieder_da", "language": "de", "params": []},
    }
    # The key's first use is noted in the request's transaction, the second is not: either
    # way the refused message's new contact goes, and the first use stays noted.
    for _ in range(2):
        response = call(client, "POST", "/api/v1/messages", token, body)
        assert response.status_code == 422
        error = response.get_json()["error"]
        assert error["code"] == "template_mismatch" and error["reason"] == "count"
        assert messages(app) == []
        with get_db(app).session() as session:
            assert session.scalar(select(func.count()).select_from(Contact)) == 0
            assert session.scalars(select(ApiKey.last_used_at)).one() == NOW


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": "Hallo"}, None),
        ({"to": "+4915112345678", "contact_id": 1, "text": "x"}, None),
        ({"to": "+4915112345678"}, None),
        ({"to": 4915112345678, "text": "x"}, "to"),
        ({"to": "+4915112345678", "template": {"name": "x"}}, "template.language"),
        ({"to": "+4915112345678", "text": "   "}, "text"),
        ([1, 2], "document"),
    ],
)
def test_a_wrong_body_is_a_422_naming_the_field(
    app: Flask, client: FlaskClient, clock: Clock, body: Any, field: str | None
) -> None:
    response = call(client, "POST", "/api/v1/messages", make_key(app), body)
    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "invalid_request"
    if field is not None and field != "document":
        assert error["field"] == field


def test_a_wrong_number_is_a_422(app: Flask, client: FlaskClient, clock: Clock) -> None:
    response = call(
        client, "POST", "/api/v1/messages", make_key(app), {"to": "0151 12", "text": "Hallo"}
    )
    assert response.status_code == 422
    assert response.get_json()["error"]["code"] == "invalid_number"


def test_an_idempotent_retry_sends_once_and_another_body_conflicts(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    contact_id = add_contact(app, wrote_ago=timedelta(hours=1))
    token = make_key(app)
    body = {"contact_id": contact_id, "text": "Ihre Bestellung ist abholbereit."}
    headers = {"Idempotency-Key": "order-4711"}
    first = call(client, "POST", "/api/v1/messages", token, body, headers)
    # The same body in another key order is the same request.
    again = call(client, "POST", "/api/v1/messages", token, dict(reversed(body.items())), headers)
    assert first.status_code == again.status_code == 202
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert len(messages(app)) == 1
    other = call(client, "POST", "/api/v1/messages", token, {**body, "text": "Anders"}, headers)
    assert other.status_code == 409
    assert other.get_json()["error"]["code"] == "idempotency_conflict"
    assert len(messages(app)) == 1
    # Another key's Idempotency-Key of the same name is its own.
    elsewhere = call(client, "POST", "/api/v1/messages", make_key(app), body, headers)
    assert elsewhere.status_code == 202 and elsewhere.get_json()["id"] != first.get_json()["id"]
    # Without the header each request sends.
    call(client, "POST", "/api/v1/messages", token, body)
    assert len(messages(app)) == 3


def test_an_idempotency_key_is_kept_24_hours_and_then_pruned(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    contact_id = add_contact(app, wrote_ago=timedelta(hours=0))
    token = make_key(app)
    body = {"contact_id": contact_id, "template": {"name": "hallo", "language": "de"}}
    headers = {"Idempotency-Key": "k1"}
    assert call(client, "POST", "/api/v1/messages", token, body, headers).status_code == 202
    clock.at = NOW + timedelta(hours=23, minutes=59)
    assert call(client, "POST", "/api/v1/messages", token, body, headers).status_code == 202
    assert len(messages(app)) == 1
    clock.at = NOW + timedelta(hours=24, minutes=1)
    assert call(client, "POST", "/api/v1/messages", token, body, headers).status_code == 202
    assert len(messages(app)) == 2  # the key's 24 hours were over: a new message
    with get_db(app).session() as session:
        assert idempotency.prune(session, NOW + timedelta(hours=49)) == 1
        assert session.scalar(select(func.count()).select_from(ApiIdempotency)) == 0


def test_a_contact_is_found_by_number_and_updated_with_a_consent_record(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    contact_id = add_contact(app)
    token = make_key(app, ["contacts"])
    found = call(client, "GET", "/api/v1/contacts?wa_id=0151%2012345678", token)
    assert [c["id"] for c in found.get_json()["contacts"]] == [contact_id]
    nobody = call(client, "GET", "/api/v1/contacts?wa_id=%2B4915199999999", token)
    assert nobody.get_json() == {"contacts": []}
    assert call(client, "GET", "/api/v1/contacts", token).status_code == 422
    assert call(client, "GET", "/api/v1/contacts/999", token).status_code == 404

    patch = {"name": " Anna  Berger ", "labels": ["VIP", "Abholung", "vip"], "opted_in": True}
    response = call(client, "PATCH", f"/api/v1/contacts/{contact_id}", token, patch)
    assert response.status_code == 200
    shown = response.get_json()
    assert shown["name"] == "Anna Berger" and shown["opted_in"] is True
    assert shown["labels"] == ["Abholung", "VIP"] and shown["number"] == "+49 1511 2345678"
    assert call(client, "GET", f"/api/v1/contacts/{contact_id}", token).get_json() == shown
    with get_db(app).session() as session:
        [event] = session.scalars(select(ConsentEvent)).all()
        assert (event.contact_id, event.opted_in, event.source) == (contact_id, True, "api")
        contact = session.get(Contact, contact_id)
        assert contact is not None and contact.opted_in_source == "api"
        entries = session.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
        assert [e.action for e in entries] == [
            "contact.changed",
            "contact.labels",
            "contact.opt_in",
        ]
        assert {e.user_name for e in entries} == {"API: Shop"}
    # Opting out is recorded too; the same value again records nothing.
    for _ in range(2):
        call(client, "PATCH", f"/api/v1/contacts/{contact_id}", token, {"opted_in": False})
    with get_db(app).session() as session:
        assert [
            e.opted_in for e in session.scalars(select(ConsentEvent).order_by(ConsentEvent.id))
        ] == [True, False]
    refused = call(client, "PATCH", f"/api/v1/contacts/{contact_id}", token, {"wa_id": "1"})
    assert refused.status_code == 422 and refused.get_json()["error"]["field"] == "wa_id"


def test_a_conversation_is_read_page_by_page(app: Flask, client: FlaskClient, clock: Clock) -> None:
    contact_id = add_contact(app, wrote_ago=timedelta(hours=1))
    token = make_key(app)
    for n in range(5):
        call(client, "POST", "/api/v1/messages", token, {"contact_id": contact_id, "text": f"{n}"})
    seen: list[str] = []
    before: int | None = None
    pages = 0
    while True:
        query = f"?limit=2&before={before}" if before else "?limit=2"
        response = call(client, "GET", f"/api/v1/contacts/{contact_id}/messages{query}", token)
        assert response.status_code == 200
        page = response.get_json()
        seen += [m["text"] for m in page["messages"]]
        pages += 1
        before = page["next_before"]
        if before is None:
            break
    assert seen == ["4", "3", "2", "1", "0"] and pages == 3
    bad = call(client, "GET", f"/api/v1/contacts/{contact_id}/messages?limit=0", token)
    assert bad.status_code == 422


def test_requests_beyond_the_rate_are_refused_with_retry_after(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    app.config.update(API_RATE=0.01, API_BURST=3)
    token, other = make_key(app), make_key(app)
    codes = [call(client, "GET", "/api/v1/contacts/1", token).status_code for _ in range(4)]
    assert codes == [404, 404, 404, 429]
    refused = call(client, "GET", "/api/v1/contacts/1", token)
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    assert call(client, "GET", "/api/v1/contacts/1", other).status_code == 404  # per key


def test_the_rate_is_api_rate_with_a_burst_of_twice_as_many(
    database_url: str, tmp_path: Any
) -> None:
    app = build_app(database_url, tmp_path, API_RATE="1")
    try:
        token = make_key(app)
        client = app.test_client()
        headers = {"Authorization": f"Bearer {token}"}
        codes = [client.get("/api/v1/contacts/1", headers=headers).status_code for _ in range(3)]
        assert codes == [404, 404, 429]
    finally:
        get_db(app).dispose()


def test_keys_are_kept_hashed_and_their_use_noted(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    token = make_key(app)
    assert re.fullmatch(r"tresen_[0-9a-f]{8}_[\w-]{43}", token)
    call(client, "GET", "/api/v1/contacts/1", token)
    with get_db(app).session() as session:
        key = session.scalars(select(ApiKey)).one()
        assert key.key_hash == key_hash(token) and token not in str(key.__dict__)
        assert token.startswith(f"tresen_{key.prefix}_")
        assert key.last_used_at == NOW


def test_unknown_paths_and_methods_answer_in_json(app: Flask, client: FlaskClient) -> None:
    missing = call(client, "GET", "/api/v1/orders", make_key(app))
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    wrong = client.delete(
        "/api/v1/messages/1", headers={"Authorization": f"Bearer {make_key(app)}"}
    )
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "GET"
    assert wrong.get_json()["error"]["code"] == "method_not_allowed"


def _flask_path(rule: str) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.removeprefix("/api/v1"))


def test_the_openapi_document_names_every_route_and_nothing_else(
    app: Flask, client: FlaskClient
) -> None:
    response = client.get("/api/v1/openapi.json")  # no key needed
    assert response.status_code == 200
    served = response.get_json()
    validate_spec(served)
    registered = {
        (_flask_path(rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.unknown"
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    documented = {(path, method) for path, item in served["paths"].items() for method in item}
    assert registered == documented
    # Each operation's scope is the one the route checks.
    from bot.api.routes import SCOPES

    for rule in app.url_map.iter_rules():
        if rule.endpoint in SCOPES:
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
                operation = served["paths"][_flask_path(rule.rule)][method.lower()]
                assert operation["x-scope"] == SCOPES[rule.endpoint]


def test_concurrent_retries_with_one_idempotency_key_send_once(app: Flask, clock: Clock) -> None:
    contact_id = add_contact(app, wrote_ago=timedelta(hours=1))
    token = make_key(app)
    body = {"contact_id": contact_id, "text": "Ihre Bestellung ist da."}
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "same"}
    start = threading.Barrier(6)
    answers: list[Any] = []

    def post() -> None:
        client = app.test_client()
        start.wait()
        response = client.post("/api/v1/messages", json=body, headers=headers)
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 6
    assert {status for status, _ in answers} == {202}
    assert len({answer["id"] for _, answer in answers}) == 1
    assert len(messages(app)) == 1


NEWS: dict[str, Any] = {
    "name": "news",
    "language": "de",
    "category": "marketing",
    "parameter_format": "positional",
    "components": [
        {"type": "BODY", "text": "Neu bei uns: {{1}}", "example": {"body_text": [["Tulpen"]]}}
    ],
}


@pytest.mark.parametrize("erased", [False, True])
def test_an_offer_never_goes_to_a_customer_who_said_no_a_utility_template_still_does(
    app: Flask, client: FlaskClient, clock: Clock, erased: bool
) -> None:
    with get_db(app).session() as session:
        seed_demo_templates(session, NOW)
        session.add(MessageTemplate(status="approved", origin="synced", updated_at=NOW, **NEWS))
        contact = Contact(wa_id=ANNA, name="Anna", created_at=NOW)
        session.add(contact)
        session.flush()
        set_opt_in(session, contact, True, ConsentSource.ADMIN, NOW - timedelta(days=9))
        set_opt_in(session, contact, False, ConsentSource.KEYWORD, NOW - timedelta(days=2))
        if erased:
            assert erase_contact(session, contact, NOW - timedelta(days=1)).kept_opt_out
    token = make_key(app, ["send"])
    offer = {"to": f"+{ANNA}", "template": {"name": "news", "language": "de", "params": ["Tulpen"]}}
    refused = call(client, "POST", "/api/v1/messages", token, offer)
    assert refused.status_code == 422
    assert refused.get_json()["error"] == {
        "code": "template_mismatch",
        "message": "the template news is an offer (marketing), and this customer said no to offers",
        "reason": "opted_out",
    }
    assert messages(app) == []
    service = {**offer, "template": {"name": "wieder_da", "language": "de", "params": ["Anna"]}}
    assert call(client, "POST", "/api/v1/messages", token, service).status_code == 202
    [message] = messages(app)
    assert message.payload is not None and message.payload["template"]["name"] == "wieder_da"
    # A customer never asked has not said no: the shop system's own consent counts.
    other = {**offer, "to": "+4915199887766"}
    assert call(client, "POST", "/api/v1/messages", token, other).status_code == 202
