"""Reply texts as plain text with placeholders, and the natural phrase for the next opening."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from babel import Locale

from bot import placeholders
from bot.placeholders import Placeholder, from_jinja, to_jinja
from bot.replies import opening_phrase, render_source

BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("locale", "at", "expected"),
    [
        ("de_DE", datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN), "Montag, 30. November, 9 Uhr"),
        ("de_DE", datetime(2026, 3, 29, 14, 30, tzinfo=BERLIN), "Sonntag, 29. März, 14:30 Uhr"),
        ("en_GB", datetime(2026, 11, 30, 9, 0, tzinfo=BERLIN), "Monday 30 November, 9 am"),
        ("en_US", datetime(2026, 11, 30, 14, 30, tzinfo=BERLIN), "Monday, November 30, 2:30 PM"),
    ],
)
def test_the_next_opening_reads_as_people_say_it(locale: str, at: datetime, expected: str) -> None:
    assert opening_phrase(at, Locale.parse(locale), BERLIN) == expected


def test_an_instant_in_another_zone_is_said_in_the_shops() -> None:
    at = datetime(2026, 11, 30, 8, 0, tzinfo=ZoneInfo("UTC"))
    assert opening_phrase(at, Locale.parse("de_DE"), BERLIN) == "Montag, 30. November, 9 Uhr"


def test_plain_text_round_trips_in_both_languages() -> None:
    text = "Hallo [Name], ab [nächste Öffnung] sind wir da. [Öffnungszeiten] – [Geschäftsname]"
    source = to_jinja(text)
    assert "{{ next_open | format_opening }}" in source
    assert from_jinja(source, "de") == text
    assert from_jinja(source, "en") == (
        "Hallo [name], ab [next opening] sind wir da. [opening hours] – [shop name]"
    )


def test_placeholders_are_read_whatever_their_case_and_language() -> None:
    assert to_jinja("[NAME] [Shop Name]") == "{{ contact.name }} {{ business.name }}"


def test_braces_the_owner_types_stay_text() -> None:
    source = to_jinja("Rabatt {{ 10 }} % {% heute %}")
    variables = {"contact": {"name": "Anna"}}
    assert render_source(source, variables) == "Rabatt {{ 10 }} % {% heute %}"
    assert from_jinja(source, "de") == "Rabatt {{ 10 }} % {% heute %}"


def test_jinja_of_ones_own_is_not_plain() -> None:
    assert from_jinja("{% if is_open %}offen{% endif %}", "de") is None
    assert from_jinja("{{ contact.wa_id }}", "de") is None
    assert from_jinja("Hallo {{ contact.name }}!", "de") == "Hallo [Name]!"


def test_text_that_looks_like_a_placeholder_is_not_taken_for_one() -> None:
    # "[Name]" typed inside a raw block would come back as a placeholder: not plain then.
    assert from_jinja("{% raw %}[Name]{% endraw %}", "de") is None


@pytest.mark.parametrize(("name", "expected"), [("Anna", "Hallo Anna, da!"), ("", "Hallo, da!")])
def test_the_space_before_a_name_goes_when_there_is_none(name: str, expected: str) -> None:
    assert render_source(to_jinja("Hallo [Name], da!"), {"contact": {"name": name}}) == expected


def test_every_placeholder_has_a_label_in_each_language() -> None:
    for labels in placeholders.LABELS.values():
        assert set(labels) == set(Placeholder)


def test_what_an_owner_types_is_a_template_either_way() -> None:
    assert placeholders.as_template("Hallo [Name]!") == (
        "Hallo{% if contact.name %} {{ contact.name }}{% endif %}!"
    )
    # Jinja of one's own stays as written.
    assert placeholders.as_template("Hallo {{ contact.wa_id }}") == "Hallo {{ contact.wa_id }}"
    assert placeholders.readable(placeholders.as_template("Hallo [Name]!"), "de") == "Hallo [Name]!"
    assert placeholders.readable("{{ contact.wa_id }}", "de") == "{{ contact.wa_id }}"
