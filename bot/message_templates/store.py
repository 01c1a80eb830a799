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
