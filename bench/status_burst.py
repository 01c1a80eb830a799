"""The webhook while a broadcast's status callbacks pour in: a row of `bench.webhook_ack`.

A 5,000-recipient broadcast goes out through one `flask worker` at SEND_RATE=80 to the fake
Graph API (100 ms per answer); for each message the fake accepts, Meta's three callbacks are
posted (sent, delivered, read), while customers post texts at 20/s, each from a contact of its
own and each answered by an away reply. Measured from outside: the posts' latency from their
due time, whether the broadcast's funnel ends with every message read (`broadcast show`), and
how long after its acknowledgement each customer's reply was in the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import heapq
import json
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import (
    JournalTail,
    app_env,
    backend_cpu_seconds,
    fake_graph,
    fresh_database,
    group_cpu_seconds,
    own_cpu_seconds,
    read_rows,
    wait_for_output,
)
from bench.webhook_ack import post, request_bytes, settings_yaml
from tests import payloads
from tests.processes import BIN, ROOT, Process, gunicorn

RECIPIENTS = 5000
QUICK_RECIPIENTS = 500
SEND_RATE = 80
CUSTOMER_RATE = 20.0
GRAPH_LATENCY = 0.1
CONNECTIONS = 32
# Meta's callbacks for a message it accepted: the status, how long after the send it is
# posted, and how many seconds later than the send its timestamp says.
CALLBACKS = (("sent", 0.2, 0), ("delivered", 1.0, 1), ("read", 3.0, 3))
PATH = "/webhooks/whatsapp"


@dataclass(frozen=True)
class Post:
    """One post: whether a callback or a customer's text, from whom, when it was due and
    answered (time.monotonic), when answered on the wall clock, and the answer's status."""

    callback: bool
    sender: str
    due: float
    acked: float
    acked_at: datetime
    status: int


@dataclass(frozen=True)
class Burst:
    """What one run measured."""

    posts: list[Post]
    seconds: float
    recipients: int
    funnel: dict[str, Any]  # `broadcast show --json` at the end
    reply_delays_ms: list[float]  # ack -> the reply in the outbox, per customer answered
    customers: int
    cpu_seconds: tuple[float, float, float | None]  # web, worker, database backends
    senders_cpu_seconds: float

    @property
    def funnel_exact(self) -> bool:
        f = self.funnel
        return (
            f.get("total") == f.get("sent") == f.get("delivered") == f.get("read")
            and f.get("total") == self.recipients
            and not f.get("failed")
        )


def flask(env: dict[str, str], *args: str) -> str:
    """A `flask --app app` command's output; it must succeed."""
    done = subprocess.run(
        [str(BIN / "flask"), "--app", "app", *args],
        cwd=ROOT,
        env={"PATH": f"{BIN}:/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def recipient(i: int) -> str:
    return f"49171{i:08d}"


def customer(i: int) -> str:
    return f"49172{i:08d}"


def customer_text(i: int) -> bytes:
    message = {
        "id": f"wamid.burst{i:08d}",
        "type": "text",
        "text": {"body": f"Ist meine Bestellung schon da? ({i})"},
    }
    return json.dumps(payloads.notification(message, wa_id=customer(i), name="Kundin")).encode()


def callback(wamid: str, to: str, status: str, ts: int) -> bytes:
    return json.dumps(payloads.status_notification(wamid, status, ts, recipient_id=to)).encode()


class Schedule:
    """Posts by due time, for the senders to take in order."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, bool, str, bytes]] = []
        self._count = 0
        self.closed = False
        self._changed = asyncio.Event()

    def add(self, due: float, callback: bool, sender: str, request: bytes) -> None:
        self._count += 1
        heapq.heappush(self._heap, (due, self._count, callback, sender, request))
        self._changed.set()

    def close(self) -> None:
        self.closed = True
        self._changed.set()

    async def take(self) -> tuple[float, bool, str, bytes] | None:
        """The next post once it is due, or None when closed and empty."""
        loop = asyncio.get_running_loop()
        while True:
            if self._heap:
                due = self._heap[0][0]
                if due <= loop.time():
                    due, _, callback, sender, request = heapq.heappop(self._heap)
                    return due, callback, sender, request
                wait = due - loop.time()
            elif self.closed:
                return None
            else:
                wait = 1.0
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), wait)


async def _load(
    host: str, port: int, journal: Path, recipients: set[str], deadline: float
) -> tuple[list[Post], float]:
    loop = asyncio.get_running_loop()
    schedule = Schedule()
    posts: list[Post] = []
    hostport = f"{host}:{port}"
    begin = loop.time()

    async def sender() -> None:
        connection = None
        while (item := await schedule.take()) is not None:
            due, is_callback, who, request = item
            status, connection = await post(connection, host, port, request)
            posts.append(Post(is_callback, who, due, loop.time(), datetime.now(UTC), status))
        if connection is not None:
            connection[1].close()

    async def producer() -> None:
        """Customers' texts on their schedule, and the callbacks of each broadcast message
        the fake accepts, until every recipient's message was accepted (or the deadline)."""
        seen: set[str] = set()
        tail = JournalTail(journal)
        next_customer = 0
        while len(seen) < len(recipients) and loop.time() < deadline:
            horizon = loop.time() + 0.2
            while begin + next_customer / CUSTOMER_RATE < horizon:
                due = begin + next_customer / CUSTOMER_RATE
                body = customer_text(next_customer)
                schedule.add(
                    due, False, customer(next_customer), request_bytes(hostport, PATH, body)
                )
                next_customer += 1
            for sent in tail.new():
                if sent.to in recipients and sent.to not in seen:
                    seen.add(sent.to)
                    wall = int(time.time())
                    for status, after, later in CALLBACKS:
                        body = callback(sent.wamid, sent.to, status, wall + later)
                        schedule.add(
                            max(sent.at + after, loop.time()),
                            True,
                            sent.to,
                            request_bytes(hostport, PATH, body),
                        )
            await asyncio.sleep(0.1)
        schedule.close()

    await asyncio.gather(producer(), *(sender() for _ in range(CONNECTIONS)))
    return posts, loop.time() - begin


def _as_utc(value: Any) -> datetime:
    """A timestamp as read through a plain engine: a datetime (PostgreSQL) or text (SQLite),
    stored in UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def reply_delays_ms(url: str, posts: Sequence[Post]) -> list[float]:
    """For each customer answered, ms from the acknowledgement of their text to their reply's
    creation in the outbox (negative: queued before the acknowledgement)."""
    acked = {p.sender: p.acked_at for p in posts if not p.callback and p.status == 200}
    rows = read_rows(
        url,
        "SELECT c.wa_id, min(m.created_at) FROM messages m JOIN contacts c ON c.id = m.contact_id "
        "WHERE m.direction = 'out' AND m.broadcast_run_id IS NULL GROUP BY c.wa_id",
    )
    return [
        1000 * (_as_utc(created) - acked[wa_id]).total_seconds()
        for wa_id, created in rows
        if wa_id in acked
    ]


def measure(kind: str, where: Path, quick: bool) -> Burst:
    n = QUICK_RECIPIENTS if quick else RECIPIENTS
    journal = where / f"burst-{kind}.journal"
    with (
        fresh_database(kind, where) as url,
        fake_graph(GRAPH_LATENCY, where, journal) as (_, graph_url),
    ):
        env = app_env(url, graph_url, SEND_RATE=str(SEND_RATE))
        settings = where / f"burst-settings-{kind}.yaml"
        # The shop is closed for stocktaking (every customer gets the away reply), and the
        # broadcast must go out all the same, whatever the day and hour the bench runs at.
        always = 'broadcasts: {send_from: "00:00", send_until: "24:00", on_closed_holidays: true}\n'
        settings.write_text(settings_yaml(datetime.now(UTC)) + always, "utf-8")
        flask(env, "settings", "import", str(settings))
        contacts = where / f"burst-contacts-{kind}.csv"
        with contacts.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(["wa_id", "name", "labels", "opted_in"])
            writer.writerows([recipient(i), f"Kundin {i}", "", "true"] for i in range(n))
        flask(env, "contacts", "import", str(contacts))
        with Process(
            [str(BIN / "flask"), "--app", "app", "worker"], env, where / f"burst-worker-{kind}.log"
        ) as worker:
            wait_for_output(worker, "started")
            web, base = gunicorn(env, where / f"burst-web-{kind}.log", workers=2, threads=4)
            with web:
                host, port = base.removeprefix("http://").split(":")
                cpu = (
                    group_cpu_seconds(web.proc.pid),
                    group_cpu_seconds(worker.proc.pid),
                    backend_cpu_seconds(url),
                    own_cpu_seconds(),
                )
                broadcast = flask(
                    env,
                    "broadcast",
                    "create",
                    "--wa-template",
                    "weekly_offer",
                    "--language",
                    "de",
                    "--param",
                    "{{ contact.name }}",
                ).split()[-1]
                # All sent at SEND_RATE, the customers' replies taking their share, and a margin.
                deadline = time.monotonic() + n / (SEND_RATE - CUSTOMER_RATE) * 1.5 + 30
                posts, seconds = asyncio.run(
                    _load(host, int(port), journal, {recipient(i) for i in range(n)}, deadline)
                )
                after = (
                    group_cpu_seconds(web.proc.pid),
                    group_cpu_seconds(worker.proc.pid),
                    backend_cpu_seconds(url),
                    own_cpu_seconds(),
                )
                funnel = wait_for_funnel(env, broadcast, n, time.monotonic() + 30)
        database = None
        if after[2]:
            database = sum(s - cpu[2].get(pid, 0.0) for pid, s in after[2].items())
        return Burst(
            posts,
            seconds,
            n,
            funnel,
            reply_delays_ms(url, posts),
            sum(1 for p in posts if not p.callback),
            (after[0] - cpu[0], after[1] - cpu[1], database),
            after[3] - cpu[3],
        )


def wait_for_funnel(env: dict[str, str], broadcast: str, n: int, deadline: float) -> dict[str, Any]:
    """`broadcast show --json` once every message is read, or at the deadline."""
    while True:
        funnel: dict[str, Any] = json.loads(flask(env, "broadcast", "show", broadcast, "--json"))
        if funnel.get("read") == n or time.monotonic() >= deadline:
            return funnel
        time.sleep(1.0)
