"""A WhatsApp message template as Meta lists it, read into plain values: its wording, the
parameters it needs (positional `{{1}}` or named `{{first_name}}`, in header, body and URL
buttons), and the check that values fit it before a message is ever queued. Pure: no
database, no Flask, no clock.

Meta's format: the `message_templates` edge of the WhatsApp Business Account (components
HEADER / BODY / FOOTER / BUTTONS, `parameter_format` POSITIONAL or NAMED, examples under
`example`), and the template object of the messages endpoint (`components` with
`parameters`, a named one carrying `parameter_name`).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

Payload = dict[str, Any]
E = TypeVar("E", bound=enum.StrEnum)


class TemplateCategory(enum.StrEnum):
    MARKETING = "marketing"
    UTILITY = "utility"
    AUTHENTICATION = "authentication"


class TemplateStatus(enum.StrEnum):
    """Meta's template statuses (lowercase); only an approved template can be sent."""

    APPROVED = "approved"
    PENDING = "pending"
    REJECTED = "rejected"
    PAUSED = "paused"
    DISABLED = "disabled"
    IN_APPEAL = "in_appeal"
    PENDING_DELETION = "pending_deletion"
    DELETED = "deleted"
    LIMIT_EXCEEDED = "limit_exceeded"
    ARCHIVED = "archived"
    LOCKED = "locked"
    FLAGGED = "flagged"
    REINSTATED = "reinstated"
    UNKNOWN = "unknown"


class TemplateQuality(enum.StrEnum):
    GREEN = "green"
    YELLOW = "yellow"
    RED = "red"
    UNKNOWN = "unknown"


class ParameterFormat(enum.StrEnum):
    POSITIONAL = "positional"
    NAMED = "named"


class Place(enum.StrEnum):
    """Where a parameter goes in the message."""

    HEADER = "header"
    BODY = "body"
    BUTTON = "button"  # a URL button's dynamic suffix


class HeaderKind(enum.StrEnum):
    TEXT = "text"
    IMAGE = "image"
    VIDEO = "video"
    DOCUMENT = "document"
    LOCATION = "location"


MEDIA_HEADERS = frozenset({HeaderKind.IMAGE, HeaderKind.VIDEO, HeaderKind.DOCUMENT})

# `{{1}}` or `{{first_name}}`, as Meta writes variables (spaces inside are tolerated).
VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
# Meta refuses a parameter with a newline or tab, or more than four spaces in a row, in a
# header, and in body parameters too (error 132018 and kin); checked before sending.
_BAD_WHITESPACE = re.compile(r"[\n\r\t]| {5,}")


class Mismatch(enum.StrEnum):
    """Why values do not fit (for a page to say it in its language)."""

    UNKNOWN = "unknown"  # no such template stored
    NOT_APPROVED = "not_approved"
    COUNT = "count"
    EMPTY = "empty"
    WHITESPACE = "whitespace"
    MEDIA_MISSING = "media_missing"
    MEDIA_UNWANTED = "media_unwanted"
    OPTED_OUT = "opted_out"  # an offer to a customer who said no to offers


class TemplateMismatch(ValueError):
    """Values that do not fit a template, or a template that cannot be sent; the message says
    why in words a shop owner understands (English; the admin translates it by `reason` and
    `details`)."""

    def __init__(self, message: str, reason: Mismatch | None = None, **details: str | int) -> None:
        super().__init__(message)
        self.reason = reason
        self.details = details


@dataclass(frozen=True)
class Parameter:
    place: Place
    key: str  # "1", "2", … for positional, the name for named
    example: str | None = None
    button_index: int | None = None  # for Place.BUTTON: the button's position

    @property
    def label(self) -> str:
        return f"{{{{{self.key}}}}}"


@dataclass(frozen=True)
class Button:
    kind: str  # Meta's type, lowercase: quick_reply, url, phone_number, copy_code, …
    text: str
    url: str | None = None
    phone_number: str | None = None


@dataclass(frozen=True)
class Template:
    name: str
    language: str
    category: TemplateCategory
    status: TemplateStatus
    quality: TemplateQuality | None = None
    parameter_format: ParameterFormat = ParameterFormat.POSITIONAL
    header_kind: HeaderKind | None = None
    header_text: str | None = None
    body: str = ""
    footer: str | None = None
    buttons: tuple[Button, ...] = ()
    parameters: tuple[Parameter, ...] = ()

    @property
    def sendable(self) -> bool:
        return self.status == TemplateStatus.APPROVED

    @property
    def needs_media(self) -> bool:
        return self.header_kind in MEDIA_HEADERS

    def filled(self, values: Mapping[str, str]) -> tuple[str | None, str]:
        """The header text and body with each variable replaced by its value (keyed like
        `Parameter.key`); a variable without a value stays as `{{key}}`. For previews."""

        def fill(text: str) -> str:
            return VARIABLE.sub(lambda m: values.get(m[1], m[0]), text)

        header = fill(self.header_text) if self.header_text is not None else None
        return header, fill(self.body)


def _enum(kind: type[E], value: object, default: E) -> E:
    try:
        return kind(str(value).lower())
    except ValueError:
        return default


def _examples(example: Mapping[str, Any], positional: str, named: str) -> dict[str, str]:
    """Example values by key from a component's `example` (positional lists or named pairs)."""
    found: dict[str, str] = {}
    values = example.get(positional)
    if isinstance(values, list) and values and isinstance(values[0], list):
        values = values[0]  # body_text is a list holding one list
    if isinstance(values, list):
        found.update({str(i): str(v) for i, v in enumerate(values, start=1)})
    for pair in example.get(named) or ():
        if isinstance(pair, Mapping) and "param_name" in pair:
            found[str(pair["param_name"])] = str(pair.get("example", ""))
    return found


def _url_sample(url: str, example: object) -> str | None:
    """The sample value of a URL button's `{{1}}`: Meta's example is the whole URL
    (`https://shop.de/bestellung/4711` for `https://shop.de/bestellung/{{1}}`), the value
    sent is only the part after the fixed prefix."""
    given = example[0] if isinstance(example, list) and example else example
    if not isinstance(given, str) or not given:
        return None
    match = VARIABLE.search(url)
    prefix = url[: match.start()] if match else ""
    return given[len(prefix) :] if prefix and given.startswith(prefix) else given


def _variables(text: str) -> list[str]:
    seen: list[str] = []
    for key in VARIABLE.findall(text):
        if key not in seen:
            seen.append(key)
    return seen


def parse_template(data: Mapping[str, Any]) -> Template:
    """One template of the `message_templates` edge (or a row's stored fields in the same
    shape: name, language, category, status, quality_score or quality, parameter_format,
    components). Unknown component types are ignored, unknown statuses read as unknown."""
    quality = data.get("quality_score")
    quality_value = quality.get("score") if isinstance(quality, Mapping) else data.get("quality")
    fmt = _enum(
        ParameterFormat, data.get("parameter_format") or "positional", ParameterFormat.POSITIONAL
    )
    header_kind = header_text = footer = None
    body = ""
    buttons: list[Button] = []
    parameters: list[Parameter] = []
    for component in data.get("components") or ():
        if not isinstance(component, Mapping):
            continue
        kind = str(component.get("type", "")).upper()
        given = component.get("example")
        example: Mapping[str, Any] = given if isinstance(given, Mapping) else {}
        if kind == "HEADER":
            header_kind = _enum(HeaderKind, component.get("format") or "text", HeaderKind.TEXT)
            if header_kind == HeaderKind.TEXT:
                header_text = str(component.get("text") or "")
                examples = _examples(example, "header_text", "header_text_named_params")
                parameters += [
                    Parameter(Place.HEADER, k, examples.get(k)) for k in _variables(header_text)
                ]
        elif kind == "BODY":
            body = str(component.get("text") or "")
            examples = _examples(example, "body_text", "body_text_named_params")
            parameters += [Parameter(Place.BODY, k, examples.get(k)) for k in _variables(body)]
        elif kind == "FOOTER":
            footer = str(component.get("text") or "")
        elif kind == "BUTTONS":
            for index, button in enumerate(component.get("buttons") or ()):
                if not isinstance(button, Mapping):
                    continue
                url = button.get("url")
                buttons.append(
                    Button(
                        str(button.get("type", "")).lower(),
                        str(button.get("text") or ""),
                        str(url) if url else None,
                        str(button["phone_number"]) if button.get("phone_number") else None,
                    )
                )
                if url:
                    parameters += [
                        Parameter(
                            Place.BUTTON, k, _url_sample(str(url), button.get("example")), index
                        )
                        for k in _variables(str(url))
                    ]
    return Template(
        name=str(data.get("name", "")),
        language=str(data.get("language", "")),
        category=_enum(TemplateCategory, data.get("category"), TemplateCategory.MARKETING),
        status=_enum(TemplateStatus, data.get("status"), TemplateStatus.UNKNOWN),
        quality=_enum(TemplateQuality, quality_value, TemplateQuality.UNKNOWN)
        if quality_value
        else None,
        parameter_format=fmt,
        header_kind=header_kind,
        header_text=header_text,
        body=body,
        footer=footer,
        buttons=tuple(buttons),
        parameters=tuple(parameters),
    )


def check_recipient(template: Template, *, opted_out: bool) -> None:
    """Raise TemplateMismatch for a marketing template to a customer who opted out: whoever
    sends it (a person in the inbox, a shop system through the API), an offer does not go to
    someone who said no to offers. Service and utility templates still may."""
    if opted_out and template.category == TemplateCategory.MARKETING:
        raise TemplateMismatch(
            f"the template {template.name} is an offer (marketing), and this customer said no "
            "to offers",
            Mismatch.OPTED_OUT,
            name=template.name,
        )


def check_values(template: Template, values: Sequence[str], *, media: bool = False) -> None:
    """Raise TemplateMismatch unless `values` (one per `template.parameters`, in order) fit:
    the template approved, the count right, none empty, none with what Meta refuses, and a
    file given exactly when the header is a media header. Meta would answer 132000, 132001,
    132012 or 100 for each of these; they are known before sending."""
    if not template.sendable:
        raise TemplateMismatch(
            f"the template {template.name} ({template.language}) is {template.status}, not approved",
            Mismatch.NOT_APPROVED,
            name=template.name,
            status=str(template.status),
        )
    wanted = len(template.parameters)
    if len(values) != wanted:
        raise TemplateMismatch(
            f"the template {template.name} needs {wanted} value(s), {len(values)} given",
            Mismatch.COUNT,
            name=template.name,
            wanted=wanted,
            given=len(values),
        )
    for parameter, value in zip(template.parameters, values, strict=True):
        if not value.strip():
            raise TemplateMismatch(
                f"the value for {parameter.label} is empty", Mismatch.EMPTY, label=parameter.label
            )
        if parameter.place != Place.BUTTON and _BAD_WHITESPACE.search(value):
            raise TemplateMismatch(
                f"the value for {parameter.label} has a line break, a tab or more than four "
                "spaces in a row, which WhatsApp refuses",
                Mismatch.WHITESPACE,
                label=parameter.label,
            )
    if template.needs_media and not media:
        raise TemplateMismatch(
            f"the template {template.name} has a {template.header_kind} header: add a file",
            Mismatch.MEDIA_MISSING,
            name=template.name,
        )
    if media and not template.needs_media:
        raise TemplateMismatch(
            f"the template {template.name} has no media header for a file",
            Mismatch.MEDIA_UNWANTED,
            name=template.name,
        )


def components(
    template: Template, values: Sequence[str], header: Payload | None = None
) -> list[Payload]:
    """The messages endpoint's `components` for `values` (checked with `check_values` first):
    header, body and URL-button parameters, named ones with `parameter_name`; `header` is a
    media header component (bot.whatsapp.payloads.header_media) to put first."""
    named = template.parameter_format == ParameterFormat.NAMED
    by_place: dict[Place, list[Payload]] = {Place.HEADER: [], Place.BODY: []}
    buttons: dict[int, list[Payload]] = {}
    for parameter, value in zip(template.parameters, values, strict=True):
        item: Payload = {"type": "text", "text": value}
        if named and parameter.place != Place.BUTTON:
            item = {"type": "text", "parameter_name": parameter.key, "text": value}
        if parameter.place == Place.BUTTON:
            buttons.setdefault(parameter.button_index or 0, []).append(item)
        else:
            by_place[parameter.place].append(item)
    result: list[Payload] = []
    if header is not None:
        result.append(header)
    elif by_place[Place.HEADER]:
        result.append({"type": "header", "parameters": by_place[Place.HEADER]})
    if by_place[Place.BODY]:
        result.append({"type": "body", "parameters": by_place[Place.BODY]})
    for index, parameters in sorted(buttons.items()):
        result.append(
            {"type": "button", "sub_type": "url", "index": str(index), "parameters": parameters}
        )
    return result


def samples(template: Template) -> list[str]:
    """Each parameter's example value, or its label where Meta kept none."""
    return [p.example or p.label for p in template.parameters]


def keyed(template: Template, values: Iterable[str]) -> dict[str, str]:
    """Values by parameter key, for `Template.filled`."""
    return {p.key: v for p, v in zip(template.parameters, values, strict=False)}
