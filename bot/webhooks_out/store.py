"""Endpoints and their deliveries in the database.

An event queues its deliveries in the transaction that makes it happen (`emit`), so an event
committed is an event told, and one rolled back is never told. Emitting is on the hot path of
every inbound message and status: the enabled endpoints are read once per transaction and
kept on the session, so a transaction with no endpoint for its events costs one small query.

A deliverer claims due deliveries for a lease by moving their `due_at` to the lease's end: a
claim whose holder died is then simply due again. Each is settled sent, due again later
(bot.outbound.backoff), or failed; three days of failing end a delivery, and three days
without a success disable its endpoint (with a notice for the shop).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, func, insert, select, update
from sqlalchemy.orm import Session

from bot import storable
from bot.api.views import contact_view, message_view
from bot.models import Contact, Message, WebhookDelivery, WebhookEndpoint
from bot.notices import NoticeKind, raise_notice
from bot.outbound.backoff import delay
from bot.sql import dialect_name
from bot.webhooks_out import events
from bot.webhooks_out.events import Attempt, DeliveryStatus, EventKind

# The session.info key of the endpoints read in the session's current transaction.
_CACHE = "tresen.webhook_endpoints"
_ERROR_LENGTH = 500
# Settled deliveries are kept this long for the owner to look at, then deleted.
KEEP_SETTLED = timedelta(days=30)


# --- emitting ----------------------------------------------------------------------------------


def subscribed(session: Session, kind: EventKind) -> list[int]:
    """The enabled endpoints subscribed to `kind`: read once per transaction."""
    transaction = session.get_transaction()
    cached = session.info.get(_CACHE)
    if cached is None or cached[0] is not transaction:
        rows = session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.events).where(
                WebhookEndpoint.disabled_at.is_(None)
            )
        ).all()
        cached = (transaction, [(row.id, frozenset(row.events or ())) for row in rows])
        session.info[_CACHE] = cached
    return [endpoint for endpoint, kinds in cached[1] if kind in kinds]


def _forget(session: Session) -> None:
    """Endpoints changed in this transaction: read them again at the next event."""
    session.info.pop(_CACHE, None)


def emit(
    session: Session,
    kind: EventKind,
    data: Callable[[], Mapping[str, Any]],
    *,
    now: datetime,
    contact_id: int | None = None,
    endpoints: Sequence[int] | None = None,
) -> int:
    """Queue `kind` for every endpoint subscribed to it (or these `endpoints`), in the caller's
    transaction; `data` is built only when some endpoint wants it. How many were queued."""
    ids = subscribed(session, kind) if endpoints is None else list(endpoints)
    if not ids:
        return 0
    event_id = events.new_event_id()
    body = events.body(event_id, kind, now, data())
    session.connection().execute(
        insert(WebhookDelivery),
        [
            {
                "endpoint_id": endpoint,
                "event_id": event_id,
                "event": str(kind),
                "body": body,
                "contact_id": contact_id,
                "status": DeliveryStatus.PENDING,
                "attempts": 0,
                "due_at": now,
                "created_at": now,
            }
            for endpoint in ids
        ],
    )
    return len(ids)


# --- what each event says (the API's shapes: bot.api.views) -----------------------------------


def message_data(message: Message) -> dict[str, Any]:
    return {
        **message_view(message),
        "wamid": message.wamid,
        "timestamp": events.iso(message.timestamp),
    }


def message_received(session: Session, message_id: int, contact_id: int, now: datetime) -> None:
    """A customer message was stored (bot.inbound.messages)."""

    def data() -> dict[str, Any]:
        message = session.get(Message, message_id)
        contact = session.get(Contact, contact_id, populate_existing=True)
        assert message is not None and contact is not None
        return {"message": message_data(message), "contact": contact_view(contact)}

    emit(session, EventKind.MESSAGE_RECEIVED, data, now=now, contact_id=contact_id)


def message_status(session: Session, message: Message, now: datetime) -> None:
    """An outbound message's status changed (bot.outbound.outbox)."""

    def data() -> dict[str, Any]:
        contact = session.get(Contact, message.contact_id)
        wa_id = contact.wa_id if contact is not None else None
        return {
            "message": message_data(message),
            "contact": {"id": message.contact_id, "wa_id": wa_id},
            "status": message.status,
            "at": events.iso(message.status_at),
        }

    emit(session, EventKind.MESSAGE_STATUS, data, now=now, contact_id=message.contact_id)


def consent_changed(
    session: Session, contact: Contact, opted_in: bool, source: str, at: datetime
) -> None:
    """A contact was opted in or out (bot.contacts.consent)."""
    kind = EventKind.CONTACT_OPTED_IN if opted_in else EventKind.CONTACT_OPTED_OUT

    def data() -> dict[str, Any]:
        return {
            "contact": contact_view(contact),
            "wa_id": contact.wa_id,
            "source": source,
            "at": events.iso(at),
        }

    emit(session, kind, data, now=at, contact_id=contact.id)


# --- the owner's endpoints ---------------------------------------------------------------------


def create_endpoint(
    session: Session, url: str, kinds: Sequence[str], *, by: int | None, now: datetime
) -> tuple[WebhookEndpoint, str]:
    """A new endpoint and its secret (shown to the owner this once, kept to sign)."""
    secret = events.new_secret()
    endpoint = WebhookEndpoint(
        url=url, events=events.clean_events(kinds), secret=secret, created_at=now, created_by_id=by
    )
    session.add(endpoint)
    session.flush()
    _forget(session)
    return endpoint, secret


def set_events(session: Session, endpoint: WebhookEndpoint, kinds: Sequence[str]) -> None:
    endpoint.events = events.clean_events(kinds)
    _forget(session)


def rotate_secret(session: Session, endpoint: WebhookEndpoint) -> str:
    """A new secret; deliveries from now on are signed with it, retries of older ones too."""
    endpoint.secret = events.new_secret()
    return endpoint.secret


def enable(session: Session, endpoint: WebhookEndpoint) -> None:
    endpoint.disabled_at = None
    endpoint.disabled_reason = None
    endpoint.failing_since = None
    _forget(session)


def delete_endpoint(session: Session, endpoint: WebhookEndpoint) -> None:
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
    session.delete(endpoint)
    _forget(session)


def ping(session: Session, endpoint: WebhookEndpoint, now: datetime) -> None:
    """The owner's test event, to this endpoint whatever it subscribes to."""
    emit(
        session,
        EventKind.PING,
        lambda: {"endpoint_id": endpoint.id, "text": "a test event from Tresen"},
        now=now,
        endpoints=[endpoint.id],
    )


def disable(session: Session, endpoint_id: int, reason: str, now: datetime) -> None:
    """Stop an endpoint: its pending deliveries end failed, and the shop gets a notice."""
    endpoint = session.get(WebhookEndpoint, endpoint_id, with_for_update=True)
    if endpoint is None or endpoint.disabled_at is not None:
        return
    endpoint.disabled_at = now
    endpoint.disabled_reason = _clip(reason)
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status == DeliveryStatus.PENDING,
        )
        .values(
            status=DeliveryStatus.FAILED,
            last_error=events.ENDPOINT_DISABLED,
            claimed_by=None,
            settled_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    raise_notice(session, NoticeKind.WEBHOOK_DISABLED, {"url": endpoint.url, "reason": reason}, now)
    _forget(session)


@dataclass(frozen=True)
class Overview:
    endpoint: WebhookEndpoint
    pending: int
    failed: int


def overview(session: Session) -> list[Overview]:
    """Every endpoint, with how many of its deliveries wait and how many failed."""
    counts: dict[tuple[int, str], int] = {
        (row.endpoint_id, row.status): row.n
        for row in session.execute(
            select(
                WebhookDelivery.endpoint_id,
                WebhookDelivery.status,
                func.count().label("n"),
            )
            .where(WebhookDelivery.status != DeliveryStatus.SENT)
            .group_by(WebhookDelivery.endpoint_id, WebhookDelivery.status)
        )
    }
    endpoints = session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id))
    return [
        Overview(
            e,
            counts.get((e.id, DeliveryStatus.PENDING), 0),
            counts.get((e.id, DeliveryStatus.FAILED), 0),
        )
        for e in endpoints
    ]


def recent(session: Session, endpoint_id: int, limit: int = 20) -> list[WebhookDelivery]:
    return list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
    )


# --- the deliverer's side ----------------------------------------------------------------------


@dataclass(frozen=True)
class Claimed:
    id: int
    endpoint_id: int
    url: str
    secret: str
    event: str
    body: str
    attempts: int  # including this one
    created_at: datetime


def _due(now: datetime, limit: int) -> Select[int]:
    return (
        select(WebhookDelivery.id)
        .where(WebhookDelivery.status == DeliveryStatus.PENDING, WebhookDelivery.due_at <= now)
        .order_by(WebhookDelivery.due_at)
        .limit(limit)
    )


def any_due(session: Session, *, now: datetime) -> bool:
    """Whether a delivery waits to be claimed: the deliverer's poll, in a read-only session
    (see Database.reading), so that finding none takes no write turn."""
    return session.scalar(_due(now, 1)) is not None


def claim(
    session: Session, worker: str, limit: int, *, now: datetime, lease: timedelta
) -> list[Claimed]:
    """Claim up to `limit` due deliveries of enabled endpoints for `worker` until
    `now + lease`."""
    due = _due(now, limit)
    if dialect_name(session) == "postgresql":
        # Other deliverers skip what this one is claiming instead of waiting for it.
        due = due.with_for_update(skip_locked=True)
    ids = list(session.scalars(due))
    if not ids:
        return []
    # Conditions again: on SQLite another process may have claimed them since the SELECT.
    taken = list(
        session.scalars(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id.in_(ids),
                WebhookDelivery.status == DeliveryStatus.PENDING,
                WebhookDelivery.due_at <= now,
            )
            .values(
                claimed_by=worker,
                due_at=now + lease,
                attempts=WebhookDelivery.attempts + 1,
            )
            .returning(WebhookDelivery.id)
            .execution_options(synchronize_session=False)
        )
    )
    if not taken:
        return []
    rows = session.execute(
        select(
            WebhookDelivery.id,
            WebhookDelivery.endpoint_id,
            WebhookEndpoint.url,
            WebhookEndpoint.secret,
            WebhookDelivery.event,
            WebhookDelivery.body,
            WebhookDelivery.attempts,
            WebhookDelivery.created_at,
        )
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id.in_(taken))
        .order_by(WebhookDelivery.id)
    ).all()
    return [Claimed(*row) for row in rows]


@dataclass(frozen=True)
class Settled:
    status: DeliveryStatus | None  # None: the claim was lost, nothing recorded
    disabled: bool = False  # the endpoint was disabled by this outcome


def settle(
    session: Session,
    worker: str,
    delivery: Claimed,
    attempt: Attempt,
    *,
    now: datetime,
    final: bool = False,
) -> Settled:
    """Record one POST's outcome: sent; or due again after a backoff; or failed (`final`, or
    failing for three days). The endpoint keeps the last result, and is disabled after three
    days without a success. Status None when `worker` no longer held the claim (nothing
    recorded)."""
    error = None if attempt.ok else _clip(attempt.result)
    values: dict[str, Any]
    if attempt.ok:
        status = DeliveryStatus.SENT
        values = {"sent_at": now, "settled_at": now}
    elif final or events.gives_up(delivery.created_at, now):
        status = DeliveryStatus.FAILED
        values = {"settled_at": now}
    else:
        status = DeliveryStatus.PENDING
        wait = delay(
            delivery.attempts,
            retry_after=attempt.retry_after,
            base=events.RETRY_BASE_SECONDS,
            cap=events.RETRY_CAP_SECONDS,
        )
        values = {"due_at": now + timedelta(seconds=wait)}
    updated = session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery.id, WebhookDelivery.claimed_by == worker)
        .values(
            status=status,
            claimed_by=None,
            last_status=attempt.status,
            last_error=error,
            **values,
        )
        .execution_options(synchronize_session=False)
    )
    if not getattr(updated, "rowcount", 0):
        return Settled(None)
    endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
    if endpoint is None:
        return Settled(status)
    endpoint.last_attempt_at = now
    endpoint.last_status = attempt.status
    endpoint.last_error = error
    if attempt.ok:
        endpoint.last_success_at = now
        endpoint.failing_since = None
        return Settled(status)
    endpoint.failing_since = endpoint.failing_since or now
    if endpoint.disabled_at is None and events.disables(endpoint.failing_since, now):
        disable(session, endpoint.id, f"no success for 3 days; last: {error}", now)
        return Settled(status, disabled=True)
    return Settled(status)


def prune(session: Session, now: datetime) -> int:
    """Delete settled deliveries older than KEEP_SETTLED."""
    result = session.execute(
        delete(WebhookDelivery).where(
            WebhookDelivery.status != DeliveryStatus.PENDING,
            WebhookDelivery.created_at < now - KEEP_SETTLED,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _clip(text: str) -> str:
    return storable.clipped(text, _ERROR_LENGTH) or ""
