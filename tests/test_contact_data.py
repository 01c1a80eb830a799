"""One customer's data, exported (GDPR Art. 15) and erased (Art. 17): on the command line and
from the contact page, with exactly their data in the ZIP and no trace of them left after
erasing beyond the opt-out the README names."""

from __future__ import annotations

import io
import json
import sqlite3
import zipfile
from collections.abc import Iterable
from contextlib import closing
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from bot import audit, broadcasts
from bot.broadcasts.content import Content
from bot.contacts.audiences import parse_audience
from bot.contacts.consent import ConsentSource, set_opt_in
from bot.contacts.erase import ERASED_SUBJECT, keeps_opt_out, scrub_notification
from bot.contacts.labels import label
from bot.db import get_db
from bot.inbound import journal, spool
from bot.inbound.receive import Arrival, Priority
from bot.media.kinds import MediaKind
from bot.media.store import get_media_store
from bot.models import (
    ApiIdempotency,
    ApiKey,
    AuditEntry,
    Base,
    ConsentEvent,
    Contact,
    Conversation,
    ConversationRead,
    HeldStatus,
    InboundNotification,
    Message,
    Note,
    Signal,
    User,
    WebhookDelivery,
)
from bot.webhooks_out import store
from tests.media_rows import PDF, PHOTO, VOICE, attach, customer_sends, shop_sent
from tests.payloads import notification
from tests.test_admin import NOW, admin, clock, csrf_of  # noqa: F401
from tests.test_team import staff_client
from tests.test_webhooks_out import ALL_EVENTS

ANNA = "4915112345678"
BERT = "4917699887766"
ANNA_NAME = "Anna Erasmus"
BERT_NAME = "Bert Bleibtreu"
ANNA_TEXT = "Annas geheime Bestellung"
BERT_TEXT = "Berts offene Frage"
ANNA_NOTE = "Anna mag gelbe Tulpen"
ANNA_LATE = "Annas spaete Nachricht"
BERT_LATE = "Berts spaete Nachricht"
# Just acknowledged: on SQLite still in the spool, which an erasure must reach too.
ANNA_NEWEST = "Annas allerneueste Nachricht"
BERT_NEWEST = "Berts allerneueste Nachricht"
ANNA_FILE = PDF + b"% Annas Rechnung\n"  # only hers
SHARED_FILE = PHOTO  # the same picture from both
BERT_FILE = VOICE  # only his
ANNA_NEEDLES = (ANNA, ANNA_NAME, ANNA_TEXT, ANNA_NOTE, ANNA_LATE, ANNA_NEWEST, "Annas Rechnung")


def key_of(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def customer(app: Flask, wa_id: str, name: str, text: str, own: bytes) -> int:
    """A customer who wrote a text, a picture they share with the other, and a file of their
    own, and got an answer; their contact id."""
    at = NOW - timedelta(hours=2)
    customer_sends(app, {"type": "text", "text": {"body": text}}, wa_id=wa_id, name=name, at=at)
    shared = customer_sends(
        app,
        {"type": "image", "image": {"id": f"m-{wa_id}", "mime_type": "image/png"}},
        wa_id=wa_id,
        name=name,
        at=at + timedelta(minutes=1),
    )
    attach(app, shared, MediaKind.IMAGE, SHARED_FILE, "image/png")
    with get_db(app).session() as session:
        contact = session.scalars(select(Contact).where(Contact.wa_id == wa_id)).one()
        cid = contact.id
    own_id = shop_sent(app, cid, "document", caption=f"{text} (Rechnung)", at=at)
    attach(app, own_id, MediaKind.DOCUMENT, own, "application/pdf", filename=f"{name}.pdf")
    with get_db(app).session() as session:
        message = session.get_one(Message, own_id)
        message.wamid = f"wamid.OUT-{wa_id}"
        contact = session.get_one(Contact, cid)
        contact.labels = [label(session, "Stammkunde")]
        set_opt_in(session, contact, True, ConsentSource.IMPORT, NOW - timedelta(days=3))
    return cid


def everything_about(app: Flask, cid: int, wa_id: str, name: str, note: str) -> None:
    """Notes, the team's handling, read marks, signals, held statuses and audit entries."""
    with get_db(app).session() as session:
        owner = session.scalars(select(User.id)).first()
        assert owner is not None
        session.add(Note(contact_id=cid, user_name="owner", text=note, created_at=NOW))
        session.add(Conversation(contact_id=cid, state="waiting"))
        session.add(ConversationRead(user_id=owner, contact_id=cid, read_up_to=1))
        session.add(
            Signal(
                contact_id=cid, kind="read", wamid=f"wamid.IN-{wa_id}", state="sent", created_at=NOW
            )
        )
        session.add(HeldStatus(wamid=f"wamid.OUT-{wa_id}", status="read", at=NOW))
        # A shop system's send through the API, its answer kept for the Idempotency-Key.
        key = ApiKey(name=f"shop {cid}", prefix="tr_x", key_hash=key_of(wa_id.encode()), scopes=[])
        session.add(key)
        session.flush()
        session.add(
            ApiIdempotency(
                api_key_id=key.id,
                idempotency_key=f"order-{wa_id}",
                request_hash="0" * 64,
                status_code=202,
                response={"to": wa_id, "status": "queued"},
            )
        )
        audit.record(
            session,
            audit.Actor(owner, "owner"),
            audit.Action.CONTACT_CHANGED,
            NOW,
            subject=f"contact:{cid}",
            after=name,
        )


def both_in_one(anna_text: str, bert_text: str) -> bytes:
    """A notification holding a message of each."""
    doc = notification({"type": "text", "text": {"body": anna_text}}, wa_id=ANNA, name=ANNA_NAME)
    other = notification({"type": "text", "text": {"body": bert_text}}, wa_id=BERT, name=BERT_NAME)
    value = doc["entry"][0]["changes"][0]["value"]
    more = other["entry"][0]["changes"][0]["value"]
    value["messages"] += more["messages"]
    value["contacts"] += more["contacts"]
    return json.dumps(doc).encode()


def journal_both(app: Flask) -> None:
    """A notification that failed and one just acknowledged, each holding a message of each."""
    newest = both_in_one(ANNA_NEWEST, BERT_NEWEST)
    journal.record(get_db(app), newest, Arrival(Priority.MESSAGES, NOW), NOW)
    body = both_in_one(ANNA_LATE, BERT_LATE)
    with get_db(app).session() as session:
        session.add(
            InboundNotification(
                digest=key_of(body),
                body=body,
                received_at=NOW,
                priority=0,
                sort_at=NOW,
                state="failed",
                error="test",
            )
        )


@pytest.fixture
def two(app: Flask, admin: FlaskClient) -> tuple[int, int]:  # noqa: F811
    # A shop system told of everything: its deliveries repeat each customer's data.
    with get_db(app).session() as session:
        store.create_endpoint(session, "https://shop.example/hook", ALL_EVENTS, by=None, now=NOW)
    anna = customer(app, ANNA, ANNA_NAME, ANNA_TEXT, ANNA_FILE)
    bert = customer(app, BERT, BERT_NAME, BERT_TEXT, BERT_FILE)
    everything_about(app, anna, ANNA, ANNA_NAME, ANNA_NOTE)
    everything_about(app, bert, BERT, BERT_NAME, "Bert zahlt bar")
    journal_both(app)
    return anna, bert


def all_rows(app: Flask) -> dict[str, list[str]]:
    """Every value of every row of every table, as text, by table; "spool": SQLite's spool."""
    found: dict[str, list[str]] = {}

    def add(table: str, row: Iterable[Any]) -> None:
        for value in row:
            if isinstance(value, bytes | memoryview):
                value = bytes(value).decode("utf-8", "replace")
            elif not isinstance(value, str):
                value = json.dumps(value, default=str, ensure_ascii=False)
            found.setdefault(table, []).append(value)

    database = get_db(app)
    with database.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                add(table.name, row)
    path = spool.path_of(database.url)
    if path is not None and path.exists():
        with closing(sqlite3.connect(path)) as conn:
            for row in conn.execute("SELECT * FROM spooled"):
                add("spool", row)
    return found


def traces(app: Flask, needles: tuple[str, ...]) -> dict[str, set[str]]:
    return {
        table: hits
        for table, values in all_rows(app).items()
        if (hits := {n for n in needles for v in values if n in v})
    }


# --- export -----------------------------------------------------------------------------------


def test_the_export_holds_exactly_that_customers_data_and_media(
    app: Flask, two: tuple[int, int], tmp_path: Path
) -> None:
    out = tmp_path / "anna.zip"
    result = app.test_cli_runner().invoke(
        args=["contacts", "export", "+49 151 12345678", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert result.output == f"{out}: 3 messages, 2 media files\n"
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        doc = json.loads(archive.read("contact.json"))
        files = {n: archive.read(n) for n in names if n != "contact.json"}
        every = b"".join(archive.read(n) for n in names).decode("utf-8", "replace")
    assert doc["contact"]["wa_id"] == ANNA
    assert doc["contact"]["name"] == ANNA_NAME
    assert doc["contact"]["labels"] == ["Stammkunde"]
    assert doc["opt_in"]["opted_in"] is True
    assert [(e["opted_in"], e["source"]) for e in doc["consent_events"]] == [(True, "import")]
    assert doc["conversation"]["state"] == "waiting"
    assert [n["text"] for n in doc["notes"]] == [ANNA_NOTE]
    texts = [m["text"] for m in doc["messages"]]
    assert ANNA_TEXT in texts and f"{ANNA_TEXT} (Rechnung)" in texts
    sent = next(m for m in doc["messages"] if m["direction"] == "out")
    assert sent["status"] == "delivered" and sent["delivered_at"] and sent["sent_at"]
    listed = {m["media"]["file"]: m["media"]["sha256"] for m in doc["messages"] if m["media"]}
    assert set(listed) == set(files) == names - {"contact.json"}
    assert sorted(files.values()) == sorted([ANNA_FILE, SHARED_FILE])
    assert all(key_of(files[path]) == key for path, key in listed.items())
    assert any(path.endswith("Anna_Erasmus.pdf") for path in files)
    for other in (BERT, BERT_NAME, BERT_TEXT, "Bert zahlt bar", BERT_LATE):
        assert other not in every
    assert BERT_FILE not in files.values()


def test_export_and_erase_of_an_unknown_number_fail_with_one_line(app: Flask) -> None:
    runner = app.test_cli_runner()
    for args in (
        ["export", "4915199999999", "--out", "x.zip"],
        ["erase", "4915199999999", "--yes"],
    ):
        result = runner.invoke(args=["contacts", *args])
        assert result.exit_code == 1
        assert result.output == "Error: no contact 4915199999999\n"


# --- erase ------------------------------------------------------------------------------------


def test_erase_leaves_no_trace_and_keeps_what_others_use(app: Flask, two: tuple[int, int]) -> None:
    anna, bert = two
    spooled = {"spool"} if get_db(app).dialect == "sqlite" else set()
    assert set(traces(app, ANNA_NEEDLES)) >= {
        "contacts",
        "messages",
        "notes",
        "audit_entries",
        "inbound_notifications",
        "api_idempotency",
        "webhook_deliveries",
        *spooled,
    }
    before_bert = traces(app, (BERT, BERT_NAME, BERT_TEXT, BERT_LATE, BERT_NEWEST))
    result = app.test_cli_runner().invoke(args=["contacts", "erase", ANNA, "--yes"])
    assert result.exit_code == 0, result.output
    assert result.output == f"{ANNA}: erased 3 messages, 1 media files; nothing kept\n"
    assert traces(app, ANNA_NEEDLES) == {}
    with get_db(app).session() as session:
        assert session.get(Contact, anna) is None
        for model in (ConsentEvent, Note, Conversation, ConversationRead, Signal, WebhookDelivery):
            assert not session.scalars(select(model).where(model.contact_id == anna)).all()  # type: ignore[attr-defined]
        subjects = set(session.scalars(select(AuditEntry.subject)))
        assert f"contact:{anna}" not in subjects and ERASED_SUBJECT in subjects
        (erased,) = session.scalars(
            select(AuditEntry).where(AuditEntry.action == audit.Action.CONTACT_ERASED)
        )
        assert erased.user_id is None and erased.subject is None
    keys = set(get_media_store(app).keys())
    assert key_of(ANNA_FILE) not in keys
    assert {key_of(SHARED_FILE), key_of(BERT_FILE)} <= keys
    # Bert is untouched, and his message in the shared notification is still to be processed.
    assert traces(app, (BERT, BERT_NAME, BERT_TEXT, BERT_LATE, BERT_NEWEST)) == before_bert
    with get_db(app).session() as session:
        assert session.get(Contact, bert) is not None


def test_an_opted_out_customer_stays_an_opt_out_only(
    app: Flask, two: tuple[int, int], tmp_path: Path
) -> None:
    anna, _ = two
    with get_db(app).session() as session:
        contact = session.get_one(Contact, anna)
        set_opt_in(session, contact, False, ConsentSource.KEYWORD, NOW - timedelta(hours=1))
    runner = app.test_cli_runner()
    result = runner.invoke(args=["contacts", "erase", ANNA, "--yes"])
    assert result.exit_code == 0, result.output
    assert result.output.endswith("kept as an opt-out (number and consent record only)\n")
    # The documented minimum: the number in the contacts row, nothing else anywhere.
    assert traces(app, ANNA_NEEDLES) == {"contacts": {ANNA}}
    with get_db(app).session() as session:
        kept = session.get_one(Contact, anna)
        assert (kept.wa_id, kept.name, kept.profile_name, kept.opted_in) == (
            ANNA,
            None,
            None,
            False,
        )
        assert kept.erased_at == NOW and kept.labels == []
        events = session.scalars(
            select(ConsentEvent.opted_in).where(ConsentEvent.contact_id == anna)
        )
        assert list(events) == [True, False]
    # An old file imports her again as opted in: skipped whole.
    csv = tmp_path / "alt.csv"
    csv.write_text(f"wa_id,name,labels,opted_in\n{ANNA},{ANNA_NAME},Stammkunde,true\n")
    result = runner.invoke(args=["contacts", "import", str(csv)])
    assert result.exit_code == 0, result.output
    assert "1 erased numbers that opted out skipped" in result.output
    with get_db(app).session() as session:
        kept = session.get_one(Contact, anna)
        assert (kept.name, kept.opted_in) == (None, False)
    # And a broadcast to everyone does not reach her.
    with get_db(app).session() as session:
        b = broadcasts.create(
            session,
            Content(template="weekly_offer", language="de"),
            parse_audience("all"),
            timezone="Europe/Berlin",
            now=NOW,
        )
        run_id = broadcasts.start_run(session, b.id, NOW, NOW)
    assert run_id is not None
    broadcasts.write_run(get_db(app), run_id, clock=lambda: NOW)
    with get_db(app).session() as session:
        reached = set(
            session.scalars(select(Message.contact_id).where(Message.broadcast_run_id == run_id))
        )
    assert anna not in reached and reached


def test_erase_asks_first(app: Flask, two: tuple[int, int]) -> None:
    anna, _ = two
    runner = app.test_cli_runner()
    result = runner.invoke(args=["contacts", "erase", ANNA], input="n\n")
    assert result.exit_code == 1
    assert result.output == f"Erase all data of {ANNA}? [y/N]: n\nAborted!\n"
    with get_db(app).session() as session:
        assert session.get(Contact, anna) is not None
    result = runner.invoke(args=["contacts", "erase", ANNA], input="y\n")
    assert result.exit_code == 0, result.output
    with get_db(app).session() as session:
        assert session.get(Contact, anna) is None


def test_a_notification_loses_only_that_customers_entries() -> None:
    doc = notification({"type": "text", "text": {"body": "a"}}, wa_id=ANNA)
    value = doc["entry"][0]["changes"][0]["value"]
    value["messages"].append({"from": BERT, "type": "text", "text": {"body": "b"}})
    value["statuses"] = [{"recipient_id": ANNA, "status": "read"}]
    scrubbed, changed = scrub_notification(doc, frozenset({ANNA}))
    assert changed
    assert [m["from"] for m in value["messages"]] == [BERT]
    assert value["contacts"] == [] and value["statuses"] == []
    assert scrub_notification(scrubbed, frozenset({ANNA})) == (scrubbed, False)


def test_only_a_recorded_opt_out_is_kept() -> None:
    assert keeps_opt_out(False, [(NOW, True), (NOW, False)])
    assert not keeps_opt_out(False, [])  # never asked: nothing to honour
    assert not keeps_opt_out(True, [(NOW, False), (NOW, True)])


# --- the contact page -------------------------------------------------------------------------


def test_the_owner_downloads_a_customers_data_and_staff_may_not(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
    two: tuple[int, int],
) -> None:
    anna, _ = two
    page = admin.get(f"/admin/contacts/{anna}").get_data(as_text=True)
    assert f"/admin/contacts/{anna}/data.zip" in page
    answer = admin.get(f"/admin/contacts/{anna}/data.zip")
    assert answer.status_code == 200 and answer.mimetype == "application/zip"
    assert f"filename={ANNA}-2026-03-11.zip" in answer.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(answer.data)) as archive:
        assert json.loads(archive.read("contact.json"))["contact"]["wa_id"] == ANNA
    with get_db(app).session() as session:
        entry = session.scalars(
            select(AuditEntry).where(AuditEntry.action == audit.Action.CONTACT_DATA_EXPORTED)
        ).one()
        assert (entry.user_name, entry.subject) == ("owner", f"contact:{anna}")
    staff = staff_client(app)
    assert f"/admin/contacts/{anna}/data.zip" not in staff.get(f"/admin/contacts/{anna}").get_data(
        as_text=True
    )
    assert staff.get(f"/admin/contacts/{anna}/data.zip").status_code == 403
    assert staff.get(f"/admin/contacts/{anna}/erase").status_code == 403


def test_the_owner_erases_after_typing_the_number(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
    two: tuple[int, int],
) -> None:
    anna, _ = two
    page = admin.get(f"/admin/contacts/{anna}/erase").get_data(as_text=True)
    csrf = csrf_of(page)
    wrong = admin.post(
        f"/admin/contacts/{anna}/erase", data={"csrf_token": csrf, "confirm_number": "0151 1"}
    )
    assert wrong.status_code == 200
    with get_db(app).session() as session:
        assert session.get(Contact, anna) is not None
    no_csrf = admin.post(f"/admin/contacts/{anna}/erase", data={"confirm_number": ANNA})
    assert no_csrf.status_code == 400
    done = admin.post(
        f"/admin/contacts/{anna}/erase",
        data={"csrf_token": csrf, "confirm_number": "+49 151 1234 5678"},
    )
    assert done.status_code == 302 and done.headers["Location"].endswith("/admin/contacts")
    assert traces(app, ANNA_NEEDLES) == {}
    with get_db(app).session() as session:
        entry: Any = session.scalars(
            select(AuditEntry).where(AuditEntry.action == audit.Action.CONTACT_ERASED)
        ).one()
        assert entry.user_name == "owner" and entry.subject is None
