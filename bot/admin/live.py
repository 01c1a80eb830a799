"""The push channel: GET /admin/events, server-sent events that tell an open page the inbox changed.

An open stream holds one of gunicorn's request threads for its whole life, and the same threads
answer Meta's webhook, which must answer within a second. So a process keeps at most a few
streams open at once (LIVE_STREAMS, by default half its threads) and answers 503 beyond that:
the page then polls as it did before. Each stream ends after a minute (EventSource reconnects
by itself) and holds no database connection while it waits: it opens a short session about
once a second to compare the inbox's newest message and its conversations' latest change.
"""

from __future__ import annotations

import json
import logging
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from flask import Flask, current_app, request, url_for
from flask_babel import force_locale, get_locale, gettext, lazy_gettext
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from bot.admin.blueprint import BACKGROUND_ENDPOINTS, SCRIPT_TEXTS, bp
from bot.admin.display import Local, message_view, snippet
from bot.conversations import changes
from bot.db import get_db
from bot.settings import DEFAULT_LOCALE

log = logging.getLogger("tresen.live")

SCRIPT_TEXTS["live_sound_on"] = lazy_gettext("Sound for new messages: on")
SCRIPT_TEXTS["live_sound_off"] = lazy_gettext("Sound for new messages: off")
SCRIPT_TEXTS["live_new_message"] = lazy_gettext("New message")

BACKGROUND_ENDPOINTS.add("admin.events")

# gunicorn's default threads per process (gunicorn.conf.py, WEB_THREADS) until a worker says.
DEFAULT_THREADS = 4
# What a refused page waits before it tries the stream again (its poll goes on meanwhile).
REFUSED_RETRY_SECONDS = 60


def streams_for(threads: int, configured: int | None) -> int:
    """Streams a process keeps open at once: LIVE_STREAMS, else half its request threads.

    With one thread, none: a stream would leave the webhook no thread to answer on.
    """
    return configured if configured is not None else threads // 2


@dataclass(frozen=True)
class Timing:
    """How long a stream lives and how often it looks (seconds); tests make these short."""

    lifetime: float = 55.0
    check: float = 1.0
    heartbeat: float = 15.0
    # What EventSource waits before reconnecting after a stream ended (milliseconds).
    retry_ms: int = 1500


@dataclass
class Streams:
    """This process's open streams, at most `capacity` at once."""

    capacity: int
    # Whether the server still serves (a gunicorn worker told to stop ends its streams at once,
    # instead of making its graceful shutdown wait for them).
    alive: Callable[[], bool] = lambda: True
    _open: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> bool:
        with self._lock:
            if self._open >= self.capacity:
                return False
            self._open += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self._open = max(0, self._open - 1)

    @property
    def open(self) -> int:
        return self._open


def _configured(app: Flask) -> int | None:
    configured: int | None = app.config["TRESEN"].live_streams
    return configured


def init_app(app: Flask) -> None:
    configured = _configured(app)
    app.extensions["tresen.live"] = Streams(streams_for(DEFAULT_THREADS, configured))


def fit_to_worker(app: Flask, *, threads: int, alive: Callable[[], bool]) -> None:
    """Called by gunicorn.conf.py's post_worker_init with the worker's real thread count."""
    configured = _configured(app)
    app.extensions["tresen.live"] = Streams(streams_for(threads, configured), alive)


def streams(app: Flask) -> Streams:
    found: Streams = app.extensions["tresen.live"]
    return found


def timing(app: Flask) -> Timing:
    found: Timing = app.config.get("TRESEN_LIVE_TIMING") or Timing()
    return found


# --- the wire format ------------------------------------------------------------------------


def frame(event: str, data: dict[str, Any], mark: changes.Mark) -> str:
    """One event; its id is the mark, which EventSource sends back as Last-Event-ID."""
    return f"event: {event}\nid: {mark}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def heartbeat() -> str:
    # A comment: proxies see traffic, the page sees nothing.
    return ": still here\n\n"


# --- waiting without a database connection --------------------------------------------------


def client_gone(sock: socket.socket | None, seconds: float) -> bool:
    """Wait up to `seconds`; True when the browser closed the connection meanwhile.

    A closed tab is noticed at once rather than at the next write, so its place is free for
    the page that follows it. Without the socket (a test client, TLS) this just waits.
    """
    if sock is None:
        time.sleep(seconds)
        return False
    try:
        readable, _, _ = select.select([sock], [], [], seconds)
        if not readable:
            return False
        if sock.recv(1, socket.MSG_PEEK) == b"":
            return True
    except ValueError:  # a TLS socket, which cannot peek: the next write will tell
        pass
    except OSError:  # reset by the peer
        return True
    time.sleep(seconds)  # the browser sent something (a pipelined request): just wait
    return False


# --- the stream -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Viewer:
    """Whom a stream tells: the user, the page's language for the snippets, and the address
    of a conversation's page with its contact id left out."""

    user_id: int
    locale: str
    conversation_url: str  # "/admin/inbox/{}"


def _item(news: changes.News, viewer: Viewer, local: Local) -> dict[str, Any]:
    m = news.message
    view = message_view(
        id=m.id,
        direction=m.direction,
        kind=m.type,
        text=m.text,
        raw=m.raw,
        payload=m.payload,
        rule=m.rule,
        timestamp=m.timestamp,
        status=m.status,
        error_reason=m.error_reason,
        local=local,
        now=m.timestamp,
    )
    return {
        "contact_id": news.contact_id,
        "name": news.name,
        "snippet": snippet(view["text"] or view["note"] or "", 100),
        "for_me": news.for_user(viewer.user_id),
        "url": viewer.conversation_url.format(news.contact_id),
    }


def _handed(handed: changes.Handed, viewer: Viewer) -> dict[str, Any]:
    return {
        "contact_id": handed.contact_id,
        "name": handed.name,
        "snippet": gettext("Assigned to you by %(name)s", name=handed.by or "?"),
        "for_me": True,
        "url": viewer.conversation_url.format(handed.contact_id),
    }


def _inbox(viewer: Viewer, mark: changes.Mark, since: changes.Mark, unread: int) -> str:
    local = Local(ZoneInfo("UTC"), viewer.locale)
    with get_db().session() as session:
        items = [_item(n, viewer, local) for n in changes.news(session, since.latest)]
        if mark.changed != since.changed:
            told = {item["contact_id"] for item in items}
            items += [
                _handed(h, viewer)
                for h in changes.handed_to(session, viewer.user_id, since.changed)
                if h.contact_id not in told
            ]
    return frame("inbox", {"latest": mark.latest, "unread_for_me": unread, "new": items}, mark)


def _unread(mark: changes.Mark, unread: int) -> str:
    return frame("unread", {"latest": mark.latest, "unread_for_me": unread}, mark)


def events_of(
    viewer: Viewer,
    since: changes.Mark | None,
    *,
    timing: Timing,
    wait: Callable[[float], bool],
    alive: Callable[[], bool],
    context: Callable[[], AbstractContextManager[Any]],
) -> Iterator[str]:
    """The stream's text: at once where the inbox stands, then `inbox` whenever it changes.

    `since` is the mark the browser last heard (Last-Event-ID): what came after it is told
    now, so a reconnect neither misses a message nor repeats a notification. Each look at the
    database happens inside `context()` (the app and the page's language), entered and left
    between two writes, so nothing is held while the stream waits.
    """
    started = time.monotonic()
    yield f"retry: {timing.retry_ms}\n\n"
    with context():
        with get_db().session() as session:
            mark = changes.current(session)
            unread = changes.unread_conversations(session, viewer.user_id)
        if since is not None and since != mark and since.latest <= mark.latest:
            text = _inbox(viewer, mark, since, unread)
        else:
            text = _unread(mark, unread)
    yield text
    spoke = time.monotonic()
    while time.monotonic() - started < timing.lifetime:
        if wait(timing.check) or not alive():
            return
        due = time.monotonic() - spoke >= timing.heartbeat
        with context():
            with get_db().session() as session:
                now = changes.current(session)
                if now != mark or due:
                    count = changes.unread_conversations(session, viewer.user_id)
            if now != mark:
                text = _inbox(viewer, now, mark, count)
                mark, unread = now, count
            elif not due:
                continue
            elif count != unread:  # read elsewhere (another tab, a colleague's "mark unread")
                unread = count
                text = _unread(mark, unread)
            else:
                text = heartbeat()
        yield text
        spoke = time.monotonic()


@contextmanager
def _page_context(app: Flask, locale: str) -> Iterator[None]:
    with app.app_context(), force_locale(locale):
        yield


@bp.get("/events")
def events() -> Response:
    if request.method == "HEAD":  # a check of the address: no stream, no thread held
        return Response(mimetype="text/event-stream", headers={"Cache-Control": "no-store"})
    own = streams(current_app)
    if not own.alive() or not own.take():
        return Response(
            "all streams taken: poll\n",
            503,
            mimetype="text/plain",
            headers={"Retry-After": str(REFUSED_RETRY_SECONDS)},
        )
    given_back = threading.Event()

    def give_back() -> None:
        if not given_back.is_set():
            given_back.set()
            own.give_back()

    locale = get_locale()
    page = url_for("admin.conversation", contact_id=0)
    viewer = Viewer(
        int(current_user.id),
        str(locale) if locale else DEFAULT_LOCALE,
        page[: -len("0")] + "{}",
    )
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    sock = request.environ.get("gunicorn.socket") or request.environ.get("werkzeug.socket")
    since = changes.Mark.parse(request.headers.get("Last-Event-ID"))

    def body() -> Iterator[str]:
        try:
            yield from events_of(
                viewer,
                since,
                timing=timing(app),
                wait=lambda seconds: client_gone(sock, seconds),
                alive=own.alive,
                context=lambda: _page_context(app, viewer.locale),
            )
        except SQLAlchemyError:
            # The database does not answer: end here; the browser reconnects in a moment.
            log.warning("event stream ended: the database did not answer", exc_info=True)
        finally:
            give_back()

    # No request context is kept for the stream's minute: each look enters its own (above).
    response = Response(
        body(),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
    # Also when the stream never started (a client that went away before the first byte).
    response.call_on_close(give_back)
    return response
