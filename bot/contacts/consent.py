"""A contact's broadcast opt-in: every change goes through set_opt_in, which keeps the consent
record (when and how) beside it."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.models import ConsentEvent, Contact
from bot.webhooks_out import store as webhooks


class ConsentSource(enum.StrEnum):
    """How a contact's broadcast opt-in came to change, stored with each change."""

    KEYWORD = "keyword"  # the customer's stop or start word
    IMPORT = "import"  # a contacts CSV
    ADMIN = "admin"  # an administrator on the contact's page
    WHATSAPP = "whatsapp"  # the marketing preference set in WhatsApp (user_preferences)
    API = "api"  # the shop's own system, through /api/v1 with an API key


SOURCES = frozenset(ConsentSource)
# The customer's own words: a stop or start keyword, or the marketing preference they set in
# WhatsApp. Each is kept on record, even one that changes nothing, with when they said it.
CUSTOMER_SOURCES = frozenset({ConsentSource.KEYWORD, ConsentSource.WHATSAPP})


def opted_out(contact: Contact) -> bool:
    """Whether the customer said no (an opt-out recorded, and no yes since); a customer never
    asked has not."""
    return not contact.opted_in and contact.opted_in_changed_at is not None


def set_opt_in(
    session: Session, contact: Contact, opted_in: bool, source: ConsentSource, at: datetime
) -> bool:
    """Opt a contact in or out of broadcasts, recording when and how; False if no change.

    The latest `at` wins. A customer's word carries when they sent it, and Meta may deliver
    it late or after a later one: a word older than the contact's last change, or than a
    word of theirs already recorded, is recorded but changes nothing. An import, an
    administrator or the API acts now, after everything the customer sent before.
    """
    if source not in SOURCES:
        raise ValueError(f"unknown opt-in source {source!r}")
    customer = source in CUSTOMER_SOURCES
    if contact.id is None:
        session.flush()
    if customer and _recorded(session, contact.id, opted_in, source, at):
        return False  # the same notification delivered again
    # An import or an administrator acts now, so only a customer's word can come too late.
    latest = not customer or _is_latest(session, contact, at)
    changes = latest and bool(contact.opted_in) != opted_in
    if customer or changes:
        session.add(ConsentEvent(contact_id=contact.id, opted_in=opted_in, source=source, at=at))
    if changes:
        contact.opted_in = opted_in
        contact.opted_in_changed_at = at
        contact.opted_in_source = source
        # Every edge changes consent here: the keyword, WhatsApp's setting, an import, the
        # admin, the API. So the shop's own systems hear of each change, from wherever.
        webhooks.consent_changed(session, contact, opted_in, source, at)
    return changes


def _recorded(session: Session, contact_id: int, opted_in: bool, source: str, at: datetime) -> bool:
    query = select(ConsentEvent.id).where(
        ConsentEvent.contact_id == contact_id,
        ConsentEvent.opted_in == opted_in,
        ConsentEvent.source == source,
        ConsentEvent.at == at,
    )
    return session.scalars(query.limit(1)).first() is not None


def _is_latest(session: Session, contact: Contact, at: datetime) -> bool:
    """Whether nothing later is known: neither the contact's last change nor a word of theirs
    on record (a repeated STOP changes nothing, yet a START sent before it must not win)."""
    recorded = session.scalar(
        select(func.max(ConsentEvent.at)).where(ConsentEvent.contact_id == contact.id)
    )
    return all(t is None or at >= t for t in (contact.opted_in_changed_at, recorded))
