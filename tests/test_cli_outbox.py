"""`flask --app app outbox list|retry`: finding stuck and failed messages, putting failed ones
back in the queue."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskCliRunner

from bot.db import get_db
from bot.models import Contact, Message
from bot.outbound import outbox
from bot.whatsapp.payloads import text_payload

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
NUMBERS = itertools.count(1)


@pytest.fixture(autouse=True)
def fixed_clock(app: Flask) -> None:
    app.config["TRESEN_CLOCK"] = lambda: NOW


def message(
    app: Flask,
    status: str,
    *,
    ago: timedelta = timedelta(minutes=1),
    attempts: int = 0,
    claimed_until: datetime | None = None,
    error: tuple[int | None, str] | None = None,
    direction: str = "out",
) -> int:
    with get_db(app).session() as session:
        contact = Contact(wa_id=f"49160{next(NUMBERS):07d}", name="Kim")
        session.add(contact)
        session.flush()
        m = outbox.enqueue(
            session, contact, text_payload(contact.wa_id or "", "Hallo"), now=NOW - ago
        )
        m.status = status
        m.direction = direction
        m.attempts = attempts
        m.claimed_until = claimed_until
        if status == "failed":
            m.failed_at = NOW - ago
        if error is not None:
            m.error_code, m.error_reason = error
        return m.id


def listing(runner: FlaskCliRunner, *flags: str) -> list[dict[str, object]]:
    result = runner.invoke(args=["outbox", "list", "--json", *flags])
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


@pytest.fixture
def mixed(app: Flask) -> dict[str, int]:
    return {
        "fresh": message(app, "queued", ago=timedelta(minutes=1)),
        "old_queued": message(app, "queued", ago=timedelta(minutes=6)),
        "old_sending": message(app, "sending", ago=timedelta(minutes=7), attempts=1,
                               claimed_until=NOW + timedelta(seconds=20)),
        "expired_claim": message(app, "sending", ago=timedelta(minutes=1), attempts=1,
                                 claimed_until=NOW - timedelta(seconds=1)),
        "live_claim": message(app, "sending", ago=timedelta(minutes=1), attempts=1,
                              claimed_until=NOW + timedelta(seconds=20)),
        "failed": message(app, "failed", attempts=3,
                          error=(131026, "131026: Message Undeliverable")),
        "failed_no_code": message(app, "failed", attempts=1, error=(None, "gave up")),
        "sent": message(app, "sent", ago=timedelta(hours=1), attempts=1),
        "inbound_old": message(app, "received", ago=timedelta(hours=1), direction="in"),
    }  # fmt: skip


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        ((), ["old_queued", "old_sending", "expired_claim", "failed", "failed_no_code"]),
        (("--failed",), ["failed", "failed_no_code"]),
        (("--stuck",), ["old_queued", "old_sending", "expired_claim"]),
        (("--failed", "--stuck"), ["old_queued", "old_sending", "expired_claim", "failed", "failed_no_code"]),
    ],
)  # fmt: skip
def test_list_selects_stuck_and_failed(
    runner: FlaskCliRunner, mixed: dict[str, int], flags: tuple[str, ...], expected: list[str]
) -> None:
    assert [row["id"] for row in listing(runner, *flags)] == [mixed[name] for name in expected]


def test_list_json_row_shape(app: Flask, runner: FlaskCliRunner) -> None:
    mid = message(app, "failed", attempts=3, error=(131026, "131026: Message Undeliverable"))
    [row] = listing(runner)
    assert row == {
        "id": mid,
        "contact": row["contact"],
        "status": "failed",
        "attempts": 3,
        "created_at": (NOW - timedelta(minutes=1)).isoformat(),
        "error": "131026: Message Undeliverable",
    }
    assert str(row["contact"]).startswith("49160")


def test_list_as_text(app: Flask, runner: FlaskCliRunner) -> None:
    mid = message(app, "failed", attempts=2, error=(470, "outside the window"))
    result = runner.invoke(args=["outbox", "list"])
    assert result.exit_code == 0, result.output
    header, line = result.stdout.splitlines()
    assert header.split() == ["id", "contact", "status", "attempts", "error"]
    assert line.split()[0] == str(mid)
    assert line.split()[2:] == ["failed", "2", "470", "outside", "the", "window"]


def test_list_says_when_there_is_nothing(runner: FlaskCliRunner) -> None:
    result = runner.invoke(args=["outbox", "list"])
    assert result.exit_code == 0
    assert result.stdout.strip() == "no failed or stuck messages"


def test_retry_requeues_the_chosen_failed_messages(app: Flask, runner: FlaskCliRunner) -> None:
    first = message(app, "failed", attempts=5, error=(131000, "131000: Something went wrong"))
    second = message(app, "failed", attempts=2, error=(131000, "131000: Something went wrong"))
    result = runner.invoke(args=["outbox", "retry", str(first)])
    assert result.exit_code == 0, result.output
    assert f"{first}: queued again (was: 131000: Something went wrong)" in result.stdout
    assert "1 message(s) queued again" in result.stdout
    with get_db(app).session() as session:
        again = session.get_one(Message, first)
        untouched = session.get_one(Message, second)
        assert (again.status, again.attempts, again.next_attempt_at, again.failed_at) == (
            "queued",
            0,
            NOW,
            None,
        )
        assert untouched.status == "failed" and untouched.attempts == 2
        # The dispatcher can claim it now.
        claimed = outbox.claim(session, "w", 10, now=NOW, lease=timedelta(seconds=30))
    assert [c.id for c in claimed] == [first]


def test_retry_sends_a_message_that_failed_without_an_answer_once_more(
    app: Flask, runner: FlaskCliRunner
) -> None:
    uncertain = message(app, "failed", attempts=2, error=(None, "uncertain: no answer"))
    with get_db(app).session() as session:
        session.get_one(Message, uncertain).uncertain_attempts = 2
    result = runner.invoke(args=["outbox", "retry", str(uncertain)])
    assert result.exit_code == 0, result.output
    with get_db(app).session() as session:
        [claimed] = outbox.claim(session, "w", 10, now=NOW, lease=timedelta(seconds=30))
    # Asked for by hand: the dispatcher sends it, however often it went out unanswered.
    assert (claimed.id, claimed.uncertain) == (uncertain, 0)


def test_retry_all_failed(app: Flask, runner: FlaskCliRunner, mixed: dict[str, int]) -> None:
    result = runner.invoke(args=["outbox", "retry", "--all-failed"])
    assert result.exit_code == 0, result.output
    assert "2 message(s) queued again" in result.stdout
    with get_db(app).session() as session:
        statuses = {name: session.get_one(Message, mid).status for name, mid in mixed.items()}
    assert statuses["failed"] == statuses["failed_no_code"] == "queued"
    assert statuses["sent"] == "sent" and statuses["live_claim"] == "sending"
    assert listing(runner, "--failed") == []


def test_retry_refuses_what_is_not_failed(
    app: Flask, runner: FlaskCliRunner, mixed: dict[str, int]
) -> None:
    result = runner.invoke(
        args=["outbox", "retry", str(mixed["sent"]), str(mixed["inbound_old"]), "999999", str(mixed["failed"])]
    )  # fmt: skip
    assert result.exit_code == 1
    assert f"{mixed['sent']}: not failed (status sent)" in result.stderr
    assert f"{mixed['inbound_old']}: no outbound message with this id" in result.stderr
    assert "999999: no outbound message with this id" in result.stderr
    assert "1 message(s) queued again" in result.stdout
    with get_db(app).session() as session:
        assert session.get_one(Message, mixed["sent"]).status == "sent"
        assert session.get_one(Message, mixed["failed"]).status == "queued"


@pytest.mark.parametrize("args", [["outbox", "retry"], ["outbox", "retry", "1", "--all-failed"]])
def test_retry_needs_ids_or_all_failed(runner: FlaskCliRunner, args: list[str]) -> None:
    result = runner.invoke(args=args)
    assert result.exit_code == 2
    assert "give message ids or --all-failed" in result.output
