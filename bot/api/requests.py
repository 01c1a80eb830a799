"""The API's request bodies, read through the checked accessor (bot.wild) into typed values:
a wrong shape is an ApiError (422) naming the field, never a 500. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.api.errors import ApiError, Code
from bot.wild import PayloadError, Wild

LIMIT_DEFAULT = 50
LIMIT_MAX = 200


@dataclass(frozen=True)
class TemplateRef:
    name: str
    language: str
    params: tuple[str, ...]


@dataclass(frozen=True)
class SendRequest:
    """Whom (a number as typed, or a contact id) and what (a text or a template)."""

    to: str | None
    contact_id: int | None
    text: str | None
    template: TemplateRef | None


@dataclass(frozen=True)
class ContactPatch:
    """What a PATCH changes; None: left as it is (an empty name gives back the customer's own)."""

    name: str | None
    labels: tuple[str, ...] | None
    opted_in: bool | None


def _invalid(exc: PayloadError) -> ApiError:
    return ApiError(Code.INVALID, str(exc), field=exc.path)


def read_send(body: Any) -> SendRequest:
    try:
        doc = Wild(body)
        doc.as_object()
        to = doc.opt_str("to")
        found = doc.get("contact_id")
        contact_id = None if found is None else found.as_int()
        text = doc.opt_str("text")
        template = None
        if (raw := doc.get("template")) is not None:
            params = tuple(item.as_str() for item in raw.opt_list("params"))
            template = TemplateRef(raw["name"].as_str(), raw["language"].as_str(), params)
    except PayloadError as exc:
        raise _invalid(exc) from None
    if (to is None) == (contact_id is None):
        raise ApiError(Code.INVALID, "give either `to` (a phone number) or `contact_id`")
    if (text is None) == (template is None):
        raise ApiError(Code.INVALID, "give either `text` or `template`")
    if text is not None and not text.strip():
        raise ApiError(Code.INVALID, "`text` is empty", field="text")
    return SendRequest(to=to, contact_id=contact_id, text=text, template=template)


def read_contact_patch(body: Any) -> ContactPatch:
    try:
        doc = Wild(body)
        known = {"name", "labels", "opted_in"}
        unknown = sorted(set(doc.as_object()) - known)
        if unknown:
            raise PayloadError(unknown[0], "not a field that can be changed")
        name = doc.as_object().get("name")
        if name is not None:
            name = doc["name"].as_str()
        labels = None
        if "labels" in doc:
            labels = tuple(item.as_str() for item in doc["labels"].as_list())
        opted_in = doc.opt_bool("opted_in")
    except PayloadError as exc:
        raise _invalid(exc) from None
    return ContactPatch(name=name, labels=labels, opted_in=opted_in)


def read_limit(text: str | None) -> int:
    if text is None or text == "":
        return LIMIT_DEFAULT
    if not text.isdigit() or not 1 <= int(text) <= LIMIT_MAX:
        raise ApiError(
            Code.INVALID, f"`limit` is a whole number from 1 to {LIMIT_MAX}", field="limit"
        )
    return int(text)


def read_id(text: str | None, field: str) -> int | None:
    if text is None or text == "":
        return None
    if not text.isdigit():
        raise ApiError(Code.INVALID, f"`{field}` is a message id", field=field)
    return int(text)
