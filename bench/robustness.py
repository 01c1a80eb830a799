"""Robustness under hostile settings and hostile customers: while one customer keeps sending
texts built to make the worst keyword pattern backtrack and the worst reply template run to its
bounds, does a second customer's message still get acknowledged at once and answered?

Run: ``python -m bench.robustness [--quick] [--db sqlite|postgresql|both]``.

Per database, two runs on the repository's gunicorn settings (2 workers x 4 threads) and one
`flask worker` sending to the fake Graph API (100 ms per answer):
- *plain*: the shop's ordinary settings (closed for stocktaking: every message gets the away
  reply);
- *hostile*: the same, with a keyword rule whose pattern is ``(a+)+$`` answered by the worst
  template we know, and the away text replaced by that template too. Both are written straight
  into the database, past the checks a settings import makes, as an older database may hold them.

In both, an attacker posts texts of thirty ``a``s and a ``!`` (and 4,096-character ones) at 10/s
from 5 numbers, and other customers post ordinary texts at 20/s from 20 numbers, each on a steady
schedule; latency counts from each post's due time. Goals: the other customers' p99 at most
50 ms, every one of their messages answered, and the peak RSS of the web and worker processes in
the hostile run within 1.2 x the plain run's.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import text

from bench.common import (
    app_env,
    fake_graph,
    fresh_database,
    group_peak_rss_mb,
    print_table,
    read_rows,
    run_alone,
    summarize,
    wait_for_output,
    workdir,
)
from bench.webhook_ack import Load, request_bytes, send_all, settings_yaml
from bot.db import Database
from bot.settings.stored import save_settings
from tests import payloads
from tests.processes import Process, gunicorn

GRAPH_LATENCY = 0.1
GOAL_P99_MS = 50.0
GOAL_RSS_RATIO = 1.2
ATTACK_RATE = 10.0
CUSTOMER_RATE = 20.0
ATTACKERS = 5
CUSTOMERS = 20
WEB_WORKERS = 2
WEB_THREADS = 4

EVIL_PATTERN = "(a+)+$"
# The costliest template found: exponential recursion, which no single operation's check
# stops, so it runs until the render's time bound. The away reply.
SLOW_TEMPLATE = (
    "{%- macro boom(n) -%}{%- if n > 0 -%}{{ boom(n - 1) }}{{ boom(n - 1) }}{%- endif -%}"
    "{%- endmacro -%}{{ boom(40) }}Hallo {{ contact.name }}"
)
# Every other way a template can try to run long or grow huge: nested loops, width and padding
# arguments, growth by replace, big integers, reprs. The keyword rule's answer.
TRICKS_TEMPLATE = """\
{{ message.text | wordwrap(1) | indent(100000) }}{{ "%r" % contact }}
{{ "x" | center(1000000000) }}{{ "%0999999999d" % 1 }}{{ "{:>999999999}".format("x") }}
{{ ("a" * 5000) | replace("a", "aaaaaaaaaa") | replace("a", "aaaaaaaaaa") | replace("a", "aaaa") }}
{{ (9 ** 99) ** 99 ** 99 }}
{%- for i in range(100000) -%}{%- for j in range(100000) -%}{%- endfor -%}{%- endfor -%}
Hallo {{ contact.name }}
"""


def hostile_yaml(today: datetime) -> str:
    """settings_yaml with the worst keyword rule first, answered by the tricks, and the
    slowest template as the away reply."""
    plain = settings_yaml(today)
    hostile = plain.replace(
        "  keywords:\n",
        f"  keywords:\n    - {{pattern: {json.dumps(EVIL_PATTERN)}, template: tricks}}\n",
    ).replace("template: away,", "template: slow,")
    return (
        hostile
        + "templates:\n"
        + f"  slow: {json.dumps(SLOW_TEMPLATE)}\n"
        + f"  tricks: {json.dumps(TRICKS_TEMPLATE)}\n"
    )


def attack_text(seq: int) -> str:
    """Texts that make the pattern backtrack (and so reach the slow away reply), and now and
    then one it matches (the tricks)."""
    if seq % 5 == 4:
        return "a" * 40
    return "a" * 30 + "!" if seq % 2 == 0 else "a" * 4095 + "!"


@dataclass
class Posts:
    latencies_ms: list[float]
    statuses: dict[int, int]
    wamids: list[str]


def _notification(wa_id: str, wamid: str, body: str) -> bytes:
    message = {"id": wamid, "type": "text", "text": {"body": body}}
    return json.dumps(payloads.notification(message, wa_id=wa_id, name="Kunde")).encode()


def _paced(host: str, port: int, requests: list[bytes], rate: float, duration: float) -> Any:
    """send_all's senders for a steady stream of `requests` (8 connections)."""
    return send_all(host, port, [requests[k::8] for k in range(8)], duration, rate)


def warm_up(url: str, run: str) -> None:
    """Ordinary customers only, so that every web worker has read the settings and compiled
    its statements and templates; the attacker's first texts fall into the measured run."""
    address = urlsplit(url)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    requests = [
        request_bytes(
            f"{host}:{port}",
            address.path,
            _notification(f"4915300{seq % CUSTOMERS:05d}", f"wamid.warm{run}{seq:06d}", "Hallo"),
        )
        for seq in range(64)
    ]
    asyncio.run(_paced(host, port, requests, 32.0, 3.0))


def mixed_load(url: str, duration: float, run: str) -> tuple[Posts, Posts]:
    """The attacker's and the other customers' posts, concurrently."""
    address = urlsplit(url)
    host, port = address.hostname or "127.0.0.1", address.port or 80
    hostport = f"{host}:{port}"
    attack, customers = Posts([], {}, []), Posts([], {}, [])
    attack_requests, customer_requests = [], []
    for seq in range(int(ATTACK_RATE * duration)):
        wamid = f"wamid.evil{run}{seq:06d}"
        body = _notification(f"4915900{seq % ATTACKERS:05d}", wamid, attack_text(seq))
        attack_requests.append(request_bytes(hostport, address.path, body))
        attack.wamids.append(wamid)
    for seq in range(int(CUSTOMER_RATE * duration)):
        wamid = f"wamid.good{run}{seq:06d}"
        body = _notification(f"4915200{seq % CUSTOMERS:05d}", wamid, f"Habt ihr Tulpen? ({seq})")
        customer_requests.append(request_bytes(hostport, address.path, body))
        customers.wamids.append(wamid)

    async def both() -> list[Load]:
        return list(
            await asyncio.gather(
                _paced(host, port, attack_requests, ATTACK_RATE, duration),
                _paced(host, port, customer_requests, CUSTOMER_RATE, duration),
            )
        )

    attacked, served = asyncio.run(both())
    for posts, load in ((attack, attacked), (customers, served)):
        posts.latencies_ms, posts.statuses = load.latencies_ms, load.statuses
    return attack, customers


def answered(url: str, wamids: Sequence[str]) -> int:
    """How many of these customer messages have a reply the Graph API accepted."""
    done = {
        row[0]
        for row in read_rows(
            url,
            "SELECT m.wamid FROM messages m JOIN messages r ON r.in_reply_to = m.id "
            "WHERE m.direction = 'in' AND r.status IN ('sent', 'delivered', 'read')",
        )
    }
    return sum(1 for w in wamids if w in done)


@dataclass(frozen=True)
class Result:
    database: str
    settings: str
    attack_posts: int
    attack_errors: int
    posts: int
    errors: int
    p50: float
    p99: float
    max: float
    answered: int
    web_rss: float
    worker_rss: float


def run_one(kind: str, mode: str, graph_url: str, where: Path, duration: float) -> Result:
    with fresh_database(kind, where) as url:
        database = Database(url)
        database.upgrade()
        today = datetime.now(UTC)
        with database.session() as session:
            save_settings(session, settings_yaml(today))
        if mode == "hostile":
            # Past the import's checks, as an older database may hold them.
            with database.engine.begin() as conn:
                conn.execute(
                    text("UPDATE business SET settings_yaml = :s, version = version + 1"),
                    {"s": hostile_yaml(today)},
                )
        database.dispose()
        env = app_env(url, graph_url)
        worker = Process(
            ["flask", "--app", "app", "worker"], env, where / f"worker-{kind}-{mode}.log"
        )
        with worker:
            wait_for_output(worker, "started")
            web, base = gunicorn(
                env, where / f"web-{kind}-{mode}.log", workers=WEB_WORKERS, threads=WEB_THREADS
            )
            with web:
                endpoint = f"{base}/webhooks/whatsapp"
                warm_up(endpoint, f"{kind[:2]}{mode[:1]}")
                attack, customers = mixed_load(endpoint, duration, f"{kind[:2]}{mode[:1]}")
                deadline = time.monotonic() + 60
                done = 0
                while time.monotonic() < deadline:
                    done = answered(url, customers.wamids)
                    if done >= len(customers.wamids):
                        break
                    time.sleep(0.5)
                web_rss = group_peak_rss_mb(web.proc.pid)
                worker_rss = group_peak_rss_mb(worker.proc.pid)
    c = summarize(customers.latencies_ms)
    return Result(
        kind,
        mode,
        len(attack.latencies_ms),
        sum(n for s, n in attack.statuses.items() if s != 200),
        c.count,
        sum(n for s, n in customers.statuses.items() if s != 200),
        c.p50,
        c.p99,
        c.max,
        done,
        web_rss,
        worker_rss,
    )


def run(quick: bool = False, databases: Sequence[str] = ("sqlite", "postgresql")) -> list[Result]:
    duration = 5.0 if quick else 20.0
    results: list[Result] = []
    with workdir("robustness") as where, fake_graph(GRAPH_LATENCY, where) as (_fake, graph_url):
        for kind in databases:
            for mode in ("plain", "hostile"):
                results.append(run_one(kind, mode, graph_url, where, duration))
    plain = {r.database: r for r in results if r.settings == "plain"}
    rows: list[list[Any]] = []
    verdicts = []
    for r in results:
        base = plain[r.database]
        web_ratio = r.web_rss / base.web_rss if base.web_rss else 0.0
        worker_ratio = r.worker_rss / base.worker_rss if base.worker_rss else 0.0
        rows.append(
            [
                r.database,
                r.settings,
                r.attack_posts,
                r.attack_errors,
                r.posts,
                r.errors,
                r.p50,
                r.p99,
                r.max,
                f"{r.answered}/{r.posts}",
                r.web_rss,
                web_ratio,
                r.worker_rss,
                worker_ratio,
            ]
        )
        ok = (
            r.p99 <= GOAL_P99_MS
            and not r.errors
            and r.answered == r.posts
            and web_ratio <= GOAL_RSS_RATIO
            and worker_ratio <= GOAL_RSS_RATIO
        )
        verdicts.append(f"{r.database} {r.settings}: {'met' if ok else 'MISSED'}")
    print_table(
        f"robustness: an attacker at {ATTACK_RATE:g}/s beside customers at {CUSTOMER_RATE:g}/s, "
        f"gunicorn {WEB_WORKERS}x{WEB_THREADS} + 1 worker, Graph API {GRAPH_LATENCY * 1000:g} ms",
        [
            "database",
            "settings",
            "attacks",
            "non-200",
            "customer posts",
            "non-200",
            "p50 ms",
            "p99 ms",
            "max ms",
            "answered",
            "web RSS MB",
            "x plain",
            "worker RSS MB",
            "x plain",
        ],
        rows,
        notes=[
            f"goal: customers' p99 <= {GOAL_P99_MS:g} ms from each post's due time, every "
            f"customer answered, peak RSS (VmHWM, largest process) <= {GOAL_RSS_RATIO:g} x "
            "plain; " + ", ".join(verdicts),
            f"hostile: keyword pattern {EVIL_PATTERN} and every reply a template built to run "
            "long or grow huge, written past the import's checks",
        ],
    )
    return results


def main(argv: Sequence[str] | None = None) -> None:
    run_alone("Robustness under hostile settings and hostile customers.", argv, run)


if __name__ == "__main__":
    main()
