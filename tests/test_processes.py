"""Real processes: concurrent redelivery to two servers, and the embedded default from scratch."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, func, select

from bot.config import load
from bot.db import Database, make_engine, upgrade
from bot.embedded import stopping
from bot.inbound import spool
from bot.inbound.processor import process_batch
from bot.models import InboundNotification, Message, utcnow
from bot.whatsapp.signature import sign
from tests.conftest import APP_SECRET
from tests.payloads import notification
from tests.processes import Process, free_port, gunicorn, run, wait_healthy

pytestmark = pytest.mark.slow


def test_concurrent_redelivery_to_two_processes_stores_each_message_once(
    database_url: str, tmp_path: Path
) -> None:
    url = load({"DATABASE_URL": database_url}, tmp_path).database_url
    engine = make_engine(url)
    upgrade(engine)
    env = {"DATABASE_URL": database_url, "WHATSAPP_APP_SECRET": APP_SECRET}
    web1, url1 = gunicorn(env, tmp_path / "web1.log", threads=8)
    web2, url2 = gunicorn(env, tmp_path / "web2.log", threads=8)
    with web1, web2:
        docs = [notification(wa_id=f"49151000000{i:02d}") for i in range(10)]
        bodies = [json.dumps(d).encode() for d in docs]
        # Each message arrives 8 times, half on each process, all at once.
        jobs = [(url, body) for body in bodies for url in (url1, url2) * 4]

        def post(job: tuple[str, bytes]) -> int:
            target, body = job
            headers = {
                "X-Hub-Signature-256": sign(body, APP_SECRET),
                "Content-Type": "application/json",
            }
            return requests.post(
                f"{target}/webhooks/whatsapp", data=body, headers=headers, timeout=30
            ).status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(post, jobs))
    assert statuses == [200] * len(jobs)
    spool.move(
        Database(url)
    )  # SQLite: the acknowledged ones into the journal, as a processor would
    with engine.connect() as conn:
        journalled = conn.execute(select(func.count()).select_from(InboundNotification)).scalar()
    assert journalled == len(docs)  # each redelivery is the row already there
    while process_batch(Database(url), utcnow(), ours=None):
        pass
    with engine.connect() as conn:
        stored = conn.execute(select(Message.wamid, func.count()).group_by(Message.wamid)).all()
    assert sorted(stored) == sorted(
        (d["entry"][0]["changes"][0]["value"]["messages"][0]["id"], 1) for d in docs
    )
    engine.dispose()


def test_release_command_migrates_an_empty_database(database_url: str, tmp_path: Path) -> None:
    env = {"DATABASE_URL": database_url}
    done = run(["flask", "--app", "app", "db", "upgrade"], env)
    assert done.returncode == 0, done.stderr
    engine = create_engine(load(env, tmp_path).database_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Message)).scalar() == 0
    engine.dispose()


def test_the_embedded_default_runs_from_nothing(tmp_path: Path) -> None:
    """`python app.py` with nothing set: SQLite, console mode, demo business, reply logged."""
    port = free_port()
    env = {"INSTANCE_PATH": str(tmp_path / "instance"), "PORT": str(port)}
    with Process([sys.executable, "app.py"], env, tmp_path / "app.log") as app:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, app)
        doc = notification(
            {"type": "text", "text": {"body": "Hallo, habt ihr offen?"}}, name="Anna"
        )
        answer = requests.post(f"{url}/webhooks/whatsapp", json=doc, timeout=10)
        assert answer.status_code == 200
        deadline = time.monotonic() + 15
        while "console mode: would send" not in app.output() and time.monotonic() < deadline:
            time.sleep(0.1)
        # SIGTERM right after the send: what was in flight is finished, not cut off.
        assert app.stop() == 0
    output = app.output()
    assert output.rstrip().endswith("INFO tresen: stopped")
    assert (
        "WHATSAPP_APP_SECRET is not set: unsigned webhook posts are accepted from this machine only"
        in output
    )
    assert "seeded the demo business" in output
    assert "stored text message" in output
    assert "console mode: would send text to 4915112345678" in output
    engine = create_engine(f"sqlite:///{tmp_path / 'instance' / 'tresen.db'}")
    with engine.connect() as conn:
        rows = conn.execute(select(Message.direction, Message.status).order_by(Message.id)).all()
    engine.dispose()
    assert rows == [("in", "received"), ("out", "sent")]


def test_procfile_processes_answer_a_customer_through_the_graph_api(
    database_url: str, tmp_path: Path
) -> None:
    """release, web and worker as the Procfile runs them; the reply reaches the (fake) Graph API."""
    from tests.fakegraph import FakeGraph
    from tests.test_autoreply import SHOP

    token = "EAAG-live-token"
    with FakeGraph(token=token) as graph:
        env = {
            "DATABASE_URL": database_url,
            "WHATSAPP_TOKEN": token,
            "WHATSAPP_PHONE_NUMBER_ID": "106540352242922",
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "WHATSAPP_VERIFY_TOKEN": "verify-me",
            "SECRET_KEY": "k" * 32,
            "GRAPH_API_URL": graph.url,
            "GRAPH_API_VERSION": "v24.0",
        }
        settings_file = tmp_path / "shop.yaml"
        settings_file.write_text(SHOP, encoding="utf-8")
        for command in (["db", "upgrade"], ["settings", "import", str(settings_file)]):
            done = run(["flask", "--app", "app", *command], env)
            assert done.returncode == 0, done.stderr
        web, url = gunicorn(env, tmp_path / "web.log")
        worker = Process(["flask", "--app", "app", "worker"], env, tmp_path / "worker.log")
        with web, worker:
            doc = notification({"type": "text", "text": {"body": "Wann habt ihr Öffnungszeiten?"}})
            body = json.dumps(doc).encode()
            headers = {
                "X-Hub-Signature-256": sign(body, APP_SECRET),
                "Content-Type": "application/json",
            }
            assert (
                requests.post(
                    f"{url}/webhooks/whatsapp", data=body, headers=headers, timeout=10
                ).status_code
                == 200
            )
            assert graph.wait_for(1, timeout=20), worker.output()
        [received] = graph.requests
    assert received.path == "/v24.0/106540352242922/messages"
    assert received.headers["Authorization"] == f"Bearer {token}"
    assert received.json["to"] == "4915112345678"
    assert received.json["text"]["body"].startswith("Unsere Öffnungszeiten")


def test_a_second_stop_signal_does_not_cut_the_shutdown_short(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Once the embedded server is stopping, a repeated Ctrl-C or SIGTERM is logged and the
    shutdown goes on (before, it raised KeyboardInterrupt in the middle of it)."""
    kept = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        stopping()
        with caplog.at_level(logging.INFO, logger="tresen"):
            for signum in (signal.SIGTERM, signal.SIGINT):
                os.kill(os.getpid(), signum)
                time.sleep(0.01)  # the handler runs between bytecodes of this thread
        assert [r.getMessage() for r in caplog.records] == [
            "SIGTERM: already stopping, finishing what is in flight",
            "SIGINT: already stopping, finishing what is in flight",
        ]
    finally:
        for signum, handler in kept.items():
            signal.signal(signum, handler)
