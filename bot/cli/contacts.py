"""`flask --app app contacts import`: contacts from a CSV file."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup

from bot.cli.common import clock_now, migrated
from bot.contacts.csvfile import BadRow, ContactRow, CsvError, decode, read_contacts
from bot.contacts.importing import Duplicate, ImportCounts, import_file, import_rows
from bot.contacts.numbers import settings_region
from bot.db import get_db
from bot.settings.stored import load_settings

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

    def save(good: list[ContactRow]) -> ImportCounts:
        with database.session() as session:
            return import_rows(session, good, clock_now())

    try:
        report = import_file(read_contacts(decode(data), region), save, _echo)
    except CsvError as exc:
        raise click.ClickException(f"{file}: {exc}; nothing imported") from exc
    counts = report.counts
    click.echo(
        f"{report.imported} contacts imported: {counts.created} new, {counts.updated} updated, "
        f"{counts.unchanged} unchanged; {report.bad} bad rows skipped"
    )


def _echo(note: BadRow | Duplicate) -> None:
    if isinstance(note, BadRow):
        click.echo(f"line {note.line}: {note.reason}; row skipped")
    else:
        click.echo(f"line {note.line}: same number as line {note.first}; line {note.line} wins")
