"""The least a webhook endpoint on this stack can do and still keep Tresen's promise that a
customer message is stored before it is acknowledged: Flask under gunicorn checks the
signature, decodes the JSON and commits the raw body in one INSERT, then answers 200.

No contacts, no rules, no reply: `bench.webhook_ack` serves it with the same gunicorn settings
and load as Tresen, so its figures are what this machine allows any such design, measured in
the same run. `FLOOR_DATABASE_URL` is a SQLite or PostgreSQL URL as Tresen takes them.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
from typing import Any

import psycopg
from flask import Flask, Response, request
from sqlalchemy.engine import make_url

from bot.whatsapp.signature import verify

URL = os.environ["FLOOR_DATABASE_URL"]
SECRET = os.environ["WHATSAPP_APP_SECRET"]
TABLE = "floor_notifications"
INSERT = f"INSERT INTO {TABLE} (body) VALUES ({'?' if URL.startswith('sqlite') else '%s'})"  # noqa: S608 (constant)

app = Flask(__name__)
_local = threading.local()


def _connect() -> Any:
    if URL.startswith("sqlite"):
        # Tresen's own SQLite settings (bot.db): WAL, commits that survive a process crash.
        conn = sqlite3.connect(str(make_url(URL).database), isolation_level=None, timeout=5)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn
    return psycopg.connect(URL, autocommit=True)


def connection() -> Any:
    """One connection per gunicorn thread, opened on its first post."""
    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = _local.conn = _connect()
    return conn


def create_table() -> None:
    kind = "INTEGER PRIMARY KEY" if URL.startswith("sqlite") else "BIGSERIAL PRIMARY KEY"
    # PostgreSQL: another gunicorn worker may create it at the same moment.
    with contextlib.suppress(psycopg.errors.UniqueViolation):
        connection().execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (id {kind}, body TEXT NOT NULL)")


@app.post("/webhooks/whatsapp")
def notification() -> Response:
    body = request.get_data(cache=False)
    if not verify(body, request.headers.get("X-Hub-Signature-256"), SECRET):
        return Response("bad signature", 401)
    try:
        json.loads(body)
    except ValueError:
        return Response("body is not valid JSON", 400)
    connection().execute(INSERT, (body.decode(),))
    return Response("ok", 200, mimetype="text/plain")


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


create_table()
