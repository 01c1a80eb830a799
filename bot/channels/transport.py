"""The interface the dispatcher sends through: a stored payload in, the channel's message id out."""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["Payload", "Transport"]

# What the outbox stores and a transport sends: the channel's own JSON message, built by its
# payload builders (for WhatsApp, `bot.whatsapp.payloads`).
Payload = dict[str, Any]


class Transport(Protocol):
    """Something that sends one stored payload and returns the id the channel gave it."""

    def send(self, payload: Payload) -> str:
        """Send ``payload``; return the new message's id (for WhatsApp the wamid; for a read
        receipt, the wamid that was marked read). Raises `bot.channels.errors.SendError`
        subclasses."""
        ...
