"""The template picker and the one check before the outbox: in a conversation whose window has
closed, in a broadcast (form, CLI and each contact's message), with templates stored as Meta
lists them."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import func, select

from bot import broadcasts
from bot.contacts.audiences import parse_audience
from bot.contacts.consent import ConsentSource, set_opt_in
from bot.db import get_db
from bot.models import Attachment, Broadcast, Contact, Message, MessageTemplate
from bot.settings.stored import save_settings
from tests.fakegraph import FakeGraph, sample_picture
from tests.test_admin import NOW, Clock, conversation, csrf_of, demo_owner, outbound
from tests.test_autoreply import SHOP
from tests.test_dispatcher import TOKEN, Running, wait_until

ORDER_READY: dict[str, Any] = {
    "name": "order_ready",
    "language": "de",
    "category": "utility",
    "parameter_format": "positional",
    "components": [
        {
            "type": "BODY",
            "text": "Hallo {{1}}, Ihre Bestellung {{2}} ist abholbereit.",
            "example": {"body_text": [["Anna", "#1234"]]},
        },
        {"type": "FOOTER", "text": "Blumen Müller"},
    ],
}
WELCOME_BACK: dict[str, Any] = {
    "name": "welcome_back",
    "language": "de",
    "category": "utility",
    "parameter_format": "named",
    "components": [
        {
            "type": "BODY",
            "text": "Hallo {{first_name}}, wir sind wieder für Sie da!",
            "example": {
                "body_text_named_params": [{"param_name": "first_name", "example": "Anna"}]
            },
        }
    ],
}
SPRING: dict[str, Any] = {
    "name": "spring_offer",
    "language": "de",
    "category": "marketing",
    "parameter_format": "positional",
    "components": [
        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1h"]}},
        {"type": "BODY", "text": "Frühling bei {{1}}!", "example": {"body_text": [["uns"]]}},
    ],
}
PAUSED: dict[str, Any] = {**ORDER_READY, "name": "old_offer", "status": "paused"}


@pytest.fixture
def admin(app: Flask, client: FlaskClient) -> FlaskClient:
    app.config["TRESEN_CLOCK"] = Clock(NOW)
    return demo_owner(app, client)


def seed(app: Flask, *templates: dict[str, Any]) -> dict[str, int]:
    """Templates stored as the sync stores them; their row ids by name."""
    ids = {}
    with get_db(app).session() as session:
        for t in templates:
            row = MessageTemplate(
                status=t.get("status", "approved"), origin="synced", updated_at=NOW, **{
                    k: v for k, v in t.items() if k != "status"
                }
            )  # fmt: skip
            session.add(row)
            session.flush()
            ids[t["name"]] = row.id
    return ids


def closed_conversation(app: Flask, admin: FlaskClient) -> tuple[int, str]:
    return conversation(app, admin, at=NOW - timedelta(hours=25))


# --- the conversation -------------------------------------------------------------------------


def test_the_closed_window_offers_the_approved_templates_with_their_wording(
    app: Flask, admin: FlaskClient
) -> None:
    ids = seed(app, ORDER_READY, SPRING, PAUSED)
    _cid, html = closed_conversation(app, admin)
    assert 'name="template_id"' in html
    assert f'<option value="{ids["order_ready"]}"' in html
    assert "Hallo {{1}}, Ihre Bestellung {{2}} ist abholbereit." in html
    assert (
        "Marketing (Angebote" in html and "Service (Mitteilungen" in html
    )  # grouped by category, in German
    assert f'value="{ids["old_offer"]}"' not in html  # paused: not offered
    assert 'data-name="Anna"' in html  # the preview is filled with this contact's values
    assert 'name="name"' not in html  # no typing of names when templates are known


def test_a_picked_template_goes_out_with_this_contacts_values(
    app: Flask, admin: FlaskClient
) -> None:
    ids = seed(app, ORDER_READY)
    cid, html = closed_conversation(app, admin)
    answer = admin.post(
        f"/admin/inbox/{cid}/template",
        data={
            "csrf_token": csrf_of(html),
            "template_id": str(ids["order_ready"]),
            "source_1": "name",
            "source_2": "text",
            "text_2": "#1234",
        },
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 200, answer.get_json()
    sent = outbound(app)[-1]
    assert (sent.rule, sent.status) == ("manual", "queued")
    assert sent.text == "Hallo Anna, Ihre Bestellung #1234 ist abholbereit."
    assert sent.payload is not None
    assert sent.payload["template"] == {
        "name": "order_ready",
        "language": {"code": "de"},
        "components": [
            {
                "type": "body",
                "parameters": [{"type": "text", "text": "Anna"}, {"type": "text", "text": "#1234"}],
            }
        ],
    }


NEWS: dict[str, Any] = {
    "name": "news",
    "language": "de",
    "category": "marketing",
    "parameter_format": "positional",
    "components": [{"type": "BODY", "text": "Neu: {{1}}", "example": {"body_text": [["Tulpen"]]}}],
}


def test_no_offer_to_a_customer_who_said_no_picked_or_typed(app: Flask, admin: FlaskClient) -> None:
    ids = seed(app, NEWS)
    cid, html = closed_conversation(app, admin)
    with get_db(app).session() as session:
        contact = session.get(Contact, cid)
        assert contact is not None
        set_opt_in(session, contact, True, ConsentSource.ADMIN, NOW - timedelta(days=3))
        set_opt_in(session, contact, False, ConsentSource.KEYWORD, NOW - timedelta(hours=2))
    before = len(outbound(app))
    picked = {"template_id": str(ids["news"]), "source_1": "text", "text_1": "Tulpen"}
    typed = {"name": "news", "language": "de", "params": "Tulpen"}
    for form in (picked, typed):
        answer = admin.post(
            f"/admin/inbox/{cid}/template",
            data={"csrf_token": csrf_of(html), **form},
            headers={"Accept": "application/json"},
        )
        assert answer.status_code == 400
        assert "news ist ein Angebot" in answer.get_json()["error"]  # the owner's German
    assert len(outbound(app)) == before


def test_named_parameters_are_sent_with_their_names(app: Flask, admin: FlaskClient) -> None:
    ids = seed(app, WELCOME_BACK)
    cid, html = closed_conversation(app, admin)
    admin.post(
        f"/admin/inbox/{cid}/template",
        data={
            "csrf_token": csrf_of(html),
            "template_id": str(ids["welcome_back"]),
            "source_1": "name",
        },
    )
    sent = outbound(app)[-1]
    assert sent.payload is not None
    assert sent.payload["template"]["components"] == [
        {
            "type": "body",
            "parameters": [{"type": "text", "parameter_name": "first_name", "text": "Anna"}],
        }
    ]


@pytest.mark.parametrize(
    ("template", "fields", "reason"),
    [
        (ORDER_READY, {"source_1": "name", "source_2": "text"}, "{{2}} ist leer"),
        (ORDER_READY, {"source_1": "name", "source_2": "text", "text_2": "a\nb"}, "{{2}}"),
        (SPRING, {"source_1": "business"}, "spring_offer"),  # an image header, no file
    ],
)
def test_a_mismatch_is_refused_and_nothing_is_queued(
    app: Flask, admin: FlaskClient, template: dict[str, Any], fields: dict[str, str], reason: str
) -> None:
    ids = seed(app, template)
    cid, html = closed_conversation(app, admin)
    before = len(outbound(app))
    answer = admin.post(
        f"/admin/inbox/{cid}/template",
        data={"csrf_token": csrf_of(html), "template_id": str(ids[template["name"]]), **fields},
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 400
    error = answer.get_json()["error"]
    assert error.startswith("Nicht gesendet:") and reason in error
    assert "Es wurde nichts in die Warteschlange gestellt." in error
    assert len(outbound(app)) == before


def test_a_typed_name_is_checked_too_once_templates_are_stored(
    app: Flask, admin: FlaskClient
) -> None:
    seed(app, ORDER_READY)
    cid, html = closed_conversation(app, admin)
    before = len(outbound(app))
    answer = admin.post(
        f"/admin/inbox/{cid}/template",
        data={"csrf_token": csrf_of(html), "name": "order_ready", "language": "de", "params": "X"},
        headers={"Accept": "application/json"},
    )
    assert answer.status_code == 400
    assert "2" in answer.get_json()["error"]
    assert len(outbound(app)) == before


# --- broadcasts -------------------------------------------------------------------------------


@pytest.fixture
def shop(app: Flask) -> Flask:
    with get_db(app).session() as session:
        save_settings(session, SHOP)
    return app


def add_contact(app: Flask, wa_id: str, name: str) -> None:
    with get_db(app).session() as session:
        session.add(Contact(wa_id=wa_id, name=name, opted_in=True))


def create(app: Flask, content: broadcasts.Content) -> int:
    with get_db(app).session() as session:
        return broadcasts.create(
            session, content, parse_audience("all"), timezone="Europe/Berlin", now=NOW
        ).id


def count_broadcasts(app: Flask) -> int:
    with get_db(app).session() as session:
        return session.scalar(select(func.count()).select_from(Broadcast)) or 0


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (
            broadcasts.Content(template="order_ready", language="de", params=("x",)),
            "needs 2 value(s), 1 given",
        ),
        (broadcasts.Content(template="nope", language="de"), "there is no template nope"),
        (
            broadcasts.Content(
                template="spring_offer", language="de", params=("{{ business.name }}",)
            ),
            "has a image header: add a file",
        ),
    ],
)
def test_a_broadcast_that_does_not_fit_its_template_is_refused(
    shop: Flask, content: broadcasts.Content, reason: str
) -> None:
    seed(shop, ORDER_READY, SPRING)
    add_contact(shop, "4915111111111", "Anna")
    with pytest.raises(
        broadcasts.BroadcastError, match=reason.replace("(", r"\(").replace(")", r"\)")
    ):
        create(shop, content)
    assert count_broadcasts(shop) == 0


def test_without_stored_templates_a_broadcast_goes_by_name_as_before(shop: Flask) -> None:
    add_contact(shop, "4915111111111", "Anna")
    create(shop, broadcasts.Content(template="anything", language="de", params=("x",)))
    assert count_broadcasts(shop) == 1


def test_demo_templates_alone_leave_other_names_to_the_shop(shop: Flask) -> None:
    """Console mode's demo templates are checked when named, but any other name may still be
    tried: only a list from Meta says which names exist."""
    from bot.message_templates.demo import seed_demo_templates

    with get_db(shop).session() as session:
        assert seed_demo_templates(session, NOW) > 0
    add_contact(shop, "4915111111111", "Anna")
    create(shop, broadcasts.Content(template="promo", language="de", params=("x",)))
    with pytest.raises(broadcasts.BroadcastError, match="needs 1 value"):
        create(shop, broadcasts.Content(template="wieder_da", language="de"))
    assert count_broadcasts(shop) == 1


def test_the_cli_refuses_a_mismatch_in_one_line(shop: Flask, runner: FlaskCliRunner) -> None:
    seed(shop, ORDER_READY)
    result = runner.invoke(
        args=["broadcast", "create", "--wa-template", "order_ready", "--language", "de",
              "--param", "{{ contact.name }}"]
    )  # fmt: skip
    assert result.exit_code != 0
    assert "Error: the template order_ready needs 2 value(s), 1 given" in result.output
    assert count_broadcasts(shop) == 0


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph(token=TOKEN) as fake:
        yield fake


def test_each_contact_gets_named_parameters_and_one_who_does_not_fit_fails_before_sending(
    shop: Flask, graph: FakeGraph
) -> None:
    seed(shop, WELCOME_BACK)
    add_contact(shop, "4915111111111", "Anna")
    add_contact(shop, "4915122222222", "")  # no name: {{first_name}} would be empty
    b = create(
        shop,
        broadcasts.Content(template="welcome_back", language="de", params=("{{ contact.name }}",)),
    )
    with get_db(shop).session() as session:
        run_id = broadcasts.start_run(session, b, NOW, NOW)
    assert run_id is not None
    broadcasts.write_run(get_db(shop), run_id, clock=lambda: NOW)
    with get_db(shop).session() as session:
        found = {
            m.contact.wa_id: (m.status, m.error_reason, m.payload)
            for m in session.scalars(select(Message).where(Message.broadcast_run_id == run_id))
        }
    status, reason, _payload = found["4915122222222"]
    assert (status, reason) == ("failed", "the value for {{first_name}} is empty")
    assert found["4915111111111"][0] == "queued"
    assert found["4915111111111"][2]["template"]["components"] == [
        {
            "type": "body",
            "parameters": [{"type": "text", "parameter_name": "first_name", "text": "Anna"}],
        }
    ]
    # The outbox sends the one that fits; Meta never sees the other (never queued).
    with Running(shop, graph):
        wait_until(lambda: sent_status(shop, "4915111111111") == "sent")
    sent = [r for r in graph.requests if r.path.endswith("/messages")]
    assert [r.json["to"] for r in sent] == ["4915111111111"]
    assert sent[0].json["template"]["components"][0]["parameters"][0]["parameter_name"] == (
        "first_name"
    )


def sent_status(app: Flask, wa_id: str) -> str | None:
    with get_db(app).session() as session:
        return session.scalar(
            select(Message.status)
            .join(Contact, Contact.id == Message.contact_id)
            .where(Contact.wa_id == wa_id, Message.direction == "out")
        )


# --- the broadcast form -----------------------------------------------------------------------


def broadcast_form(admin: FlaskClient, **fields: str) -> dict[str, str]:
    html = admin.get("/admin/broadcasts/new").get_data(as_text=True)
    return {"csrf_token": csrf_of(html), "kind": "template", "when": "now", **fields}


def test_the_broadcast_form_picks_a_template_and_previews_it_for_a_sample_contact(
    app: Flask, admin: FlaskClient
) -> None:
    ids = seed(app, WELCOME_BACK)
    add_contact(app, "4915111111111", "Berta")
    page = admin.get("/admin/broadcasts/new").get_data(as_text=True)
    assert f'<option value="{ids["welcome_back"]}"' in page
    assert 'name="params"' not in page  # nothing typed from memory
    form = broadcast_form(admin, template_id=str(ids["welcome_back"]), source_1="name")
    shown = admin.post("/admin/broadcasts/check.json", data=form).get_json()["preview"]
    assert shown["text"] == "Hallo Berta, wir sind wieder für Sie da!"
    assert shown["template"] == "welcome_back"
    created = admin.post("/admin/broadcasts", data=form)
    assert created.status_code == 302
    with get_db(app).session() as session:
        stored = session.scalars(select(Broadcast)).one()
        assert (stored.template_name, stored.language, stored.params) == (
            "welcome_back",
            "de",
            ["{{ contact.name }}"],
        )


def test_the_broadcast_form_refuses_what_does_not_fit_the_template(
    app: Flask, admin: FlaskClient
) -> None:
    ids = seed(app, ORDER_READY)
    add_contact(app, "4915111111111", "Berta")
    form = broadcast_form(
        admin, template_id=str(ids["order_ready"]), source_1="name", source_2="text"
    )
    refused = admin.post("/admin/broadcasts", data=form)
    assert refused.status_code == 400
    assert "Die Nachricht passt nicht zur Vorlage: der Wert für {{2}} ist leer." in (
        refused.get_data(as_text=True)
    )
    assert count_broadcasts(app) == 0


def test_the_broadcast_preview_says_what_does_not_fit(app: Flask, admin: FlaskClient) -> None:
    ids = seed(app, ORDER_READY)
    add_contact(app, "4915111111111", "Berta")
    form = broadcast_form(
        admin, template_id=str(ids["order_ready"]), source_1="name", source_2="text"
    )
    shown = admin.post("/admin/broadcasts/check.json", data=form).get_json()["preview"]
    assert shown["error"] == "Die Nachricht passt nicht zur Vorlage: der Wert für {{2}} ist leer."


def test_a_media_header_template_carries_the_uploaded_file(app: Flask, admin: FlaskClient) -> None:
    ids = seed(app, SPRING)
    cid, html = closed_conversation(app, admin)
    answer = admin.post(
        f"/admin/inbox/{cid}/template",
        data={
            "csrf_token": csrf_of(html),
            "template_id": str(ids["spring_offer"]),
            "source_1": "business",
            "file": (io.BytesIO(sample_picture()), "tulpen.png"),
        },
        headers={"Accept": "application/json"},
        content_type="multipart/form-data",
    )
    assert answer.status_code == 200, answer.get_json()
    sent = outbound(app)[-1]
    assert sent.payload is not None
    header, body = sent.payload["template"]["components"]
    assert header["type"] == "header" and set(header["parameters"][0]["image"]) == {"file"}
    assert body == {"type": "body", "parameters": [{"type": "text", "text": "Blumen Müller"}]}
    with get_db(app).session() as session:
        kept = session.scalars(select(Attachment).where(Attachment.message_id == sent.id)).one()
        assert kept.kind == "image"
