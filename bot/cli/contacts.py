"""`flask --app app contacts import|export|erase`: contacts from a CSV file, and one
contact's data exported or erased on request."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from bot import audit
from bot.cli.common import clock_now, migrated
from bot.contacts.csvfile import BadRow, ContactRow, CsvError, decode, read_contacts
from bot.contacts.erase import delete_files, erase_contact, find_contact
from bot.contacts.export import collect, write_zip
from bot.contacts.importing import Duplicate, ImportCounts, import_file, import_rows
from bot.contacts.numbers import NumberError, settings_region, wa_id_or_digits
from bot.db import get_db
from bot.media.store import get_media_store
from bot.models import Contact
from bot.settings.stored import load_settings

contacts_cli = AppGroup("contacts", help="Contacts: import from CSV; export or erase one.")


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
    if counts.suppressed:
        click.echo(f"{counts.suppressed} erased numbers that opted out skipped")


def _echo(note: BadRow | Duplicate) -> None:
    if isinstance(note, BadRow):
        click.echo(f"line {note.line}: {note.reason}; row skipped")
    else:
        click.echo(f"line {note.line}: same number as line {note.first}; line {note.line} wins")


def _wa_id(text: str) -> str:
    """WA_ID as typed (`+49 151 …`, `0151 …`), or a business-scoped user id as it is."""
    with get_db(current_app).session() as session:
        region = settings_region(load_settings(session))
    try:
        return wa_id_or_digits(text, region)
    except NumberError:
        return text.strip()


def _found(session: Session, text: str) -> Contact:
    contact = find_contact(session, _wa_id(text))
    if contact is None:
        raise click.ClickException(f"no contact {text}")
    return contact


@contacts_cli.command("export")
@click.argument("wa_id")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The ZIP to write.")
@migrated
def contacts_export(wa_id: str, out: str) -> None:
    """Write one contact's data to a ZIP: contact.json (contact, labels, consent record,
    conversation, notes, messages with their statuses) and the media of their messages."""
    with get_db(current_app).session() as session:
        found = _found(session, wa_id)
        data = collect(session, found, clock_now())
        audit.record(
            session,
            audit.Actor(None, None),
            audit.Action.CONTACT_DATA_EXPORTED,
            clock_now(),
            subject=f"contact:{found.id}",
        )
    try:
        with open(out, "wb") as handle:
            missing = write_zip(data, get_media_store(current_app), handle)
    except OSError as exc:
        raise click.ClickException(f"{out}: cannot write: {exc}") from exc
    for path in missing:
        click.echo(f"{path}: no longer in the media store; listed, not included")
    messages = len(data.document["messages"])
    click.echo(f"{out}: {messages} messages, {len(data.media) - len(missing)} media files")


@contacts_cli.command("erase")
@click.argument("wa_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@migrated
def contacts_erase(wa_id: str, yes: bool) -> None:
    """Erase one contact's data: messages, media, labels, notes. A contact who opted out
    stays as a number and its opt-out only, so no import or broadcast reaches them again."""
    database = get_db(current_app)
    with database.session() as session:
        _found(session, wa_id)
    if not yes:
        click.confirm(f"Erase all data of {wa_id}?", abort=True)
    with database.session() as session:
        erased = erase_contact(session, _found(session, wa_id), clock_now())
        # Names no one: the entry must not keep what was just erased.
        audit.record(
            session,
            audit.Actor(None, None),
            audit.Action.CONTACT_ERASED,
            clock_now(),
            after=str(erased.messages),
        )
    files = delete_files(database, get_media_store(current_app), erased.files)
    kept = (
        "kept as an opt-out (number and consent record only)"
        if erased.kept_opt_out
        else "nothing kept"
    )
    click.echo(f"{wa_id}: erased {erased.messages} messages, {files} media files; {kept}")
