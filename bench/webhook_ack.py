"""Webhook acknowledgement latency while the Graph API is slow: 32 concurrent senders post
signed customer messages, each answered by an auto-reply, to gunicorn (the repo's
gunicorn.conf.py, 2 workers x 4 threads) with a `flask worker` sending the replies to a fake
Graph API that takes 2 s per answer.

Run: ``python -m bench.webhook_ack [--quick] [--db sqlite|postgresql|both]``.
Goal: p99 at most 50 ms. Bounded: 10 s per run (--quick: 3 s).

Three runs per database:
- *as fast as answered*: wrk (a C load generator, so the client's own interpreter does not
  count) on 32 connections, each posting again the moment it has its answer; the server's
  most, and latency mostly queueing for the 2 CPUs;
- *paced* at 100/s and 200/s: 32 Python senders post on a steady schedule; latency counts from
  each post's due time, so a server that falls behind is not flattered by waiting senders.

The closed loop once more with the worker stopped: what the acknowledgements alone cost,
without the processor beside them.

Next to Tresen's closed loop, the same wrk load against this machine's floor (bench.floor):
Flask under the same gunicorn settings checking the signature and committing the raw body in
one INSERT to the same database. What the floor misses, no design that stores a message before
acknowledging it meets on this machine with this stack.

Last, per database, the broadcast status burst (bench.status_burst): Meta's sent, delivered and
read callbacks of a 5,000-recipient broadcast going out at SEND_RATE=80, with customers'
texts at 20/s; also whether the broadcast's funnel ends exact and how soon after its
acknowledgement each customer's reply is in the outbox (goal: p99 at most 1 s).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import (
    APP_SECRET,
    app_env,
    backend_cpu_seconds,
    fake_graph,
    fresh_database,
    group_cpu_seconds,
    gunicorn_config_without_tresen,
    own_cpu_seconds,
    print_table,
    read_rows,
    run_alone,
    summarize,
    wait_for_output,
    workdir,
)
from bench.load import write_script, wrk
from bot.db import Database
from bot.inbound import spool
from bot.settings.stored import save_settings
from bot.whatsapp.signature import sign
from tests import payloads
from tests.processes import BIN, Process, free_port, gunicorn, wait_healthy

SENDERS = 32
GRAPH_LATENCY = 2.0
GOAL_P99_MS = 50.0
WEB_WORKERS = 2
WEB_THREADS = 4
CONTACTS_PER_SENDER = 25
# A busy shop's burst, and twice that: the latency then is the service time, not a queue.
PACED_RATES = (100.0, 200.0)
WRK_THREADS = 2
CLOSED_LOOP = "as fast as answered (wrk)"
PAUSED = "processing paused (wrk)"
FLOOR = "floor: one INSERT (wrk)"
BURST = "broadcast status burst"
GOAL_REPLY_QUEUED_MS = 1000.0


def settings_yaml(today: datetime) -> str:
    """A shop closed for stocktaking around `today`: every message gets the away reply (no
    cooldown), with a real next opening to compute and format."""
    day = today.date()
    return f"""\
business: {{name: Blumen Müller, timezone: Europe/Berlin, locale: de_DE}}
hours:
  mon: ["09:00-12:30", "14:00-18:00"]
  tue: ["09:00-12:30", "14:00-18:00"]
  wed: ["09:00-12:30"]
  thu: ["09:00-12:30", "14:00-18:00"]
  fri: ["09:00-18:00"]
  sat: ["09:00-14:00"]
public_holidays: {{country: DE, subdivision: BY}}
closures:
  - {{from: {day - timedelta(days=1)}, to: {day + timedelta(days=1)}, reason: Inventur}}
replies:
  optout: {{stop: ["STOP"], start: ["START"]}}
  keywords:
    - {{match: ["öffnungszeiten", "hours"], template: hours}}
  away: {{template: away, cooldown_hours: 0}}
"""


def notification(sender: int, seq: int, run: str) -> bytes:
    """A customer text message as Meta delivers it, with a message id never used before."""
    wa_id = f"49152{sender:03d}{seq % CONTACTS_PER_SENDER:05d}"
    message = {
        "id": f"wamid.bench{run}{sender:03d}{seq:07d}",
        "type": "text",
        "text": {"body": f"Hallo, habt ihr heute noch Tulpen? ({seq})"},
    }
    return json.dumps(payloads.notification(message, wa_id=wa_id, name=f"Kunde {sender}")).encode()


@dataclass
class Load:
    latencies_ms: list[float]
    statuses: dict[int, int]
    seconds: float
    client_cpu_ms: float  # the senders' own CPU per post


def request_bytes(host: str, path: str, body: bytes) -> bytes:
    """One signed HTTP/1.1 post of `body`, as bytes ready for the socket."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
        "Content-Type: application/json\r\n"
        f"X-Hub-Signature-256: {sign(body, APP_SECRET)}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bool]:
    """Send one request and read its whole answer: the status code, and whether the server
    keeps the connection open (gunicorn closes some when it holds many kept-alive ones)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length, keep = 0, True
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "connection" and value.strip().lower() == "close":
            keep = False
    await reader.readexactly(length)
    return status, keep


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def post(
    connection: Connection | None, host: str, port: int, request: bytes
) -> tuple[int, Connection | None]:
    """Post `request` on a sender's kept-alive `connection` (None: a new one): the answer's
    status (0: none), and the connection for the next post (None: closed).

    A kept-alive connection the server closed while idle fails before any answer: once more
    on a new one, as HTTP clients (and Meta) do. A new one that fails counts.
    """
    status, keep = 0, False
    for fresh in (connection is None, True):
        try:
            # Connected when there is something to send, as HTTP clients do: gunicorn gives a
            # new connection a thread that waits for its first request.
            connection = connection or await asyncio.open_connection(host, port)
            status, keep = await exchange(*connection, request)
            break
        except (OSError, asyncio.IncompleteReadError, ValueError):
            status, keep = 0, False
            if connection is not None:
                connection[1].close()
            connection = None
            if fresh:
                break
    if not keep and connection is not None:
        connection[1].close()
        connection = None
    return status, connection


async def send_all(
    host: str, port: int, requests: list[list[bytes]], duration: float, rate: float | None
) -> Load:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    loop = asyncio.get_running_loop()
    begin = loop.time()
    deadline = begin + duration

    senders = len(requests)

    async def sender(k: int) -> None:
        connection = None
        for seq, request in enumerate(requests[k]):
            i = seq * senders + k  # this post's place among all senders' posts
            due = begin + i / rate if rate else loop.time()
            if due >= deadline:
                break
            if rate:
                await asyncio.sleep(max(0.0, due - loop.time()))
            status, connection = await post(connection, host, port, request)
            latencies.append((loop.time() - due) * 1000)
            statuses[status] = statuses.get(status, 0) + 1
        if connection is not None:
            connection[1].close()

    await asyncio.gather(*(sender(k) for k in range(senders)))
    return Load(latencies, statuses, loop.time() - begin, 0.0)


def send_load(url: str, total: int, duration: float, run: str, rate: float | None = None) -> Load:
    """`SENDERS` senders, each on its own kept-alive connection, until `total` or `duration`.

    Without `rate` each sender posts again as soon as it has its answer (a closed loop: the
    server's throughput is measured, and latency is mostly queueing). With `rate` (requests
    per second, all senders together) each post has a due time; latency counts from that due
    time, so a server that falls behind is not flattered by senders waiting on it.

    One asyncio loop with the requests built and signed before the clock starts: the senders
    share the machine's CPUs with what they measure (Meta's would not), so they cost as little
    as Python allows: about a fifth of what a thread per sender with `requests` took.
    """
    address = urlsplit(url)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    requests = [
        [
            request_bytes(f"{host}:{port}", address.path, notification(k, seq, run))
            for seq, _ in enumerate(range(k, total, SENDERS))  # sender k's share of `total`
        ]
        for k in range(SENDERS)
    ]
    cpu = own_cpu_seconds()
    load = asyncio.run(send_all(host, port, requests, duration, rate))
    load.client_cpu_ms = 1000 * (own_cpu_seconds() - cpu) / max(len(load.latencies_ms), 1)
    return load


def replies(url: str) -> tuple[int, int, int]:
    """(customer messages stored, replies queued, replies sent so far)."""
    [row] = read_rows(
        url,
        "SELECT sum(CASE WHEN direction = 'in' THEN 1 ELSE 0 END), "
        "sum(CASE WHEN direction = 'out' THEN 1 ELSE 0 END), "
        "sum(CASE WHEN direction = 'out' AND status = 'sent' THEN 1 ELSE 0 END) "
        "FROM messages",
    )
    return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)


@dataclass(frozen=True)
class Cpu:
    """CPU seconds used so far: the web server's processes, the worker's (None where none
    runs), and each PostgreSQL backend of the bench database (by process id; empty for SQLite)."""

    web: float
    worker: float | None
    database: dict[int, float]

    @classmethod
    def now(cls, web: Process, worker: Process, url: str) -> Cpu:
        return cls(
            group_cpu_seconds(web.proc.pid),
            group_cpu_seconds(worker.proc.pid),
            backend_cpu_seconds(url),
        )


@dataclass(frozen=True)
class CpuPerPost:
    """Milliseconds of CPU per post; `worker` is None where none runs (the floor), `database`
    where it runs inside the web processes (SQLite) or its processes are not on this machine."""

    web: float
    worker: float | None
    database: float | None

    @classmethod
    def between(cls, before: Cpu, after: Cpu, posts: int) -> CpuPerPost:
        n = max(posts, 1)
        database = None
        if after.database:
            used = sum(s - before.database.get(pid, 0.0) for pid, s in after.database.items())
            database = 1000 * used / n
        return cls(
            1000 * (after.web - before.web) / n,
            None
            if after.worker is None or before.worker is None
            else 1000 * (after.worker - before.worker) / n,
            database,
        )


@dataclass(frozen=True)
class Result:
    database: str
    mode: str
    requests: int
    errors: int
    seconds: float
    p50: float
    p99: float
    max: float
    cpu: CpuPerPost
    senders_cpu: float | None = None  # ms per post; wrk's is not measured

    @classmethod
    def of(cls, database: str, mode: str, load: Load, cpu: CpuPerPost) -> Result:
        errors = sum(n for status, n in load.statuses.items() if status != 200)
        if errors:
            print(f"   {database}, {mode}: answers other than 200: {load.statuses}")
        c = summarize(load.latencies_ms)
        return cls(
            database,
            mode,
            c.count,
            errors,
            load.seconds,
            c.p50,
            c.p99,
            c.max,
            cpu,
            load.client_cpu_ms,
        )


@dataclass(frozen=True)
class Totals:
    database: str
    journalled: int  # notifications acknowledged (each once, redeliveries being the same row)
    waiting: int  # of them not processed when the run ended
    stored: int
    queued: int
    sent: int


def journal(url: str) -> tuple[int, int]:
    """(notifications journalled, of them not processed yet), SQLite's spool included."""
    [row] = read_rows(
        url,
        "SELECT count(*), sum(CASE WHEN state <> 'processed' THEN 1 ELSE 0 END) "
        "FROM inbound_notifications",
    )
    spooled = spool.waiting(url).count
    return int(row[0] or 0) + spooled, int(row[1] or 0) + spooled


def processed_totals(kind: str, url: str, patience: float = 120.0) -> Totals:
    """What was stored and queued once the worker has processed what was acknowledged (or
    `patience` seconds have passed): acknowledging first must not mean answering never."""
    drained(url, patience)
    return Totals(kind, *journal(url), *replies(url))


def drained(url: str, patience: float = 120.0) -> None:
    """Wait until the worker has processed every notification acknowledged so far (or
    `patience` seconds have passed)."""
    deadline = time.monotonic() + patience
    while journal(url)[1] and time.monotonic() < deadline:
        time.sleep(0.5)


def closed_loop(
    kind: str, mode: str, base: str, script: Path, duration: float, cpu: Callable[[], Cpu]
) -> Result:
    """wrk's 32 connections against `base`, each posting again on its answer."""
    before = cpu()
    r = wrk(base, script, int(duration), SENDERS, WRK_THREADS)
    after = cpu()
    used = CpuPerPost.between(before, after, r.requests)
    errors = r.non2xx + r.errors
    if errors:
        print(f"   {kind}, {mode}: {errors} answers other than 200")
    return Result(kind, mode, r.requests, errors, r.seconds, r.p50, r.p99, r.max, used)


def acknowledging_alone(
    kind: str, base: str, script: Path, duration: float, web: Process, worker: Process, url: str
) -> Result:
    """The closed loop with the worker stopped (SIGSTOP): what the acknowledgements alone
    cost, without the processor taking CPU and SQLite's write turn meanwhile. The backlog is
    processed once it is let go on."""
    os.killpg(worker.proc.pid, signal.SIGSTOP)
    try:
        return closed_loop(kind, PAUSED, base, script, duration, lambda: Cpu.now(web, worker, url))
    finally:
        os.killpg(worker.proc.pid, signal.SIGCONT)


def floor(
    kind: str, url: str, where: Path, scripts: tuple[Path, Path, Path], duration: float
) -> Result:
    """bench.floor under the repository's gunicorn settings, with the same load as Tresen."""
    config = gunicorn_config_without_tresen(where)
    port = free_port()
    args = [str(BIN / "gunicorn"), "--config", str(config), "--bind", f"127.0.0.1:{port}"]
    args += ["--workers", str(WEB_WORKERS), "--threads", str(WEB_THREADS), "bench.floor:app"]
    env = {"FLOOR_DATABASE_URL": url, "WHATSAPP_APP_SECRET": APP_SECRET}
    with Process(args, env, where / f"floor-{kind}.log") as web:
        base = f"http://127.0.0.1:{port}"
        wait_healthy(base, web)
        warm, script, _paused = scripts
        wrk(base, warm, 2, SENDERS, WRK_THREADS)
        return closed_loop(
            kind,
            FLOOR,
            base,
            script,
            duration,
            lambda: Cpu(group_cpu_seconds(web.proc.pid), None, backend_cpu_seconds(url)),
        )


def run_one(
    kind: str,
    graph_url: str,
    where: Path,
    duration: float,
    scripts: tuple[Path, Path, Path] | None,
) -> tuple[list[Result], Totals]:
    warm, script, paused = scripts or (None, None, None)
    results = []
    with fresh_database(kind, where) as url:
        database = Database(url)
        database.upgrade()
        with database.session() as session:
            save_settings(session, settings_yaml(datetime.now(UTC)))
        database.dispose()
        env = app_env(url, graph_url)
        worker = Process(["flask", "--app", "app", "worker"], env, where / f"worker-{kind}.log")
        with worker:
            wait_for_output(worker, "started")  # its start-up is not part of the measure
            web, base = gunicorn(
                env, where / f"web-{kind}.log", workers=WEB_WORKERS, threads=WEB_THREADS
            )
            with web:
                endpoint = f"{base}/webhooks/whatsapp"
                # Warm-up: every web worker and thread loads settings, compiles templates and
                # statements, and fills its connection pool.
                if warm is not None:
                    wrk(base, warm, 2, SENDERS, WRK_THREADS)
                send_load(endpoint, SENDERS * 4, 30, run=f"w{kind[:2]}")
                if script is not None:
                    results.append(
                        closed_loop(
                            kind,
                            CLOSED_LOOP,
                            base,
                            script,
                            duration,
                            lambda: Cpu.now(web, worker, url),
                        )
                    )
                if paused is not None:
                    drained(url)
                    results.append(
                        acknowledging_alone(kind, base, paused, duration, web, worker, url)
                    )
                for rate in PACED_RATES:
                    # A paced row is a shop's steady day, not the tail of the closed loop's
                    # backlog: it starts once the worker has caught up.
                    drained(url)
                    mode = f"{rate:g}/s paced"
                    total = int(rate * duration)
                    before = Cpu.now(web, worker, url)
                    load = send_load(endpoint, total, duration + 5, f"p{rate:g}{kind[:2]}", rate)
                    cpu = CpuPerPost.between(
                        before, Cpu.now(web, worker, url), len(load.latencies_ms)
                    )
                    results.append(Result.of(kind, mode, load, cpu))
                totals = processed_totals(kind, url)
        if scripts is not None:
            # After Tresen's runs, on the same database: its tables hold what they wrote.
            results.append(floor(kind, url, where, scripts, duration))
    return results, totals


def burst(kind: str, where: Path, quick: bool) -> tuple[Result, str]:
    """The broadcast status burst (bench.status_burst) as a row, and a note on its funnel and
    on how soon the customers' replies were in the outbox."""
    # Imported here: it builds on this module's senders.
    from bench import status_burst

    b = status_burst.measure(kind, where, quick)
    load = Load(
        [1000 * (p.acked - p.due) for p in b.posts],
        {},
        b.seconds,
        1000 * b.senders_cpu_seconds / max(len(b.posts), 1),
    )
    for p in b.posts:
        load.statuses[p.status] = load.statuses.get(p.status, 0) + 1
    web, worker, database = b.cpu_seconds
    n = max(len(b.posts), 1)
    cpu = CpuPerPost(
        1000 * web / n, 1000 * worker / n, None if database is None else 1000 * database / n
    )
    result = Result.of(kind, BURST, load, cpu)
    delays = b.reply_delays_ms
    reply_p99 = summarize(delays).p99 if delays else None
    replies_ok = reply_p99 is not None and reply_p99 <= GOAL_REPLY_QUEUED_MS
    replies_ok = replies_ok and len(delays) == b.customers
    f = b.funnel
    note = (
        f"{kind}, {BURST}: {len(b.posts) - b.customers:,} callbacks for a broadcast to "
        f"{b.recipients:,} at SEND_RATE={status_burst.SEND_RATE} and {b.customers:,} customer "
        f"texts at {status_burst.CUSTOMER_RATE:g}/s; funnel at the end: total {f.get('total')}, "
        f"sent {f.get('sent')}, delivered {f.get('delivered')}, read {f.get('read')}, failed "
        f"{f.get('failed')}: {'exact' if b.funnel_exact else 'NOT EXACT'}; a customer's reply "
        f"in the outbox {'-' if reply_p99 is None else f'{reply_p99:.0f}'} ms after the ack "
        f"at p99 ({len(delays):,} of {b.customers:,} found; goal <= "
        f"{GOAL_REPLY_QUEUED_MS:g} ms: {'met' if replies_ok else 'MISSED'})"
    )
    return result, note


def run(quick: bool = False, databases: Sequence[str] = ("sqlite", "postgresql")) -> list[Result]:
    duration = 3.0 if quick else 10.0
    results: list[Result] = []
    totals: list[Totals] = []
    notes: list[str] = []
    with workdir("webhook-ack") as where, fake_graph(GRAPH_LATENCY, where) as (_fake, graph_url):
        scripts = None
        if shutil.which("wrk"):
            # Distinct message ids for every post Tresen's runs can make at 2,000/s (the
            # floor, which may go faster, stores the bodies without looking at them).
            (where / "warm").mkdir()
            (where / "wrk").mkdir()
            (where / "paused").mkdir()
            scripts = (
                write_script(where / "warm", 4000, WRK_THREADS),
                write_script(where / "wrk", int(duration * 2000), WRK_THREADS),
                # Without processing the web may go as fast as the floor: no id used twice.
                write_script(where / "paused", int(duration * 5000), WRK_THREADS),
            )
        else:
            notes.append("wrk is not installed (apt-get install -y wrk): no closed-loop run")
        for kind in databases:
            more, counted = run_one(kind, graph_url, where, duration, scripts)
            results += more
            totals.append(counted)
            result, note = burst(kind, where, quick)
            results.append(result)
            notes.append(note)
    floors = {r.database: r.requests / r.seconds for r in results if r.mode == FLOOR}
    rows: list[list[Any]] = []
    verdicts = []
    for r in results:
        floor_rate = floors.get(r.database) if r.mode in (CLOSED_LOOP, PAUSED) else None
        rows.append(
            [
                r.database,
                r.mode,
                r.requests,
                r.errors,
                r.requests / r.seconds,
                "-" if floor_rate is None else r.requests / r.seconds / floor_rate,
                r.p50,
                r.p99,
                r.max,
                r.cpu.web,
                "-" if r.cpu.worker is None else r.cpu.worker,
                "-" if r.cpu.database is None else r.cpu.database,
                "-" if r.senders_cpu is None else r.senders_cpu,
            ]
        )
        ok = r.p99 <= GOAL_P99_MS and not r.errors
        verdicts.append(f"{r.database} {r.mode}: {'met' if ok else 'MISSED'}")
    print_table(
        f"webhook ack (ms): {SENDERS} senders, gunicorn {WEB_WORKERS} workers x {WEB_THREADS} "
        f"threads + 1 worker, Graph API latency {GRAPH_LATENCY:g} s",
        [
            "database",
            "senders post",
            "requests",
            "errors",
            "req/s",
            "x floor",
            "p50",
            "p99",
            "max",
            "web CPU",
            "worker CPU",
            "db CPU",
            "senders CPU",
        ],
        rows,
        notes=[
            *notes,
            f"goal: p99 <= {GOAL_P99_MS:g} ms as the senders see it; " + ", ".join(verdicts),
            f"as fast as answered: wrk, {SENDERS} connections, each posting again on its "
            "answer (latency is mostly queueing for the CPUs); paced: posts due at a steady "
            "rate from 32 Python senders, latency counted from the due time",
            "floor: the same wrk load against bench.floor (Flask, same gunicorn settings, "
            "signature checked and the raw body committed in one INSERT, nothing else): the "
            "least any design that stores before it acknowledges costs on this machine; "
            "x floor: the closed loop's req/s over the floor's",
            "processing paused: the closed loop again with the worker stopped (SIGSTOP), so "
            "the acknowledgements alone, without the processor's CPU and write transactions "
            "beside them; the backlog is processed once the worker goes on",
            "CPU: milliseconds per post of the gunicorn processes, of the worker sending the "
            "replies, and of the PostgreSQL backends of the bench database (all of it, the "
            "worker's queries too; SQLite works inside the web processes), and of the paced "
            "senders themselves. On a shared machine the same work may take more or less CPU "
            "time from one run to the next.",
            *(
                f"{t.database}: {t.journalled} notifications acknowledged, "
                f"{t.journalled - t.waiting} processed; {t.stored} customer messages stored, "
                f"{t.queued} replies queued, {t.sent} accepted by the slow fake by the end"
                for t in totals
            ),
        ],
    )
    return results


def main(argv: Sequence[str] | None = None) -> None:
    run_alone("Webhook acknowledgement latency while the Graph API is slow.", argv, run)


if __name__ == "__main__":
    main()
