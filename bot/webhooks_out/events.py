"""What an outgoing webhook says and how it is signed. Pure: no Flask, no database.

The body is JSON: ``{"id", "event", "created_at", "data"}``. The signature is HMAC-SHA256
over ``f"{timestamp}."`` and the body, keyed with the endpoint's secret, so that a receiver can
refuse both a forged body and an old one replayed.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final


class EventKind(enum.StrEnum):
    """What an endpoint may be told of; stored and sent as its value, so values never change."""

    MESSAGE_RECEIVED = "message.received"
    MESSAGE_STATUS = "message.status"
    CONTACT_OPTED_IN = "contact.opted_in"
    CONTACT_OPTED_OUT = "contact.opted_out"
    # Only ever sent by the owner's "send test event", to every endpoint whatever it subscribes.
    PING = "ping"


SUBSCRIBABLE: Final = (
    EventKind.MESSAGE_RECEIVED,
    EventKind.MESSAGE_STATUS,
    EventKind.CONTACT_OPTED_IN,
    EventKind.CONTACT_OPTED_OUT,
)


class DeliveryStatus(enum.StrEnum):
    """Where one delivery stands: pending (due, or being sent under a lease), sent or failed."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


SECRET_PREFIX: Final = "whsec_"  # noqa: S105 (a prefix, not a secret)
USER_AGENT: Final = "Tresen-Webhooks/1"
HEADER_TIMESTAMP: Final = "Tresen-Timestamp"
HEADER_SIGNATURE: Final = "Tresen-Signature"
HEADER_EVENT: Final = "Tresen-Event"
HEADER_DELIVERY: Final = "Tresen-Delivery"
# A receiver should refuse a timestamp older than this (the README's snippet does).
TOLERANCE: Final = timedelta(minutes=5)
# A delivery failing this long ends failed; an endpoint without a success this long is disabled.
GIVE_UP_AFTER: Final = timedelta(days=3)
# Retries back off up to an hour apart: over three days, some seventy tries at most.
RETRY_CAP_SECONDS: Final = 3600.0
RETRY_BASE_SECONDS: Final = 10.0
ENDPOINT_DISABLED: Final = "endpoint disabled"


def new_secret() -> str:
    """A signing secret: `whsec_` and 32 random bytes, URL-safe base64 without padding."""
    return SECRET_PREFIX + base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def new_event_id() -> str:
    return str(uuid.uuid4())


def clean_events(values: Iterable[str]) -> list[str]:
    """The subscribable kinds among `values`, in their fixed order, each once."""
    wanted = set(values)
    return [str(kind) for kind in SUBSCRIBABLE if kind.value in wanted]


def iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


def body(event_id: str, kind: EventKind, created_at: datetime, data: Mapping[str, Any]) -> str:
    """The JSON text sent, exactly as stored: the signature covers these bytes."""
    envelope = {"id": event_id, "event": str(kind), "created_at": iso(created_at), "data": data}
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":"), default=str)


def signature(secret: str, timestamp: int, payload: bytes) -> str:
    """The `Tresen-Signature` header's value: `sha256=` and the hex HMAC-SHA256."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(secret: str, timestamp: str, signed: str, payload: bytes, now: datetime) -> bool:
    """What a receiver does (the README shows it): a fresh timestamp and a matching MAC."""
    if not timestamp.isdigit():
        return False
    at = datetime.fromtimestamp(int(timestamp), UTC)
    if abs(now - at) > TOLERANCE:
        return False
    return hmac.compare_digest(signature(secret, int(timestamp), payload), signed)


def headers(
    secret: str, kind: str, delivery_id: int | str, payload: bytes, now: datetime
) -> dict[str, str]:
    """Every header of one POST (a fresh timestamp on each try)."""
    timestamp = int(now.timestamp())
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_SIGNATURE: signature(secret, timestamp, payload),
        HEADER_EVENT: kind,
        HEADER_DELIVERY: str(delivery_id),
    }


@dataclass(frozen=True)
class Attempt:
    """The outcome of one POST: `ok` for a 2xx; otherwise the HTTP status or the error."""

    ok: bool
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None  # the receiver's Retry-After, in seconds

    @property
    def result(self) -> str:
        """As the admin shows it: the HTTP status, or the error."""
        if self.error:
            return self.error
        return f"HTTP {self.status}"


def gives_up(first_tried_at: datetime, now: datetime) -> bool:
    """Whether a delivery failing since `first_tried_at` (its creation) ends failed now."""
    return now - first_tried_at >= GIVE_UP_AFTER


def disables(failing_since: datetime | None, now: datetime) -> bool:
    """Whether an endpoint whose deliveries have failed since `failing_since`, with no success
    since, is disabled now."""
    return failing_since is not None and now - failing_since >= GIVE_UP_AFTER
