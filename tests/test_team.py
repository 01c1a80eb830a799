"""The team: invitations by one-time link, deactivation, the last owner, permissions, and who
may open which admin page (every endpoint of the URL map, classified in one table)."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot import users
from bot.admin.blueprint import ACCESS, Access, access_of
from bot.db import get_db
from bot.models import Invitation, User, UserSession
from tests.test_admin import NOW, Clock, csrf_of, demo_owner, login, make_user

STAFF_PASSWORD = "staff password 1"
NINA_PASSWORD = "nina's password"


@pytest.fixture
def owner(app: Flask, client: FlaskClient) -> FlaskClient:
    """The demo shop's owner, logged in (the clock stands still at NOW)."""
    app.config["TRESEN_CLOCK"] = Clock(NOW)
    demo_owner(app, client)
    return client


def add_staff(app: Flask, name: str = "sam", *, may_broadcast: bool = True) -> int:
    with get_db(app).session() as session:
        users.create_or_reset(session, name, STAFF_PASSWORD, now=NOW, role=users.Role.STAFF)
        user = session.scalars(select(User).where(User.name == name)).one()
        user.may_broadcast = may_broadcast
        return user.id


def staff_client(app: Flask, name: str = "sam", *, may_broadcast: bool = True) -> FlaskClient:
    add_staff(app, name, may_broadcast=may_broadcast)
    client = app.test_client()
    assert login(client, name, STAFF_PASSWORD).status_code == 302
    return client


def post(client: FlaskClient, path: str, data: dict[str, str] | None = None) -> Any:
    html = client.get("/admin/account").get_data(as_text=True)
    return client.post(path, data={"csrf_token": csrf_of(html), **(data or {})})


def user_id(app: Flask, name: str) -> int:
    with get_db(app).session() as session:
        found = session.scalar(select(User.id).where(User.name == name))
    assert found is not None
    return found


def sessions_of(app: Flask, name: str) -> int:
    with get_db(app).session() as session:
        rows = session.scalars(
            select(UserSession.id)
            .join(User, User.id == UserSession.user_id)
            .where(User.name == name)
        ).all()
    return len(rows)


def invite(owner: FlaskClient, **form: str) -> str:
    """An invitation made on the team page: the link it shows once."""
    answer = post(
        owner, "/admin/users/invitations", form or {"role": "staff", "may_broadcast": "1"}
    )
    assert answer.status_code == 200
    match = re.search(r'id="invite-link" value="([^"]+)"', answer.get_data(as_text=True))
    assert match, "no invitation link on the page"
    return match.group(1)


def join(app: Flask, link: str, name: str = "nina", password: str = NINA_PASSWORD) -> Any:
    newcomer = app.test_client()
    page = newcomer.get(link)
    if page.status_code != 200:
        return page
    data = {"csrf_token": csrf_of(page.get_data(as_text=True)), "name": name}
    return newcomer.post(link, data={**data, "password": password, "repeat": password})


# --- invitations -------------------------------------------------------------------------------


def test_an_invited_person_chooses_name_and_password_and_is_logged_in(
    app: Flask, owner: FlaskClient
) -> None:
    link = invite(owner, role="staff")  # broadcasts not ticked
    assert link.startswith("http://localhost/admin/join/")
    token = link.rsplit("/", 1)[1]
    with get_db(app).session() as session:
        stored = session.scalars(select(Invitation)).one()
        # Only the hash is kept; valid for seven days.
        assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
        assert stored.expires_at == NOW + timedelta(days=7)
    # The team page lists it as open, without the link.
    team = owner.get("/admin/users").get_data(as_text=True)
    assert "Offene Einladungen" in team and token not in team

    newcomer = app.test_client()
    page = newcomer.get(link).get_data(as_text=True)
    assert "Dem Team beitreten" in page
    csrf = csrf_of(page)
    mismatch = {"csrf_token": csrf, "name": "nina", "password": "a" * 10, "repeat": "b" * 10}
    refused = newcomer.post(link, data=mismatch)
    assert refused.status_code == 400 and "nicht gleich" in refused.get_data(as_text=True)
    good = {"csrf_token": csrf, "name": "nina", "password": "a" * 10, "repeat": "a" * 10}
    joined = newcomer.post(link, data=good)
    assert joined.status_code == 302 and joined.headers["Location"] == "/admin/inbox"
    assert newcomer.get("/admin/inbox").status_code == 200
    with get_db(app).session() as session:
        nina = session.scalars(select(User).where(User.name == "nina")).one()
        assert (nina.role, nina.may_broadcast, nina.active) == ("staff", False, True)
        used = session.scalars(select(Invitation)).one()
        assert used.used_at == NOW and used.user_id == nina.id
    # And nina logs in with her own password from now on.
    assert login(app.test_client(), "nina", "a" * 10).status_code == 302


def test_a_used_expired_withdrawn_or_unknown_link_gets_one_and_the_same_answer(
    app: Flask, owner: FlaskClient
) -> None:
    used = invite(owner)
    assert join(app, used).status_code == 302
    expired = invite(owner)
    withdrawn = invite(owner)
    with get_db(app).session() as session:
        ids = session.scalars(select(Invitation.id).order_by(Invitation.id)).all()
    assert post(owner, f"/admin/users/invitations/{ids[-1]}/withdraw").status_code == 302
    unknown = used.rsplit("/", 1)[0] + "/nothing-like-a-token"
    app.config["TRESEN_CLOCK"] = Clock(NOW + timedelta(days=7, seconds=1))
    answers = [app.test_client().get(link) for link in (used, expired, withdrawn, unknown)]
    assert {answer.status_code for answer in answers} == {404}
    assert len({answer.get_data() for answer in answers}) == 1
    assert "Diese Einladung kann nicht verwendet werden" in answers[0].get_data(as_text=True)
    # A post to a used link creates nobody, even with a valid form.
    assert join(app, used, name="mallory").status_code == 404
    fresh = app.test_client()
    csrf = csrf_of(fresh.get("/admin/login").get_data(as_text=True))
    data = {"csrf_token": csrf, "name": "mallory", "password": "p" * 10, "repeat": "p" * 10}
    assert fresh.post(used, data=data).status_code == 404
    with get_db(app).session() as session:
        assert session.scalar(select(User.id).where(User.name == "mallory")) is None


def test_an_owner_invitation_and_a_name_taken(app: Flask, owner: FlaskClient) -> None:
    link = invite(owner, role="owner")
    taken = join(app, link, name="owner")
    assert taken.status_code == 400 and "gibt es schon" in taken.get_data(as_text=True)
    assert join(app, link, name="olga").status_code == 302
    with get_db(app).session() as session:
        olga = session.scalars(select(User).where(User.name == "olga")).one()
        assert (olga.role, olga.may_broadcast) == ("owner", True)


# --- deactivation and the last owner -------------------------------------------------------------


def test_deactivating_ends_every_session_and_refuses_the_login(
    app: Flask, owner: FlaskClient
) -> None:
    sam = staff_client(app)
    phone = app.test_client()
    assert login(phone, "sam", STAFF_PASSWORD).status_code == 302
    assert sessions_of(app, "sam") == 2
    answer = post(owner, f"/admin/users/{user_id(app, 'sam')}/active", {"active": "0"})
    assert answer.status_code == 302
    assert sessions_of(app, "sam") == 0
    assert sam.get("/admin/inbox").status_code == 302  # logged out at once
    assert phone.get("/admin/inbox.json").status_code == 401
    # The right password says so; a wrong one says what it always says.
    right = login(app.test_client(), "sam", STAFF_PASSWORD)
    assert right.status_code == 403 and "deaktiviert" in right.get_data(as_text=True)
    wrong = login(app.test_client(), "sam", "not the password")
    assert wrong.status_code == 401 and "deaktiviert" not in wrong.get_data(as_text=True)
    team = owner.get("/admin/users").get_data(as_text=True)
    assert "deaktiviert" in team and "Wieder aktivieren" in team
    listed = app.test_cli_runner().invoke(args=["users", "list"]).output.splitlines()
    assert listed[1].startswith("sam\t") and listed[1].endswith("\tstaff\tdeactivated")
    assert listed[0].endswith("\towner")  # active users' lines stay as they were
    # Activated again, sam logs in as before.
    post(owner, f"/admin/users/{user_id(app, 'sam')}/active", {"active": "1"})
    assert login(app.test_client(), "sam", STAFF_PASSWORD).status_code == 302


def test_the_last_active_owner_is_neither_deactivated_nor_made_staff(
    app: Flask, owner: FlaskClient
) -> None:
    me = user_id(app, "owner")
    refused = post(owner, f"/admin/users/{me}/active", {"active": "0"})
    assert refused.status_code == 400  # not oneself
    refused = post(owner, f"/admin/users/{me}/role", {"role": "staff"})
    assert refused.status_code == 400 and "letzte Inhaber" in refused.get_data(as_text=True)
    # A second owner, deactivated, does not count: the first stays the last active one.
    make_user(app, "anna")
    anna = user_id(app, "anna")
    assert post(owner, f"/admin/users/{anna}/active", {"active": "0"}).status_code == 302
    with get_db(app).session() as session, pytest.raises(users.UserError) as error:
        users.set_active(session, me, False, by=anna)
    assert error.value.problem is users.Problem.LAST_OWNER
    with get_db(app).session() as session, pytest.raises(users.UserError) as error:
        users.set_role(session, me, users.Role.STAFF, True)
    assert error.value.problem is users.Problem.LAST_OWNER
    assert post(owner, f"/admin/users/{me}/role", {"role": "staff"}).status_code == 400
    # Active again, anna is an owner beside me: now I may become staff.
    post(owner, f"/admin/users/{anna}/active", {"active": "1"})
    assert post(owner, f"/admin/users/{me}/role", {"role": "staff"}).status_code == 302
    with get_db(app).session() as session:
        assert session.get_one(User, me).role == "staff"


def test_role_and_broadcasts_are_changed_on_the_team_page(app: Flask, owner: FlaskClient) -> None:
    sam = add_staff(app)
    assert post(owner, f"/admin/users/{sam}/role", {"role": "staff"}).status_code == 302
    with get_db(app).session() as session:
        assert session.get_one(User, sam).may_broadcast is False
    post(owner, f"/admin/users/{sam}/role", {"role": "owner"})
    with get_db(app).session() as session:
        assert session.get_one(User, sam).role == "owner"


# --- who may open what ----------------------------------------------------------------------------


def admin_rules(app: Flask) -> list[Any]:
    return [rule for rule in app.url_map.iter_rules() if rule.endpoint.startswith("admin.")]


def example_path(rule: Any) -> str:
    """The rule's path with every parameter given an example value."""
    path = rule.rule
    for argument, converter in rule._converters.items():
        value = "1" if type(converter).__name__ == "IntegerConverter" else "x"
        path = re.sub(rf"<(?:\w+:)?{argument}>", value, path)
    return path


def test_every_admin_endpoint_is_classified(app: Flask) -> None:
    """A new page must be put in blueprint.ACCESS: for staff, for owners, or for broadcasts."""
    unclassified = [rule.endpoint for rule in admin_rules(app) if access_of(rule.endpoint) is None]
    assert not unclassified, f"not in blueprint.ACCESS: {unclassified}"


def test_the_classification_is_by_prefix_and_fails_closed() -> None:
    # Pages other areas add land where their prefix says.
    assert access_of("admin.conversation_assign") is Access.STAFF
    assert access_of("admin.inbox_mine") is Access.STAFF
    assert access_of("admin.events") is Access.STAFF
    assert access_of("admin.conversation_typing") is Access.STAFF
    assert access_of("admin.insights_weekly_csv") is Access.OWNER
    assert access_of("admin.settings_anything") is Access.OWNER
    assert access_of("admin.conversation_quick_replies") is Access.STAFF
    assert access_of("admin.something_new") is None  # refused to staff until classified
    assert set(ACCESS.values()) == set(Access)


def test_staff_are_refused_every_owner_page_for_get_and_post(
    app: Flask, owner: FlaskClient
) -> None:
    sam = staff_client(app, may_broadcast=False)
    csrf = csrf_of(sam.get("/admin/account").get_data(as_text=True))
    checked = []
    for rule in admin_rules(app):
        if access_of(rule.endpoint) in (Access.PUBLIC, Access.STAFF):
            continue
        path = example_path(rule)
        for method in {"GET", "POST"} & set(rule.methods or ()):
            if method == "GET":
                answer = sam.get(path)
            else:
                answer = sam.post(path, data={"csrf_token": csrf, "name": "x", "yaml": "x"})
            assert answer.status_code == 403, (method, path, answer.status_code)
            if path.endswith(".json"):
                assert answer.is_json
            checked.append((method, rule.endpoint))
    endpoints = {endpoint for _method, endpoint in checked}
    for expected in (
        "admin.users",
        "admin.users_add",
        "admin.invitation_create",
        "admin.settings_yaml",
        "admin.settings_preview",
        "admin.settings_text",
        "admin.quick_replies_save",
        "admin.insights",
        "admin.audit",
        "admin.audit_csv",
        "admin.broadcast_new",
        "admin.broadcast_create",
        "admin.broadcast_cancel",
    ):
        assert expected in endpoints
    # The refusal is the admin's page, in its language.
    page = sam.get("/admin/settings").get_data(as_text=True)
    assert "Nicht erlaubt" in page
    # Nothing was changed by the refused posts.
    with get_db(app).session() as session:
        assert session.scalar(select(User.id).where(User.name == "x")) is None


def test_staff_see_broadcasts_but_make_them_only_when_allowed(
    app: Flask, owner: FlaskClient
) -> None:
    plain = staff_client(app, "sam", may_broadcast=False)
    page = plain.get("/admin/broadcasts")
    assert page.status_code == 200
    assert 'href="/admin/broadcasts/new"' not in page.get_data(as_text=True)
    refused = plain.get("/admin/broadcasts/new")
    assert refused.status_code == 403
    assert "mit Erlaubnis" in refused.get_data(as_text=True)
    allowed = staff_client(app, "bea", may_broadcast=True)
    page = allowed.get("/admin/broadcasts")
    assert 'href="/admin/broadcasts/new"' in page.get_data(as_text=True)
    assert allowed.get("/admin/broadcasts/new").status_code == 200


def test_the_menu_shows_staff_only_what_they_may_open(app: Flask, owner: FlaskClient) -> None:
    sam = staff_client(app)
    menu = sam.get("/admin/inbox").get_data(as_text=True)
    nav = menu[menu.index("<nav") : menu.index("</nav>")]
    assert 'href="/admin/inbox"' in nav and 'href="/admin/contacts"' in nav
    assert 'href="/admin/settings"' not in nav and 'href="/admin/insights"' not in nav
    owners = owner.get("/admin/inbox").get_data(as_text=True)
    assert 'href="/admin/settings"' in owners[owners.index("<nav") : owners.index("</nav>")]
    account = sam.get("/admin/account").get_data(as_text=True)
    assert 'href="/admin/users"' not in account and 'href="/admin/audit"' not in account
