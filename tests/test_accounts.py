"""Accounts: owners and staff, one's password and language, the team page, the first start's
login, and the admin's error pages."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from alembic import command
from flask import Flask, abort
from flask.testing import FlaskClient
from sqlalchemy import select, text

from bot import users
from bot.db import alembic_config, get_db
from bot.embedded import start_lines
from bot.models import User, UserSession
from tests.processes import Process, free_port, wait_healthy
from tests.test_admin import NOW, PASSWORD, Clock, csrf_of, demo_owner, login, make_user


@pytest.fixture
def owner(app: Flask, client: FlaskClient) -> FlaskClient:
    """The demo shop's owner, logged in (the clock stands still at NOW)."""
    app.config["TRESEN_CLOCK"] = Clock(NOW)
    demo_owner(app, client)
    return client


def role_of(app: Flask, name: str) -> str:
    with get_db(app).session() as session:
        role = session.scalar(select(User.role).where(User.name == name))
    assert role is not None
    return role


def post(client: FlaskClient, path: str, data: dict[str, str], page: str = "/admin/account") -> Any:
    html = client.get(page).get_data(as_text=True)
    return client.post(path, data={"csrf_token": csrf_of(html), **data})


def sessions_of(app: Flask, name: str) -> int:
    with get_db(app).session() as session:
        rows = session.scalars(
            select(UserSession.id)
            .join(User, User.id == UserSession.user_id)
            .where(User.name == name)
        ).all()
    return len(rows)


# --- roles -------------------------------------------------------------------------------------


def test_users_create_makes_owners_and_staff_on_request(app: Flask) -> None:
    runner = app.test_cli_runner()
    assert runner.invoke(args=["users", "create", "anna", "--password", PASSWORD]).exit_code == 0
    result = runner.invoke(args=["users", "create", "ben", "--password", PASSWORD, "--staff"])
    assert result.exit_code == 0, result.output
    assert (role_of(app, "anna"), role_of(app, "ben")) == ("owner", "staff")
    # A new password keeps the role; --staff on the only owner is refused.
    assert runner.invoke(args=["users", "create", "ben", "--password", "x" * 8]).exit_code == 0
    assert role_of(app, "ben") == "staff"
    refused = runner.invoke(args=["users", "create", "anna", "--password", "y" * 8, "--staff"])
    assert refused.exit_code == 1 and "only owner" in refused.output
    listed = runner.invoke(args=["users", "list"]).output.splitlines()
    assert [line.split("\t")[-1] for line in listed] == ["owner", "staff"]


def test_users_from_before_roles_become_owners(app: Flask) -> None:
    engine = get_db(app).engine
    command.downgrade(alembic_config(engine), "0010_broadcast_jobs")
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO users (name, password_hash, created_at) VALUES ('old', 'x', :now)"),
            {"now": NOW},
        )
    get_db(app).upgrade()
    with get_db(app).session() as session:
        old = session.scalars(select(User).where(User.name == "old")).one()
        assert (old.role, old.locale, old.password_generated) == ("owner", None, False)


# --- language ----------------------------------------------------------------------------------


def test_a_user_reads_the_admin_in_the_language_they_chose(app: Flask, owner: FlaskClient) -> None:
    page = owner.get("/admin/account").get_data(as_text=True)
    assert '<html lang="de">' in page and "Ihr Konto" in page
    assert "Wie das Geschäft (Deutsch)" in page
    answer = post(owner, "/admin/account/language", {"language": "en"})
    assert answer.status_code == 302
    page = owner.get("/admin/account").get_data(as_text=True)
    assert '<html lang="en">' in page
    assert "Your account" in page and "The language is saved." in page
    assert '<html lang="en">' in owner.get("/admin/inbox").get_data(as_text=True)
    # Only this user's: another one still reads German, the business's language.
    make_user(app, "ben")
    other = app.test_client()
    login(other, "ben")
    assert '<html lang="de">' in other.get("/admin/inbox").get_data(as_text=True)
    # Back to the business's language.
    post(owner, "/admin/account/language", {"language": ""})
    page = owner.get("/admin/account").get_data(as_text=True)
    assert '<html lang="de">' in page and "Die Sprache ist gespeichert." in page
    # Nonsense is the business's language too.
    post(owner, "/admin/account/language", {"language": "xx"})
    with get_db(app).session() as session:
        assert session.scalar(select(User.locale).where(User.name == "owner")) is None


# --- password ----------------------------------------------------------------------------------


def test_a_new_password_ends_the_users_other_sessions_but_not_this_one(
    app: Flask, owner: FlaskClient
) -> None:
    phone = app.test_client()
    assert login(phone).status_code == 302
    assert phone.get("/admin/inbox").status_code == 200
    new = "a much better one"
    answer = post(
        owner, "/admin/account/password", {"current": PASSWORD, "new": new, "repeat": new}
    )
    assert answer.status_code == 302
    page = owner.get("/admin/account").get_data(as_text=True)
    assert "Ihr Passwort ist geändert" in page
    assert phone.get("/admin/inbox").status_code == 302  # logged out there
    assert sessions_of(app, "owner") == 1
    assert login(app.test_client(), "owner", PASSWORD).status_code == 401
    assert login(app.test_client(), "owner", new).status_code == 302


@pytest.mark.parametrize(
    ("current", "new", "repeat", "says"),
    [
        (
            "wrong password",
            "a new password",
            "a new password",
            "Ihr bisheriges Passwort stimmt nicht.",
        ),
        (PASSWORD, "a new password", "another password", "stimmen nicht überein"),
        (PASSWORD, "short", "short", "mindestens 8 Zeichen"),
    ],
)
def test_a_refused_password_change_says_why_and_changes_nothing(
    app: Flask, owner: FlaskClient, current: str, new: str, repeat: str, says: str
) -> None:
    answer = post(
        owner, "/admin/account/password", {"current": current, "new": new, "repeat": repeat}
    )
    assert answer.status_code == 400
    assert says in answer.get_data(as_text=True)
    assert login(app.test_client(), "owner", PASSWORD).status_code == 302


# --- the team ----------------------------------------------------------------------------------


def staff_client(app: Flask, name: str = "ben") -> FlaskClient:
    with get_db(app).session() as session:
        users.create_or_reset(session, name, PASSWORD, now=NOW, role=users.Role.STAFF)
    client = app.test_client()
    assert login(client, name).status_code == 302
    return client


def test_staff_cannot_reach_the_team(app: Flask, owner: FlaskClient) -> None:
    staff = staff_client(app)
    refused = staff.get("/admin/users")
    assert refused.status_code == 403
    page = refused.get_data(as_text=True)
    assert "Nicht erlaubt" in page and "accounts.css" in page and "Zum Posteingang" in page
    account = staff.get("/admin/account").get_data(as_text=True)
    assert "Mitarbeiter/in" in account and "/admin/users" not in account
    html = staff.get("/admin/account").get_data(as_text=True)
    forged = staff.post("/admin/users", data={"csrf_token": csrf_of(html), "name": "eve"})
    assert forged.status_code == 403
    with get_db(app).session() as session:
        user_id = session.scalar(select(User.id).where(User.name == "owner"))
    removal = staff.post(f"/admin/users/{user_id}/remove", data={"csrf_token": csrf_of(html)})
    assert removal.status_code == 403
    assert sorted(s.name for s in users_now(app)) == ["ben", "owner"]


def users_now(app: Flask) -> list[users.UserSummary]:
    with get_db(app).session() as session:
        return users.summaries(session, now=NOW, lifetime=app.permanent_session_lifetime)


def test_an_owner_adds_staff_with_a_generated_password_shown_once(
    app: Flask, owner: FlaskClient
) -> None:
    answer = post(
        owner, "/admin/users", {"name": "ben", "password": "", "role": "staff"}, "/admin/users"
    )
    assert answer.status_code == 200
    page = answer.get_data(as_text=True)
    shown = re.search(r'<code class="password" translate="no">([^<]+)</code>', page)
    assert shown and "ben ist angelegt" in page
    assert role_of(app, "ben") == "staff"
    assert login(app.test_client(), "ben", shown.group(1)).status_code == 302
    assert shown.group(1) not in owner.get("/admin/users").get_data(as_text=True)
    # A chosen password, an owner; a name taken is refused, not reset.
    post(
        owner,
        "/admin/users",
        {"name": "cem", "password": PASSWORD, "role": "owner"},
        "/admin/users",
    )
    assert role_of(app, "cem") == "owner"
    again = post(owner, "/admin/users", {"name": "cem", "password": "x" * 9}, "/admin/users")
    assert again.status_code == 400
    assert "Diesen Benutzernamen gibt es schon." in again.get_data(as_text=True)
    assert login(app.test_client(), "cem", PASSWORD).status_code == 302
    bad = post(owner, "/admin/users", {"name": "d e", "password": PASSWORD}, "/admin/users")
    assert bad.status_code == 400 and "keine Leerzeichen" in bad.get_data(as_text=True)


def test_an_owner_removes_a_user_who_is_logged_out_at_once(app: Flask, owner: FlaskClient) -> None:
    staff = staff_client(app)
    page = owner.get("/admin/users").get_data(as_text=True)
    assert "ben" in page and "Entfernen" in page
    with get_db(app).session() as session:
        ben = session.scalar(select(User.id).where(User.name == "ben"))
    assert 'data-confirm="ben entfernen?' in page
    answer = post(owner, f"/admin/users/{ben}/remove", {}, "/admin/users")
    assert answer.status_code == 302
    assert "ben ist entfernt" in owner.get("/admin/users").get_data(as_text=True)
    assert staff.get("/admin/inbox").status_code == 302
    assert [s.name for s in users_now(app)] == ["owner"]


def test_an_owner_cannot_remove_themselves_or_the_last_owner(
    app: Flask, owner: FlaskClient
) -> None:
    with get_db(app).session() as session:
        me = session.scalar(select(User.id).where(User.name == "owner"))
    page = owner.get("/admin/users").get_data(as_text=True)
    assert f"/admin/users/{me}/remove" not in page  # no button for oneself
    answer = post(owner, f"/admin/users/{me}/remove", {}, "/admin/users")
    assert answer.status_code == 400
    assert "Sich selbst können Sie nicht entfernen." in answer.get_data(as_text=True)
    # A second owner can be removed; then the one left cannot be.
    with get_db(app).session() as session:
        users.create_or_reset(session, "cem", PASSWORD, now=NOW)
        cem = session.scalar(select(User.id).where(User.name == "cem"))
        with pytest.raises(users.UserError) as refused:
            users.remove_user(session, cem, by=cem)
        assert refused.value.problem is users.Problem.SELF
    assert post(owner, f"/admin/users/{cem}/remove", {}, "/admin/users").status_code == 302
    with get_db(app).session() as session:
        users.create_or_reset(session, "dora", PASSWORD, now=NOW, role=users.Role.STAFF)
        dora = session.scalar(select(User.id).where(User.name == "dora"))
        with pytest.raises(users.UserError) as last:
            users.remove_user(session, me, by=dora)
        assert last.value.problem is users.Problem.LAST_OWNER


# --- the first start's login -------------------------------------------------------------------


def test_the_one_time_login_is_new_each_start_until_someone_logs_in(app: Flask) -> None:
    with get_db(app).session() as session:
        first = users.one_time_login(session, now=NOW)
    assert first is not None and first.name == "admin" and first.password
    # Restarted before anyone logged in: a new password; the one printed before is no good.
    with get_db(app).session() as session:
        second = users.one_time_login(session, now=NOW)
    assert second is not None and second.name == "admin" and second.password
    assert second.password != first.password
    assert login(app.test_client(), "admin", first.password).status_code == 401
    assert login(app.test_client(), "admin", second.password).status_code == 302
    with get_db(app).session() as session:
        assert users.one_time_login(session, now=NOW) is None


def test_users_made_on_the_command_line_keep_their_passwords(app: Flask) -> None:
    make_user(app, "anna")
    with get_db(app).session() as session:
        told = users.one_time_login(session, now=NOW)
    assert told == users.OneTimeLogin("anna", None)
    assert login(app.test_client(), "anna", PASSWORD).status_code == 302
    with get_db(app).session() as session:
        assert users.one_time_login(session, now=NOW) is None


def test_every_start_names_the_admin_pages() -> None:
    lines = start_lines(5000, users.OneTimeLogin("admin", "s3cret-pw"))
    assert lines.splitlines() == [
        "admin pages: http://127.0.0.1:5000/admin/",
        "one-time login: http://127.0.0.1:5000/admin/login user admin password s3cret-pw"
        " (a new one each start until someone has logged in; change it under Account)",
    ]
    assert start_lines(5000, None) == "admin pages: http://127.0.0.1:5000/admin/"


@pytest.mark.slow
def test_python_app_py_names_the_admin_and_prints_a_login_until_one_is_used(
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {"INSTANCE_PATH": str(tmp_path / "instance"), "PORT": str(port)}
    url = f"http://127.0.0.1:{port}"
    found = re.compile(r"one-time login: \S+ user (\S+) password (\S+)")

    def start(n: int) -> tuple[str, re.Match[str] | None]:
        with Process([sys.executable, "app.py"], env, tmp_path / f"app{n}.log") as app:
            wait_healthy(url, app)
            output = app.output()
            match = found.search(output)
            if n == 2 and match:  # log in, as the owner would
                session = requests.Session()
                page = session.get(f"{url}/admin/login", timeout=10).text
                answer = session.post(
                    f"{url}/admin/login",
                    data={
                        "csrf_token": csrf_of(page),
                        "name": match.group(1),
                        "password": match.group(2),
                    },
                    allow_redirects=False,
                    timeout=10,
                )
                assert answer.status_code == 302, answer.text
        return output, match

    first_output, first = start(1)
    second_output, second = start(2)
    third_output, third = start(3)
    for output in (first_output, second_output, third_output):
        assert f"admin pages: http://127.0.0.1:{port}/admin/" in output
    assert first and second and first.group(2) != second.group(2)
    assert third is None


# --- error pages -------------------------------------------------------------------------------


def test_an_unknown_admin_page_is_a_styled_404_in_the_users_language(
    owner: FlaskClient,
) -> None:
    answer = owner.get("/admin/no-such-page")
    assert answer.status_code == 404
    page = answer.get_data(as_text=True)
    assert '<html lang="de">' in page and "Seite nicht gefunden" in page
    assert "admin.css" in page and 'href="/admin/inbox"' in page
    assert "Content-Security-Policy" in answer.headers
    post(owner, "/admin/account/language", {"language": "en"})
    assert "Page not found" in owner.get("/admin/inbox/999").get_data(as_text=True)


def test_error_pages_for_the_logged_out_and_for_machines(client: FlaskClient) -> None:
    answer = client.get("/admin/no-such-page")
    assert answer.status_code == 404
    assert 'href="/admin/login"' in answer.get_data(as_text=True)
    assert client.get("/admin/nothing.json").get_json() == {"error": "Seite nicht gefunden"}
    # Outside the admin, the plain answers stay.
    plain = client.get("/no-such-page")
    assert plain.status_code == 404 and "Seite" not in plain.get_data(as_text=True)
    not_allowed = client.get("/admin/logout")
    assert not_allowed.status_code == 405
    assert "Das hat nicht geklappt" in not_allowed.get_data(as_text=True)
    assert "POST" in not_allowed.headers["Allow"]


def test_a_failing_admin_page_is_a_styled_500(app: Flask, client: FlaskClient) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def boom() -> str:
        raise RuntimeError("a bug")

    def forbidden() -> str:
        abort(400)

    app.add_url_rule("/admin/boom", "boom", boom)
    app.add_url_rule("/admin/bad", "bad", forbidden)
    answer = client.get("/admin/boom")
    assert answer.status_code == 500
    assert "Etwas ist schiefgegangen" in answer.get_data(as_text=True)
    assert "Die Anfrage war nicht lesbar" in client.get("/admin/bad").get_data(as_text=True)


def test_user_names_are_escaped_everywhere_they_show(app: Flask, owner: FlaskClient) -> None:
    name = "<img/src=x/onerror=alert(1)>"
    added = post(owner, "/admin/users", {"name": name, "password": PASSWORD}, "/admin/users")
    assert added.status_code == 200
    for page in (added.get_data(as_text=True), owner.get("/admin/users").get_data(as_text=True)):
        assert name not in page
        assert "&lt;img/src=x/onerror=alert(1)&gt;" in page
    with get_db(app).session() as session:
        user_id = session.scalar(select(User.id).where(User.name == name))
    post(owner, f"/admin/users/{user_id}/remove", {}, "/admin/users")
    flashed = owner.get("/admin/users").get_data(as_text=True)
    assert "ist entfernt" in flashed and name not in flashed
    staff = app.test_client()
    make_user(app, name)
    assert login(staff, name).status_code == 302
    assert name not in staff.get("/admin/account").get_data(as_text=True)
