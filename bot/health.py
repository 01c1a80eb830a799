"""The health checks that load balancers, Heroku's router and monitoring ask: the database,
and whether the journal and the outbox are moving."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from bot import heartbeat
from bot.db import get_db
from bot.inbound import journal, spool
from bot.models import Direction, Message, MessageStatus
from bot.outbound import outbox

log = logging.getLogger("tresen.health")

bp = Blueprint("health", __name__)

# A reply unsent this long means the dispatcher is stuck, absent or failing.
MAX_UNSENT_AGE = timedelta(minutes=5)
# Workers beat every 10 s; six missed beats and nobody is dispatching.
MAX_HEARTBEAT_AGE = timedelta(seconds=60)


@dataclass(frozen=True)
class OutboxHealth:
    status: str  # "ok" | "stale"
    oldest_unsent_age: float | None  # seconds
    heartbeat_age: float | None  # seconds since the most recently seen worker beat
    queued: int  # queued or being sent
    failed: int
    problems: tuple[str, ...]


def outbox_health(session: Session, now: datetime) -> OutboxHealth:
    oldest = outbox.oldest_unsent(session)
    beat = heartbeat.newest(session)
    counts = dict(
        session.execute(
            select(Message.status, func.count())
            .where(
                Message.direction == Direction.OUT,
                Message.status.in_(
                    (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.FAILED)
                ),
            )
            .group_by(Message.status)
        ).all()
    )
    queued = int(counts.get(MessageStatus.QUEUED, 0)) + int(counts.get(MessageStatus.SENDING, 0))
    oldest_age = (now - oldest).total_seconds() if oldest else None
    beat_age = (now - beat).total_seconds() if beat else None
    problems = []
    if oldest_age is not None and oldest_age > MAX_UNSENT_AGE.total_seconds():
        problems.append(f"a message has waited {oldest_age:.0f}s to be sent")
    if queued and (beat_age is None or beat_age > MAX_HEARTBEAT_AGE.total_seconds()):
        seen = "never" if beat_age is None else f"{beat_age:.0f}s ago"
        problems.append(f"{queued} messages waiting and no worker seen in 60s (last {seen})")
    return OutboxHealth(
        status="stale" if problems else "ok",
        oldest_unsent_age=oldest_age,
        heartbeat_age=beat_age,
        queued=queued,
        failed=int(counts.get(MessageStatus.FAILED, 0)),
        problems=tuple(problems),
    )


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    if get_db().ping():
        return jsonify(status="ok"), 200
    return jsonify(status="unavailable", reason="database does not answer"), 503


@bp.get("/healthz/outbox")
def healthz_outbox() -> tuple[Response, int]:
    now = current_app.config["TRESEN_CLOCK"]()
    try:
        with get_db().session() as session:
            health = outbox_health(session, now)
    except DBAPIError:
        log.warning("outbox health: database does not answer", exc_info=True)
        return jsonify(status="unavailable", reason="database does not answer"), 503
    doc = asdict(health)
    doc["problems"] = list(health.problems)
    return jsonify(doc), 200 if health.status == "ok" else 503


@bp.get("/healthz/inbound")
def healthz_inbound() -> tuple[Response, int]:
    """Acknowledgements stay green while the processor is dead: this is where it shows."""
    now = current_app.config["TRESEN_CLOCK"]()
    try:
        database = get_db()
        spooled = spool.waiting(database.url)
        with database.session() as session:
            health = journal.health(session, now, spooled)
    except DBAPIError:
        log.warning("inbound health: database does not answer", exc_info=True)
        return jsonify(status="unavailable", reason="database does not answer"), 503
    doc = {
        "status": "ok" if health.ok else "stale",
        "oldest_unprocessed_age": health.oldest_waiting_age,
        "unprocessed": health.waiting,
        "failed": health.failed,
        "problems": list(health.problems),
    }
    return jsonify(doc), 200 if health.ok else 503
