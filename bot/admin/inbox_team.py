"""What the team does with a conversation besides answering: assign it, set its state, pin,
archive, mark it unread, and write internal notes. Each is a POST that writes an audit entry
in the same transaction."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from flask import abort, flash, jsonify, redirect, request, url_for
from flask_babel import gettext
from flask_login import current_user
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from bot.admin.blueprint import bp, now
from bot.admin.inbox import local_of, note_view
from bot.audit import Action, Actor, record
from bot.conversations import notes, team, unread
from bot.conversations.notes import NOTE_MAX
from bot.conversations.state import State
from bot.db import get_db
from bot.models import Contact

# The list's search and view travel with the forms, so the page after an action shows the
# same list.
_NAV = ("q", "label", "view")


def _nav() -> dict[str, Any]:
    return {key: value for key in _NAV if (value := request.form.get(key, ""))}


def _back(contact_id: int) -> Response:
    return redirect(url_for("admin.conversation", contact_id=contact_id, **_nav()))


def _to_list() -> Response:
    return redirect(url_for("admin.inbox", **_nav()))


def _actor() -> Actor:
    return Actor(int(current_user.id), str(current_user.name))


def _subject(contact_id: int) -> str:
    return f"contact:{contact_id}"


def _exists(session: Any, contact_id: int) -> None:
    if session.get(Contact, contact_id) is None:
        abort(404)


def _change(
    contact_id: int, action: Action, apply: Callable[[Session, int, datetime], team.Change]
) -> None:
    """One change to the conversation and its audit entry, in one transaction."""
    at = now()
    with get_db().session() as session:
        _exists(session, contact_id)
        change = apply(session, contact_id, at)
        record(
            session,
            _actor(),
            action,
            at,
            subject=_subject(contact_id),
            before=change.before,
            after=change.after,
        )


@bp.post("/inbox/<int:contact_id>/assign", endpoint="conversation_assign")
def assign(contact_id: int) -> Response:
    wanted = request.form.get("user", "")
    user_id = int(wanted) if wanted.isdigit() else None
    try:
        _change(contact_id, Action.ASSIGNED, lambda s, cid, at: team.assign(s, cid, user_id, at))
    except ValueError:  # nobody by that id, or deactivated: nothing was written
        flash(gettext("That person cannot be assigned."), "error")
    return _back(contact_id)


@bp.post("/inbox/<int:contact_id>/state", endpoint="conversation_state")
def set_state(contact_id: int) -> Response:
    try:
        state = State(request.form.get("state", ""))
    except ValueError:
        abort(400)
    _change(contact_id, Action.STATE_CHANGED, lambda s, cid, at: team.set_state(s, cid, state, at))
    return _back(contact_id)


def _flag() -> bool:
    return request.form.get("on", "") == "1"


@bp.post("/inbox/<int:contact_id>/pin", endpoint="conversation_pin")
def pin(contact_id: int) -> Response:
    pinned = _flag()
    _change(contact_id, Action.PINNED, lambda s, cid, at: team.set_pinned(s, cid, pinned, at))
    return _back(contact_id)


@bp.post("/inbox/<int:contact_id>/archive", endpoint="conversation_archive")
def archive(contact_id: int) -> Response:
    archived = _flag()
    _change(contact_id, Action.ARCHIVED, lambda s, cid, at: team.set_archived(s, cid, archived, at))
    if archived:
        flash(gettext("Archived. It comes back when the customer writes again."))
        return _to_list()
    flash(gettext("Back in the inbox."))
    return _back(contact_id)


@bp.post("/inbox/<int:contact_id>/unread", endpoint="conversation_mark_unread")
def mark_unread(contact_id: int) -> Response:
    at = now()
    with get_db().session() as session:
        _exists(session, contact_id)
        unread.mark_unread(session, int(current_user.id), contact_id)
        record(session, _actor(), Action.MARKED_UNREAD, at, subject=_subject(contact_id))
    # Back to the list: staying on the conversation would mark it seen again.
    return _to_list()


@bp.post("/inbox/<int:contact_id>/note", endpoint="conversation_note")
def add_note(contact_id: int) -> Any:
    text = request.form.get("text", "")
    at = now()
    wants_json = request.accept_mimetypes.best == "application/json"
    with get_db().session() as session:
        _exists(session, contact_id)
        try:
            note = notes.add_note(
                session, contact_id, int(current_user.id), str(current_user.name), text, at
            )
        except ValueError:
            session.rollback()
            error = (
                gettext("Write the note first.")
                if not text.strip()
                else gettext("A note has at most %(num)d characters.", num=NOTE_MAX)
            )
            if wants_json:
                return jsonify(ok=False, error=error), 400
            flash(error, "error")
            return _back(contact_id)
        record(session, _actor(), Action.NOTE_ADDED, at, subject=_subject(contact_id))
        view = note_view(note, local_of(session), at)
    if wants_json:
        return jsonify(ok=True, note=view)
    return _back(contact_id)
