"""Retry delays: exponential backoff with full jitter that honours ``Retry-After``."""

from __future__ import annotations

import random
from typing import Final

__all__ = ["MAX_RETRY_AFTER", "delay"]

# A Retry-After beyond this is treated as this: a server asking for days is wrong, and
# a message parked that long looks lost to whoever waits for it.
MAX_RETRY_AFTER: Final = 3600.0

# 2**64 seconds is already far beyond any cap; larger exponents would only overflow.
_MAX_EXPONENT: Final = 64

# Jitter needs no cryptographic quality; SystemRandom just avoids shared global state.
_DEFAULT_RNG: Final = random.SystemRandom()


def delay(
    attempt: int,
    *,
    retry_after: float | None = None,
    base: float = 1.0,
    cap: float = 300.0,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before the next try of a request that has failed ``attempt`` times.

    Full jitter: a uniform draw from ``[0, min(cap, base * 2 ** (attempt - 1))]``, so
    senders that failed together do not retry together. When ``retry_after`` is given
    (the server's ``Retry-After`` or a code's documented wait) the result is never less
    than it, with ``retry_after`` itself capped at `MAX_RETRY_AFTER`.
    Pure: the same seeded ``rng`` gives the same delays.
    """
    if attempt < 1:
        raise ValueError(f"attempt counts failures and starts at 1, got {attempt}")
    if base <= 0 or cap <= 0:
        raise ValueError("base and cap must be positive")
    exponent = min(attempt - 1, _MAX_EXPONENT)
    ceiling = min(cap, base * 2.0**exponent)
    jittered = (rng or _DEFAULT_RNG).uniform(0.0, ceiling)
    if retry_after is None:
        return jittered
    floor = min(max(retry_after, 0.0), MAX_RETRY_AFTER)
    return max(floor, jittered)
