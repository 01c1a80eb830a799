"""Webhook load: signed notifications (distinct message ids, each answered by an auto-reply)
against 2 web + 2 worker processes, on PostgreSQL and on SQLite, next to a bare Flask endpoint
served by gunicorn with the same settings.

Run: ``python -m bench.load [--duration 10] [--connections 32] [--db both]``. It needs wrk
(Debian: ``apt-get install -y wrk``). Every run is bounded (``--duration`` seconds, a fixed
number of connections) and talks to 127.0.0.1 only. The requests are pre-signed bodies that a
wrk Lua script cycles through, each thread over its own share, so no message id repeats
while the bodies last.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from bench.common import (
    APP_SECRET,
    ROOT,
    app_env,
    fake_graph,
    fresh_database,
    gunicorn_config_without_tresen,
    print_environment,
    print_table,
    selected_databases,
    wait_for_output,
    workdir,
)
from bot.db import Database
from bot.models import Message
from bot.settings.stored import save_settings
from bot.whatsapp.signature import sign
from tests import payloads
from tests.processes import BIN, Process, free_port, wait_healthy

WEB_WORKERS = 2
WEB_THREADS = 4
# Every text gets the same reply rule, at any hour: one reply per message.
SETTINGS = """\
business: {name: Last, timezone: Europe/Berlin, locale: de_DE}
hours: {mon: ["09:00-18:00"]}
replies:
  keywords:
    - {pattern: ".", template: echo, when: always}
templates:
  echo: "Danke, {{ contact.name }}! Wir melden uns."
"""
# wrk's Lua: pre-signed bodies, thread k of n sends bodies k, k+n, k+2n, ...
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
  local b = bodies[i]
  return wrk.format("POST", "/webhooks/whatsapp",
    {["Content-Type"] = "application/json", ["X-Hub-Signature-256"] = b[2]}, b[1])
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
BARE = """\
from flask import Flask

app = Flask(__name__)


@app.post("/webhooks/whatsapp")
def hook():
    return "ok"


@app.get("/healthz")
def healthz():
    return {"status": "ok"}
"""


@dataclass(frozen=True)
class Result:
    requests: int
    seconds: float
    p50: float  # ms
    p99: float  # ms
    max: float  # ms
    non2xx: int
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def notification(i: int, run: str) -> bytes:
    message = {
        "id": f"wamid.HBgN{run}{i:08d}",
        "type": "text",
        "text": {"body": f"Hallo, habt ihr heute offen? ({i})"},
    }
    wa_id = f"4917{i % 5000:09d}"
    return json.dumps(
        payloads.notification(message, wa_id=wa_id, name=f"Kunde {i % 5000}")
    ).encode()


def write_script(where: Path, n: int, threads: int) -> Path:
    run = str(int(time.time() * 1000))[-8:]
    lines = ["return {"]
    for i in range(n):
        body = notification(i, run)
        lines.append(f"{{{_lua(body.decode())}, {_lua(sign(body, APP_SECRET))}}},")
    lines.append("}")
    bodies = where / "bodies.lua"
    bodies.write_text("\n".join(lines), encoding="utf-8")
    script = where / "webhook.lua"
    script.write_text(LUA % {"bodies": bodies, "threads": threads}, encoding="utf-8")
    return script


def _lua(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def wrk(url: str, script: Path, duration: int, connections: int, threads: int) -> Result:
    out = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=duration + 60,
        check=True,
    ).stdout
    match = re.search(r"^RESULT (.*)$", out, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    return Result(**json.loads(match.group(1)))


def gunicorn(app: str, env: dict[str, str], log: Path, *, config: bool) -> tuple[Process, str]:
    """gunicorn with gunicorn.conf.py's settings, 2 workers of 4 threads (`config=False`: without
    its Tresen-specific start-up, for the bare app)."""
    port = free_port()
    args = [str(BIN / "gunicorn")]
    if config:
        args += ["--config", "gunicorn.conf.py"]
    else:
        args += ["--config", str(gunicorn_config_without_tresen(log.parent))]
    args += ["--bind", f"127.0.0.1:{port}", "--workers", str(WEB_WORKERS)]
    args += ["--threads", str(WEB_THREADS), app]
    process = Process(args, env, log)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(url, process)
    return process, url


def replies(url: str) -> tuple[int, int]:
    """Outbound messages in the database, and how many of them were sent."""
    database = Database(url)
    try:
        with database.session() as session:
            rows = dict(
                session.execute(
                    select(Message.status, func.count())
                    .where(Message.direction == "out")
                    .group_by(Message.status)
                ).all()
            )
    finally:
        database.dispose()
    total = sum(rows.values())
    return total, total - rows.get("queued", 0) - rows.get("sending", 0)


def tresen_run(
    kind: str, where: Path, graph_url: str, script: Path, args: argparse.Namespace
) -> tuple[Result, int, int]:
    with fresh_database(kind, where) as url:
        database = Database(url)
        database.upgrade()
        with database.session() as session:
            save_settings(session, SETTINGS)
        database.dispose()
        env = app_env(url, graph_url, SEND_RATE="2000")
        web, base = gunicorn("app:app", env, where / f"{kind}-web.log", config=True)
        with web:
            workers = [
                Process(["flask", "--app", "app", "worker"], env, where / f"{kind}-worker{i}.log")
                for i in range(2)
            ]
            try:
                for w in workers:
                    wait_for_output(w, "started")
                result = wrk(base, script, args.duration, args.connections, args.threads)
                deadline = time.monotonic() + 20
                total, sent = replies(url)
                while sent < total and time.monotonic() < deadline:
                    time.sleep(0.5)
                    total, sent = replies(url)
            finally:
                for w in workers:
                    w.stop()
        return result, total, sent


def bare_run(where: Path, script: Path, args: argparse.Namespace) -> Result:
    module = where / "bare_app.py"
    module.write_text(BARE, encoding="utf-8")
    env = {"PYTHONPATH": str(where)}
    web, base = gunicorn("bare_app:app", env, where / "bare-web.log", config=False)
    with web:
        return wrk(base, script, args.duration, args.connections, args.threads)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run (10)")
    parser.add_argument("--connections", type=int, default=32, help="open connections (32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--bodies", type=int, default=40_000, help="distinct messages (40,000)")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    print_environment()
    databases, notes = selected_databases(args.db)
    rows: list[list[object]] = []
    with workdir("load") as where:
        script = write_script(where, args.bodies, args.threads)
        with fake_graph(0.05, where) as (_graph, graph_url):
            for kind in reversed(databases):  # PostgreSQL first
                result, total, sent = tresen_run(kind, where, graph_url, script, args)
                rows.append(_row(f"Tresen, {kind}", result, f"{sent:,}/{total:,}"))
        rows.append(_row("bare Flask", bare_run(where, script, args), "-"))
    notes = [
        *notes,
        f"{args.duration}s per run, {args.connections} connections, {args.threads} wrk threads;"
        f" gunicorn {WEB_WORKERS} workers x {WEB_THREADS} threads (gthread); Tresen with 2"
        " `flask worker` processes and a fake Graph API (50 ms per send)",
        "replies: sent / queued by the end (20 s grace after the run)",
    ]
    headers = ["server", "req/s", "p50 ms", "p99 ms", "non-2xx", "errors", "replies"]
    print_table("signed webhooks, 127.0.0.1", headers, rows, notes=notes)
    if any(row[4] or row[5] for row in rows):
        print(f"   (some requests failed; logs in {ROOT}/… were removed with the scratch dir)")


def _row(name: str, r: Result, replies_text: str) -> list[object]:
    return [name, r.rate, r.p50, r.p99, r.non2xx, r.errors, replies_text]


if __name__ == "__main__":
    main()
