"""Contacts: the CSV reader's edge cases, `contacts import`, and the opt-in record."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from click.testing import Result
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.contacts.csvfile import (
    BadRow,
    ContactRow,
    CsvError,
    decode,
    normalize_wa_id,
    read_contacts,
)
from bot.db import get_db
from bot.models import ConsentEvent, Contact
from tests.conftest import PYWA_UPDATES, load_json, post_notification
from tests.test_autoreply import TUESDAY_MORNING, at, say, shop  # noqa: F401


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4915112345678", "4915112345678"),
        ("+49 151 12345678", "4915112345678"),
        ("+49 (0)151 1234-5678".replace("(0)", ""), "4915112345678"),
        ("0049 151 / 123 456 78", "4915112345678"),
        ("+49.151.123.456.78", "4915112345678"),
        ("\u202a+49 151 12345678", None),  # an invisible mark Excel can leave: refused
        (" +1 (650) 555-1234 ", "16505551234"),
    ],
)
def test_phone_numbers_become_e164_digits(text: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(ValueError, match="not a phone number"):
            normalize_wa_id(text)
    else:
        assert normalize_wa_id(text) == expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no phone number"),
        ("0151 12345678", "no country code"),
        ("+49 151 abc", "not a phone number"),
        ("+49 15", "not a valid phone number"),
        ("+49 151 1234567", "too short for a phone number"),
        ("+49 151 1234567890123", "too long for a phone number"),
    ],
)
def test_bad_phone_numbers_say_why(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        normalize_wa_id(text)


def test_an_excel_export_with_bom_and_semicolons_reads_like_a_plain_file() -> None:
    excel = (
        "\ufeffwa_id;name;labels;opted_in\r\n"
        '+49 151 11111111;Anna Müller;"vip;stammkunde";TRUE\r\n'
        "0049 151 22222222;Ben;;false\r\n"
    ).encode()
    plain = (
        "wa_id,name,labels,opted_in\n"
        '4915111111111,Anna Müller,"vip;stammkunde",true\n'
        "4915122222222,Ben,,false\n"
    ).encode()
    expected = [
        ContactRow(2, "4915111111111", "Anna Müller", ("vip", "stammkunde"), True),
        ContactRow(3, "4915122222222", "Ben", None, False),
    ]
    assert list(read_contacts(decode(excel))) == expected
    assert list(read_contacts(decode(plain))) == expected


def test_labels_repeated_in_another_case_are_one_label() -> None:
    text = "wa_id,labels\n+4915111111111,Stammkunden;STAMMKUNDEN;Straße;STRASSE;strasse\n"
    [row] = read_contacts(text)
    assert row.labels == ("Stammkunden", "Straße")


def test_windows_1252_files_are_read() -> None:
    data = "wa_id;name\n+4915111111111;Jürgen Weiß\n".encode("cp1252")
    [row] = read_contacts(decode(data))
    assert isinstance(row, ContactRow)
    assert row.name == "Jürgen Weiß"


def test_bad_rows_are_reported_by_line_and_the_rest_read() -> None:
    text = (
        "wa_id,name,labels,opted_in\n"
        "+4915111111111,Anna,,true\n"
        "\n"
        "0151 2222222,Ben,,true\n"
        "+4915133333333,Cem,,vielleicht\n"
        '"+4915144444444","Dana\nzweite Zeile",,true\n'
        "+4915155555555,Emil,,false,extra\n"
        "+49 151 11111111,Anna again,neu,\n"
    )
    rows = list(read_contacts(text))
    assert [(type(r).__name__, r.line) for r in rows] == [
        ("ContactRow", 2),
        ("BadRow", 4),
        ("BadRow", 5),
        ("ContactRow", 6),
        ("BadRow", 8),
        ("ContactRow", 9),
    ]
    bad = [r for r in rows if isinstance(r, BadRow)]
    assert "no country code" in bad[0].reason
    assert "opted_in is 'vielleicht'" in bad[1].reason
    assert "5 fields" in bad[2].reason
    last = rows[-1]
    assert isinstance(last, ContactRow)
    assert (last.wa_id, last.duplicate_of, last.opted_in, last.labels) == (
        "4915111111111",
        2,
        None,
        ("neu",),
    )


@pytest.mark.parametrize(
    "stray",
    ["+4915144444444,Dana,,true", '+4915144444444,Dana",,true', '"+4915144444444",Dana,,true'],
    ids=["no-quote-after", "stray-quote-after", "quoted-row-after"],
)
def test_an_unclosed_quote_is_reported_on_its_line_and_the_rows_after_it_are_read(
    stray: str,
) -> None:
    text = (
        "wa_id,name,labels,opted_in\n"
        "+4915111111111,Anna,,true\n"
        '+4915122222222,"Ben,,true\n'
        "+4915133333333,Cem,,true\n"
        f"{stray}\n"
        "+4915155555555,Emil,,false\n"
    )
    rows = list(read_contacts(text))
    assert [(type(r).__name__, r.line) for r in rows] == [
        ("ContactRow", 2),
        ("BadRow", 3),
        ("ContactRow", 4),
        ("ContactRow", 5),
        ("ContactRow", 6),
    ]
    bad = rows[1]
    assert isinstance(bad, BadRow) and bad.reason.startswith("unclosed quote")
    assert [r.wa_id for r in rows if isinstance(r, ContactRow)] == [
        "4915111111111",
        "4915133333333",
        "4915144444444",
        "4915155555555",
    ]


def test_a_cell_with_line_breaks_as_excel_writes_it_is_one_field() -> None:
    text = (
        "wa_id;name;labels;opted_in\r\n"
        '+4915111111111;"Anna\r\nMüller";"vip\r\nstammkunde";true\r\n'
        "+4915122222222;Ben;;false\r\n"
    )
    assert list(read_contacts(text)) == [
        ContactRow(2, "4915111111111", "Anna Müller", ("vip stammkunde",), True),
        ContactRow(5, "4915122222222", "Ben", None, False),
    ]


def test_a_header_with_an_unclosed_quote_is_refused_with_its_line() -> None:
    with pytest.raises(CsvError, match="line 1: unclosed quote"):
        list(read_contacts('wa_id,"name,labels\n+4915111111111,Anna,,\n'))


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "empty"), ("name,labels\nAnna,vip\n", "no wa_id column")],
)
def test_a_file_without_a_wa_id_header_is_refused(text: str, message: str) -> None:
    with pytest.raises(CsvError, match=message):
        list(read_contacts(text))


def import_csv(
    runner: FlaskCliRunner, folder: Path, text: str, name: str = "contacts.csv"
) -> Result:
    """`contacts import` of a file holding `text`."""
    path = folder / name
    path.write_bytes(text.encode())
    return runner.invoke(args=["contacts", "import", str(path)])


def imported(runner: FlaskCliRunner, folder: Path, text: str, name: str = "contacts.csv") -> str:
    """What a `contacts import` that must succeed prints."""
    result = import_csv(runner, folder, text, name)
    assert result.exit_code == 0, result.output
    return result.output


def contacts(app: Flask) -> dict[str, Contact]:
    with get_db(app).session() as session:
        query = select(Contact).options(selectinload(Contact.labels))
        return {c.wa_id or "": c for c in session.scalars(query)}


def consent(app: Flask) -> list[tuple[str, bool, str]]:
    with get_db(app).session() as session:
        rows = session.execute(
            select(Contact.wa_id, ConsentEvent.opted_in, ConsentEvent.source)
            .join(Contact, Contact.id == ConsentEvent.contact_id)
            .order_by(ConsentEvent.id)
        ).all()
    return [(r[0] or "", r[1], r[2]) for r in rows]


def test_import_creates_and_updates_never_duplicates(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    output = imported(
        runner,
        tmp_path,
        "wa_id,name,labels,opted_in\n"
        "+49 151 11111111,Anna,vip;Stammkunde,true\n"
        "+49 151 22222222,Ben,,false\n"
        "0151 3333333,Cem,,true\n",
    )
    assert "line 4: '0151 3333333' is too short for a phone number (a digit missing?)" in output
    assert "2 contacts imported: 2 new, 0 updated, 0 unchanged; 1 bad rows skipped" in output
    output = imported(
        runner,
        tmp_path,
        "\ufeffwa_id;name;labels;opted_in\n4915111111111;Anna Müller;VIP;\n+4915122222222;;;ja\n",
        "again.csv",
    )
    assert "2 contacts imported: 0 new, 2 updated" in output
    found = contacts(app)
    assert set(found) == {"4915111111111", "4915122222222"}
    anna, ben = found["4915111111111"], found["4915122222222"]
    assert (anna.name, [lb.name for lb in anna.labels], anna.opted_in) == (
        "Anna Müller",
        ["vip"],  # labels match without case, and the file's labels replace the old ones
        True,
    )
    assert (ben.name, ben.opted_in, ben.opted_in_source) == ("Ben", True, "import")
    assert consent(app) == [("4915111111111", True, "import"), ("4915122222222", True, "import")]


def test_import_finds_labels_whatever_their_case_and_keeps_the_first_spelling(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    imported(runner, tmp_path, "wa_id,labels\n+4915111111111,Straße\n")
    imported(runner, tmp_path, "wa_id,labels\n+4915122222222,STRASSE\n", "again.csv")
    found = contacts(app)
    assert [lb.name for c in found.values() for lb in c.labels] == ["Straße", "Straße"]


def test_import_reports_an_unclosed_quote_and_imports_the_rows_after_it(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    output = imported(
        runner,
        tmp_path,
        "wa_id,name,labels,opted_in\n"
        "+49 151 11111111,Anna,,true\n"
        '+49 151 22222222,"Ben,,true\n'
        "+49 151 33333333,Cem,,true\n"
        "+49 151 44444444,Dana,,true\n"
        "+49 151 55555555,Emil,,false\n",
    )
    assert "line 3: unclosed quote" in output
    assert "4 contacts imported: 4 new, 0 updated, 0 unchanged; 1 bad rows skipped" in output
    assert set(contacts(app)) == {
        "4915111111111",
        "4915133333333",
        "4915144444444",
        "4915155555555",
    }


def test_import_of_a_file_without_the_header_changes_nothing(
    app: Flask, runner: FlaskCliRunner, tmp_path: Path
) -> None:
    result = import_csv(runner, tmp_path, "phone,name\n+4915111111111,A\n")
    assert result.exit_code != 0
    assert "no wa_id column" in result.output
    assert contacts(app) == {}


def test_a_contact_who_writes_is_not_opted_in_until_start(
    shop: Flask,  # noqa: F811
    client: FlaskClient,
) -> None:
    at(shop, TUESDAY_MORNING)
    say(client, "Hallo", TUESDAY_MORNING)
    assert contacts(shop)["4915112345678"].opted_in is False
    assert consent(shop) == []
    say(client, "START", TUESDAY_MORNING)
    say(client, "stop", TUESDAY_MORNING)
    assert consent(shop) == [
        ("4915112345678", True, "keyword"),
        ("4915112345678", False, "keyword"),
    ]


def test_whatsapps_marketing_preference_is_recorded(app: Flask, client: FlaskClient) -> None:
    resume = load_json(PYWA_UPDATES / "user_marketing_preferences.json")["resume"]
    stop = copy.deepcopy(resume)
    preference = stop["entry"][0]["changes"][0]["value"]["user_preferences"][0]
    preference.update(value="stop", timestamp=preference["timestamp"] + 60)
    assert post_notification(client, resume).status_code == 200
    assert post_notification(client, stop).status_code == 200
    assert consent(app) == [("16505551234", True, "whatsapp"), ("16505551234", False, "whatsapp")]
