"""The template picker of the conversation and of the broadcast form: the approved templates
with their wording, and for each parameter where its value comes from (a field of the contact
or a fixed text). The check itself is bot.message_templates (one for every edge)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask_babel import gettext, lazy_gettext
from sqlalchemy.orm import Session

from bot.message_templates import store
from bot.message_templates.mapping import Choice, Source, read_choices, suggested
from bot.message_templates.model import (
    Mismatch,
    Place,
    Template,
    TemplateCategory,
    TemplateMismatch,
)
from bot.models import MessageTemplate

CATEGORY_WORDS = {
    TemplateCategory.UTILITY: lazy_gettext("Utility (service messages)"),
    TemplateCategory.MARKETING: lazy_gettext("Marketing (offers, news)"),
    TemplateCategory.AUTHENTICATION: lazy_gettext("Authentication (codes)"),
}
SOURCE_WORDS = {
    Source.NAME: lazy_gettext("Customer's name"),
    Source.PHONE: lazy_gettext("Customer's phone number"),
    Source.BUSINESS: lazy_gettext("Your business name"),
    Source.TEXT: lazy_gettext("Fixed text"),
}
PLACE_WORDS = {
    Place.HEADER: lazy_gettext("in the header"),
    Place.BODY: lazy_gettext("in the text"),
    Place.BUTTON: lazy_gettext("in the button's link"),
}


def template_view(row_id: int, template: Template) -> dict[str, Any]:
    """One template as the picker shows it: wording, parameters, media header."""
    return {
        "id": row_id,
        "name": template.name,
        "language": template.language,
        "category": str(template.category),
        "header_kind": str(template.header_kind) if template.header_kind else "",
        "header_text": template.header_text or "",
        "body": template.body,
        "footer": template.footer or "",
        "buttons": [b.text for b in template.buttons],
        "needs_media": template.needs_media,
        "params": [
            {
                "index": index,
                "key": p.key,
                "label": p.label,
                "place": str(PLACE_WORDS[p.place]),
                "example": p.example or "",
                "suggested": str(suggested(p)),
            }
            for index, p in enumerate(template.parameters, start=1)
        ],
    }


def picker(session: Session) -> dict[str, Any]:
    """What the picker needs: whether any template is stored, and the approved ones grouped
    by category (utility first: what a shop sends most outside the window)."""
    groups: list[dict[str, Any]] = []
    for row_id, template in store.approved(session):
        if not groups or groups[-1]["category"] != template.category:
            groups.append(
                {
                    "category": str(template.category),
                    "word": str(CATEGORY_WORDS[template.category]),
                    "templates": [],
                }
            )
        groups[-1]["templates"].append(template_view(row_id, template))
    return {
        "stored": store.any_stored(session),
        "groups": groups,
        "sources": [(str(s), str(w)) for s, w in SOURCE_WORDS.items()],
    }


def picked(session: Session, form: Mapping[str, str]) -> tuple[Template, list[Choice]]:
    """The template chosen in a picker (`template_id`) and the choice for each parameter;
    TemplateMismatch if there is no such template."""
    given = form.get("template_id", "")
    row = session.get(MessageTemplate, int(given)) if given.isdigit() else None
    if row is None:
        raise TemplateMismatch(gettext("choose a template"))
    template = store.template_of(row)
    return template, read_choices(form, template)


def mismatch_text(exc: TemplateMismatch) -> str:
    """Why a template message was refused, in the page's language."""
    d = exc.details
    texts = {
        Mismatch.UNKNOWN: lambda: gettext(
            "there is no template %(name)s in the language %(language)s", **d
        ),
        Mismatch.NOT_APPROVED: lambda: gettext(
            "the template %(name)s is not approved by WhatsApp (%(status)s)", **d
        ),
        Mismatch.COUNT: lambda: gettext(
            "the template %(name)s needs %(wanted)s value(s), %(given)s given", **d
        ),
        Mismatch.EMPTY: lambda: gettext("the value for %(label)s is empty", **d),
        Mismatch.WHITESPACE: lambda: gettext(
            "the value for %(label)s has a line break, a tab or more than four spaces in a "
            "row, which WhatsApp refuses",
            **d,
        ),
        Mismatch.MEDIA_MISSING: lambda: gettext(
            "the template %(name)s has a photo, video or document at the top: add the file", **d
        ),
        Mismatch.MEDIA_UNWANTED: lambda: gettext(
            "the template %(name)s has no photo, video or document at the top", **d
        ),
        Mismatch.OPTED_OUT: lambda: gettext(
            "%(name)s is an offer, and this customer no longer wants offers", **d
        ),
    }
    if exc.reason is None or exc.reason not in texts:
        return str(exc)
    return texts[exc.reason]()
