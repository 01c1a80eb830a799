"""The broadcast pages through Flask's test client, in German: who a broadcast reaches, the
preview for a real contact, weekly days, the night warning to confirm, the list, a broadcast's
funnel and recipients."""

# The fixtures `admin` and `clock` come from test_admin; the tests name them as parameters.
# ruff: noqa: F811

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from bot import broadcasts
from bot.contacts.audiences import parse_audience
from bot.contacts.csvfile import ContactRow, read_contacts
from bot.contacts.importing import import_rows
from bot.db import get_db
from bot.models import Broadcast, Contact, Message
from tests.test_admin import NOW, XSS_NAME, XSS_TEXT, admin, clock, csrf_of, receive  # noqa: F401

REGULARS = (
    "wa_id,name,labels,opted_in\n"
    "4915100000001,Anna Berger,Stammkunde,true\n"
    "4915100000002,Klaus Becker,stammkunde;Hochzeit,true\n"
    "4915100000003,Carla Vogt,STAMMKUNDE,true\n"
    "4915100000004,Dora Ohne,Stammkunde,false\n"
    "4915100000005,Emil Neu,,true\n"
)


def import_csv(app: Flask, text: str = REGULARS, at: datetime = NOW) -> None:
    """Contacts as `contacts import` reads them from a CSV file."""
    rows = [row for row in read_contacts(text) if isinstance(row, ContactRow)]
    with get_db(app).session() as session:
        import_rows(session, rows, at)


def check(admin: FlaskClient, **fields: Any) -> dict[str, Any]:
    html = admin.get("/admin/broadcasts/new").get_data(as_text=True)
    data = {"csrf_token": csrf_of(html), "kind": "text", "when": "now", **fields}
    response = admin.post("/admin/broadcasts/check.json", data=data)
    assert response.status_code == 200
    result: dict[str, Any] = response.get_json()
    return result


def create(admin: FlaskClient, **fields: Any) -> Any:
    html = admin.get("/admin/broadcasts/new").get_data(as_text=True)
    data = {"csrf_token": csrf_of(html), "kind": "text", "when": "now", **fields}
    return admin.post("/admin/broadcasts", data=data)


def test_the_audience_counts_opted_in_contacts_of_a_label_case_insensitively(
    app: Flask, admin: FlaskClient
) -> None:
    import_csv(app)
    # Klaus wrote an hour ago: a free text reaches him; the others only by template.
    receive(admin, wa_id="4915100000002", name="Klaus", at=NOW - timedelta(hours=1))
    for audience in ("label:Stammkunde", "label:stammkunde", "label: STAMMKUNDE "):
        found = check(admin, audience=audience, text="Hallo {{ contact.name }}!")
        assert (found["recipients"], found["reachable"]) == (3, 1)
    assert found["recipients_text"] == "3 Kontakte bekommen diese Rundsendung."
    assert found["reachable_text"].startswith("1 davon hat in den letzten 24 Stunden")
    # The preview is for the first of them, by name, as the run would render it.
    assert found["preview"]["title"] == "Vorschau für Anna Berger"
    assert found["preview"]["text"] == "Hallo Anna Berger!"
    everyone = check(admin, audience="all", kind="template", template="angebot", language="de")
    assert everyone["recipients"] == 4
    assert everyone["reachable_text"] == "Eine genehmigte Vorlage erreicht sie alle."
    assert check(admin, audience="label:Unbekannt", text="Hallo")["recipients"] == 0


def test_the_page_shows_the_reach_without_a_script_and_lists_the_labels(
    app: Flask, admin: FlaskClient
) -> None:
    import_csv(app)
    html = admin.get("/admin/broadcasts/new?audience=label:stammkunde").get_data(as_text=True)
    assert 'data-count="3">3 Kontakte bekommen diese Rundsendung.' in html
    assert re.search(r'<option value="label:Stammkunde"\s+selected', html)
    assert 'value="label:Hochzeit"' in html
    # Nobody wrote within 24 hours: a text would reach nobody, and the page says so.
    assert "Ein Text erreicht jetzt niemanden" in html
    # Monday first, in the page's language.
    days = re.findall(r'name="days" value="(\w+)"[^>]*> <abbr translate="no" title="(\w+)"', html)
    assert days[0] == ("mon", "Montag") and days[6] == ("sun", "Sonntag")


def test_a_weekly_broadcast_on_chosen_days_becomes_the_schedulers_cron_line(
    app: Flask, admin: FlaskClient
) -> None:
    import_csv(app)
    preview = check(
        admin, audience="label:Stammkunde", when="weekly", days=["mon", "thu"], weekly_time="10:00"
    )
    # Wednesday 11 March 2026: the next Thursday first.
    assert preview["when_text"] == (
        "Geht jeden Mo., Do. um 10:00 Uhr raus, zum ersten Mal am Do., 12. März 2026, 10:00."
    )
    assert preview["warnings"] == []
    response = create(
        admin,
        audience="label:Stammkunde",
        text="Frische Tulpen für [Name]!",
        when="weekly",
        days=["thu", "mon"],
        weekly_time="10:00",
    )
    assert response.status_code == 302
    with get_db(app).session() as session:
        stored = session.scalars(select(Broadcast)).one()
        assert (stored.cron, stored.at, stored.audience) == (
            "0 10 * * mon,thu",
            None,
            "label:Stammkunde",
        )
        # The placeholder is kept as the Jinja every broadcast renders with.
        assert stored.text == (
            "Frische Tulpen für{% if contact.name %} {{ contact.name }}{% endif %}!"
        )
    page = admin.get("/admin/broadcasts").get_data(as_text=True)
    coming = page[page.index('id="coming"') : page.index('id="past"')]
    assert "Jede Woche Mo., Do. um 10:00 Uhr" in coming
    assert "Frische Tulpen für [Name]!" in coming
    assert "Stammkunde" in coming
    assert "Do., 12. März 2026, 10:00" in coming


def test_sending_at_night_or_while_closed_asks_to_confirm_first(
    app: Flask, admin: FlaskClient
) -> None:
    import_csv(app)
    fields = {"audience": "all", "text": "Gute Nacht", "when": "at", "at": "2026-03-12T23:00"}
    warned = check(admin, **fields)
    assert warned["warnings"] == [
        "Do., 12. März 2026, 23:00 ist nachts, und das Geschäft ist geschlossen."
    ]
    # Lunch break: closed, but not night.
    lunch = check(admin, **{**fields, "at": "2026-03-12T13:00"})
    assert lunch["warnings"] == ["Do., 12. März 2026, 13:00 ist außerhalb Ihrer Öffnungszeiten."]
    asked = create(admin, **fields)
    assert asked.status_code == 200
    html = asked.get_data(as_text=True)
    assert "Zu dieser Zeit senden?" in html and 'name="confirmed" value="1"' in html
    assert "ist nachts" in html
    with get_db(app).session() as session:
        assert session.scalars(select(Broadcast)).all() == []
    assert create(admin, **fields, confirmed="1").status_code == 302
    with get_db(app).session() as session:
        assert session.scalars(select(Broadcast.at)).one() == datetime(
            2026, 3, 12, 22, 0, tzinfo=UTC
        )
    # A time in the opening hours is simply created.
    assert create(admin, **{**fields, "at": "2026-03-12T10:00"}).status_code == 302


def test_a_weekly_time_at_night_warns_for_each_day(admin: FlaskClient) -> None:
    found = check(admin, audience="all", when="weekly", days=["mon", "thu"], weekly_time="23:00")
    assert found["warnings"] == [
        "Do., 12. März 2026, 23:00 ist nachts, und das Geschäft ist geschlossen.",
        "Mo., 16. März 2026, 23:00 ist nachts, und das Geschäft ist geschlossen.",
    ]


def test_a_time_in_the_past_is_refused(admin: FlaskClient) -> None:
    response = create(admin, audience="all", text="Hallo", when="at", at="2026-03-10T10:00")
    assert response.status_code == 400
    assert "schon vorbei" in response.get_data(as_text=True)


def sent_broadcast(app: Flask) -> int:
    """A broadcast to the regulars, written to the outbox: Anna read it, Klaus got it, Carla's
    failed at the Graph API; Emil is outside the window."""
    import_csv(app)
    with get_db(app).session() as session:
        session.execute(update(Contact).values(last_inbound_at=NOW - timedelta(hours=2)))
        session.execute(
            update(Contact).where(Contact.name == "Emil Neu").values(last_inbound_at=None)
        )
        created = broadcasts.create(
            session,
            broadcasts.Content(text="Hallo {{ contact.name }}"),
            parse_audience("all"),
            timezone="Europe/Berlin",
            now=NOW,
        )
        broadcast_id = created.id
        run_id = broadcasts.start_run(session, broadcast_id, NOW, NOW)
    assert run_id is not None
    broadcasts.write_run(get_db(app), run_id, clock=lambda: NOW)
    outcome = {
        "Anna Berger": ("read", None),
        "Klaus Becker": ("delivered", None),
        "Carla Vogt": ("failed", "(#131026) Message undeliverable"),
    }
    with get_db(app).session() as session:
        for message in session.scalars(select(Message).where(Message.broadcast_run_id == run_id)):
            if message.contact.name in outcome:
                message.status, message.error_reason = outcome[message.contact.name]
    return broadcast_id


def test_a_broadcasts_page_shows_the_funnel_in_numbers_and_percentages_and_its_recipients(
    app: Flask, admin: FlaskClient
) -> None:
    broadcast_id = sent_broadcast(app)
    html = admin.get(f"/admin/broadcasts/{broadcast_id}").get_data(as_text=True)
    funnel = {
        key: (count, share)
        for key, count, share in re.findall(
            r'data-key="(\w+)">\s*<span class="f-label"[^>]*>[^<]*</span>\s*'
            r'<span class="f-count"[^>]*>(\d+)</span>\s*<span class="f-share"[^>]*>([^<]*)</span>',
            html,
        )
    }
    assert funnel == {
        "total": ("4", "100\xa0%"),
        "sent": ("2", "50\xa0%"),
        "delivered": ("2", "50\xa0%"),
        "read": ("1", "25\xa0%"),
        "failed": ("1", "25\xa0%"),
        "skipped": ("1", "25\xa0%"),
        "pending": ("0", "0\xa0%"),
    }
    assert ">Gelesen<" in html and ">Zugestellt<" in html
    recipients = html[html.index('id="recipients"') :]
    for name in ("Anna Berger", "Klaus Becker", "Carla Vogt", "Emil Neu"):
        assert name in recipients
    assert "+49 1510 0000003" in recipients  # spaced as phonenumbers reads it
    assert "(#131026) Message undeliverable" in recipients
    assert "Hat in den letzten 24 Stunden nicht geschrieben" in recipients
    assert "Gesendet" in html  # the status of a broadcast whose run is written and sent
    page = admin.get("/admin/broadcasts").get_data(as_text=True)
    past = page[page.index('id="past"') :]
    assert f'href="/admin/broadcasts/{broadcast_id}"' in past
    assert "4 Empfänger · 1 gelesen (25\xa0%)" in past


def test_cancel_confirms_in_the_browser_and_works_without_it(
    app: Flask, admin: FlaskClient
) -> None:
    create(admin, audience="all", text="Hallo", when="at", at="2026-03-12T10:00")
    with get_db(app).session() as session:
        broadcast_id = session.scalars(select(Broadcast.id)).one()
    html = admin.get(f"/admin/broadcasts/{broadcast_id}").get_data(as_text=True)
    assert 'data-confirm="broadcast_cancel"' in html
    assert "Diese Rundsendung abbrechen?" in html  # the question, in the page's texts
    response = admin.post(
        f"/admin/broadcasts/{broadcast_id}/cancel", data={"csrf_token": csrf_of(html)}
    )
    assert response.headers["Location"] == f"/admin/broadcasts/{broadcast_id}"
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "Die Rundsendung ist abgebrochen" in page and "Abgebrochen" in page
    assert (
        admin.post("/admin/broadcasts/999/cancel", data={"csrf_token": csrf_of(html)}).status_code
        == 404
    )
    assert admin.get("/admin/broadcasts/999").status_code == 404


def test_a_sent_broadcast_cannot_be_cancelled(app: Flask, admin: FlaskClient) -> None:
    broadcast_id = sent_broadcast(app)
    html = admin.get(f"/admin/broadcasts/{broadcast_id}").get_data(as_text=True)
    assert 'data-confirm="broadcast_cancel"' not in html
    admin.post(f"/admin/broadcasts/{broadcast_id}/cancel", data={"csrf_token": csrf_of(html)})
    page = admin.get(f"/admin/broadcasts/{broadcast_id}").get_data(as_text=True)
    assert "kann nicht mehr abgebrochen werden" in page


def test_customer_and_owner_text_is_escaped_on_the_broadcast_pages(
    app: Flask, admin: FlaskClient
) -> None:
    import_csv(app, f"wa_id,name,labels,opted_in\n4915100000009,{XSS_NAME},{XSS_NAME},true\n")
    receive(admin, wa_id="4915100000009", name=XSS_NAME)
    found = check(admin, audience=f"label:{XSS_NAME}", text=XSS_TEXT + " {{ contact.name }}")
    assert found["preview"]["text"] == f"{XSS_TEXT} {XSS_NAME}"  # JSON: the script sets textContent
    response = create(admin, audience=f"label:{XSS_NAME}", text=XSS_TEXT)
    assert response.status_code == 302
    for path in ("/admin/broadcasts", response.headers["Location"], "/admin/broadcasts/new"):
        html = admin.get(path).get_data(as_text=True)
        assert XSS_TEXT not in html and XSS_NAME not in html, path
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html or "&lt;img" in html
    refused = create(admin, audience=f"label:{XSS_NAME}", text=XSS_TEXT, when="cron", cron=XSS_TEXT)
    assert refused.status_code == 400
    assert XSS_TEXT not in refused.get_data(as_text=True)


@pytest.mark.parametrize("when", ["now", "at"])
def test_the_cli_and_the_page_make_the_same_broadcast(
    app: Flask, admin: FlaskClient, runner: Any, when: str
) -> None:
    import json

    at = {"at": "2026-03-12T10:00"} if when == "at" else {}
    create(admin, audience="label:Stammkunde", text="Hallo", when=when, **at)
    args = ["broadcast", "create", "--text", "Hallo", "--audience", "label:Stammkunde"]
    cli = runner.invoke(args=args + (["--at", "2026-03-12T10:00"] if at else []))
    assert cli.exit_code == 0, cli.output
    with get_db(app).session() as session:
        page, line = session.scalars(select(Broadcast).order_by(Broadcast.id)).all()
        assert (page.kind, page.text, page.audience, page.at, page.cron) == (
            line.kind,
            line.text,
            line.audience,
            page.at if when == "now" else line.at,
            line.cron,
        )
    shown = runner.invoke(args=["broadcast", "show", str(page.id), "--json"])
    assert set(json.loads(shown.output)) == {
        "id", "status", "total", "pending", "sent", "delivered", "read", "failed", "skipped",
        "capped", "deferred",
    }  # fmt: skip
