"""Where each parameter of a template takes its value from, as the shop chooses it in the
picker: a field of the contact (name, phone number), the business's name, or a fixed text.
The conversation turns the choices into this contact's values, a broadcast into the Jinja it
renders for each contact. Pure: no database, no Flask."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.message_templates.model import Parameter, Template


class Source(enum.StrEnum):
    NAME = "name"
    PHONE = "phone"
    BUSINESS = "business"
    TEXT = "text"


# The Jinja a broadcast renders per contact (variables of bot/replies.py).
JINJA: dict[Source, str] = {
    Source.NAME: "{{ contact.name }}",
    Source.PHONE: "+{{ contact.wa_id }}",
    Source.BUSINESS: "{{ business.name }}",
}

# Parameter names that usually mean the customer's name: the picker suggests the contact's.
_NAME_KEYS = frozenset({"name", "first_name", "firstname", "customer", "customer_name", "vorname"})


@dataclass(frozen=True)
class Choice:
    source: Source
    text: str = ""  # the fixed text, for Source.TEXT


@dataclass(frozen=True)
class Fields:
    """What a value can be taken from: one contact and the business."""

    name: str
    phone: str  # as the customer reads it, with +
    business: str


def suggested(parameter: Parameter) -> Source:
    return Source.NAME if parameter.key.lower() in _NAME_KEYS else Source.TEXT


def read_choices(form: Mapping[str, str], template: Template) -> list[Choice]:
    """The choice for each parameter from a form's `source_<n>` and `text_<n>` (n from 1, in
    the template's order); an unknown or missing source reads as fixed text."""
    choices = []
    for index, _parameter in enumerate(template.parameters, start=1):
        given = form.get(f"source_{index}", "")
        try:
            source = Source(given)
        except ValueError:
            source = Source.TEXT
        choices.append(Choice(source, form.get(f"text_{index}", "").strip()))
    return choices


def values_for(choices: Sequence[Choice], fields: Fields) -> list[str]:
    """The values for one contact, in order (an empty one stays empty: the check names it)."""
    taken = {Source.NAME: fields.name, Source.PHONE: fields.phone, Source.BUSINESS: fields.business}
    return [taken.get(c.source, c.text) if c.source != Source.TEXT else c.text for c in choices]


def jinja_for(choices: Sequence[Choice]) -> list[str]:
    """The broadcast parameters (Jinja, rendered per contact); fixed text stays as written."""
    return [JINJA.get(c.source, c.text) if c.source != Source.TEXT else c.text for c in choices]
