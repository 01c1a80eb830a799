"""Once a person answers a customer from the admin inbox, the bot's away and greeting messages
pause for that customer (replies.human_pause_minutes); stop words and keyword answers do not."""

from __future__ import annotations

from datetime import datetime, timedelta
from textwrap import dedent
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bot.db import get_db
from bot.models import Contact
from bot.rules import History, Inbound, choose
from bot.settings import parse_settings
from bot.settings.stored import save_settings
from tests.test_admin import contact_id, csrf_of, login, make_user
from tests.test_autoreply import SHOP, SUNDAY_EVENING, TUESDAY_MORNING, at, replies, say

# The away message on every message outside hours, so that only the pause can hold it back.
EAGER = SHOP.replace("cooldown_hours: 12", "cooldown_hours: 0")


@pytest.fixture
def owner(app: Flask, client: FlaskClient) -> FlaskClient:
    make_user(app)
    at(app, SUNDAY_EVENING)
    assert login(client).status_code == 302
    return client


def use(app: Flask, settings: str) -> None:
    with get_db(app).session() as session:
        save_settings(session, settings)


def answer_by_hand(app: Flask, owner: FlaskClient, when: datetime, text: str) -> None:
    at(app, when)
    cid = contact_id(app)
    html = owner.get(f"/admin/inbox/{cid}").get_data(as_text=True)
    response = owner.post(
        f"/admin/inbox/{cid}/reply", data={"text": text, "csrf_token": csrf_of(html)}
    )
    assert response.status_code == 302


def send_template_by_hand(app: Flask, owner: FlaskClient, when: datetime) -> None:
    at(app, when)
    cid = contact_id(app)
    html = owner.get(f"/admin/inbox/{cid}").get_data(as_text=True)
    response = owner.post(
        f"/admin/inbox/{cid}/template",
        data={"name": "order_ready", "language": "de", "csrf_token": csrf_of(html)},
    )
    assert response.status_code == 302


def customer(app: Flask, client: FlaskClient, text: str, when: datetime) -> None:
    at(app, when)
    say(client, text, when)


def rules(app: Flask) -> list[str | None]:
    return [r.rule for r in replies(app)]


def test_away_pauses_after_a_person_answers_but_stop_and_keywords_still_work(
    app: Flask, owner: FlaskClient
) -> None:
    use(app, EAGER)
    customer(app, owner, "Habt ihr morgen Rosen?", SUNDAY_EVENING)
    answered = SUNDAY_EVENING + timedelta(minutes=5)
    answer_by_hand(app, owner, answered, "Ja, ich lege Ihnen welche zurück.")
    assert rules(app) == ["away", "manual"]

    customer(app, owner, "Danke!", answered + timedelta(minutes=5))
    assert rules(app) == ["away", "manual"]  # no "we are closed" after the owner's answer
    customer(app, owner, "Und eure Öffnungszeiten?", answered + timedelta(minutes=10))
    assert rules(app) == ["away", "manual", "keyword"]
    customer(app, owner, "STOP", answered + timedelta(minutes=20))
    assert rules(app) == ["away", "manual", "keyword", "optout"]
    with get_db(app).session() as session:
        contact = session.get(Contact, contact_id(app))
        assert contact is not None and contact.opted_in is False
    customer(app, owner, "Noch da?", answered + timedelta(minutes=119))
    assert rules(app) == ["away", "manual", "keyword", "optout"]

    customer(app, owner, "Hallo?", answered + timedelta(minutes=120))
    assert rules(app) == ["away", "manual", "keyword", "optout", "away"]


def test_greeting_pauses_after_a_person_writes_first(app: Flask, owner: FlaskClient) -> None:
    """A customer who last wrote weeks ago gets a template from the owner and answers it: the
    owner is talking with them, so no welcome from the bot."""
    use(app, EAGER)
    weeks_ago = TUESDAY_MORNING - timedelta(days=20)
    customer(app, owner, "Hallo", weeks_ago)
    assert rules(app) == ["greeting"]
    send_template_by_hand(app, owner, TUESDAY_MORNING)
    customer(app, owner, "Oh danke, ich komme vorbei", TUESDAY_MORNING + timedelta(minutes=30))
    assert rules(app) == ["greeting", "manual"]


def test_the_pause_follows_the_setting_and_zero_turns_it_off(
    app: Flask, owner: FlaskClient
) -> None:
    use(app, EAGER.replace("templates:", "  human_pause_minutes: 0\ntemplates:"))
    weeks_ago = TUESDAY_MORNING - timedelta(days=20)
    customer(app, owner, "Hallo", weeks_ago)
    send_template_by_hand(app, owner, TUESDAY_MORNING)
    customer(app, owner, "Oh danke, ich komme vorbei", TUESDAY_MORNING + timedelta(minutes=30))
    assert rules(app) == ["greeting", "manual", "greeting"]

    use(app, EAGER.replace("templates:", "  human_pause_minutes: 30\ntemplates:"))
    answered = TUESDAY_MORNING + timedelta(hours=10)  # 20:30 in Berlin, closed
    answer_by_hand(app, owner, answered, "Bis morgen!")
    customer(app, owner, "Gute Nacht", answered + timedelta(minutes=29))
    customer(app, owner, "Hallo?", answered + timedelta(minutes=30))
    assert rules(app) == ["greeting", "manual", "greeting", "manual", "away"]


def test_start_during_a_pause_opts_in_and_is_answered(app: Flask, owner: FlaskClient) -> None:
    use(app, EAGER)
    customer(app, owner, "STOP", SUNDAY_EVENING)
    answered = SUNDAY_EVENING + timedelta(minutes=2)
    answer_by_hand(app, owner, answered, "Schade! Sie bekommen keine Angebote mehr.")
    customer(app, owner, "START", answered + timedelta(minutes=3))
    assert rules(app) == ["optout", "manual", "optin"]
    with get_db(app).session() as session:
        contact = session.get(Contact, contact_id(app))
        assert contact is not None and contact.opted_in is True


def test_a_template_sent_by_hand_pauses_the_away_message(app: Flask, owner: FlaskClient) -> None:
    use(app, EAGER)
    customer(app, owner, "Hallo", SUNDAY_EVENING)
    sent = SUNDAY_EVENING + timedelta(minutes=1)
    send_template_by_hand(app, owner, sent)
    customer(app, owner, "Danke!", sent + timedelta(minutes=60))
    assert rules(app) == ["away", "manual"]
    customer(app, owner, "Hallo?", sent + timedelta(minutes=120))
    assert rules(app) == ["away", "manual", "away"]


# --- the rules at chosen instants -------------------------------------------------------------

BERLIN = ZoneInfo("Europe/Berlin")
PAUSING = parse_settings(
    dedent(
        """\
        business: {name: Blumen Müller, timezone: Europe/Berlin, locale: de_DE}
        hours: {mon: ["09:00-18:00"], tue: ["09:00-18:00"]}
        replies:
          away: {template: away, once_per_closure: true}
          greeting: {template: greeting, after_inactive_days: 14}
          human_pause_minutes: 120
        """
    )
)
MONDAY_EVENING = datetime(2026, 11, 30, 19, 0, tzinfo=BERLIN)  # closed
TUESDAY_NOON = datetime(2026, 12, 1, 12, 0, tzinfo=BERLIN)  # open


def decide(text: str, now: datetime, **history: datetime | None) -> str | None:
    found = choose(
        Inbound(text=text, kind="text", sent_at=now),
        History(
            last_inbound_at=history.get("last_inbound_at"),
            last_away_at=history.get("last_away_at"),
            last_human_reply_at=history.get("last_human_reply_at"),
        ),
        PAUSING,
        now,
    )
    return found.rule if found else None


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [(0, None), (1, None), (119, None), (119.99, None), (120, "away"), (600, "away")],
)
def test_the_pause_after_a_human_reply_and_its_end(minutes: float, expected: str | None) -> None:
    replied = MONDAY_EVENING - timedelta(minutes=minutes)
    assert decide("Hallo?", MONDAY_EVENING, last_human_reply_at=replied) == expected


def test_the_greeting_pauses_too_and_comes_after_the_pause() -> None:
    long_ago = TUESDAY_NOON - timedelta(days=30)
    paused = {"last_inbound_at": long_ago, "last_human_reply_at": TUESDAY_NOON}
    assert decide("Hallo", TUESDAY_NOON + timedelta(minutes=5), **paused) is None
    assert decide("Hallo", TUESDAY_NOON + timedelta(minutes=120), **paused) == "greeting"


@pytest.mark.parametrize(("word", "rule"), [("STOP", "optout"), ("start!", "optin")])
def test_consent_words_count_during_a_pause(word: str, rule: str) -> None:
    replied = MONDAY_EVENING - timedelta(minutes=10)
    assert decide(word, MONDAY_EVENING, last_human_reply_at=replied) == rule


def test_after_the_pause_the_away_still_goes_once_per_closed_period() -> None:
    replied = MONDAY_EVENING - timedelta(minutes=30)
    after = MONDAY_EVENING + timedelta(hours=2)
    # The away went before the person answered, in this closed period: not again.
    assert decide("Hallo?", after, last_human_reply_at=replied, last_away_at=replied) is None
    # No away yet in this closed period: it goes once the pause is over.
    yesterday = MONDAY_EVENING - timedelta(days=1)
    assert decide("Hallo?", after, last_human_reply_at=replied, last_away_at=yesterday) == "away"
