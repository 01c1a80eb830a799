"""Contacts: the list with search and filters, labels for several at once, a contact's page,
adding and editing one, and CSV import and export in the browser."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import babel.dates
from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale, gettext, lazy_gettext, ngettext, to_user_timezone
from flask_babel.speaklater import LazyString
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session, selectinload
from werkzeug.wrappers import Response

from bot import audit
from bot.admin.blueprint import bp, log_change, now
from bot.admin.display import snippet
from bot.contacts.consent import ConsentSource, set_opt_in
from bot.contacts.csvfile import (
    BadRow,
    CsvError,
    RowProblem,
    decode,
    read_contacts,
    write_contacts,
)
from bot.contacts.importing import Duplicate, ImportCounts, import_file, import_rows
from bot.contacts.label_names import clean_label, color_of, label_key
from bot.contacts.labels import add_label, label, remove_label
from bot.contacts.lookup import NAME_LENGTH
from bot.contacts.names import shop_name
from bot.contacts.numbers import (
    NumberError,
    Problem,
    display,
    search_digits,
    settings_region,
    to_wa_id,
)
from bot.db import get_db
from bot.models import ConsentEvent, Contact, Direction, Label, Message
from bot.settings.stored import load_settings

PAGE_SIZE = 50
HISTORY_SHOWN = 10
# The import's report lists this many lines; the counts below it cover the whole file.
REPORT_LINES = 500
SELECTED_MAX = 1000
_LIKE_SPECIAL = re.compile(r"([\\%_])")

# Why a number was refused, and why a CSV row was skipped, in the reader's language.
NUMBER_PROBLEMS = {
    Problem.EMPTY: lazy_gettext("No phone number."),
    Problem.NOT_A_NUMBER: lazy_gettext("“%(value)s” is not a phone number."),
    Problem.NO_COUNTRY: lazy_gettext("“%(value)s” has no country code (write it as +49 …)."),
    Problem.TOO_SHORT: lazy_gettext(
        "“%(value)s” is too short for a phone number: is a digit missing?"
    ),
    Problem.TOO_LONG: lazy_gettext(
        "“%(value)s” is too long for a phone number: is there a digit too many?"
    ),
    Problem.INVALID: lazy_gettext("“%(value)s” is not a valid phone number."),
}
ROW_PROBLEMS = {
    RowProblem.OPTED_IN: lazy_gettext("opted_in is “%(value)s”: write true or false."),
    RowProblem.FIELDS: lazy_gettext("%(value)s fields, more than the header has."),
    RowProblem.QUOTE: lazy_gettext('a quotation mark (") is not closed.'),
    RowProblem.LABEL: lazy_gettext("a label is longer than 64 characters."),
}
FILE_PROBLEMS = {
    "empty": lazy_gettext("The file is empty. It needs the header wa_id,name,labels,opted_in."),
    "quote": lazy_gettext('Line 1: a quotation mark (") is not closed.'),
    "no_wa_id": lazy_gettext(
        "The first line has no column wa_id. It needs the header wa_id,name,labels,opted_in."
    ),
}
SOURCES: dict[str, Any] = {
    ConsentSource.KEYWORD: lazy_gettext("the customer's keyword"),
    ConsentSource.IMPORT: lazy_gettext("CSV import"),
    ConsentSource.ADMIN: lazy_gettext("set here"),
    ConsentSource.WHATSAPP: lazy_gettext("the customer's WhatsApp setting"),
    ConsentSource.API: lazy_gettext("the shop system (API)"),
}
OPT_IN_FILTERS = ("", "yes", "no")


@dataclass(frozen=True)
class Filters:
    """What the contacts list shows: a search, a label, opted in or not."""

    q: str = ""
    label: str = ""
    opted_in: str = ""  # "", "yes" or "no"

    @classmethod
    def from_args(cls, args: Any) -> Filters:
        opted_in = args.get("opted_in", "")
        return cls(
            q=args.get("q", "").strip()[:200],
            label=args.get("label", "").strip()[:200],
            opted_in=opted_in if opted_in in OPT_IN_FILTERS else "",
        )

    def args(self) -> dict[str, str]:
        return {k: v for k, v in vars(self).items() if v}


def _like(text: str) -> str:
    return "%" + _LIKE_SPECIAL.sub(r"\\\1", text) + "%"


def search_condition(query: str, region: str) -> ColumnElement[bool] | None:
    """Contacts a search finds: a number in any form the shop types it (part of one too), or
    else every word in the name, the WhatsApp name or a label ("Becker" finds Klaus Becker)."""
    digits = search_digits(query, region)
    if digits is not None:
        return Contact.wa_id.like(_like(digits), escape="\\")
    words = query.split()
    if not words:
        return None
    each = [
        or_(
            Contact.name.ilike(_like(word), escape="\\"),
            Contact.profile_name.ilike(_like(word), escape="\\"),
            Contact.labels.any(Label.name_key.like(_like(label_key(word)), escape="\\")),
        )
        for word in words
    ]
    return and_(*each)


def _filtered(filters: Filters, region: str) -> Any:
    stmt = select(Contact)
    if (found := search_condition(filters.q, region)) is not None:
        stmt = stmt.where(found)
    if filters.label:
        stmt = stmt.where(Contact.labels.any(Label.name_key == label_key(filters.label)))
    if filters.opted_in:
        stmt = stmt.where(Contact.opted_in.is_(filters.opted_in == "yes"))
    return stmt


def _sort_key() -> Any:
    return func.lower(func.coalesce(Contact.name, Contact.profile_name, Contact.wa_id, ""))


def find_contacts(
    session: Session, filters: Filters, region: str, page: int = 1
) -> tuple[list[Contact], int]:
    """One page of the contacts the filters find, by name, and how many they find in all."""
    stmt = _filtered(filters, region)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    query = (
        stmt.options(selectinload(Contact.labels))
        .order_by(_sort_key(), Contact.id)
        .limit(PAGE_SIZE)
        .offset((page - 1) * PAGE_SIZE)
    )
    return list(session.scalars(query)), total


def shown_name(contact: Contact) -> str:
    return contact.name or contact.profile_name or display(contact.wa_id) or contact.user_id or "?"


def label_chips(labels: list[Label]) -> list[dict[str, Any]]:
    ordered = sorted(labels, key=lambda lb: lb.name_key)
    return [{"name": lb.name, "color": color_of(lb.id, lb.color)} for lb in ordered]


def contact_row(contact: Contact) -> dict[str, Any]:
    """A contact as the list and its page show it; every value plain text."""
    profile = contact.profile_name
    return {
        "id": contact.id,
        "name": shown_name(contact),
        "profile_name": profile if profile and profile != contact.name else None,
        "number": display(contact.wa_id),
        "opted_in": bool(contact.opted_in),
        "labels": label_chips(contact.labels),
        "url": url_for("admin.contact", contact_id=contact.id),
    }


def all_labels(session: Session) -> list[dict[str, Any]]:
    labels = session.scalars(select(Label).order_by(Label.name_key))
    return [{"name": lb.name, "color": color_of(lb.id, lb.color)} for lb in labels]


def when(at: datetime) -> str:
    """A day and a time in the business's zone and the page's language: "29. Nov. 2026, 09:05"."""
    try:
        local = to_user_timezone(at)
        day = babel.dates.format_skeleton("yMMMd", local, locale=get_locale())
        return f"{day}, {babel.dates.format_time(local, 'HH:mm', locale=get_locale())}"
    except (OverflowError, ValueError):
        return at.isoformat()  # a stored time at the calendar's ends


def _region(session: Session) -> str:
    """The country a national number is read in (bot.contacts.numbers.settings_region)."""
    return settings_region(load_settings(session))


def number_problem(exc: NumberError) -> str:
    return str(NUMBER_PROBLEMS[exc.problem] % {"value": exc.text})


def _contact(session: Session, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None:
        abort(404)
    return contact


@bp.get("/contacts")
def contacts() -> str:
    filters = Filters.from_args(request.args)
    page = max(1, request.args.get("page", 1, type=int) or 1)
    with get_db().session() as session:
        found, total = find_contacts(session, filters, _region(session), page)
        rows = [contact_row(c) for c in found]
        labels = all_labels(session)
    pages = max(1, -(-total // PAGE_SIZE))
    return render_template(
        "admin/contacts.html",
        rows=rows,
        total=total,
        page=page,
        pages=pages,
        filters=filters,
        labels=labels,
        filtered=bool(filters.args()),
    )


@bp.post("/contacts/labels")
def contacts_label() -> Response:
    """Give the selected contacts a label (new or known), or take it from them."""
    filters: dict[str, Any] = Filters.from_args(request.form).args()
    back = url_for("admin.contacts", **filters)
    ids = [int(i) for i in request.form.getlist("contact") if i.isdigit()][:SELECTED_MAX]
    try:
        name = clean_label(request.form.get("label_name", ""))
    except ValueError:
        flash(gettext("A label has at most 64 characters."), "error")
        return redirect(back)
    if not ids or not name:
        flash(gettext("Select contacts and name a label."), "error")
        return redirect(back)
    removing = request.form.get("action") == "remove"
    with get_db().session() as session:
        chosen = list(
            session.scalars(
                select(Contact).where(Contact.id.in_(ids)).options(selectinload(Contact.labels))
            )
        )
        if removing:
            found = session.scalar(select(Label).where(Label.name_key == label_key(name)))
            changed = remove_label(chosen, found) if found is not None else 0
            shown = found.name if found is not None else name
        else:
            found = label(session, name)
            changed = add_label(session, chosen, found)
            shown = found.name
        log_change(
            session,
            audit.Action.LABELS_CHANGED,
            subject=f"label:{shown}",
            after=f"{'-' if removing else '+'}{shown} ({changed})",
        )
    if removing:
        message = ngettext(
            "Label “%(label)s” taken from %(num)s contact.",
            "Label “%(label)s” taken from %(num)s contacts.",
            changed,
            label=shown,
        )
    else:
        message = ngettext(
            "Label “%(label)s” given to %(num)s contact.",
            "Label “%(label)s” given to %(num)s contacts.",
            changed,
            label=shown,
        )
    flash(message)
    return redirect(back)


@bp.get("/contacts/<int:contact_id>")
def contact(contact_id: int) -> str:
    # Texts are translated when the page renders, after the session (see _checked).
    with get_db().session() as session:
        found = _contact(session, contact_id)
        row = contact_row(found)
        consent = list(
            session.scalars(
                select(ConsentEvent)
                .where(ConsentEvent.contact_id == contact_id)
                .order_by(ConsentEvent.at.desc(), ConsentEvent.id.desc())
                .limit(100)
            )
        )
        record = [
            {
                "at": event.at,
                "opted_in": event.opted_in,
                "source": event.source,
            }
            for event in consent
        ]
        latest = list(
            session.scalars(
                select(Message)
                .where(Message.contact_id == contact_id)
                .order_by(Message.id.desc())
                .limit(HISTORY_SHOWN)
            )
        )
        history = [_message(m) for m in reversed(latest)]
        count = session.scalar(select(func.count()).where(Message.contact_id == contact_id)) or 0
        labels = all_labels(session)
        mine = {lb["name"] for lb in row["labels"]}
        details = {
            "created_at": found.created_at,
            "last_inbound_at": found.last_inbound_at,
            "user_id": found.user_id,
        }
    return render_template(
        "admin/contact.html",
        contact=row,
        details=details,
        record=record,
        history=history,
        message_count=count,
        labels=labels,
        mine=mine,
        when=when,
        sources=SOURCES,
    )


def _message(message: Message) -> dict[str, Any]:
    text = message.text
    if not text and isinstance(message.payload, dict):
        body = message.payload.get("text")
        text = body.get("body") if isinstance(body, dict) else None
    return {
        "out": message.direction == Direction.OUT,
        "text": snippet(text if isinstance(text, str) else "", 300),
        "kind": message.type,
        "at": message.timestamp,
    }


@bp.post("/contacts/<int:contact_id>/labels")
def contact_labels(contact_id: int) -> Response:
    """The contact's labels as ticked, plus a new one if named."""
    names = request.form.getlist("label")
    try:
        new = clean_label(request.form.get("new_label", ""))
    except ValueError:
        flash(gettext("A label has at most 64 characters."), "error")
        return redirect(url_for("admin.contact", contact_id=contact_id))
    with get_db().session() as session:
        found = _contact(session, contact_id)
        before = _label_names(found)
        cache: dict[str, Label] = {}
        wanted = {
            lb.id: lb for lb in (label(session, n, cache) for n in [*names, new] if clean_label(n))
        }
        found.labels = sorted(wanted.values(), key=lambda lb: lb.name_key)
        log_change(
            session,
            audit.Action.LABELS_CHANGED,
            subject=f"contact:{contact_id}",
            before=before,
            after=_label_names(found),
        )
    flash(gettext("Labels saved."))
    return redirect(url_for("admin.contact", contact_id=contact_id))


@bp.post("/contacts/<int:contact_id>/opt-in")
def contact_opt_in(contact_id: int) -> Response:
    wanted = request.form.get("opted_in") == "yes"
    with get_db().session() as session:
        found = _contact(session, contact_id)
        before = "yes" if found.opted_in else "no"
        set_opt_in(session, found, wanted, ConsentSource.ADMIN, now())
        log_change(
            session,
            audit.Action.OPT_IN_CHANGED,
            subject=f"contact:{contact_id}",
            before=before,
            after="yes" if wanted else "no",
        )
    flash(gettext("Gets broadcasts now.") if wanted else gettext("Gets no broadcasts now."))
    return redirect(url_for("admin.contact", contact_id=contact_id))


def _label_names(contact: Contact) -> str:
    return "; ".join(sorted((lb.name for lb in contact.labels), key=label_key))


# --- adding and editing -----------------------------------------------------------------------


@dataclass
class ContactForm:
    name: str = ""
    number: str = ""
    opted_in: bool = False
    labels: tuple[str, ...] = ()


def _read_form() -> ContactForm:
    return ContactForm(
        name=request.form.get("name", "")[: NAME_LENGTH * 2],
        number=request.form.get("number", "")[:100],
        opted_in=request.form.get("opted_in") == "yes",
        labels=tuple(request.form.getlist("label")),
    )


def _checked(
    session: Session, form: ContactForm, contact: Contact | None
) -> tuple[str | None, dict[str, Any]]:
    """The form's wa_id and its errors by field (none: it can be saved).

    The errors are lazy texts: translating in a session would choose the page's language from
    the settings, in a second session that waits for this one's turn at the database.
    """
    errors: dict[str, Any] = {}
    wa_id = ""
    if contact is not None and contact.wa_id is None and not form.number.strip():
        return None, errors  # known by a WhatsApp user id only: no number to give
    try:
        wa_id = to_wa_id(form.number, _region(session))
    except NumberError as exc:
        errors["number"] = LazyString(number_problem, exc)
    else:
        other = session.scalar(select(Contact).where(Contact.wa_id == wa_id))
        if other is not None and (contact is None or other.id != contact.id):
            errors["number"] = lazy_gettext(
                "This number belongs to %(name)s already.", name=shown_name(other)
            )
            errors["other"] = url_for("admin.contact", contact_id=other.id)
    return wa_id, errors


def _save(session: Session, contact: Contact, form: ContactForm, wa_id: str | None) -> None:
    contact.wa_id = wa_id
    name = shop_name(form.name, NAME_LENGTH)
    if name is not None:
        contact.name = name
        contact.name_by_shop = True
    else:
        # No name of the shop's: the customer's own WhatsApp name again.
        contact.name = contact.profile_name
        contact.name_by_shop = False
    cache: dict[str, Label] = {}
    chosen = {lb.id: lb for lb in (label(session, n, cache) for n in form.labels if clean_label(n))}
    contact.labels = sorted(chosen.values(), key=lambda lb: lb.name_key)
    if bool(contact.opted_in) != form.opted_in:
        set_opt_in(session, contact, form.opted_in, ConsentSource.ADMIN, now())


@bp.route("/contacts/new", methods=["GET", "POST"])
def contact_new() -> Any:
    form = ContactForm()
    errors: dict[str, Any] = {}
    if request.method == "POST":
        form = _read_form()
        with get_db().session() as session:
            wa_id, errors = _checked(session, form, None)
            if not errors:
                created = Contact(wa_id=wa_id, created_at=now(), opted_in=False)
                session.add(created)
                session.flush()
                _save(session, created, form, wa_id)
                session.flush()
                new_id = created.id
                log_change(session, audit.Action.CONTACT_ADDED, subject=f"contact:{new_id}")
        if not errors:
            flash(gettext("Contact added."))
            return redirect(url_for("admin.contact", contact_id=new_id))
    with get_db().session() as session:
        labels = all_labels(session)
    return render_template(
        "admin/contact_form.html", form=form, errors=errors, labels=labels, contact=None
    ), (400 if errors else 200)


@bp.route("/contacts/<int:contact_id>/edit", methods=["GET", "POST"])
def contact_edit(contact_id: int) -> Any:
    errors: dict[str, Any] = {}
    with get_db().session() as session:
        found = _contact(session, contact_id)
        row = contact_row(found)
        if request.method == "POST":
            form = _read_form()
            wa_id, errors = _checked(session, form, found)
            if not errors:
                _save(session, found, form, wa_id)
                log_change(session, audit.Action.CONTACT_CHANGED, subject=f"contact:{contact_id}")
        else:
            form = ContactForm(
                name=(found.name or "") if found.name_by_shop else "",
                number=display(found.wa_id),
                opted_in=bool(found.opted_in),
                labels=tuple(lb["name"] for lb in row["labels"]),
            )
        labels = all_labels(session)
    if request.method == "POST" and not errors:
        flash(gettext("Contact saved."))
        return redirect(url_for("admin.contact", contact_id=contact_id))
    return render_template(
        "admin/contact_form.html", form=form, errors=errors, labels=labels, contact=row
    ), (400 if errors else 200)


# --- CSV --------------------------------------------------------------------------------------


def report_line(note: BadRow | Duplicate) -> str:
    """One line of the import's report, as the command line's in the reader's language."""
    if isinstance(note, Duplicate):
        return gettext(
            "Line %(line)s: same number as line %(first)s; line %(line)s wins.",
            line=note.line,
            first=note.first,
        )
    if note.problem in Problem.__members__.values():
        reason = NUMBER_PROBLEMS[Problem(note.problem)] % {"value": note.value}
    elif note.problem in RowProblem.__members__.values():
        reason = ROW_PROBLEMS[RowProblem(note.problem)] % {"value": note.value}
    else:
        reason = note.reason
    return gettext("Line %(line)s: %(reason)s Row skipped.", line=note.line, reason=reason)


@bp.route("/contacts/import", methods=["GET", "POST"])
def contacts_import() -> Any:
    if request.method == "GET":
        return render_template("admin/contacts_import.html", report=None, error=None)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        error = gettext("Choose a CSV file first.")
        return render_template("admin/contacts_import.html", report=None, error=error), 400
    text = decode(upload.read())
    filename = upload.filename
    lines: list[str] = []
    more = 0

    def note(item: BadRow | Duplicate) -> None:
        nonlocal more
        if len(lines) < REPORT_LINES:
            lines.append(report_line(item))
        else:
            more += 1

    database = get_db()

    def save(good: list[Any]) -> ImportCounts:
        with database.session() as session:
            counts = import_rows(session, good, now())
            if counts.created or counts.updated:  # each batch with the rows it changed
                log_change(
                    session,
                    audit.Action.CONTACTS_IMPORTED,
                    subject=f"file:{filename}"[:255],
                    after=f"created {counts.created}, updated {counts.updated}",
                )
            return counts

    with database.session() as session:
        region = _region(session)
    try:
        result = import_file(read_contacts(text, region), save, note)
    except CsvError as exc:
        error = str(FILE_PROBLEMS.get(exc.problem, exc))
        return render_template("admin/contacts_import.html", report=None, error=error), 400
    audit.nothing_changed()  # the batches that changed contacts are recorded; others were not
    report = {
        "lines": lines,
        "more": more,
        "imported": result.imported,
        "counts": result.counts,
        "bad": result.bad,
        "filename": upload.filename,
    }
    return render_template("admin/contacts_import.html", report=report, error=None)


@bp.get("/contacts/export.csv")
def contacts_export() -> Response:
    """The contacts the list's filters find, as a CSV that `contacts import` reads back."""
    filters = Filters.from_args(request.args)
    with get_db().session() as session:
        stmt = (
            _filtered(filters, _region(session))
            .where(Contact.wa_id.is_not(None))
            .options(selectinload(Contact.labels))
            .order_by(_sort_key(), Contact.id)
        )
        rows = [
            (
                contact.wa_id or "",
                contact.name,
                sorted((lb.name for lb in contact.labels), key=label_key),
                bool(contact.opted_in),
            )
            for contact in session.scalars(stmt)
        ]
        # Customers' numbers leave the shop: who took them, and how many.
        log_change(session, audit.Action.CONTACTS_EXPORTED, after=str(len(rows)))
    stamp = now().strftime("%Y-%m-%d")
    return Response(
        "".join(write_contacts(rows)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="contacts-{stamp}.csv"'},
    )
