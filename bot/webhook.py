"""The WhatsApp webhook blueprint: Meta's subscription check, and notifications journalled."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, request
from sqlalchemy.exc import DBAPIError

from bot.db import get_db
from bot.inbound import journal, receive

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
        refused = receive.refuse_unsigned(request.remote_addr, request.headers.keys())
        if refused is not None:
            return Response(refused.body, refused.status, mimetype="text/plain")
    database = get_db()
    now = current_app.config["TRESEN_CLOCK"]()

    def record(body: bytes, arrival: receive.Arrival) -> None:
        try:
            journal.record(database, body, arrival, now)
        except DBAPIError as exc:
            receive.log.error("notification not journalled: %s", exc.__class__.__name__)
            raise receive.StoreUnavailable(str(exc)) from exc

    answer = receive.receive(
        request.get_data(cache=False),
        request.headers.get("X-Hub-Signature-256"),
        app_secret=config.app_secret,
        now=now,
        journal=record,
    )
    return Response(answer.body, answer.status, mimetype="text/plain")
