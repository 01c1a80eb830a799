"""The follow-up after a closure on the automatic answers page: a choice of the approved
utility templates, and each of the chosen one's parameters mapped to the customer's name or
a fixed text. The settings file keeps them as Jinja parameters (`replies.follow_up.params`);
this module turns one into the other and checks the choice against the stored templates."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

from flask_babel import gettext, ngettext
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.followups.job import template_problem
from bot.message_templates.model import Template, TemplateCategory, TemplateStatus
from bot.message_templates.store import template_of
from bot.models import MessageTemplate
from bot.settings import FollowUpRule

_PARAM = re.compile(r"fu-(?P<index>\d{1,2})-(?P<part>kind|text)")
NAME_SOURCE = "{{ contact.name }}"
_RAW = re.compile(r"\{% raw %\}(.*)\{% endraw %\}", re.S)
_MARKUP = ("{{", "{%", "{#")


class ParamKind(enum.StrEnum):
    NAME = "name"  # the customer's name
    TEXT = "text"  # a fixed text
    JINJA = "jinja"  # written in the settings file as Jinja of its own: kept as it is


def source_of(kind: str, text: str) -> str:
    """A parameter's Jinja for what the form says."""
    if kind == ParamKind.NAME:
        return NAME_SOURCE
    if kind == ParamKind.TEXT and any(mark in text for mark in _MARKUP):
        return "{% raw %}" + text + "{% endraw %}"  # shown as typed, never run
    return text


def kind_of(source: str) -> tuple[ParamKind, str]:
    """How the form shows a parameter's Jinja: its kind and text."""
    if source.strip() == NAME_SOURCE:
        return ParamKind.NAME, ""
    raw = _RAW.fullmatch(source)
    if raw is not None and "{% endraw %}" not in raw[1]:
        return ParamKind.TEXT, raw[1]
    if not any(mark in source for mark in _MARKUP):
        return ParamKind.TEXT, source
    return ParamKind.JINJA, source


def read_follow_up(form: Mapping[str, str]) -> tuple[str, str, list[str]]:
    """The template, its language and the parameters' Jinja as the form posts them."""
    name, _, language = form.get("follow_up_template", "").partition("/")
    rows: dict[int, dict[str, str]] = {}
    for key, value in form.items():
        match = _PARAM.fullmatch(key)
        if match:
            rows.setdefault(int(match["index"]), {})[match["part"]] = value
    params = [
        source_of(row.get("kind", ParamKind.TEXT), row.get("text", "").strip())
        for _, row in sorted(rows.items())
    ]
    return name.strip(), language.strip(), params


@dataclass(frozen=True)
class Choice:
    value: str  # name/language, the select's value
    name: str
    language: str
    body: str
    usable: bool  # approved and utility


@dataclass(frozen=True)
class ParamRow:
    label: str  # {{1}} or {{first_name}}
    example: str | None
    kind: ParamKind
    text: str


@dataclass(frozen=True)
class FollowUpView:
    choices: list[Choice]
    chosen: Choice | None
    rows: list[ParamRow]


def _template(row: MessageTemplate) -> Template | None:
    try:
        return template_of(row)
    except Exception:  # a stored row this version cannot read is left out of the choice
        return None


def view(session: Session, template: str, language: str, params: list[str]) -> FollowUpView:
    """The choice of templates and the rows of the chosen one's parameters: one per
    parameter it takes, filled from the settings where they give one."""
    rows = session.scalars(select(MessageTemplate).order_by(MessageTemplate.name))
    choices: list[Choice] = []
    chosen: Choice | None = None
    chosen_template: Template | None = None
    for row in rows:
        parsed = _template(row)
        if parsed is None:
            continue
        usable = (
            parsed.status == TemplateStatus.APPROVED and parsed.category == TemplateCategory.UTILITY
        )
        mine = (row.name, row.language) == (template, language)
        if not usable and not mine:
            continue
        choice = Choice(f"{row.name}/{row.language}", row.name, row.language, parsed.body, usable)
        choices.append(choice)
        if mine:
            chosen, chosen_template = choice, parsed
    wanted = len(chosen_template.parameters) if chosen_template else 0
    out = []
    for i in range(max(wanted, len(params))):
        kind, text = kind_of(params[i]) if i < len(params) else (ParamKind.NAME, "")
        parameter = (
            chosen_template.parameters[i]
            if chosen_template and i < len(chosen_template.parameters)
            else None
        )
        label = parameter.label if parameter else f"{{{{{i + 1}}}}}"
        out.append(ParamRow(label, parameter.example if parameter else None, kind, text))
    return FollowUpView(choices, chosen, out)


def follow_up_error(session: Session, rule: FollowUpRule) -> str | None:
    """What is wrong with the chosen template for a follow-up, in the owner's words."""
    if template_problem(session, rule) is not None:
        return gettext("Choose an approved utility template.")
    row = session.scalar(
        select(MessageTemplate).where(
            MessageTemplate.name == rule.template, MessageTemplate.language == rule.language
        )
    )
    parsed = _template(row) if row is not None else None
    wanted = len(parsed.parameters) if parsed else 0
    if len(rule.params) != wanted:
        return ngettext(
            "This template takes %(num)d value: fill it in below.",
            "This template takes %(num)d values: fill them in below.",
            wanted,
        )
    if any(not p.strip() for p in rule.params):
        return gettext("Fill in every fixed text.")
    return None
