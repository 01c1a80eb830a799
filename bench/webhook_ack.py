"""Webhook acknowledgement latency while the Graph API is slow: 32 concurrent senders post
signed customer messages, each answered by an auto-reply, to gunicorn (the repo's
gunicorn.conf.py, 2 workers) with a `flask worker` sending the replies to a fake Graph API
that takes 2 s per answer.

Run: ``python -m bench.webhook_ack [--quick] [--db sqlite|postgresql|both]``.
Goal: p99 at most 50 ms. Bounded: 2,000 requests or 20 s per database (--quick: 300 or 5 s).

Latency is measured twice: by the senders (what Meta would see, including the senders' own
interpreter) and by gunicorn itself (its access log's request time), so a busy client does
not pass for a slow server.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import create_engine, text

from bench.common import (
    APP_SECRET,
    app_env,
    arguments,
    fake_graph,
    fresh_database,
    print_environment,
    print_table,
    selected_databases,
    summarize,
    wait_for_output,
    workdir,
)
from bot.business import save_settings
from bot.db import Database
from bot.signature import sign
from tests import payloads
from tests.processes import Process, gunicorn

SENDERS = 32
GRAPH_LATENCY = 2.0
GOAL_P99_MS = 50.0
WEB_WORKERS = 2
WEB_THREADS = 4
CONTACTS_PER_SENDER = 25
# A busy shop's burst, well below what 2 web workers take: the latency then is the service
# time, not a queue.
PACED_RATE = 100.0
# gunicorn's own measure of each request, in microseconds, on lines of their own.
ACCESS_FORMAT = "ACK %(s)s %(D)s %(m)s %(U)s"


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


def send_load(url: str, total: int, duration: float, run: str, rate: float | None = None) -> Load:
    """`SENDERS` threads, each on its own kept-alive connection, until `total` or `duration`.

    Without `rate` each sender posts again as soon as it has its answer (a closed loop: the
    server's throughput is measured, and latency is mostly queueing). With `rate` (requests
    per second, all senders together) each post has a due time; latency counts from that due
    time, so a server that falls behind is not flattered by senders waiting on it.
    """
    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    begin = time.perf_counter()
    deadline = begin + duration

    def sender(k: int) -> None:
        session = requests.Session()
        seq = 0
        while True:
            i = seq * SENDERS + k  # this post's place among all senders' posts
            due = begin + i / rate if rate else time.perf_counter()
            if i >= total or due >= deadline:
                break
            if rate:
                time.sleep(max(0.0, due - time.perf_counter()))
            body = notification(k, seq, run)
            headers = {
                "Content-Type": "application/json",
                "X-Hub-Signature-256": sign(body, APP_SECRET),
            }
            try:
                status = session.post(url, data=body, headers=headers, timeout=10).status_code
            except requests.RequestException:
                status = 0
            elapsed = (time.perf_counter() - due) * 1000
            with lock:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1
            seq += 1
        session.close()

    threads = [threading.Thread(target=sender, args=(k,)) for k in range(SENDERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Load(latencies, statuses, time.perf_counter() - begin)


def server_times_ms(log: Path) -> list[float]:
    """gunicorn's request times for the webhook posts, in the order they were logged."""
    times = []
    for line in log.read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[0] == "ACK" and parts[3] == "POST":
            times.append(int(parts[2]) / 1000)
    return times


def replies(url: str) -> tuple[int, int, int]:
    """(customer messages stored, replies queued, replies sent so far)."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT sum(CASE WHEN direction = 'in' THEN 1 ELSE 0 END), "
                    "sum(CASE WHEN direction = 'out' THEN 1 ELSE 0 END), "
                    "sum(CASE WHEN direction = 'out' AND status = 'sent' THEN 1 ELSE 0 END) "
                    "FROM messages"
                )
            ).one()
    finally:
        engine.dispose()
    return int(row[0] or 0), int(row[1] or 0), int(row[2] or 0)


@dataclass(frozen=True)
class Result:
    database: str
    mode: str
    requests: int
    errors: int
    seconds: float
    client: list[float]
    server: list[float]


@dataclass(frozen=True)
class Totals:
    database: str
    stored: int
    queued: int
    sent: int


def run_one(
    kind: str, graph_url: str, where: Path, total: int, duration: float, rate: float
) -> tuple[list[Result], Totals]:
    results = []
    with fresh_database(kind, where) as url:
        database = Database(url)
        database.upgrade()
        with database.session() as session:
            save_settings(session, settings_yaml(datetime.now(UTC)))
        database.dispose()
        env = app_env(url, graph_url, GUNICORN_CMD_ARGS=f"--access-logformat '{ACCESS_FORMAT}'")
        worker = Process(["flask", "--app", "app", "worker"], env, where / f"worker-{kind}.log")
        with worker:
            wait_for_output(worker, "started")  # its start-up is not part of the measure
            web, base = gunicorn(
                env, where / f"web-{kind}.log", workers=WEB_WORKERS, threads=WEB_THREADS
            )
            with web:
                endpoint = f"{base}/webhooks/whatsapp"
                # Warm-up: every web worker and thread loads settings and compiles templates.
                send_load(endpoint, SENDERS * 2, 30, run=f"w{kind[:2]}")
                for mode, pace in (("as fast as answered", None), (f"{rate:g}/s paced", rate)):
                    logged = len(server_times_ms(web.log_path))
                    load = send_load(endpoint, total, duration, f"{mode[:1]}{kind[:2]}", pace)
                    time.sleep(0.3)  # gunicorn writes the access line after the answer
                    server = server_times_ms(web.log_path)[logged:]
                    errors = sum(n for status, n in load.statuses.items() if status != 200)
                    if errors:
                        print(f"   {kind}, {mode}: answers other than 200: {load.statuses}")
                    results.append(
                        Result(
                            kind,
                            mode,
                            len(load.latencies_ms),
                            errors,
                            load.seconds,
                            load.latencies_ms,
                            server,
                        )
                    )
                totals = Totals(kind, *replies(url))
    return results, totals


def run(
    quick: bool = False,
    databases: Sequence[str] = ("sqlite", "postgresql"),
    rate: float = PACED_RATE,
) -> list[Result]:
    total, duration = (300, 5.0) if quick else (2000, 20.0)
    results: list[Result] = []
    totals: list[Totals] = []
    with workdir("webhook-ack") as where, fake_graph(GRAPH_LATENCY, where) as (_fake, graph_url):
        for kind in databases:
            more, counted = run_one(kind, graph_url, where, total, duration, rate)
            results += more
            totals.append(counted)
    rows: list[list[Any]] = []
    verdicts = []
    for r in results:
        c = summarize(r.client)
        s = summarize(r.server) if r.server else None
        rows.append(
            [
                r.database,
                r.mode,
                r.requests,
                r.errors,
                r.requests / r.seconds,
                c.p50,
                c.p99,
                c.max,
                s.p50 if s else "-",
                s.p99 if s else "-",
            ]
        )
        ok = c.p99 <= GOAL_P99_MS and not r.errors
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
            "p50",
            "p99",
            "max",
            "server p50",
            "server p99",
        ],
        rows,
        notes=[
            f"goal: p99 <= {GOAL_P99_MS:g} ms as the senders see it; " + ", ".join(verdicts),
            "as fast as answered: each sender posts again on its answer (latency is mostly "
            f"queueing for {WEB_WORKERS * WEB_THREADS} request threads); paced: posts due at "
            "a steady rate, latency counted from the due time",
            "server p50/p99: gunicorn's own request time (access log %(D)s)",
            *(
                f"{t.database}: {t.stored} customer messages stored, {t.queued} replies "
                f"queued, {t.sent} accepted by the slow fake by the end"
                for t in totals
            ),
        ],
    )
    return results


def main(argv: Sequence[str] | None = None) -> None:
    args = arguments("Webhook acknowledgement latency while the Graph API is slow.", argv)
    print_environment()
    databases, notes = selected_databases(args.db)
    for note in notes:
        print(f"   {note}")
    run(args.quick, databases)


if __name__ == "__main__":
    main()
