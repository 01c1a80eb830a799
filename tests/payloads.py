"""Notifications shaped as Meta delivers them, for tests and benchmarks."""

from __future__ import annotations

import time
from typing import Any


def notification(
    msg: dict[str, Any] | None = None, *, wa_id: str = "4915112345678", name: str = "Anna"
) -> dict[str, Any]:
    """A customer message notification; `msg` overrides the message's fields (type, id, …)."""
    msg = msg or {"type": "text", "text": {"body": "Hallo!"}}
    msg = {
        "from": wa_id,
        "id": f"wamid.T{time.monotonic_ns()}",
        "timestamp": str(int(time.time())),
        **msg,
    }
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": "106540352242922",
                            },
                            "contacts": [{"profile": {"name": name}, "wa_id": wa_id}],
                            "messages": [msg],
                        },
                    }
                ],
            }
        ],
    }


def status_notification(wamid: str, status: str, ts: int, **extra: Any) -> dict[str, Any]:
    doc = notification()
    value = doc["entry"][0]["changes"][0]["value"]
    del value["messages"]
    value["statuses"] = [
        {
            "id": wamid,
            "status": status,
            "timestamp": str(ts),
            "recipient_id": "4915112345678",
            **extra,
        }
    ]
    return doc


def json_paths(node: object, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside a JSON document, as a tuple of keys and indexes; the
    empty path is the document itself."""
    found = [prefix]
    if isinstance(node, dict):
        for key, child in node.items():
            found += json_paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += json_paths(child, (*prefix, index))
    return found
