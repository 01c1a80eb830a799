"""The send rate shared by every dispatcher process of one phone number.

A reservation moves one shared "next free slot" forward in the database: n messages get
the n slots after it, 1/rate apart. The row lock makes reservations of different processes
queue up, so all of them together never exceed the rate, whatever their number.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, update
from sqlalchemy.orm import Session

from bot.db import Database
from bot.models import SendQuota
from bot.sql import dialect_name, insert_ignore

_quota = cast(Table, SendQuota.__table__)


@lru_cache(maxsize=2)
def _advance(dialect: str) -> Any:
    """Moves the next free slot past `span` seconds of slots, starting no earlier than `now`
    (an idle period earns no credit: a burst after it still keeps the rate), and returns where
    it now stands: one statement, which holds the row lock until the transaction ends."""
    now = bindparam("now", type_=_quota.c.next_slot.type)
    span: Any = bindparam("span", type_=_quota.c.next_slot.type)
    latest = func.greatest if dialect == "postgresql" else func.max  # SQLite: scalar max()
    return (
        update(_quota)
        .where(_quota.c.key == bindparam("quota_key"))
        .values(next_slot=latest(_quota.c.next_slot, now) + span)
        .returning(_quota.c.next_slot)
    )


class SharedRate:
    def __init__(self, database: Database, rate: float, key: str) -> None:
        self.database = database
        self.rate = rate
        self.key = key[:64]

    def reserve(self, n: int, now: float) -> list[float]:
        """Reserve `n` sending slots; returns the unix time at which each may start."""
        if n <= 0:
            return []
        with self.database.session() as session:
            return self.reserve_in(session, n, now)

    def reserve_in(self, session: Session, n: int, now: float) -> list[float]:
        """`reserve` in the caller's transaction (the dispatcher's claim: one transaction
        less per batch); the slots are taken when it commits."""
        if n <= 0:
            return []
        step = 1.0 / self.rate
        span = n * step
        conn = session.connection()
        advance = _advance(dialect_name(conn))
        params = {"quota_key": self.key, "now": now, "span": span}
        end = conn.execute(advance, params).scalar_one_or_none()
        if end is None:  # the number's first reservation
            conn.execute(
                insert_ignore(conn, SendQuota, ["key"]), {"key": self.key, "next_slot": 0.0}
            )
            end = conn.execute(advance, params).scalar_one()
        first = float(end) - span
        return [first + i * step for i in range(n)]
