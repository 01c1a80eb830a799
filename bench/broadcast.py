"""A broadcast to 10,000 and to 100,000 contacts through a real `flask worker` (scheduler,
run writer and dispatcher) against the fake Graph API with 100 ms latency.

Run: ``python -m bench.broadcast [--quick] [--db sqlite|postgresql|both]``.
Goals: at least 1,000 msg/s, and the worker's peak memory (VmHWM) for 100,000 recipients at
most 1.2 times that for 10,000: recipients are written and rendered in batches, never all
loaded at once.

The clock runs from the broadcast's creation (as `broadcast create` stores it) until every
recipient's message is accepted by the fake; it includes the scheduler noticing the
broadcast, writing and rendering the recipients, and sending them at SEND_RATE=5000 with as
many requests in flight as the worker picks for that rate (256). "sending msg/s" counts from
the first message accepted, i.e. without the scheduler's pick-up time. A fresh database and worker per size, so peak memory is per size.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import insert

from bench.common import (
    app_env,
    arguments,
    fake_graph,
    fresh_database,
    print_environment,
    print_table,
    selected_databases,
    wait_for_output,
    workdir,
)
from bot import broadcasts
from bot.contacts.audiences import Audience
from bot.db import Database
from bot.models import Contact, utcnow
from bot.settings.stored import seed_demo
from tests.any_hour import send_at_any_hour
from tests.processes import BIN, Process

LATENCY = 0.1
SEND_RATE = 5000
CONCURRENCY = 256  # what the worker chooses by itself at SEND_RATE 5000
GOAL_RATE = 1000.0
GOAL_MEMORY_RATIO = 1.2
INSERT_CHUNK = 10_000


@dataclass(frozen=True)
class Result:
    database: str
    recipients: int
    first_sent: float  # seconds from creation to the first message accepted
    seconds: float  # from creation to the last one
    peak_rss_mb: float

    @property
    def rate(self) -> float:
        return self.recipients / self.seconds

    @property
    def sending_rate(self) -> float:
        return self.recipients / max(self.seconds - self.first_sent, 1e-9)


def add_contacts(database: Database, n: int) -> None:
    with database.session() as session:
        seed_demo(session)
    now = utcnow()
    for start in range(0, n, INSERT_CHUNK):
        rows = [
            {
                "wa_id": f"49151{i:08d}",
                "name": f"Kundin {i}",
                "opted_in": True,
                "opted_in_source": "import",
                "created_at": now,
                "unread": 0,
            }
            for i in range(start, min(n, start + INSERT_CHUNK))
        ]
        with database.session() as session:
            session.execute(insert(Contact), rows)


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def measure(kind: str, n: int, where: Path) -> Result:
    where = where / f"{kind}-{n}"
    where.mkdir()
    with fresh_database(kind, where) as url, fake_graph(LATENCY, where) as (_, graph_url):
        database = Database(url)
        database.upgrade()
        add_contacts(database, n)
        send_at_any_hour(database)  # measured at whatever hour it runs
        env = app_env(url, graph_url, SEND_RATE=str(SEND_RATE))
        log = where / f"worker-{kind}-{n}.log"
        command = [str(BIN / "flask"), "--app", "app", "worker", "--concurrency", str(CONCURRENCY)]
        with Process(command, env, log) as worker:
            wait_for_output(worker, "scheduler elected")
            with database.session() as session:
                broadcast_id = broadcasts.create(
                    session,
                    broadcasts.Content(
                        template="weekly_offer", language="de", params=("{{ contact.name }}",)
                    ),
                    Audience(),
                    timezone="Europe/Berlin",
                    now=utcnow(),
                ).id
            started = time.monotonic()
            first = None
            deadline = started + max(120.0, n / 200)
            while True:
                time.sleep(0.5)
                with database.session() as session:
                    funnel = broadcasts.funnel(session, broadcast_id)
                assert funnel is not None
                now = time.monotonic()
                if first is None and funnel.sent:
                    first = now - started
                if funnel.total == n and funnel.pending == 0:
                    break
                if now > deadline or worker.proc.poll() is not None:
                    raise RuntimeError(f"broadcast not done: {funnel}\n{worker.output()[-3000:]}")
            elapsed = time.monotonic() - started
            if funnel.sent != n:
                raise RuntimeError(f"not all accepted: {funnel}")
            peak = peak_rss_mb(worker.proc.pid)
        database.dispose()
    return Result(kind, n, first or elapsed, elapsed, peak)


def main(argv: Sequence[str] | None = None) -> None:
    args = arguments(__doc__.splitlines()[0], argv)
    sizes = (1_000, 10_000) if args.quick else (10_000, 100_000)
    databases, notes = selected_databases(args.db)
    print_environment()
    results: list[Result] = []
    with workdir("broadcast") as where:
        for kind in databases:
            for n in sizes:
                results.append(measure(kind, n, where))
                r = results[-1]
                print(
                    f"   {kind} {n:,}: {r.rate:,.0f} msg/s, peak {r.peak_rss_mb:.0f} MB", flush=True
                )
    rows = []
    for r in results:
        rows.append(
            [
                r.database,
                r.recipients,
                r.first_sent,
                r.seconds,
                r.rate,
                r.sending_rate,
                r.peak_rss_mb,
            ]
        )
    for kind in databases:
        small, large = (
            next(r for r in results if r.database == kind and r.recipients == n) for n in sizes
        )
        ratio = large.peak_rss_mb / small.peak_rss_mb
        notes.append(
            f"{kind}: peak memory {large.recipients:,}/{small.recipients:,} = {ratio:.2f} "
            f"(goal <= {GOAL_MEMORY_RATIO}); slowest rate {min(small.rate, large.rate):,.0f} msg/s "
            f"overall, {min(small.sending_rate, large.sending_rate):,.0f} msg/s sending "
            f"(goal >= {GOAL_RATE:,.0f})"
        )
    print_table(
        f"broadcast through one worker (fake Graph {LATENCY * 1000:.0f} ms, SEND_RATE {SEND_RATE}, "
        f"{CONCURRENCY} in flight)",
        [
            "database",
            "recipients",
            "first sent s",
            "all sent s",
            "msg/s",
            "sending msg/s",
            "peak RSS MB",
        ],
        rows,
        notes=notes,
    )


if __name__ == "__main__":
    main()
