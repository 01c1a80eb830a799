"""`flask --app app outbox …`: list the outbound messages that are stuck or failed, and put
chosen failed ones back in the queue."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from bot.cli.common import (
    clock_now,
    echo_table,
    finish_retry,
    migrated,
    retry_choice,
)
from bot.db import get_db
from bot.models import Contact, Direction, Message, MessageStatus

log = logging.getLogger("tresen.outbox")

# Queued or sending for longer than this is not normal: the dispatcher is absent or stuck.
STUCK_AFTER = timedelta(minutes=5)

outbox_cli = AppGroup("outbox", help="Outbound messages that are stuck or failed.")


@dataclass(frozen=True)
class Row:
    id: int
    contact: str | None
    status: str
    attempts: int
    created_at: str
    error: str | None


def stuck_condition(now: datetime) -> ColumnElement[bool]:
    """Queued or sending for more than STUCK_AFTER, or sending under a claim that ran out."""
    return and_(
        Message.status.in_((MessageStatus.QUEUED, MessageStatus.SENDING)),
        or_(
            Message.created_at < now - STUCK_AFTER,
            and_(Message.status == MessageStatus.SENDING, Message.claimed_until < now),
        ),
    )


def find(session: Session, *, failed: bool, stuck: bool, now: datetime) -> list[Row]:
    wanted = []
    if failed:
        wanted.append(Message.status == MessageStatus.FAILED)
    if stuck:
        wanted.append(stuck_condition(now))
    query = (
        select(Message, Contact.wa_id, Contact.user_id)
        .join(Contact, Contact.id == Message.contact_id)
        .where(Message.direction == Direction.OUT, or_(*wanted))
        .order_by(Message.id)
    )
    return [
        Row(
            id=m.id,
            contact=wa_id or user_id,
            status=m.status,
            attempts=m.attempts,
            created_at=m.created_at.isoformat(),
            error=_error(m),
        )
        for m, wa_id, user_id in session.execute(query)
    ]


def retry(session: Session, ids: list[int] | None, *, now: datetime) -> tuple[list[Row], list[str]]:
    """Failed messages back to `queued`, due now, attempts (uncertain ones too) from zero;
    `None`: all failed ones.

    Returns what was requeued and a line for each id that was not (unknown, inbound, not
    failed). The last error stays on the row until the message settles again.
    """
    query = select(Message).where(Message.direction == Direction.OUT)
    query = (
        query.where(Message.status == MessageStatus.FAILED)
        if ids is None
        else query.where(Message.id.in_(ids))
    )
    found = {m.id: m for m in session.scalars(query.with_for_update())}
    refused = []
    for wanted in ids or []:
        message = found.get(wanted)
        if message is None:
            refused.append(f"{wanted}: no outbound message with this id")
        elif message.status != MessageStatus.FAILED:
            refused.append(f"{wanted}: not failed (status {message.status})")
    requeue = [m for m in found.values() if m.status == MessageStatus.FAILED]
    if requeue:
        session.execute(
            update(Message)
            .where(Message.id.in_([m.id for m in requeue]), Message.status == MessageStatus.FAILED)
            .values(
                status=MessageStatus.QUEUED,
                status_at=now,
                attempts=0,
                # Sent by hand: the operator takes the risk of a duplicate that made the
                # dispatcher stop after a request without an answer.
                uncertain_attempts=0,
                next_attempt_at=now,
                failed_at=None,
                claimed_by=None,
                claimed_until=None,
            )
            .execution_options(synchronize_session=False)
        )
    rows = []
    for m in sorted(requeue, key=lambda m: m.id):
        log.warning("message %s queued again by hand; last error: %s", m.id, _error(m) or "none")
        contact = session.get(Contact, m.contact_id)
        who = (contact.wa_id or contact.user_id) if contact else None
        rows.append(Row(m.id, who, MessageStatus.QUEUED, 0, m.created_at.isoformat(), _error(m)))
    return rows, refused


def _error(message: Message) -> str | None:
    if message.error_code is None and not message.error_reason:
        return None
    if message.error_code is None:
        return message.error_reason
    reason = message.error_reason or ""
    return (
        reason if reason.startswith(str(message.error_code)) else f"{message.error_code} {reason}"
    )


@outbox_cli.command("list")
@click.option("--failed", is_flag=True, help="Failed messages.")
@click.option("--stuck", is_flag=True, help="Queued or sending for more than 5 minutes.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@migrated
def list_command(failed: bool, stuck: bool, as_json: bool) -> None:
    """List failed and stuck outbound messages (both unless one is chosen)."""
    if not failed and not stuck:
        failed = stuck = True
    now = clock_now()
    with get_db(current_app).session() as session:
        rows = find(session, failed=failed, stuck=stuck, now=now)
    if as_json:
        click.echo(json.dumps([asdict(r) for r in rows], ensure_ascii=False))
        return
    if not rows:
        click.echo("no failed or stuck messages")
        return
    echo_table(
        f"{'id':>8}  {'contact':<16} {'status':<8} {'attempts':>8}  error",
        (
            f"{r.id:>8}  {r.contact or '-':<16} {r.status:<8} {r.attempts:>8}  {r.error or ''}"
            for r in rows
        ),
    )


@outbox_cli.command("retry")
@retry_choice("message")
@migrated
def retry_command(ids: tuple[int, ...], all_failed: bool) -> None:
    """Put failed messages IDS (or --all-failed) back in the queue, attempts from zero."""
    now = clock_now()
    with get_db(current_app).session() as session:
        rows, refused = retry(session, None if all_failed else list(ids), now=now)
    for r in rows:
        click.echo(f"{r.id}: queued again (was: {r.error or 'no error recorded'})")
    finish_retry(refused, f"{len(rows)} message(s) queued again")
