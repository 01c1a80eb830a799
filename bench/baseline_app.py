"""The simplest WhatsApp auto-responder, for `bench.end_to_end` to compare Tresen with: Flask
checks the signature, parses the notification and answers each customer text inside the
request, with one pooled `requests.Session` per process, then acknowledges.

No database, no rules, no retries: what the popular tutorial bots do. It reads the same
variables as Tresen (WHATSAPP_APP_SECRET, WHATSAPP_TOKEN, WHATSAPP_PHONE_NUMBER_ID,
GRAPH_API_URL, GRAPH_API_VERSION) and serves `POST /webhooks/whatsapp` and `GET /healthz`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from typing import Any

import requests
from flask import Flask, Response, request
from requests.adapters import HTTPAdapter

SECRET = os.environ["WHATSAPP_APP_SECRET"].encode()
TOKEN = os.environ["WHATSAPP_TOKEN"]
MESSAGES_URL = (
    f"{os.environ['GRAPH_API_URL'].rstrip('/')}/{os.environ.get('GRAPH_API_VERSION', 'v24.0')}"
    f"/{os.environ['WHATSAPP_PHONE_NUMBER_ID']}/messages"
)
REPLY = "Danke für deine Nachricht! Wir melden uns so bald wie möglich."

app = Flask(__name__)
# Shared by the process's request threads: urllib3's pool is thread-safe, and one connection
# per thread is kept alive to the Graph API.
session = requests.Session()
session.mount("http://", HTTPAdapter(pool_maxsize=int(os.environ.get("WEB_THREADS", "8"))))
session.mount("https://", HTTPAdapter(pool_maxsize=int(os.environ.get("WEB_THREADS", "8"))))
session.headers["Authorization"] = f"Bearer {TOKEN}"


def signed(body: bytes, header: str | None) -> bool:
    expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    return header is not None and hmac.compare_digest(header.encode(), expected.encode())


def text_senders(notification: Any) -> Iterator[str]:
    """The sender of each customer text message in a notification."""
    if not isinstance(notification, dict):
        return
    for entry in notification.get("entry") or []:
        for change in entry.get("changes") or []:
            for message in (change.get("value") or {}).get("messages") or []:
                if message.get("type") == "text" and message.get("from"):
                    yield str(message["from"])


@app.post("/webhooks/whatsapp")
def webhook() -> Response:
    body = request.get_data(cache=False)
    if not signed(body, request.headers.get("X-Hub-Signature-256")):
        return Response("bad signature", 401)
    try:
        notification = json.loads(body)
    except ValueError:
        return Response("body is not valid JSON", 400)
    for sender in text_senders(notification):
        payload = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": sender,
            "type": "text",
            "text": {"body": REPLY},
        }
        session.post(MESSAGES_URL, json=payload, timeout=10).raise_for_status()
    return Response("ok", 200, mimetype="text/plain")


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}
