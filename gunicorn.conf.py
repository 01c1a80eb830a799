"""gunicorn settings for the Procfile's web process, read from the environment."""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"
# Connections a process holds at once, kept-alive ones included. gthread's default (1,000) lets the first process
# to wake accept nearly all of a burst's connections while the others idle; four per thread
# spreads them, and when every process is full a new connection waits its turn in the backlog.
worker_connections = int(os.environ.get("WEB_CONNECTIONS", str(threads * 4)))
timeout = 30
graceful_timeout = 20
# No access log by default: Tresen logs one line per stored message itself, and formatting a
# second line per webhook cost a tenth of its time. GUNICORN_CMD_ARGS="--access-logfile -"
# turns it on (the platform's router usually logs requests anyway).
accesslog = None
errorlog = "-"
# Meta's notifications come in bursts over kept-alive connections.
keepalive = 5


def post_worker_init(worker):
    from bot import warn_console_mode
    from bot.admin import live
    from bot.db import get_db
    from bot.heap import freeze_startup_objects

    warn_console_mode(worker.wsgi)
    # One connection per request thread and one spare (the health check), a little burst room.
    get_db(worker.wsgi).resize(worker.cfg.threads + 1, max_overflow=2)
    # The admin's event streams each hold a thread: at most half of them (LIVE_STREAMS), and
    # they end as soon as the worker is told to stop.
    live.fit_to_worker(worker.wsgi, threads=worker.cfg.threads, alive=lambda: worker.alive)
    freeze_startup_objects()
