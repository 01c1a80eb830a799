"""The fixed word lists are stored in the database and printed by the CLI: their values are
part of the contract and of every existing database, so they never change."""

from __future__ import annotations

import json
from enum import StrEnum

import pytest

from bot.broadcasts import BroadcastKind, BroadcastStatus, RunStatus
from bot.contacts.consent import ConsentSource
from bot.models import Direction, MessageStatus
from bot.rules import AUTO_RULES, Rule
from bot.webhooks_out.events import DeliveryStatus, EventKind

VOCABULARIES: list[tuple[type[StrEnum], set[str]]] = [
    (Direction, {"in", "out"}),
    (
        MessageStatus,
        {
            "received",
            "revoked",
            "draft",
            "queued",
            "sending",
            "sent",
            "delivered",
            "read",
            "failed",
            "skipped",
            "deferred",
        },
    ),
    (
        Rule,
        {
            "optout",
            "optin",
            "keyword",
            "away",
            "greeting",
            "manual",
            "broadcast",
            "follow_up",
            "api",
        },
    ),
    (ConsentSource, {"keyword", "import", "admin", "whatsapp", "api"}),
    (RunStatus, {"writing", "written", "cancelled"}),
    (BroadcastStatus, {"scheduled", "running", "done", "cancelled"}),
    (BroadcastKind, {"text", "template"}),
    # Sent to shop systems as each body's "event" and stored with each delivery.
    (
        EventKind,
        {"message.received", "message.status", "contact.opted_in", "contact.opted_out", "ping"},
    ),
    (DeliveryStatus, {"pending", "sent", "failed"}),
]


@pytest.mark.parametrize(
    ("vocabulary", "values"), VOCABULARIES, ids=[v.__name__ for v, _ in VOCABULARIES]
)
def test_stored_and_printed_values_stay_the_same(
    vocabulary: type[StrEnum], values: set[str]
) -> None:
    assert {member.value for member in vocabulary} == values
    for member in vocabulary:
        # Written to a column, a JSON document or a line of text, a member is its plain word.
        assert member == member.value
        assert json.dumps({"status": member}) == json.dumps({"status": member.value})
        assert f"{member}" == member.value


def test_auto_replies_are_the_rules_the_bot_answers_by_itself() -> None:
    assert {str(rule) for rule in AUTO_RULES} == {"optout", "optin", "keyword", "away", "greeting"}
