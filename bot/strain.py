"""Work that ran over its bound gets a tight bound for a while.

A keyword pattern that backtracks, or a template that loops, runs to its bound on every message
that sets it off, and a customer who found such a text can send it again and again: each time
a web thread spends the whole bound. Once a pattern or a template ran over, it gets a tight
bound for a cooling-off period: ordinary texts match and render well within it (they take
microseconds), the hostile ones give up at once, so repeating them costs next to nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable

# Forgotten past this many keys: there are only as many as the settings have patterns and
# templates, unless the settings keep changing.
MAX_KEYS = 256


class Strain:
    """Which keys (a pattern, a template's source) ran over their bound lately, in this process."""

    def __init__(
        self, tight: float, cool_off: float = 600.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.tight = tight
        self.cool_off = cool_off
        self._clock = clock
        self._until: dict[Hashable, float] = {}
        self._lock = threading.Lock()

    def budget(self, key: Hashable, normal: float) -> float:
        """`normal`, or the tight bound while `key` is cooling off."""
        until = self._until.get(key)
        if until is None:
            return normal
        if self._clock() >= until:
            with self._lock:
                self._until.pop(key, None)
            return normal
        return min(normal, self.tight)

    def overran(self, key: Hashable) -> None:
        with self._lock:
            if len(self._until) >= MAX_KEYS:
                self._until.clear()
            self._until[key] = self._clock() + self.cool_off
