"""`flask --app app inbound …`: the notifications not processed yet and those that failed,
and processing failed ones again once the cause is fixed."""

from __future__ import annotations

import json
from datetime import datetime

import click
from flask import current_app
from flask.cli import AppGroup

from bot.cli.common import (
    clock_now,
    echo_table,
    finish_retry,
    migrated,
    retry_choice,
)
from bot.db import get_db
from bot.inbound import journal, spool
from bot.inbound.processor import process_batch
from bot.models import NotificationState

inbound_cli = AppGroup("inbound", help="Webhook notifications waiting or failed.")


@inbound_cli.command("list")
@click.option("--failed", is_flag=True, help="Only those that failed.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON array.")
@migrated
def list_command(failed: bool, as_json: bool) -> None:
    """List notifications not processed yet, and those that failed with their error."""
    now: datetime = clock_now()
    database = get_db(current_app)
    if not failed:
        spool.move_all(database)  # SQLite: listed in the journal like the rest
    with database.session() as session:
        entries = journal.entries(session, failed_only=failed)
    if as_json:
        doc = [
            {
                "id": e.id,
                "state": e.state.value,
                "received_at": e.received_at.isoformat(),
                "age_seconds": round((now - e.received_at).total_seconds(), 1),
                "attempts": e.attempts,
                "bytes": e.size,
                "error": e.error,
            }
            for e in entries
        ]
        click.echo(json.dumps(doc, ensure_ascii=False))
        return
    if not entries:
        click.echo("no failed notifications" if failed else "no waiting or failed notifications")
        return
    echo_table(
        f"{'id':>8}  {'state':<9} {'received (UTC)':<20} {'attempts':>8}  error",
        (
            f"{e.id:>8}  {e.state.value:<9} {e.received_at.strftime('%Y-%m-%d %H:%M:%S'):<20} "
            f"{e.attempts:>8}  {e.error or ''}"
            for e in entries
        ),
    )


@inbound_cli.command("retry")
@retry_choice("notification")
@migrated
def retry_command(ids: tuple[int, ...], all_failed: bool) -> None:
    """Process failed notifications IDS (or --all-failed) again, now."""
    config = current_app.config["TRESEN"]
    database = get_db(current_app)
    refused = []
    with database.session() as session:
        if all_failed:
            chosen = [e.id for e in journal.entries(session, failed_only=True, limit=1_000_000)]
        else:
            known = journal.known_ids(session, ids)
            chosen = []
            for wanted in ids:
                state = known.get(wanted)
                if state is None:
                    refused.append(f"{wanted}: no notification with this id")
                elif state != NotificationState.FAILED:
                    refused.append(f"{wanted}: not failed ({state.value})")
                else:
                    chosen.append(wanted)
        journal.retry(session, chosen)
    # Processed here and now, in the processor's order; a running worker may take some first.
    for start in range(0, len(chosen), 200):
        process_batch(
            database, clock_now(), ours=config.phone_number_id, only=chosen[start : start + 200]
        )
    with database.session() as session:
        failed = journal.entries(session, failed_only=True, limit=len(chosen), only=chosen)
    errors = {e.id: e.error for e in failed}
    done = 0
    for notification_id in chosen:
        if notification_id in errors:
            click.echo(f"{notification_id}: failed again: {errors.get(notification_id) or ''}")
        else:
            done += 1
            click.echo(f"{notification_id}: processed")
    finish_retry(
        refused, f"{done} of {len(chosen)} notification(s) processed", all_done=done == len(chosen)
    )
