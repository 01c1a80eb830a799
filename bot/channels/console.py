"""Console mode's channel: logs what would be sent and sends nothing, so a setup without a
token (and a test) runs the whole way from webhook to dispatcher without a remote API.

Payloads are WhatsApp's today, the only channel, so lines describe them with its `describe`.
"""

from __future__ import annotations

import logging
import uuid

from bot.channels.transport import Payload
from bot.whatsapp.payloads import describe, is_read, read_payload

__all__ = ["ConsoleTransport"]

# The outbound logger, so console mode's lines stand where sent messages' would.
logger = logging.getLogger("tresen.outbound")


class ConsoleTransport:
    """Console mode: logs what would be sent on ``tresen.outbound`` and sends nothing.

    Returns ids shaped ``wamid.console.<hex>`` so stored messages look like sent ones.
    """

    def send(self, payload: Payload) -> str:
        logger.info("console mode: would send %s", describe(payload, limit=200))
        if is_read(payload):
            return str(payload["message_id"])
        return f"wamid.console.{uuid.uuid4().hex}"

    def mark_read(self, message_id: str, typing: bool = False) -> None:
        """Same as the Graph client's ``mark_read``: logs the receipt."""
        self.send(read_payload(message_id, typing=typing))
