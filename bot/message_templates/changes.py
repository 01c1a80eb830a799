"""Meta's notifications about the account's templates, applied: the stored template's status,
category or quality updated, and a notice raised naming the coming broadcasts it puts at risk
(the rule is bot.message_templates.flags'; this module reads the rows for it).

A template not stored yet gets no row here: a notification carries no wording, and a row
without it would make every send's check (sending.prepare) judge against an empty body. The
notice is raised all the same, and the next sync brings the template whole.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import notices
from bot.broadcasts import BroadcastKind, BroadcastStatus, Funnel, funnels
from bot.message_templates.flags import (
    BroadcastUse,
    Flag,
    TemplateState,
    affected,
    language_key,
)
from bot.message_templates.model import TemplateCategory, TemplateQuality, TemplateStatus
from bot.models import Broadcast, MessageTemplate
from bot.notices import NoticeKind
from bot.whatsapp import events

log = logging.getLogger("tresen.templates")

COMING = (BroadcastStatus.SCHEDULED, BroadcastStatus.RUNNING)

# Status events that are the template's new status, as the `message_templates` edge lists it.
SETTABLE = frozenset(
    {
        TemplateStatus.APPROVED,
        TemplateStatus.REJECTED,
        TemplateStatus.PENDING,
        TemplateStatus.PAUSED,
        TemplateStatus.DISABLED,
        TemplateStatus.IN_APPEAL,
        TemplateStatus.PENDING_DELETION,
        TemplateStatus.DELETED,
        TemplateStatus.ARCHIVED,
        TemplateStatus.LIMIT_EXCEEDED,
    }
)
STATUS_NOTICES = {
    TemplateStatus.APPROVED: NoticeKind.TEMPLATE_APPROVED,
    TemplateStatus.REJECTED: NoticeKind.TEMPLATE_REJECTED,
    TemplateStatus.PAUSED: NoticeKind.TEMPLATE_PAUSED,
    TemplateStatus.DISABLED: NoticeKind.TEMPLATE_DISABLED,
}
LOW_QUALITY = frozenset({TemplateQuality.YELLOW, TemplateQuality.RED})
# Longer than any column can hold: not a template of ours.
_NAME_MAX, _LANGUAGE_MAX = 512, 16


# --- finding the template --------------------------------------------------------------------


def stored(session: Session, meta_id: str, name: str, language: str) -> MessageTemplate | None:
    """The stored template by Meta's id, else by name and language (`en-US` finds `en_US`)."""
    row = session.scalar(select(MessageTemplate).where(MessageTemplate.meta_id == meta_id))
    if row is not None:
        return row
    key = language_key(language)
    for candidate in session.scalars(select(MessageTemplate).where(MessageTemplate.name == name)):
        if language_key(candidate.language) == key:
            return candidate
    return None


def state_of(row: MessageTemplate) -> TemplateState:
    return TemplateState(row.name, row.language, row.status, row.category, row.previous_category)


# --- which broadcasts are at risk ---------------------------------------------------------------


def _uses(found: Iterable[Broadcast], stats: Mapping[int, Funnel]) -> list[BroadcastUse]:
    return [
        BroadcastUse(b.id, b.template_name or "", b.language or "", stats[b.id].status in COMING)
        for b in found
        if b.kind == BroadcastKind.TEMPLATE and b.template_name and b.id in stats
    ]


def flags_for(
    session: Session, found: Iterable[Broadcast], stats: Mapping[int, Funnel]
) -> dict[int, Flag]:
    """The flags of these broadcasts (with their funnels, as the pages have them), by id."""
    uses = _uses(found, stats)
    names = {use.template for use in uses}
    if not names:
        return {}
    rows = session.scalars(select(MessageTemplate).where(MessageTemplate.name.in_(names)))
    return {flag.broadcast_id: flag for flag in affected(uses, [state_of(r) for r in rows])}


def affected_by(session: Session, state: TemplateState) -> list[Flag]:
    """The coming broadcasts this template's state puts at risk."""
    found = list(
        session.scalars(
            select(Broadcast).where(
                Broadcast.kind == BroadcastKind.TEMPLATE,
                Broadcast.template_name == state.name,
                Broadcast.cancelled_at.is_(None),
            )
        )
    )
    return affected(_uses(found, funnels(session, found)), [state])


# --- the notifications --------------------------------------------------------------------------


def apply_update(session: Session, event: events.TemplateUpdate, now: datetime) -> None:
    """Apply one template notification: idempotent, as Meta delivers some more than once."""
    if len(event.name) > _NAME_MAX or len(event.language) > _LANGUAGE_MAX:
        log.warning("template notification for a name or language too long to be ours: ignored")
        return
    row = stored(session, event.template_id, event.name, event.language)
    if row is not None and row.meta_id is None:
        row.meta_id = event.template_id
    if isinstance(event, events.TemplateStatusUpdate):
        _status(session, row, event, now)
    elif isinstance(event, events.TemplateCategoryUpdate):
        _category(session, row, event, now)
    else:
        _quality(session, row, event, now)


def _head(event: events.TemplateUpdate, row: MessageTemplate | None) -> dict[str, Any]:
    return {
        "name": row.name if row is not None else event.name,
        "language": row.language if row is not None else event.language,
        # Tells a redelivery (same time) from a later change to the same state.
        "event_at": event.timestamp.isoformat(),
    }


def _raise(
    session: Session,
    kind: NoticeKind,
    details: dict[str, Any],
    row: MessageTemplate | None,
    state: TemplateState,
    now: datetime,
) -> None:
    flags = affected_by(session, state)
    if flags:
        details["broadcasts"] = [flag.broadcast_id for flag in flags]
        details["flag"] = flags[0].reason
    notices.raise_notice(
        session, kind, details, now, template_id=row.id if row is not None else None
    )


def _status(
    session: Session,
    row: MessageTemplate | None,
    event: events.TemplateStatusUpdate,
    now: datetime,
) -> None:
    word = event.event.strip().lower()
    reason = event.reason if event.reason and event.reason.upper() != "NONE" else None
    kind: NoticeKind | None
    new: TemplateStatus | None
    if word == TemplateStatus.REINSTATED:
        # A paused template back in use: Meta lists it as approved again.
        new, kind = TemplateStatus.APPROVED, NoticeKind.TEMPLATE_REINSTATED
    elif word == TemplateStatus.FLAGGED:
        # Still sendable, but to be disabled unless its quality improves.
        new, kind = None, NoticeKind.TEMPLATE_FLAGGED
    elif word in SETTABLE:
        new = TemplateStatus(word)
        kind = STATUS_NOTICES.get(new)
    else:
        # An event this version does not know (unlocked, unarchived, …): the status is left
        # as stored, and the next sync reads the template as Meta lists it.
        log.info("template %s: status event %r not applied", event.name, event.event[:40])
        return
    previous = row.status if row is not None else None
    if row is not None:
        if new is not None:
            row.status = new
            row.reason = None if new == TemplateStatus.APPROVED else reason
        elif reason:
            row.reason = reason
        row.updated_at = now
    if kind is None:
        return
    if kind is NoticeKind.TEMPLATE_APPROVED and previous == TemplateStatus.APPROVED:
        return  # nothing new to tell (a sync or an earlier delivery had it already)
    details = _head(event, row) | {"status": new or previous or word, "reason": reason}
    if event.detail:
        details["detail"] = event.detail[:1000]
    if row is not None:
        state = state_of(row)
    else:
        category = (event.category or "").lower() or None
        # Flagged is a warning, not a state: the template is still sendable.
        status = new or TemplateStatus.APPROVED
        state = TemplateState(event.name, event.language, status, category)
    _raise(session, kind, details, row, state, now)


def _category(
    session: Session,
    row: MessageTemplate | None,
    event: events.TemplateCategoryUpdate,
    now: datetime,
) -> None:
    new = _category_word(event.new_category)
    if event.impending:
        details = _head(event, row) | {
            "category": new,
            "correct_category": _category_word(event.correct_category or ""),
        }
        notices.raise_notice(
            session,
            NoticeKind.TEMPLATE_RECATEGORISATION_PLANNED,
            details,
            now,
            template_id=row.id if row is not None else None,
        )
        return
    previous = _category_word(event.previous_category or "") or (
        row.category if row is not None else None
    )
    if row is not None:
        if row.category != new:
            row.previous_category = previous
        row.category = new
        row.updated_at = now
        state = state_of(row)
    else:
        state = TemplateState(event.name, event.language, TemplateStatus.APPROVED, new, previous)
    details = _head(event, row) | {"category": new, "previous_category": previous}
    _raise(session, NoticeKind.TEMPLATE_RECATEGORISED, details, row, state, now)


def _category_word(value: str) -> str:
    word = value.strip().lower()
    return word if word in set(TemplateCategory) else word[:32]


def _quality(
    session: Session,
    row: MessageTemplate | None,
    event: events.TemplateQualityUpdate,
    now: datetime,
) -> None:
    word = event.new_quality.strip().lower()
    quality = TemplateQuality(word) if word in set(TemplateQuality) else TemplateQuality.UNKNOWN
    before = row.quality if row is not None else (event.previous_quality or "").lower() or None
    if row is not None:
        row.quality = quality
        row.updated_at = now
    if quality not in LOW_QUALITY or before == quality:
        return  # better, or no change (a redelivery)
    details = _head(event, row) | {"quality": quality, "previous_quality": before}
    notices.raise_notice(
        session,
        NoticeKind.TEMPLATE_QUALITY_LOW,
        details,
        now,
        template_id=row.id if row is not None else None,
    )
