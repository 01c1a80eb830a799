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
    check_recipient,
    check_values,
    components,
    keyed,
)
from bot.message_templates.store import find, known_from_meta, template_of
from bot.whatsapp.payloads import body_parameters


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
    opted_out: bool = False,
) -> list[Payload]:
    """The `components` of a template message with these values (one per parameter, in the
    template's order) and an optional media header component; TemplateMismatch when they do
    not fit the stored template, it is not approved, or it is an offer to a customer who
    `opted_out`."""
    return _checked(stored_template(session, name, language), values, header, opted_out)


def _checked(
    template: Template, values: Sequence[str], header: Payload | None, opted_out: bool
) -> list[Payload]:
    check_recipient(template, opted_out=opted_out)
    check_values(template, values, media=header is not None)
    return components(template, values, header)


def checked_components(
    session: Session, name: str, language: str, values: Sequence[str], *, opted_out: bool = False
) -> tuple[list[Payload], str | None]:
    """A template named by its name and language with body values, as an inbox reply typed
    by hand or an API call sends it: the components and the filled body text for the
    conversation. Checked by `prepare` when the template is stored or the account's templates
    came from Meta (a name not among them would be refused); with demo templates only (console
    mode), any other name is sent unchecked, its values as body parameters."""
    row = find(session, name, language)
    if row is None and not known_from_meta(session):
        return body_parameters(values), None
    # Read once: an API send is on a shop system's hot path.
    template = stored_template(session, name, language) if row is None else template_of(row)
    return (
        _checked(template, values, None, opted_out),
        template.filled(keyed(template, values))[1],
    )
