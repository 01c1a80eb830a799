"""The API's JSON shapes of a message and a contact: what /api/v1/ answers and what the
outgoing webhooks (bot.webhooks_out) send, so a shop system reads one shape."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bot.contacts.numbers import display
from bot.models import Contact, Message


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def message_view(message: Message) -> dict[str, Any]:
    error = None
    if message.error_code is not None or message.error_reason is not None:
        error = {"code": message.error_code, "reason": message.error_reason}
    return {
        "id": message.id,
        "contact_id": message.contact_id,
        "direction": message.direction,
        "type": message.type,
        "text": message.text,
        "status": message.status,
        "created_at": _iso(message.created_at),
        "sent_at": _iso(message.sent_at),
        "delivered_at": _iso(message.delivered_at),
        "read_at": _iso(message.read_at),
        "failed_at": _iso(message.failed_at),
        "error": error,
    }


def contact_view(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.id,
        "wa_id": contact.wa_id,
        "number": display(contact.wa_id) or None,
        "name": contact.name,
        "labels": sorted((label.name for label in contact.labels), key=str.casefold),
        "opted_in": bool(contact.opted_in),
        "last_inbound_at": _iso(contact.last_inbound_at),
    }


__all__ = ["contact_view", "message_view"]
