"""What the customer sees of the team at work: a read receipt when a person opens an unread
conversation, and the typing indicator while a person writes (POSTed by static/typing.js).
The rules and the rows are bot.outbound.signals; the worker sends them."""

from __future__ import annotations

from datetime import datetime

from flask import abort, current_app, jsonify
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response

from bot.admin.blueprint import bp, now
from bot.db import get_db
from bot.models import Contact
from bot.outbound import signals
from bot.outbound.signal_sender import SIGNAL_SENDER
from bot.settings import InboxSignals
from bot.settings.stored import load_settings


def _inbox(session: Session) -> InboxSignals:
    settings = load_settings(session)
    return settings.inbox if settings is not None else InboxSignals()


def _wake() -> None:
    # `python app.py` sends from this process: at once rather than at its next look.
    sender = current_app.extensions.get(SIGNAL_SENDER)
    if sender is not None:
        sender.wake()


def read_on_open(session: Session, contact: Contact, at: datetime) -> None:
    """The conversation view calls this when a person opens it, before it marks the
    conversation seen: a read receipt is queued if the shop wants them and nobody had seen
    the customer's last message."""
    # Sent within the sender's poll (a quarter second) once the view's transaction commits.
    signals.queue_read(session, contact, _inbox(session), now=at)


@bp.post("/inbox/<int:contact_id>/typing")
def conversation_typing(contact_id: int) -> Response:
    """A person is typing in the reply box: the typing indicator for the customer, at most
    every 20 seconds per contact and only while the 24-hour window is open."""
    at = now()
    with get_db().session() as session:
        contact = session.get(Contact, contact_id)
        if contact is None:
            abort(404)
        queued = signals.queue_typing(session, contact, _inbox(session), now=at)
    if queued is not None:
        _wake()
    return jsonify(queued=queued is not None)
