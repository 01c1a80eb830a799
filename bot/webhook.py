"""The WhatsApp webhook blueprint: Meta's subscription check, and notifications handed on."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request

from bot import inbound
from bot.db import get_db
from bot.store import store_events

bp = Blueprint("webhook", __name__, url_prefix="/webhooks")


@bp.get("/whatsapp")
def verify_subscription() -> Response:
    config = current_app.config["TRESEN"]
    mode = request.args.get("hub.mode")
    token = request.args.get("hub.verify_token", "")
    challenge = request.args.get("hub.challenge", "")
    expected = config.verify_token
    if (
        mode == "subscribe"
        and expected is not None
        and hmac.compare_digest(token.encode(), expected.encode())
    ):
        return Response(challenge, 200, mimetype="text/plain")
    return Response("forbidden", 403, mimetype="text/plain")


@bp.post("/whatsapp")
def notification() -> Response:
    config = current_app.config["TRESEN"]
    if config.app_secret is None:
        refused = inbound.refuse_unsigned(request.remote_addr, request.headers.keys())
        if refused is not None:
            return Response(refused.body, refused.status, mimetype="text/plain")
    database = get_db()
    clock = current_app.config["TRESEN_CLOCK"]
    answer = inbound.receive(
        request.get_data(cache=False),
        request.headers.get("X-Hub-Signature-256"),
        app_secret=config.app_secret,
        store=lambda events: store_events(
            database, events, now=clock(), phone_number_id=config.phone_number_id
        ),
    )
    return Response(answer.body, answer.status, mimetype="text/plain")
