"""Labels in the database: find one by name, create one, give a contact its labels; names that
differ only in case are one label (`label_key`)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.contacts.label_names import label_key
from bot.models import Contact, Label
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
