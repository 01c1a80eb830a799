"""Tresen: a self-hosted WhatsApp Business messaging server."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from flask import Flask

from bot import admin, api, cli, db, headers, health, logs, webhook
from bot.config import Config, load, read_environ
from bot.models import utcnow

log = logging.getLogger("tresen")

ROOT = Path(__file__).resolve().parent.parent
# Meta's notifications are small; anything near this is not one of them.
MAX_BODY_BYTES = 3 * 1024 * 1024


def create_app(
    environ: Mapping[str, str] | None = None, *, instance_path: str | Path | None = None
) -> Flask:
    """Build the app from `environ` (default: the process environment and `.env`)."""
    logs.configure()
    environ = read_environ() if environ is None else environ
    # INSTANCE_PATH: where the embedded default keeps its database and secret key.
    instance_path = instance_path or environ.get("INSTANCE_PATH") or None
    app = Flask(
        __name__,
        instance_path=str(Path(instance_path).resolve()) if instance_path else None,
        template_folder=str(ROOT / "templates"),
    )
    config = load(environ, Path(app.instance_path))
    app.config.update(
        TRESEN=config,
        # The one place the web layer reads the time; tests put a fixed instant here.
        TRESEN_CLOCK=utcnow,
        SECRET_KEY=config.secret_key,
        MAX_CONTENT_LENGTH=MAX_BODY_BYTES,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    db.init_app(app, db.Database(config.database_url))
    headers.init_app(app)
    app.register_blueprint(webhook.bp)
    app.register_blueprint(health.bp)
    admin.init_app(app)
    api.init_app(app)
    cli.init_app(app)
    return app


def get_config(app: Flask) -> Config:
    config: Config = app.config["TRESEN"]
    return config


def warn_console_mode(app: Flask) -> None:
    """Said once when a server starts (not by every command)."""
    config = get_config(app)
    if config.console_mode:
        log.info("console mode: WHATSAPP_TOKEN is not set, replies are logged, not sent")
        if config.app_secret is None:
            log.warning(
                "WHATSAPP_APP_SECRET is not set: unsigned webhook posts are accepted "
                "from this machine only (console mode)"
            )
