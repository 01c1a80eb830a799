"""Receiving a notification, framework-free: check the signature, decode, check its shape,
journal it as it came.

The web layer hands over the raw body and the signature header and sends back the Answer; the
notification is committed to the journal before any 200 leaves, and processed after it.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot import storable
from bot.whatsapp.events import Event, Malformed, Message, PayloadError, Unhandled, parse, plausible
from bot.whatsapp.signature import verify

log = logging.getLogger("tresen.webhook")


class Priority:
    """Customer messages are processed before status callbacks: a broadcast's 30,000 statuses
    must not stand between a customer and their answer."""

    MESSAGES = 0
    CALLBACKS = 1


@dataclass(frozen=True)
class Arrival:
    """What the web process tells the journal of a notification it parsed: whether a customer
    message is in it, and its earliest event's time."""

    priority: int
    sort_at: datetime


@dataclass(frozen=True)
class Answer:
    status: int
    body: str


# Headers a proxy adds. Behind a proxy on this machine every post from the internet comes from
# a loopback address, so a post carrying any of these is not taken as local.
_PROXY_HEADERS = frozenset(
    {
        "forwarded",
        "via",
        "x-real-ip",
        "x-client-ip",
        "true-client-ip",
        "cf-connecting-ip",
        "fastly-client-ip",
        "x-cluster-client-ip",
    }
)


class StoreUnavailable(Exception):
    """The database did not take the notification; Meta should deliver it again later."""


def receive(
    body: bytes,
    signature_header: str | None,
    *,
    app_secret: str | None,
    now: datetime,
    journal: Callable[[bytes, Arrival], None],
) -> Answer:
    """Check, then journal: `journal` commits the body (or raises StoreUnavailable)."""
    if app_secret is not None and not verify(body, signature_header, app_secret):
        log.warning("webhook post refused: missing or wrong X-Hub-Signature-256")
        return Answer(401, "bad signature")
    try:
        doc = decode(body)
    except (ValueError, RecursionError):
        return Answer(400, "body is not valid JSON")
    try:
        events = parse(doc)
    except PayloadError as exc:
        log.warning("webhook post refused: %s", exc)
        return Answer(400, f"unexpected notification shape: {exc}")
    try:
        journal(body, arrival(events, now))
    except StoreUnavailable:
        return Answer(503, "storage unavailable, deliver again later")
    return Answer(200, "ok")


def decode(body: bytes) -> Any:
    """A notification's JSON, as the webhook checks it and the processor reads it. Raises
    ValueError or RecursionError for what is not JSON (or holds NaN, Infinity)."""
    doc = json.loads(body, parse_float=storable.finite_float, parse_constant=storable.no_constant)
    if storable.may_need_cleaning(body):
        # So that every string stored of it (texts, names, ids, the raw JSON) is one
        # PostgreSQL takes: a refusal would be an event lost, or a 503 Meta repeats for a week.
        doc = storable.json_value(doc)
    return doc


def arrival(events: Sequence[Event | Malformed], now: datetime) -> Arrival:
    """Its place in the processor's line: customer messages before callbacks, oldest first."""
    times = [
        plausible(event.timestamp, now)
        for event in events
        if not isinstance(event, Malformed | Unhandled)
    ]
    has_message = any(isinstance(event, Message) for event in events)
    return Arrival(
        Priority.MESSAGES if has_message else Priority.CALLBACKS, min(times, default=now)
    )


def refuse_unsigned(peer: str | None, header_names: Iterable[str]) -> Answer | None:
    """Without an app secret nothing can be checked: posts are taken only from this machine.

    So a server started without WHATSAPP_APP_SECRET (console mode) is not an open webhook that
    anyone on the internet can fill. `peer` is the connection's address. None: the post may go
    on.
    """
    if _is_loopback(peer) and not any(_is_proxy_header(name) for name in header_names):
        return None
    log.warning(
        "unsigned webhook post from %s refused: without WHATSAPP_APP_SECRET only posts "
        "straight from this machine are taken",
        peer or "an unknown address",
    )
    return Answer(
        403,
        "unsigned webhook posts are accepted from this machine only: set WHATSAPP_APP_SECRET",
    )


def _is_loopback(peer: str | None) -> bool:
    try:
        address = ipaddress.ip_address(peer or "")
    except ValueError:
        return False  # a Unix socket, or no address: possibly a proxy
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _is_proxy_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in _PROXY_HEADERS or lowered.startswith("x-forwarded-")
