"""The insights page with its week-by-week statistics for a busy shop: 50,000 messages in a
quarter (13 weeks), 5,000 customers.

Run: ``python -m bench.statistics [--quick] [--db sqlite|postgresql|both]``. Goal: the whole
page (heatmap, who answered, the weeks) under 1 s, median of the runs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import app_env, fresh_database, print_table, run_alone, summarize, workdir

GOAL_MS = 1000.0
MESSAGES = 50_000
CONTACTS = 5_000
NOW = datetime(2026, 4, 1, 10, 0, tzinfo=UTC)  # a Wednesday
PASSWORD = "bench bench bench"  # noqa: S105 (a scratch database's owner)


def rows(count: int) -> list[dict[str, Any]]:
    """Per customer question (four messages): the question, an automatic reply, a second
    message; then a person's answer 5 to 95 minutes later, or a broadcast (every tenth, so
    that wait stays open). Spread over the 13 weeks before NOW, day and night."""
    start = NOW - timedelta(weeks=13)
    step = timedelta(weeks=13) / (count // 4)
    out = []
    for i in range(count // 4):
        at = start + i * step
        contact = i % CONTACTS + 1

        def row(direction: str, when: datetime, rule: str | None, **extra: Any) -> None:
            status = "received" if direction == "in" else "delivered"
            out.append(
                {"contact_id": contact, "priority": 0, "attempts": 0, "text": "…"}  # noqa: B023
                | {"direction": direction, "type": "text", "rule": rule, "status": status}
                | {"timestamp": when, "created_at": when, "broadcast_run_id": None}
                | extra
            )

        row("in", at, None, wamid=f"wamid.b{i}a")
        row("out", at + timedelta(seconds=5), "away")
        row("in", at + timedelta(minutes=2), None, wamid=f"wamid.b{i}b")
        if i % 10:
            row("out", at + timedelta(minutes=5 + i % 90), "manual")
        else:
            row("out", at + timedelta(minutes=1), "broadcast", broadcast_run_id=i)
    return out


def fill(database_url: str, where: Path, count: int) -> Any:
    from sqlalchemy import insert

    from bot import create_app, users
    from bot.db import get_db
    from bot.models import Contact, Message
    from bot.settings.stored import seed_demo

    logging.getLogger("alembic").setLevel(logging.WARNING)
    app = create_app(app_env(database_url, "http://127.0.0.1:9"), instance_path=where / "i")
    database = get_db(app)
    database.upgrade()
    with database.session() as session:
        seed_demo(session)
        users.create_or_reset(session, "owner", PASSWORD, now=NOW)
        session.execute(
            insert(Contact),
            [{"wa_id": f"49151{n:08d}", "name": f"Kunde {n}"} for n in range(1, CONTACTS + 1)],
        )
        session.execute(insert(Message), rows(count))
    app.config["TRESEN_CLOCK"] = lambda: NOW
    return app


def _log_in(client: Any) -> None:
    import re

    html = client.get("/admin/login").get_data(as_text=True)
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match is not None
    data = {"name": "owner", "password": PASSWORD, "csrf_token": match.group(1)}
    assert client.post("/admin/login", data=data).status_code == 302


def measure(kind: str, quick: bool, where: Path) -> list[list[object]]:
    from bot.admin import weekly
    from bot.db import get_db
    from bot.settings.stored import load_settings

    count = MESSAGES // 10 if quick else MESSAGES
    runs = 3 if quick else 7
    case = where / kind
    case.mkdir()
    with fresh_database(kind, case) as url:
        app = fill(url, case, count)
        client = app.test_client()
        _log_in(client)
        results = []
        for label, path in (
            ("page, 13 weeks", "/admin/insights?weeks=12"),
            ("page, 26 weeks", "/admin/insights?weeks=26"),
            ("CSV, 13 weeks", "/admin/insights/weekly.csv?weeks=12"),
        ):
            assert client.get(path).status_code == 200  # warm-up
            times, cpu = [], []
            for _ in range(runs):
                began, began_cpu = time.perf_counter(), time.process_time()
                assert client.get(path).status_code == 200
                times.append((time.perf_counter() - began) * 1000)
                cpu.append((time.process_time() - began_cpu) * 1000)
            results.append((label, summarize(times), summarize(cpu)))
        with get_db(app).session() as session:
            settings = load_settings(session)
            assert settings is not None
            times, cpu = [], []
            for _ in range(runs):
                began, began_cpu = time.perf_counter(), time.process_time()
                weekly.load(session, settings.hours, weeks=13, at=NOW)
                times.append((time.perf_counter() - began) * 1000)
                cpu.append((time.process_time() - began_cpu) * 1000)
            results.append(("weeks alone (load + compute)", summarize(times), summarize(cpu)))
        get_db(app).dispose()
    return [
        [kind, label, count, s.p50, s.max, c.p50, "yes" if s.p50 < GOAL_MS else "NO"]
        for label, s, c in results
    ]


def run(quick: bool, databases: Sequence[str]) -> None:
    table: list[list[object]] = []
    with workdir("statistics") as where:
        for kind in databases:
            table += measure(kind, quick, where)
    print_table(
        "Insights page with weekly statistics, 50,000 messages in a quarter",
        ["database", "what", "messages", "median ms", "max ms", "CPU ms", f"< {GOAL_MS:.0f} ms"],
        table,
        notes=[
            "Flask's test client in one process: rendering included, no network.",
            "CPU ms: this process's CPU time (median), without the database server's:",
            "the figure to look at when the machine is busy with other work.",
        ],
    )


def main(argv: Sequence[str] | None = None) -> None:
    run_alone(__doc__.splitlines()[0], argv, lambda quick, dbs: run(quick, dbs))


if __name__ == "__main__":
    main()
