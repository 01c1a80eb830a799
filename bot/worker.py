"""The worker process: the outbound dispatcher (and beside it the sender of read receipts and
typing indicators), the broadcast scheduler, the media fetcher and the deliverer of outgoing
webhooks, and the inbound processor in a child process of its own."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
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
from bot.inbound.processor import Processor
from bot.inbound.processor import start_thread as start_processor
from bot.media.fetcher import start_for_app as start_fetcher
from bot.media.store import MediaStore, get_media_store
from bot.message_templates.sync import DailySync
from bot.models import utcnow
from bot.outbound.dispatcher import Dispatcher, default_concurrency
from bot.outbound.ratelimit import SharedRate
from bot.outbound.signal_sender import SIGNAL_SENDER, SignalSender
from bot.retention import DailyRetention
from bot.webhooks_out.deliverer import start_thread as start_webhooks
from bot.webhooks_out.sending import Poster
from bot.whatsapp.graph import GraphClient
from bot.whatsapp.uploads import ConsoleUploader, GraphUploader, Uploader, UploadingTransport

log = logging.getLogger("tresen.worker")


def make_transport(
    config: Config,
    pool_size: int,
    *,
    database: Database | None = None,
    store: MediaStore | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> Transport:
    """The channel's transport; with a database and a media store, payloads naming stored
    files are sent too (each file uploaded to Meta once, bot.whatsapp.uploads)."""
    transport: Transport
    uploader: Uploader
    if config.console_mode:
        transport, uploader = ConsoleTransport(), ConsoleUploader()
    else:
        assert config.whatsapp_token and config.phone_number_id  # checked by config.load
        client = GraphClient(
            config.graph_api_url,
            config.graph_api_version,
            config.phone_number_id,
            config.whatsapp_token,
            pool_size=pool_size,
        )
        transport = client
        uploader = GraphUploader(
            config.graph_api_url,
            config.graph_api_version,
            config.phone_number_id,
            config.whatsapp_token,
            session=client.session,
        )
    if database is None or store is None:
        return transport
    return UploadingTransport(
        transport,
        uploader,
        database,
        store,
        phone_number_id=config.phone_number_id or "console",
        clock=clock,
    )


def make_dispatcher(app: Flask, concurrency: int | None = None, lease: float = 30.0) -> Dispatcher:
    config: Config = app.config["TRESEN"]
    concurrency = concurrency or default_concurrency(config.send_rate)
    # Its own engine: the dispatcher thread should not wait for web requests' connections.
    database = Database(config.database_url, pool_size=2)
    clock = app.config["TRESEN_CLOCK"]
    rate = SharedRate(database, config.send_rate, key=config.phone_number_id or "console")
    transport = make_transport(
        config, concurrency, database=database, store=get_media_store(app), clock=clock
    )
    return Dispatcher(
        database,
        transport,
        rate=rate,
        concurrency=concurrency,
        lease=timedelta(seconds=lease),
        clock=clock,
    )


def start_signal_sender(
    app: Flask, dispatcher: Dispatcher, stop: threading.Event
) -> tuple[threading.Thread, SignalSender]:
    """Read receipts and typing indicators on a thread beside `dispatcher`: through its
    transport and its shared send rate, with a database engine of their own."""
    config: Config = app.config["TRESEN"]
    sender = SignalSender(
        Database(config.database_url, pool_size=1),
        dispatcher.transport,
        rate=dispatcher.rate,
        worker=dispatcher.worker,
        clock=dispatcher.clock,
    )
    thread = threading.Thread(target=sender.run, args=(stop,), name="signals", daemon=True)
    thread.start()
    return thread, sender


def start_deliverer(app: Flask, dispatcher: Dispatcher, stop: threading.Event) -> threading.Thread:
    """Outgoing webhooks on a thread of their own, with a database engine of their own."""
    config: Config = app.config["TRESEN"]
    thread, _deliverer = start_webhooks(
        Database(config.database_url, pool_size=1),
        Poster(config.webhooks_allow_private),
        stop,
        worker=dispatcher.worker,
        clock=dispatcher.clock,
    )
    return thread


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


def limit_reader(config: Config) -> Callable[[], str] | None:
    """How the scheduler reads the messaging limit: from the Graph API in WhatsApp mode; none
    in console mode (nothing leaves, so nothing limits)."""
    if config.console_mode:
        return None
    assert config.whatsapp_token and config.phone_number_id  # checked by config.load
    client = GraphClient(
        config.graph_api_url,
        config.graph_api_version,
        config.phone_number_id,
        config.whatsapp_token,
        pool_size=1,
    )
    return client.messaging_limit


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
    # Forked first, while this process has no other thread and no open connection.
    inbound = InboundProcess.start(app)
    dispatcher = make_dispatcher(app, concurrency, lease)
    fetching, fetcher = start_fetcher(app, stop)
    signalling, _signals = start_signal_sender(app, dispatcher, stop)
    hooking = start_deliverer(app, dispatcher, stop)

    def stored() -> None:  # replies queued, media waiting: either may be new
        dispatcher.wake()
        fetcher.wake()

    inbound.watch(stored, stop)
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
        Database(get_db(app).url, pool_size=3),
        stop,
        clock=dispatcher.clock,
        template_sync=_template_sync(app),
        read_limit=limit_reader(app.config["TRESEN"]),
        retention=_retention(app),
    )
    freeze_startup_objects()
    dispatcher.run(stop)
    inbound.stop(30)
    beating.set()
    heartbeat.join(10)
    scheduler.join(30)
    fetching.join(30)
    signalling.join(30)
    hooking.join(30)
    if inbound.failed:
        sys.exit(1)  # the platform starts the worker again, processor and all


def start_in_background(app: Flask) -> tuple[threading.Thread, threading.Event]:
    """The embedded default: the processor and the dispatcher on threads of the web process."""
    dispatcher = make_dispatcher(app)
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,), name="dispatcher", daemon=True)
    thread.start()
    _fetching, fetcher = start_fetcher(app, stop)
    _signalling, signal_sender = start_signal_sender(app, dispatcher, stop)
    app.extensions[SIGNAL_SENDER] = signal_sender
    start_deliverer(app, dispatcher, stop)
    start_inbound(app, stop, dispatcher, fetcher.wake)
    start_scheduler(
        Database(get_db(app).url, pool_size=3),
        stop,
        clock=dispatcher.clock,
        template_sync=_template_sync(app),
        read_limit=limit_reader(app.config["TRESEN"]),
        retention=_retention(app),
    )
    start_heartbeat(
        dispatcher.database,
        dispatcher.worker,
        lambda: dispatcher.sent,
        stop,
        clock=dispatcher.clock,
    )
    return thread, stop


def _template_sync(app: Flask) -> DailySync | None:
    """The scheduler's daily template sync, on an engine of its own (none to do without an
    account id outside console mode)."""
    config: Config = app.config["TRESEN"]
    if not DailySync.wanted(config):
        return None
    return DailySync.for_config(Database(config.database_url, pool_size=1), config)


def _retention(app: Flask) -> DailyRetention:
    """The scheduler's daily retention pass, on an engine of its own."""
    config: Config = app.config["TRESEN"]
    return DailyRetention(Database(config.database_url, pool_size=1), get_media_store(app))


def start_inbound(
    app: Flask,
    stop: threading.Event,
    dispatcher: Dispatcher,
    media_stored: Callable[[], None] | None = None,
) -> threading.Thread:
    """The inbound processor on a thread, with a database engine of its own; it tells the
    dispatcher of this process when it queued replies (and the media fetcher, if given)."""
    config: Config = app.config["TRESEN"]

    def queued() -> None:
        dispatcher.wake()
        if media_stored is not None:
            media_stored()

    thread, _processor = start_processor(
        Database(config.database_url, pool_size=2),
        stop,
        ours=config.phone_number_id,
        on_queued=queued,
        clock=dispatcher.clock,
    )
    return thread


class InboundProcess:
    """The inbound processor in a child process of the worker: an interpreter of its own, so
    that storing and deciding never wait for the dispatcher's threads, nor they for it. It
    writes a byte to a pipe whenever it queued replies, and the worker wakes its dispatcher.
    If it dies, the worker stops too (exit status 1), for the platform to start it anew: a
    worker that sends but no longer processes would hide behind green acknowledgements.
    """

    def __init__(self, pid: int, wakes: int) -> None:
        self.pid = pid
        self._wakes = wakes
        self._stopping = False
        self.failed = False

    @classmethod
    def start(cls, app: Flask) -> InboundProcess:
        read_end, write_end = os.pipe()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:  # the child
            os.close(read_end)
            status = 1
            try:
                _run_processor(app, write_end, parent)
                status = 0
            except BaseException:
                log.exception("inbound processor failed")
            finally:
                os._exit(status)  # nothing of the parent's (atexit, open engines) runs here
        os.close(write_end)
        return cls(pid, read_end)

    def watch(self, wake: Callable[[], None], stop: threading.Event) -> None:
        def relay() -> None:
            while True:
                try:
                    data = os.read(self._wakes, 512)
                except OSError:
                    data = b""
                if not data:  # the child is gone
                    if not self._stopping and not stop.is_set():
                        log.error("the inbound processor ended; stopping the worker")
                        self.failed = True
                        stop.set()
                    return
                wake()

        threading.Thread(target=relay, name="inbound-wakes", daemon=True).start()

    def stop(self, timeout: float) -> None:
        self._stopping = True
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done, status = os.waitpid(self.pid, os.WNOHANG)
            if done:
                if os.waitstatus_to_exitcode(status) != 0:
                    self.failed = True
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)


def _run_processor(app: Flask, wakes: int, parent: int) -> None:
    """The child's life: until SIGTERM (or its parent's death), process the journal."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    # Before the death signal is asked for: until then the worker's own handlers, inherited
    # with the fork, would take a SIGTERM and leave this process running.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    _die_with_parent()
    if os.getppid() != parent:
        return  # the worker died before the line above took effect
    os.set_blocking(wakes, False)

    def queued() -> None:
        with contextlib.suppress(BlockingIOError, BrokenPipeError):
            os.write(wakes, b".")  # a full pipe has wakes enough

    config: Config = app.config["TRESEN"]
    processor = Processor(
        Database(config.database_url, pool_size=2),
        ours=config.phone_number_id,
        clock=app.config["TRESEN_CLOCK"],
        on_queued=queued,
    )
    # On a thread: the main thread only waits, so the signal handler that sets `stop` never
    # interrupts a thread inside `stop`'s own lock (Event.set from a handler could deadlock).
    thread = threading.Thread(target=processor.run, args=(stop,), name="inbound")
    thread.start()
    while thread.is_alive():
        thread.join(0.5)


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM when the worker dies, however it dies (SIGKILL too)."""
    if not sys.platform.startswith("linux"):
        return
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(libc_name, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
