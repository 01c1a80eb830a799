"""The audit log: an entry for every change made in the admin and on the command line, the
safety net for a change a page forgot, the owner's page with settings as a diff, and the CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot import broadcasts, invitations, users
from bot.audit import Action, Actor, record
from bot.contacts.audiences import parse_audience
from bot.contacts.labels import label
from bot.db import get_db
from bot.models import AuditEntry, Business, Contact, Label, QuickReply, User
from bot.settings.stored import BUSINESS_ID
from tests.test_admin import NOW, PASSWORD, Clock, csrf_of, demo_owner, login, make_user, receive
from tests.test_admin_settings import settings_form

NEW_PASSWORD = "a brand new secret"
ADDED_PASSWORD = "added user's secret"


@pytest.fixture
def owner(app: Flask, client: FlaskClient) -> FlaskClient:
    """The demo shop's owner, logged in, with a customer who wrote (the clock stands still)."""
    app.config["TRESEN_CLOCK"] = Clock(NOW)
    demo_owner(app, client)
    receive(client)
    return client


def entries(app: Flask) -> list[AuditEntry]:
    with get_db(app).session() as session:
        found = list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
        session.expunge_all()
    return found


def the_id(app: Flask, model: Any, **where: Any) -> int:
    with get_db(app).session() as session:
        stmt = select(model.id)
        for key, value in where.items():
            stmt = stmt.where(getattr(model, key) == value)
        found = session.scalar(stmt)
    assert found is not None
    return int(found)


def contact(app: Flask) -> int:
    return the_id(app, Contact, wa_id="4915112345678")


def staff(app: Flask) -> int:
    with get_db(app).session() as session:
        users.create_or_reset(session, "sam", PASSWORD, now=NOW, role=users.Role.STAFF)
    return the_id(app, User, name="sam")


def a_label(app: Flask) -> int:
    with get_db(app).session() as session:
        label(session, "Hochzeit")
    return the_id(app, Label, name="Hochzeit")


def a_quick_reply(app: Flask) -> int:
    with get_db(app).session() as session:
        session.add(QuickReply(shortcut="hallo", text="Hallo!", created_at=NOW, updated_at=NOW))
    return the_id(app, QuickReply, shortcut="hallo")


def a_broadcast(app: Flask) -> int:
    with get_db(app).session() as session:
        made = broadcasts.create(
            session,
            broadcasts.Content(text="Hallo"),
            parse_audience("all"),
            timezone="Europe/Berlin",
            now=NOW,
            at=NOW + timedelta(days=1),
        )
        return made.id


def an_invitation(app: Flask) -> int:
    with get_db(app).session() as session:
        invitation_id, _token = invitations.create(
            session, users.Role.STAFF, may_broadcast=True, by=None, now=NOW
        )
    return invitation_id


def settings_yaml(app: Flask) -> str:
    with get_db(app).session() as session:
        return session.get_one(Business, BUSINESS_ID).settings_yaml


@dataclass(frozen=True)
class Change:
    """One change made through the admin: where it is posted, the form that succeeds, and the
    entry it must leave."""

    endpoint: str
    path: Callable[[Flask], str]
    form: Callable[[Flask, FlaskClient], dict[str, Any]]
    action: Action
    method: str = "POST"


def fixed(path: str) -> Callable[[Flask], str]:
    return lambda _app: path


def form(**values: Any) -> Callable[[Flask, FlaskClient], dict[str, Any]]:
    return lambda _app, _client: dict(values)


def business_form(_app: Flask, client: FlaskClient) -> dict[str, Any]:
    data, _ = settings_form(client, "business")
    return {**data, "name": "Blumen Maier"}


def yaml_form(app: Flask, _client: FlaskClient) -> dict[str, Any]:
    return {"yaml": settings_yaml(app).replace("Blumen Müller", "Blumen Maier")}


def import_form(_app: Flask, _client: FlaskClient) -> dict[str, Any]:
    body = b"wa_id,name,labels,opted_in\n4915100000001,Anna Berger,Stammkunde,true\n"
    return {"file": (io.BytesIO(body), "kunden.csv")}


CHANGES = [
    Change(
        "admin.account_password",
        fixed("/admin/account/password"),
        form(current=PASSWORD, new=NEW_PASSWORD, repeat=NEW_PASSWORD),
        Action.PASSWORD_CHANGED,
    ),
    Change(
        "admin.account_language",
        fixed("/admin/account/language"),
        form(language="en"),
        Action.LANGUAGE_CHANGED,
    ),
    Change(
        "admin.users_add",
        fixed("/admin/users"),
        form(name="ben", password=ADDED_PASSWORD, role="staff"),
        Action.USER_ADDED,
    ),
    Change(
        "admin.invitation_create",
        fixed("/admin/users/invitations"),
        form(role="staff", may_broadcast="1"),
        Action.USER_INVITED,
    ),
    Change(
        "admin.invitation_withdraw",
        lambda app: f"/admin/users/invitations/{an_invitation(app)}/withdraw",
        form(),
        Action.INVITATION_WITHDRAWN,
    ),
    Change(
        "admin.users_role",
        lambda app: f"/admin/users/{staff(app)}/role",
        form(role="staff"),  # broadcasts no longer allowed
        Action.USER_CHANGED,
    ),
    Change(
        "admin.users_active",
        lambda app: f"/admin/users/{staff(app)}/active",
        form(active="0"),
        Action.USER_DEACTIVATED,
    ),
    Change(
        "admin.users_remove",
        lambda app: f"/admin/users/{staff(app)}/remove",
        form(),
        Action.USER_DELETED,
    ),
    Change(
        "admin.settings_business",
        fixed("/admin/settings/business"),
        business_form,
        Action.SETTINGS_CHANGED,
    ),
    Change(
        "admin.settings_yaml", fixed("/admin/settings/yaml"), yaml_form, Action.SETTINGS_CHANGED
    ),
    Change(
        "admin.quick_replies_save",
        fixed("/admin/quick-replies"),
        form(shortcut="danke", text="Vielen Dank!"),
        Action.QUICK_REPLY_SAVED,
    ),
    Change(
        "admin.quick_replies_delete",
        lambda app: f"/admin/quick-replies/{a_quick_reply(app)}/delete",
        form(),
        Action.QUICK_REPLY_DELETED,
    ),
    Change("admin.label_create", fixed("/admin/labels"), form(name="Neu"), Action.LABEL_SAVED),
    Change(
        "admin.label_update",
        lambda app: f"/admin/labels/{a_label(app)}",
        form(name="Hochzeiten"),
        Action.LABEL_SAVED,
    ),
    Change(
        "admin.label_delete",
        lambda app: f"/admin/labels/{a_label(app)}/delete",
        form(),
        Action.LABEL_DELETED,
    ),
    Change(
        "admin.contact_new",
        fixed("/admin/contacts/new"),
        form(name="Berta", number="+49 151 23456789"),
        Action.CONTACT_ADDED,
    ),
    Change(
        "admin.contact_edit",
        lambda app: f"/admin/contacts/{contact(app)}/edit",
        form(name="Anna B.", number="+4915112345678"),
        Action.CONTACT_CHANGED,
    ),
    Change(
        "admin.contact_labels",
        lambda app: f"/admin/contacts/{contact(app)}/labels",
        form(new_label="Stammkunde"),
        Action.LABELS_CHANGED,
    ),
    Change(
        "admin.contacts_label",
        fixed("/admin/contacts/labels"),
        lambda app, _client: {"contact": str(contact(app)), "label_name": "Hochzeit"},
        Action.LABELS_CHANGED,
    ),
    Change(
        "admin.contact_opt_in",
        lambda app: f"/admin/contacts/{contact(app)}/opt-in",
        form(opted_in="yes"),
        Action.OPT_IN_CHANGED,
    ),
    Change(
        "admin.contacts_import",
        fixed("/admin/contacts/import"),
        import_form,
        Action.CONTACTS_IMPORTED,
    ),
    Change(
        "admin.contacts_export",
        fixed("/admin/contacts/export.csv"),
        form(),
        Action.CONTACTS_EXPORTED,
        method="GET",
    ),
    Change(
        "admin.broadcast_create",
        fixed("/admin/broadcasts"),
        form(kind="text", when="now", text="Neue Tulpen!"),
        Action.BROADCAST_CREATED,
    ),
    Change(
        "admin.broadcast_cancel",
        lambda app: f"/admin/broadcasts/{a_broadcast(app)}/cancel",
        form(),
        Action.BROADCAST_CANCELLED,
    ),
    Change(
        "admin.reply",
        lambda app: f"/admin/inbox/{contact(app)}/reply",
        form(text="Gern geschehen!"),
        Action.REPLY_SENT,
    ),
    Change(
        "admin.reply_template",
        lambda app: f"/admin/inbox/{contact(app)}/template",
        form(name="hello_world", language="en_US"),
        Action.TEMPLATE_SENT,
    ),
    Change(
        "admin.conversation_labels",
        lambda app: f"/admin/inbox/{contact(app)}/labels",
        form(labels="Stammkunde, Hochzeit"),
        Action.LABELS_CHANGED,
    ),
    Change(
        "admin.optin",
        lambda app: f"/admin/inbox/{contact(app)}/optin",
        form(opted_in="y"),
        Action.OPT_IN_CHANGED,
    ),
]


@pytest.mark.parametrize("change", CHANGES, ids=[c.endpoint for c in CHANGES])
def test_every_change_in_the_admin_leaves_its_entry(
    app: Flask, owner: FlaskClient, change: Change
) -> None:
    path = change.path(app)
    data = change.form(app, owner)
    before = len(entries(app))
    if change.method == "GET":
        answer = owner.get(path)
    else:
        csrf = csrf_of(owner.get("/admin/account").get_data(as_text=True))
        answer = owner.post(path, data={"csrf_token": csrf, **data})
    assert answer.status_code < 400, answer.get_data(as_text=True)[:2000]
    assert owner.get(path if change.method == "GET" else "/admin/inbox").status_code == 200
    new = entries(app)[before:]
    assert [entry.action for entry in new if entry.action == change.action], new
    assert all(entry.action != Action.OTHER for entry in new)  # the page's own, not the net's
    assert {entry.user_name for entry in new} == {"owner"}
    for entry in new:
        text = " ".join(str(v) for v in (entry.subject, entry.before, entry.after))
        for secret in (PASSWORD, NEW_PASSWORD, ADDED_PASSWORD):
            assert secret not in text


def test_saving_settings_unchanged_records_nothing(app: Flask, owner: FlaskClient) -> None:
    data, _ = settings_form(owner, "business")
    before = len(entries(app))
    assert owner.post("/admin/settings/business", data=data).status_code == 302
    assert entries(app)[before:] == []


def test_settings_keep_the_whole_document_before_and_after(app: Flask, owner: FlaskClient) -> None:
    old = settings_yaml(app)
    csrf = csrf_of(owner.get("/admin/settings/yaml").get_data(as_text=True))
    new_text = old.replace("Blumen Müller", "Blumen <b>Maier</b>")
    answer = owner.post("/admin/settings/yaml", data={"csrf_token": csrf, "yaml": new_text})
    assert answer.status_code == 302
    (entry,) = [e for e in entries(app) if e.action == Action.SETTINGS_CHANGED]
    assert entry.before == old and entry.after == settings_yaml(app)
    assert entry.subject == "settings"
    page = owner.get("/admin/audit").get_data(as_text=True)
    assert "hat die Einstellungen geändert" in page
    # The changed line, escaped, marked removed and added.
    assert '<span class="del">-   name: Blumen Müller</span>' in page
    assert "Blumen &lt;b&gt;Maier&lt;/b&gt;" in page and "<b>Maier" not in page


def test_the_safety_net_records_a_change_its_page_did_not(app: Flask, client: FlaskClient) -> None:
    app.config["TRESEN_CLOCK"] = Clock(NOW)
    # A page that changes something and forgets the audit log (none is registered so far).
    app.add_url_rule(
        "/admin/forgetful/<int:item>",
        "admin.forgetful",
        lambda item: ("done", 200),
        methods=["POST"],
    )
    make_user(app)
    assert login(client).status_code == 302
    csrf = csrf_of(client.get("/admin/account").get_data(as_text=True))
    secret = "form value that might be secret"
    assert (
        client.post("/admin/forgetful/7", data={"csrf_token": csrf, "x": secret}).status_code == 200
    )
    (entry,) = entries(app)
    assert (entry.action, entry.subject, entry.user_name) == ("other", "admin.forgetful", "owner")
    assert entry.before is None and entry.after is None
    # Refused posts and previews leave nothing.
    assert client.post("/admin/forgetful/7", data={"x": secret}).status_code == 400  # no CSRF
    preview = client.post(
        "/admin/settings/text", data={"csrf_token": csrf, "text": "Hallo", "to": "jinja"}
    )
    assert preview.status_code == 200
    assert len(entries(app)) == 1


def test_joining_is_recorded_without_the_password_or_the_link(
    app: Flask, owner: FlaskClient
) -> None:
    with get_db(app).session() as session:
        _id, token = invitations.create(
            session, users.Role.STAFF, may_broadcast=False, by=None, now=NOW
        )
    newcomer = app.test_client()
    csrf = csrf_of(newcomer.get(f"/admin/join/{token}").get_data(as_text=True))
    secret = "newcomer's secret"
    data = {"csrf_token": csrf, "name": "nina", "password": secret, "repeat": secret}
    assert newcomer.post(f"/admin/join/{token}", data=data).status_code == 302
    (entry,) = [e for e in entries(app) if e.action == Action.USER_JOINED]
    assert (entry.user_name, entry.subject, entry.after) == (
        "nina",
        "user:nina",
        "staff, no broadcasts",
    )
    for any_entry in entries(app):
        text = " ".join(str(v) for v in (any_entry.subject, any_entry.before, any_entry.after))
        assert secret not in text and token not in text


def test_the_command_line_leaves_entries_by_nobody(app: Flask, tmp_path: Any) -> None:
    app.config["TRESEN_CLOCK"] = Clock(NOW)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["users", "create", "anna", "--password", PASSWORD]).exit_code == 0
    assert runner.invoke(args=["users", "create", "anna", "--password", PASSWORD]).exit_code == 0
    assert runner.invoke(args=["users", "create", "bob", "--password", PASSWORD]).exit_code == 0
    assert runner.invoke(args=["users", "delete", "bob"]).exit_code == 0
    settings = tmp_path / "settings.yaml"
    exported = runner.invoke(args=["settings", "export"]).output
    settings.write_text(exported.replace("Blumen Müller", "Blumen Maier"), encoding="utf-8")
    result = runner.invoke(args=["settings", "import", str(settings)])
    assert result.exit_code == 0, result.output
    found = [(e.user_id, e.user_name, e.action, e.subject) for e in entries(app)]
    assert found == [
        (None, None, "user.added", "user:anna"),
        (None, None, "user.password", "user:anna"),
        (None, None, "user.added", "user:bob"),
        (None, None, "user.deleted", "user:bob"),
        (None, None, "settings.changed", "settings"),
    ]
    assert all(PASSWORD not in str((e.before, e.after)) for e in entries(app))


# --- the page and the CSV ----------------------------------------------------------------------


def some_entries(app: Flask, count: int = 3) -> None:
    with get_db(app).session() as session:
        cid = session.scalar(select(Contact.id))
        for n in range(count):
            record(
                session,
                Actor(None, "anna"),
                Action.REPLY_SENT,
                NOW + timedelta(minutes=n),
                subject=f"contact:{cid}",
            )
        record(session, Actor(None, None), Action.USER_ADDED, NOW, subject="=1+1")


def test_the_audit_page_lists_the_newest_first_and_filters(app: Flask, owner: FlaskClient) -> None:
    some_entries(app)
    page = owner.get("/admin/audit").get_data(as_text=True)
    assert "Protokoll" in page and "hat einem Kunden geantwortet" in page
    assert page.index("10:02") < page.index("10:01") < page.index("10:00")  # local, newest first
    assert f'href="/admin/contacts/{contact(app)}"' in page and ">Anna<" in page
    assert "Kommandozeile" in page
    only_anna = owner.get("/admin/audit?user=anna&kind=team").get_data(as_text=True)
    assert "hat einem Kunden geantwortet" not in only_anna and "Noch nichts" in only_anna
    command_line = owner.get("/admin/audit?user=-").get_data(as_text=True)
    assert "hat einen Zugang angelegt" in command_line
    assert "hat einem Kunden geantwortet" not in command_line


def test_the_audit_page_is_paged(app: Flask, owner: FlaskClient) -> None:
    some_entries(app, count=55)
    first = owner.get("/admin/audit?kind=conversations").get_data(as_text=True)
    assert first.count("hat einem Kunden geantwortet") == 50
    assert 'href="/admin/audit?kind=conversations&amp;page=2"' in first
    second = owner.get("/admin/audit?kind=conversations&page=2").get_data(as_text=True)
    assert second.count("hat einem Kunden geantwortet") == 5
    assert "Neuere" in second and "Ältere" not in second


def test_the_csv_opens_in_german_excel(app: Flask, owner: FlaskClient) -> None:
    some_entries(app, count=2)
    answer = owner.get("/admin/audit.csv?kind=team")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert "attachment" in answer.headers["Content-Disposition"]
    body = answer.get_data()
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    assert rows[0] == ["time", "user", "action", "what", "subject", "before", "after"]
    assert len(rows) == 2
    # Local time; a cell Excel would run as a formula is written as text.
    assert rows[1][:5] == [
        "2026-03-11 10:00:00",
        "",
        "user.added",
        "hat einen Zugang angelegt",
        "'=1+1",
    ]
    everything = list(csv.reader(io.StringIO(owner.get("/admin/audit.csv").get_data(as_text=True))))
    assert len(everything) == 4
