"""Notices: what the shop should know, shown on every admin page until someone dismisses it
(a template paused, moved to marketing, rejected …). Stored as a kind and its details; the
admin builds the words in the reader's language (bot.admin.notices_page)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.models import Notice


class NoticeKind(enum.StrEnum):
    TEMPLATE_APPROVED = "template_approved"
    TEMPLATE_REJECTED = "template_rejected"
    TEMPLATE_PAUSED = "template_paused"
    TEMPLATE_DISABLED = "template_disabled"
    TEMPLATE_REINSTATED = "template_reinstated"
    TEMPLATE_FLAGGED = "template_flagged"  # at risk of being disabled
    TEMPLATE_RECATEGORISED = "template_recategorised"
    TEMPLATE_RECATEGORISATION_PLANNED = "template_recategorisation_planned"
    TEMPLATE_QUALITY_LOW = "template_quality_low"
    WEBHOOK_DISABLED = "webhook_disabled"  # an outgoing webhook failed for days (bot.webhooks_out)


# The banner shows this many; the notices page lists the rest.
BANNER_LIMIT = 5
RECENT_LIMIT = 100


def raise_notice(
    session: Session,
    kind: NoticeKind,
    details: Mapping[str, Any],
    now: datetime,
    *,
    template_id: int | None = None,
    broadcast_id: int | None = None,
) -> Notice | None:
    """Add a notice; None when the same one (kind, template and details but the broadcasts
    named, which change as they go out) is open already: Meta delivers a notification more
    than once, and the shop needs to read it once."""
    same = session.scalars(
        select(Notice).where(
            Notice.kind == kind,
            Notice.dismissed_at.is_(None),
            Notice.template_id.is_(None)
            if template_id is None
            else Notice.template_id == template_id,
        )
    )
    wanted = dict(details)
    if any(_sameness(notice.details) == _sameness(wanted) for notice in same):
        return None
    notice = Notice(
        kind=kind,
        details=wanted,
        template_id=template_id,
        broadcast_id=broadcast_id,
        created_at=now,
    )
    session.add(notice)
    session.flush()
    return notice


def open_notices(session: Session, limit: int = BANNER_LIMIT) -> tuple[list[Notice], int]:
    """The newest notices not dismissed (at most `limit`), and how many are open in all."""
    is_open = Notice.dismissed_at.is_(None)
    rows = list(
        session.scalars(
            select(Notice)
            .where(is_open)
            .order_by(Notice.created_at.desc(), Notice.id.desc())
            .limit(limit)
        )
    )
    count = session.scalar(select(func.count(Notice.id)).where(is_open)) or 0
    return rows, int(count)


def recent(session: Session, limit: int = RECENT_LIMIT) -> list[Notice]:
    """The newest notices, dismissed or not."""
    return list(
        session.scalars(
            select(Notice).order_by(Notice.created_at.desc(), Notice.id.desc()).limit(limit)
        )
    )


def dismiss(session: Session, notice_id: int, user_id: int | None, now: datetime) -> Notice | None:
    """Dismiss a notice for everyone; None when there is no such notice. Dismissing one that
    is dismissed already changes nothing."""
    notice = session.get(Notice, notice_id)
    if notice is None:
        return None
    if notice.dismissed_at is None:
        notice.dismissed_at = now
        notice.dismissed_by_id = user_id
    return notice


# Details that follow from the others at the time the notice is raised.
_DERIVED = frozenset({"broadcasts", "flag"})


def _sameness(details: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in details.items() if key not in _DERIVED}
