"""The garbage collector and long-running processes."""

from __future__ import annotations

import gc


def freeze_startup_objects() -> None:
    """Take what start-up loaded (modules, the app, its statements) out of the garbage
    collector's reach, once a process is ready to serve.

    Otherwise each full collection walks all of it: 40–130 ms in which the process runs
    nothing else, in the middle of requests (on SQLite, while holding every writer's turn).
    Objects made later are collected as before.
    """
    gc.freeze()
