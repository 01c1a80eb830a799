"""Deleting stored files nothing uses: their `MediaFile` row first, then their bytes.

What counts as a use is found in the schema, not listed here: every foreign key to
`media_files` in `Base.metadata` (attachments, and whatever quick replies, broadcasts or
keyword rules add). A key declared ON DELETE CASCADE belongs to the file instead of using it
(an upload to Meta is the file's, and goes with it). The business's settings name files by
their SHA-256 (a keyword rule's price list): any key written in the stored settings counts as
a use too. A grace period keeps a file that was just stored, before the row that will use it
is linked (an upload being attached to a reply).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, cast

from sqlalchemy import Column, ColumnElement, Table, delete, exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.db import Database
from bot.media.store import MediaStore
from bot.models import Base, Business, MediaFile

__all__ = ["GRACE", "Swept", "sweep", "uses"]

log = logging.getLogger("tresen.media")

GRACE: Final = timedelta(hours=24)
BATCH: Final = 500

_files = cast(Table, MediaFile.__table__)
_KEY = re.compile(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])")


@dataclass(frozen=True)
class Swept:
    files: int  # rows deleted (and their bytes)


def uses() -> list[Column[int]]:
    """The columns that refer to a media file as a use of it (not ON DELETE CASCADE)."""
    found = []
    for table in Base.metadata.sorted_tables:
        for key in table.foreign_keys:
            if key.column.table is _files and (key.ondelete or "").upper() != "CASCADE":
                found.append(cast(Column[int], key.parent))
    return found


def named_in_settings(session: Session) -> set[str]:
    """The keys written anywhere in the stored settings: files the settings use by name."""
    texts = session.scalars(select(Business.settings_yaml)).all()
    return {key for text in texts if text for key in _KEY.findall(text)}


def _unused(columns: list[Column[int]]) -> list[ColumnElement[bool]]:
    return [~exists().where(column == _files.c.id) for column in columns]


def sweep(
    database: Database, store: MediaStore, *, now: datetime, grace: timedelta = GRACE
) -> Swept:
    """Delete every file nothing uses that is older than `grace`; bytes after their row."""
    columns = uses()
    total = 0
    after = 0
    while True:
        with database.session() as session:
            named = named_in_settings(session)
            rows = session.execute(
                select(_files.c.id, _files.c.sha256)
                .where(_files.c.id > after, _files.c.created_at < now - grace, *_unused(columns))
                .order_by(_files.c.id)
                .limit(BATCH)
            ).all()
            gone: list[str] = []
            for row in rows:
                if row.sha256 in named:
                    continue
                try:
                    # Checked again as it is deleted: a use may have come since the select,
                    # and the foreign keys refuse the delete of one a use is being added to.
                    with session.begin_nested():
                        deleted = session.execute(
                            delete(_files).where(_files.c.id == row.id, *_unused(columns))
                        ).rowcount  # type: ignore[attr-defined]
                except IntegrityError:
                    continue
                if deleted:
                    gone.append(row.sha256)
        for key in gone:
            # After the commit, and only if no row was made for the same bytes meanwhile.
            with database.session() as session:
                again = session.execute(select(_files.c.id).where(_files.c.sha256 == key)).first()
            if again is None:
                store.delete(key)
        total += len(gone)
        if rows:
            after = rows[-1].id
        if len(rows) < BATCH:
            break
    if total:
        log.info("media cleanup: deleted %d files nothing used", total)
    return Swept(total)
