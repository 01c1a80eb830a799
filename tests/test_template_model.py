"""A template read from Meta's JSON: its wording and parameters, and the check values must pass
before a template message is queued (what Meta would refuse with 132000 / 132001 / 132012)."""

from __future__ import annotations

import pytest

from bot.message_templates.model import (
    HeaderKind,
    ParameterFormat,
    Place,
    TemplateCategory,
    TemplateMismatch,
    TemplateQuality,
    TemplateStatus,
    check_values,
    components,
    keyed,
    parse_template,
    samples,
)

# As the message_templates edge lists them.
POSITIONAL = {
    "name": "abholbereit",
    "language": "de",
    "status": "APPROVED",
    "category": "UTILITY",
    "id": "1029384756",
    "parameter_format": "POSITIONAL",
    "quality_score": {"score": "GREEN", "date": 1764000000},
    "components": [
        {
            "type": "HEADER",
            "format": "TEXT",
            "text": "Bestellung {{1}}",
            "example": {"header_text": ["4711"]},
        },
        {
            "type": "BODY",
            "text": "Hallo {{1}}, Ihre Bestellung liegt bis {{2}} für Sie bereit.",
            "example": {"body_text": [["Anna", "Samstag"]]},
        },
        {"type": "FOOTER", "text": "Blumen Maier"},
        {
            "type": "BUTTONS",
            "buttons": [
                {"type": "QUICK_REPLY", "text": "Danke"},
                {
                    "type": "URL",
                    "text": "Details",
                    "url": "https://shop.example/b/{{1}}",
                    "example": ["https://shop.example/b/4711"],
                },
            ],
        },
    ],
}
NAMED = {
    "name": "wochenangebot",
    "language": "de",
    "status": "PAUSED",
    "category": "MARKETING",
    "parameter_format": "NAMED",
    "components": [
        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1h"]}},
        {
            "type": "BODY",
            "text": "Hallo {{vorname}}, diese Woche {{rabatt}} auf alle Tulpen.",
            "example": {
                "body_text_named_params": [
                    {"param_name": "vorname", "example": "Anna"},
                    {"param_name": "rabatt", "example": "10 %"},
                ]
            },
        },
    ],
}


def test_positional_template_reads_its_parts_and_parameters_in_order() -> None:
    t = parse_template(POSITIONAL)
    assert (t.category, t.status, t.quality) == (
        TemplateCategory.UTILITY,
        TemplateStatus.APPROVED,
        TemplateQuality.GREEN,
    )
    assert t.header_kind == HeaderKind.TEXT and t.footer == "Blumen Maier"
    assert [(p.place, p.key) for p in t.parameters] == [
        (Place.HEADER, "1"),
        (Place.BODY, "1"),
        (Place.BODY, "2"),
        (Place.BUTTON, "1"),
    ]
    assert [b.kind for b in t.buttons] == ["quick_reply", "url"]
    assert samples(t)[:3] == ["4711", "Anna", "Samstag"]


def test_named_template_keeps_names_and_its_media_header() -> None:
    t = parse_template(NAMED)
    assert t.parameter_format == ParameterFormat.NAMED
    assert t.needs_media and t.header_kind == HeaderKind.IMAGE
    assert [p.key for p in t.parameters] == ["vorname", "rabatt"]
    assert t.filled(keyed(t, samples(t)))[1] == "Hallo Anna, diese Woche 10 % auf alle Tulpen."


def test_values_that_fit_build_the_messages_endpoint_components() -> None:
    t = parse_template(POSITIONAL)
    values = ["4711", "Anna", "Samstag", "4711"]
    check_values(t, values)
    assert components(t, values) == [
        {"type": "header", "parameters": [{"type": "text", "text": "4711"}]},
        {
            "type": "body",
            "parameters": [{"type": "text", "text": "Anna"}, {"type": "text", "text": "Samstag"}],
        },
        {
            "type": "button",
            "sub_type": "url",
            "index": "1",
            "parameters": [{"type": "text", "text": "4711"}],
        },
    ]


def test_named_parameters_carry_their_names() -> None:
    t = parse_template({**NAMED, "status": "APPROVED"})
    header = {"type": "header", "parameters": [{"type": "image", "image": {"id": "1"}}]}
    check_values(t, ["Anna", "10 %"], media=True)
    body = components(t, ["Anna", "10 %"], header)[1]
    assert body["parameters"][0] == {"type": "text", "parameter_name": "vorname", "text": "Anna"}


@pytest.mark.parametrize(
    ("values", "media", "says"),
    [
        (["Anna"], True, "needs 2 value(s), 1 given"),
        (["Anna", "10 %", "x"], True, "needs 2 value(s), 3 given"),
        (["", "10 %"], True, "{{vorname}} is empty"),
        (["Anna\nMaier", "10 %"], True, "line break"),
        (["Anna", "10      %"], True, "more than four spaces"),
        (["Anna", "10 %"], False, "image header: add a file"),
    ],
)
def test_values_that_do_not_fit_are_refused_with_the_reason(
    values: list[str], media: bool, says: str
) -> None:
    t = parse_template({**NAMED, "status": "APPROVED"})
    with pytest.raises(TemplateMismatch, match=None) as refused:
        check_values(t, values, media=media)
    assert says in str(refused.value)


def test_a_template_that_is_not_approved_is_refused() -> None:
    with pytest.raises(TemplateMismatch, match="paused, not approved"):
        check_values(parse_template(NAMED), ["Anna", "10 %"], media=True)


def test_unknown_status_and_components_do_not_break_reading() -> None:
    t = parse_template(
        {
            "name": "x",
            "language": "de",
            "status": "SOMETHING_NEW",
            "components": [{"type": "CAROUSEL"}, "junk"],
        }
    )
    assert t.status == TemplateStatus.UNKNOWN and t.parameters == ()
