"""Labels in the database: find one by name, create one, give contacts their labels, rename,
colour, count, and the starting set; names that differ only in case are one label
(`label_key`)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot.contacts.audiences import Audience, parse_audience
from bot.contacts.label_names import COLORS, clean_label, default_labels, label_key
from bot.models import Broadcast, Contact, Label, contact_labels
from bot.sql import insert_ignore


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


class LabelError(ValueError):
    """A label change that cannot be made (a name taken, empty or too long)."""


def seed_default_labels(session: Session, locale: str) -> None:
    """Give a new business the WhatsApp Business app's starting labels in its language."""
    for name, color in default_labels(locale):
        label(session, name).color = color


def label_counts(session: Session) -> list[tuple[Label, int]]:
    """Every label with how many contacts have it, by name."""
    count = func.count(contact_labels.c.contact_id)
    query = (
        select(Label, count)
        .outerjoin(contact_labels, contact_labels.c.label_id == Label.id)
        .group_by(Label.id)
        .order_by(func.lower(Label.name), Label.id)
    )
    return [(row[0], row[1]) for row in session.execute(query)]


def rename_label(session: Session, found: Label, text: str) -> None:
    """Give a label a new name (a new spelling of the same name too); LabelError when the
    name is empty, too long, or another label's (case not counting)."""
    try:
        name = clean_label(text)
    except ValueError as exc:
        raise LabelError(str(exc)) from exc
    if not name:
        raise LabelError("a label needs a name")
    other = find_label(session, name)
    if other is not None and other.id != found.id:
        raise LabelError(f"there is a label {other.name!r} already")
    old_key = found.name_key
    found.name = name
    found.name_key = label_key(name)
    # Broadcasts name their audience's label: a weekly one keeps reaching the renamed label.
    for broadcast in session.scalars(select(Broadcast).where(Broadcast.audience.like("label:%"))):
        try:
            audience = parse_audience(broadcast.audience)
        except ValueError:
            continue
        if audience.label is not None and label_key(audience.label) == old_key:
            broadcast.audience = str(Audience(label=name))


def set_color(found: Label, color: str) -> None:
    if color not in COLORS:
        raise LabelError(f"unknown colour {color!r}")
    found.color = color


def add_label(session: Session, contacts: Iterable[Contact], found: Label) -> int:
    """Give these contacts the label; how many did not have it."""
    added = 0
    for contact in contacts:
        if all(lb.id != found.id for lb in contact.labels):
            contact.labels.append(found)
            added += 1
    return added


def remove_label(contacts: Iterable[Contact], found: Label) -> int:
    """Take the label from these contacts; how many had it."""
    removed = 0
    for contact in contacts:
        kept = [lb for lb in contact.labels if lb.id != found.id]
        if len(kept) != len(contact.labels):
            contact.labels = kept
            removed += 1
    return removed
