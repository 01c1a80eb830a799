"""Quick replies in the admin: their page (list, add, edit, delete) and the reply box's
suggestions, rendered on the server for the contact of the conversation."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response
from wtforms import BooleanField, HiddenField, StringField, TextAreaField
from wtforms.validators import Length

from bot import audit
from bot.admin.blueprint import SCRIPT_TEXTS, UPLOAD_ENDPOINTS, bp, log_change, now
from bot.admin.forms import keep_upload
from bot.db import get_db
from bot.i18n import page_language
from bot.media.sending import (
    ACCEPT,
    Refused,
    limits_text,
    refusal_text,
)
from bot.models import Contact, QuickReply
from bot.placeholders import LABELS, Placeholder, token
from bot.quick_replies import (
    SHORTCUT_MAX,
    TEXT_MAX,
    ShortcutError,
    ShortcutProblem,
    clean_shortcut,
    render_quick_reply,
    typed_prefix,
)
from bot.settings.stored import load_settings

# The reply box offers this many at a time; typing more letters narrows them.
SUGGESTIONS = 8

SCRIPT_TEXTS["quick_none"] = lazy_gettext("No quick reply starts with “/%(typed)s”.")
SCRIPT_TEXTS["quick_failed"] = lazy_gettext("The quick replies cannot be loaded right now.")


class QuickReplyForm(FlaskForm):
    id = HiddenField()
    shortcut = StringField(lazy_gettext("Shortcut"))
    text = TextAreaField(lazy_gettext("Quick reply text"), validators=[Length(max=TEXT_MAX)])
    remove_file = BooleanField(lazy_gettext("Send without the file"))


def _shortcut_message(problem: ShortcutProblem) -> str:
    messages = {
        ShortcutProblem.EMPTY: gettext("Enter a shortcut, for example /danke."),
        ShortcutProblem.TOO_LONG: gettext(
            "The shortcut is too long: at most %(num)d characters.", num=SHORTCUT_MAX
        ),
        ShortcutProblem.CHARACTERS: gettext(
            "A shortcut is one word: letters, digits, “-” and “_”, for example /danke."
        ),
    }
    return messages[problem]


def placeholder_buttons() -> list[dict[str, str]]:
    lang = page_language()
    # The button shows the token it inserts, in the page's language; its tooltip says more.
    hints = {
        Placeholder.NAME: gettext("Inserts the customer's name"),
        Placeholder.NEXT_OPEN: gettext("Inserts when the shop opens next"),
        Placeholder.HOURS: gettext("Inserts the weekly opening hours"),
        Placeholder.SHOP: gettext("Inserts the shop's name"),
    }
    return [{"hint": hints[p], "token": token(p, lang)} for p in LABELS[lang]]


def _all(session: Session) -> list[QuickReply]:
    return list(session.scalars(select(QuickReply).order_by(QuickReply.shortcut)))


def _page(form: QuickReplyForm, errors: dict[str, str], status: int = 200) -> tuple[str, int]:
    with get_db().session() as session:
        items = [
            {"id": q.id, "shortcut": q.shortcut, "text": q.text, "file_name": q.file_name}
            for q in _all(session)
        ]
        own = form.id.data
        current = session.get(QuickReply, int(own)) if (own or "").isdigit() else None
        current_file = current.file_name if current is not None else None
    return (
        render_template(
            "admin/quick_replies.html",
            form=form,
            errors=errors,
            items=items,
            buttons=placeholder_buttons(),
            editing=bool(form.id.data),
            current_file=current_file,
            accept=ACCEPT,
            file_limits=limits_text(),
        ),
        status,
    )


@bp.get("/quick-replies")
def quick_replies() -> tuple[str, int]:
    form = QuickReplyForm(formdata=None)
    edit = request.args.get("edit", type=int)
    if edit is not None:
        with get_db().session() as session:
            found = session.get(QuickReply, edit)
            if found is not None:
                form.id.data, form.shortcut.data = str(found.id), "/" + found.shortcut
                form.text.data = found.text
    return _page(form, {})


def _errors(form: QuickReplyForm, session: Session, own_id: int | None) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not form.validate():
        for field in (form.shortcut, form.text):
            if field.errors:
                errors[field.name] = str(field.errors[0])
    if "shortcut" not in errors:
        try:
            shortcut = clean_shortcut(form.shortcut.data or "")
        except ShortcutError as exc:
            errors["shortcut"] = _shortcut_message(exc.problem)
        else:
            taken = session.scalar(select(QuickReply.id).where(QuickReply.shortcut == shortcut))
            if taken is not None and taken != own_id:
                errors["shortcut"] = gettext(
                    "There is already a quick reply /%(shortcut)s.", shortcut=shortcut
                )
    if "text" not in errors and not (form.text.data or "").strip():
        errors["text"] = gettext("Write the text of the quick reply.")
    return errors


UPLOAD_ENDPOINTS.add("admin.quick_replies_save")


@bp.post("/quick-replies")
def quick_replies_save() -> Any:
    form = QuickReplyForm()
    own_id = int(form.id.data) if (form.id.data or "").isdigit() else None
    upload = request.files.get("file")
    at = now()
    with get_db().session() as session:
        errors = _errors(form, session, own_id)
        kept = None
        if not errors and upload is not None and upload.filename:
            # Checked against WhatsApp's limits, then kept, before the reply is saved.
            try:
                kept = keep_upload(session, upload, now=at)
            except Refused as exc:
                errors["file"] = refusal_text(exc)
        if errors:
            session.rollback()
            return _page(form, errors, 400)
        shortcut = clean_shortcut(form.shortcut.data or "")
        text = (form.text.data or "").strip()
        found = session.get(QuickReply, own_id) if own_id is not None else None
        before = f"/{found.shortcut}\n{found.text}" if found is not None else None
        if found is None:
            found = QuickReply(shortcut=shortcut, text=text, created_at=at, updated_at=at)
            session.add(found)
        else:
            found.shortcut, found.text, found.updated_at = shortcut, text, at
        if kept is not None:
            found.file_id, found.file_name = kept.file.id, kept.name
        elif form.remove_file.data:
            found.file_id = found.file_name = None
        log_change(
            session,
            audit.Action.QUICK_REPLY_SAVED,
            subject=f"quick_reply:/{shortcut}",
            before=before,
            after=f"/{shortcut}\n{text}",
        )
    flash(gettext("Quick reply /%(shortcut)s saved.", shortcut=shortcut))
    return redirect(url_for("admin.quick_replies"))


@bp.post("/quick-replies/<int:reply_id>/delete")
def quick_replies_delete(reply_id: int) -> Response:
    with get_db().session() as session:
        found = session.get(QuickReply, reply_id)
        if found is None:
            abort(404)
        shortcut = found.shortcut
        session.delete(found)
        log_change(
            session,
            audit.Action.QUICK_REPLY_DELETED,
            subject=f"quick_reply:/{shortcut}",
            before=found.text,
        )
    flash(gettext("Quick reply /%(shortcut)s deleted.", shortcut=shortcut))
    return redirect(url_for("admin.quick_replies"))


@bp.get("/inbox/<int:contact_id>/quick-replies.json")
def conversation_quick_replies(contact_id: int) -> Response:
    """The quick replies whose shortcut starts with `q`, each rendered for this contact."""
    typed = typed_prefix(request.args.get("q", ""))[:SHORTCUT_MAX]
    at = now()
    with get_db().session() as session:
        contact = session.get(Contact, contact_id)
        if contact is None:
            abort(404)
        settings = load_settings(session)
        escaped = typed.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        found = session.scalars(
            select(QuickReply)
            .where(QuickReply.shortcut.like(escaped + "%", escape="\\"))
            .order_by(QuickReply.shortcut)
            .limit(SUGGESTIONS)
        )
        out = []
        for reply in found:
            item: dict[str, Any] = {
                "id": reply.id,
                "shortcut": reply.shortcut,
                "text": None,
                "file_name": reply.file_name,
            }
            if settings is None:
                item["text"] = reply.text
            else:
                try:
                    item["text"] = render_quick_reply(
                        settings, reply.text, now=at, contact_name=contact.name, wa_id=contact.wa_id
                    )
                except Exception:  # a text too long for WhatsApp once filled in
                    item["text"] = reply.text
                    item["error"] = gettext(
                        "This quick reply could not be filled in for this customer."
                    )
            out.append(item)
    return jsonify(replies=out)
