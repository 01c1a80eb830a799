"""The API for shop systems under /api/v1/: API keys (keys), request bodies (requests), what
each route does (actions), the web edge (routes) and its OpenAPI document (openapi)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    # Imported here: the worker uses bot.api.idempotency (pruning) without the web edge.
    from bot.api.routes import bp

    # Bearer keys, not cookies: no CSRF token is asked (the admin blueprint checks its own).
    app.extensions["csrf"].exempt(bp)
    app.register_blueprint(bp)
