"""Keyword rules cannot stall a message: a slow pattern meets a time budget, a long text a cap,
and a pattern that backtracks for hours is refused when the settings are saved."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import event, select

import bot.autoreply
import bot.rules
from bot.autoreply import simulate
from bot.db import get_db
from bot.models import Business, Message, utcnow
from bot.rules import KeywordHits, choose
from bot.settings import KeywordRule, SettingsError, parse_settings
from tests.test_autoreply import SHOP, TUESDAY_MORNING, at, replies, say
from tests.test_cli import write
from tests.test_rules import NEW, OPEN
from tests.test_rules import SHOP as SHOP_SETTINGS

# A pattern that backtracks through the ways of splitting the a's before it gives up on the
# "!": longer than anyone waits, for a text within WhatsApp's limit, with any backtracking search.
EVIL_PATTERN = "(a+)+$"
EVIL_TEXT = "a" * 4000 + "!"
WITH_EVIL = SHOP.replace(
    "  keywords:\n", f"  keywords:\n    - {{pattern: '{EVIL_PATTERN}', template: hours}}\n"
)
# Generous: the old code took hours; the budget is tens of milliseconds.
PROMPTLY = 5.0


def store_unchecked(app: Flask, text: str) -> None:
    """Settings as an older version could have saved them, without today's checks."""
    with get_db(app).session() as session:
        session.add(Business(id=1, settings_yaml=text, version=1, updated_at=utcnow()))


@pytest.mark.db
def test_a_stored_catastrophic_pattern_neither_stalls_the_webhook_nor_loses_the_message(
    app: Flask, client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    store_unchecked(app, WITH_EVIL)
    at(app, TUESDAY_MORNING)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="tresen.rules"):
        doc = say(client, EVIL_TEXT, TUESDAY_MORNING, name="Anna")
    assert time.monotonic() - started < PROMPTLY
    wamid = doc["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    with get_db(app).session() as session:
        stored = session.scalars(select(Message).where(Message.wamid == wamid)).one()
    assert stored.text == EVIL_TEXT
    # The pattern counts as not found: the message gets the reply it would get without it.
    [reply] = replies(app)
    assert reply.rule == "greeting"
    assert "keyword rule 1 (pattern '(a+)+$')" in caplog.text
    # The other rules still work.
    say(client, "Wann habt ihr Öffnungszeiten?", TUESDAY_MORNING, name="Anna")
    assert replies(app)[-1].rule == "keyword"


def recorded(steps: list[str], where: str, real: Any) -> Any:
    """`real`, noting `where` in `steps` each time it is called."""

    def call(*args: Any, **kwargs: Any) -> Any:
        steps.append(where)
        return real(*args, **kwargs)

    return call


def assert_between_transactions(steps: list[str], step: str) -> None:
    """`step` ran once, after the processor read its batch and before the transaction that
    writes it began: in neither."""
    assert steps.count(step) == 1, steps
    at = steps.index(step)
    assert "begin" in steps[:at], steps
    assert steps[at + 1] == "begin", steps


def steps_of_a_message(app: Flask, client: FlaskClient, steps: list[str], text: str) -> None:
    """Post `text` as a customer's message, noting in `steps` where a transaction begins."""

    def begin(_conn: Any) -> None:
        steps.append("begin")

    engine = get_db(app).engine
    event.listen(engine, "begin", begin)
    try:
        say(client, text, TUESDAY_MORNING)
    finally:
        event.remove(engine, "begin", begin)


@pytest.mark.db
def test_the_text_is_matched_before_the_database_is_locked(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_unchecked(app, SHOP)
    at(app, TUESDAY_MORNING)
    say(client, "Hallo", TUESDAY_MORNING)  # this process learns the shop's keyword rules
    steps: list[str] = []
    monkeypatch.setattr(
        bot.autoreply, "keyword_hits", recorded(steps, "match", bot.autoreply.keyword_hits)
    )
    monkeypatch.setattr(
        bot.rules, "keyword_hits", recorded(steps, "match while locked", bot.rules.keyword_hits)
    )
    steps_of_a_message(app, client, steps, "Wann habt ihr Öffnungszeiten?")
    assert_between_transactions(steps, "match")
    assert replies(app)[-1].rule == "keyword"


@pytest.mark.db
def test_the_reply_is_rendered_before_the_database_is_locked(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A template may take its whole time bound; SQLite's write turn must not wait for it."""
    store_unchecked(app, SHOP)
    at(app, TUESDAY_MORNING)
    say(client, "Hallo", TUESDAY_MORNING)  # this process learns the shop's settings
    steps: list[str] = []
    monkeypatch.setattr(bot.autoreply, "render", recorded(steps, "render", bot.autoreply.render))
    steps_of_a_message(app, client, steps, "Wann habt ihr Öffnungszeiten?")
    assert_between_transactions(steps, "render")
    assert replies(app)[-1].rule == "keyword"
    assert replies(app)[-1].text.startswith("Unsere Öffnungszeiten")


def test_hits_for_other_keyword_rules_are_not_trusted() -> None:
    stale = KeywordHits(keywords=(), text="Öffnungszeiten?", found=frozenset())
    inbound = bot.rules.Inbound("Öffnungszeiten?", "text", OPEN)
    decision = choose(inbound, NEW, SHOP_SETTINGS, OPEN, stale)
    assert decision is not None and decision.template == "hours"


def test_simulate_with_a_catastrophic_pattern_returns_promptly() -> None:
    evil = KeywordRule(match=(), pattern=EVIL_PATTERN, template="hours")
    settings = dataclasses.replace(SHOP_SETTINGS, keywords=(evil, *SHOP_SETTINGS.keywords))
    started = time.monotonic()
    result = simulate(settings, text=EVIL_TEXT, at=OPEN)
    assert time.monotonic() - started < PROMPTLY
    assert result.rule == "greeting"
    # A later rule that matches still wins, even after the slow one used up the time.
    assert simulate(settings, text=EVIL_TEXT + " Öffnungszeiten", at=OPEN).rule == "keyword"


def test_rules_look_at_no_more_than_whatsapps_text_limit() -> None:
    padded = "x" * 5000 + " Öffnungszeiten"
    assert simulate(SHOP_SETTINGS, text=padded, at=OPEN).rule == "greeting"
    assert simulate(SHOP_SETTINGS, text="x" * 4000 + " Öffnungszeiten", at=OPEN).rule == "keyword"


def test_settings_import_refuses_a_catastrophic_pattern_naming_the_line(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    runner.invoke(args=["settings", "import", write(tmp_path, SHOP)])
    before = runner.invoke(args=["settings", "export"]).output
    result = runner.invoke(args=["settings", "import", write(tmp_path, WITH_EVIL, "evil.yaml")])
    assert result.exit_code == 1
    line = WITH_EVIL.splitlines().index(f"    - {{pattern: '{EVIL_PATTERN}', template: hours}}")
    assert f"line {line + 1}" in result.output
    assert "(a+)+$" in result.output
    assert runner.invoke(args=["settings", "export"]).output == before


@pytest.mark.parametrize(
    "pattern",
    [r"(?i)bestellung\s*#?\d+", r"\d+(?:[.,]\d+)*", r"([a-z]+\.)+de", r"(?:\d{3}\s?)+", "(ab?)+"],
)
def test_patterns_without_nested_repetition_are_accepted(pattern: str) -> None:
    settings = parse_settings(
        "business: {name: K}\nreplies:\n  keywords:\n"
        f"    - {{pattern: '{pattern}', template: hours}}\n"
    )
    assert settings.keywords[0].pattern == pattern


@pytest.mark.parametrize("pattern", ["(a+)+$", r"^(\w+\s?)*$", "(x{2,5})*y", "(?:a*)+b"])
def test_nested_repetition_is_refused(pattern: str) -> None:
    text = f"business: {{name: K}}\nreplies:\n  keywords:\n    - {{pattern: '{pattern}', template: hours}}\n"
    with pytest.raises(SettingsError) as refused:
        parse_settings(text)
    assert refused.value.line == 4
    # Settings saved before this check keep working: the pattern is kept, bounded in time.
    assert parse_settings(text, stored=True).keywords[0].pattern == pattern


def test_a_pattern_nested_too_deeply_is_refused_naming_the_line() -> None:
    pattern = "(" * 3000 + "a" + ")" * 3000
    with pytest.raises(SettingsError) as refused:
        parse_settings(
            "business: {name: K}\nreplies:\n  keywords:\n"
            f"    - {{pattern: '{pattern}', template: hours}}\n"
        )
    assert refused.value.line == 4
    assert "too deeply" in refused.value.reason


@pytest.mark.db
def test_simulate_command_with_a_stored_catastrophic_pattern_returns_promptly(
    app: Flask, runner: FlaskCliRunner
) -> None:
    store_unchecked(app, WITH_EVIL)
    started = time.monotonic()
    result = runner.invoke(
        args=["simulate", "--text", EVIL_TEXT, "--at", "2026-12-01T10:30", "--json"]
    )
    assert time.monotonic() - started < PROMPTLY
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["rule"] == "greeting"
