"""Real processes: concurrent redelivery to two servers, and the embedded default from scratch."""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, func, select

from bot.config import load
from bot.db import make_engine, upgrade
from bot.models import Message
from bot.signature import sign
from tests.conftest import APP_SECRET
from tests.processes import ROOT, gunicorn
from tests.test_webhook import notification

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
    with engine.connect() as conn:
        stored = conn.execute(select(Message.wamid, func.count()).group_by(Message.wamid)).all()
    assert sorted(stored) == sorted(
        (d["entry"][0]["changes"][0]["value"]["messages"][0]["id"], 1) for d in docs
    )
    engine.dispose()


def test_release_command_migrates_an_empty_database(database_url: str, tmp_path: Path) -> None:
    env = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "DATABASE_URL": database_url}
    done = subprocess.run(
        ["flask", "--app", "app", "db", "upgrade"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    engine = create_engine(load(env, tmp_path).database_url)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Message)).scalar() == 0
    engine.dispose()
