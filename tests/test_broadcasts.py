"""Broadcasts: audiences, the 24-hour window, template parameters, resumable runs, the funnel
moved by real-shaped status notifications, and the `broadcast` commands."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import func, select

from bot import broadcasts
from bot.broadcasts import runs
from bot.contacts.audiences import Audience, parse_audience, window_open
from bot.contacts.labels import label
from bot.db import get_db
from bot.models import Broadcast, BroadcastRun, Contact, Message
from bot.outbound import outbox
from bot.settings.stored import save_settings
from bot.whatsapp.payloads import body_parameters, template_payload
from tests.conftest import post_notification
from tests.payloads import status_notification
from tests.test_autoreply import SHOP

NOW = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)  # a Tuesday, 10:30 in Berlin


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("all", Audience()),
        (" ALL ", Audience()),
        ("label:vip", Audience("vip")),
        ("label: Stamm  Kunden ", Audience("Stamm Kunden")),
    ],
)
def test_audiences_parse(text: str, expected: Audience) -> None:
    assert parse_audience(text) == expected
    assert parse_audience(str(expected)) == expected


@pytest.mark.parametrize("text", ["", "everyone", "label:", "tag:vip"])
def test_bad_audiences_name_the_forms(text: str) -> None:
    with pytest.raises(ValueError, match="neither `all` nor `label:NAME`"):
        parse_audience(text)


@pytest.mark.parametrize(
    ("ago", "inside"),
    [
        (None, False),
        (timedelta(hours=2), True),
        (timedelta(hours=23, minutes=59), True),
        (timedelta(hours=24), False),
        (timedelta(days=3), False),
    ],
)
def test_the_24_hour_window(ago: timedelta | None, inside: bool) -> None:
    assert window_open(None if ago is None else NOW - ago, NOW) is inside


@pytest.fixture
def shop(app: Flask) -> Flask:
    with get_db(app).session() as session:
        save_settings(session, SHOP)
    return app


def add_contact(
    app: Flask,
    wa_id: str,
    name: str,
    *,
    opted_in: bool = True,
    labels: tuple[str, ...] = (),
    wrote: timedelta | None = None,
) -> int:
    with get_db(app).session() as session:
        contact = Contact(
            wa_id=wa_id,
            name=name,
            opted_in=opted_in,
            last_inbound_at=None if wrote is None else NOW - wrote,
        )
        contact.labels = [label(session, n) for n in labels]
        session.add(contact)
        session.flush()
        return contact.id


def create(app: Flask, content: broadcasts.Content, audience: str = "all") -> int:
    with get_db(app).session() as session:
        b = broadcasts.create(
            session, content, parse_audience(audience), timezone="Europe/Berlin", now=NOW
        )
        return b.id


def run(app: Flask, broadcast_id: int, *, batch_size: int = 1000) -> int:
    with get_db(app).session() as session:
        run_id = broadcasts.start_run(session, broadcast_id, NOW, NOW)
    assert run_id is not None
    broadcasts.write_run(get_db(app), run_id, clock=lambda: NOW, batch_size=batch_size)
    return run_id


def messages(app: Flask) -> list[Message]:
    with get_db(app).session() as session:
        query = select(Message).where(Message.broadcast_run_id.is_not(None)).order_by(Message.id)
        return list(session.scalars(query))


def by_recipient(app: Flask) -> dict[str, Message]:
    with get_db(app).session() as session:
        rows = session.execute(
            select(Contact.wa_id, Message)
            .join(Contact, Contact.id == Message.contact_id)
            .where(Message.broadcast_run_id.is_not(None))
        ).all()
    return {wa_id: m for wa_id, m in rows}


def funnel(app: Flask, broadcast_id: int) -> dict[str, Any]:
    with get_db(app).session() as session:
        f = broadcasts.funnel(session, broadcast_id)
    assert f is not None
    return f.as_dict()


TEMPLATE = broadcasts.Content(
    template="weekly_offer", language="de", params=("{{ contact.name }}", "{{ business.name }}")
)


def test_an_audience_is_its_opted_in_contacts_with_the_label(shop: Flask) -> None:
    add_contact(shop, "491511", "Anna", labels=("VIP",))
    add_contact(shop, "491512", "Ben")
    add_contact(shop, "491513", "Cem", opted_in=False, labels=("vip",))
    add_contact(shop, "491514", "Dana", labels=("vip", "neu"))
    vip = create(shop, TEMPLATE, "label:vip")
    everyone = create(shop, TEMPLATE, "all")
    nobody = create(shop, TEMPLATE, "label:gibtsnicht")
    for b in (vip, everyone, nobody):
        run(shop, b)
    with get_db(shop).session() as session:
        sent_to = Counter(
            (run_id, wa_id)
            for run_id, wa_id in session.execute(
                select(BroadcastRun.broadcast_id, Contact.wa_id)
                .join(Message, Message.broadcast_run_id == BroadcastRun.id)
                .join(Contact, Contact.id == Message.contact_id)
            )
        )
    assert sorted(sent_to) == [
        (vip, "491511"),
        (vip, "491514"),
        (everyone, "491511"),
        (everyone, "491512"),
        (everyone, "491514"),
    ]
    assert set(sent_to.values()) == {1}
    assert funnel(shop, nobody) == {
        "id": nobody, "status": "done", "total": 0, "pending": 0, "sent": 0,
        "delivered": 0, "read": 0, "failed": 0, "skipped": 0, "capped": 0, "deferred": 0,
    }  # fmt: skip


def test_template_parameters_are_rendered_per_contact(shop: Flask) -> None:
    add_contact(shop, "4915111111111", "Anna")
    add_contact(shop, "4915122222222", "")  # an empty parameter would be refused by Meta
    b = create(shop, TEMPLATE)
    run(shop, b)
    found = by_recipient(shop)
    anna = found["4915111111111"]
    assert anna.status == "queued"
    assert anna.priority == 1
    assert anna.type == "template"
    assert anna.payload == template_payload(
        "4915111111111", "weekly_offer", "de", body_parameters(["Anna", "Blumen Müller"])
    )
    nameless = found["4915122222222"]
    assert nameless.status == "failed"
    assert nameless.error_reason == "template parameter 1 must not be empty"
    assert funnel(shop, b)["failed"] == 1


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (broadcasts.Content(text="Hallo {{ contact.name.center(20000) }}"), "--text"),
        (
            broadcasts.Content(
                template="weekly_offer",
                language="de",
                params=("{{ contact.name }}", "{{ 'x' * 5000 }}"),
            ),
            "--param 2",
        ),
    ],
)
def test_a_broadcast_over_the_bounds_is_refused_when_created(
    shop: Flask, content: broadcasts.Content, what: str
) -> None:
    with pytest.raises(broadcasts.BroadcastError) as refused:
        create(shop, content)
    assert str(refused.value).startswith(f"{what} goes over the bounds of a message: ")
    with get_db(shop).session() as session:
        assert session.scalar(select(func.count()).select_from(Broadcast)) == 0


def test_a_parameter_over_the_bounds_fails_each_message_quickly_with_the_reason(
    app: Flask,
) -> None:
    runaway = (
        "{% macro twice(n) %}{% if n %}{{ twice(n - 1) }}{{ twice(n - 1) }}{% endif %}"
        "{% endmacro %}{{ twice(20) }}{{ contact.name }}"
    )
    # Created while there were no settings to try it with, as a broadcast from before the
    # check on creating is stored.
    b = create(app, broadcasts.Content(template="weekly_offer", language="de", params=(runaway,)))
    shop = app
    with get_db(shop).session() as session:
        save_settings(session, SHOP)
    add_contact(shop, "4915111111111", "Anna")
    add_contact(shop, "4915122222222", "Ben")
    started = time.monotonic()
    run(shop, b)
    assert time.monotonic() - started < 4
    for message in by_recipient(shop).values():
        assert message.status == "failed"
        assert message.error_reason is not None
        assert message.error_reason.startswith("template failed: TemplateLimitError: the template")
    assert funnel(shop, b)["failed"] == 2


def test_a_text_goes_only_to_contacts_inside_the_24_hour_window(shop: Flask) -> None:
    add_contact(shop, "491511", "Anna", wrote=timedelta(hours=3))
    add_contact(shop, "491512", "Ben", wrote=timedelta(hours=25))
    add_contact(shop, "491513", "Cem")
    add_contact(shop, "491514", "Dana", wrote=timedelta(hours=1), opted_in=False)
    b = create(
        shop,
        broadcasts.Content(text="Hallo {{ contact.name }}, heute {{ now | format_date('EEEE') }}!"),
    )
    run(shop, b)
    found = by_recipient(shop)
    assert set(found) == {"491511", "491512", "491513"}
    assert found["491511"].status == "queued"
    assert found["491511"].text == "Hallo Anna, heute Dienstag!"
    assert found["491511"].payload == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "491511",
        "type": "text",
        "text": {"body": "Hallo Anna, heute Dienstag!", "preview_url": False},
    }
    for skipped in ("491512", "491513"):
        assert found[skipped].status == "skipped"
        assert found[skipped].error_reason == broadcasts.OUTSIDE_WINDOW
    assert funnel(shop, b) == {
        "id": b, "status": "running", "total": 3, "pending": 1, "sent": 0,
        "delivered": 0, "read": 0, "failed": 0, "skipped": 2, "capped": 0, "deferred": 0,
    }  # fmt: skip


def test_a_run_resumes_after_its_last_batch_and_writes_no_one_twice(shop: Flask) -> None:
    for i in range(7):
        add_contact(shop, f"49151{i:04d}", f"K{i}")
    b = create(shop, TEMPLATE)
    with get_db(shop).session() as session:
        run_id = broadcasts.start_run(session, b, NOW, NOW)
    assert run_id is not None
    # Two batches, then the process "dies"; a contact opts out meanwhile.
    assert broadcasts.write_batch(get_db(shop), run_id, NOW, batch_size=3)
    # The next batch dies after writing its drafts, before rendering them.
    with get_db(shop).session() as session:
        assert runs._insert_drafts(session, run_id, NOW, 3) is not None
    with get_db(shop).session() as session:
        assert session.get_one(BroadcastRun, run_id).cursor == 3  # ids 1-3; 4-6 are drafts
        # As if a batch were written again (a second leader): the unique key ignores it.
        session.get_one(BroadcastRun, run_id).cursor = 0
    with get_db(shop).session() as session:
        session.scalars(select(Contact).where(Contact.wa_id == "491510006")).one().opted_in = False
    # The same occurrence fired again is the same run.
    with get_db(shop).session() as session:
        assert broadcasts.start_run(session, b, NOW, NOW) == run_id
    broadcasts.write_run(get_db(shop), run_id, clock=lambda: NOW, batch_size=3)
    per_contact = Counter(m.contact_id for m in messages(shop))
    assert len(per_contact) == 6
    assert {m.status for m in messages(shop)} == {"queued"}
    assert set(per_contact.values()) == {1}
    with get_db(shop).session() as session:
        assert session.get_one(BroadcastRun, run_id).status == "written"


def send(app: Flask, message_id: int, wamid: str) -> None:
    with get_db(app).session() as session:
        outbox.mark_sent(session, message_id, wamid, now=NOW)


def test_the_funnel_follows_statuses_in_any_order_and_counts_each_once(
    shop: Flask, client: FlaskClient
) -> None:
    for i in range(5):
        add_contact(shop, f"4915100000{i}", f"K{i}")
    b = create(shop, TEMPLATE)
    run(shop, b)
    ids = [m.id for m in messages(shop)]
    ts = int(NOW.timestamp())
    shop.config["TRESEN_CLOCK"] = lambda: NOW  # the statuses arrive as they happen

    def status(i: int, kind: str, dt: int = 0, **extra: Any) -> None:
        doc = status_notification(f"wamid.B{i}", kind, ts + dt, **extra)
        assert post_notification(client, doc).status_code == 200

    # 0: read before delivered before sent, each twice
    # 1: delivered, and the status arrives before the dispatcher recorded the wamid
    # 2: sent, then failed after it was accepted
    # 3: still sending; 4: read arrives before the send's answer is recorded
    send(shop, ids[0], "wamid.B0")
    for kind in ("read", "read", "delivered", "sent", "delivered"):
        status(0, kind, {"sent": 1, "delivered": 2, "read": 3}[kind])
    status(1, "sent", 1)
    status(1, "delivered", 2)
    status(4, "read", 5)
    assert funnel(shop, b)["sent"] == 1  # held, not counted before the wamid is known
    send(shop, ids[1], "wamid.B1")
    with get_db(shop).session() as session:
        outbox.mark_sent_many(session, [(ids[2], "wamid.B2"), (ids[4], "wamid.B4")], now=NOW)
    # 131026 (undeliverable): a plain failure; 131049 caps instead (test_broadcast_limits).
    error = {"errors": [{"code": 131026, "title": "Message undeliverable", "message": "x"}]}
    status(2, "failed", 4, **error)
    status(2, "delivered", 5)  # a late delivered after failed does not resurrect it
    assert funnel(shop, b) == {
        "id": b, "status": "running", "total": 5, "pending": 1, "sent": 3,
        "delivered": 3, "read": 2, "failed": 1, "skipped": 0, "capped": 0, "deferred": 0,
    }  # fmt: skip
    stored = {m.id: m for m in messages(shop)}
    assert stored[ids[0]].read_at == datetime.fromtimestamp(ts + 3, UTC)
    assert stored[ids[1]].delivered_at == datetime.fromtimestamp(ts + 2, UTC)
    assert stored[ids[4]].read_at == datetime.fromtimestamp(ts + 5, UTC)
    assert stored[ids[2]].error_code == 131026
    # Nothing held stays behind once applied.
    with get_db(shop).session() as session:
        assert session.scalar(select(func.count()).select_from(outbox.HeldStatus)) == 0


def test_cancel_withdraws_what_is_not_on_its_way(shop: Flask, runner: FlaskCliRunner) -> None:
    for i in range(3):
        add_contact(shop, f"4915100000{i}", f"K{i}")
    b = create(shop, TEMPLATE)
    run(shop, b)
    first = messages(shop)[0]
    with get_db(shop).session() as session:
        outbox.claim(session, "w", 1, now=NOW, lease=timedelta(seconds=30))
    result = runner.invoke(args=["broadcast", "cancel", str(b)])
    assert result.exit_code == 0, result.output
    assert "2 messages withdrawn" in result.output
    assert funnel(shop, b) == {
        "id": b, "status": "cancelled", "total": 3, "pending": 1, "sent": 0,
        "delivered": 0, "read": 0, "failed": 0, "skipped": 2, "capped": 0, "deferred": 0,
    }  # fmt: skip
    assert {m.id: m.status for m in messages(shop)}[first.id] == "sending"


def test_create_prints_only_the_id_and_show_prints_the_contract_json(
    shop: Flask, runner: FlaskCliRunner
) -> None:
    result = runner.invoke(
        args=["broadcast", "create", "--wa-template", "offer", "--language", "de",
              "--param", "{{ contact.name }}", "--audience", "label:vip",
              "--at", "2026-12-24T09:00"]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().isdigit()
    b = int(result.stdout)
    with get_db(shop).session() as session:
        stored = session.get_one(Broadcast, b)
        assert stored.at == datetime(2026, 12, 24, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
        assert (stored.audience, stored.params, stored.cron) == (
            "label:vip",
            ["{{ contact.name }}"],
            None,
        )
    shown = runner.invoke(args=["broadcast", "show", str(b), "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout) == {
        "id": b, "status": "scheduled", "total": 0, "pending": 0, "sent": 0,
        "delivered": 0, "read": 0, "failed": 0, "skipped": 0, "capped": 0, "deferred": 0,
    }  # fmt: skip
    cron = runner.invoke(
        args=["broadcast", "create", "--text", "Hallo {{ contact.name }}", "--cron", "0 9 * * 1"]
    )
    assert cron.exit_code == 0, cron.output
    listed = runner.invoke(args=["broadcast", "list"])
    assert "cron 0 9 * * 1 (Europe/Berlin)" in listed.output
    assert "scheduled" in listed.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--text", "Hi", "--wa-template", "x", "--language", "de"], "either --text or"),
        ([], "either --text or"),
        (["--wa-template", "x"], "needs --language"),
        (["--text", "Hi", "--param", "x"], "--param goes with --wa-template"),
        (["--text", "Hi {{ contact.name "], "not a valid template"),
        (["--text", "{{ 'x' * 5000 }}"], "--text goes over the bounds of a message: the text"),
        (["--text", "Hi", "--audience", "vip"], "neither `all` nor"),
        (["--text", "Hi", "--at", "morgen"], "not an ISO 8601"),
        (["--text", "Hi", "--cron", "0 9 * *"], "has 4 fields"),
        (["--text", "Hi", "--cron", "0 25 * * *"], "not a valid cron line"),
        (["--text", "Hi", "--cron", "0 9 * * *", "--at", "2026-12-24T09:00"], "not both"),
    ],
)
def test_create_refuses_what_cannot_be_sent(
    app: Flask, runner: FlaskCliRunner, args: list[str], message: str
) -> None:
    result = runner.invoke(args=["broadcast", "create", *args])
    assert result.exit_code != 0
    assert message in result.output
    with get_db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(Broadcast)) == 0


def test_a_status_recorded_at_the_same_moment_as_the_wamid_is_reconciled(shop: Flask) -> None:
    add_contact(shop, "491511", "Anna")
    b = create(shop, TEMPLATE)
    run(shop, b)
    [message] = messages(shop)
    # Both transactions ran at once: the send's answer did not see the held status, and the
    # status did not see the wamid.
    send(shop, message.id, "wamid.R1")
    with get_db(shop).session() as session:
        outbox.hold_status(
            session, "wamid.R1", "read", NOW, error_code=None, error_reason=None, now=NOW
        )
        outbox.hold_status(
            session, "wamid.phone-app", "read", NOW, error_code=None, error_reason=None, now=NOW
        )
    assert funnel(shop, b)["read"] == 0
    with get_db(shop).session() as session:
        assert outbox.reconcile_held(session) == 1
    assert funnel(shop, b)["read"] == 1
    with get_db(shop).session() as session:
        assert outbox.prune_held(session, NOW + timedelta(days=1)) == 1
