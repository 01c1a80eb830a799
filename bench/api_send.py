"""API sends accepted per second: 32 connections post template messages to `POST /api/v1/messages`
(each with its own Idempotency-Key, to 5,000 numbers, new ones becoming contacts) to gunicorn
with the repository's gunicorn.conf.py (2 workers x 4 threads) while a `flask worker` sends
them to a fake Graph API taking 2 s per answer. Beside it, in the same run and on the same
database, the webhook floor of bench.webhook_ack (bench.floor: the signature checked and the
raw body committed in one INSERT): what this machine allows any request that stores before it
answers.

Run: ``python -m bench.api_send [--quick] [--db sqlite|postgresql|both]``. Needs wrk
(`apt-get install -y wrk`). Goal: p99 at most 100 ms. Bounded: 10 s per run (--quick: 3 s).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import (
    app_env,
    fake_graph,
    fresh_database,
    print_table,
    read_rows,
    run_alone,
    wait_for_output,
    workdir,
)
from bench.load import _lua, write_script, wrk
from bench.webhook_ack import (
    FLOOR,
    GRAPH_LATENCY,
    SENDERS,
    WEB_THREADS,
    WEB_WORKERS,
    WRK_THREADS,
    Cpu,
    CpuPerPost,
    Result,
    floor,
)
from bot.api.keys import create_key
from bot.db import Database
from bot.message_templates.demo import seed_demo_templates
from tests.processes import Process, gunicorn

API = "API sends (wrk)"
GOAL_P99_MS = 100.0
NUMBERS = 5000

LUA = """\
local bodies = dofile("%(bodies)s")
local counter = 0
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  nthreads = %(threads)d
end
function request()
  local i = (tid + counter * nthreads) %% #bodies + 1
  counter = counter + 1
  return wrk.format("POST", "/api/v1/messages",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer %(token)s",
     ["Idempotency-Key"] = "bench-%(run)s-" .. i}, bodies[i])
end
function done(summary, latency, requests)
  local s = summary
  io.write(string.format(
    "RESULT {\\"requests\\": %%d, \\"seconds\\": %%f, \\"p50\\": %%f, \\"p99\\": %%f, " ..
    "\\"max\\": %%f, " ..
    "\\"non2xx\\": %%d, \\"errors\\": %%d}\\n",
    s.requests, s.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3,
    s.errors.status, s.errors.connect + s.errors.read + s.errors.write + s.errors.timeout))
end
"""


def api_script(where: Path, n: int, token: str, run: str) -> Path:
    """A wrk script posting `n` distinct sends (then again: the same Idempotency-Key and body
    give the kept answer), a template to one of NUMBERS numbers each."""
    where.mkdir(exist_ok=True)
    lines = ["return {"]
    for i in range(n):
        body = {
            "to": f"+49151{10_000_000 + i % NUMBERS}",
            "template": {"name": "wieder_da", "language": "de", "params": [f"Kunde {i}"]},
        }
        lines.append(f"{_lua(json.dumps(body))},")
    lines.append("}")
    bodies = where / "bodies.lua"
    bodies.write_text("\n".join(lines), encoding="utf-8")
    script = where / "api.lua"
    values = {"bodies": bodies, "threads": WRK_THREADS, "token": token, "run": run}
    script.write_text(LUA % values, encoding="utf-8")
    return script


def prepared(url: str) -> str:
    """The demo templates and an API key allowed to send; the key's token."""
    database = Database(url)
    try:
        database.upgrade()
        with database.session() as session:
            seed_demo_templates(session, datetime.now(UTC))
            _key, token = create_key(session, "bench", ["send"], by=None, now=datetime.now(UTC))
    finally:
        database.dispose()
    return token


def queued(url: str) -> int:
    [row] = read_rows(url, "SELECT count(*) FROM messages WHERE rule = 'api'")
    return int(row[0] or 0)


def run_one(kind: str, graph_url: str, where: Path, duration: float) -> tuple[list[Result], str]:
    results = []
    with fresh_database(kind, where) as url:
        token = prepared(url)
        # The key's rate limit is for runaway shop systems, not for this measure.
        env = app_env(url, graph_url, API_RATE="100000")
        worker = Process(["flask", "--app", "app", "worker"], env, where / f"worker-{kind}.log")
        with worker:
            wait_for_output(worker, "started")
            web, base = gunicorn(
                env, where / f"web-{kind}.log", workers=WEB_WORKERS, threads=WEB_THREADS
            )
            with web:
                warm = api_script(where / f"warm-{kind}", 2000, token, f"w{kind}")
                wrk(base, warm, 2, SENDERS, WRK_THREADS)
                before_count = queued(url)
                script = api_script(where / f"api-{kind}", int(duration * 2000), token, kind)
                before = Cpu.now(web, worker, url)
                r = wrk(base, script, int(duration), SENDERS, WRK_THREADS)
                used = CpuPerPost.between(before, Cpu.now(web, worker, url), r.requests)
                accepted = queued(url) - before_count
                results.append(
                    Result(
                        kind,
                        API,
                        r.requests,
                        r.non2xx + r.errors,
                        r.seconds,
                        r.p50,
                        r.p99,
                        r.max,
                        used,
                    )
                )
        hooks = where / f"hooks-{kind}"
        hooks.mkdir()
        (hooks / "warm").mkdir()
        (hooks / "wrk").mkdir()
        scripts = (
            write_script(hooks / "warm", 4000, WRK_THREADS),
            write_script(hooks / "wrk", int(duration * 2000), WRK_THREADS),
        )
        results.append(floor(kind, url, where, scripts, duration))
    note = (
        f"{kind}: {r.requests:,} sends answered 202 or kept answer, {accepted:,} messages queued "
        f"(rule api) during the run"
    )
    return results, note


def run(quick: bool = False, databases: Sequence[str] = ("sqlite", "postgresql")) -> list[Result]:
    if not shutil.which("wrk"):
        print("\n== api_send: skipped (wrk is not installed: apt-get install -y wrk)")
        return []
    duration = 3.0 if quick else 10.0
    results: list[Result] = []
    notes: list[str] = []
    with workdir("api-send") as where, fake_graph(GRAPH_LATENCY, where) as (_fake, graph_url):
        for kind in databases:
            more, note = run_one(kind, graph_url, where, duration)
            results += more
            notes.append(note)
    floors = {r.database: r.requests / r.seconds for r in results if r.mode == FLOOR}
    rows: list[list[Any]] = []
    verdicts = []
    for r in results:
        floor_rate = floors.get(r.database) if r.mode == API else None
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
                "-" if r.cpu.database is None else r.cpu.database,
            ]
        )
        if r.mode == API:
            ok = r.p99 <= GOAL_P99_MS and not r.errors
            verdicts.append(f"{r.database}: {'met' if ok else 'MISSED'}")
    print_table(
        f"API sends (ms): {SENDERS} connections, gunicorn {WEB_WORKERS} workers x {WEB_THREADS} "
        f"threads + 1 worker, Graph API latency {GRAPH_LATENCY:g} s",
        [
            "database",
            "clients post",
            "requests",
            "errors",
            "req/s",
            "x floor",
            "p50",
            "p99",
            "max",
            "web CPU",
            "db CPU",
        ],
        rows,
        notes=[
            *notes,
            f"goal: API p99 <= {GOAL_P99_MS:g} ms; " + ", ".join(verdicts),
            "API sends: wrk, each connection posting again on its answer: a template "
            "(checked against the stored one) to one of 5,000 numbers, with its own "
            "Idempotency-Key; accepted means queued in the outbox (202)",
            "floor: bench.webhook_ack's floor (signature checked, raw body committed in one "
            "INSERT) under the same gunicorn settings on the same database, in the same run",
        ],
    )
    return results


def main(argv: Sequence[str] | None = None) -> None:
    run_alone("API sends accepted per second, beside the webhook floor.", argv, run)


if __name__ == "__main__":
    main()
