"""Importing contacts read from a CSV: create or update each by number, with its labels and
opt-in; the whole file in batches with its per-line report (the command line's and the
admin's)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.contacts.consent import ConsentSource, set_opt_in
from bot.contacts.csvfile import BadRow, ContactRow
from bot.contacts.labels import label
from bot.models import Contact, Label


@dataclass(frozen=True)
class ImportCounts:
    created: int
    updated: int
    unchanged: int
    # Numbers erased on request after opting out (bot.contacts.erase): skipped whole, so an
    # old file never brings their data back or opts them in again.
    suppressed: int = 0


def import_rows(session: Session, rows: Iterable[ContactRow], now: datetime) -> ImportCounts:
    """Create or update a contact per row (by wa_id), in the caller's transaction."""
    created = updated = unchanged = suppressed = 0
    labels: dict[str, Label] = {}
    batch = list(rows)
    wa_ids = {r.wa_id for r in batch}
    existing = {
        c.wa_id: c for c in session.scalars(select(Contact).where(Contact.wa_id.in_(wa_ids)))
    }
    for row in batch:
        contact = existing.get(row.wa_id)
        if contact is not None and contact.erased_at is not None and not contact.opted_in:
            suppressed += 1
            continue
        is_new = contact is None
        if contact is None:
            contact = Contact(
                wa_id=row.wa_id,
                name=row.name,
                name_by_shop=row.name is not None,
                created_at=now,
                opted_in=False,
            )
            session.add(contact)
            session.flush()
            existing[row.wa_id] = contact
        changed = is_new
        if row.name is not None and (contact.name != row.name or not contact.name_by_shop):
            # The shop's name: kept from now on whatever the customer's profile says.
            changed = changed or contact.name != row.name
            contact.name = row.name
            contact.name_by_shop = True
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
    return ImportCounts(created, updated, unchanged, suppressed)


IMPORT_BATCH = 1000


@dataclass(frozen=True)
class Duplicate:
    """A row with the same number as an earlier one: the later row wins."""

    line: int
    first: int


@dataclass(frozen=True)
class ImportReport:
    counts: ImportCounts
    bad: int

    @property
    def imported(self) -> int:
        return self.counts.created + self.counts.updated + self.counts.unchanged


def import_file(
    rows: Iterable[ContactRow | BadRow],
    save: Callable[[list[ContactRow]], ImportCounts],
    note: Callable[[BadRow | Duplicate], None],
    batch: int = IMPORT_BATCH,
) -> ImportReport:
    """Import a file's rows (read_contacts) in batches, each saved by `save` in a transaction
    of its own; every bad row and every repeated number is told to `note` as it is read, so
    the command line and the admin give the same per-line report.

    Raises CsvError (from reading) when the file as a whole cannot be read.
    """
    bad = 0
    total = ImportCounts(0, 0, 0)
    iterator = iter(rows)
    while chunk := list(islice(iterator, batch)):
        good: list[ContactRow] = []
        for row in chunk:
            if isinstance(row, BadRow):
                bad += 1
                note(row)
                continue
            if row.duplicate_of is not None:
                note(Duplicate(row.line, row.duplicate_of))
            good.append(row)
        if good:
            counts = save(good)
            total = ImportCounts(
                total.created + counts.created,
                total.updated + counts.updated,
                total.unchanged + counts.unchanged,
                total.suppressed + counts.suppressed,
            )
    return ImportReport(total, bad)
