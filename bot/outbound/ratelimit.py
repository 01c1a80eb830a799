"""The send rate shared by every dispatcher process of one phone number.

A reservation moves one shared "next free slot" forward in the database: n messages get
the n slots after it, 1/rate apart. The row lock makes reservations of different processes
queue up, so all of them together never exceed the rate, whatever their number.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.db import Database
from bot.models import SendQuota
from bot.sql import insert_ignore


class SharedRate:
    def __init__(self, database: Database, rate: float, key: str) -> None:
        self.database = database
        self.rate = rate
        self.key = key[:64]

    def reserve(self, n: int, now: float) -> list[float]:
        """Reserve `n` sending slots; returns the unix time at which each may start."""
        if n <= 0:
            return []
        step = 1.0 / self.rate
        with self.database.session() as session:
            session.execute(
                insert_ignore(session, SendQuota, ["key"]).values(key=self.key, next_slot=0.0)
            )
            quota = session.scalars(
                select(SendQuota).where(SendQuota.key == self.key).with_for_update()
            ).one()
            # An idle period earns no credit: a burst after it still keeps the rate.
            first = max(quota.next_slot, now)
            quota.next_slot = first + n * step
        return [first + i * step for i in range(n)]
