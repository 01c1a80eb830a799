"""Logins and sessions of the admin pages: throttling that cannot lock the owner out, password
hashing that leaves the webhook alone, and sessions that end when they should."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask, request
from flask.testing import FlaskClient
from sqlalchemy import select

from bot import logins, users
from bot.admin.auth import client_address
from bot.db import get_db
from bot.models import LoginThrottle, User
from tests.conftest import post_notification
from tests.payloads import notification
from tests.test_admin import NOW, PASSWORD, Clock, csrf_of, make_user, token

OWNER_ADDRESS = "198.51.100.7"


@pytest.fixture
def clock(app: Flask) -> Clock:
    fixed = Clock(NOW)
    app.config["TRESEN_CLOCK"] = fixed
    return fixed


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The passwords that were hashed to be checked, in order."""
    seen: list[str] = []
    real = users.check_password_hash

    def counting(stored: str, password: str) -> bool:
        seen.append(password)
        return real(stored, password)

    monkeypatch.setattr(users, "check_password_hash", counting)
    return seen


def log_in(
    client: FlaskClient, name: str = "owner", password: str = PASSWORD, *, at: str = OWNER_ADDRESS
) -> Any:
    """A login from the browser at address `at`, as the proxy in front reports it."""
    forwarded = {"X-Forwarded-For": at}
    page = client.get("/admin/login", headers=forwarded).get_data(as_text=True)
    return client.post(
        "/admin/login",
        headers=forwarded,
        data={"name": name, "password": password, "csrf_token": csrf_of(page)},
    )


def message(response: Any) -> str:
    return str(response.get_data(as_text=True))


def cookie_of(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def browser_with(app: Flask, cookie: str) -> FlaskClient:
    """Another browser, given a copy of a session cookie."""
    other = app.test_client()
    other.set_cookie("session", cookie)
    return other


def logged_in_twice(app: Flask, client: FlaskClient) -> FlaskClient:
    """The owner logs in with `client`; another browser, given a copy of its session cookie."""
    make_user(app)
    assert log_in(client).status_code == 302
    return browser_with(app, cookie_of(client))


# --- throttling -------------------------------------------------------------------------------


def test_a_wrong_password_now_and_then_never_keeps_the_owner_out(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    make_user(app)
    # Someone tries a password every quarter of an hour, all night.
    for _ in range(40):
        assert log_in(app.test_client(), password="guess", at="203.0.113.9").status_code in (
            401,
            429,
        )
        clock.at += timedelta(minutes=15)
    clock.at -= timedelta(minutes=14)  # a minute after the last guess
    assert log_in(client).status_code == 302


def test_a_name_waits_at_most_half_a_minute_whoever_guesses(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    make_user(app)
    # Guesses from ever new addresses, each the moment the name may be tried again.
    for n in range(30):
        response = log_in(app.test_client(), password="guess", at=f"203.0.113.{n}")
        assert response.status_code == 401
        wait = logins.wait_after(logins.NAME, n + 1) or timedelta(0)
        assert wait <= logins.NAME.cap == timedelta(seconds=30)
        if wait:
            refused = log_in(client)  # the owner, while the name waits
            assert refused.status_code == 429
            assert refused.headers["Retry-After"] == str(int(wait.total_seconds()))
        clock.at += wait
    assert log_in(client).status_code == 302


def test_one_address_waits_longer_each_time_and_is_refused_without_hashing(
    app: Flask, clock: Clock, hashes: list[str]
) -> None:
    make_user(app)
    guesser = app.test_client()
    # Different names each time: the address alone is what gets throttled.
    for n in range(logins.ADDRESS.free):
        assert log_in(guesser, f"name{n}", "guess", at="203.0.113.9").status_code == 401
    assert len(hashes) == logins.ADDRESS.free
    for seconds in (1, 2, 4, 8, 16):
        for _ in range(3):  # hammering while it waits: refused, no hashing, no longer wait
            refused = log_in(guesser, "someone", "guess", at="203.0.113.9")
            assert refused.status_code == 429
            # German: with no settings yet, the business locale is the default, de_DE.
            unit = "Sekunde" if seconds == 1 else "Sekunden"
            assert f"Zu viele Fehlversuche: Bitte versuchen Sie es in {seconds} {unit}" in message(
                refused
            )
            assert refused.headers["Retry-After"] == str(seconds)
        hashed = len(hashes)
        clock.at += timedelta(seconds=seconds)
        assert log_in(guesser, f"other{seconds}", "guess", at="203.0.113.9").status_code == 401
        assert len(hashes) == hashed + 1
    # ...up to a quarter of an hour, then every quarter of an hour.
    assert logins.wait_after(logins.ADDRESS, 50) == timedelta(minutes=15)
    # Meanwhile the owner, at another address, gets in at once.
    assert log_in(app.test_client()).status_code == 302


@pytest.mark.parametrize(
    ("failures", "wait"),
    [
        (0, None),
        (2, None),
        (3, timedelta(seconds=1)),
        (4, timedelta(seconds=2)),
        (8, timedelta(seconds=30)),
        (50, timedelta(seconds=30)),
    ],
)
def test_wait_after_for_a_name(failures: int, wait: timedelta | None) -> None:
    assert logins.wait_after(logins.NAME, failures) == wait


def test_failures_are_forgotten_after_a_quiet_hour(
    app: Flask, client: FlaskClient, clock: Clock, hashes: list[str]
) -> None:
    make_user(app)
    for n in range(1, 7):
        assert log_in(client, password="guess").status_code == 401
        clock.at += logins.wait_after(logins.ADDRESS, n) or timedelta(0)
    clock.at -= timedelta(seconds=1)
    assert log_in(client, password="guess").status_code == 429
    clock.at += logins.FORGET_AFTER
    # Counted from nothing again: a few typos, then a second's wait.
    for _ in range(logins.ADDRESS.free):
        assert log_in(client, password="guess").status_code == 401
    assert log_in(client, password="guess").headers["Retry-After"] == "1"
    # A login that gets in takes the long-quiet counters of others with it.
    log_in(app.test_client(), "someone", "guess", at="192.0.2.77")
    clock.at += logins.FORGET_AFTER + timedelta(seconds=1)
    assert log_in(app.test_client()).status_code == 302
    with get_db(app).session() as session:
        assert session.scalars(select(LoginThrottle.key)).all() == []


def test_an_unknown_name_waits_like_a_known_one(
    app: Flask, clock: Clock, hashes: list[str]
) -> None:
    make_user(app)
    for n in range(logins.NAME.free):
        assert log_in(app.test_client(), "owner", "guess", at=f"203.0.113.{n}").status_code == 401
        assert log_in(app.test_client(), "nobody", "guess", at=f"203.0.113.{n}").status_code == 401
    # The same number of hashes for both, and then the same wait.
    assert len(hashes) == 2 * logins.NAME.free
    known = log_in(app.test_client(), "owner", "guess", at="192.0.2.1")
    unknown = log_in(app.test_client(), "nobody", "guess", at="192.0.2.2")
    assert known.status_code == unknown.status_code == 429
    assert known.headers["Retry-After"] == unknown.headers["Retry-After"]
    assert len(hashes) == 2 * logins.NAME.free


def test_a_right_login_clears_the_address_and_the_name(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    make_user(app)
    for _ in range(logins.NAME.free - 1):
        assert log_in(client, password="typo").status_code == 401
    assert log_in(client).status_code == 302
    client.post("/admin/logout", data={"csrf_token": token(client, "/admin/inbox")})
    for _ in range(logins.NAME.free - 1):
        assert log_in(client, password="typo").status_code == 401
    assert log_in(client).status_code == 302


# --- hashing keeps off the webhook's back -----------------------------------------------------


def while_hashing(monkeypatch: pytest.MonkeyPatch, during: Callable[[], None]) -> None:
    real = users.check_password_hash

    def slow(stored: str, password: str) -> bool:
        during()
        return real(stored, password)

    monkeypatch.setattr(users, "check_password_hash", slow)


def test_the_webhook_answers_while_a_password_is_hashed(
    app: Flask, client: FlaskClient, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_user(app)
    answered: list[int] = []

    def post_a_message() -> None:
        doc = notification({"type": "text", "text": {"body": "Hallo"}, "id": "wamid.DURING"})
        worker = threading.Thread(
            target=lambda: answered.append(post_notification(app.test_client(), doc).status_code)
        )
        worker.start()
        # Hashing holds no database transaction: the webhook need not wait for it.
        worker.join(timeout=5)

    while_hashing(monkeypatch, post_a_message)
    assert log_in(client).status_code == 302
    assert answered == [200]


def test_logins_beyond_what_a_process_checks_at_once_are_told_to_come_back(
    app: Flask, clock: Clock, monkeypatch: pytest.MonkeyPatch, hashes: list[str]
) -> None:
    make_user(app)
    monkeypatch.setattr(logins, "GATE", logins.HashGate(slots=1))
    hashing, finish = threading.Event(), threading.Event()

    def hold() -> None:
        hashing.set()
        finish.wait(timeout=5)

    while_hashing(monkeypatch, hold)
    first: list[int] = []
    worker = threading.Thread(target=lambda: first.append(log_in(app.test_client()).status_code))
    worker.start()
    assert hashing.wait(timeout=5)
    busy = log_in(app.test_client(), at="192.0.2.44")
    finish.set()
    worker.join(timeout=5)
    assert busy.status_code == 503
    assert "Gerade werden viele Anmeldungen geprüft" in message(busy)
    assert busy.headers["Retry-After"] == "1"
    assert first == [302]
    assert hashes == [PASSWORD]  # the busy one was never hashed


def test_proxy_address_is_believed_only_from_a_proxy(app: Flask) -> None:
    forwarded = {"X-Forwarded-For": "1.2.3.4, 198.51.100.7"}
    with app.test_request_context(headers=forwarded, environ_base={"REMOTE_ADDR": "10.1.2.3"}):
        assert client_address() == "198.51.100.7"
    with app.test_request_context(headers=forwarded, environ_base={"REMOTE_ADDR": "93.184.216.34"}):
        assert client_address() == "93.184.216.34"
    with app.test_request_context(environ_base={"REMOTE_ADDR": "127.0.0.1"}):
        assert request.remote_addr == client_address() == "127.0.0.1"
    assert logins.address_key("2001:db8:1:2:aaaa::1") == logins.address_key("2001:db8:1:2::9")


# --- sessions ---------------------------------------------------------------------------------


def test_logout_ends_the_session_for_a_copied_cookie_too(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    copy = logged_in_twice(app, client)
    assert copy.get("/admin/inbox").status_code == 200
    logout = client.post("/admin/logout", data={"csrf_token": token(client, "/admin/inbox")})
    assert logout.status_code == 302
    response = copy.get("/admin/inbox")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/admin/login")


def test_a_new_password_from_the_command_line_ends_every_session(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    copy = logged_in_twice(app, client)
    result = app.test_cli_runner().invoke(
        args=["users", "create", "owner", "--password", "a new password"]
    )
    assert result.exit_code == 0, result.output
    assert "logged out everywhere" in result.output
    assert client.get("/admin/inbox").status_code == 302
    assert copy.get("/admin/inbox").status_code == 302
    assert log_in(client, password="a new password").status_code == 302


def test_users_delete_ends_the_users_sessions(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    make_user(app)
    make_user(app, "staff")
    staff = app.test_client()
    assert log_in(client).status_code == 302
    assert log_in(staff, "staff").status_code == 302
    result = app.test_cli_runner().invoke(args=["users", "delete", "staff"])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "user staff deleted and logged out everywhere"
    assert staff.get("/admin/inbox").status_code == 302
    assert log_in(app.test_client(), "staff").status_code == 401
    assert client.get("/admin/inbox").status_code == 200  # the others stay logged in


def test_users_delete_refuses_an_unknown_name(app: Flask) -> None:
    make_user(app)
    result = app.test_cli_runner().invoke(args=["users", "delete", "nobody"])
    assert result.exit_code == 1
    assert "there is no user named 'nobody'" in result.output
    with get_db(app).session() as session:
        assert users.has_users(session)


def test_users_list(app: Flask, client: FlaskClient, clock: Clock) -> None:
    runner = app.test_cli_runner()
    assert "no users yet" in runner.invoke(args=["users", "list"]).output
    make_user(app, "owner")
    make_user(app, "anna")
    assert log_in(client).status_code == 302
    result = runner.invoke(args=["users", "list"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "anna\tlast login never\t0 open session(s)\towner",
        "owner\tlast login 2026-03-11 09:00 UTC\t1 open session(s)\towner",
    ]


def test_the_session_cookie_carries_nothing_of_the_password_hash(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    make_user(app)
    assert log_in(client).status_code == 302
    data = app.session_interface.get_signing_serializer(app).loads(cookie_of(client))  # type: ignore[attr-defined]
    content = json.dumps(data)
    with get_db(app).session() as session:
        stored = session.query(User).one().password_hash
    _method, salt, digest = stored.split("$")
    for secret in (salt, digest):
        pieces = {secret[i : i + 6] for i in range(len(secret) - 5)}
        assert not [piece for piece in pieces if piece in content]


def test_a_session_ends_after_its_lifetime_on_the_server_too(
    app: Flask, client: FlaskClient, clock: Clock
) -> None:
    make_user(app)
    assert log_in(client).status_code == 302
    clock.at += app.permanent_session_lifetime - timedelta(minutes=1)
    assert client.get("/admin/inbox").status_code == 200
    clock.at += timedelta(minutes=1)
    assert client.get("/admin/inbox").status_code == 302


def test_refusals_read_plainly(app: Flask, client: FlaskClient, clock: Clock) -> None:
    make_user(app)
    assert "Benutzername oder Passwort ist falsch." in message(log_in(client, password="guess"))
