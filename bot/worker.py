"""The worker process: the inbound processor, the outbound dispatcher and the broadcast
scheduler."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import timedelta
from types import FrameType

from flask import Flask
from sqlalchemy.exc import DBAPIError

from bot.broadcasts.scheduler import start_thread as start_scheduler
from bot.channels.console import ConsoleTransport
from bot.channels.transport import Transport
from bot.config import Config
from bot.db import Database, get_db
from bot.heap import freeze_startup_objects
from bot.heartbeat import start_thread as start_heartbeat
from bot.inbound.processor import start_thread as start_processor
from bot.outbound.dispatcher import Dispatcher, default_concurrency
from bot.outbound.ratelimit import SharedRate
from bot.whatsapp.graph import GraphClient

log = logging.getLogger("tresen.worker")


def make_transport(config: Config, pool_size: int) -> Transport:
    if config.console_mode:
        return ConsoleTransport()
    assert config.whatsapp_token and config.phone_number_id  # checked by config.load
    return GraphClient(
        config.graph_api_url,
        config.graph_api_version,
        config.phone_number_id,
        config.whatsapp_token,
        pool_size=pool_size,
    )


def make_dispatcher(app: Flask, concurrency: int | None = None, lease: float = 30.0) -> Dispatcher:
    config: Config = app.config["TRESEN"]
    concurrency = concurrency or default_concurrency(config.send_rate)
    # Its own engine: the dispatcher thread should not wait for web requests' connections.
    database = Database(config.database_url, pool_size=2)
    rate = SharedRate(database, config.send_rate, key=config.phone_number_id or "console")
    return Dispatcher(
        database,
        make_transport(config, concurrency),
        rate=rate,
        concurrency=concurrency,
        lease=timedelta(seconds=lease),
        clock=app.config["TRESEN_CLOCK"],
    )


def migrate_when_ready(database: Database, stop: threading.Event, pause: float = 1.0) -> bool:
    """Apply migrations, waiting out a database that is restarting or cutting connections.

    False when stopped before the database answered.
    """
    while not stop.is_set():
        try:
            database.upgrade()
            return True
        except DBAPIError as exc:
            log.warning("database not ready (%s); trying again", exc.__class__.__name__)
            stop.wait(pause)
            pause = min(pause * 2, 15.0)
    return False


def run_worker(app: Flask, concurrency: int | None = None, lease: float = 30.0) -> None:
    """Run until SIGTERM or SIGINT, then finish what is in flight and exit."""
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: finishing what is in flight", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if not migrate_when_ready(get_db(app), stop):
        return
    get_db(app).dispose()  # the dispatcher, heartbeat and scheduler have engines of their own
    dispatcher = make_dispatcher(app, concurrency, lease)
    # Its own event: the row goes only once the dispatcher has drained what was in flight.
    beating = threading.Event()
    heartbeat = start_heartbeat(
        dispatcher.database,
        dispatcher.worker,
        lambda: dispatcher.sent,
        beating,
        clock=dispatcher.clock,
    )
    scheduler = start_scheduler(
        Database(get_db(app).url, pool_size=3), stop, clock=dispatcher.clock
    )
    processor = start_inbound(app, stop, dispatcher)
    freeze_startup_objects()
    dispatcher.run(stop)
    processor.join(30)
    beating.set()
    heartbeat.join(10)
    scheduler.join(30)


def start_in_background(app: Flask) -> tuple[threading.Thread, threading.Event]:
    """The embedded default: the processor and the dispatcher on threads of the web process."""
    dispatcher = make_dispatcher(app)
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,), name="dispatcher", daemon=True)
    thread.start()
    start_inbound(app, stop, dispatcher)
    start_scheduler(Database(get_db(app).url, pool_size=3), stop, clock=dispatcher.clock)
    start_heartbeat(
        dispatcher.database,
        dispatcher.worker,
        lambda: dispatcher.sent,
        stop,
        clock=dispatcher.clock,
    )
    return thread, stop


def start_inbound(app: Flask, stop: threading.Event, dispatcher: Dispatcher) -> threading.Thread:
    """The inbound processor on a thread, with a database engine of its own; it tells the
    dispatcher of this process when it queued replies."""
    config: Config = app.config["TRESEN"]
    thread, _processor = start_processor(
        Database(config.database_url, pool_size=2),
        stop,
        ours=config.phone_number_id,
        on_queued=dispatcher.wake,
        clock=dispatcher.clock,
    )
    return thread
