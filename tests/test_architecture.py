"""The domain stays pure: no web framework, database or HTTP client inside it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BOT = Path(__file__).resolve().parent.parent / "bot"
PURE = {
    "bot.hours",
    "bot.statistics",
    "bot.settings",
    "bot.settings.values",
    "bot.settings.reading",
    "bot.settings.patterns",
    "bot.settings.parsers",
    "bot.settings.writer",
    "bot.settings.demo",
    "bot.rules",
    "bot.placeholders",
    "bot.message_templates.model",
    "bot.message_templates.mapping",
    "bot.autoreply",
    "bot.inbound.receive",
    "bot.replies",
    "bot.sandbox",
    "bot.strain",
    "bot.storable",
    "bot.wild",
    "bot.whatsapp.signature",
    "bot.whatsapp.events",
    "bot.whatsapp.payloads",
    "bot.whatsapp.errors",
    "bot.channels.transport",
    "bot.channels.errors",
    "bot.media.s3url",
    "bot.outbound.backoff",
    "bot.webhooks_out.events",
    "bot.webhooks_out.guard",
    "bot.contacts.csvfile",
    "bot.contacts.label_names",
    "bot.contacts.names",
    "bot.contacts.numbers",
    "bot.contacts.audiences",
    "bot.broadcasts.cron",
    "bot.broadcasts.timing",
    "bot.broadcasts.limits",
    "bot.quick_replies",
    "bot.media.kinds",
    "bot.media.serve",
    "bot.conversations.state",
    "bot.conversations.text",
    "bot.message_templates.submission",
    "bot.message_templates.flags",
    "bot.followups",
    "bot.followups.rule",
    "bot.api.errors",
    "bot.api.requests",
    "bot.api.ratelimit",
    "bot.api.openapi",
    "bot.api.scopes",
}
FORBIDDEN = {"flask", "werkzeug", "sqlalchemy", "alembic", "requests", "urllib3", "psycopg"}


def imports_of(module: str) -> set[str]:
    path = BOT.parent / module.replace(".", "/")
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("module", sorted(PURE))
def test_domain_module_is_pure(module: str) -> None:
    imported = imports_of(module)
    assert not {name.split(".")[0] for name in imported} & FORBIDDEN
    # Within the package, a pure module leans only on other pure modules.
    assert {name for name in imported if name.startswith("bot.")} <= PURE


def test_settings_lean_on_replies_and_not_back() -> None:
    # The settings check templates with the replies; the replies render for any settings.
    assert not {name for name in imports_of("bot.replies") if name.startswith("bot.settings")}
