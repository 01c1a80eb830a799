"""Auto-replies end to end through the webhook: the rule's reply is queued with the message."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from bot.contacts.consent import set_opt_in
from bot.db import get_db
from bot.models import Business, ConsentEvent, Contact, Message
from bot.settings.stored import BUSINESS_ID, save_settings
from tests.conftest import post_notification
from tests.payloads import notification

SHOP = """\
business:
  name: Blumen Müller
  timezone: Europe/Berlin
  locale: de_DE
hours:
  mon: ["09:00-12:30", "14:00-18:00"]
  tue: ["09:00-18:00"]
  wed: ["09:00-18:00"]
  thu: ["09:00-18:00"]
  fri: ["09:00-18:00"]
  sat: ["10:00-14:00"]
public_holidays: {country: DE, subdivision: BY}
replies:
  keywords:
    - {match: ["öffnungszeiten", "hours"], template: hours}
  away: {template: away, cooldown_hours: 12}
  greeting: {template: greeting, after_inactive_days: 14}
templates:
  away: "Hallo {{ contact.name }}, wir sind ab {{ next_open | format_datetime('EEEE, HH:mm') }} wieder da."
  greeting: "Willkommen bei {{ business.name }}!"
"""

SUNDAY_EVENING = datetime(2026, 11, 29, 19, 0, tzinfo=UTC)  # 20:00 in Berlin, closed
TUESDAY_MORNING = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)  # 10:30 in Berlin, open


@pytest.fixture
def shop(app: Flask) -> Flask:
    with get_db(app).session() as session:
        save_settings(session, SHOP)
    return app


def at(app: Flask, instant: datetime) -> None:
    app.config["TRESEN_CLOCK"] = lambda: instant


def say(client: FlaskClient, text: str | None, when: datetime, **kwargs: Any) -> Any:
    msg = {"type": "text", "text": {"body": text}} if text is not None else kwargs.pop("msg")
    doc = notification(msg, **kwargs)
    doc["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = str(int(when.timestamp()))
    assert post_notification(client, doc).status_code == 200
    return doc


def replies(app: Flask) -> list[Message]:
    with get_db(app).session() as session:
        query = select(Message).where(Message.direction == "out").order_by(Message.id)
        return list(session.scalars(query))


def test_closed_gets_the_away_message_once_per_cooldown(shop: Flask, client: FlaskClient) -> None:
    at(shop, SUNDAY_EVENING)
    say(client, "Hallo, habt ihr Rosen?", SUNDAY_EVENING, name="Anna")
    say(client, "Und Tulpen?", SUNDAY_EVENING)
    [reply] = replies(shop)
    assert reply.rule == "away"
    assert reply.text == "Hallo Anna, wir sind ab Montag, 09:00 wieder da."
    assert reply.status == "queued"
    assert reply.payload == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "4915112345678",
        "type": "text",
        "text": {"body": reply.text, "preview_url": False},
    }
    # Monday 09:00, open: no greeting, since Anna wrote less than 14 days ago.
    later = SUNDAY_EVENING + timedelta(hours=13)
    at(shop, later)
    say(client, "Seid ihr da?", later)
    assert len(replies(shop)) == 1


def test_cooldown_over_while_still_closed_sends_away_again(
    shop: Flask, client: FlaskClient
) -> None:
    saturday_night = datetime(2026, 11, 28, 20, 0, tzinfo=UTC)
    at(shop, saturday_night)
    say(client, "Hallo", saturday_night)
    sunday_noon = saturday_night + timedelta(hours=15)
    at(shop, sunday_noon)
    say(client, "Hallo?", sunday_noon)
    assert [r.rule for r in replies(shop)] == ["away", "away"]


def test_keyword_beats_away(shop: Flask, client: FlaskClient) -> None:
    at(shop, SUNDAY_EVENING)
    say(client, "ÖFFNUNGSZEITEN?", SUNDAY_EVENING)
    [reply] = replies(shop)
    assert reply.rule == "keyword"
    assert "Montag" in (reply.text or "")


def test_stop_opts_out_and_confirms(shop: Flask, client: FlaskClient) -> None:
    at(shop, TUESDAY_MORNING)
    with get_db(shop).session() as session:
        session.add(Contact(wa_id="4915112345678", name="Anna", opted_in=True))
    say(client, " Stop! ", TUESDAY_MORNING)
    [reply] = replies(shop)
    assert reply.rule == "optout"
    with get_db(shop).session() as session:
        contact = session.scalars(select(Contact)).one()
        assert contact.opted_in is False
        assert contact.opted_in_source == "keyword"


def test_new_contact_gets_a_greeting_when_open(shop: Flask, client: FlaskClient) -> None:
    at(shop, TUESDAY_MORNING)
    say(client, "Guten Morgen", TUESDAY_MORNING)
    say(client, "Ich hätte gern einen Strauß", TUESDAY_MORNING)
    assert [(r.rule, r.text) for r in replies(shop)] == [
        ("greeting", "Willkommen bei Blumen Müller!")
    ]


def test_an_image_outside_hours_gets_the_away_message(shop: Flask, client: FlaskClient) -> None:
    at(shop, SUNDAY_EVENING)
    image = {"type": "image", "image": {"id": "1479537139650973", "mime_type": "image/jpeg"}}
    say(client, None, SUNDAY_EVENING, msg=image)
    assert [r.rule for r in replies(shop)] == ["away"]


def test_reactions_and_old_messages_get_no_reply(shop: Flask, client: FlaskClient) -> None:
    at(shop, SUNDAY_EVENING)
    reaction = {"type": "reaction", "reaction": {"message_id": "wamid.HBgL", "emoji": "👍"}}
    say(client, None, SUNDAY_EVENING, msg=reaction)
    say(client, "Hallo", SUNDAY_EVENING - timedelta(hours=25), wa_id="4915199999999")
    assert replies(shop) == []


def test_redelivery_queues_no_second_reply(shop: Flask, client: FlaskClient) -> None:
    at(shop, SUNDAY_EVENING)
    doc = say(client, "Hallo", SUNDAY_EVENING)
    assert post_notification(client, doc).status_code == 200
    assert len(replies(shop)) == 1


def test_without_settings_nothing_is_queued(app: Flask, client: FlaskClient) -> None:
    at(app, SUNDAY_EVENING)
    say(client, "Hallo", SUNDAY_EVENING)
    assert replies(app) == []


def test_a_sender_id_meta_would_refuse_gets_stored_without_a_reply(
    shop: Flask, client: FlaskClient
) -> None:
    at(shop, SUNDAY_EVENING)
    say(client, "Hallo", SUNDAY_EVENING, wa_id="not-a-number")
    assert replies(shop) == []
    with get_db(shop).session() as session:
        assert session.scalars(select(Contact.wa_id)).all() == ["not-a-number"]


def test_redelivery_changes_neither_the_contact_nor_the_queue(
    shop: Flask, client: FlaskClient
) -> None:
    at(shop, SUNDAY_EVENING)
    doc = say(client, "Hallo", SUNDAY_EVENING, name="Anna")
    with get_db(shop).session() as session:
        before = session.execute(select(Contact.unread, Contact.last_message_at)).one()
    at(shop, SUNDAY_EVENING + timedelta(hours=13))  # past the cooldown: a new message would
    assert post_notification(client, doc).status_code == 200  # get the away reply again
    with get_db(shop).session() as session:
        assert session.execute(select(Contact.unread, Contact.last_message_at)).one() == before
    assert len(replies(shop)) == 1


def test_a_known_contacts_message_and_reply_are_one_write_on_postgresql(
    shop: Flask, client: FlaskClient
) -> None:
    """After the contact's lock, the message, its reply and the contact's times are written
    by one statement on PostgreSQL: each round trip cost the processor about as much CPU as
    deciding and rendering the reply. SQLite, inside the process, runs them one by one."""
    at(shop, SUNDAY_EVENING)
    say(client, "Hallo", SUNDAY_EVENING, name="Anna")
    engine = get_db(shop).engine
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        at(shop, SUNDAY_EVENING + timedelta(minutes=1))
        say(client, "Öffnungszeiten?", SUNDAY_EVENING + timedelta(minutes=1))
    finally:
        event.remove(engine, "before_cursor_execute", count)
    writes = [s for s in statements if "INSERT INTO messages" in s or "UPDATE contacts" in s]
    if engine.dialect.name == "postgresql":
        [write] = writes
        assert write.count("INSERT INTO messages") == 2 and "UPDATE contacts" in write
    else:
        assert len(writes) == 3
    away, hours = replies(shop)
    assert (away.rule, hours.rule) == ("away", "keyword")
    with get_db(shop).session() as session:
        question = session.scalars(select(Message).where(Message.text == "Öffnungszeiten?")).one()
        contact = session.scalars(select(Contact)).one()
    assert hours.in_reply_to == question.id
    assert contact.unread == 2
    assert contact.last_message_at == SUNDAY_EVENING + timedelta(minutes=1)


def test_messages_of_one_notification_see_each_others_replies(
    shop: Flask, client: FlaskClient
) -> None:
    """Meta may batch a customer's messages: the second is decided after the first's reply
    is recorded on the contact, in the same transaction, so the cooldown holds."""
    at(shop, SUNDAY_EVENING)
    doc = notification({"type": "text", "text": {"body": "Hallo"}, "id": "wamid.batch1"})
    value = doc["entry"][0]["changes"][0]["value"]
    first = value["messages"][0]
    first["timestamp"] = str(int(SUNDAY_EVENING.timestamp()))
    value["messages"].append({**first, "id": "wamid.batch2", "text": {"body": "Noch da?"}})
    assert post_notification(client, doc).status_code == 200
    [reply] = replies(shop)
    assert reply.rule == "away"
    with get_db(shop).session() as session:
        contact = session.scalars(select(Contact)).one()
        first_id = session.scalar(select(Message.id).where(Message.wamid == "wamid.batch1"))
    assert reply.in_reply_to == first_id
    assert contact.unread == 2


# --- messages that arrive late or out of order -------------------------------------------------


def consent_record(app: Flask) -> list[tuple[bool, str, datetime]]:
    with get_db(app).session() as session:
        query = select(ConsentEvent.opted_in, ConsentEvent.source, ConsentEvent.at)
        return [tuple(row) for row in session.execute(query.order_by(ConsentEvent.at))]  # type: ignore[misc]


def opted_in(app: Flask) -> bool:
    with get_db(app).session() as session:
        return bool(session.scalars(select(Contact.opted_in)).one())


def test_a_stop_sent_days_ago_opts_out_without_a_reply(shop: Flask, client: FlaskClient) -> None:
    """A backlog Meta replays after an outage: the opt-out counts, a reply would come too late."""
    with get_db(shop).session() as session:
        session.add(Contact(wa_id="4915112345678", name="Anna", opted_in=True))
    sent = TUESDAY_MORNING - timedelta(days=3)
    at(shop, TUESDAY_MORNING)
    say(client, "STOP", sent)
    assert replies(shop) == []
    assert opted_in(shop) is False
    with get_db(shop).session() as session:
        contact = session.scalars(select(Contact)).one()
        assert (contact.opted_in_source, contact.opted_in_changed_at) == ("keyword", sent)
    assert consent_record(shop) == [(False, "keyword", sent)]


@pytest.mark.parametrize("delivered", ["in order", "out of order"])
@pytest.mark.parametrize(
    ("first", "last", "finally_opted_in"), [("START", "STOP", False), ("STOP", "START", True)]
)
def test_of_two_consent_words_the_one_sent_last_wins(
    shop: Flask,
    client: FlaskClient,
    delivered: str,
    first: str,
    last: str,
    finally_opted_in: bool,
) -> None:
    """The phone was offline: Meta delivers both words later, maybe the later one first."""
    t1 = TUESDAY_MORNING - timedelta(minutes=30)
    t2 = TUESDAY_MORNING - timedelta(minutes=20)
    at(shop, TUESDAY_MORNING)
    words = [(first, t1), (last, t2)]
    for text, sent in words if delivered == "in order" else reversed(words):
        say(client, text, sent)
    assert opted_in(shop) is finally_opted_in
    assert consent_record(shop) == [
        (first == "START", "keyword", t1),
        (last == "START", "keyword", t2),
    ]
    # The customer is told only what holds: a word they took back gets no confirmation.
    last_rule = "optin" if finally_opted_in else "optout"
    assert [r.rule for r in replies(shop)][-1] == last_rule
    if delivered == "out of order":
        assert [r.rule for r in replies(shop)] == [last_rule]


def test_a_late_word_does_not_undo_a_later_change_by_the_shop(
    shop: Flask, client: FlaskClient
) -> None:
    """The latest change wins, whoever made it: an import after the customer's STOP stands."""
    sent = TUESDAY_MORNING - timedelta(hours=2)
    with get_db(shop).session() as session:
        anna = Contact(wa_id="4915112345678", name="Anna", opted_in=False)
        session.add(anna)
        session.flush()
        set_opt_in(session, anna, True, "import", TUESDAY_MORNING - timedelta(hours=1))
    at(shop, TUESDAY_MORNING)
    say(client, "STOP", sent)
    assert opted_in(shop) is True
    assert replies(shop) == []
    assert (False, "keyword", sent) in consent_record(shop)


def test_a_message_two_hours_late_gets_no_away_reply_but_its_keyword_answer(
    shop: Flask, client: FlaskClient
) -> None:
    at(shop, SUNDAY_EVENING)
    say(client, "Hallo, habt ihr Rosen?", SUNDAY_EVENING - timedelta(hours=2))
    assert replies(shop) == []
    say(client, "Öffnungszeiten?", SUNDAY_EVENING - timedelta(hours=2))
    assert [r.rule for r in replies(shop)] == ["keyword"]
    say(client, "Öffnungszeiten?", SUNDAY_EVENING - timedelta(hours=25))
    assert [r.rule for r in replies(shop)] == ["keyword"]
    # The stale message neither sent nor started the away reply's cooldown.
    say(client, "Noch jemand da?", SUNDAY_EVENING)
    assert [r.rule for r in replies(shop)] == ["keyword", "away"]


def test_stale_after_minutes_comes_from_the_settings(shop: Flask, client: FlaskClient) -> None:
    with get_db(shop).session() as session:
        save_settings(session, SHOP.replace("templates:", "  stale_after_minutes: 180\ntemplates:"))
    at(shop, SUNDAY_EVENING)
    say(client, "Hallo, habt ihr Rosen?", SUNDAY_EVENING - timedelta(hours=2))
    assert [r.rule for r in replies(shop)] == ["away"]


def test_a_runaway_template_from_an_older_database_gets_the_default_reply_quickly(
    shop: Flask, client: FlaskClient
) -> None:
    # Stored straight into the table, as a database from before the save-time check holds it.
    runaway = (
        '"{% macro twice(n) %}{% if n %}{{ twice(n - 1) }}{{ twice(n - 1) }}{% endif %}'
        '{% endmacro %}{{ twice(20) }}Hallo"'
    )
    with get_db(shop).session() as session:
        business = session.get(Business, BUSINESS_ID)
        assert business is not None
        business.settings_yaml = re.sub(r'(?m)^  away: "Hallo.*$', f"  away: {runaway}", SHOP)
    at(shop, SUNDAY_EVENING)
    started = time.monotonic()
    say(client, "Hallo, habt ihr Rosen?", SUNDAY_EVENING, name="Anna")
    assert time.monotonic() - started < 2
    [reply] = replies(shop)
    assert reply.rule == "away"
    assert reply.text == (
        "Hallo Anna, danke für Ihre Nachricht! Blumen Müller hat gerade geschlossen.\n"
        "Ab Montag, 30. November, 9 Uhr sind wir wieder für Sie da und melden uns dann."
    )
