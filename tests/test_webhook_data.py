"""Whatever a customer or Meta puts into a notification is stored as data: PostgreSQL refuses
some values SQLite takes (NUL, lone surrogates, over-long strings, huge numbers), and none of
them may turn into a 503 that Meta repeats for a week, nor cost the other events of its batch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, text

from bot import create_app
from bot.db import get_db
from bot.models import Contact, Message
from bot.outbound import outbox
from bot.settings.stored import save_settings
from tests.conftest import PYWA_UPDATES, load_json, make_env, post_notification
from tests.fakegraph import FakeGraph, Reply, graph_error
from tests.payloads import notification, status_notification
from tests.test_autoreply import SHOP, SUNDAY_EVENING, at
from tests.test_dispatcher import TOKEN, Running, queue, rows, settled, wait_until
from tests.test_webhook import sent_reply

OURS = "106540352242922"  # the phone_number_id of tests.payloads' notifications
OTHER = "200000000000001"  # a second number of the same app


@pytest.fixture
def shop(app: Flask) -> Flask:
    """Closed now, so every new message gets the away reply."""
    with get_db(app).session() as session:
        save_settings(session, SHOP)
    at(app, SUNDAY_EVENING)
    return app


def customer_says(
    body: str, *, wamid: str, wa_id: str = "4915112345678", name: str = "Anna"
) -> dict[str, Any]:
    doc = notification(
        {"type": "text", "text": {"body": body}, "id": wamid}, wa_id=wa_id, name=name
    )
    message = doc["entry"][0]["changes"][0]["value"]["messages"][0]
    message["timestamp"] = str(int(SUNDAY_EVENING.timestamp()))
    return doc


def batch(*docs: dict[str, Any]) -> dict[str, Any]:
    """One notification carrying the messages (and contacts) of several."""
    first = docs[0]
    value = first["entry"][0]["changes"][0]["value"]
    for doc in docs[1:]:
        other = doc["entry"][0]["changes"][0]["value"]
        value["messages"] += other["messages"]
        value["contacts"] += other["contacts"]
    return first


def inbound(app: Flask) -> list[Message]:
    with get_db(app).session() as session:
        query = select(Message).where(Message.direction == "in").order_by(Message.id)
        return list(session.scalars(query))


def replies(app: Flask) -> list[Message]:
    with get_db(app).session() as session:
        query = select(Message).where(Message.direction == "out").order_by(Message.id)
        return list(session.scalars(query))


def contacts(app: Flask) -> list[Contact]:
    with get_db(app).session() as session:
        return list(session.scalars(select(Contact).order_by(Contact.id)))


# --- characters no PostgreSQL text can hold ----------------------------------------------------


def test_a_text_with_a_nul_character_is_stored_and_answered(
    shop: Flask, client: FlaskClient
) -> None:
    doc = customer_says("Hallo\u0000 Welt", wamid="wamid.NUL")
    assert post_notification(client, doc).status_code == 200
    [message] = inbound(shop)
    assert message.text == "Hallo\ufffd Welt"
    assert message.raw is not None and message.raw["text"]["body"] == "Hallo\ufffd Welt"
    assert [r.rule for r in replies(shop)] == ["away"]


def test_lone_surrogates_in_a_text_and_a_name_are_stored(shop: Flask, client: FlaskClient) -> None:
    # json.dumps writes a lone surrogate as the escape "\ud800", as a sender could.
    doc = customer_says("caf\ud800!", wamid="wamid.SURROGATE", name="Jo\udfff")
    assert post_notification(client, doc).status_code == 200
    [message] = inbound(shop)
    assert message.text == "caf\ufffd!"
    assert [c.name for c in contacts(shop)] == ["Jo\ufffd"]
    assert [r.rule for r in replies(shop)] == ["away"]


def test_an_emoji_written_as_a_surrogate_pair_stays_whole(shop: Flask, client: FlaskClient) -> None:
    doc = customer_says("Hallo \U0001f337", wamid="wamid.PAIR")
    assert b"\\ud83c\\udf37" in json.dumps(doc).encode()  # as JSON writers may
    assert post_notification(client, doc).status_code == 200
    assert [m.text for m in inbound(shop)] == ["Hallo \U0001f337"]


# --- values longer or larger than a column -------------------------------------------------------


def test_a_business_scoped_user_id_of_131_characters_is_stored(
    shop: Flask, client: FlaskClient
) -> None:
    """Two letters, a dot and up to 128 characters: the longest valid one fits."""
    user_id = "DE." + "7" * 128
    doc = customer_says("Hallo", wamid="wamid.BSUID")
    doc["entry"][0]["changes"][0]["value"]["contacts"][0]["user_id"] = user_id
    assert post_notification(client, doc).status_code == 200
    assert [(c.wa_id, c.user_id) for c in contacts(shop)] == [("4915112345678", user_id)]
    assert [r.rule for r in replies(shop)] == ["away"]


def test_a_user_id_longer_than_any_valid_one_is_left_out(shop: Flask, client: FlaskClient) -> None:
    """The message is stored and the contact kept by phone number; the id cannot key it."""
    doc = customer_says("Hallo", wamid="wamid.LONGUSER")
    doc["entry"][0]["changes"][0]["value"]["contacts"][0]["user_id"] = "DE." + "7" * 1000
    assert post_notification(client, doc).status_code == 200
    assert [(c.wa_id, c.user_id) for c in contacts(shop)] == [("4915112345678", None)]
    assert [m.wamid for m in inbound(shop)] == ["wamid.LONGUSER"]


def test_a_profile_name_of_300_characters_is_shortened(shop: Flask, client: FlaskClient) -> None:
    name = "Ä" * 300
    doc = customer_says("Hallo", wamid="wamid.LONGNAME", name=name)
    assert post_notification(client, doc).status_code == 200
    [contact] = contacts(shop)
    assert contact.name is not None and name.startswith(contact.name.rstrip("…"))
    assert 200 < len(contact.name) <= 256
    assert [r.rule for r in replies(shop)] == ["away"]


def test_a_number_too_large_for_a_float_is_stored(shop: Flask, client: FlaskClient) -> None:
    doc = customer_says("Hallo", wamid="wamid.HUGEFLOAT")
    body = json.dumps(doc).encode().replace(b'"Hallo"', b'"Hallo", "x": 1e999', 1)
    assert post_notification(client, body).status_code == 200
    [message] = inbound(shop)
    assert message.text == "Hallo"
    assert [r.rule for r in replies(shop)] == ["away"]


def test_a_failed_status_with_a_huge_error_code_is_recorded(
    app: Flask, client: FlaskClient
) -> None:
    sent_reply(app, "wamid.OUT")
    code = 2**40
    error = {"code": code, "title": "Something\u0000 new", "error_data": {"details": "x" * 5000}}
    doc = status_notification("wamid.OUT", "failed", 1_800_000_000, errors=[error])
    assert post_notification(client, doc).status_code == 200
    [message] = replies(app)
    assert message.status == "failed"
    assert message.error_reason is not None and message.error_reason.startswith(str(code))
    assert "\u0000" not in message.error_reason
    assert message.error_code is None  # not a code any column holds: it is in the reason


def test_a_held_status_with_a_huge_error_code_is_recorded(app: Flask, client: FlaskClient) -> None:
    """A status for a wamid not recorded yet is held: its error is stored there."""
    error = {"code": -(2**63), "title": "Unknown"}
    doc = status_notification("wamid.NOT-YET", "failed", 1_800_000_000, errors=[error])
    assert post_notification(client, doc).status_code == 200
    sent_reply(app, "wamid.NOT-YET")
    with get_db(app).session() as session:
        outbox.reconcile_held(session)
    [message] = replies(app)
    assert message.status == "failed"
    assert message.error_reason is not None and str(-(2**63)) in message.error_reason


@pytest.fixture
def graph() -> Iterator[FakeGraph]:
    with FakeGraph(token=TOKEN) as fake:
        yield fake


def test_a_graph_answer_with_a_huge_error_code_fails_the_message_with_its_reason(
    app: Flask, graph: FakeGraph
) -> None:
    code = 2**40
    graph.script([Reply(400, graph_error(code, f"(#{code}) Neu\u0000", "Mehr\u0000"))])
    queue(app, 1)
    with Running(app, graph):
        wait_until(lambda: settled(app))
    [message] = rows(app)
    assert message.status == "failed"
    assert message.error_code is None
    assert message.error_reason is not None and message.error_reason.startswith(str(code))
    assert "\u0000" not in message.error_reason


# --- one bad event in a batch ---------------------------------------------------------------------


def test_a_message_with_an_id_too_long_to_key_leaves_the_rest_of_its_batch(
    shop: Flask, client: FlaskClient
) -> None:
    doc = batch(
        customer_says("Erste", wamid="wamid.GOOD1"),
        customer_says("Kaputt", wamid="wamid." + "A" * 1000, wa_id="4915100000002"),
        customer_says("Dritte", wamid="wamid.GOOD3", wa_id="4915100000003"),
    )
    assert post_notification(client, doc).status_code == 200
    assert [m.wamid for m in inbound(shop)] == ["wamid.GOOD1", "wamid.GOOD3"]
    assert len(replies(shop)) == 2


def test_a_message_of_a_wrong_shape_leaves_the_rest_of_its_batch(
    shop: Flask, client: FlaskClient
) -> None:
    bad = customer_says("Kaputt", wamid="wamid.BAD", wa_id="4915100000002")
    bad["entry"][0]["changes"][0]["value"]["messages"][0]["text"] = {"body": 42}
    doc = batch(customer_says("Erste", wamid="wamid.GOOD1"), bad)
    assert post_notification(client, doc).status_code == 200
    assert [m.wamid for m in inbound(shop)] == ["wamid.GOOD1"]
    assert len(replies(shop)) == 1


@pytest.fixture
def refusing(shop: Flask) -> Iterator[Flask]:
    """A database that refuses one message's text with a data error, whatever the reason: the
    case no cleaning foresaw."""
    engine = get_db(shop).engine
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(
                text(
                    "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN "
                    "IF NEW.text = 'poison' THEN RAISE EXCEPTION 'refused' "
                    "USING ERRCODE = 'data_exception'; END IF; RETURN NEW; END $$ "
                    "LANGUAGE plpgsql"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_poison BEFORE INSERT ON messages "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_poison BEFORE INSERT ON messages "
                    "WHEN NEW.text = 'poison' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
    yield shop


def test_a_message_the_database_refuses_leaves_the_rest_of_its_batch(
    refusing: Flask, client: FlaskClient
) -> None:
    doc = batch(
        customer_says("Erste", wamid="wamid.GOOD1"),
        customer_says("poison", wamid="wamid.POISON", wa_id="4915100000002"),
        customer_says("Dritte", wamid="wamid.GOOD3", wa_id="4915100000003"),
    )
    assert post_notification(client, doc).status_code == 200
    assert [m.wamid for m in inbound(refusing)] == ["wamid.GOOD1", "wamid.GOOD3"]
    assert len(replies(refusing)) == 2
    # Delivered again, the good ones are not stored twice, and the refused one stays refused.
    assert post_notification(client, doc).status_code == 200
    assert len(inbound(refusing)) == 2


def test_the_database_down_still_answers_503(tmp_path: Path) -> None:
    env = make_env("postgresql://postgres@127.0.0.1:1/nothing-here")
    app = create_app(env, instance_path=tmp_path / "instance")
    doc = customer_says("Hallo", wamid="wamid.DOWN")
    assert post_notification(app.test_client(), doc).status_code == 503


# --- a second phone number on the same app -----------------------------------------------------


@pytest.fixture
def two_numbers(database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """A server for the number OURS, on an app that has a second number too."""
    env = make_env(database_url, WHATSAPP_PHONE_NUMBER_ID=OURS)
    app = create_app(env, instance_path=tmp_path / "instance")
    get_db(app).upgrade()
    with get_db(app).session() as session:
        save_settings(session, SHOP)
    at(app, SUNDAY_EVENING)
    yield app
    get_db(app).dispose()


def to_number(doc: dict[str, Any], phone_number_id: str) -> dict[str, Any]:
    doc["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = phone_number_id
    return doc


def test_a_message_to_another_number_is_stored_and_not_answered(two_numbers: Flask) -> None:
    client = two_numbers.test_client()
    doc = to_number(customer_says("Hallo", wamid="wamid.OTHER"), OTHER)
    assert post_notification(client, doc).status_code == 200
    [message] = inbound(two_numbers)
    assert (message.wamid, message.phone_number_id) == ("wamid.OTHER", OTHER)
    assert replies(two_numbers) == []
    # The same customer writing to our number is answered as ever.
    ours = to_number(customer_says("Hallo", wamid="wamid.OURS"), OURS)
    assert post_notification(client, ours).status_code == 200
    assert [(m.wamid, m.phone_number_id) for m in inbound(two_numbers)] == [
        ("wamid.OTHER", OTHER),
        ("wamid.OURS", OURS),
    ]
    assert [r.rule for r in replies(two_numbers)] == ["away"]


def test_a_stop_word_to_another_number_changes_nothing_here(two_numbers: Flask) -> None:
    client = two_numbers.test_client()
    with get_db(two_numbers).session() as session:
        session.add(Contact(wa_id="4915112345678", name="Anna", opted_in=True))
    doc = to_number(customer_says("STOP", wamid="wamid.OTHERSTOP"), OTHER)
    assert post_notification(client, doc).status_code == 200
    [contact] = contacts(two_numbers)
    assert contact.opted_in is True
    assert replies(two_numbers) == []


def test_a_marketing_stop_for_another_number_changes_nothing_here(two_numbers: Flask) -> None:
    """The customer stopped the other number's offers inside WhatsApp, not ours."""
    client = two_numbers.test_client()
    doc = load_json(PYWA_UPDATES / "user_marketing_preferences.json")["resume"]
    pref = doc["entry"][0]["changes"][0]["value"]["user_preferences"][0]
    with get_db(two_numbers).session() as session:
        session.add(Contact(wa_id=pref["wa_id"], name="Anna", opted_in=True))
    pref["value"] = "stop"
    assert post_notification(client, to_number(doc, OTHER)).status_code == 200
    [contact] = contacts(two_numbers)
    assert contact.opted_in is True
    assert post_notification(client, to_number(doc, OURS)).status_code == 200
    [contact] = contacts(two_numbers)
    assert contact.opted_in is False


def test_a_status_of_another_numbers_message_changes_nothing(two_numbers: Flask) -> None:
    doc = to_number(status_notification("wamid.THEIRS", "read", 1_800_000_000), OTHER)
    assert post_notification(two_numbers.test_client(), doc).status_code == 200
    assert inbound(two_numbers) == replies(two_numbers) == []


def test_without_a_configured_number_every_number_is_answered(
    shop: Flask, client: FlaskClient
) -> None:
    """Console mode may run without WHATSAPP_PHONE_NUMBER_ID: then no number is another's."""
    doc = to_number(customer_says("Hallo", wamid="wamid.ANY"), OTHER)
    assert post_notification(client, doc).status_code == 200
    assert [m.phone_number_id for m in inbound(shop)] == [OTHER]
    assert [r.rule for r in replies(shop)] == ["away"]
