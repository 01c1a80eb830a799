"""The health check that load balancers and Heroku's router ask."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from bot.db import get_db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    if get_db().ping():
        return jsonify(status="ok"), 200
    return jsonify(status="unavailable", reason="database does not answer"), 503
