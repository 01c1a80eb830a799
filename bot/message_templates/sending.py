"""The one check every edge runs before a template message is queued (conversation, broadcast,
follow-up, API): the stored template is looked up, the values checked against it, and the
Cloud API's components built. What would come back from Meta as 132000 / 132001 / 132012
is refused here with a reason instead."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from bot.message_templates.model import (
    Mismatch,
    Payload,
    Template,
    TemplateMismatch,
    check_values,
    components,
)
from bot.message_templates.store import find, template_of


def stored_template(session: Session, name: str, language: str) -> Template:
    """The stored template, or TemplateMismatch naming what is missing."""
    row = find(session, name, language)
    if row is None:
        raise TemplateMismatch(
            f"there is no template {name} in the language {language}",
            Mismatch.UNKNOWN,
            name=name,
            language=language,
        )
    return template_of(row)


def prepare(
    session: Session,
    name: str,
    language: str,
    values: Sequence[str],
    *,
    header: Payload | None = None,
) -> list[Payload]:
    """The `components` of a template message with these values (one per parameter, in the
    template's order) and an optional media header component; TemplateMismatch when they do
    not fit the stored template or it is not approved."""
    template = stored_template(session, name, language)
    check_values(template, values, media=header is not None)
    return components(template, values, header)
