"""The account's templates synced from Meta: every page of the list against the fake Graph API
(real HTTP), stored and marked deleted, read back with their parameters, the CLI, the daily run
on the scheduler, and console mode's demo templates."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from bot.broadcasts.scheduler import SchedulerService
from bot.config import ConfigError, load
from bot.db import Database, get_db
from bot.message_templates import sync as sync_module
from bot.message_templates.demo import DEMO_TEMPLATES
from bot.message_templates.model import (
    ParameterFormat,
    Place,
    TemplateStatus,
    components,
    parse_template,
)
from bot.message_templates.sending import prepare
from bot.message_templates.store import find, template_of
from bot.message_templates.sync import (
    DailySync,
    SyncError,
    SyncResult,
    fetch_templates,
    store_templates,
    sync,
)
from bot.models import MessageTemplate
from tests.conftest import build_app
from tests.fakegraph import FakeGraph, graph_error

NOW = datetime(2026, 3, 11, 9, 0, tzinfo=UTC)
TOKEN = "EAAtesttoken"
WABA = "102290129340398"


def positional(name: str, status: str = "APPROVED", body: str = "Hallo {{1}}!") -> dict[str, Any]:
    return {
        "name": name,
        "language": "de",
        "category": "UTILITY",
        "status": status,
        "quality_score": {"score": "GREEN", "date": 1700000000},
        "parameter_format": "POSITIONAL",
        "components": [{"type": "BODY", "text": body, "example": {"body_text": [["Anna"]]}}],
    }


# Meta's own sample of a named template with a URL button (message_templates reference).
NAMED = {
    "name": "angebot",
    "language": "de",
    "category": "MARKETING",
    "status": "APPROVED",
    "parameter_format": "NAMED",
    "components": [
        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1h"]}},
        {
            "type": "BODY",
            "text": "Hallo {{vorname}}, {{rabatt}} auf alles!",
            "example": {
                "body_text_named_params": [
                    {"param_name": "vorname", "example": "Anna"},
                    {"param_name": "rabatt", "example": "20 %"},
                ]
            },
        },
        {"type": "FOOTER", "text": "STOP zum Abbestellen"},
        {
            "type": "BUTTONS",
            "buttons": [
                {"type": "QUICK_REPLY", "text": "Mehr"},
                {
                    "type": "URL",
                    "text": "Ansehen",
                    "url": "https://shop.example/angebot/{{1}}",
                    "example": ["https://shop.example/angebot/fruehling"],
                },
            ],
        },
    ],
}


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with FakeGraph(token=TOKEN) as graph:
        yield graph


@pytest.fixture
def live_app(database_url: str, tmp_path: Path, fake: FakeGraph) -> Iterator[Flask]:
    """An app with a token and an account id, talking to the fake Graph API."""
    app = build_app(
        database_url,
        tmp_path,
        WHATSAPP_TOKEN=TOKEN,
        WHATSAPP_PHONE_NUMBER_ID="106540352242922",
        WHATSAPP_VERIFY_TOKEN="verify",
        SECRET_KEY="s" * 32,
        GRAPH_API_URL=fake.url,
        WHATSAPP_BUSINESS_ACCOUNT_ID=WABA,
    )
    app.config["TRESEN_CLOCK"] = lambda: NOW
    yield app
    get_db(app).dispose()


def stored(app: Flask) -> dict[tuple[str, str], MessageTemplate]:
    with get_db(app).session() as session:
        rows = list(session.scalars(select(MessageTemplate)))
        session.expunge_all()
    return {(r.name, r.language): r for r in rows}


# --- the list, page by page -------------------------------------------------------------------


def test_every_page_is_read_with_the_after_cursor(fake: FakeGraph) -> None:
    fake.set_templates([positional(f"t{i:02d}") for i in range(7)])
    listing = fetch_templates(fake.url, "v24.0", WABA, TOKEN, page_size=3)
    assert [t["name"] for t in listing.templates] == [f"t{i:02d}" for i in range(7)]
    assert listing.pages == 3
    first, second, third = fake.template_requests
    assert "after" not in first and first["limit"] == ["3"]
    assert "quality_score" in first["fields"][0] and "components" in first["fields"][0]
    assert second["after"] != third["after"]


def test_a_refused_page_is_a_sync_error_without_the_token(fake: FakeGraph) -> None:
    fake.set_templates([positional(f"t{i}") for i in range(4)])
    with pytest.raises(SyncError, match="190"):
        fetch_templates(fake.url, "v24.0", WABA, "wrong-token", page_size=2)
    # The second page fails: nothing is returned half.
    fake.script(
        [(200, {"data": [positional("a")], "paging": {"cursors": {"after": "x"}, "next": "n"}})]
    )
    fake.script([(400, graph_error(100, f"(#100) Invalid parameter {TOKEN}"))])
    with pytest.raises(SyncError) as caught:
        fetch_templates(fake.url, "v24.0", WABA, TOKEN)
    assert TOKEN not in str(caught.value) and "HTTP 400" in str(caught.value)


def test_sync_over_several_pages_stores_every_template(
    live_app: Flask, fake: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync_module, "PAGE_SIZE", 5)
    fake.set_templates([positional(f"t{i:02d}") for i in range(12)] + [NAMED])
    result = sync(get_db(live_app), live_app.config["TRESEN"], NOW)
    assert result.ok and result.templates == 13 and result.pages == 3
    rows = stored(live_app)
    assert len(rows) == 13
    row = rows[("angebot", "de")]
    assert row.origin == "synced" and row.synced_at == NOW and row.meta_id
    assert (row.category, row.status, row.parameter_format) == ("marketing", "approved", "named")
    assert rows[("t00", "de")].quality == "green"


def test_graph_errors_leave_the_stored_templates_and_say_why(
    live_app: Flask, fake: FakeGraph
) -> None:
    fake.set_templates([positional("bleibt")])
    assert sync(get_db(live_app), live_app.config["TRESEN"], NOW).ok
    fake.fail_all(401, graph_error(190, "Error validating access token: Session has expired"))
    result = sync(get_db(live_app), live_app.config["TRESEN"], NOW + timedelta(days=1))
    assert not result.ok
    assert result.summary().startswith("template sync failed: HTTP 401")
    assert "Session has expired" in result.summary()
    assert stored(live_app)[("bleibt", "de")].status == "approved"


# --- stored, updated, deleted -------------------------------------------------------------------


def test_upsert_updates_and_marks_what_meta_no_longer_lists(app: Flask) -> None:
    later = NOW + timedelta(days=1)
    with get_db(app).session() as session:
        first = store_templates(session, [positional("a"), positional("b"), positional("c")], NOW)
    assert (first.added, first.updated, first.deleted) == (3, 0, 0)
    paused = {**positional("a", status="PAUSED"), "quality_score": {"score": "RED"}}
    with get_db(app).session() as session:
        second = store_templates(session, [paused, positional("c")], later)
    assert (second.added, second.updated, second.deleted) == (0, 1, 1)
    rows = stored(app)
    assert (rows[("a", "de")].status, rows[("a", "de")].quality) == ("paused", "red")
    assert rows[("a", "de")].updated_at == later
    # Kept, so broadcasts naming it still find it (and are refused by the check).
    assert rows[("b", "de")].status == "deleted"
    assert rows[("c", "de")].updated_at == NOW and rows[("c", "de")].synced_at == later
    with get_db(app).session() as session:
        third = store_templates(session, [positional("b", body="Neu {{1}}")], later)
        assert (third.added, third.updated, third.deleted) == (0, 1, 2)
        back = template_of(find(session, "b", "de"))  # type: ignore[arg-type]
    assert back.status == TemplateStatus.APPROVED and back.body == "Neu {{1}}"


def test_a_template_submitted_while_the_list_was_read_is_not_deleted(app: Flask) -> None:
    with get_db(app).session() as session:
        session.add(
            MessageTemplate(
                name="neu",
                language="de",
                category="utility",
                status="pending",
                components=[{"type": "BODY", "text": "Hallo"}],
                origin="submitted",
                updated_at=NOW + timedelta(seconds=5),
            )
        )
    with get_db(app).session() as session:
        assert store_templates(session, [], NOW).deleted == 0
    assert stored(app)[("neu", "de")].status == "pending"


def test_named_and_positional_parameters_survive_the_database(app: Flask) -> None:
    abholbereit = next(t for t in DEMO_TEMPLATES if t["name"] == "abholbereit")
    with get_db(app).session() as session:
        store_templates(session, [NAMED, abholbereit], NOW)
    with get_db(app).session() as session:
        named = template_of(find(session, "angebot", "de"))  # type: ignore[arg-type]
        plain = template_of(find(session, "abholbereit", "de"))  # type: ignore[arg-type]
        sent = prepare(
            session, "angebot", "de", ["Berta", "10 %", "herbst"], header={"type": "header"}
        )
    assert named == parse_template(NAMED)
    assert named.parameter_format == ParameterFormat.NAMED
    assert [(p.place, p.key, p.example) for p in named.parameters] == [
        (Place.BODY, "vorname", "Anna"),
        (Place.BODY, "rabatt", "20 %"),
        (Place.BUTTON, "1", "fruehling"),  # the part after the URL's fixed prefix
    ]
    assert named.parameters[2].button_index == 1
    assert sent[1] == {
        "type": "body",
        "parameters": [
            {"type": "text", "parameter_name": "vorname", "text": "Berta"},
            {"type": "text", "parameter_name": "rabatt", "text": "10 %"},
        ],
    }
    assert sent[2]["index"] == "1" and sent[2]["parameters"] == [{"type": "text", "text": "herbst"}]
    assert [(p.place, p.key, p.example) for p in plain.parameters] == [
        (Place.BODY, "1", "Anna"),
        (Place.BODY, "2", "4711"),
        (Place.BUTTON, "1", "4711"),
    ]
    assert plain.header_text == "Ihre Bestellung ist fertig"
    assert components(plain, ["Anna", "4711", "4711"])[0]["type"] == "body"


def test_a_url_buttons_sample_is_the_part_after_its_fixed_prefix() -> None:
    def sample(url: str, example: object) -> str | None:
        button = {"type": "URL", "text": "Link", "url": url, "example": example}
        data = {"name": "x", "components": [{"type": "BUTTONS", "buttons": [button]}]}
        return parse_template(data).parameters[0].example

    assert sample("https://shop.example/b/{{1}}", ["https://shop.example/b/4711"]) == "4711"
    assert sample("https://shop.example/b/{{1}}", "https://shop.example/b/4711") == "4711"
    # An example that does not start with the fixed part is kept whole; none stays none.
    assert sample("https://shop.example/b/{{1}}", ["4711"]) == "4711"
    assert sample("https://shop.example/b/{{1}}", []) is None


# --- the command line ---------------------------------------------------------------------------


def test_cli_sync_and_list(
    live_app: Flask, fake: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sync_module, "PAGE_SIZE", 5)
    fake.set_templates(
        [positional(f"vorlage_{i:02d}") for i in range(11)] + [positional("pausiert", "PAUSED")]
    )
    runner = live_app.test_cli_runner()
    result = runner.invoke(args=["templates", "sync"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("synced 12 templates (3 pages)")
    listed = runner.invoke(args=["templates", "list"])
    assert listed.exit_code == 0
    lines = listed.output.splitlines()
    assert lines[0].split() == ["name", "language", "category", "status"]
    assert len(lines) == 13
    assert lines[1].split() == ["pausiert", "de", "utility", "paused"]
    fake.fail_all(500, graph_error(2, "Service temporarily unavailable"))
    failed = runner.invoke(args=["templates", "sync"])
    assert failed.exit_code == 1
    assert "template sync failed: HTTP 500" in failed.output and "Traceback" not in failed.output


def test_cli_sync_without_an_account_id_says_what_to_set(database_url: str, tmp_path: Path) -> None:
    app = build_app(
        database_url,
        tmp_path,
        WHATSAPP_TOKEN=TOKEN,
        WHATSAPP_PHONE_NUMBER_ID="1",
        WHATSAPP_VERIFY_TOKEN="v",
        SECRET_KEY="s" * 32,
    )
    try:
        result = app.test_cli_runner().invoke(args=["templates", "sync"])
    finally:
        get_db(app).dispose()
    assert result.exit_code == 1
    assert "WHATSAPP_BUSINESS_ACCOUNT_ID is not set" in result.output


def test_the_account_id_must_be_numeric(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="WHATSAPP_BUSINESS_ACCOUNT_ID"):
        load({"WHATSAPP_BUSINESS_ACCOUNT_ID": "waba-12", "SECRET_KEY": "x"}, tmp_path)
    assert load({"WHATSAPP_BUSINESS_ACCOUNT_ID": WABA}, tmp_path).business_account_id == WABA
    assert load({}, tmp_path).business_account_id is None


# --- console mode -------------------------------------------------------------------------------


def test_console_mode_lists_the_demo_templates(app: Flask) -> None:
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["templates", "list"])
    assert listed.exit_code == 0
    rows = [line.split() for line in listed.output.splitlines()[1:]]
    assert ["herbstgruss", "de", "marketing", "paused"] in rows
    assert ["wieder_da", "de", "utility", "approved"] in rows
    assert len(rows) == len(DEMO_TEMPLATES)
    # Seeded once: a second listing or a sync adds nothing.
    result = sync(get_db(app), app.config["TRESEN"], NOW)
    assert result.demo and result.stored.added == 0 and result.templates == len(DEMO_TEMPLATES)
    rows_by_key = stored(app)
    assert {r.origin for r in rows_by_key.values()} == {"demo"}
    with get_db(app).session() as session:
        offer = template_of(find(session, "wochenangebot", "de"))  # type: ignore[arg-type]
        ready = template_of(find(session, "abholbereit", "de"))  # type: ignore[arg-type]
    assert offer.needs_media and [p.key for p in offer.parameters] == ["vorname", "rabatt"]
    assert [b.kind for b in ready.buttons] == ["url"]


def test_console_sync_seeds_only_an_empty_table(app: Flask) -> None:
    with get_db(app).session() as session:
        store_templates(session, [positional("eigene")], NOW)
    result = sync(get_db(app), app.config["TRESEN"], NOW)
    assert result.demo and result.stored.added == 0
    assert list(stored(app)) == [("eigene", "de")]


# --- when it runs -------------------------------------------------------------------------------


def test_daily_sync_runs_at_start_then_once_a_day_and_an_hour_after_a_failure() -> None:
    runs: list[datetime] = []
    outcomes = iter([SyncResult(templates=3), SyncResult(error="HTTP 503"), SyncResult()])

    def run(now: datetime) -> SyncResult:
        runs.append(now)
        return next(outcomes)

    daily = DailySync(run)
    assert daily(NOW) is not None  # the first pass: start
    assert daily(NOW + timedelta(hours=23, minutes=59)) is None
    assert daily(NOW + timedelta(hours=24)) is not None  # failed
    assert daily(NOW + timedelta(hours=24, minutes=59)) is None
    assert daily(NOW + timedelta(hours=25)) is not None
    assert runs == [NOW, NOW + timedelta(hours=24), NOW + timedelta(hours=25)]


def test_the_daily_sync_is_wanted_with_an_account_id_or_in_console_mode(tmp_path: Path) -> None:
    database = Database("sqlite://")
    live = {"WHATSAPP_TOKEN": "t", "WHATSAPP_PHONE_NUMBER_ID": "1", "WHATSAPP_APP_SECRET": "a"}
    live |= {"WHATSAPP_VERIFY_TOKEN": "v", "SECRET_KEY": "k"}
    assert DailySync.for_config(database, load(live, tmp_path)) is None
    with_account = load({**live, "WHATSAPP_BUSINESS_ACCOUNT_ID": WABA}, tmp_path)
    assert DailySync.for_config(database, with_account) is not None
    assert DailySync.for_config(database, load({}, tmp_path)) is not None
    database.dispose()


def test_the_scheduler_leader_runs_the_template_sync_with_its_clock(app: Flask) -> None:
    calls: list[datetime] = []
    service = SchedulerService(
        Database(get_db(app).url), clock=lambda: NOW, template_sync=calls.append
    )
    service.tend(threading.Event())
    assert calls == [NOW]
    service.database.dispose()


def test_the_scheduler_seeds_the_demo_templates_in_console_mode(app: Flask) -> None:
    database = Database(get_db(app).url)
    daily = DailySync.for_config(database, app.config["TRESEN"])
    service = SchedulerService(database, clock=lambda: NOW, template_sync=daily)
    service.tend(threading.Event())
    database.dispose()
    assert {key[0] for key in stored(app)} == {t["name"] for t in DEMO_TEMPLATES}
