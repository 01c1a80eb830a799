"""Requests per API key: a token bucket in each process's memory. With several gunicorn
workers each keeps its own buckets, so a key may get up to RATE times the number of workers;
good enough to stop a shop system's runaway loop without a database write per request."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

RATE = 10.0  # requests per second, sustained (API_RATE)
BURST = 20  # requests at once after a quiet moment (twice API_RATE)


@dataclass
class _Bucket:
    tokens: float
    at: float  # monotonic seconds of the last refill


class Buckets:
    def __init__(self, rate: float = RATE, burst: int = BURST) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[int, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key_id: int, now: float) -> float:
        """Take one request for this key at monotonic time `now`: 0 when allowed, else the
        seconds until one is."""
        with self._lock:
            bucket = self._buckets.get(key_id)
            if bucket is None:
                bucket = self._buckets[key_id] = _Bucket(float(self.burst), now)
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
            if bucket.tokens >= 1.0:
                bucket.tokens -= 1.0
                return 0.0
            return (1.0 - bucket.tokens) / self.rate


def retry_after(wait: float) -> str:
    """Retry-After in whole seconds, at least 1."""
    return str(max(1, math.ceil(wait)))
