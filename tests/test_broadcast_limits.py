"""Broadcasts within Meta's limits and the shop's quiet hours: the messaging limit (unique
customers per rolling 24 hours), 131049 capping with one retry, failures counted by reason,
quiet hours across DST and holidays, and when a paced broadcast will finish."""

from __future__ import annotations

import json
import threading
from bisect import bisect_left
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import func, insert, select

from bot import broadcasts
from bot.broadcasts import limits, pacing
from bot.broadcasts.scheduler import SchedulerService
from bot.db import Database, get_db
from bot.models import Contact, Direction, Message, MessageStatus, MessagingLimit
from bot.outbound import messaging_limit, outbox
from bot.settings import BroadcastHours, SettingsError, parse_settings
from bot.settings.stored import load_settings, save_settings
from tests.conftest import post_notification, process_inbound
from tests.fakegraph import FakeGraph
from tests.payloads import status_notification
from tests.test_admin import admin, clock  # noqa: F401
from tests.test_autoreply import SHOP
from tests.test_broadcasts import NOW, TEMPLATE, add_contact, by_recipient, create

BERLIN = ZoneInfo("Europe/Berlin")
OPENING = parse_settings(SHOP).hours  # Bavaria's public holidays
QUIET = BroadcastHours()  # 09:00-20:00, not on closed holidays


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)  # type: ignore[misc]


# --- the pure rules --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tier", "limit"),
    [("TIER_250", 250), ("TIER_2K", 2000), ("TIER_10K", 10_000), ("TIER_100K", 100_000),
     ("TIER_1K", 1000), ("TIER_50", 50), ("TIER_UNLIMITED", None)],
)  # fmt: skip
def test_tiers_are_unique_customers_per_day(tier: str, limit: int | None) -> None:
    assert limits.tier_limit(tier) == limit


def test_an_unknown_tier_is_refused() -> None:
    with pytest.raises(ValueError, match="TIER_LOTS"):
        limits.tier_limit("TIER_LOTS")


@pytest.mark.parametrize(
    ("at", "allowed"),
    [
        # Spring change: Sunday 29 March 2026, 02:00 becomes 03:00 (UTC+1 -> UTC+2).
        (local(2026, 3, 29, 8, 59), False),
        (local(2026, 3, 29, 9, 0), True),  # 07:00 UTC, not 08:00
        (datetime(2026, 3, 29, 7, 0, tzinfo=UTC), True),
        (datetime(2026, 3, 29, 7, 59, tzinfo=UTC) - timedelta(hours=1), False),
        (local(2026, 3, 29, 19, 59), True),
        (local(2026, 3, 29, 20, 0), False),
        # Autumn change: Sunday 25 October 2026, 03:00 becomes 02:00 (UTC+2 -> UTC+1).
        (datetime(2026, 10, 25, 7, 59, tzinfo=UTC), False),  # 08:59 local
        (datetime(2026, 10, 25, 8, 0, tzinfo=UTC), True),  # 09:00 local
        (datetime(2026, 10, 25, 18, 59, tzinfo=UTC), True),  # 19:59 local
        (datetime(2026, 10, 25, 19, 0, tzinfo=UTC), False),  # 20:00 local
        # A public holiday (1 May) is closed all day; a Sunday that is no holiday is not.
        (local(2026, 5, 1, 12, 0), False),
        (local(2026, 5, 3, 12, 0), True),
    ],
)
def test_quiet_hours_across_daylight_saving_and_holidays(at: datetime, allowed: bool) -> None:
    assert limits.may_send(QUIET, OPENING, at) is allowed


def test_the_next_allowed_time_skips_the_night_and_a_holiday() -> None:
    # Thursday 30 April at 20:30: Friday 1 May is a holiday, so Saturday 09:00.
    assert limits.next_allowed(QUIET, OPENING, local(2026, 4, 30, 20, 30)) == local(
        2026, 5, 2, 9, 0
    )
    on_holidays = BroadcastHours(on_closed_holidays=True)
    assert limits.next_allowed(on_holidays, OPENING, local(2026, 4, 30, 20, 30)) == local(
        2026, 5, 1, 9, 0
    )
    # Saturday night before the autumn change: Sunday 09:00 is 08:00 UTC.
    assert limits.next_allowed(QUIET, OPENING, local(2026, 10, 24, 21, 0)) == datetime(
        2026, 10, 25, 8, 0, tzinfo=UTC
    )
    assert limits.next_allowed(QUIET, OPENING, local(2026, 5, 4, 10, 0)) == local(2026, 5, 4, 10)


def test_special_hours_on_a_holiday_open_it_for_broadcasts() -> None:
    text = SHOP + 'special_hours:\n  - {date: 2026-05-01, hours: ["10:00-14:00"]}\n'
    opening = parse_settings(text).hours
    assert limits.may_send(QUIET, opening, local(2026, 5, 1, 12, 0))


def test_the_finish_of_a_broadcast_larger_than_the_limit() -> None:
    monday = local(2026, 3, 2, 10, 0)
    finish = limits.finish_estimate(
        remaining=10_000, limit=2000, sends=(), now=monday, hours=QUIET, opening=OPENING
    )
    assert finish == monday + timedelta(days=4)  # 2,000 a day: Monday to Friday
    # 1,500 reached an hour ago leave 500 now; 1,500 more when those leave the window at
    # 09:00, the last 500 at 10:00 when today's do.
    earlier = [(monday - timedelta(hours=1), 1500)]
    finish = limits.finish_estimate(
        remaining=2500, limit=2000, sends=earlier, now=monday, hours=QUIET, opening=OPENING
    )
    assert finish == monday + timedelta(days=1)
    # In the evening: what frees at night waits for the morning.
    evening = local(2026, 3, 2, 19, 30)
    finish = limits.finish_estimate(
        remaining=2001, limit=2000, sends=(), now=evening, hours=QUIET, opening=OPENING
    )
    assert finish == evening + timedelta(days=1)
    night = local(2026, 3, 2, 22, 0)
    text = limits.finish_estimate(
        remaining=5, limit=None, sends=(), now=night, hours=QUIET, opening=OPENING, counted=False
    )
    assert text == local(2026, 3, 3, 9, 0)


@pytest.mark.parametrize(
    ("section", "line", "reason"),
    [
        ('broadcasts: {send_from: "9 Uhr"}', 41, "broadcasts.send_from must be a time like 09:00"),
        ('broadcasts: {send_until: "25:00"}', 41, "broadcasts.send_until must be a time"),
        ('broadcasts:\n  send_from: "20:00"\n  send_until: "09:00"', 43, "must be later"),
        ("broadcasts: {on_closed_holidays: maybe}", 41, "broadcasts.on_closed_holidays"),
        ("broadcasts: {quiet: true}", 41, "unknown key 'quiet'"),
    ],
)
def test_bad_broadcast_settings_name_the_line(section: str, line: int, reason: str) -> None:
    text = SHOP + "\n" * (40 - SHOP.count("\n")) + section + "\n"  # from line 41
    with pytest.raises(SettingsError) as caught:
        parse_settings(text)
    assert caught.value.line == line
    assert reason in str(caught.value)


def test_broadcast_settings_are_kept_and_written_back() -> None:
    text = (
        SHOP + 'broadcasts: {send_from: "08:30", send_until: "24:00", on_closed_holidays: true}\n'
    )
    settings = parse_settings(text)
    assert settings.broadcasts == BroadcastHours(time(8, 30), None, True)
    from bot.settings import dump_settings

    again = parse_settings(dump_settings(settings))
    assert again.broadcasts == settings.broadcasts
    assert parse_settings(SHOP).broadcasts == BroadcastHours(time(9), time(20), False)


# --- with the database -----------------------------------------------------------------------


@pytest.fixture
def shop(app: Flask) -> Flask:
    with get_db(app).session() as session:
        save_settings(session, SHOP)
    return app


def add_contacts(app: Flask, n: int) -> None:
    with get_db(app).session() as session:
        session.execute(
            insert(Contact),
            [{"wa_id": f"49170{i:07d}", "name": f"K{i}", "opted_in": True} for i in range(n)],
        )


def set_limit(app: Flask, tier: str, at: datetime) -> None:
    with get_db(app).session() as session:
        messaging_limit.store(session, tier, messaging_limit.LimitSource.API, at)


def start(app: Flask, broadcast_id: int, at: datetime) -> int:
    with get_db(app).session() as session:
        run_id = broadcasts.start_run(session, broadcast_id, at, at)
    assert run_id is not None
    broadcasts.write_run(get_db(app), run_id, clock=lambda: at)
    return run_id


def release(app: Flask, at: datetime) -> pacing.Released:
    with get_db(app).session() as session:
        settings = load_settings(session)
        assert settings is not None
        return pacing.release(session, settings, at)


def send_queued(app: Flask, at: datetime) -> int:
    """A dispatcher whose every request Meta accepts: claims what is due and records it sent."""
    with get_db(app).session() as session:
        claimed = outbox.claim(session, "test", 10_000, now=at, lease=timedelta(minutes=1))
        outbox.mark_sent_many(
            session, [(c.id, f"wamid.{c.id}.{c.attempts}") for c in claimed], now=at
        )
    return len(claimed)


def funnel(app: Flask, broadcast_id: int) -> dict[str, int | str]:
    with get_db(app).session() as session:
        f = broadcasts.funnel(session, broadcast_id)
    assert f is not None
    counts = f.as_dict()
    assert (
        counts["pending"] + counts["sent"] + counts["failed"] + counts["skipped"] == counts["total"]
    )
    assert counts["deferred"] <= counts["pending"]
    return counts


def test_10000_on_the_2000_tier_finish_over_days_and_no_day_holds_more(shop: Flask) -> None:
    """A template broadcast to 10,000 on the 2,000 limit goes out over five days, by itself:
    no 24 hours ever hold more than 2,000 customers, nothing goes in the quiet hours, and the
    estimate says when it finishes."""
    monday = local(2026, 3, 2, 10, 0)  # a Monday in Berlin
    add_contacts(shop, 10_000)
    set_limit(shop, "TIER_2K", monday)
    b = create(shop, TEMPLATE)
    start(shop, b, monday)
    assert send_queued(shop, monday) == 2000
    counts = funnel(shop, b)
    assert (counts["status"], counts["sent"], counts["deferred"]) == ("running", 2000, 8000)
    with get_db(shop).session() as session:
        settings = load_settings(session)
        assert settings is not None
        estimate = pacing.finish_of(session, b, settings, monday)
    assert estimate == monday + timedelta(days=4)

    at = monday
    while at < monday + timedelta(days=7):
        at += timedelta(minutes=20)
        release(shop, at)
        send_queued(shop, at)
    counts = funnel(shop, b)
    assert (counts["status"], counts["sent"], counts["pending"]) == ("done", 10_000, 0)
    with get_db(shop).session() as session:
        times = sorted(session.scalars(select(Message.sent_at)))
    assert len(times) == 10_000
    for i, first in enumerate(times):
        inside = bisect_left(times, first + limits.WINDOW) - i
        assert inside <= 2000, f"{inside} customers in the 24 hours from {first}"
    assert all(limits.may_send(QUIET, OPENING, t) for t in times)
    assert times[-1] == estimate
    assert len({t.astimezone(BERLIN).date() for t in times}) == 5


def test_the_limit_counts_other_template_messages_and_not_texts(shop: Flask) -> None:
    at = local(2026, 3, 2, 10, 0)
    add_contacts(shop, 10)
    set_limit(shop, "TIER_50", at)
    with get_db(shop).session() as session:
        contacts = list(session.scalars(select(Contact.id).order_by(Contact.id)))
        # 45 other customers got a template an hour ago (one of them twice), a text too.
        for i in range(45):
            contact = Contact(wa_id=f"49160{i:07d}", opted_in=False)
            session.add(contact)
            session.flush()
            for kind in ("template", "template", "text") if i == 0 else ("template",):
                session.add(
                    Message(
                        contact_id=contact.id, direction=Direction.OUT, type=kind,
                        status=MessageStatus.DELIVERED, sent_at=at - timedelta(hours=1),
                        timestamp=at, created_at=at, status_at=at,
                    )
                )  # fmt: skip
        assert messaging_limit.used(session, at) == 45
    b = create(shop, TEMPLATE)
    start(shop, b, at)
    assert funnel(shop, b)["deferred"] == 5  # 50 - 45 released
    assert len(contacts) == 10
    # A text broadcast to those inside their window is not held by the limit.
    for wa_id in ("491711111111", "491712222222"):
        add_contact(shop, wa_id, "T", wrote=timedelta(hours=1))
    text = create(shop, broadcasts.Content(text="Hallo"))
    start(shop, text, NOW)  # they wrote an hour before NOW
    counts = funnel(shop, text)
    assert counts["deferred"] == 0


def test_quiet_hours_pause_a_broadcast_and_it_resumes_by_itself(shop: Flask) -> None:
    evening = local(2026, 4, 30, 19, 59)  # the day before the 1 May holiday
    add_contacts(shop, 3)
    b = create(shop, TEMPLATE)
    start(shop, b, evening)  # console mode: no limit stored, no limit kept
    assert funnel(shop, b)["deferred"] == 0  # released at once, not sent yet
    held = release(shop, local(2026, 4, 30, 20, 0))
    assert held.held_back == 3
    assert funnel(shop, b)["deferred"] == 3
    for at in (local(2026, 5, 1, 9, 0), local(2026, 5, 1, 15, 0), local(2026, 5, 2, 8, 59)):
        assert release(shop, at) == pacing.Released()
        assert send_queued(shop, at) == 0
    assert release(shop, local(2026, 5, 2, 9, 0)).templates == 3
    assert send_queued(shop, local(2026, 5, 2, 9, 0)) == 3
    assert funnel(shop, b)["status"] == "done"


def test_a_small_broadcast_in_allowed_hours_is_queued_at_once(shop: Flask) -> None:
    at = local(2026, 3, 3, 11, 0)
    add_contacts(shop, 4)
    set_limit(shop, "TIER_250", at)
    b = create(shop, TEMPLATE)
    start(shop, b, at)
    assert {m.status for m in by_recipient(shop).values()} == {"queued"}
    assert funnel(shop, b)["deferred"] == 0


# --- 131049: capped, one retry ---------------------------------------------------------------


def test_131049_caps_once_then_fails_with_the_reason(shop: Flask, runner: FlaskCliRunner) -> None:
    at = local(2026, 3, 3, 11, 0)
    add_contacts(shop, 2)
    b = create(shop, TEMPLATE)
    start(shop, b, at)
    with get_db(shop).session() as session:
        claimed = outbox.claim(session, "w", 10, now=at, lease=timedelta(minutes=1))
        ids = [c.id for c in claimed]
        capped_reason = "(#131049) This message was not delivered to maintain healthy ecosystem"
        outbox.mark_failed(session, ids[0], code=131049, reason=capped_reason, now=at, worker="w")
        outbox.mark_sent(session, ids[1], "wamid.OK", now=at)
    counts = funnel(shop, b)
    assert (counts["capped"], counts["pending"], counts["deferred"], counts["failed"]) == (
        1, 1, 1, 0,
    )  # fmt: skip
    assert counts["status"] == "running"
    # Not before a day has passed, and then through the pacer.
    assert release(shop, at + timedelta(hours=23)).templates == 0
    retry = at + timedelta(days=1)
    assert release(shop, retry).templates == 1
    with get_db(shop).session() as session:
        again = outbox.claim(session, "w", 10, now=retry, lease=timedelta(minutes=1))
        assert [c.id for c in again] == [ids[0]]
        outbox.mark_failed(session, ids[0], code=131049, reason=capped_reason, now=retry)
        message = session.get_one(Message, ids[0])
        assert (message.status, message.error_code) == ("failed", 131049)
        assert message.capped_at == at
    counts = funnel(shop, b)
    assert (counts["capped"], counts["failed"], counts["pending"], counts["status"]) == (
        1, 1, 0, "done",
    )  # fmt: skip
    shown = runner.invoke(args=["broadcast", "show", str(b)])
    assert "capped:    1" in shown.output
    assert "failed 1: 131049" in shown.output


def test_131049_by_status_notification_caps_a_broadcast_message_once(
    shop: Flask, client: FlaskClient
) -> None:
    at = local(2026, 3, 3, 11, 0)
    shop.config["TRESEN_CLOCK"] = lambda: at
    add_contacts(shop, 1)
    b = create(shop, TEMPLATE)
    start(shop, b, at)
    (message,) = by_recipient(shop).values()
    send_queued(shop, at)
    capped = {"errors": [{"code": 131049, "title": "Message not delivered", "message": "x"}]}
    stamp = int(at.timestamp())
    wamid = f"wamid.{message.id}.1"
    post_notification(client, status_notification(wamid, "failed", stamp + 5, **capped))
    post_notification(client, status_notification(wamid, "delivered", stamp + 6))  # late, stale
    process_inbound(shop)
    counts = funnel(shop, b)
    assert (counts["capped"], counts["deferred"], counts["sent"], counts["failed"]) == (1, 1, 0, 0)
    retry = at + timedelta(days=1, seconds=5)
    release(shop, retry)
    send_queued(shop, retry)
    post_notification(
        client, status_notification(f"wamid.{message.id}.2", "failed", stamp + 86_500, **capped)
    )
    process_inbound(shop)
    counts = funnel(shop, b)
    assert (counts["capped"], counts["failed"], counts["pending"]) == (1, 1, 0)


def test_131049_on_a_message_that_is_no_broadcast_just_fails(shop: Flask) -> None:
    at = local(2026, 3, 3, 11, 0)
    add_contacts(shop, 1)
    with get_db(shop).session() as session:
        contact = session.scalars(select(Contact)).one()
        queued = outbox.enqueue(session, contact, {"type": "template"}, now=at)
        outbox.mark_failed(session, queued.id, code=131049, reason="capped", now=at)
        message = session.get_one(Message, queued.id, populate_existing=True)
        assert (message.status, message.error_code, message.error_reason) == (
            "failed", 131049, "capped",
        )  # fmt: skip


# --- failures by reason ----------------------------------------------------------------------


def test_failures_are_counted_by_reason_on_the_page(shop: Flask, admin: FlaskClient) -> None:  # noqa: F811
    at = local(2026, 3, 3, 11, 0)
    add_contacts(shop, 6)
    b = create(shop, TEMPLATE)
    start(shop, b, at)
    refusals = [
        (131026, "Message undeliverable"),
        (131026, "Message undeliverable"),
        (131050, "User has stopped marketing messages"),
        (130472, "User's number is part of an experiment"),
        (131000, "Something went wrong"),
    ]
    with get_db(shop).session() as session:
        claimed = outbox.claim(session, "w", 10, now=at, lease=timedelta(minutes=1))
        for c, (code, reason) in zip(claimed, refusals, strict=False):
            outbox.mark_failed(session, c.id, code=code, reason=reason, now=at)
        assert pacing.failure_reasons(session, b) == [
            (131026, "Message undeliverable", 2),
            (130472, "User's number is part of an experiment", 1),
            (131000, "Something went wrong", 1),
            (131050, "User has stopped marketing messages", 1),
        ]
    page = admin.get(f"/admin/broadcasts/{b}").get_data(as_text=True)
    assert '<li data-code="131026"><span class="f-count">2</span>' in page
    assert "Nicht bei WhatsApp oder nicht zustellbar" in page  # explained, in German
    assert "Something went wrong" in page  # an error we do not explain shows Meta's words


# --- the messaging limit, read and learnt ----------------------------------------------------


def test_the_scheduler_reads_the_limit_and_learns_it_from_a_refusal(app: Flask) -> None:
    from bot.whatsapp.graph import GraphClient
    from tests.test_dispatcher import TOKEN

    at = local(2026, 3, 3, 11, 0)
    with FakeGraph(token=TOKEN) as graph:
        graph.messaging_limit_tier = "TIER_2K"
        client = GraphClient(graph.url, "v24.0", "106540352242922", TOKEN)
        service = SchedulerService(Database(get_db(app).url), clock=lambda: at,
                                   read_limit=client.messaging_limit)  # fmt: skip
        try:
            service.read_messaging_limit(at)
            service.read_messaging_limit(at + timedelta(hours=1))  # not again so soon
            assert graph.limit_reads == 1
            with get_db(app).session() as session:
                row = session.get_one(MessagingLimit, 1)
                assert (row.tier, row.limit, row.source) == ("TIER_2K", 2000, "api")
                messaging_limit.learn_refusal(session, at)
            with get_db(app).session() as session:
                row = session.get_one(MessagingLimit, 1)
                assert (row.limit, row.source) == (0, "error")  # nothing more until it frees
            graph.messaging_limit_tier = "TIER_10K"
            service.read_messaging_limit(at + timedelta(hours=3))
            with get_db(app).session() as session:
                row = session.get_one(MessagingLimit, 1)
                assert (row.tier, row.limit, row.source) == ("TIER_10K", 10_000, "api")
        finally:
            service.database.dispose()


def test_an_unread_limit_in_whatsapp_mode_is_metas_start(app: Flask) -> None:
    at = local(2026, 3, 3, 11, 0)

    def unreachable() -> str:
        from bot.channels.errors import RetryLater

        raise RetryLater("connection refused")

    service = SchedulerService(Database(get_db(app).url), clock=lambda: at, read_limit=unreachable)
    try:
        service.read_messaging_limit(at)
    finally:
        service.database.dispose()
    with get_db(app).session() as session:
        row = session.get_one(MessagingLimit, 1)
        assert (row.tier, row.limit, row.source) == ("TIER_250", 250, "default")


def test_the_pacer_runs_on_the_leaders_tick(shop: Flask) -> None:
    night = local(2026, 3, 3, 23, 0)
    add_contacts(shop, 2)
    b = create(shop, TEMPLATE)
    start(shop, b, night)
    assert funnel(shop, b)["deferred"] == 2
    morning = local(2026, 3, 4, 9, 0)
    service = SchedulerService(Database(get_db(shop).url), clock=lambda: morning)
    try:
        service.tend(threading.Event())
    finally:
        service.database.dispose()
    assert funnel(shop, b)["deferred"] == 0


def test_broadcast_show_json_has_capped_and_deferred(shop: Flask, runner: FlaskCliRunner) -> None:
    add_contacts(shop, 2)
    b = create(shop, TEMPLATE)
    start(shop, b, local(2026, 3, 3, 23, 0))
    shown = json.loads(runner.invoke(args=["broadcast", "show", str(b), "--json"]).stdout)
    assert shown == {
        "id": b, "status": "running", "total": 2, "pending": 2, "sent": 0, "delivered": 0,
        "read": 0, "failed": 0, "skipped": 0, "capped": 0, "deferred": 2,
    }  # fmt: skip
    with get_db(shop).session() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 2


def test_the_page_says_when_a_waiting_broadcast_will_be_finished(
    shop: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    night = local(2026, 3, 3, 23, 0)
    shop.config["TRESEN_CLOCK"] = lambda: night
    add_contacts(shop, 3)
    b = create(shop, TEMPLATE)
    start(shop, b, night)
    page = admin.get(f"/admin/broadcasts/{b}").get_data(as_text=True)
    assert '<p class="finish">' in page
    finish = page.split('<p class="finish">')[1].split("</p>")[0]
    assert "09:00" in finish  # the next morning, when the quiet hours end
    assert "fertig" in finish or "finished" in finish


def test_saving_a_settings_page_keeps_the_quiet_hours(app: Flask) -> None:
    from bot.admin.settings_form import state_from_settings, to_yaml

    text = SHOP + 'broadcasts: {send_from: "08:00", send_until: "21:30"}\n'
    settings = parse_settings(text)
    with app.test_request_context():
        written, _lines = to_yaml(state_from_settings(settings))
    assert parse_settings(written).broadcasts == BroadcastHours(time(8), time(21, 30), False)
    with app.test_request_context():
        written, _lines = to_yaml(state_from_settings(parse_settings(SHOP)))
    assert "broadcasts" not in written


def test_a_131049_answer_to_the_dispatcher_caps_and_a_131048_stops_releasing(
    app: Flask,
) -> None:
    """Through the dispatcher and the fake Graph API: Meta refuses one broadcast message with
    131049 (capped: deferred for its retry, not failed) and another with 131048 (the limit
    is reached: nothing more is released until the window frees)."""
    from tests.fakegraph import Reply, graph_error
    from tests.test_dispatcher import TOKEN, Running, broadcast_to, rows, wait_until

    with FakeGraph(token=TOKEN) as graph:
        graph.script(
            [
                Reply(400, graph_error(131049, "Message not delivered")),
                Reply(400, graph_error(131048, "Spam rate limit hit")),
            ]
        )
        b = broadcast_to(app, 3)
        with Running(app, graph, concurrency=1):
            wait_until(lambda: graph.count >= 3)
            # capped; 131048 waits an hour to be retried; the third went out
            wait_until(
                lambda: sorted(m.status for m in rows(app)) == ["deferred", "queued", "sent"]
            )
    capped = [m for m in rows(app) if m.capped_at is not None]
    assert len(capped) == 1
    assert (capped[0].status, capped[0].error_code) == ("deferred", 131049)
    with get_db(app).session() as session:
        row = session.get_one(MessagingLimit, 1)
        assert row.source == "error"
        counts = broadcasts.funnel(session, b)
        assert counts is not None and (counts.capped, counts.deferred) == (1, 1)


def test_a_broadcast_written_the_night_before_the_spring_change_goes_at_nine_local(
    shop: Flask,
) -> None:
    add_contacts(shop, 2)
    b = create(shop, TEMPLATE)
    start(shop, b, local(2026, 3, 28, 22, 0))  # Saturday night, before 02:00 becomes 03:00
    assert release(shop, datetime(2026, 3, 29, 6, 59, tzinfo=UTC)).templates == 0  # 08:59
    assert release(shop, datetime(2026, 3, 29, 7, 0, tzinfo=UTC)).templates == 2  # 09:00 CEST
    assert funnel(shop, b)["deferred"] == 0
