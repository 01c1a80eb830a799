"""The handler for a customer's marketing preference set inside WhatsApp (stop or resume):
recorded like an opt-out or opt-in word, as of when they set it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bot.contacts.consent import ConsentSource, set_opt_in
from bot.contacts.lookup import find_or_create_contact, fitting
from bot.whatsapp import events


def apply_preference(session: Session, event: events.UserPreference, now: datetime) -> None:
    """A customer stopped or resumed marketing messages inside WhatsApp itself."""
    if event.category != "marketing_messages" or event.value not in ("stop", "resume"):
        return
    wa_id, user_id = fitting("wa_id", event.wa_id), fitting("user_id", event.user_id)
    if not (wa_id or user_id):
        return  # no id that could key a contact, so no contact of ours
    contact = find_or_create_contact(session, wa_id, user_id, now)
    set_opt_in(session, contact, event.value == "resume", ConsentSource.WHATSAPP, event.timestamp)
