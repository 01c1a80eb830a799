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
from bot.users import OneTimeLogin, has_users, one_time_login
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
    host = "127.0.0.1" if config.console_mode else "0.0.0.0"  # noqa: S104 (live mode serves Meta)
    # Listening first: a start that cannot (werkzeug says why and exits) makes no login.
    server = make_server(host, config.port, app, threaded=True)
    # In console mode, while nobody has logged in yet, there is a login to print: a fresh
    # one each start, so a password that scrolled away or was never seen is no loss.
    # With a token it listens on every interface and its output may go to a platform's logs:
    # no password is printed there, only how to make a user.
    with database.session() as session:
        if config.console_mode:
            login = one_time_login(session, now=utcnow())
        else:
            login = None if has_users(session) else OneTimeLogin("", None)
    dispatcher, stop = start_in_background(app)
    log.info("Tresen listening on http://%s:%d (webhook: /webhooks/whatsapp)", host, config.port)
    # Shown to the person who started it, on every start.
    print(start_lines(config.port, login), flush=True)
    # SIGTERM (what `docker stop`, systemd and the platforms send) ends it like Ctrl-C does:
    # Python's default would end the process at once, mid-send.
    signal.signal(signal.SIGTERM, _interrupt)
    freeze_startup_objects()
    try:
        server.serve_forever()  # returns on Ctrl-C or SIGTERM (werkzeug takes the interrupt)
    except KeyboardInterrupt:
        pass
    finally:
        stopping()
        server.server_close()
        log.info("finishing what is in flight")
        stop.set()
        dispatcher.join(timeout=30)
        log.info("stopped")


def start_lines(port: int, login: OneTimeLogin | None) -> str:
    """Where the admin pages are, and the one-time login while nobody has logged in yet."""
    admin = f"http://127.0.0.1:{port}/admin/"
    lines = [f"admin pages: {admin}"]
    if login is not None and login.password is not None:
        lines.append(
            f"one-time login: http://127.0.0.1:{port}/admin/login"
            f" user {login.name} password {login.password}"
            " (a new one each start until someone has logged in; change it under Account)"
        )
    elif login is not None and login.name:
        lines.append(f"log in as {login.name} with the password given to `users create`")
    elif login is not None:
        lines.append("no users yet: create one with `flask --app app users create NAME`")
    return "\n".join(lines)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def stopping() -> None:
    """From here on, a second Ctrl-C or SIGTERM (an impatient person, a platform repeating its
    stop) is noted, not raised: raising it would cut off the shutdown that finishes what is
    in flight, with a traceback. Its kill, if it comes, still ends the process."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _already_stopping)


def _already_stopping(signum: int, _frame: FrameType | None) -> None:
    log.info("%s: already stopping, finishing what is in flight", signal.Signals(signum).name)
