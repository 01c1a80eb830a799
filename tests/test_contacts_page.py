"""The contacts and labels pages through Flask's test client, the phone number rules, and the
shop's name kept beside the WhatsApp profile name."""

from __future__ import annotations

import io
import re
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.contacts.csvfile import ContactRow, read_contacts
from bot.contacts.label_names import default_labels
from bot.contacts.names import name_after_message
from bot.contacts.numbers import (
    NumberError,
    Problem,
    business_region,
    display,
    search_digits,
    to_wa_id,
    wa_id_or_digits,
)
from bot.db import get_db
from bot.models import Broadcast, ConsentEvent, Contact, Label
from tests.test_admin import XSS_NAME, Clock, admin, clock, csrf_of, receive  # noqa: F401

ESCAPED_XSS = "&lt;img src=x onerror=alert(1)&gt;"


# --- numbers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "wa_id"),
    [
        ("0151 23456789", "4915123456789"),  # national, read in the business's country
        ("0151/234 567-89", "4915123456789"),
        ("+49 151 23456789", "4915123456789"),
        ("0049 151 23456789", "4915123456789"),
        ("4915123456789", "4915123456789"),  # a wa_id as it is
        ("+49 (0)151 23456789", "4915123456789"),
        ("+43 664 1234567", "436641234567"),  # another country
        ("0043 664 1234567", "436641234567"),
    ],
)
def test_numbers_in_any_form_become_the_wa_id(typed: str, wa_id: str) -> None:
    assert to_wa_id(typed, "DE") == wa_id


def test_a_national_number_is_read_in_the_businesss_country() -> None:
    assert to_wa_id("0664 1234567", "AT") == "436641234567"
    assert to_wa_id("030 1234567", "DE") == "49301234567"
    with pytest.raises(NumberError) as refused:
        to_wa_id("0151 23456789", None)
    assert refused.value.problem == Problem.NO_COUNTRY


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("0151 2345678", Problem.TOO_SHORT),  # one digit too few
        ("+49 151 2345678", Problem.TOO_SHORT),
        ("0151 234567890", Problem.TOO_LONG),
        ("", Problem.EMPTY),
        ("Klaus", Problem.NOT_A_NUMBER),
        ("+49 151 abc", Problem.NOT_A_NUMBER),
        ("12", Problem.INVALID),
    ],
)
def test_a_number_that_is_none_is_refused_and_says_why(typed: str, problem: Problem) -> None:
    with pytest.raises(NumberError) as refused:
        to_wa_id(typed, "DE")
    assert refused.value.problem == problem


def test_the_region_comes_from_the_holidays_country_else_the_locale() -> None:
    assert business_region("de_DE") == "DE"
    assert business_region("de_AT") == "AT"
    assert business_region("de_DE", "ch") == "CH"
    assert business_region("de") == "DE"  # no territory: the default


def test_numbers_show_in_the_international_format() -> None:
    assert display("4915123456789") == "+49 1512 3456789"  # as phonenumbers groups it
    assert display("436641234567") == "+43 664 1234567"
    assert display("491") == "+491"  # stored before numbers were checked: shown as it is
    assert display(None) == ""


def test_a_search_finds_a_number_in_any_form() -> None:
    assert search_digits("0151 23456789", "DE") == "4915123456789"
    assert search_digits("+49 151 2345", "DE") == "491512345"
    assert search_digits("0151 234", "DE") == "151234"
    assert search_digits("Becker", "DE") is None


def test_command_line_numbers_keep_accepting_plain_wa_ids() -> None:
    assert wa_id_or_digits("0151 23456789", "DE") == "4915123456789"
    assert wa_id_or_digits("123", "DE") == "123"  # no valid number, but a wa_id's digits
    with pytest.raises(NumberError):
        wa_id_or_digits("0151 2345678", "DE")


def test_a_csv_reads_national_numbers_in_the_region_and_refuses_short_ones() -> None:
    text = (
        "wa_id,name,labels,opted_in\n"
        "0151 23456789,Klaus Becker,,true\n"
        "0151 2345678,Ein Zu Kurz,,true\n"
        "+43 664 1234567,Anna Huber,,false\n"
    )
    rows = list(read_contacts(text, "DE"))
    assert rows[0] == ContactRow(2, "4915123456789", "Klaus Becker", None, True)
    assert (rows[1].line, rows[1].problem) == (3, Problem.TOO_SHORT)
    assert "too short" in rows[1].reason
    assert rows[2] == ContactRow(4, "436641234567", "Anna Huber", None, False)


# --- names ------------------------------------------------------------------------------------


def test_the_shops_name_is_kept_and_the_profile_name_follows_otherwise() -> None:
    assert name_after_message("Klaus Becker", True, "Klausi") == "Klaus Becker"
    assert name_after_message("Klausi", False, "K. B.") == "K. B."
    assert name_after_message(None, True, "Klausi") == "Klausi"
    assert name_after_message("Klaus", False, None) == "Klaus"


def import_file(admin: FlaskClient, text: str, name: str = "kunden.csv") -> Any:  # noqa: F811
    page = admin.get("/admin/contacts/import").get_data(as_text=True)
    data = {"csrf_token": csrf_of(page), "file": (io.BytesIO(text.encode()), name)}
    return admin.post("/admin/contacts/import", data=data, content_type="multipart/form-data")


def contact_by(app: Flask, wa_id: str) -> Contact:
    with get_db(app).session() as session:
        query = select(Contact).where(Contact.wa_id == wa_id)
        found = session.scalar(query.options(selectinload(Contact.labels)))
        assert found is not None
        session.expunge(found)
        return found


def test_an_imported_name_stays_when_the_customer_writes_with_another_profile_name(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    import_file(admin, "wa_id,name\n0151 23456789,Klaus Becker\n")
    receive(admin, wa_id="4915123456789", name="Klausi 🌻")
    contact = contact_by(app, "4915123456789")
    assert (contact.name, contact.profile_name) == ("Klaus Becker", "Klausi 🌻")
    page = admin.get(f"/admin/contacts/{contact.id}").get_data(as_text=True)
    assert "Klaus Becker" in page and "WhatsApp: Klausi 🌻" in page
    # A contact the shop never named goes by their profile name, and follows it.
    receive(admin, wa_id="4915198765432", name="Anna")
    receive(admin, {"id": "wamid.second"}, wa_id="4915198765432", name="Anna M.")
    assert contact_by(app, "4915198765432").name == "Anna M."


def test_the_name_given_in_the_admin_stays_and_an_empty_one_gives_the_profile_name_back(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    receive(admin, wa_id="4915198765432", name="Anna")
    cid = contact_by(app, "4915198765432").id
    edit = f"/admin/contacts/{cid}/edit"
    token = csrf_of(admin.get(edit).get_data(as_text=True))
    form = {"csrf_token": token, "name": "Anna Schmidt", "number": "0151 98765432"}
    assert admin.post(edit, data=form).status_code == 302
    receive(admin, {"id": "wamid.again"}, wa_id="4915198765432", name="Anni")
    assert contact_by(app, "4915198765432").name == "Anna Schmidt"
    assert admin.post(edit, data={**form, "name": ""}).status_code == 302
    assert contact_by(app, "4915198765432").name == "Anni"


# --- the pages --------------------------------------------------------------------------------

BECKER_CSV = (
    "wa_id,name,labels,opted_in\n"
    "0151 23456789,Klaus Becker,Stammkunde,true\n"
    "0151 2345678,Zu Kurz,,true\n"
    "+49 160 11111111,Berta Blume,,false\n"
    "+43 664 1234567,Anna Huber,stammkunde;Wien,yes\n"
)


def names_found(admin: FlaskClient, **query: str) -> list[str]:  # noqa: F811
    html = admin.get("/admin/contacts", query_string=query).get_data(as_text=True)
    return [unescape(n) for n in re.findall(r'<span class="name" translate="no">([^<]*)<', html)]


def test_import_in_the_browser_reports_bad_lines_like_the_command_line(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    response = import_file(admin, BECKER_CSV)
    assert response.status_code == 200
    html = unescape(response.get_data(as_text=True))
    assert "Zeile 3: „0151 2345678“ ist zu kurz für eine Telefonnummer" in html
    assert "3 Kontakte importiert" in html and "1 fehlerhafte Zeile übersprungen" in html
    assert contact_by(app, "436641234567").opted_in is True
    labels = {lb.name for lb in contact_by(app, "436641234567").labels}
    assert labels == {"Stammkunde", "Wien"}


def test_import_refuses_a_file_without_the_header(admin: FlaskClient) -> None:  # noqa: F811
    response = import_file(admin, "Name;Telefon\nKlaus;0151 23456789\n")
    assert response.status_code == 400
    assert "keine Spalte wa_id" in unescape(response.get_data(as_text=True))


def test_search_by_surname_number_in_any_form_and_label(admin: FlaskClient) -> None:  # noqa: F811
    import_file(admin, BECKER_CSV)
    assert names_found(admin, q="Becker") == ["Klaus Becker"]
    assert names_found(admin, q="becker klaus") == ["Klaus Becker"]
    assert names_found(admin, q="0151 23456789") == ["Klaus Becker"]
    assert names_found(admin, q="+49 151 2345 6789") == ["Klaus Becker"]
    assert names_found(admin, q="664 123") == ["Anna Huber"]
    assert names_found(admin, q="STAMMKUNDE") == ["Anna Huber", "Klaus Becker"]
    assert names_found(admin, label="stammkunde") == ["Anna Huber", "Klaus Becker"]
    assert names_found(admin, opted_in="no") == ["Berta Blume"]
    assert names_found(admin, opted_in="yes", q="Anna") == ["Anna Huber"]
    assert names_found(admin, q="100%_") == []


def test_select_several_contacts_and_give_or_take_a_label(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    import_file(admin, BECKER_CSV)
    html = admin.get("/admin/contacts").get_data(as_text=True)
    ids = re.findall(r'name="contact" value="(\d+)"', html)
    assert len(ids) == 3
    form = {"csrf_token": csrf_of(html), "contact": ids, "label_name": "adventskranz"}
    response = admin.post("/admin/contacts/labels", data={**form, "action": "add"})
    assert response.status_code == 302
    assert "Label „adventskranz“ an 3 Kontakte vergeben." in unescape(
        admin.get("/admin/contacts").get_data(as_text=True)
    )
    assert len(names_found(admin, label="Adventskranz")) == 3
    admin.post("/admin/contacts/labels", data={**form, "contact": ids[:1], "action": "remove"})
    assert len(names_found(admin, label="ADVENTSKRANZ")) == 2


def test_add_and_edit_a_contact_with_the_number_checked(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    page = admin.get("/admin/contacts/new").get_data(as_text=True)
    form = {
        "csrf_token": csrf_of(page),
        "name": "Klaus Becker",
        "number": "0151 2345678",
        "label": ["Neuer Kunde", "Hochzeit"],
        "opted_in": "yes",
    }
    refused = admin.post("/admin/contacts/new", data=form)
    assert refused.status_code == 400
    assert "ist zu kurz für eine Telefonnummer" in unescape(refused.get_data(as_text=True))
    added = admin.post("/admin/contacts/new", data={**form, "number": "0151 23456789"})
    assert added.status_code == 302
    contact = contact_by(app, "4915123456789")
    assert contact.name == "Klaus Becker" and contact.name_by_shop and contact.opted_in
    assert {lb.name for lb in contact.labels} == {"Neuer Kunde", "Hochzeit"}
    page = unescape(admin.get(added.headers["Location"]).get_data(as_text=True))
    assert "+49 1512 3456789" in page
    assert "eingetragen" in page  # the consent record names the admin
    # The same number again is refused with a link to the contact who has it.
    again = admin.post("/admin/contacts/new", data={**form, "number": "+49 151 23456789"})
    assert again.status_code == 400
    assert f"/admin/contacts/{contact.id}" in again.get_data(as_text=True)
    with get_db(app).session() as session:
        sources = list(session.scalars(select(ConsentEvent.source)))
    assert sources == ["admin"]


def test_the_contact_page_shows_history_consent_labels_and_links_the_conversation(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    receive(admin, {"text": {"body": "Haben Sie Tulpen?"}}, wa_id="4915123456789", name="Klaus")
    receive(admin, {"id": "wamid.stop", "text": {"body": "STOP"}}, wa_id="4915123456789")
    cid = contact_by(app, "4915123456789").id
    html = unescape(admin.get(f"/admin/contacts/{cid}").get_data(as_text=True))
    assert "Haben Sie Tulpen?" in html
    assert f'href="/admin/inbox/{cid}"' in html
    assert "Einwilligungen" in html and "abgemeldet" in html and "Stichwort" in html
    assert "Bekommt keine Rundsendungen." in html


def test_export_writes_the_import_header_and_reads_back(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    import_file(admin, BECKER_CSV)
    response = admin.get("/admin/contacts/export.csv?label=stammkunde")
    assert response.mimetype == "text/csv"
    text = response.get_data(as_text=True)
    assert text.splitlines() == [
        "wa_id,name,labels,opted_in",
        "436641234567,Anna Huber,Stammkunde;Wien,true",
        "4915123456789,Klaus Becker,Stammkunde,true",
    ]
    assert [r.wa_id for r in read_contacts(text) if isinstance(r, ContactRow)] == [
        "436641234567",
        "4915123456789",
    ]


def test_a_name_that_is_a_spreadsheet_formula_is_exported_as_text(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    import_file(admin, 'wa_id,name\n0151 23456789,\'=HYPERLINK("x")\n')
    assert contact_by(app, "4915123456789").name == '=HYPERLINK("x")'
    text = admin.get("/admin/contacts/export.csv").get_data(as_text=True)
    assert "'=HYPERLINK" in text


def test_the_import_on_the_command_line_reads_national_numbers_in_the_businesss_country(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
    runner: FlaskCliRunner,
    tmp_path: Path,
) -> None:
    path = tmp_path / "kunden.csv"
    path.write_text(BECKER_CSV)
    result = runner.invoke(args=["contacts", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "line 3: '0151 2345678' is too short for a phone number (a digit missing?); row skipped",
        "3 contacts imported: 3 new, 0 updated, 0 unchanged; 1 bad rows skipped",
    ]
    assert contact_by(app, "4915123456789").name_by_shop


def test_simulate_takes_the_number_as_typed(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
    runner: FlaskCliRunner,
) -> None:
    import_file(admin, "wa_id,name\n0151 23456789,Klaus Becker\n")
    args = ["simulate", "--text", "Hallo", "--from", "0151 23456789", "--json"]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["simulate", "--text", "Hallo", "--from", "0151 2345678"])
    assert result.exit_code != 0 and "too short" in result.output


# --- labels -----------------------------------------------------------------------------------


def labels_of(app: Flask) -> dict[str, str | None]:
    with get_db(app).session() as session:
        return {lb.name: lb.color for lb in session.scalars(select(Label))}


def test_a_new_business_starts_with_the_whatsapp_business_apps_labels(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    assert labels_of(app) == dict(default_labels("de_DE"))
    assert default_labels("en_GB")[0] == ("New customer", "blue")
    html = unescape(admin.get("/admin/labels").get_data(as_text=True))
    for name in ("Neuer Kunde", "Neue Bestellung", "Zahlung ausstehend", "Bezahlt"):
        assert f'translate="no">{name}</span>' in html
    assert "Bestellung abgeschlossen" in html


def label_id(app: Flask, name: str) -> int:
    with get_db(app).session() as session:
        found = session.scalar(select(Label.id).where(Label.name == name))
        assert found is not None
        return found


def test_rename_recolour_and_delete_a_label(app: Flask, admin: FlaskClient) -> None:  # noqa: F811
    import_file(admin, "wa_id,labels\n0151 23456789,Bezahlt\n")
    with get_db(app).session() as session:
        session.add(
            Broadcast(kind="text", text="Hallo", audience="label:bezahlt", timezone="Europe/Berlin")
        )
    token = csrf_of(admin.get("/admin/labels").get_data(as_text=True))
    paid = label_id(app, "Bezahlt")
    form = {"csrf_token": token, "name": "Bezahlt ✓", "color": "purple"}
    assert admin.post(f"/admin/labels/{paid}", data=form).status_code == 302
    assert labels_of(app)["Bezahlt ✓"] == "purple"
    assert {lb.name for lb in contact_by(app, "4915123456789").labels} == {"Bezahlt ✓"}
    with get_db(app).session() as session:
        assert session.scalar(select(Broadcast.audience)) == "label:Bezahlt ✓"
    # Another label's name, whatever its case, is refused.
    taken = {**form, "name": "neuer KUNDE"}
    admin.post(f"/admin/labels/{paid}", data=taken)
    html = unescape(admin.get("/admin/labels").get_data(as_text=True))
    assert "Es gibt schon ein Label „neuer KUNDE“." in html
    assert "Bezahlt ✓" in labels_of(app)
    # A new label, and one that exists in another case, refused.
    admin.post("/admin/labels", data={"csrf_token": token, "name": "Hochzeit", "color": "pink"})
    assert labels_of(app)["Hochzeit"] == "pink"
    admin.post("/admin/labels", data={"csrf_token": token, "name": "HOCHZEIT"})
    assert "HOCHZEIT" not in labels_of(app)
    # Deleting asks first (on the page) and takes the label from its contacts.
    assert "data-confirm=" in html
    assert admin.post(f"/admin/labels/{paid}/delete", data={"csrf_token": token}).status_code == 302
    assert "Bezahlt ✓" not in labels_of(app)
    assert contact_by(app, "4915123456789").labels == []


def test_labels_page_counts_contacts(admin: FlaskClient) -> None:  # noqa: F811
    import_file(admin, BECKER_CSV)
    html = unescape(admin.get("/admin/labels").get_data(as_text=True))
    assert re.search(
        r'translate="no">Stammkunde</span>\s*<span class="label-count">2 Kontakte', html
    )


# --- escaping ---------------------------------------------------------------------------------


def test_names_and_labels_are_escaped_on_every_contacts_page(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    receive(admin, {"text": {"body": XSS_NAME}}, wa_id="4915123456789", name=XSS_NAME)
    import_file(admin, f'wa_id,labels\n0151 98765432,"{XSS_NAME}"\n')
    cid = contact_by(app, "4915123456789").id
    other = contact_by(app, "4915198765432").id
    token = csrf_of(admin.get("/admin/labels").get_data(as_text=True))
    edit = {"csrf_token": token, "name": XSS_NAME + " shop", "number": "0151 23456789"}
    admin.post(f"/admin/contacts/{cid}/edit", data=edit)
    for path in (
        "/admin/contacts",
        f"/admin/contacts?q={XSS_NAME}",
        f"/admin/contacts/{cid}",
        f"/admin/contacts/{cid}/edit",
        f"/admin/contacts/{other}",
        "/admin/labels",
    ):
        html = admin.get(path).get_data(as_text=True)
        assert XSS_NAME not in html, path
        assert ESCAPED_XSS in html, path
    report = import_file(admin, f"wa_id,name\n{XSS_NAME},x\n").get_data(as_text=True)
    assert XSS_NAME not in report and ESCAPED_XSS in report


def test_a_contact_known_by_user_id_only_is_named_without_a_number(
    app: Flask,
    admin: FlaskClient,  # noqa: F811
) -> None:
    with get_db(app).session() as session:
        contact = Contact(user_id="DE.1234567890", profile_name="Anni", name="Anni")
        session.add(contact)
        session.flush()
        cid = contact.id
    edit = f"/admin/contacts/{cid}/edit"
    token = csrf_of(admin.get(edit).get_data(as_text=True))
    response = admin.post(edit, data={"csrf_token": token, "name": "Anna Schmidt", "number": ""})
    assert response.status_code == 302
    with get_db(app).session() as session:
        saved = session.get(Contact, cid)
        assert saved is not None and (saved.name, saved.wa_id) == ("Anna Schmidt", None)
