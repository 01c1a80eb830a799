"""Idempotency-Key: a request repeated with the same key and body gets the first answer again
and does nothing a second time; with another body it is refused. Answers are kept 24 hours."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.orm import Session

from bot.models import ApiIdempotency
from bot.sql import insert_ignore

KEPT = timedelta(hours=24)
KEY_MAX = 255


@dataclass(frozen=True)
class Stored:
    request_hash: str
    status_code: int
    response: dict[str, Any]


def request_hash(method: str, path: str, body: Any) -> str:
    """The same request in another key order or spacing hashes the same."""
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def stored(session: Session, key_id: int, idem_key: str, now: datetime) -> Stored | None:
    """The kept answer for this key, if one younger than KEPT exists; an older one is
    forgotten here, so the key can be kept anew."""
    row = session.scalar(
        select(ApiIdempotency).where(
            ApiIdempotency.api_key_id == key_id,
            ApiIdempotency.idempotency_key == idem_key,
        )
    )
    if row is None:
        return None
    if row.created_at <= now - KEPT:
        session.delete(row)
        session.flush()
        return None
    return Stored(row.request_hash, row.status_code, row.response)


def keep(
    session: Session,
    key_id: int,
    idem_key: str,
    digest: str,
    status_code: int,
    response: dict[str, Any],
    now: datetime,
) -> bool:
    """Keep the answer in the request's transaction (after `stored` found none); False when
    another request with the same key got there first (then this transaction must be rolled
    back)."""
    values = {
        "api_key_id": key_id,
        "idempotency_key": idem_key,
        "request_hash": digest,
        "status_code": status_code,
        "response": response,
        "created_at": now,
    }
    # RETURNING, not rowcount: a driver may report -1 for an insert that did nothing.
    statement = insert_ignore(session, ApiIdempotency, None).values(**values)
    inserted = session.execute(statement.returning(ApiIdempotency.id))
    return inserted.scalar_one_or_none() is not None


def prune(session: Session, now: datetime) -> int:
    """Forget answers older than KEPT; returns how many."""
    result = session.execute(delete(ApiIdempotency).where(ApiIdempotency.created_at <= now - KEPT))
    return int(cast(CursorResult[Any], result).rowcount or 0)
