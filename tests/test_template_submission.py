"""A new template's local checks, the request Meta gets, and Meta's refusals read (pure)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.message_templates.model import TemplateCategory, parse_template
from bot.message_templates.submission import (
    ButtonDraft,
    ButtonKind,
    Draft,
    HeaderChoice,
    Problem,
    Refusal,
    problems,
    read_refusal,
    request_body,
    suggest_name,
    wanted_examples,
)

GOOD = Draft(
    name="wir_sind_zurueck",
    language="de",
    category=TemplateCategory.UTILITY,
    body="Hallo {{vorname}}, wir sind wieder für dich da. Deine Bestellung {{nummer}} ist fertig.",
    examples={"vorname": "Anna", "nummer": "4711"},
)


def found(draft: Draft, **kwargs: bool) -> set[tuple[str, Problem]]:
    return {(f.where, f.problem) for f in problems(draft, **kwargs)}


def test_a_good_draft_has_no_problems() -> None:
    assert problems(GOOD) == []


def test_the_request_has_named_parameters_with_their_examples() -> None:
    draft = replace(
        GOOD,
        header=HeaderChoice.TEXT,
        header_text="Neues für {{vorname}}",
        footer="Blumen Müller",
        buttons=(
            ButtonDraft(
                ButtonKind.URL, "Bestellung ansehen", "https://shop.example/o/", True, "4711"
            ),
            ButtonDraft(ButtonKind.QUICK_REPLY, "Danke"),
            ButtonDraft(ButtonKind.PHONE_NUMBER, "Anrufen", phone="+49891234567"),
        ),
    )
    assert problems(draft) == []
    body = request_body(draft)
    assert body["name"] == "wir_sind_zurueck"
    assert body["language"] == "de"
    assert body["category"] == "UTILITY"
    assert body["parameter_format"] == "named"
    header, text, footer, buttons = body["components"]
    assert header == {
        "type": "HEADER",
        "format": "TEXT",
        "text": "Neues für {{vorname}}",
        "example": {"header_text_named_params": [{"param_name": "vorname", "example": "Anna"}]},
    }
    assert text["type"] == "BODY"
    assert text["example"] == {
        "body_text_named_params": [
            {"param_name": "vorname", "example": "Anna"},
            {"param_name": "nummer", "example": "4711"},
        ]
    }
    assert footer == {"type": "FOOTER", "text": "Blumen Müller"}
    # Quick replies first: Meta wants them grouped apart from the other buttons.
    assert buttons["buttons"] == [
        {"type": "QUICK_REPLY", "text": "Danke"},
        {
            "type": "URL",
            "text": "Bestellung ansehen",
            "url": "https://shop.example/o/{{1}}",
            "example": ["https://shop.example/o/4711"],
        },
        {"type": "PHONE_NUMBER", "text": "Anrufen", "phone_number": "+49891234567"},
    ]
    # What we submit reads back as the template the rest of Tresen works with.
    parsed = parse_template({**body, "status": "PENDING"})
    assert [(p.place, p.key, p.example) for p in parsed.parameters][:3] == [
        ("header", "vorname", "Anna"),
        ("body", "vorname", "Anna"),
        ("body", "nummer", "4711"),
    ]


def test_a_media_header_carries_the_uploaded_handle() -> None:
    draft = replace(GOOD, header=HeaderChoice.IMAGE, header_handle="4::abc")
    assert request_body(draft)["components"][0] == {
        "type": "HEADER",
        "format": "IMAGE",
        "example": {"header_handle": ["4::abc"]},
    }
    assert ("header_file", Problem.HEADER_FILE_MISSING) in found(replace(draft, header_handle=None))


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("{{vorname}}, deine Bestellung ist fertig zum Abholen.", Problem.VARIABLE_AT_START),
        ("Deine Bestellung ist fertig zum Abholen, {{vorname}}.", Problem.VARIABLE_AT_END),
        (
            "Hallo {{vorname}} {{nachname}}, deine Bestellung ist fertig.",
            Problem.VARIABLES_ADJACENT,
        ),
        ("Hallo {{a}}, {{b}} und {{c}} da.", Problem.TOO_MANY_VARIABLES),
        ("{{a}}", Problem.ONLY_VARIABLES),
        ("Hallo {{Vorname}}, deine Bestellung ist fertig.", Problem.VARIABLE_NAME),
        ("Hallo {{1}}, deine Bestellung ist fertig.", Problem.VARIABLE_NAME),
        ("x" * 1025, Problem.BODY_TOO_LONG),
        ("   ", Problem.BODY_EMPTY),
    ],
)
def test_the_body_rules_meta_checks(body: str, problem: Problem) -> None:
    examples = {k: "x" for k in ("vorname", "nachname", "a", "b", "c")}
    assert ("body", problem) in found(replace(GOOD, body=body, examples=examples))


def test_every_variable_needs_an_example_header_included() -> None:
    draft = replace(
        GOOD, header=HeaderChoice.TEXT, header_text="Für {{kunde}}", examples={"vorname": "Anna"}
    )
    assert wanted_examples(draft) == ["kunde", "vorname", "nummer"]
    assert found(draft) == {
        ("example:kunde", Problem.EXAMPLE_MISSING),
        ("example:nummer", Problem.EXAMPLE_MISSING),
    }


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", Problem.NAME_EMPTY),
        ("Wir sind zurück", Problem.NAME_CHARACTERS),
        ("a" * 513, Problem.NAME_TOO_LONG),
    ],
)
def test_names_follow_metas_rule(name: str, problem: Problem) -> None:
    assert ("name", problem) in found(replace(GOOD, name=name))


def test_a_stored_name_and_language_is_taken() -> None:
    assert found(GOOD, taken=True) == {("name", Problem.NAME_TAKEN)}


def test_a_name_is_suggested_from_what_was_typed() -> None:
    assert suggest_name("Wir sind zurück!") == "wir_sind_zurueck"
    assert suggest_name("  Größe & Maß ") == "groesse_mass"
    assert suggest_name("Café Crème") == "cafe_creme"
    finding = problems(replace(GOOD, name="Angebot Frühling"))[0]
    assert finding.values["suggestion"] == "angebot_fruehling"


def test_header_footer_and_button_limits() -> None:
    too_many = tuple(ButtonDraft(ButtonKind.QUICK_REPLY, f"Antwort {i}") for i in range(11))
    links = tuple(ButtonDraft(ButtonKind.URL, f"Link {i}", "https://a.example/x") for i in range(3))
    phones = tuple(
        ButtonDraft(ButtonKind.PHONE_NUMBER, f"Ruf {i}", phone="+4989123456") for i in range(2)
    )
    assert ("buttons", Problem.TOO_MANY_BUTTONS) in found(replace(GOOD, buttons=too_many))
    assert ("buttons", Problem.TOO_MANY_URL_BUTTONS) in found(replace(GOOD, buttons=links))
    assert ("buttons", Problem.TOO_MANY_PHONE_BUTTONS) in found(replace(GOOD, buttons=phones))
    bad = (
        ButtonDraft(ButtonKind.QUICK_REPLY, "x" * 26),
        ButtonDraft(ButtonKind.URL, "Shop", "shop.example"),
        ButtonDraft(ButtonKind.URL, "Bestellung", "https://a.example/o/", dynamic=True),
        ButtonDraft(ButtonKind.PHONE_NUMBER, "Anrufen", phone="089 123"),
        ButtonDraft(ButtonKind.QUICK_REPLY, ""),
    )
    assert found(replace(GOOD, buttons=bad)) == {
        ("button:0", Problem.BUTTON_TEXT_TOO_LONG),
        ("button:1", Problem.URL_INVALID),
        ("button:2", Problem.URL_EXAMPLE_MISSING),
        ("button:3", Problem.PHONE_INVALID),
        ("button:4", Problem.BUTTON_TEXT_EMPTY),
    }
    header = replace(GOOD, header=HeaderChoice.TEXT, header_text="{{a}} und {{b}}")
    assert ("header_text", Problem.HEADER_VARIABLES) in found(header)
    assert ("header_text", Problem.HEADER_TOO_LONG) in found(replace(header, header_text="x" * 61))
    assert ("footer", Problem.FOOTER_TOO_LONG) in found(replace(GOOD, footer="x" * 61))
    assert ("footer", Problem.FOOTER_VARIABLE) in found(replace(GOOD, footer="Für {{vorname}}"))


def test_authentication_templates_are_made_elsewhere() -> None:
    draft = replace(GOOD, category=TemplateCategory.AUTHENTICATION)
    assert ("category", Problem.AUTHENTICATION) in found(draft)


def _error(code: int, subcode: int | None = None, **more: object) -> dict[str, object]:
    error: dict[str, object] = {"message": "Invalid parameter", "code": code, **more}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        (_error(100, 2388023), Refusal.NAME_BEING_DELETED),
        (_error(100, 2388024), Refusal.NAME_EXISTS),
        (_error(100, 2388019), Refusal.TOO_MANY_TEMPLATES),
        (_error(100, 2388040), Refusal.TOO_LONG),
        (_error(100, 2388047), Refusal.HEADER_FORMAT),
        (_error(100, 2388072), Refusal.BODY_FORMAT),
        (_error(100, 2388073), Refusal.FOOTER_FORMAT),
        (_error(100, 2388293), Refusal.TOO_MANY_VARIABLES),
        (_error(100, 2388299), Refusal.VARIABLE_AT_EDGE),
        (_error(190), Refusal.ACCESS),
        (_error(200), Refusal.ACCESS),
        (_error(80007), Refusal.BUSY),
        (_error(100, 9999999), Refusal.UNKNOWN),
        ({"no": "error"}, Refusal.UNKNOWN),
        ("<html>", Refusal.UNKNOWN),
        (None, Refusal.UNKNOWN),
    ],
)
def test_metas_refusals_are_read(body: object, kind: Refusal) -> None:
    assert read_refusal(body).kind == kind


def test_metas_own_words_are_kept() -> None:
    refusal = read_refusal(
        _error(100, 1, error_user_title="Invalid sample", error_user_msg="Add a sample.")
    )
    assert (refusal.title, refusal.detail, refusal.code, refusal.subcode) == (
        "Invalid sample",
        "Add a sample.",
        100,
        1,
    )
    assert read_refusal(_error(100)).detail == "Invalid parameter"
