"""Contacts in the database: import rows, set labels, and change opt-in with its history."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.contacts import ContactRow, label_key
from bot.models import ConsentEvent, Contact, Label
from bot.sql import insert_ignore


class ConsentSource(enum.StrEnum):
    """How a contact's broadcast opt-in came to change, stored with each change."""

    KEYWORD = "keyword"  # the customer's stop or start word
    IMPORT = "import"  # a contacts CSV
    ADMIN = "admin"  # an administrator on the contact's page
    WHATSAPP = "whatsapp"  # the marketing preference set in WhatsApp (user_preferences)


SOURCES = frozenset(ConsentSource)
# The customer's own words: a stop or start keyword, or the marketing preference they set in
# WhatsApp. Each is kept on record, even one that changes nothing, with when they said it.
CUSTOMER_SOURCES = frozenset({ConsentSource.KEYWORD, ConsentSource.WHATSAPP})


@dataclass(frozen=True)
class ImportCounts:
    created: int
    updated: int
    unchanged: int


def set_opt_in(
    session: Session, contact: Contact, opted_in: bool, source: ConsentSource, at: datetime
) -> bool:
    """Opt a contact in or out of broadcasts, recording when and how; False if no change.

    The latest `at` wins. A customer's word carries when they sent it, and Meta may deliver
    it late or after a later one: a word older than the contact's last change, or than a
    word of theirs already recorded, is recorded but changes nothing. An import or an
    administrator acts now, after everything the customer sent before.
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


def find_label(session: Session, name: str) -> Label | None:
    """The label of this name, case not counting (`label_key`), or None."""
    return session.scalar(select(Label).where(Label.name_key == label_key(name)))


def label(session: Session, name: str, cache: dict[str, Label] | None = None) -> Label:
    """The label of this name (case not counting), created with this spelling if new.

    The first spelling stays: `vip` finds the label `VIP`, never makes a second one, so an
    audience `label:VIP` reaches everyone labelled either way.
    """
    key = label_key(name)
    if cache is not None and key in cache:
        return cache[key]
    found = find_label(session, name)
    if found is None:
        # Another request may create it at the same moment: its spelling then wins.
        values = {"name": name, "name_key": key}
        session.execute(insert_ignore(session, Label, ["name_key"]).values(**values))
        found = find_label(session, name)
        assert found is not None
    if cache is not None:
        cache[key] = found
    return found


def set_labels(session: Session, contact: Contact, names: Iterable[str]) -> None:
    """Give the contact exactly these labels (case not counting), creating new ones."""
    cache: dict[str, Label] = {}
    found = {lb.id: lb for lb in (label(session, n, cache) for n in names)}
    contact.labels = sorted(found.values(), key=lambda lb: lb.name)


def import_rows(session: Session, rows: Iterable[ContactRow], now: datetime) -> ImportCounts:
    """Create or update a contact per row (by wa_id), in the caller's transaction."""
    created = updated = unchanged = 0
    labels: dict[str, Label] = {}
    batch = list(rows)
    wa_ids = {r.wa_id for r in batch}
    existing = {
        c.wa_id: c for c in session.scalars(select(Contact).where(Contact.wa_id.in_(wa_ids)))
    }
    for row in batch:
        contact = existing.get(row.wa_id)
        is_new = contact is None
        if contact is None:
            contact = Contact(wa_id=row.wa_id, name=row.name, created_at=now, opted_in=False)
            session.add(contact)
            session.flush()
            existing[row.wa_id] = contact
        changed = is_new
        if row.name is not None and contact.name != row.name:
            contact.name = row.name
            changed = True
        if row.labels is not None:
            wanted = [label(session, n, labels) for n in row.labels]
            if {lb.id for lb in contact.labels} != {lb.id for lb in wanted}:
                contact.labels = wanted
                changed = True
        if row.opted_in is not None and set_opt_in(
            session, contact, row.opted_in, ConsentSource.IMPORT, now
        ):
            changed = True
        if is_new:
            created += 1
        elif changed:
            updated += 1
        else:
            unchanged += 1
    session.flush()
    return ImportCounts(created, updated, unchanged)
