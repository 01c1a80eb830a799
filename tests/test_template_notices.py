"""Meta's template notifications through the real webhook: the stored template follows them, a
notice shows on every admin page until dismissed, and coming broadcasts with a paused,
rejected or re-categorised template are flagged."""

# The fixtures `admin` and `clock` come from test_admin; the tests name them as parameters.
# ruff: noqa: F811

from __future__ import annotations

import html
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot import broadcasts, users
from bot.contacts.audiences import parse_audience
from bot.db import get_db
from bot.message_templates.flags import (
    BroadcastUse,
    FlagReason,
    TemplateState,
    affected,
    language_key,
    reason_for,
)
from bot.models import AuditEntry, MessageTemplate, Notice, User
from bot.whatsapp import events
from tests.conftest import post_notification
from tests.payloads import template_category, template_quality, template_status
from tests.test_admin import NOW, XSS_NAME, admin, clock, csrf_of  # noqa: F401

AT = int(NOW.timestamp())


def store_template(
    app: Flask,
    name: str = "angebot",
    language: str = "de",
    *,
    meta_id: str | None = "1234567890",
    status: str = "approved",
    category: str = "utility",
) -> int:
    with get_db(app).session() as session:
        row = MessageTemplate(
            meta_id=meta_id,
            name=name,
            language=language,
            category=category,
            status=status,
            quality="green",
            parameter_format="positional",
            components=[{"type": "BODY", "text": "Hallo {{1}}, heute -10 %!"}],
            origin="synced",
            synced_at=NOW,
            updated_at=NOW,
        )
        session.add(row)
        session.flush()
        return row.id


def schedule(app: Flask, template: str = "angebot", language: str = "de", *, days: int = 2) -> int:
    """A template broadcast planned for later: scheduled, nothing sent yet."""
    with get_db(app).session() as session:
        created = broadcasts.create(
            session,
            broadcasts.Content(template=template, language=language, params=("Anna",)),
            parse_audience("all"),
            timezone="Europe/Berlin",
            now=NOW,
            at=NOW + timedelta(days=days),
        )
        return created.id


def template(app: Flask, name: str = "angebot") -> MessageTemplate:
    with get_db(app).session() as session:
        row = session.scalar(select(MessageTemplate).where(MessageTemplate.name == name))
        assert row is not None
        session.expunge(row)
        return row


def open_notices(app: Flask) -> list[Notice]:
    with get_db(app).session() as session:
        rows = list(
            session.scalars(select(Notice).where(Notice.dismissed_at.is_(None)).order_by(Notice.id))
        )
        session.expunge_all()
        return rows


def page(admin: FlaskClient, path: str) -> str:
    response = admin.get(path)
    assert response.status_code == 200, path
    return response.get_data(as_text=True)


def text_of(markup: str) -> str:
    return " ".join(html.unescape(markup).split())


# --- the three notifications, end to end --------------------------------------------------------


def test_a_paused_template_is_stored_shown_on_every_page_and_flags_its_scheduled_broadcast(
    app: Flask, admin: FlaskClient
) -> None:
    template_id = store_template(app)
    store_template(app, "willkommen", meta_id="555")
    coming = schedule(app)
    other = schedule(app, "willkommen")  # another template: not flagged
    response = post_notification(
        admin, template_status("PAUSED", reason="LOW_QUALITY_RATING", at=AT)
    )
    assert response.status_code == 200

    row = template(app)
    assert (row.status, row.reason) == ("paused", "LOW_QUALITY_RATING")
    (notice,) = open_notices(app)
    assert (notice.kind, notice.template_id) == ("template_paused", template_id)
    assert notice.details["broadcasts"] == [coming]
    assert notice.details["flag"] == "paused"

    for path in ("/admin/inbox", "/admin/contacts", "/admin/settings", "/admin/notices"):
        shown = text_of(page(admin, path))
        assert "Meta hat die Vorlage angebot (de) pausiert" in shown, path
    banner = text_of(page(admin, "/admin/inbox"))
    assert "LOW_QUALITY_RATING" in banner
    assert f'href="/admin/broadcasts/{coming}"' in page(admin, "/admin/inbox")

    listing = page(admin, "/admin/broadcasts")
    cards = {int(m.split('"')[0]): m for m in listing.split('data-id="')[1:]}
    assert "template-flag" in cards[coming]
    assert "template-flag" not in cards[other]
    own = text_of(page(admin, f"/admin/broadcasts/{coming}"))
    assert "Meta hat die Vorlage angebot pausiert: Diese Rundsendung kann nicht" in own
    assert "template-flag" not in page(admin, f"/admin/broadcasts/{other}")


def test_approval_after_the_pause_lifts_the_flag(app: Flask, admin: FlaskClient) -> None:
    store_template(app)
    coming = schedule(app)
    post_notification(admin, template_status("PAUSED", at=AT))
    assert post_notification(admin, template_status("REINSTATED", at=AT + 60)).status_code == 200
    assert template(app).status == "approved"
    kinds = [n.kind for n in open_notices(app)]
    assert kinds == ["template_paused", "template_reinstated"]
    assert "template-flag" not in page(admin, f"/admin/broadcasts/{coming}")


def test_a_move_from_utility_to_marketing_is_stored_and_flags_the_broadcast(
    app: Flask, admin: FlaskClient
) -> None:
    store_template(app, category="utility")
    coming = schedule(app)
    response = post_notification(admin, template_category("MARKETING", "UTILITY", at=AT))
    assert response.status_code == 200
    row = template(app)
    assert (row.category, row.previous_category, row.status) == ("marketing", "utility", "approved")
    (notice,) = open_notices(app)
    assert notice.kind == "template_recategorised"
    assert notice.details["broadcasts"] == [coming]
    shown = text_of(page(admin, "/admin/inbox"))
    assert "von Utility zu Marketing verschoben" in shown
    own = text_of(page(admin, f"/admin/broadcasts/{coming}"))
    assert "kostet jetzt jede Nachricht dieser Rundsendung den Marketing-Preis" in own


def test_an_announced_move_changes_nothing_yet_but_is_told(app: Flask, admin: FlaskClient) -> None:
    store_template(app, category="utility")
    doc = template_category("UTILITY", None, correct="MARKETING", at=AT)
    assert post_notification(admin, doc).status_code == 200
    row = template(app)
    assert (row.category, row.previous_category) == ("utility", None)
    (notice,) = open_notices(app)
    assert notice.kind == "template_recategorisation_planned"
    assert "wird die Vorlage angebot (de) zu Marketing verschieben" in text_of(
        page(admin, "/admin/inbox")
    )


def test_a_red_quality_score_is_stored_and_told(app: Flask, admin: FlaskClient) -> None:
    store_template(app)
    assert post_notification(admin, template_quality("RED", "GREEN", at=AT)).status_code == 200
    assert template(app).quality == "red"
    (notice,) = open_notices(app)
    assert (notice.kind, notice.details["quality"]) == ("template_quality_low", "red")
    assert "Die Qualität der Vorlage angebot (de) ist niedrig" in text_of(
        page(admin, "/admin/inbox")
    )
    # Better again: stored, nothing more to tell.
    assert post_notification(admin, template_quality("GREEN", "RED", at=AT + 60)).status_code == 200
    assert template(app).quality == "green"
    assert len(open_notices(app)) == 1


def test_a_template_is_found_by_name_and_meta_s_way_of_writing_the_language(
    app: Flask, admin: FlaskClient
) -> None:
    store_template(app, "bestellung", "en_US", meta_id=None)
    doc = template_status("REJECTED", name="bestellung", language="en-US", reason="INVALID_FORMAT")
    why = "Your template has parameters placed next to each other."
    doc["entry"][0]["changes"][0]["value"]["rejection_info"] = {"reason": why}
    assert post_notification(admin, doc).status_code == 200
    row = template(app, "bestellung")
    assert (row.status, row.reason, row.meta_id) == ("rejected", "INVALID_FORMAT", "1234567890")
    # Meta's own words on why, beside its code.
    shown = text_of(page(admin, "/admin/notices"))
    assert "Meta hat die Vorlage bestellung (en_US) abgelehnt." in shown
    assert why in shown and "INVALID_FORMAT" in shown


def test_a_delivery_repeated_raises_one_notice(app: Flask, admin: FlaskClient) -> None:
    store_template(app)
    for _ in range(3):
        assert post_notification(admin, template_status("DISABLED", at=AT)).status_code == 200
    assert [n.kind for n in open_notices(app)] == ["template_disabled"]


def test_a_template_not_stored_yet_is_told_and_left_to_the_sync(
    app: Flask, admin: FlaskClient
) -> None:
    coming = schedule(app, "neu")
    doc = template_status("PAUSED", name="neu", template_id=42, at=AT)
    assert post_notification(admin, doc).status_code == 200
    with get_db(app).session() as session:
        assert session.scalar(select(MessageTemplate)) is None
    (notice,) = open_notices(app)
    assert (notice.template_id, notice.details["broadcasts"]) == (None, [coming])


def test_a_flagged_template_is_told_but_still_sendable(app: Flask, admin: FlaskClient) -> None:
    schedule(app, "neu")  # created while no template was stored: sent by its name unchecked
    store_template(app)
    coming = schedule(app)
    for name in ("angebot", "neu"):  # stored, and not stored yet
        doc = template_status("FLAGGED", name=name, template_id=len(name), at=AT)
        assert post_notification(admin, doc).status_code == 200
    assert template(app).status == "approved"
    notices = open_notices(app)
    assert [n.kind for n in notices] == ["template_flagged", "template_flagged"]
    assert all("broadcasts" not in n.details for n in notices)
    assert "template-flag" not in page(admin, f"/admin/broadcasts/{coming}")
    assert "Meta warnt vor der Vorlage angebot (de)" in text_of(page(admin, "/admin/inbox"))


def test_an_unknown_event_leaves_the_status_as_it_is(app: Flask, admin: FlaskClient) -> None:
    store_template(app)
    assert post_notification(admin, template_status("SOMETHING_NEW", at=AT)).status_code == 200
    assert template(app).status == "approved"
    assert open_notices(app) == []


@pytest.mark.parametrize(
    "change",
    [
        {"message_template_id": "abc", "event": "PAUSED"},
        {"message_template_id": 1, "event": 7},
        {"message_template_id": 1},
        {"message_template_id": True, "event": "PAUSED"},
        "not an object",
    ],
)
def test_a_template_notification_of_the_wrong_shape_is_refused_not_a_500(
    app: Flask, admin: FlaskClient, change: Any
) -> None:
    doc = template_status("PAUSED")
    value = doc["entry"][0]["changes"][0]["value"]
    if isinstance(change, dict):
        value.update(change)
        if "event" not in change:
            del value["event"]
    else:
        doc["entry"][0]["changes"][0]["value"] = change
    response = post_notification(admin, doc)
    assert response.status_code == 400
    assert open_notices(app) == []


def test_a_template_notification_without_an_account_id_is_refused(admin: FlaskClient) -> None:
    doc = template_quality("RED")
    del doc["entry"][0]["id"]
    assert post_notification(admin, doc).status_code == 400


# --- dismissing, the notices page, escaping, English ---------------------------------------------


def test_dismissing_hides_the_notice_for_everyone_and_is_in_the_audit_log(
    app: Flask, admin: FlaskClient
) -> None:
    store_template(app)
    post_notification(admin, template_status("PAUSED", at=AT))
    (notice,) = open_notices(app)
    inbox = page(admin, "/admin/inbox")
    # Without the form's token nothing happens.
    assert admin.post(f"/admin/notices/{notice.id}/dismiss").status_code == 400
    assert len(open_notices(app)) == 1
    response = admin.post(
        f"/admin/notices/{notice.id}/dismiss",
        data={"csrf_token": csrf_of(inbox), "next": "/admin/inbox"},
    )
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/admin/inbox")
    assert open_notices(app) == []
    assert "pausiert" not in text_of(page(admin, "/admin/inbox"))
    listed = text_of(page(admin, "/admin/notices"))
    assert "Meta hat die Vorlage angebot (de) pausiert" in listed
    assert "ausgeblendet von owner" in listed
    with get_db(app).session() as session:
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "notice.dismissed"))
        assert entry is not None and entry.subject == f"notice:{notice.id}"
        dismissed = session.get(Notice, notice.id)
        owner = session.scalar(select(User.id).where(User.name == "owner"))
        assert dismissed is not None and dismissed.dismissed_by_id == owner
    assert (
        admin.post("/admin/notices/99999/dismiss", data={"csrf_token": csrf_of(inbox)}).status_code
        == 404
    )
    # A `next` off the admin is not followed.
    again = admin.post(
        f"/admin/notices/{notice.id}/dismiss",
        data={"csrf_token": csrf_of(inbox), "next": "https://example.com/"},
    )
    assert again.headers["Location"].endswith("/admin/notices")


def test_the_notices_page_needs_a_login(client: FlaskClient) -> None:
    assert client.get("/admin/notices").status_code == 302


def test_a_template_name_from_meta_is_escaped(app: Flask, admin: FlaskClient) -> None:
    doc = template_status("PAUSED", name=XSS_NAME, reason="<b>bold</b>", at=AT)
    assert post_notification(admin, doc).status_code == 200
    for path in ("/admin/inbox", "/admin/notices"):
        markup = page(admin, path)
        assert XSS_NAME not in markup and "<b>bold</b>" not in markup
        assert html.escape(XSS_NAME, quote=False) in markup.replace("&#34;", '"')


def test_a_notice_reads_in_the_reader_s_language(app: Flask, admin: FlaskClient) -> None:
    store_template(app)
    coming = schedule(app)
    post_notification(admin, template_category("MARKETING", "UTILITY", at=AT))
    with get_db(app).session() as session:
        owner = session.scalar(select(User.id).where(User.name == "owner"))
        assert owner is not None
        users.set_locale(session, owner, "en")
    shown = text_of(page(admin, "/admin/inbox"))
    assert "Meta moved the template angebot (de) from Utility to Marketing" in shown
    own = text_of(page(admin, f"/admin/broadcasts/{coming}"))
    assert "every message of this broadcast now costs the marketing price" in own


# --- the rule, pure -----------------------------------------------------------------------------


def test_which_template_states_put_a_broadcast_at_risk() -> None:
    def state(status: str, category: str = "marketing", previous: str | None = None) -> Any:
        return reason_for(TemplateState("t", "de", status, category, previous))

    assert state("approved") is None
    assert state("APPROVED", "utility", "marketing") is None
    assert state("approved", "marketing", "utility") == FlagReason.RECATEGORISED
    assert state("paused") == FlagReason.PAUSED
    assert state("disabled") == FlagReason.DISABLED
    assert state("rejected") == FlagReason.REJECTED
    assert state("pending") == FlagReason.NOT_APPROVED
    assert state("something_new") is None  # unknown: no word either way


def test_only_coming_broadcasts_with_that_template_and_language_are_flagged() -> None:
    uses = [
        BroadcastUse(1, "angebot", "en-US", coming=True),
        BroadcastUse(2, "angebot", "en_US", coming=False),  # done or cancelled
        BroadcastUse(3, "angebot", "de", coming=True),  # another language
        BroadcastUse(4, "andere", "en_US", coming=True),
    ]
    flags = affected(uses, [TemplateState("angebot", "en_US", "paused")])
    assert [(f.broadcast_id, f.reason) for f in flags] == [(1, FlagReason.PAUSED)]
    assert language_key(" en-US ") == language_key("en_us") == "en_us"


def test_template_notifications_parse_into_typed_events() -> None:
    (status,) = events.parse(template_status("PAUSED", at=AT, reason="LOW_QUALITY_RATING"))
    assert isinstance(status, events.TemplateStatusUpdate)
    assert (status.account_id, status.template_id, status.event) == (
        "102290129340398",
        "1234567890",
        "PAUSED",
    )
    assert status.timestamp == NOW
    (category,) = events.parse(template_category("MARKETING", None, correct="MARKETING"))
    assert isinstance(category, events.TemplateCategoryUpdate) and category.impending
    (quality,) = events.parse(template_quality("YELLOW"))
    assert isinstance(quality, events.TemplateQualityUpdate)
    assert (quality.previous_quality, quality.new_quality) == ("GREEN", "YELLOW")
