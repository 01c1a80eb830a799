"""Fixtures: an app on a fresh database per test (SQLite, or PostgreSQL with TEST_DATABASE_URL)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import create_engine, text

from bot import create_app
from bot.db import get_db
from bot.signature import sign
from bot.strain import Strain

ROOT = Path(__file__).resolve().parent.parent
# pywa's real notification corpus (MIT), kept in the repository: see fixtures/meta/README.md.
PYWA_UPDATES = Path(__file__).resolve().parent / "fixtures" / "meta" / "pywa"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
APP_SECRET = "test-app-secret"


@pytest.fixture(autouse=True)
def fresh_strain(monkeypatch: pytest.MonkeyPatch) -> None:
    """What ran over its bound in one test must not tighten the bounds of the next."""
    import bot.replies
    import bot.rules

    for module in (bot.replies, bot.rules):
        strain = module._strained
        monkeypatch.setattr(module, "_strained", Strain(strain.tight, strain.cool_off))


def pg_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL", "").strip()
    if not url:
        return None
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    return url


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    """A database of its own for one test: a SQLite file, or a fresh PostgreSQL schema."""
    base = pg_url()
    if base is None:
        yield f"sqlite:///{tmp_path / 'tresen.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base.replace("postgresql://", "postgresql+psycopg://", 1))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def make_env(database_url: str, **overrides: str) -> dict[str, str]:
    env = {"DATABASE_URL": database_url, "WHATSAPP_APP_SECRET": APP_SECRET}
    env.update(overrides)
    return {k: v for k, v in env.items() if v != ""}


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    app = create_app(make_env(database_url), instance_path=tmp_path / "instance")
    app.config["TESTING"] = True
    get_db(app).upgrade()
    yield app
    get_db(app).dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


def signed_headers(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {"X-Hub-Signature-256": sign(body, secret), "Content-Type": "application/json"}


def post_notification(client: FlaskClient, doc: Any, secret: str = APP_SECRET) -> Any:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return client.post("/webhooks/whatsapp", data=body, headers=signed_headers(body, secret))


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tests that touch the database run a second time on PostgreSQL in CI (`-m db`).
    for item in items:
        if "database_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)
