"""`python -m bench [--quick] [--db sqlite|postgresql|both] [NAME ...]`: the benchmarks, one
table each, after the environment they ran in. NAME picks some: rules, dispatch, webhook_ack, api_send,
broadcast, robustness, end_to_end, media, statistics (each also runs alone as `python -m bench.NAME`)."""

from __future__ import annotations

import argparse
import importlib
import time
from collections.abc import Callable, Sequence

from bench.common import print_environment, selected_databases


def _rules(quick: bool, databases: list[str]) -> None:
    from bench import rules

    rules.run(quick)


def _dispatch(quick: bool, databases: list[str]) -> None:
    from bench import dispatch

    dispatch.run(quick, databases)


def _webhook_ack(quick: bool, databases: list[str]) -> None:
    from bench import webhook_ack

    webhook_ack.run(quick, databases)


def _api_send(quick: bool, databases: list[str]) -> None:
    from bench import api_send

    api_send.run(quick, databases)


def _robustness(quick: bool, databases: list[str]) -> None:
    from bench import robustness

    robustness.run(quick, databases)


def _end_to_end(quick: bool, databases: list[str]) -> None:
    from bench import end_to_end

    end_to_end.run(quick, databases)


def _media(quick: bool, databases: list[str]) -> None:
    from bench import media

    media.run(quick, databases)


def _statistics(quick: bool, databases: list[str]) -> None:
    from bench import statistics

    statistics.run(quick, databases)


def _broadcast(quick: bool, databases: list[str]) -> None:
    try:
        module = importlib.import_module("bench.broadcast")
    except ModuleNotFoundError as exc:
        if exc.name != "bench.broadcast":
            raise
        print("\n== broadcast: skipped (bench/broadcast.py is not there)")
        return
    # Its own command line: it prints its environment again, which does no harm.
    argv = ["--db", "both" if len(databases) == 2 else databases[0]]
    module.main([*argv, "--quick"] if quick else argv)


BENCHMARKS: dict[str, Callable[[bool, list[str]], None]] = {
    "rules": _rules,
    "dispatch": _dispatch,
    "webhook_ack": _webhook_ack,
    "api_send": _api_send,
    "broadcast": _broadcast,
    "robustness": _robustness,
    "end_to_end": _end_to_end,
    "media": _media,
    "statistics": _statistics,
}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"benchmarks to run: {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run of each")
    parser.add_argument(
        "--db", choices=("sqlite", "postgresql", "both"), default="both", help="databases"
    )
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(
            f"unknown benchmark {', '.join(unknown)} (choose from {', '.join(BENCHMARKS)})"
        )
    names = args.names or list(BENCHMARKS)
    print_environment()
    databases, notes = selected_databases(args.db)
    for note in notes:
        print(f"   {note}")
    if not databases:
        raise SystemExit("no database to run on")
    started = time.monotonic()
    for name in names:
        BENCHMARKS[name](args.quick, databases)
    print(f"\n({len(names)} benchmarks in {time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
