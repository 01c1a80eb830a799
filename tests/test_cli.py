"""The operator's commands: settings import/export, simulate."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner
from sqlalchemy import func, select

from bot.db import get_db
from bot.models import Business, Contact, Message
from bot.settings.stored import BUSINESS_ID
from tests.test_autoreply import SHOP
from tests.test_settings import CONTRACT_EXAMPLE


def write(tmp_path: Path, text: str, name: str = "shop.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_import_then_export_round_trips(runner: FlaskCliRunner, tmp_path: Path) -> None:
    result = runner.invoke(args=["settings", "import", write(tmp_path, SHOP)])
    assert result.exit_code == 0, result.output
    assert "Blumen Müller" in result.output
    exported = runner.invoke(args=["settings", "export"])
    assert exported.exit_code == 0
    assert "name: Blumen Müller" in exported.output
    again = runner.invoke(
        args=["settings", "import", write(tmp_path, exported.output, "again.yaml")]
    )
    assert again.exit_code == 0
    assert runner.invoke(args=["settings", "export"]).output == exported.output


def test_an_invalid_file_names_the_line_and_changes_nothing(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    runner.invoke(args=["settings", "import", write(tmp_path, SHOP)])
    before = runner.invoke(args=["settings", "export"]).output
    broken = SHOP.replace('  sat: ["10:00-14:00"]', '  sat: ["10:00-25:00"]')
    result = runner.invoke(args=["settings", "import", write(tmp_path, broken, "broken.yaml")])
    assert result.exit_code == 1
    assert "line 11" in result.output
    assert "25:00" in result.output
    assert runner.invoke(args=["settings", "export"]).output == before


def test_a_lone_surrogate_is_refused_with_its_line_and_a_pair_is_the_emoji(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    # YAML's double quotes take JSON's escapes, and "\\ud83d\\ude00" is how JSON writes 😀.
    runner.invoke(args=["settings", "import", write(tmp_path, SHOP)])
    before = runner.invoke(args=["settings", "export"]).output
    half = SHOP + '  thanks: "Danke \\ud83d"\n'
    result = runner.invoke(args=["settings", "import", write(tmp_path, half, "half.yaml")])
    assert result.exit_code == 1
    line = half.count("\n")
    assert f"line {line}: \\ud83d is half of a character" in result.output
    assert "\\U0001F600" in result.output
    assert runner.invoke(args=["settings", "export"]).output == before

    pair = SHOP + '  thanks: "Danke \\ud83d\\ude00"\n'
    result = runner.invoke(args=["settings", "import", write(tmp_path, pair, "pair.yaml")])
    assert result.exit_code == 0, result.output
    assert "Danke 😀" in runner.invoke(args=["settings", "export"]).output


def test_a_missing_file_is_a_clear_error(runner: FlaskCliRunner, tmp_path: Path) -> None:
    result = runner.invoke(args=["settings", "import", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 1
    assert "nope.yaml" in result.output


def simulate(runner: FlaskCliRunner, *args: str) -> dict[str, object]:
    result = runner.invoke(args=["simulate", *args, "--json"])
    assert result.exit_code == 0, result.output
    doc: dict[str, object] = json.loads(result.stdout)
    return doc


def test_simulate_json_at_chosen_instants(runner: FlaskCliRunner, tmp_path: Path) -> None:
    runner.invoke(args=["settings", "import", write(tmp_path, SHOP)])
    closed = simulate(runner, "--text", "Hallo", "--name", "Anna", "--at", "2026-11-28T19:00")
    assert closed == {
        "rule": "away",
        "text": "Hallo Anna, wir sind ab Montag, 09:00 wieder da.",
        "is_open": False,
        "next_open": "2026-11-30T09:00:00+01:00",
    }
    # The same instant given in UTC.
    assert (
        simulate(runner, "--text", "Hallo", "--name", "Anna", "--at", "2026-11-28T18:00:00Z")
        == closed
    )
    opened = simulate(runner, "--text", "Guten Tag", "--at", "2026-12-01T10:30:00+01:00")
    assert opened == {
        "rule": "greeting",
        "text": "Willkommen bei Blumen Müller!",
        "is_open": True,
        "next_open": None,
    }
    keyword = simulate(runner, "--text", "Öffnungszeiten?", "--at", "2026-12-01T10:30")
    assert keyword["rule"] == "keyword"
    stop = simulate(runner, "--text", "STOP", "--at", "2026-12-01T10:30")
    assert stop["rule"] == "optout"


def test_simulate_human_output_and_stores_nothing(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    runner.invoke(args=["settings", "import", write(tmp_path, SHOP)])
    result = runner.invoke(
        args=["simulate", "--text", "Hallo", "--from", "4915112345678", "--at", "2026-11-28T19:00"]
    )
    assert result.exit_code == 0
    assert "rule: away" in result.output
    assert "wir sind ab Montag, 09:00 wieder da." in result.output
    with get_db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 0
        assert session.scalar(select(func.count()).select_from(Contact)) == 0


def test_simulate_uses_the_demo_business_on_an_empty_database(runner: FlaskCliRunner) -> None:
    doc = simulate(runner, "--text", "Hallo", "--at", "2026-11-29T12:00")
    assert doc["is_open"] is False
    assert doc["rule"] == "away"


def test_simulate_refuses_a_bad_instant(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["simulate", "--text", "Hallo", "--at", "next tuesday"])
    assert result.exit_code == 2
    assert "--at" in result.output


def test_settings_import_checks_stale_after_minutes(runner: FlaskCliRunner, tmp_path: Path) -> None:
    runner.invoke(args=["settings", "import", write(tmp_path, SHOP)])
    before = runner.invoke(args=["settings", "export"]).output
    assert "  stale_after_minutes: 60\n" in before
    late = SHOP.replace("templates:", "  stale_after_minutes: soon\ntemplates:")
    result = runner.invoke(args=["settings", "import", write(tmp_path, late, "late.yaml")])
    assert result.exit_code == 1
    assert "line 18: replies.stale_after_minutes must be a whole number, got 'soon'" in (
        result.output
    )
    assert runner.invoke(args=["settings", "export"]).output == before
    later = SHOP.replace("templates:", "  stale_after_minutes: 30\ntemplates:")
    assert runner.invoke(args=["settings", "import", write(tmp_path, later)]).exit_code == 0
    assert "  stale_after_minutes: 30\n" in runner.invoke(args=["settings", "export"]).output


def test_simulate_a_message_that_arrives_late(runner: FlaskCliRunner, tmp_path: Path) -> None:
    shop = SHOP.replace("templates:", "  stale_after_minutes: 30\ntemplates:")
    runner.invoke(args=["settings", "import", write(tmp_path, shop)])
    evening = ("--at", "2026-11-28T19:00")
    fresh = simulate(runner, "--text", "Hallo", *evening, "--sent", "2026-11-28T18:30")
    assert fresh["rule"] == "away"
    stale = simulate(runner, "--text", "Hallo", *evening, "--sent", "2026-11-28T18:29")
    assert stale == {
        "rule": None,
        "text": None,
        "is_open": False,
        "next_open": "2026-11-30T09:00:00+01:00",
    }
    question = simulate(runner, "--text", "Öffnungszeiten?", *evening, "--sent", "2026-11-28T09:00")
    assert question["rule"] == "keyword"
    stop = simulate(runner, "--text", "STOP", *evening, "--sent", "2026-11-25T19:00")
    assert (stop["rule"], stop["text"]) == ("optout", None)
    human = runner.invoke(args=["simulate", "--text", "STOP", *evening, "--sent", "2026-11-25"])
    assert "rule: optout\nreply: none (too late)" in human.output
    bad = runner.invoke(args=["simulate", "--text", "Hallo", *evening, "--sent", "yesterday"])
    assert bad.exit_code == 2
    assert "--sent" in bad.output


def test_a_template_over_the_bounds_is_refused_by_name(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    runner.invoke(args=["settings", "import", write(tmp_path, SHOP)])
    before = runner.invoke(args=["settings", "export"]).output
    hostile = SHOP.replace(
        '  greeting: "Willkommen bei {{ business.name }}!"',
        "  greeting: \"{% for i in range(300) %}{{ '%0300d' % i }}{% endfor %}\"",
    )
    result = runner.invoke(args=["settings", "import", write(tmp_path, hostile, "hostile.yaml")])
    assert result.exit_code == 1
    assert "line 20: template 'greeting' fails while open, for Anna writing 'Hallo': " in (
        result.output
    )
    assert "more than 10,000 characters" in result.output
    assert runner.invoke(args=["settings", "export"]).output == before


def test_simulate_shows_why_a_stored_template_fell_back(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    runner.invoke(args=["settings", "import", write(tmp_path, SHOP)])
    # Stored straight into the table, as a database from before the save-time check holds it.
    with get_db(app).session() as session:
        business = session.get(Business, BUSINESS_ID)
        assert business is not None
        business.settings_yaml = re.sub(
            r'(?m)^  away: "Hallo.*$',
            "  away: \"{{ 'Hallo %s' % contact.name.center(20000) }}\"",
            SHOP,
        )
    result = runner.invoke(
        args=["simulate", "--text", "Hallo", "--name", "Anna", "--at", "2026-11-28T19:00", "--json"]
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout)["text"].startswith("Hallo Anna, danke für Ihre Nachricht!")
    assert result.stderr == (
        "warning: reply template 'away' (custom) failed: center() would build 20,000 characters "
        "(at most 10,000); the reply falls back\n"
    )


def test_the_contracts_example_file_imports_and_exports_back(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    result = runner.invoke(args=["settings", "import", write(tmp_path, CONTRACT_EXAMPLE)])
    assert result.exit_code == 0, result.output
    exported = runner.invoke(args=["settings", "export"]).output
    assert "  stale_after_minutes: 60\n  human_pause_minutes: 120\n" in exported
    assert "\nretention: {messages_days: 730, media_days: 365}\n" in exported
    again = runner.invoke(args=["settings", "import", write(tmp_path, exported, "again.yaml")])
    assert again.exit_code == 0, again.output
    assert runner.invoke(args=["settings", "export"]).output == exported


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("-5", "must not be negative, got -5"),
        ("1.5", "must be a whole number, got '1.5'"),
        ("soon", "must be a whole number, got 'soon'"),
    ],
)
def test_settings_import_checks_the_pause_and_the_retention_by_line(
    runner: FlaskCliRunner, tmp_path: Path, value: str, reason: str
) -> None:
    runner.invoke(args=["settings", "import", write(tmp_path, CONTRACT_EXAMPLE)])
    before = runner.invoke(args=["settings", "export"]).output
    pause = CONTRACT_EXAMPLE.replace("human_pause_minutes: 120", f"human_pause_minutes: {value}")
    kept = CONTRACT_EXAMPLE.replace("media_days: 365", f"media_days: {value}")
    for text, line, key in (
        (pause, 23, "replies.human_pause_minutes"),
        (kept, 24, "retention.media_days"),
    ):
        result = runner.invoke(args=["settings", "import", write(tmp_path, text, "bad.yaml")])
        assert result.exit_code == 1
        assert f"line {line}: {key} {reason}" in result.output
        assert runner.invoke(args=["settings", "export"]).output == before


def test_retention_keeps_at_least_a_day_and_may_be_left_out(
    runner: FlaskCliRunner, tmp_path: Path
) -> None:
    none = CONTRACT_EXAMPLE.replace("messages_days: 730", "messages_days: 0")
    result = runner.invoke(args=["settings", "import", write(tmp_path, none)])
    assert result.exit_code == 1
    assert "line 24: retention.messages_days must be at least 1" in result.output
    media_only = CONTRACT_EXAMPLE.replace("messages_days: 730", "messages_days: null")
    assert runner.invoke(args=["settings", "import", write(tmp_path, media_only)]).exit_code == 0
    exported = runner.invoke(args=["settings", "export"]).output
    assert "\nretention: {media_days: 365}\n" in exported
    without = re.sub(r"(?m)^retention:.*\n", "", CONTRACT_EXAMPLE)
    assert runner.invoke(args=["settings", "import", write(tmp_path, without)]).exit_code == 0
    assert "retention" not in runner.invoke(args=["settings", "export"]).output
