"""Notices in the admin: a banner on every page with the open ones, each with a button to
dismiss it, and a page listing the recent ones; and the words of a template's flag on a
broadcast. The words are built here from a notice's kind and details, in the reader's
language; names from Meta stay data (Jinja escapes them)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from bot import audit, notices
from bot.admin.blueprint import bp, log_change, now
from bot.db import get_db
from bot.message_templates.flags import Flag, FlagReason
from bot.models import Notice, User
from bot.notices import NoticeKind


def _category(word: Any) -> str:
    # Meta's names for the categories, as WhatsApp Manager shows them in both languages.
    return str(word or "").replace("_", " ").capitalize()


def notice_text(kind: str, details: Mapping[str, Any]) -> str:
    """The notice's sentence in the page's language."""
    name = str(details.get("name") or "")
    language = str(details.get("language") or "")
    args = {"name": name, "language": language}
    if kind == NoticeKind.WEBHOOK_DISABLED:
        return gettext(
            "The webhook to %(url)s failed for three days and is switched off: nothing more is "
            "sent to it. Look at it under Account → Webhooks and switch it on again once the "
            "receiving system works.",
            url=str(details.get("url") or ""),
        )
    if kind == NoticeKind.TEMPLATE_PAUSED:
        return gettext(
            "Meta paused the template %(name)s (%(language)s): it cannot be sent until Meta "
            "releases it again.",
            **args,
        )
    if kind == NoticeKind.TEMPLATE_DISABLED:
        return gettext(
            "Meta disabled the template %(name)s (%(language)s): it cannot be sent any more.",
            **args,
        )
    if kind == NoticeKind.TEMPLATE_REJECTED:
        return gettext("Meta rejected the template %(name)s (%(language)s).", **args)
    if kind == NoticeKind.TEMPLATE_APPROVED:
        return gettext(
            "Meta approved the template %(name)s (%(language)s): it can be sent now.", **args
        )
    if kind == NoticeKind.TEMPLATE_REINSTATED:
        return gettext(
            "Meta released the template %(name)s (%(language)s) again: it can be sent.", **args
        )
    if kind == NoticeKind.TEMPLATE_FLAGGED:
        return gettext(
            "Meta warns about the template %(name)s (%(language)s): customers reacted badly "
            "to it, and Meta will disable it unless that improves.",
            **args,
        )
    if kind == NoticeKind.TEMPLATE_RECATEGORISED:
        previous, new = details.get("previous_category"), details.get("category")
        if (previous, new) == ("utility", "marketing"):
            return gettext(
                "Meta moved the template %(name)s (%(language)s) from Utility to Marketing: "
                "from now on every message with it costs the marketing price.",
                **args,
            )
        return gettext(
            "Meta moved the template %(name)s (%(language)s) from %(previous)s to %(new)s.",
            previous=_category(previous),
            new=_category(new),
            **args,
        )
    if kind == NoticeKind.TEMPLATE_RECATEGORISATION_PLANNED:
        return gettext(
            "Meta is going to move the template %(name)s (%(language)s) to %(new)s.",
            new=_category(details.get("correct_category")),
            **args,
        )
    if kind == NoticeKind.TEMPLATE_QUALITY_LOW:
        if details.get("quality") == "red":
            return gettext(
                "The quality of the template %(name)s (%(language)s) is low: customers block "
                "or report it. Meta may pause it soon.",
                **args,
            )
        return gettext(
            "The quality of the template %(name)s (%(language)s) has dropped: Meta may pause "
            "it if it drops further.",
            **args,
        )
    return gettext("Something about the template %(name)s (%(language)s) changed.", **args)


@bp.app_template_global()
def template_flag_text(flag: Flag) -> str:
    """Why a coming broadcast is flagged, for its card and its page."""
    name = flag.template
    if flag.reason == FlagReason.PAUSED:
        return gettext(
            "Meta paused the template %(name)s: this broadcast cannot go out until Meta "
            "releases it again.",
            name=name,
        )
    if flag.reason == FlagReason.DISABLED:
        return gettext(
            "Meta disabled the template %(name)s: this broadcast cannot go out. Choose "
            "another template.",
            name=name,
        )
    if flag.reason == FlagReason.REJECTED:
        return gettext(
            "Meta rejected the template %(name)s: this broadcast cannot go out. Choose "
            "another template.",
            name=name,
        )
    if flag.reason == FlagReason.RECATEGORISED:
        return gettext(
            "Meta moved the template %(name)s from Utility to Marketing: every message of "
            "this broadcast now costs the marketing price.",
            name=name,
        )
    return gettext(
        "The template %(name)s is not approved (%(status)s): this broadcast cannot go out "
        "as it is.",
        name=name,
        status=flag.status,
    )


def shown(notice: Notice, users: Mapping[int, str] | None = None) -> dict[str, Any]:
    details = notice.details if isinstance(notice.details, dict) else {}
    broadcasts = [b for b in details.get("broadcasts") or () if isinstance(b, int)]
    reason = details.get("reason")
    return {
        "id": notice.id,
        "kind": notice.kind,
        "text": notice_text(notice.kind, details),
        "reason": str(reason) if reason else None,
        "detail": str(details.get("detail") or "") or None,
        "broadcasts": broadcasts,
        "created_at": notice.created_at,
        "dismissed_at": notice.dismissed_at,
        "dismissed_by": (users or {}).get(notice.dismissed_by_id or 0),
    }


@bp.app_template_global()
def notices_banner() -> dict[str, Any]:
    """The open notices for the banner on every page (base.html asks, once logged in)."""
    if not current_user.is_authenticated:
        return {"items": [], "more": 0}
    try:
        with get_db().session() as session:
            rows, count = notices.open_notices(session)
            items = [shown(row) for row in rows]
    except SQLAlchemyError:
        # A page about a database that does not answer still shows.
        return {"items": [], "more": 0}
    return {"items": items, "more": count - len(items)}


@bp.get("/notices")
def notices_page() -> str:
    with get_db().session() as session:
        rows = notices.recent(session)
        ids = {row.dismissed_by_id for row in rows if row.dismissed_by_id is not None}
        users = dict(session.execute(select(User.id, User.name).where(User.id.in_(ids))).all())
        items = [shown(row, users) for row in rows]
    return render_template("admin/notices.html", items=items)


@bp.post("/notices/<int:notice_id>/dismiss")
def notice_dismiss(notice_id: int) -> Response:
    with get_db().session() as session:
        notice = notices.dismiss(session, notice_id, current_user.id, now())
        if notice is None:
            abort(404)
        log_change(session, audit.Action.NOTICE_DISMISSED, subject=f"notice:{notice_id}")
    flash(gettext("The notice is hidden for everyone."))
    back = request.form.get("next", "")
    # Only a page of the admin itself: never off to another site.
    if not back.startswith("/admin/"):
        back = url_for("admin.notices_page")
    return redirect(back)
