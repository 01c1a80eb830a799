"""A customer's data from their contact page, for owners: download it (GDPR Art. 15) and
erase it after a confirmation (Art. 17). The work is bot.contacts.export and .erase."""

from __future__ import annotations

import re
import tempfile
from typing import Any

from flask import flash, redirect, render_template, request, send_file, url_for
from flask_babel import gettext
from werkzeug.wrappers import Response

from bot import audit
from bot.admin.blueprint import bp, log_change, now
from bot.admin.contacts_page import _contact, contact_row
from bot.contacts.erase import delete_files, erase_contact
from bot.contacts.export import collect, write_zip, zip_name
from bot.db import get_db
from bot.media.store import get_media_store

_NOT_DIGITS = re.compile(r"\D")


@bp.get("/contacts/<int:contact_id>/data.zip")
def contact_data_export(contact_id: int) -> Response:
    """The contact's data as a ZIP: contact.json and the media of their messages."""
    moment = now()
    with get_db().session() as session:
        found = _contact(session, contact_id)
        data = collect(session, found, moment)
        name = zip_name(found, moment)
        # A customer's whole history leaves the shop: who took it, and when.
        log_change(session, audit.Action.CONTACT_DATA_EXPORTED, subject=f"contact:{contact_id}")
    # On disk past a few MB: a customer's media can be large.
    spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
    write_zip(data, get_media_store(), spool)
    spool.seek(0)
    return send_file(spool, mimetype="application/zip", as_attachment=True, download_name=name)


def confirmed(form: Any, wa_id: str | None) -> bool:
    """The number typed again (in any spacing), or the box ticked for a contact without one."""
    if wa_id:
        return _NOT_DIGITS.sub("", form.get("confirm_number", "")) == wa_id
    return form.get("confirm") == "y"


@bp.route("/contacts/<int:contact_id>/erase", methods=["GET", "POST"])
def contact_data_erase(contact_id: int) -> Any:
    with get_db().session() as session:
        found = _contact(session, contact_id)
        row = contact_row(found)
        wa_id = found.wa_id
    if request.method == "GET" or not confirmed(request.form, wa_id):
        if request.method == "POST":
            flash(gettext("Type the contact's number to confirm."), "error")
            audit.nothing_changed()
        return render_template("admin/contact_erase.html", contact=row, has_number=bool(wa_id))
    database = get_db()
    with database.session() as session:
        erased = erase_contact(session, _contact(session, contact_id), now())
        # Names no one: the entry must not keep what was just erased.
        log_change(session, audit.Action.CONTACT_ERASED, after=str(erased.messages))
    delete_files(database, get_media_store(), erased.files)
    if erased.kept_opt_out:
        flash(gettext("Contact erased. Their number is kept as an opt-out only."))
    else:
        flash(gettext("Contact erased."))
    return redirect(url_for("admin.contacts"))
