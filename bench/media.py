"""Fetching customers' media: throughput and the fetching process's peak memory.

1,000 images of 200 KB, then 100 of 5 MB, waiting as pending attachments, fetched by the real
fetcher (`bot.media.fetcher`, its default 16 threads, in a process of its own, as in the
worker) from the fake Graph API (a process of its own, 100 ms per `GET /{media-id}`) into a
folder store. Throughput counts from the fetcher's start to the last attachment stored; the
peak is the fetching process's VmHWM while it fetches (reset once start-up is over, whose own
higher peak is shown beside it). Goal: peak RSS with 5 MB images within 1.2 times that
with 200 KB images (the bytes stream to the store, no file is held in memory whole).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bench.common import (
    PYTHON,
    TOKEN,
    app_env,
    fresh_database,
    print_table,
    run_alone,
    wait_for_output,
    workdir,
)
from tests.processes import Process, free_port

GRAPH_LATENCY = 0.1
KB = 1024
MB = 1024 * KB
# (bytes per image, images; --quick: images)
CASES = ((200 * KB, 1000, 200), (5 * MB, 100, 20))
# Distinct contents per run: the store keeps each once, so a few suffice to write real files.
VARIANTS = 20
MIME = "image/jpeg"


@dataclass(frozen=True)
class Result:
    database: str
    size: int
    images: int
    seconds: float
    stored: int
    start_rss_mb: float
    start_peak_mb: float
    peak_rss_mb: float

    @property
    def per_second(self) -> float:
        return self.stored / self.seconds if self.seconds else 0.0


# --- the fake Graph API, serving the images (a process of its own) ----------------------------


def serve_fake(port: int, size: int, images: int) -> None:
    from tests.fakegraph import FakeGraph

    fake = FakeGraph(GRAPH_LATENCY, port, record=False, token=TOKEN)
    contents = [os.urandom(size) for _ in range(VARIANTS)]
    for n in range(images):
        fake.add_media(contents[n % VARIANTS], MIME, media_id=f"bench{n:06d}")
    with fake:
        print("serving", flush=True)
        threading.Event().wait()


# --- the fetcher (a process of its own) ---------------------------------------------------------


def vm(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def fetch_all(images: int) -> None:
    """In the fetching process: the app as the worker builds it, its fetcher until every
    attachment is stored or failed; one JSON line with the figures."""
    from sqlalchemy import func, select

    from bot import create_app
    from bot.db import get_db
    from bot.media.fetcher import start_for_app
    from bot.models import Attachment, AttachmentState

    app = create_app()
    database = get_db(app)
    start_peak = vm("VmHWM")
    # Start-up (imports, the app) peaks higher than it settles; from here on, the peak is the
    # fetching's: Linux resets VmHWM to the present size on "5" (since 4.0).
    Path("/proc/self/clear_refs").write_text("5")
    start_rss = vm("VmRSS")
    stop = threading.Event()
    started = time.monotonic()
    thread, _fetcher = start_for_app(app, stop)
    while True:
        with database.session() as session:
            pending = session.scalar(
                select(func.count()).where(Attachment.state == AttachmentState.PENDING)
            )
        if not pending:
            break
        time.sleep(0.05)
    seconds = time.monotonic() - started
    with database.session() as session:
        stored = session.scalar(
            select(func.count()).where(Attachment.state == AttachmentState.STORED)
        )
    stop.set()
    thread.join(30)
    print(
        json.dumps(
            {
                "seconds": seconds,
                "stored": stored,
                "start_rss_mb": start_rss,
                "start_peak_mb": start_peak,
                "peak_rss_mb": vm("VmHWM"),
            }
        ),
        flush=True,
    )


# --- the run ------------------------------------------------------------------------------------


def queue(database_url: str, images: int, where: Path) -> None:
    """Migrate, and store `images` image messages with their pending attachments."""
    from sqlalchemy import insert

    from bot import create_app
    from bot.db import get_db
    from bot.models import Attachment, AttachmentState, Contact, Direction, Message, utcnow

    logging.getLogger("alembic").setLevel(logging.WARNING)
    app = create_app(app_env(database_url, "http://127.0.0.1:9"), instance_path=where / "i")
    database = get_db(app)
    database.upgrade()
    now = utcnow()
    with database.session() as session:
        contact = Contact(wa_id="4915112345678", name="Bench")
        session.add(contact)
        session.flush()
        ids = session.scalars(
            insert(Message).returning(Message.id),
            [
                {
                    "contact_id": contact.id,
                    "direction": Direction.IN,
                    "wamid": f"wamid.bench{n:06d}",
                    "type": "image",
                    "status": "received",
                    "created_at": now,
                    "timestamp": now - timedelta(seconds=1),
                    "priority": 0,
                    "attempts": 0,
                }
                for n in range(images)
            ],
        ).all()
        session.execute(
            insert(Attachment),
            [
                {
                    "message_id": message_id,
                    "kind": "image",
                    "media_id": f"bench{n:06d}",
                    "mime_type": MIME,
                    "state": AttachmentState.PENDING,
                    "created_at": now,
                }
                for n, message_id in enumerate(ids)
            ],
        )
    database.dispose()


def measure(kind: str, size: int, images: int, where: Path) -> Result:
    case = where / f"{kind}-{size}"
    case.mkdir()
    with fresh_database(kind, case) as url:
        queue(url, images, case)
        port = free_port()
        fake = Process(
            [PYTHON, "-m", "bench.media", "--serve", str(port), str(size), str(images)],
            {},
            case / "fakegraph.log",
        )
        with fake:
            wait_for_output(fake, "serving", timeout=60)
            env = app_env(
                url,
                f"http://127.0.0.1:{port}",
                MEDIA_STORE=str(case / "media"),
                INSTANCE_PATH=str(case / "i"),
            )
            fetcher = Process(
                [PYTHON, "-m", "bench.media", "--fetch", str(images)], env, case / "fetcher.log"
            )
            with fetcher:
                fetcher.proc.wait(600)
            lines = [line for line in fetcher.output().splitlines() if line.startswith("{")]
            if not lines:
                raise RuntimeError(f"the fetcher gave no figures:\n{fetcher.output()[-3000:]}")
            figures = json.loads(lines[-1])
    return Result(kind, size, images, **figures)


def run(quick: bool = False, databases: Sequence[str] = ("sqlite", "postgresql")) -> list[Result]:
    results: list[Result] = []
    with workdir("media") as where:
        for kind in databases:
            for size, images, few in CASES:
                results.append(measure(kind, size, few if quick else images, where))
    rows: list[list[object]] = []
    ratios: list[float] = []
    for result in results:
        small = next(r for r in results if r.database == result.database and r.size == CASES[0][0])
        rows.append(
            [
                result.database,
                f"{result.size // KB:,} KB",
                result.images,
                result.stored,
                result.seconds,
                result.per_second,
                result.per_second * result.size / MB,
                result.start_rss_mb,
                result.start_peak_mb,
                result.peak_rss_mb,
                result.peak_rss_mb / small.peak_rss_mb,
            ]
        )
        ratios.append(result.peak_rss_mb / small.peak_rss_mb)
    met = all(ratio <= 1.2 for ratio in ratios)
    print_table(
        "media fetching: images from the fake Graph API (100 ms per GET) into a folder store",
        [
            "db",
            "image",
            "images",
            "stored",
            "seconds",
            "images/s",
            "MB/s",
            "RSS start MB",
            "peak at start MB",
            "peak RSS MB",
            "× 200 KB peak",
        ],
        rows,
        notes=[
            "the fetcher's process: the app as the worker builds it, 16 fetching threads;"
            " RSS start: after start-up, before fetching; peak at start: start-up's own peak"
            " (imports, the app); peak RSS: VmHWM while fetching (reset after start-up)",
            f"goal: peak RSS with 5 MB images within 1.2× that with 200 KB: {'met' if met else 'NOT met'}",
        ],
    )
    return results


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--serve"]:
        serve_fake(int(argv[1]), int(argv[2]), int(argv[3]))
    elif argv[:1] == ["--fetch"]:
        fetch_all(int(argv[1]))
    else:
        run_alone("Fetching customers' media: throughput and peak memory.", argv, run)


if __name__ == "__main__":
    main()
