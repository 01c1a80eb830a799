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


WABA_ID = "102290129340398"


def template_notification(
    field: str, value: dict[str, Any], *, at: int | None = None, waba_id: str = WABA_ID
) -> dict[str, Any]:
    """A notification about one of the account's templates (`message_template_status_update`,
    `template_category_update`, `message_template_quality_update`), as Meta's webhook
    reference shows them: the entry's id is the WhatsApp Business Account, its time the
    trigger's unix seconds."""
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": waba_id,
                "time": int(time.time()) if at is None else at,
                "changes": [{"field": field, "value": value}],
            }
        ],
    }


def template_status(
    event: str,
    *,
    template_id: int = 1234567890,
    name: str = "angebot",
    language: str = "de",
    reason: str = "NONE",
    category: str = "MARKETING",
    at: int | None = None,
) -> dict[str, Any]:
    return template_notification(
        "message_template_status_update",
        {
            "event": event,
            "message_template_id": template_id,
            "message_template_name": name,
            "message_template_language": language,
            "reason": reason,
            "message_template_category": category,
        },
        at=at,
    )


def template_category(
    new: str,
    previous: str | None = "UTILITY",
    *,
    template_id: int = 1234567890,
    name: str = "angebot",
    language: str = "de",
    correct: str | None = None,
    at: int | None = None,
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "message_template_id": template_id,
        "message_template_name": name,
        "message_template_language": language,
        "new_category": new,
    }
    if previous is not None:
        value["previous_category"] = previous
    if correct is not None:
        value["correct_category"] = correct
    return template_notification("template_category_update", value, at=at)


def template_quality(
    new: str,
    previous: str = "GREEN",
    *,
    template_id: int = 1234567890,
    name: str = "angebot",
    language: str = "de",
    at: int | None = None,
) -> dict[str, Any]:
    return template_notification(
        "message_template_quality_update",
        {
            "previous_quality_score": previous,
            "new_quality_score": new,
            "message_template_id": template_id,
            "message_template_name": name,
            "message_template_language": language,
        },
        at=at,
    )
