"""The messaging limit as stored (one `MessagingLimit` row) and what of it is used: unique
customers reached by business-initiated (template) messages in the rolling 24 hours.

No row: unlimited (console mode, where nothing leaves). The worker writes Meta's start (250,
source default) in WhatsApp mode until the Graph API has been read (source api), and a
refusal for the limit sets it to what is in use (source error), so nothing more is released
until the window frees or the next reading says otherwise.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, or_, select, type_coerce
from sqlalchemy.orm import Session

from bot.broadcasts.content import BroadcastKind
from bot.broadcasts.limits import DEFAULT_LIMIT, DEFAULT_TIER, WINDOW, tier_limit
from bot.models import Direction, Message, MessageStatus, MessagingLimit, UTCDateTime

ROW_ID = 1


class LimitSource:
    API = "api"
    ERROR = "error"
    DEFAULT = "default"


def current(session: Session) -> MessagingLimit | None:
    return session.get(MessagingLimit, ROW_ID)


def limit_now(session: Session) -> int | None:
    """How many unique customers business-initiated messages may reach in 24 hours; None:
    no limit known to keep (console mode)."""
    row = current(session)
    return None if row is None else row.limit


def store(
    session: Session, tier: str, source: str, now: datetime, limit: int | None = None
) -> None:
    """Keep the limit: a tier read from the API (its limit from the tier), or with `limit`."""
    value = tier_limit(tier) if limit is None and source != LimitSource.ERROR else limit
    row = current(session)
    if row is None:
        session.add(
            MessagingLimit(id=ROW_ID, tier=tier, limit=value, source=source, updated_at=now)
        )
        session.flush()
        return
    row.tier, row.limit, row.source, row.updated_at = tier, value, source, now


def ensure_default(session: Session, now: datetime) -> None:
    """WhatsApp mode with no limit read yet: Meta's start for a new business portfolio."""
    if current(session) is None:
        store(session, DEFAULT_TIER, LimitSource.DEFAULT, now, DEFAULT_LIMIT)


def learn_refusal(session: Session, now: datetime) -> None:
    """Meta refused a message for the limit: the limit is what is in use now, so nothing more
    is released until older sends leave the window (or the API is read again)."""
    row = current(session)
    tier = row.tier if row is not None else DEFAULT_TIER
    store(session, tier, LimitSource.ERROR, now, limit=used(session, now))


def _counted() -> ColumnElement[bool]:
    return and_(
        Message.direction == Direction.OUT,
        Message.type == BroadcastKind.TEMPLATE,
    )


def in_window(now: datetime) -> ColumnElement[bool]:
    """Template messages that take up the limit at `now`: sent in the last 24 hours and not
    failed since, or released and not sent yet."""
    return and_(
        _counted(),
        or_(
            and_(Message.sent_at > now - WINDOW, Message.status != MessageStatus.FAILED),
            Message.status.in_((MessageStatus.QUEUED, MessageStatus.SENDING)),
        ),
    )


def used(session: Session, now: datetime) -> int:
    """Unique customers business-initiated messages reached (or are about to) in 24 hours."""
    query = select(func.count(func.distinct(Message.contact_id))).where(in_window(now))
    return int(session.scalar(query) or 0)


def sends(session: Session, now: datetime) -> list[tuple[datetime, int]]:
    """When the customers counted by `used` were reached (the first time in the window), and
    how many at that moment: what the finish estimate needs to know when room frees."""
    first = (
        select(
            type_coerce(
                func.min(func.coalesce(Message.sent_at, Message.status_at)), UTCDateTime()
            ).label("at")
        )
        .where(in_window(now))
        .group_by(Message.contact_id)
        .subquery()
    )
    rows = session.execute(select(first.c.at, func.count()).group_by(first.c.at)).all()
    return [(at, int(count)) for at, count in rows if at is not None]
