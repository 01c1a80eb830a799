"""Labels as the WhatsApp Business app manages them: a list with colours and counts, a new
one, rename, recolour, delete."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from bot import audit
from bot.admin.blueprint import bp, log_change
from bot.contacts.label_names import COLORS, clean_label, color_of
from bot.contacts.labels import LabelError, find_label, label, label_counts, rename_label, set_color
from bot.db import get_db
from bot.models import Label

# The palette's names, for the colour buttons' labels.
COLOR_NAMES = {
    "blue": lazy_gettext("blue"),
    "green": lazy_gettext("green"),
    "yellow": lazy_gettext("yellow"),
    "orange": lazy_gettext("orange"),
    "red": lazy_gettext("red"),
    "purple": lazy_gettext("purple"),
    "teal": lazy_gettext("teal"),
    "pink": lazy_gettext("pink"),
    "grey": lazy_gettext("grey"),
}


def _label(session: Session, label_id: int) -> Label:
    found = session.get(Label, label_id)
    if found is None:
        abort(404)
    return found


def _problem(exc: LabelError, name: str) -> str:
    """A LabelError in the reader's language."""
    if "already" in str(exc):
        return gettext("There is a label “%(name)s” already.", name=name)
    if "longer" in str(exc):
        return gettext("A label has at most 64 characters.")
    return gettext("A label needs a name.")


@bp.get("/labels")
def labels() -> str:
    with get_db().session() as session:
        items = [
            {
                "id": lb.id,
                "name": lb.name,
                "color": color_of(lb.id, lb.color),
                "count": count,
                "url": url_for("admin.contacts", label=lb.name),
            }
            for lb, count in label_counts(session)
        ]
    colors = [{"key": key, "name": str(COLOR_NAMES[key])} for key in COLORS]
    return render_template("admin/labels.html", items=items, colors=colors)


@bp.post("/labels")
def label_create() -> Response:
    color = request.form.get("color", "")
    try:
        name = clean_label(request.form.get("name", ""))
    except ValueError:
        flash(gettext("A label has at most 64 characters."), "error")
        return redirect(url_for("admin.labels"))
    if not name:
        flash(gettext("A label needs a name."), "error")
        return redirect(url_for("admin.labels"))
    # Flashed after the session: translating chooses the language from the settings, in a
    # session of its own.
    with get_db().session() as session:
        known = find_label(session, name)
        if known is None:
            created = label(session, name)
            if color in COLORS:
                created.color = color
            log_change(session, audit.Action.LABEL_SAVED, subject=f"label:{name}", after=name)
        taken = known.name if known is not None else None
    if taken is not None:
        flash(gettext("There is a label “%(name)s” already.", name=taken), "error")
    else:
        flash(gettext("Label “%(name)s” added.", name=name))
    return redirect(url_for("admin.labels"))


@bp.post("/labels/<int:label_id>")
def label_update(label_id: int) -> Response:
    """A new name or colour for a label; its contacts keep it."""
    name = request.form.get("name", "")
    color = request.form.get("color", "")
    refused: LabelError | None = None
    try:
        # A refusal leaves the block, so the transaction rolls back whole.
        with get_db().session() as session:
            found = _label(session, label_id)
            before = f"{found.name} ({found.color})"
            rename_label(session, found, name)
            if color:
                set_color(found, color)
            saved = found.name
            log_change(
                session,
                audit.Action.LABEL_SAVED,
                subject=f"label:{saved}",
                before=before,
                after=f"{found.name} ({found.color})",
            )
    except LabelError as exc:
        refused = exc
    if refused is not None:
        flash(_problem(refused, " ".join(name.split())), "error")
    else:
        flash(gettext("Label “%(name)s” saved.", name=saved))
    return redirect(url_for("admin.labels"))


@bp.post("/labels/<int:label_id>/delete")
def label_delete(label_id: int) -> Any:
    with get_db().session() as session:
        found = _label(session, label_id)
        name = found.name
        session.delete(found)
        log_change(session, audit.Action.LABEL_DELETED, subject=f"label:{name}")
    flash(gettext("Label “%(name)s” deleted.", name=name))
    return redirect(url_for("admin.labels"))
