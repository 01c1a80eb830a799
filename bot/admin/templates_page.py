"""The account's WhatsApp templates in the admin: the list (category, status, quality and the
wording with its variables marked), one template's page, and the owner's button that fetches
them from Meta now (bot.message_templates.sync, the function the CLI and the scheduler use)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext, lazy_gettext
from sqlalchemy import func, select
from werkzeug.wrappers import Response

from bot import audit
from bot.admin.blueprint import bp, log_change, now
from bot.config import Config
from bot.db import get_db
from bot.message_templates.model import (
    VARIABLE,
    HeaderKind,
    Place,
    Template,
    TemplateCategory,
    TemplateQuality,
    TemplateStatus,
)
from bot.message_templates.store import template_of
from bot.message_templates.sync import sync
from bot.models import MessageTemplate

CATEGORY_LABELS: dict[str, Any] = {
    TemplateCategory.MARKETING: lazy_gettext("Marketing"),
    TemplateCategory.UTILITY: lazy_gettext("Utility"),
    TemplateCategory.AUTHENTICATION: lazy_gettext("Authentication"),
}
STATUS_LABELS: dict[str, Any] = {
    TemplateStatus.APPROVED: lazy_gettext("Approved"),
    TemplateStatus.PENDING: lazy_gettext("In review"),
    TemplateStatus.REJECTED: lazy_gettext("Rejected"),
    TemplateStatus.PAUSED: lazy_gettext("Paused"),
    TemplateStatus.DISABLED: lazy_gettext("Disabled"),
    TemplateStatus.IN_APPEAL: lazy_gettext("Appealed"),
    TemplateStatus.PENDING_DELETION: lazy_gettext("Being deleted"),
    TemplateStatus.DELETED: lazy_gettext("Deleted"),
    TemplateStatus.LIMIT_EXCEEDED: lazy_gettext("Over the template limit"),
    TemplateStatus.ARCHIVED: lazy_gettext("Archived"),
    TemplateStatus.LOCKED: lazy_gettext("Locked"),
    TemplateStatus.FLAGGED: lazy_gettext("Flagged"),
    TemplateStatus.REINSTATED: lazy_gettext("Reinstated"),
    TemplateStatus.UNKNOWN: lazy_gettext("Unknown"),
}
QUALITY_LABELS: dict[str, Any] = {
    TemplateQuality.GREEN: lazy_gettext("High"),
    TemplateQuality.YELLOW: lazy_gettext("Medium"),
    TemplateQuality.RED: lazy_gettext("Low"),
    TemplateQuality.UNKNOWN: lazy_gettext("Not rated yet"),
}
HEADER_LABELS: dict[str, Any] = {
    HeaderKind.IMAGE: lazy_gettext("Picture"),
    HeaderKind.VIDEO: lazy_gettext("Video"),
    HeaderKind.DOCUMENT: lazy_gettext("Document"),
    HeaderKind.LOCATION: lazy_gettext("Location"),
}
PLACE_LABELS: dict[str, Any] = {
    Place.HEADER: lazy_gettext("Header"),
    Place.BODY: lazy_gettext("Text"),
    Place.BUTTON: lazy_gettext("Button link"),
}
ORIGIN_LABELS: dict[str, Any] = {
    "synced": lazy_gettext("From WhatsApp"),
    "submitted": lazy_gettext("Submitted from here"),
    "demo": lazy_gettext("Demo (console mode)"),
}


def _label(labels: dict[str, Any], value: str | None) -> str:
    return str(labels[value]) if value in labels else (value or "")


@bp.app_template_global()
def template_category_label(value: str | None) -> str:
    """A category in the page's language (Marketing, Service-Nachricht, …)."""
    return _label(CATEGORY_LABELS, value)


@bp.app_template_global()
def template_status_label(value: str | None) -> str:
    """A status in the page's language (Freigegeben, Pausiert, …)."""
    return _label(STATUS_LABELS, value)


@bp.app_template_global()
def template_quality_label(value: str | None) -> str:
    return _label(QUALITY_LABELS, value)


@bp.app_template_global()
def template_segments(text: str | None) -> list[tuple[str, bool]]:
    """Meta's wording cut into (text, is_variable) pieces, so the page marks each `{{…}}`
    and Jinja escapes every piece."""
    pieces: list[tuple[str, bool]] = []
    position = 0
    for match in VARIABLE.finditer(text or ""):
        if match.start() > position:
            pieces.append((text[position : match.start()], False))  # type: ignore[index]
        pieces.append((f"{{{{{match[1]}}}}}", True))
        position = match.end()
    if text and position < len(text):
        pieces.append((text[position:], False))
    return pieces


@dataclass(frozen=True)
class Shown:
    """A stored template as the pages show it."""

    id: int
    template: Template
    row: MessageTemplate

    @property
    def header_label(self) -> str | None:
        kind = self.template.header_kind
        return _label(HEADER_LABELS, kind) if kind and kind != HeaderKind.TEXT else None


def _shown(row: MessageTemplate) -> Shown:
    return Shown(row.id, template_of(row), row)


def _sync_state(config: Config, last: datetime | None) -> dict[str, Any]:
    return {
        "console": config.console_mode,
        "configured": config.business_account_id is not None,
        "last": last,
    }


@bp.get("/templates")
def templates_list() -> str:
    config: Config = current_app.config["TRESEN"]
    with get_db().session() as session:
        rows = list(
            session.scalars(
                select(MessageTemplate).order_by(
                    (MessageTemplate.status == TemplateStatus.DELETED.value),
                    MessageTemplate.name,
                    MessageTemplate.language,
                )
            )
        )
        last = session.scalar(select(func.max(MessageTemplate.synced_at)))
        shown = [_shown(row) for row in rows]
    return render_template(
        "admin/templates.html",
        templates=shown,
        sync_state=_sync_state(config, last),
        place_labels=PLACE_LABELS,
    )


@bp.get("/templates/<int:template_id>")
def templates_detail(template_id: int) -> str:
    with get_db().session() as session:
        row = session.get(MessageTemplate, template_id)
        if row is None:
            abort(404)
        shown = _shown(row)
    return render_template(
        "admin/template.html",
        shown=shown,
        place_labels=PLACE_LABELS,
        origin=_label(ORIGIN_LABELS, shown.row.origin),
    )


@bp.post("/templates/sync")
def templates_sync() -> Response:
    config: Config = current_app.config["TRESEN"]
    result = sync(get_db(), config, now())
    with get_db().session() as session:
        log_change(
            session, audit.Action.TEMPLATES_SYNCED, subject="templates", after=result.summary()
        )
    if not result.configured:
        flash(
            gettext(
                "Set WHATSAPP_BUSINESS_ACCOUNT_ID to fetch your templates from WhatsApp "
                "(see the README)."
            ),
            "error",
        )
    elif result.error is not None:
        flash(
            gettext(
                "WhatsApp did not give the templates: %(reason)s. Nothing was changed; try again "
                "later, or check the access token and the account id.",
                reason=result.error,
            ),
            "error",
        )
    elif result.demo:
        flash(gettext("Console mode: these are the demo templates."))
    else:
        flash(
            gettext(
                "Fetched %(count)d templates from WhatsApp: %(added)d new, %(updated)d changed, "
                "%(deleted)d no longer there.",
                count=result.templates,
                added=result.stored.added,
                updated=result.stored.updated,
                deleted=result.stored.deleted,
            )
        )
    return redirect(url_for("admin.templates_list"))
