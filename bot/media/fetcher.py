"""The fetch queue: customers' media waiting in `attachments`, fetched by a few threads.

The inbound processor stores each media message's attachment as pending; the fetcher claims
pending ones (on PostgreSQL with FOR UPDATE SKIP LOCKED and a lease, so several workers never
fetch one twice and a dead worker's claims are taken over once their lease ends), fetches them
(`bot.media.fetch`) and records the outcome: stored (linked to its `MediaFile`), failed with a
`Failure`, or pending again after a backoff. The message is shown whatever becomes of it.

Console mode (no token): with GRAPH_API_URL set (a local fake, `python -m tests.fakegraph`)
media is fetched from there without a token; with no Graph API to ask, each is marked failed
`console` at once, so the inbox says why instead of showing it as waiting forever.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, cast

from flask import Flask
from sqlalchemy import Table, and_, or_, select, update
from sqlalchemy.exc import DBAPIError

from bot.config import DEFAULT_GRAPH_API_URL, Config
from bot.db import Database
from bot.media import cleanup
from bot.media.fetch import (
    Fetched,
    FetchError,
    Gone,
    MediaClient,
    Mismatch,
    OverLimit,
    Refused,
    Unavailable,
    fetch,
)
from bot.media.kinds import RECEIVE_LIMITS, Failure, MediaKind
from bot.media.store import MediaStore, get_media_store
from bot.models import Attachment, AttachmentState, MediaFile, utcnow
from bot.outbound import backoff
from bot.sql import insert_ignore

__all__ = ["Claimed", "Fetcher", "claim", "media_client", "record", "start_for_app"]

log = logging.getLogger("tresen.media")

# Webhook media ids are valid for 7 days; after that, trying again cannot succeed.
MEDIA_ID_LIFE: Final = timedelta(days=7)
# A few tries for bytes that do not match: a download cut short on the way can look like that.
CHECKSUM_TRIES: Final = 3
# Retries wait 2 s, 4 s, … (with jitter) up to half an hour: long outages are tried less often.
BACKOFF_BASE: Final = 2.0
BACKOFF_CAP: Final = 1800.0
# Longer than any one fetch takes (100 MB at a slow line's pace); after it, another worker
# takes the claim over.
LEASE: Final = timedelta(minutes=10)
# Without a wake (another process stored the media, or a retry came due): look this often.
POLL: Final = 1.0
CLEANUP_EVERY: Final = timedelta(hours=1)
# Threads fetching at once: each mostly waits on Meta (a GET, then the download), and holds
# no more than a chunk of a file in memory.
THREADS: Final = 16

_attachments = cast(Table, Attachment.__table__)
_files = cast(Table, MediaFile.__table__)
# A checksum failure's error starts with how many tries in a row failed so: "checksum 2/3: …".
_MISMATCHES: Final = re.compile(r"checksum (\d+)/")


@dataclass(frozen=True)
class Claimed:
    """A pending attachment claimed for fetching."""

    id: int
    kind: str
    media_id: str | None
    mime_type: str | None
    declared_sha256: str | None
    attempts: int
    created_at: datetime
    error: str | None = None  # the last try's


def _mismatches(error: str | None) -> int:
    """How many tries in a row found the bytes not matching (counted in the error's words)."""
    found = _MISMATCHES.match(error or "")
    return int(found[1]) if found else 0


# The outcome of one fetch, as `record` writes it.
Outcome = Fetched | FetchError | Exception


def claim(
    database: Database, worker: str, limit: int, *, now: datetime, lease: timedelta = LEASE
) -> list[Claimed]:
    """Claim up to `limit` pending attachments that are due, for `worker` until `now + lease`;
    claims whose lease ended (a worker that died) are taken over."""
    columns = _attachments.c
    due = (
        select(columns.id)
        .where(
            columns.state == AttachmentState.PENDING,
            or_(columns.next_attempt_at.is_(None), columns.next_attempt_at <= now),
            or_(columns.claimed_until.is_(None), columns.claimed_until < now),
        )
        .order_by(columns.id)
        .limit(limit)
    )
    if database.dialect == "postgresql":
        # Other workers skip the rows this one is claiming instead of waiting for them.
        due = due.with_for_update(skip_locked=True)
    # On SQLite the write lock (BEGIN IMMEDIATE) makes claiming one worker's at a time.
    statement = (
        update(_attachments)
        .where(columns.id.in_(due.scalar_subquery()))
        .values(claimed_by=worker, claimed_until=now + lease)
        .returning(
            columns.id,
            columns.kind,
            columns.media_id,
            columns.mime_type,
            columns.declared_sha256,
            columns.attempts,
            columns.created_at,
            columns.error,
        )
    )
    with database.session() as session:
        rows = session.execute(statement).all()
    return sorted((Claimed(*row) for row in rows), key=lambda c: c.id)


def record(
    database: Database,
    worker: str,
    item: Claimed,
    outcome: Outcome,
    *,
    now: datetime,
    rng: Any = None,
) -> str:
    """Write what became of a claimed attachment; the state it is left in (for logs/tests).

    Only while the claim is still this worker's: one taken over meanwhile is the other's."""
    columns = _attachments.c
    mine = and_(
        columns.id == item.id,
        columns.claimed_by == worker,
        columns.state == AttachmentState.PENDING,
    )
    released = {"claimed_by": None, "claimed_until": None}
    attempts = item.attempts + 1
    values: dict[str, Any]
    with database.session() as session:
        if isinstance(outcome, Fetched):
            file_id = _file_id(session, outcome, now)
            values = {
                "state": AttachmentState.STORED,
                "file_id": file_id,
                "failure": None,
                "error": None,
                "attempts": attempts,
            }
        elif isinstance(outcome, Gone | Refused | OverLimit) or (
            isinstance(outcome, Mismatch) and _mismatches(item.error) + 1 >= CHECKSUM_TRIES
        ):
            failure = {
                Gone: Failure.NOT_FOUND,
                Refused: Failure.REFUSED,
                OverLimit: Failure.TOO_LARGE,
                Mismatch: Failure.CHECKSUM,
            }[type(outcome)]
            values = _failed(failure, _reason(outcome, item), attempts)
        else:
            retry_after = outcome.retry_after if isinstance(outcome, Unavailable) else None
            wait_s = backoff.delay(
                attempts, retry_after=retry_after, base=BACKOFF_BASE, cap=BACKOFF_CAP, rng=rng
            )
            if isinstance(outcome, Mismatch):
                wait_s = min(wait_s, 60.0)
            at = now + timedelta(seconds=wait_s)
            reason = _reason(outcome, item)
            if at > _aware(item.created_at) + MEDIA_ID_LIFE:
                values = _failed(Failure.UNREACHABLE, reason, attempts)
            else:
                values = {"attempts": attempts, "next_attempt_at": at, "error": reason}
        done = session.execute(update(_attachments).where(mine).values(**values, **released))
        if done.rowcount == 0:  # type: ignore[attr-defined]
            log.warning(
                "attachment %d: no longer this worker's (taken over after its lease, or its"
                " message deleted); its outcome is not recorded",
                item.id,
            )
            return "lost"
    return str(values.get("state", AttachmentState.PENDING))


def fail_console(database: Database, worker: str, item: Claimed, *, now: datetime) -> None:
    """Console mode without a Graph API: the media cannot be fetched, and the inbox says so."""
    log.warning(
        "attachment %d (%s): console mode has no Graph API to fetch media from; set"
        " GRAPH_API_URL to a fake (python -m tests.fakegraph) or WHATSAPP_TOKEN to fetch it",
        item.id,
        item.kind,
    )
    columns = _attachments.c
    with database.session() as session:
        session.execute(
            update(_attachments)
            .where(columns.id == item.id, columns.claimed_by == worker)
            .values(
                **_failed(Failure.CONSOLE, "console mode: no Graph API to fetch from", 1),
                claimed_by=None,
                claimed_until=None,
            )
        )


def _failed(failure: Failure, error: str, attempts: int) -> dict[str, Any]:
    return {
        "state": AttachmentState.FAILED,
        "failure": failure,
        "error": error[:1000],
        "attempts": attempts,
    }


def _reason(outcome: Exception, item: Claimed | None = None) -> str:
    if isinstance(outcome, Mismatch):
        tries = _mismatches(item.error if item else None) + 1
        return f"checksum {tries}/{CHECKSUM_TRIES}: {outcome}"[:1000]
    if isinstance(outcome, FetchError):
        return str(outcome)[:1000]
    return f"{type(outcome).__name__}: {outcome}"[:1000]


def _line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0][:300] or type(exc).__name__


def _aware(at: datetime) -> datetime:
    # SQLite hands back naive datetimes (stored as UTC).
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _file_id(session: Any, fetched: Fetched, now: datetime) -> int:
    """The `MediaFile` for these bytes: the one there is, or a new one."""
    session.execute(
        insert_ignore(session, MediaFile, ["sha256"]),
        {
            "sha256": fetched.stored.sha256,
            "size": fetched.stored.size,
            "content_type": fetched.content_type,
            "created_at": now,
        },
    )
    return int(
        session.execute(
            select(_files.c.id).where(_files.c.sha256 == fetched.stored.sha256)
        ).scalar_one()
    )


def media_client(config: Config, pool_size: int) -> MediaClient | None:
    """The Graph API to fetch from: Meta's with the token; in console mode a fake's when
    GRAPH_API_URL names one, else None (media is marked failed `console`)."""
    if config.whatsapp_token:
        return MediaClient(
            config.graph_api_url,
            config.graph_api_version,
            config.whatsapp_token,
            pool_size=pool_size,
        )
    if config.graph_api_url != DEFAULT_GRAPH_API_URL:
        return MediaClient(
            config.graph_api_url, config.graph_api_version, None, pool_size=pool_size
        )
    return None


def worker_name() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Fetcher:
    """Claims pending attachments and fetches them on a small thread pool, until stopped;
    woken by `wake` when media was stored in this process, else it looks every second.
    Every hour it also deletes files nothing uses (`bot.media.cleanup`)."""

    def __init__(
        self,
        database: Database,
        client: MediaClient | None,
        store: MediaStore,
        *,
        threads: int = THREADS,
        clock: Callable[[], datetime] = utcnow,
        lease: timedelta = LEASE,
        poll: float = POLL,
        cleanup_every: timedelta | None = CLEANUP_EVERY,
        worker: str | None = None,
    ) -> None:
        self.database = database
        self.client = client
        self.store = store
        self.threads = threads
        self.clock = clock
        self.lease = lease
        self.poll = poll
        self.cleanup_every = cleanup_every
        self.worker = worker or worker_name()
        self._wake = threading.Event()
        self._cleaned_at: datetime | None = None

    def wake(self) -> None:
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        log.info(
            "media fetcher started (%d threads, %s)",
            self.threads,
            "no Graph API: console" if self.client is None else self.client.base,
        )
        pause = 0.5
        with ThreadPoolExecutor(self.threads, thread_name_prefix="media-fetch") as pool:
            inflight: set[Future[None]] = set()
            while not stop.is_set():
                inflight = {f for f in inflight if not f.done()}
                free = self.threads - len(inflight)
                try:
                    self._clean_up_when_due()
                    claimed = (
                        claim(self.database, self.worker, free, now=self.clock(), lease=self.lease)
                        if free
                        else []
                    )
                    pause = 0.5
                except Exception as exc:  # the database away, mostly: the thread must live on
                    log.error(
                        "media fetching paused: %s; trying again in %.0fs",
                        _line(exc),
                        pause,
                        exc_info=not isinstance(exc, DBAPIError),
                    )
                    stop.wait(pause)
                    pause = min(pause * 2, 15.0)
                    continue
                for item in claimed:
                    inflight.add(pool.submit(self._one, item))
                if free and len(claimed) == free:
                    # More may wait: claim again as soon as a thread is free.
                    wait(inflight, timeout=self.poll, return_when=FIRST_COMPLETED)
                    continue
                self._wake.wait(self.poll)
                self._wake.clear()
            wait(inflight)
        if self.client is not None:
            self.client.close()
        log.info("media fetcher stopped")

    def run_once(self) -> int:
        """Claim what is due and fetch it, on this thread; how many were claimed (tests)."""
        claimed = claim(
            self.database, self.worker, self.threads, now=self.clock(), lease=self.lease
        )
        for item in claimed:
            self._one(item)
        return len(claimed)

    def _one(self, item: Claimed) -> None:
        try:
            if self.client is None:
                fail_console(self.database, self.worker, item, now=self.clock())
                return
            outcome: Outcome
            try:
                if not item.media_id:
                    raise Gone("the message named no media id")
                outcome = fetch(
                    self.client,
                    self.store,
                    item.media_id,
                    limit=RECEIVE_LIMITS[MediaKind(item.kind)],
                    declared_sha256=item.declared_sha256,
                    declared_mime_type=item.mime_type,
                )
            except Exception as exc:  # StoreUnavailable, or anything unforeseen: retried
                outcome = exc
                if not isinstance(exc, FetchError):
                    log.warning("attachment %d: %s: %s", item.id, type(exc).__name__, exc)
            state = record(self.database, self.worker, item, outcome, now=self.clock())
            if isinstance(outcome, Fetched):
                log.info(
                    "attachment %d: stored %s (%d bytes)",
                    item.id,
                    outcome.stored.sha256[:12],
                    outcome.stored.size,
                )
            else:
                log.info("attachment %d: %s: %s", item.id, state, _reason(outcome, item))
        except Exception:
            # Not recorded (the database away): the lease ends and it is fetched again.
            log.exception("attachment %d: fetching failed", item.id)

    def _clean_up_when_due(self) -> None:
        if self.cleanup_every is None:
            return
        now = self.clock()
        if self._cleaned_at is not None and now - self._cleaned_at < self.cleanup_every:
            return
        self._cleaned_at = now
        try:
            cleanup.sweep(self.database, self.store, now=now)
        except Exception:
            log.exception("media cleanup failed; trying again in an hour")


def start_thread(
    database: Database,
    client: MediaClient | None,
    store: MediaStore,
    stop: threading.Event,
    *,
    threads: int = THREADS,
    clock: Callable[[], datetime] = utcnow,
) -> tuple[threading.Thread, Fetcher]:
    fetcher = Fetcher(database, client, store, threads=threads, clock=clock)
    thread = threading.Thread(target=fetcher.run, args=(stop,), name="media", daemon=True)
    thread.start()
    return thread, fetcher


def start_for_app(
    app: Flask, stop: threading.Event, *, threads: int = THREADS
) -> tuple[threading.Thread, Fetcher]:
    """The app's fetcher on a thread, with a database engine of its own (worker, embedded)."""
    config: Config = app.config["TRESEN"]
    client = media_client(config, pool_size=threads)
    if client is None:
        log.warning(
            "console mode: customers' media is not fetched (marked failed `console`);"
            " set GRAPH_API_URL to a fake Graph API, e.g. `python -m tests.fakegraph`, to fetch it"
        )
    return start_thread(
        Database(config.database_url, pool_size=threads + 1),
        client,
        get_media_store(app),
        stop,
        threads=threads,
        clock=app.config["TRESEN_CLOCK"],
    )
