"""The account's templates as kept in the database (`MessageTemplate` rows), read back as
`model.Template` values."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.message_templates.model import Template, parse_template
from bot.models import MessageTemplate


def template_of(row: MessageTemplate) -> Template:
    return parse_template(
        {
            "name": row.name,
            "language": row.language,
            "category": row.category,
            "status": row.status,
            "quality": row.quality,
            "parameter_format": row.parameter_format,
            "components": row.components,
        }
    )


def find(session: Session, name: str, language: str) -> MessageTemplate | None:
    """The stored template of this name and language (Meta's locale code, e.g. de, en_US)."""
    return session.scalar(
        select(MessageTemplate).where(
            MessageTemplate.name == name, MessageTemplate.language == language
        )
    )


def any_stored(session: Session) -> bool:
    """Whether the account's templates are known here at all (synced, submitted or demo):
    without any, a template is sent by the name the shop gives, unchecked, as before."""
    return session.scalar(select(MessageTemplate.id).limit(1)) is not None


def known_from_meta(session: Session) -> bool:
    """Whether the account's templates came from Meta (synced or submitted here): then a name
    not among them is one Meta would refuse (132001). Demo templates alone do not count: in
    console mode any name may be tried."""
    return (
        session.scalar(select(MessageTemplate.id).where(MessageTemplate.origin != "demo").limit(1))
        is not None
    )


def approved(session: Session) -> list[tuple[int, Template]]:
    """The approved templates with their row ids, by category, name and language."""
    rows = session.scalars(select(MessageTemplate).order_by(MessageTemplate.id))
    found = [(row.id, template_of(row)) for row in rows]
    order = {c: i for i, c in enumerate(("utility", "marketing", "authentication"))}
    return sorted(
        ((i, t) for i, t in found if t.sendable),
        key=lambda item: (order.get(item[1].category, 9), item[1].name, item[1].language),
    )
