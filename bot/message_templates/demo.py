"""Console mode's demo templates: a few German ones as Meta would list them, so the template
pages, the picker and the checks can be tried without a WhatsApp account. Seeded only into an
empty table (origin demo); a real sync later marks them deleted like any template Meta does
not list."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.message_templates.model import parse_template
from bot.models import MessageTemplate

# Meta's `message_templates` shape (components with their examples), one of each kind the
# pages show: positional and named parameters, a picture header, a URL button with a
# dynamic part, and a paused marketing template.
DEMO_TEMPLATES: Final[list[dict[str, Any]]] = [
    {
        "name": "wieder_da",
        "language": "de",
        "category": "UTILITY",
        "status": "APPROVED",
        "quality_score": {"score": "GREEN"},
        "parameter_format": "POSITIONAL",
        "components": [
            {
                "type": "BODY",
                "text": "Hallo {{1}}, wir sind wieder für Sie da! Wie können wir Ihnen helfen?",
                "example": {"body_text": [["Anna"]]},
            },
            {"type": "FOOTER", "text": "Blumen Müller"},
            {
                "type": "BUTTONS",
                "buttons": [{"type": "QUICK_REPLY", "text": "Ich habe eine Frage"}],
            },
        ],
    },
    {
        "name": "wochenangebot",
        "language": "de",
        "category": "MARKETING",
        "status": "APPROVED",
        "quality_score": {"score": "GREEN"},
        "parameter_format": "NAMED",
        "components": [
            {
                "type": "HEADER",
                "format": "IMAGE",
                "example": {"header_handle": ["https://example.com/wochenangebot.jpg"]},
            },
            {
                "type": "BODY",
                "text": "Hallo {{vorname}}, diese Woche gibt es {{rabatt}} Rabatt auf alle "
                "Frühlingssträuße. Wir freuen uns auf Ihren Besuch!",
                "example": {
                    "body_text_named_params": [
                        {"param_name": "vorname", "example": "Anna"},
                        {"param_name": "rabatt", "example": "20 %"},
                    ]
                },
            },
            {"type": "FOOTER", "text": "Keine Angebote mehr? Antworten Sie STOP."},
            {
                "type": "BUTTONS",
                "buttons": [{"type": "QUICK_REPLY", "text": "Angebote abbestellen"}],
            },
        ],
    },
    {
        "name": "abholbereit",
        "language": "de",
        "category": "UTILITY",
        "status": "APPROVED",
        "quality_score": {"score": "GREEN"},
        "parameter_format": "POSITIONAL",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Ihre Bestellung ist fertig"},
            {
                "type": "BODY",
                "text": "Hallo {{1}}, Ihre Bestellung {{2}} liegt ab sofort zur Abholung "
                "bereit. Wir haben bis 18 Uhr geöffnet.",
                "example": {"body_text": [["Anna", "4711"]]},
            },
            {
                "type": "BUTTONS",
                "buttons": [
                    {
                        "type": "URL",
                        "text": "Bestellung ansehen",
                        "url": "https://shop.example/bestellung/{{1}}",
                        "example": ["https://shop.example/bestellung/4711"],
                    }
                ],
            },
        ],
    },
    {
        "name": "herbstgruss",
        "language": "de",
        "category": "MARKETING",
        "status": "PAUSED",
        "quality_score": {"score": "RED"},
        "parameter_format": "POSITIONAL",
        "components": [
            {
                "type": "BODY",
                "text": "Hallo {{1}}, unsere Herbstkränze sind da. Schauen Sie doch vorbei!",
                "example": {"body_text": [["Anna"]]},
            }
        ],
    },
]


def seed_demo_templates(session: Session, now: datetime) -> int:
    """Add the demo templates to an empty table; the number added."""
    if session.scalar(select(MessageTemplate.id).limit(1)) is not None:
        return 0
    for item in DEMO_TEMPLATES:
        template = parse_template(item)
        session.add(
            MessageTemplate(
                meta_id=None,
                name=template.name,
                language=template.language,
                category=template.category.value,
                status=template.status.value,
                quality=template.quality.value if template.quality else None,
                parameter_format=template.parameter_format.value,
                components=item["components"],
                reason=None,
                origin="demo",
                synced_at=None,
                updated_at=now,
            )
        )
    session.flush()
    return len(DEMO_TEMPLATES)
