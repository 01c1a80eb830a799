"""Many processes on one database: 2 gunicorn web servers and 2 `flask worker` dispatchers
against the fake Graph API, under concurrent and redelivered notifications, and with the
database connections cut during traffic (PostgreSQL)."""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlalchemy import create_engine, func, select, text

from bot.db import get_db
from bot.models import Message
from bot.settings.stored import save_settings
from tests.conftest import APP_SECRET, signed_headers
from tests.fakegraph import FakeGraph
from tests.payloads import notification
from tests.processes import Process, gunicorn

TOKEN = "EAAG-scale-token"
PHONE = "106540352242922"

# Every text matches, at any hour: each new message gets exactly one reply quoting it.
ECHO = """\
business: {name: Echo, timezone: Europe/Berlin, locale: de_DE}
hours: {mon: ["00:00-24:00"]}
replies:
  keywords:
    - {pattern: ".", template: echo, when: always}
templates:
  echo: "re: {{ message.text }}"
"""


def env(database_url: str, graph: FakeGraph) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "WHATSAPP_TOKEN": TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": PHONE,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": "verify",
        "SECRET_KEY": "k" * 32,
        "GRAPH_API_URL": graph.url,
        "GRAPH_API_VERSION": "v24.0",
        "SEND_RATE": "2000",
    }


@contextlib.contextmanager
def cluster(
    database_url: str, graph: FakeGraph, logs: Path, *, lease: str = "30"
) -> Iterator[list[str]]:
    """2 web processes and 2 workers; yields the web servers' base URLs."""
    environment = env(database_url, graph)
    with contextlib.ExitStack() as stack:
        urls = []
        for i in range(2):
            web, url = gunicorn(environment, logs / f"web{i}.log", workers=1, threads=8)
            stack.enter_context(web)
            urls.append(url)
        for i in range(2):
            args = ["flask", "--app", "app", "worker", "--lease", lease, "--concurrency", "16"]
            stack.enter_context(Process(args, environment, logs / f"worker{i}.log"))
        yield urls


def echo_settings(app: Flask) -> None:
    with get_db(app).session() as session:
        save_settings(session, ECHO)


def body(i: int, run: str, contacts: int = 100) -> bytes:
    wa_id = f"4915{i % contacts:09d}"
    msg = {"id": f"wamid.{run}.{i:05d}", "type": "text", "text": {"body": f"m{i}"}}
    return json.dumps(notification(msg, wa_id=wa_id, name=f"Kunde {i % contacts}")).encode()


def post(session: requests.Session, url: str, data: bytes) -> int:
    try:
        response = session.post(
            f"{url}/webhooks/whatsapp", data=data, headers=signed_headers(data), timeout=20
        )
    except requests.ConnectionError:
        return 0
    return response.status_code


def post_all(urls: list[str], bodies: list[bytes], threads: int) -> list[int]:
    """Post every body once, from `threads` threads with a kept-alive session each."""
    local = threading.local()

    def one(k: int) -> int:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return post(local.session, urls[k % len(urls)], bodies[k])

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(len(bodies))))


def wait_until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not reached in {timeout}s")


def outbound_settled(app: Flask) -> bool:
    with get_db(app).session() as session:
        pending = session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.direction == "out", Message.status.in_(("queued", "sending")))
        )
    return pending == 0


def inbound_wamids(app: Flask) -> Counter[str]:
    with get_db(app).session() as session:
        wamids = session.scalars(select(Message.wamid).where(Message.direction == "in"))
        return Counter(w or "" for w in wamids)


def reply_texts(graph: FakeGraph) -> Counter[str]:
    return Counter(r.json["text"]["body"] for r in graph.requests if r.json.get("type") == "text")


@pytest.mark.slow
def test_concurrent_and_redelivered_notifications_get_one_reply_each(
    app: Flask, tmp_path: Path
) -> None:
    echo_settings(app)
    run = uuid.uuid4().hex[:8]
    unique = [body(i, run) for i in range(800)]
    rng = random.Random(7)
    bodies = unique + rng.sample(unique, 200)  # a fifth of the posts are redeliveries
    rng.shuffle(bodies)
    with FakeGraph(token=TOKEN) as graph, cluster(get_db(app).url, graph, tmp_path) as urls:
        statuses = post_all(urls, bodies, 32)
        assert Counter(statuses) == {200: 1000}
        wait_until(lambda: graph.count >= 800, 40, "800 replies sent")
        wait_until(lambda: outbound_settled(app), 20, "outbox settled")
        time.sleep(0.5)  # a duplicate send, if any, would arrive now
    stored = inbound_wamids(app)
    assert len(stored) == 800
    assert set(stored.values()) == {1}
    replies = reply_texts(graph)
    assert replies == Counter({f"re: m{i}": 1 for i in range(800)})
    assert graph.count == 800


@pytest.mark.slow
def test_connections_cut_during_traffic_answer_503_and_lose_nothing(
    app: Flask, database_url: str, tmp_path: Path
) -> None:
    if database_url.startswith("sqlite"):
        pytest.skip("cuts PostgreSQL connections")
    echo_settings(app)
    # Our processes' connections carry this name: only they are cut, nobody else's.
    name = f"tresen_scale_{uuid.uuid4().hex[:10]}"
    url = f"{get_db(app).url}&application_name={name}"
    run = uuid.uuid4().hex[:8]
    bodies = [body(i, run, contacts=200) for i in range(600)]
    admin_url = get_db(app).url.split("?", 1)[0]
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    cut = []

    def cutter(stop: threading.Event) -> None:
        while not stop.wait(0.4):
            with admin.connect() as conn:
                cut.append(
                    conn.execute(
                        text(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE application_name = :name"
                        ),
                        {"name": name},
                    ).scalar_one()
                )

    try:
        with (
            FakeGraph(token=TOKEN) as graph,
            cluster(url, graph, tmp_path, lease="3") as urls,
        ):
            stop = threading.Event()
            thread = threading.Thread(target=cutter, args=(stop,))
            thread.start()
            try:
                statuses = post_all(urls, bodies, 16)
            finally:
                stop.set()
                thread.join(10)
            assert sum(cut) > 0, "no connection was cut"
            assert set(statuses) <= {200, 503}, Counter(statuses)
            accepted = {f"wamid.{run}.{i:05d}" for i, s in enumerate(statuses) if s == 200}
            # Journalled before the 200; stored once processed, cuts and all.
            wait_until(lambda: accepted <= set(inbound_wamids(app)), 60, "accepted stored")
            refused = [b for b, s in zip(bodies, statuses, strict=True) if s == 503]
            # Meta delivers again what got a 503; now that the database answers, it is stored.
            assert Counter(post_all(urls, refused, 8)) == ({200: len(refused)} if refused else {})
            wait_until(lambda: len(inbound_wamids(app)) == 600, 60, "all stored")
            stored = inbound_wamids(app)
            assert len(stored) == 600 and set(stored.values()) == {1}
            wait_until(lambda: graph.count >= 600, 40, "600 replies sent")
            wait_until(lambda: outbound_settled(app), 20, "outbox settled")
            time.sleep(0.5)
        replies = reply_texts(graph)
        assert replies == Counter({f"re: m{i}": 1 for i in range(600)})
        print(f"cut {sum(cut)} connections; {len(refused)} posts answered 503 and were re-posted")
    finally:
        admin.dispose()
