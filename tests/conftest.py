"""Fixtures: an app on a fresh database per test (SQLite, or PostgreSQL with TEST_DATABASE_URL).

Running the migrations costs a tenth of a second or more; a test process runs them once, into
a template, and each test that uses `app` gets a copy of it. A test that uses only
`database_url` gets an empty database, to migrate (or not) as it likes.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from alembic.script import ScriptDirectory
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from hypothesis import settings
from sqlalchemy import Engine, create_engine, make_url, text

from bot import create_app, private_files
from bot.db import MIGRATIONS, Database, get_db
from bot.inbound.processor import process_batch
from bot.strain import Strain
from bot.whatsapp.signature import sign

ROOT = Path(__file__).resolve().parent.parent
# pywa's real notification corpus (MIT), kept in the repository: see fixtures/meta/README.md.
PYWA_UPDATES = Path(__file__).resolve().parent / "fixtures" / "meta" / "pywa"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
APP_SECRET = "test-app-secret"

# Property tests try a fifth of their examples on a developer's machine and all of them in CI
# (.ci/run sets CI=true); HYPOTHESIS_PROFILE=ci or =dev chooses either way. A test's own
# `max_examples` is scaled with `examples()`.
settings.register_profile("ci")
settings.register_profile("dev", max_examples=20)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE")
    or ("ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev")
)


def examples(count: int) -> int:
    """A test's `count` examples under the ci profile, as many fewer (but ten) under dev."""
    scaled = count * settings.default.max_examples // settings.get_profile("ci").max_examples
    return min(count, max(10, scaled))


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


def _psycopg(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def _pg_engine(url: str) -> Engine:
    return create_engine(_psycopg(url), isolation_level="AUTOCOMMIT")


def _with_database(url: str, name: str) -> str:
    """`url` naming the database `name` instead of its own (its query kept)."""
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def migrations_head() -> str:
    return str(ScriptDirectory(str(MIGRATIONS)).get_current_head())


# Databases the `app` fixture need not migrate: copies of the migrated template.
_migrated: set[str] = set()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """This test process's migrated database, copied for each test that uses `app`.

    SQLite: a file in a folder of its own. PostgreSQL: a database of this process's own (a
    template must have no other connection while it is copied). Named after the migrations'
    head, so a template of an older schema is never taken for the current one.
    """
    head = migrations_head()
    base = pg_url()
    if base is None:
        path = tmp_path_factory.mktemp("template") / f"tresen-{head}.db"
        database = Database(f"sqlite:///{path}")
        database.upgrade()
        database.dispose()  # the last connection closed checkpoints and removes -wal and -shm
        assert not any(path.with_name(path.name + end).exists() for end in ("-wal", "-shm"))
        yield str(path)
        return
    name = f"tmpl_{head[:40]}_{uuid.uuid4().hex[:12]}"  # within 63 characters
    admin = _pg_engine(base)
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        database = Database(_psycopg(_with_database(base, name)))
        database.upgrade()
        database.dispose()
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own for one test: a SQLite file, or PostgreSQL's.

    Empty, unless the test uses `app`: then a copy of the migrated template, as `app` would
    migrate it anyway. PostgreSQL's empty one is a fresh schema; its copy is a database made
    from the template, whose URL names the schema all the same, so tests can add options.
    """
    template = (
        request.getfixturevalue("migrated_template")
        if {"app", "s3_app"} & set(request.fixturenames)
        else None
    )
    base = pg_url()
    if base is None:
        path = tmp_path / "tresen.db"
        if template is not None:
            private_files.create_file(path)  # owner-only, as the app makes it
            shutil.copyfile(template, path)
            _migrated.add(f"sqlite:///{path}")
        yield f"sqlite:///{path}"
        _migrated.discard(f"sqlite:///{path}")
        return
    sep = "&" if "?" in base else "?"
    admin = _pg_engine(base)
    if template is not None:
        name = f"t_{uuid.uuid4().hex[:16]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
        url = f"{_with_database(base, name)}{sep}options={quote('-csearch_path=public')}"
        _migrated.add(url)
        yield url
        _migrated.discard(url)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
        return
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def make_env(database_url: str, **overrides: str) -> dict[str, str]:
    env = {"DATABASE_URL": database_url, "WHATSAPP_APP_SECRET": APP_SECRET}
    env.update(overrides)
    return {k: v for k, v in env.items() if v != ""}


def build_app(database_url: str, tmp_path: Path, **overrides: str) -> Flask:
    """An app as the `app` fixture makes it, with variables added (e.g. MEDIA_STORE); the
    caller disposes of `get_db(app)`."""
    app = create_app(make_env(database_url, **overrides), instance_path=tmp_path / "instance")
    app.config["TESTING"] = True
    if database_url not in _migrated:  # `app` asked for late (getfixturevalue)
        get_db(app).upgrade()
    return app


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    app = build_app(database_url, tmp_path)
    yield app
    get_db(app).dispose()


# An S3-compatible server for the media store's tests: moto's, in a child process of its own
# (so its memory is not the test process's), on a free port of 127.0.0.1; it ends when its
# standard input closes, so it never outlives the tests.
_S3_SERVER = (
    "import logging, sys\n"
    "from moto.server import ThreadedMotoServer\n"
    "logging.getLogger('werkzeug').setLevel(logging.ERROR)\n"
    "server = ThreadedMotoServer('127.0.0.1', 0, verbose=False)\n"
    "server.start()\n"
    "print(server.get_host_and_port()[1], flush=True)\n"
    "sys.stdin.read()\n"
)
S3_KEY, S3_SECRET = "tresen-test", "s3cret/with+signs"


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """`host:port` of an S3-compatible server (plain HTTP; any key and secret are accepted)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _S3_SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    port = proc.stdout.readline().strip()
    if not port.isdigit():
        proc.kill()
        raise RuntimeError(f"the S3 test server did not start (exit {proc.wait()})")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.stdin.close()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def s3_media_url(s3_server: str) -> Iterator[str]:
    """A `MEDIA_STORE` URL naming a fresh bucket (not yet made: the store makes it at first
    use); the bucket and what it holds are removed after the test."""
    bucket = f"tresen-{uuid.uuid4().hex[:16]}"
    yield f"s3://{quote(S3_KEY, safe='')}:{quote(S3_SECRET, safe='')}@{s3_server}/{bucket}?secure=false"
    from minio import Minio
    from minio.deleteobjects import DeleteObject

    client = Minio(s3_server, access_key=S3_KEY, secret_key=S3_SECRET, secure=False)
    with contextlib.suppress(Exception):
        objects = [DeleteObject(o.object_name) for o in client.list_objects(bucket, recursive=True)]
        for _error in client.remove_objects(bucket, objects):
            pass
        client.remove_bucket(bucket)


@pytest.fixture
def s3_app(database_url: str, tmp_path: Path, s3_media_url: str) -> Iterator[Flask]:
    """The `app` fixture's app, keeping its media in a fresh bucket of the S3 test server."""
    app = build_app(database_url, tmp_path, MEDIA_STORE=s3_media_url)
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
    """Post as Meta does, then process what was journalled, as the worker would at once."""
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    response = client.post("/webhooks/whatsapp", data=body, headers=signed_headers(body, secret))
    if response.status_code == 200:
        process_inbound(client.application)
    return response


def process_inbound(app: Flask) -> int:
    """Process every waiting notification, at the app's clock; how many were taken."""
    config = app.config["TRESEN"]
    total = 0
    while taken := process_batch(
        get_db(app), app.config["TRESEN_CLOCK"](), ours=config.phone_number_id
    ):
        total += taken
    return total


def load_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Tests that touch the database run a second time on PostgreSQL in CI (`-m db`).
    for item in items:
        if "database_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)
