"""The push channel: /admin/events tells each user what changed in the inbox, once, and never
takes the threads the webhook needs."""

from __future__ import annotations

import contextlib
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot import users
from bot.admin import live
from bot.admin.live import Timing
from bot.config import ConfigError, load
from bot.conversations import changes
from bot.conversations.unread import mark_seen, unread_counts
from bot.db import Database, get_db, make_engine, upgrade
from bot.models import Contact, Conversation, User
from bot.whatsapp.signature import sign
from tests.conftest import APP_SECRET
from tests.payloads import notification
from tests.processes import gunicorn
from tests.test_admin import (  # noqa: F401 (fixtures)
    NOW,
    PASSWORD,
    admin,
    clock,
    contact_id,
    make_user,
    receive,
)

FAST = Timing(lifetime=3.0, check=0.01, heartbeat=0.05, retry_ms=100)
ANNA, KARL, LENA = "4915111111111", "4915122222222", "4915133333333"


@dataclass
class Event:
    name: str
    id: str | None
    data: dict[str, Any]


class Stream:
    """An open /admin/events answer, read frame by frame as the browser would."""

    def __init__(self, client: FlaskClient, last_event_id: str | None = None) -> None:
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        self.response = client.get("/admin/events", headers=headers, buffered=False)
        self._frames: Iterator[bytes] = iter(self.response.response)  # type: ignore[arg-type]
        self.comments = 0
        self.retry: int | None = None

    def next_event(self) -> Event | None:
        """The next event; None when the stream ended."""
        for raw in self._frames:
            fields: dict[str, str] = {}
            for line in raw.decode().splitlines():
                if line.startswith(":"):
                    self.comments += 1
                elif line:
                    key, _, value = line.partition(": ")
                    fields[key] = value
            if "retry" in fields:
                self.retry = int(fields["retry"])
            if "event" in fields:
                return Event(fields["event"], fields.get("id"), json.loads(fields["data"]))
        return None

    def until(self, name: str) -> Event:
        while (event := self.next_event()) is not None:
            if event.name == name:
                return event
        raise AssertionError(f"the stream ended without an {name!r} event")

    def close(self) -> None:
        self.response.close()


@pytest.fixture
def fast(app: Flask) -> Flask:
    app.config["TRESEN_LIVE_TIMING"] = FAST
    return app


@pytest.fixture
def owner(app: Flask, admin: FlaskClient) -> FlaskClient:  # noqa: F811
    """The owner's logged-in browser."""
    return admin


def user_id(app: Flask, name: str) -> int:
    with get_db(app).session() as session:
        found = session.scalar(select(User.id).where(User.name == name))
    assert found is not None
    return found


def assign(app: Flask, wa_id: str, to: int | None) -> None:
    cid = contact_id(app, wa_id)
    with get_db(app).session() as session:
        session.merge(Conversation(contact_id=cid, assigned_user_id=to, updated_at=NOW))


def writes(client: FlaskClient, wa_id: str, name: str, text: str, n: int = 0) -> None:
    receive(
        client,
        {"text": {"body": text}, "id": f"wamid.L{wa_id}{n}{time.monotonic_ns()}"},
        wa_id=wa_id,
        name=name,
    )


def test_a_new_message_is_told_to_whom_it_concerns(fast: Flask, owner: FlaskClient) -> None:
    app = fast
    users.add_user(get_db(app), "bea", PASSWORD, role=users.Role.STAFF, now=NOW)
    me, bea = user_id(app, "owner"), user_id(app, "bea")
    for wa_id, name in ((ANNA, "Anna"), (KARL, "Karl"), (LENA, "Lena")):
        writes(owner, wa_id, name, "Hallo")
    assign(app, KARL, me)
    assign(app, LENA, bea)

    stream = Stream(owner)
    assert stream.response.status_code == 200
    assert stream.response.mimetype == "text/event-stream"
    assert stream.response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in stream.response.headers  # a background request
    assert "script-src 'self'" in stream.response.headers["Content-Security-Policy"]
    first = stream.next_event()
    assert stream.retry == FAST.retry_ms
    assert first is not None and first.name == "unread"
    assert first.data["unread_for_me"] == 2  # Anna's and Karl's: Lena's is Bea's

    writes(owner, ANNA, "Anna", "Ist mein Strauß fertig?", 1)
    writes(owner, KARL, "Karl", "<b>Tulpen</b>\n  bitte", 1)
    writes(owner, LENA, "Lena", "Rosen?", 1)
    event = stream.until("inbox")
    stream.close()
    told = {item["name"]: item for item in event.data["new"]}
    assert {name: item["for_me"] for name, item in told.items()} == {
        "Anna": True,
        "Karl": True,
        "Lena": False,
    }
    assert told["Karl"]["snippet"] == "<b>Tulpen</b> bitte"  # plain text, one line
    assert told["Anna"]["url"] == f"/admin/inbox/{contact_id(app, ANNA)}"
    assert event.data["unread_for_me"] == 2
    assert event.id == str(changes.Mark.parse(event.id))
    assert event.data["latest"] == changes.Mark.parse(event.id).latest  # type: ignore[union-attr]


def test_a_state_change_and_a_read_elsewhere_are_told(fast: Flask, owner: FlaskClient) -> None:
    app = fast
    me = user_id(app, "owner")
    writes(owner, ANNA, "Anna", "Hallo")
    writes(owner, KARL, "Karl", "Hallo")
    stream = Stream(owner)
    assert stream.until("unread").data["unread_for_me"] == 2
    # A colleague takes Karl's conversation: the list changed, and it is no longer for me.
    with get_db(app).session() as session:
        session.add(
            Conversation(contact_id=contact_id(app, KARL), assigned_user_id=None, updated_at=NOW)
        )
    users.add_user(get_db(app), "bea", PASSWORD, role=users.Role.STAFF, now=NOW)
    bea, karl = user_id(app, "bea"), contact_id(app, KARL)
    with get_db(app).session() as session:
        row = session.get(Conversation, karl)
        assert row is not None
        row.assigned_user_id = bea
        row.updated_at = NOW + timedelta(seconds=5)
    event = stream.until("inbox")
    assert event.data["new"] == [] and event.data["unread_for_me"] == 1
    # Read in another tab: no message, no state change, but the count is told.
    anna = contact_id(app, ANNA)
    with get_db(app).session() as session:
        mark_seen(session, me, anna, 10**9)
    assert stream.until("unread").data["unread_for_me"] == 0
    stream.close()


def test_a_conversation_handed_to_someone_is_told_to_them_only(
    fast: Flask,
    owner: FlaskClient,
    clock: Any,  # noqa: F811
) -> None:
    from tests.test_conversations import post, staff

    app = fast
    bea = staff(app, "bea")
    writes(owner, ANNA, "Anna", "Hallo")
    writes(owner, KARL, "Karl", "Hallo")
    anna, karl = contact_id(app, ANNA), contact_id(app, KARL)
    hers, mine = Stream(bea), Stream(owner)
    hers.until("unread")
    mine.until("unread")

    clock.at = NOW + timedelta(seconds=5)
    assert (
        post(owner, f"/admin/inbox/{anna}/assign", user=str(user_id(app, "bea"))).status_code == 302
    )
    told = hers.until("inbox").data["new"]
    assert [(i["name"], i["for_me"], i["snippet"]) for i in told] == [
        ("Anna", True, "owner hat Ihnen das Gespräch zugewiesen")
    ]
    assert told[0]["url"] == f"/admin/inbox/{anna}"
    # The owner's own stream hears that the list changed, but is told of nothing new.
    assert mine.until("inbox").data["new"] == []

    # Taking a conversation oneself is no news to oneself.
    clock.at = NOW + timedelta(seconds=10)
    post(owner, f"/admin/inbox/{karl}/assign", user=str(user_id(app, "owner")))
    assert mine.until("inbox").data["new"] == []
    hers.close()
    mine.close()


def test_a_reconnect_tells_what_it_missed_and_nothing_twice(
    fast: Flask, owner: FlaskClient
) -> None:
    writes(owner, ANNA, "Anna", "Hallo")
    stream = Stream(owner)
    before = stream.until("unread").id
    stream.close()
    writes(owner, ANNA, "Anna", "Noch da?", 1)  # while no stream was open

    stream = Stream(owner, last_event_id=before)
    missed = stream.next_event()
    stream.close()
    assert missed is not None and missed.name == "inbox"
    assert [item["snippet"] for item in missed.data["new"]] == ["Noch da?"]

    stream = Stream(owner, last_event_id=missed.id)
    again = stream.next_event()
    stream.close()
    assert again is not None and again.name == "unread"  # nothing new: no notification again

    for nonsense in ("", "abc", "1-2-3", "9" * 40, "99999999-0"):
        stream = Stream(owner, last_event_id=nonsense)
        event = stream.next_event()
        stream.close()
        assert event is not None and event.name == "unread", nonsense


def test_streams_beyond_the_cap_are_refused(fast: Flask, owner: FlaskClient) -> None:
    app = fast
    live.streams(app).capacity = 2
    first, second = Stream(owner), Stream(owner)
    assert first.next_event() is not None and second.next_event() is not None
    refused = owner.get("/admin/events")
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "60"
    # (Closed newest first: in this one thread each read stream keeps its request context.)
    second.close()
    third = Stream(owner)
    assert third.response.status_code == 200
    # One never read at all gives its place back when closed, too.
    third.close()
    first.close()
    assert live.streams(app).open == 0


def test_a_stream_ends_after_its_lifetime_with_heartbeats_meanwhile(
    app: Flask, owner: FlaskClient
) -> None:
    app.config["TRESEN_LIVE_TIMING"] = Timing(lifetime=0.4, check=0.02, heartbeat=0.1)
    started = time.monotonic()
    stream = Stream(owner)
    assert stream.until("unread")
    assert stream.next_event() is None
    assert 0.4 <= time.monotonic() - started < 3
    assert stream.comments >= 2
    assert live.streams(app).open == 0


def test_a_head_request_takes_no_place(fast: Flask, owner: FlaskClient) -> None:
    live.streams(fast).capacity = 1
    assert owner.head("/admin/events").status_code == 200
    assert live.streams(fast).open == 0


def test_logged_out_gets_401_and_no_stream(app: Flask, client: FlaskClient) -> None:
    answer = client.get("/admin/events", headers={"Accept": "text/event-stream"})
    assert answer.status_code == 401
    assert live.streams(app).open == 0


def test_unread_for_me_counts_as_unread_counts_does(app: Flask, owner: FlaskClient) -> None:
    users.add_user(get_db(app), "bea", PASSWORD, role=users.Role.STAFF, now=NOW)
    me, bea = user_id(app, "owner"), user_id(app, "bea")
    for n, (wa_id, name) in enumerate(((ANNA, "Anna"), (KARL, "Karl"), (LENA, "Lena"))):
        writes(owner, wa_id, name, "Hallo", n)
    assign(app, LENA, bea)
    karl, expected = contact_id(app, KARL), {contact_id(app, ANNA), contact_id(app, LENA)}
    with get_db(app).session() as session:
        mark_seen(session, me, karl, 10**9)
        ids = list(session.scalars(select(Contact.id)))
        counts = unread_counts(session, me, ids)
        assert changes.unread_conversations(session, me) == 1  # Anna
        assert changes.unread_conversations(session, bea) == 3  # she read none of them
    assert {cid for cid, n in counts.items() if n} == expected


def test_live_streams_setting() -> None:
    assert live.streams_for(4, None) == 2
    assert live.streams_for(1, None) == 0  # the one thread stays the webhook's
    assert live.streams_for(8, 1) == 1
    assert load({"LIVE_STREAMS": "0"}, Path("/tmp")).live_streams == 0
    with pytest.raises(ConfigError, match="LIVE_STREAMS"):
        load({"LIVE_STREAMS": "many"}, Path("/tmp"))


# --- under gunicorn ---------------------------------------------------------------------------


def _log_in(url: str) -> requests.Session:
    browser = requests.Session()
    page = browser.get(f"{url}/admin/login", timeout=10).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token
    answer = browser.post(
        f"{url}/admin/login",
        data={"name": "owner", "password": PASSWORD, "csrf_token": token[1]},
        timeout=10,
        allow_redirects=False,
    )
    assert answer.status_code == 302
    return browser


class Reader(threading.Thread):
    """Reads one stream to its end on a thread of its own."""

    def __init__(self, browser: requests.Session, url: str) -> None:
        super().__init__(daemon=True)
        self.response = browser.get(
            f"{url}/admin/events", stream=True, timeout=30, headers={"Accept": "text/event-stream"}
        )
        self.text = ""
        self.ended_at: float | None = None

    def run(self) -> None:
        # The test may close the response under this thread: whatever that raises ends it.
        with contextlib.suppress(Exception):
            for chunk in self.response.iter_content(chunk_size=None, decode_unicode=True):
                self.text += chunk
        self.ended_at = time.monotonic()


@pytest.mark.slow
def test_under_gunicorn_open_streams_leave_the_webhook_its_threads(
    database_url: str, tmp_path: Path
) -> None:
    url = load({"DATABASE_URL": database_url}, tmp_path).database_url
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    database = Database(url)
    with database.session() as session:
        users.create_or_reset(session, "owner", PASSWORD, now=NOW)
    database.dispose()
    # gunicorn's timeout shortened to 3 s, streams of 8 s: a worker busy streaming must still
    # count as alive (gthread's main thread reports for it).
    env = {
        "DATABASE_URL": database_url,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "GUNICORN_CMD_ARGS": "--timeout 3",
    }
    web, base = gunicorn(env, tmp_path / "web.log", workers=1, threads=4, app="tests.live_app:app")
    with web:
        browser = _log_in(base)
        started = time.monotonic()
        readers = [Reader(browser, base) for _ in range(2)]  # the cap: half of 4 threads
        for reader in readers:
            assert reader.response.status_code == 200
            reader.start()
        assert browser.get(f"{base}/admin/events", timeout=5).status_code == 503

        body = json.dumps(notification(wa_id=ANNA, name="Anna")).encode()
        headers = {
            "X-Hub-Signature-256": sign(body, APP_SECRET),
            "Content-Type": "application/json",
        }
        for _ in range(5):
            sent = time.monotonic()
            answer = requests.post(
                f"{base}/webhooks/whatsapp", data=body, headers=headers, timeout=5
            )
            took = time.monotonic() - sent
            assert answer.status_code == 200
            assert took < 1.0, f"the webhook took {took:.2f} s with the streams open"
        # So does the admin's own polling.
        assert browser.get(f"{base}/admin/inbox.json", timeout=5).status_code == 200

        # A stream the browser closed frees its place at once, not at its next write.
        readers[0].response.close()
        deadline = time.monotonic() + 3
        while (
            again := browser.get(f"{base}/admin/events", stream=True, timeout=5)
        ).status_code != 200:
            again.close()
            assert time.monotonic() < deadline, "the closed stream's place was not given back"
            time.sleep(0.1)
        again.close()

        readers[1].join(timeout=30)
        assert readers[1].ended_at is not None
        lived = readers[1].ended_at - started
        assert lived >= 7, lived  # lived its 8 s, past gunicorn's 3 s timeout
        assert "event: unread" in readers[1].text and "retry: 1500" in readers[1].text
        # Told to stop, the worker ends its open streams instead of waiting out their minute.
        last = Reader(browser, base)
        assert last.response.status_code == 200
        last.start()
        stopping = time.monotonic()
        web.stop()
        took = time.monotonic() - stopping
        assert took < 5, f"stopping took {took:.1f} s"  # not the rest of the stream's 8 s
        output = web.output()
    assert "WORKER TIMEOUT" not in output, output
    assert "Traceback" not in output, output
