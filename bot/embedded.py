"""`python app.py`: the embedded default, everything in one process on a local database."""

from __future__ import annotations

import logging
import signal
from types import FrameType

from flask import Flask
from werkzeug.serving import make_server

from bot import warn_console_mode
from bot.db import get_db
from bot.heap import freeze_startup_objects
from bot.models import utcnow
from bot.settings.stored import seed_demo
from bot.users import first_user
from bot.worker import start_in_background

log = logging.getLogger("tresen")


def run(app: Flask) -> None:
    config = app.config["TRESEN"]
    warn_console_mode(app)
    database = get_db(app)
    database.upgrade()
    with database.session() as session:
        if seed_demo(session):
            log.info(
                "seeded the demo business; import your own with `flask --app app settings import`"
            )
        password = first_user(session, now=utcnow()) if config.console_mode else None
    host = "127.0.0.1" if config.console_mode else "0.0.0.0"  # noqa: S104 (live mode serves Meta)
    dispatcher, stop = start_in_background(app)
    server = make_server(host, config.port, app, threaded=True)
    log.info("Tresen listening on http://%s:%d (webhook: /webhooks/whatsapp)", host, config.port)
    if password is not None:
        print(  # shown once, to the person who started it
            f"one-time login: http://127.0.0.1:{config.port}/admin/login"
            f" user admin password {password}",
            flush=True,
        )
    # SIGTERM (what `docker stop`, systemd and the platforms send) ends it like Ctrl-C does:
    # Python's default would end the process at once, mid-send.
    signal.signal(signal.SIGTERM, _interrupt)
    freeze_startup_objects()
    try:
        server.serve_forever()  # returns on Ctrl-C or SIGTERM (werkzeug takes the interrupt)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        log.info("finishing what is in flight")
        stop.set()
        dispatcher.join(timeout=30)
        log.info("stopped")


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)
