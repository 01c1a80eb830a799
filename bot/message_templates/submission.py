"""A new template as the shop writes it (`Draft`), the checks Meta would make that we can
make first (`problems`), the request Meta's `message_templates` edge takes (`request_body`),
and Meta's refusals read into words a shop owner understands (`read_refusal`). Pure: no
database, no Flask, no HTTP.

Meta's format: `POST /{version}/{waba-id}/message_templates` with `name`, `language`,
`category`, `parameter_format: "named"` and `components` (HEADER with `format` and
`example.header_text_named_params` or `example.header_handle`, BODY with
`example.body_text_named_params`, FOOTER, BUTTONS of QUICK_REPLY / URL / PHONE_NUMBER; a URL
button's dynamic ending is always `{{1}}`, with the full example URL under `example`).
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.message_templates.model import TemplateCategory

Payload = dict[str, Any]

# Meta's limits for a template (WhatsApp Business Management API, message templates).
NAME_MAX = 512
BODY_MAX = 1024
HEADER_TEXT_MAX = 60
FOOTER_MAX = 60
BUTTON_TEXT_MAX = 25
BUTTONS_MAX = 10
URL_BUTTONS_MAX = 2
PHONE_BUTTONS_MAX = 1
URL_MAX = 2000
PHONE_MAX = 20
EXAMPLE_MAX = 200  # an example is one sample value, not a text of its own
HEADER_VARIABLES_MAX = 1
# Meta refuses a body "with too many variables for its length" (subcode 2388293) without
# publishing the ratio; this many words of its own per variable (plus one) passes in practice.
WORDS_PER_VARIABLE = 2

NAME = re.compile(r"[a-z0-9_]+")
VARIABLE_NAME = re.compile(r"[a-z][a-z0-9_]*")
# Anything between double braces, so that `{{Vorname}}` or `{{1}}` is found and refused.
ANY_VARIABLE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
PHONE = re.compile(r"\+[1-9][0-9]{6,18}")
URL = re.compile(r"https?://[^\s{}]+\.[^\s{}]+", re.IGNORECASE)
# Meta reads a variable behind a last full stop as "at the end" (2388299): punctuation and
# spaces around the body do not count as words.
_EDGE = " \t\r\n.,;:!?¡¿()\"'-–—…*_~"


class HeaderChoice(enum.StrEnum):
    NONE = "none"
    TEXT = "text"
    IMAGE = "image"
    VIDEO = "video"
    DOCUMENT = "document"


MEDIA_CHOICES = frozenset({HeaderChoice.IMAGE, HeaderChoice.VIDEO, HeaderChoice.DOCUMENT})

# The files Meta takes as a media header's sample, by header kind (its media limits).
SAMPLE_TYPES: dict[HeaderChoice, tuple[str, ...]] = {
    HeaderChoice.IMAGE: ("image/jpeg", "image/png"),
    HeaderChoice.VIDEO: ("video/mp4",),
    HeaderChoice.DOCUMENT: ("application/pdf",),
}
SAMPLE_MAX_BYTES: dict[HeaderChoice, int] = {
    HeaderChoice.IMAGE: 5 * 1024 * 1024,
    HeaderChoice.VIDEO: 16 * 1024 * 1024,
    HeaderChoice.DOCUMENT: 100 * 1024 * 1024,
}


class ButtonKind(enum.StrEnum):
    QUICK_REPLY = "quick_reply"
    URL = "url"
    PHONE_NUMBER = "phone_number"


@dataclass(frozen=True)
class ButtonDraft:
    kind: ButtonKind
    text: str
    url: str = ""
    dynamic: bool = False  # the link ends with a part that differs per message
    url_example: str = ""  # that part in the example
    phone: str = ""


@dataclass(frozen=True)
class Draft:
    """The form's values, trimmed; `examples` by variable name; `header_handle` is Meta's
    handle of the uploaded sample file for a media header."""

    name: str
    language: str
    category: TemplateCategory
    body: str
    examples: Mapping[str, str] = field(default_factory=dict)
    header: HeaderChoice = HeaderChoice.NONE
    header_text: str = ""
    header_handle: str | None = None
    footer: str = ""
    buttons: tuple[ButtonDraft, ...] = ()


class Problem(enum.StrEnum):
    """What is wrong with a draft; the admin says each in words of its own."""

    NAME_EMPTY = "name_empty"
    NAME_CHARACTERS = "name_characters"
    NAME_TOO_LONG = "name_too_long"
    NAME_TAKEN = "name_taken"
    LANGUAGE = "language"
    AUTHENTICATION = "authentication"
    BODY_EMPTY = "body_empty"
    BODY_TOO_LONG = "body_too_long"
    VARIABLE_NAME = "variable_name"
    VARIABLE_AT_START = "variable_at_start"
    VARIABLE_AT_END = "variable_at_end"
    VARIABLES_ADJACENT = "variables_adjacent"
    TOO_MANY_VARIABLES = "too_many_variables"
    ONLY_VARIABLES = "only_variables"
    EXAMPLE_MISSING = "example_missing"
    EXAMPLE_TOO_LONG = "example_too_long"
    HEADER_EMPTY = "header_empty"
    HEADER_TOO_LONG = "header_too_long"
    HEADER_VARIABLES = "header_variables"
    HEADER_FILE_MISSING = "header_file_missing"
    FOOTER_TOO_LONG = "footer_too_long"
    FOOTER_VARIABLE = "footer_variable"
    TOO_MANY_BUTTONS = "too_many_buttons"
    TOO_MANY_URL_BUTTONS = "too_many_url_buttons"
    TOO_MANY_PHONE_BUTTONS = "too_many_phone_buttons"
    BUTTON_TEXT_EMPTY = "button_text_empty"
    BUTTON_TEXT_TOO_LONG = "button_text_too_long"
    BUTTON_TEXT_TWICE = "button_text_twice"
    URL_INVALID = "url_invalid"
    URL_TOO_LONG = "url_too_long"
    URL_EXAMPLE_MISSING = "url_example_missing"
    PHONE_INVALID = "phone_invalid"


@dataclass(frozen=True)
class Finding:
    """One problem, at one field of the form (`name`, `body`, `example:<variable>`,
    `button:<index>` …), with the numbers its message names."""

    where: str
    problem: Problem
    values: Mapping[str, Any] = field(default_factory=dict)


def suggest_name(text: str) -> str:
    """A name Meta takes, made from what was typed: "Wir sind zurück!" → wir_sind_zurueck."""
    text = text.strip().lower()
    for umlaut, spelled in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        text = text.replace(umlaut, spelled)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^a-z0-9]+", "_", text).strip("_")
    return text[:NAME_MAX].rstrip("_")


def variables(text: str) -> list[str]:
    """The variables of `text`, each once, in order of first use (as written, unchecked)."""
    seen: list[str] = []
    for match in ANY_VARIABLE.finditer(text):
        key = match[1].strip()
        if key not in seen:
            seen.append(key)
    return seen


def wanted_examples(draft: Draft) -> list[str]:
    """The variables that need an example: those of a text header, then the body's."""
    names = variables(draft.header_text) if draft.header == HeaderChoice.TEXT else []
    return names + [n for n in variables(draft.body) if n not in names]


def problems(draft: Draft, *, taken: bool = False) -> list[Finding]:
    """Everything Meta would refuse that can be known here; `taken`: a template of this name
    and language is stored already."""
    found: list[Finding] = []
    found += _name_problems(draft.name, taken)
    if not draft.language:
        found.append(Finding("language", Problem.LANGUAGE))
    if draft.category == TemplateCategory.AUTHENTICATION:
        found.append(Finding("category", Problem.AUTHENTICATION))
    found += _body_problems(draft.body)
    found += _header_problems(draft)
    if len(draft.footer) > FOOTER_MAX:
        found.append(Finding("footer", Problem.FOOTER_TOO_LONG, {"max": FOOTER_MAX}))
    elif ANY_VARIABLE.search(draft.footer):
        found.append(Finding("footer", Problem.FOOTER_VARIABLE))
    for key in wanted_examples(draft):
        if not VARIABLE_NAME.fullmatch(key):
            continue  # the variable's own finding says it
        example = draft.examples.get(key, "").strip()
        if not example:
            found.append(Finding(f"example:{key}", Problem.EXAMPLE_MISSING, {"name": key}))
        elif len(example) > EXAMPLE_MAX:
            found.append(Finding(f"example:{key}", Problem.EXAMPLE_TOO_LONG, {"max": EXAMPLE_MAX}))
    found += _button_problems(draft.buttons)
    return found


def _name_problems(name: str, taken: bool) -> list[Finding]:
    if not name:
        return [Finding("name", Problem.NAME_EMPTY)]
    if len(name) > NAME_MAX:
        return [Finding("name", Problem.NAME_TOO_LONG, {"max": NAME_MAX})]
    if not NAME.fullmatch(name):
        suggestion = suggest_name(name) or "angebot_fruehling"
        return [Finding("name", Problem.NAME_CHARACTERS, {"suggestion": suggestion})]
    if taken:
        return [Finding("name", Problem.NAME_TAKEN)]
    return []


def _variable_name_problems(text: str, place: str) -> list[Finding]:
    return [
        Finding(place, Problem.VARIABLE_NAME, {"name": key, "suggestion": suggest_name(key)})
        for key in variables(text)
        if not VARIABLE_NAME.fullmatch(key)
    ]


def _body_problems(body: str) -> list[Finding]:
    if not body.strip():
        return [Finding("body", Problem.BODY_EMPTY)]
    if len(body) > BODY_MAX:
        return [Finding("body", Problem.BODY_TOO_LONG, {"max": BODY_MAX, "length": len(body)})]
    found = _variable_name_problems(body, "body")
    count = len(ANY_VARIABLE.findall(body))
    if count == 0:
        return found
    words = len(re.findall(r"\w+", ANY_VARIABLE.sub(" ", body)))
    trimmed = body.strip(_EDGE)
    if words == 0:
        return [*found, Finding("body", Problem.ONLY_VARIABLES)]
    if trimmed.startswith("{{"):
        found.append(Finding("body", Problem.VARIABLE_AT_START))
    if trimmed.endswith("}}"):
        found.append(Finding("body", Problem.VARIABLE_AT_END))
    if re.search(r"\}\}\s*\{\{", body):
        found.append(Finding("body", Problem.VARIABLES_ADJACENT))
    if words < WORDS_PER_VARIABLE * count + 1:
        needed = WORDS_PER_VARIABLE * count + 1
        found.append(Finding("body", Problem.TOO_MANY_VARIABLES, {"count": count, "words": needed}))
    return found


def _header_problems(draft: Draft) -> list[Finding]:
    if draft.header == HeaderChoice.TEXT:
        text = draft.header_text
        if not text.strip():
            return [Finding("header_text", Problem.HEADER_EMPTY)]
        if len(text) > HEADER_TEXT_MAX:
            return [Finding("header_text", Problem.HEADER_TOO_LONG, {"max": HEADER_TEXT_MAX})]
        if len(ANY_VARIABLE.findall(text)) > HEADER_VARIABLES_MAX:
            return [Finding("header_text", Problem.HEADER_VARIABLES)]
        return _variable_name_problems(text, "header_text")
    if draft.header in MEDIA_CHOICES and not draft.header_handle:
        return [Finding("header_file", Problem.HEADER_FILE_MISSING)]
    return []


def _button_problems(buttons: Sequence[ButtonDraft]) -> list[Finding]:
    found: list[Finding] = []
    if len(buttons) > BUTTONS_MAX:
        found.append(Finding("buttons", Problem.TOO_MANY_BUTTONS, {"max": BUTTONS_MAX}))
    if sum(b.kind == ButtonKind.URL for b in buttons) > URL_BUTTONS_MAX:
        found.append(Finding("buttons", Problem.TOO_MANY_URL_BUTTONS, {"max": URL_BUTTONS_MAX}))
    if sum(b.kind == ButtonKind.PHONE_NUMBER for b in buttons) > PHONE_BUTTONS_MAX:
        found.append(Finding("buttons", Problem.TOO_MANY_PHONE_BUTTONS))
    texts: list[str] = []
    for index, button in enumerate(buttons):
        place = f"button:{index}"
        if not button.text:
            found.append(Finding(place, Problem.BUTTON_TEXT_EMPTY))
        elif len(button.text) > BUTTON_TEXT_MAX:
            found.append(Finding(place, Problem.BUTTON_TEXT_TOO_LONG, {"max": BUTTON_TEXT_MAX}))
        elif button.text.casefold() in texts:
            found.append(Finding(place, Problem.BUTTON_TEXT_TWICE))
        texts.append(button.text.casefold())
        if button.kind == ButtonKind.URL:
            if len(button.url) > URL_MAX:
                found.append(Finding(place, Problem.URL_TOO_LONG, {"max": URL_MAX}))
            elif not URL.fullmatch(button.url):
                found.append(Finding(place, Problem.URL_INVALID))
            elif button.dynamic and not button.url_example.strip():
                found.append(Finding(place, Problem.URL_EXAMPLE_MISSING))
        elif button.kind == ButtonKind.PHONE_NUMBER and not PHONE.fullmatch(button.phone):
            found.append(Finding(place, Problem.PHONE_INVALID))
    return found


def _named(keys: Sequence[str], examples: Mapping[str, str]) -> list[Payload]:
    return [{"param_name": k, "example": examples.get(k, "").strip()} for k in keys]


def request_body(draft: Draft) -> Payload:
    """The JSON for `POST /{version}/{waba-id}/message_templates` (a draft without
    `problems`): named parameters with their examples, quick-reply buttons first as Meta
    wants them grouped."""
    components: list[Payload] = []
    if draft.header == HeaderChoice.TEXT:
        header: Payload = {"type": "HEADER", "format": "TEXT", "text": draft.header_text}
        keys = variables(draft.header_text)
        if keys:
            header["example"] = {"header_text_named_params": _named(keys, draft.examples)}
        components.append(header)
    elif draft.header in MEDIA_CHOICES:
        components.append(
            {
                "type": "HEADER",
                "format": draft.header.upper(),
                "example": {"header_handle": [draft.header_handle or ""]},
            }
        )
    body: Payload = {"type": "BODY", "text": draft.body}
    keys = variables(draft.body)
    if keys:
        body["example"] = {"body_text_named_params": _named(keys, draft.examples)}
    components.append(body)
    if draft.footer:
        components.append({"type": "FOOTER", "text": draft.footer})
    ordered = sorted(draft.buttons, key=lambda b: b.kind != ButtonKind.QUICK_REPLY)
    if ordered:
        components.append({"type": "BUTTONS", "buttons": [_button(b) for b in ordered]})
    return {
        "name": draft.name,
        "language": draft.language,
        "category": draft.category.upper(),
        "parameter_format": "named",
        "components": components,
    }


def _button(button: ButtonDraft) -> Payload:
    if button.kind == ButtonKind.URL:
        if button.dynamic:
            # A URL button's variable is always `{{1}}` at the end, whatever the body uses.
            return {
                "type": "URL",
                "text": button.text,
                "url": button.url + "{{1}}",
                "example": [button.url + button.url_example.strip()],
            }
        return {"type": "URL", "text": button.text, "url": button.url}
    if button.kind == ButtonKind.PHONE_NUMBER:
        return {"type": "PHONE_NUMBER", "text": button.text, "phone_number": button.phone}
    return {"type": "QUICK_REPLY", "text": button.text}


# -- Meta's answer --------------------------------------------------------------------------


class Refusal(enum.StrEnum):
    """Why Meta refused a template, as far as its code and subcode tell."""

    NAME_BEING_DELETED = "name_being_deleted"  # 100 / 2388023
    NAME_EXISTS = "name_exists"  # 100 / 2388024
    TOO_MANY_TEMPLATES = "too_many_templates"  # 2388019
    TOO_LONG = "too_long"  # 2388040
    HEADER_FORMAT = "header_format"  # 2388047
    BODY_FORMAT = "body_format"  # 2388072
    FOOTER_FORMAT = "footer_format"  # 2388073
    TOO_MANY_VARIABLES = "too_many_variables"  # 2388293
    VARIABLE_AT_EDGE = "variable_at_edge"  # 2388299
    ACCESS = "access"  # 190 (token), 10 / 200-299 (permissions), 0, 3
    BUSY = "busy"  # 4, 80007, 1, 2: try again later
    UNREACHABLE = "unreachable"  # no answer from Meta at all
    UNKNOWN = "unknown"


_BY_SUBCODE = {
    2388023: Refusal.NAME_BEING_DELETED,
    2388024: Refusal.NAME_EXISTS,
    2388019: Refusal.TOO_MANY_TEMPLATES,
    2388040: Refusal.TOO_LONG,
    2388047: Refusal.HEADER_FORMAT,
    2388072: Refusal.BODY_FORMAT,
    2388073: Refusal.FOOTER_FORMAT,
    2388293: Refusal.TOO_MANY_VARIABLES,
    2388299: Refusal.VARIABLE_AT_EDGE,
}


@dataclass(frozen=True)
class MetaRefusal:
    """Meta's refusal: our reading of it, and Meta's own words (`error_user_title` and
    `error_user_msg`, else its `message`) to show beside ours."""

    kind: Refusal
    title: str | None
    detail: str | None
    code: int | None = None
    subcode: int | None = None


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def read_refusal(body: object) -> MetaRefusal:
    """Meta's error answer (`{"error": {...}}`, any shape) read into a `MetaRefusal`."""
    error = body.get("error") if isinstance(body, Mapping) else None
    if not isinstance(error, Mapping):
        return MetaRefusal(Refusal.UNKNOWN, None, None)
    code = _int(error.get("code"))
    subcode = _int(error.get("error_subcode"))
    kind = _BY_SUBCODE.get(subcode or 0)
    if kind is None:
        if code in (0, 3, 10, 190) or (code is not None and 200 <= code <= 299):
            kind = Refusal.ACCESS
        elif code in (1, 2, 4, 80007):
            kind = Refusal.BUSY
        else:
            kind = Refusal.UNKNOWN
    title = error.get("error_user_title")
    detail = error.get("error_user_msg") or error.get("message")
    return MetaRefusal(
        kind,
        str(title) if title else None,
        str(detail) if detail else None,
        code,
        subcode,
    )


def stored_status(answer: Mapping[str, Any]) -> str:
    """The status Meta answered for a new template, lowercase (PENDING unless it says)."""
    return str(answer.get("status") or "PENDING").lower()
