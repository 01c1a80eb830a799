"""The follow-up after a closure on the automatic answers page: the approved utility templates
to choose from, each value mapped to the customer's name or a fixed text, the choice checked
against the stored templates, and kept when another section is saved."""

from __future__ import annotations

# ruff: noqa: F811  (test_admin's fixtures, imported, are this module's parameters)
from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bot.admin.follow_up_form import ParamKind, kind_of, source_of
from bot.db import get_db
from bot.models import Contact, MessageTemplate
from bot.outbound import outbox
from bot.rules import Rule
from bot.settings import FollowUpRule, dump_settings
from tests.test_admin import NOW, admin, clock, contact_id, receive  # noqa: F401  (fixtures)
from tests.test_admin_settings import replace_settings, settings_form, stored


def template(name: str, *, category: str = "utility", status: str = "approved") -> MessageTemplate:
    return MessageTemplate(
        name=name,
        language="de",
        category=category,
        status=status,
        parameter_format="positional",
        components=[
            {
                "type": "BODY",
                "text": "Hallo {{1}}, wir sind wieder da. Ihre Nachricht vom {{2}} beantworten wir gleich.",
                "example": {"body_text": [["Anna", "Samstag"]]},
            }
        ],
        origin="synced",
    )


@pytest.fixture
def templates(app: Flask) -> None:
    with get_db(app).session() as session:
        session.add(template("wieder_da"))
        session.add(template("angebot", category="marketing"))
        session.add(template("pausiert", status="paused"))


def test_parameters_read_back_as_the_form_shows_them() -> None:
    assert source_of(ParamKind.NAME, "") == "{{ contact.name }}"
    assert source_of(ParamKind.TEXT, "Samstag") == "Samstag"
    assert source_of(ParamKind.TEXT, "{{ nicht ausführen }}") == (
        "{% raw %}{{ nicht ausführen }}{% endraw %}"
    )
    for kind, text in [(ParamKind.NAME, ""), (ParamKind.TEXT, "{{ x }}"), (ParamKind.TEXT, "a")]:
        assert kind_of(source_of(kind, text)) == (kind, text)
    assert kind_of("{{ business.name }}") == (ParamKind.JINJA, "{{ business.name }}")


def test_the_owner_chooses_an_approved_utility_template_and_maps_its_values(
    app: Flask,
    admin: FlaskClient,
    templates: None,
) -> None:
    data, html = settings_form(admin, "answers")
    assert "Nachfrage nach der Schließzeit" in html
    assert 'value="wieder_da/de"' in html
    # Marketing costs and is capped; a paused one cannot be sent: neither is offered.
    assert "angebot" not in html and "pausiert" not in html
    assert data["follow_up_template"] == ""

    data.update({"follow_up_on": "1", "follow_up_template": "wieder_da/de"})
    response = admin.post("/admin/settings/answers", data=data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "Diese Vorlage braucht 2 Werte" in page
    assert stored(app).follow_up is None
    # The page now shows the chosen template's wording and a row per value.
    assert "Ihre Nachricht vom {{2}}" in page
    assert 'name="fu-0-kind"' in page and 'name="fu-1-kind"' in page

    data.update(
        {"fu-0-kind": "name", "fu-0-text": "", "fu-1-kind": "text", "fu-1-text": "Wochenende"}
    )
    assert admin.post("/admin/settings/answers", data=data).status_code == 302
    assert stored(app).follow_up == FollowUpRule(
        template="wieder_da", language="de", params=("{{ contact.name }}", "Wochenende")
    )
    # Shown again as chosen, and saved unchanged it stays.
    again, html = settings_form(admin, "answers")
    assert again["follow_up_template"] == "wieder_da/de"
    assert (again["fu-0-kind"], again["fu-1-kind"], again["fu-1-text"]) == (
        "name",
        "text",
        "Wochenende",
    )
    assert admin.post("/admin/settings/answers", data=again).status_code == 302
    assert stored(app).follow_up is not None

    # Turned off.
    again.pop("follow_up_on")
    assert admin.post("/admin/settings/answers", data=again).status_code == 302
    assert stored(app).follow_up is None


def test_a_template_that_cannot_be_sent_is_refused(
    app: Flask, admin: FlaskClient, templates: None
) -> None:
    data, _ = settings_form(admin, "answers")
    data.update(
        {
            "follow_up_on": "1",
            "follow_up_template": "angebot/de",
            "fu-0-kind": "name",
            "fu-1-kind": "text",
            "fu-1-text": "x",
        }
    )
    response = admin.post("/admin/settings/answers", data=data)
    assert response.status_code == 400
    assert "Wählen Sie eine genehmigte Vorlage" in response.get_data(as_text=True)
    data.pop("follow_up_template")
    response = admin.post("/admin/settings/answers", data=data)
    assert response.status_code == 400
    assert "Wählen Sie die Vorlage aus" in response.get_data(as_text=True)
    assert stored(app).follow_up is None


def test_a_follow_up_from_the_settings_file_survives_saving_any_section(
    app: Flask, admin: FlaskClient, templates: None
) -> None:
    rule = FollowUpRule(
        template="wieder_da", language="de", params=("{{ contact.name }}", "{{ business.name }}")
    )
    replace_settings(app, dump_settings(replace(stored(app), follow_up=rule)))
    for section in ("hours", "answers", "keywords"):
        data, html = settings_form(admin, section)
        if section == "answers":
            assert 'value="jinja" selected' in html  # Jinja of its own, kept as written
        assert admin.post(f"/admin/settings/{section}", data=data).status_code == 302
        assert stored(app).follow_up == rule


def test_the_conversation_names_the_follow_up(app: Flask, admin: FlaskClient) -> None:
    receive(admin)
    cid = contact_id(app)
    with get_db(app).session() as session:
        contact = session.get_one(Contact, cid)
        payload = {"messaging_product": "whatsapp", "to": contact.wa_id, "type": "template"}
        outbox.enqueue(
            session, contact, payload, now=NOW, text="Wir sind wieder da!", rule=Rule.FOLLOW_UP
        )
    page = admin.get(f"/admin/inbox/{cid}").get_data(as_text=True)
    assert "automatische Nachfrage nach der Schließzeit" in page
