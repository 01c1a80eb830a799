"""`flask --app app contacts import`: contacts from a CSV file."""

from __future__ import annotations

from itertools import islice

import click
from flask import current_app
from flask.cli import AppGroup

from bot.cli.common import clock_now, migrated
from bot.contacts.csvfile import BadRow, ContactRow, CsvError, decode, read_contacts
from bot.contacts.importing import ImportCounts, import_rows
from bot.contacts.numbers import settings_region
from bot.db import get_db
from bot.settings.stored import load_settings

IMPORT_BATCH = 1000

contacts_cli = AppGroup("contacts", help="Contacts: import from CSV.")


@contacts_cli.command("import")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@migrated
def contacts_import(file: str) -> None:
    """Create or update contacts from FILE.csv (header wa_id,name,labels,opted_in).

    Rows are matched by phone number; bad rows are reported by line and the rest imported.
    A national number (0151 …) is read in the business's country.
    """
    try:
        with click.open_file(file, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise click.ClickException(f"{file}: cannot read: {exc}") from exc
    database = get_db(current_app)
    with database.session() as session:
        region = settings_region(load_settings(session))
    rows = read_contacts(decode(data), region)
    bad = 0
    total = ImportCounts(0, 0, 0)
    try:
        while chunk := list(islice(rows, IMPORT_BATCH)):
            good: list[ContactRow] = []
            for row in chunk:
                if isinstance(row, BadRow):
                    bad += 1
                    click.echo(f"line {row.line}: {row.reason}; row skipped")
                    continue
                if row.duplicate_of is not None:
                    click.echo(
                        f"line {row.line}: same number as line {row.duplicate_of}; "
                        f"line {row.line} wins"
                    )
                good.append(row)
            if good:
                with database.session() as session:
                    counts = import_rows(session, good, clock_now())
                total = ImportCounts(
                    total.created + counts.created,
                    total.updated + counts.updated,
                    total.unchanged + counts.unchanged,
                )
    except CsvError as exc:
        raise click.ClickException(f"{file}: {exc}; nothing imported") from exc
    imported = total.created + total.updated + total.unchanged
    click.echo(
        f"{imported} contacts imported: {total.created} new, {total.updated} updated, "
        f"{total.unchanged} unchanged; {bad} bad rows skipped"
    )
