"""Shared benchmark helpers: the environment, percentiles, plain tables, a fresh database, the
fake Graph API in a process of its own, and CPU time of child processes."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import shutil
import socket
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import create_engine, text

from tests.processes import Process, free_port

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DATABASES = ("sqlite", "postgresql")
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
TOKEN = "EAAG-bench-token"  # noqa: S105 (the fake Graph API's, nothing real)
PHONE = "106540352242922"
APP_SECRET = "bench-app-secret"  # noqa: S105 (signs bench posts only)


# --- what the figures were measured on ---------------------------------------------------


def pg_base_url() -> str:
    """The PostgreSQL server benchmarks use: BENCH_DATABASE_URL, TEST_DATABASE_URL, or local."""
    url = (
        os.environ.get("BENCH_DATABASE_URL", "").strip()
        or os.environ.get("TEST_DATABASE_URL", "").strip()
        or DEFAULT_PG_URL
    )
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    return url


def _driver_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def read_rows(url: str, sql: str) -> list[Any]:
    """The rows of one query on a plain engine of its own, disposed afterwards: not the app's,
    whose SQLite transactions begin IMMEDIATE and would take the write lock from what is
    measured."""
    engine = create_engine(_driver_url(url))
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)))
    finally:
        engine.dispose()


def postgres_version() -> str | None:
    """The server's version, or None when it does not answer."""
    try:
        engine = create_engine(_driver_url(pg_base_url()), connect_args={"connect_timeout": 3})
        try:
            with engine.connect() as conn:
                return str(conn.execute(text("SHOW server_version")).scalar_one())
        finally:
            engine.dispose()
    except Exception:  # any failure means "not available"; the caller skips PostgreSQL
        return None


def environment() -> list[tuple[str, str]]:
    load = os.getloadavg()
    return [
        ("CPUs", str(os.cpu_count())),
        ("load average", " ".join(f"{x:.2f}" for x in load)),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("platform", platform.platform()),
        ("SQLite", sqlite3.sqlite_version),
        ("PostgreSQL", postgres_version() or f"not reachable at {pg_base_url()}"),
    ]


def print_environment() -> None:
    print_table("environment", ["", ""], environment(), header=False)


# --- figures ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    count: int
    p50: float
    p99: float
    mean: float
    max: float


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile `q` (0-100) of `values`."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(values: Sequence[float]) -> Summary:
    return Summary(
        count=len(values),
        p50=percentile(values, 50),
        p99=percentile(values, 99),
        mean=sum(values) / len(values),
        max=max(values),
    )


def print_table(
    title: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    notes: Sequence[str] = (),
    header: bool = True,
) -> None:
    """A plain-text table: left-aligned text, right-aligned numbers."""
    cells = [[_cell(v) for v in row] for row in rows]
    table = [list(headers), *cells] if header else cells
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    numeric = [all(_is_number(row[i]) for row in rows) and bool(rows) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(row, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    print(f"\n== {title}")
    if header:
        print(line(table[0]))
        print("  ".join("-" * w for w in widths))
    for row in cells:
        print(line(row))
    for note in notes:
        print(f"   {note}")
    sys.stdout.flush()


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        if value >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


# --- command lines ------------------------------------------------------------------------


def arguments(
    description: str, argv: Sequence[str] | None, *, databases: bool = True
) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    if databases:
        parser.add_argument(
            "--db",
            choices=("sqlite", "postgresql", "both"),
            default="both",
            help="which databases to run on (default: both)",
        )
    return parser.parse_args(argv)


def run_alone(
    description: str, argv: Sequence[str] | None, run: Callable[[bool, list[str]], object]
) -> None:
    """A benchmark's own command line: `run(quick, databases)` after the environment."""
    args = arguments(description, argv)
    print_environment()
    databases, notes = selected_databases(args.db)
    for note in notes:
        print(f"   {note}")
    run(args.quick, databases)


def selected_databases(choice: str) -> tuple[list[str], list[str]]:
    """The databases to run on, and notes on those skipped."""
    wanted = list(DATABASES) if choice == "both" else [choice]
    notes = []
    if "postgresql" in wanted and postgres_version() is None:
        wanted.remove("postgresql")
        notes.append(f"PostgreSQL skipped: not reachable at {pg_base_url()}")
    return wanted, notes


# --- databases and processes --------------------------------------------------------------


@contextlib.contextmanager
def workdir(name: str) -> Iterator[Path]:
    """A scratch directory for databases and logs, removed afterwards (kept on failure)."""
    path = Path(tempfile.mkdtemp(prefix=f"tresen-bench-{name}-"))
    try:
        yield path
    except BaseException:
        print(f"   (logs kept in {path})", file=sys.stderr)
        raise
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def fresh_database(kind: str, where: Path) -> Iterator[str]:
    """A database of its own: a SQLite file in `where`, or a new PostgreSQL schema, dropped after."""
    if kind == "sqlite":
        yield f"sqlite:///{where / f'tresen-{uuid.uuid4().hex[:8]}.db'}"
        return
    base = pg_base_url()
    schema = f"bench_{uuid.uuid4().hex[:16]}"
    admin = create_engine(_driver_url(base))
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def app_env(database_url: str, graph_url: str, **extra: str) -> dict[str, str]:
    """The environment of a web or worker process talking to the fake Graph API."""
    return {
        "DATABASE_URL": database_url,
        "WHATSAPP_TOKEN": TOKEN,
        "WHATSAPP_PHONE_NUMBER_ID": PHONE,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": "bench-verify",
        "SECRET_KEY": "k" * 32,
        "GRAPH_API_URL": graph_url,
        "GRAPH_API_VERSION": "v24.0",
        **extra,
    }


_WITHOUT_TRESEN = """\
from pathlib import Path

exec(Path({config!r}).read_text())
del post_worker_init  # Tresen's own start-up
"""


def gunicorn_config_without_tresen(where: Path) -> Path:
    """A gunicorn config file with gunicorn.conf.py's settings but not its Tresen-specific
    start-up hook, for the apps Tresen is compared with."""
    path = where / "without-tresen.gunicorn.conf.py"
    path.write_text(_WITHOUT_TRESEN.format(config=str(ROOT / "gunicorn.conf.py")), "utf-8")
    return path


def wait_for_port(port: int, process: Process, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            raise RuntimeError(f"process exited early:\n{process.output()}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}:\n{process.output()}")


def wait_for_output(process: Process, needle: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in process.output():
            return
        if process.proc.poll() is not None:
            raise RuntimeError(f"process exited early:\n{process.output()}")
        time.sleep(0.05)
    raise RuntimeError(f"{needle!r} not seen in time:\n{process.output()}")


@contextlib.contextmanager
def fake_graph(
    latency: float, where: Path, journal: Path | None = None
) -> Iterator[tuple[Process, str]]:
    """tests.fakegraph as a process of its own (it must not share a GIL with what is measured),
    answering each message after `latency` seconds; with `journal`, a line per accepted message
    in that file (see JournalTail)."""
    port = free_port()
    args = [PYTHON, "-m", "tests.fakegraph", "--port", str(port), "--latency", str(latency)]
    args += ["--token", TOKEN, "--quiet"]
    if journal is not None:
        args += ["--journal", str(journal)]
    process = Process(args, {}, where / f"fakegraph-{port}.log")
    with process:
        wait_for_port(port, process)
        yield process, f"http://127.0.0.1:{port}"


@dataclass(frozen=True)
class Sent:
    """A message the fake Graph API accepted: when it arrived (time.monotonic), to whom, and
    the wamid it answered with."""

    at: float
    to: str
    wamid: str


class JournalTail:
    """The fake Graph API's journal read as it grows: each `new()` gives the messages accepted
    since the last, so a sender polling it often does not reread it all."""

    def __init__(self, journal: Path) -> None:
        self.journal = journal
        self._offset = 0

    def new(self) -> list[Sent]:
        try:
            with self.journal.open("rb") as f:
                f.seek(self._offset)
                raw = f.read()
        except FileNotFoundError:
            return []
        whole = raw[: raw.rfind(b"\n") + 1]  # a line being written is not whole yet
        self._offset += len(whole)
        lines = whole.decode("utf-8").splitlines()
        return [Sent(float(at), to, wamid) for at, to, wamid in map(str.split, lines)]


def _stat_fields(path: Path) -> list[str] | None:
    """The fields of a /proc/PID/stat after the command name, or None for a process gone."""
    try:
        raw = path.read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; fields after its ")" are fixed.
    return raw[raw.rindex(")") + 2 :].split()


def _cpu_seconds(fields: list[str]) -> float:
    """User plus system CPU seconds (fields 14 and 15 of /proc/PID/stat)."""
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _group(pgid: int) -> Iterator[tuple[Path, list[str]]]:
    """The /proc folder and stat fields of each live process in a process group."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _stat_fields(stat)
        if fields is not None and int(fields[2]) == pgid:  # field 5, the process group
            yield stat.parent, fields


def group_cpu_seconds(pgid: int) -> float:
    """User plus system CPU seconds of the live processes in a process group."""
    return sum(_cpu_seconds(fields) for _, fields in _group(pgid))


def group_peak_rss_mb(pgid: int) -> float:
    """The largest peak resident memory (VmHWM) of the live processes in a process group, MB."""
    peaks = [0.0]
    for folder, _ in _group(pgid):
        try:
            status = (folder / "status").read_text()
        except OSError:
            continue
        peaks += [
            int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM:")
        ]
    return max(peaks)


def backend_cpu_seconds(url: str) -> dict[int, float]:
    """CPU seconds so far of each backend serving `url`'s PostgreSQL database, by process id;
    empty for SQLite or when the server's processes are not on this machine."""
    if not url.startswith("postgresql"):
        return {}
    pids = [
        row[0]
        for row in read_rows(
            url,
            "SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
    ]
    seconds = {}
    for pid in pids:
        fields = _stat_fields(Path(f"/proc/{pid}/stat"))
        if fields is not None:
            seconds[int(pid)] = _cpu_seconds(fields)
    return seconds


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system
