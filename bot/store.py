"""Storing parsed notifications: customer messages, delivery statuses, marketing preferences.

Everything of one notification is written in one transaction, so a 200 to Meta means it is all
stored. A redelivered message id hits the unique key and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from bot import events
from bot.business import load_settings
from bot.contacts_store import set_opt_in
from bot.db import Database
from bot.inbound import StoreUnavailable
from bot.models import Contact, Message, utcnow
from bot.outbound import outbox
from bot.outbound.graph import text_payload
from bot.replies import build_context, render
from bot.rules import History, Inbound, choose
from bot.settings import BusinessSettings
from bot.sql import insert_ignore

log = logging.getLogger("tresen.store")


def store_events(
    database: Database, evs: Iterable[events.Event], now: datetime | None = None
) -> None:
    """Store every event of one notification in one transaction, or raise StoreUnavailable."""
    now = now or utcnow()
    try:
        with database.session() as session:
            settings: BusinessSettings | Literal[False] | None = False  # False: not read yet
            for event in evs:
                if isinstance(event, events.Message):
                    if settings is False:
                        settings = load_settings(session)
                    store_message(session, event, now, settings)
                elif isinstance(event, events.Status):
                    apply_status(session, event)
                elif isinstance(event, events.UserPreference):
                    apply_preference(session, event)
    except DBAPIError as exc:
        # One line: the reason, not a traceback (a restarting database is not a bug).
        reason = str(exc.orig or exc).splitlines()[0] if str(exc.orig or exc) else ""
        log.error("notification not stored: %s: %s", exc.__class__.__name__, reason)
        raise StoreUnavailable(str(exc)) from exc


def find_or_create_contact(
    session: Session, wa_id: str | None, user_id: str | None, name: str | None = None
) -> Contact:
    """The contact for a business-scoped user id or a phone number, locked for this transaction.

    The user id comes first: it stays when a customer changes their number, so a known user id
    with a new number is the same contact, now at that number.
    """
    if not (wa_id or user_id):
        raise ValueError("a contact needs a wa_id or a user_id")
    contact = _locked(session, user_id, wa_id)
    if contact is None:
        # Insert-or-ignore then read: two processes creating the same contact both end up
        # with the one row instead of one of them failing on a unique key.
        session.execute(
            insert_ignore(session, Contact, None).values(
                wa_id=wa_id, user_id=user_id, name=name, created_at=utcnow()
            )
        )
        contact = _locked(session, user_id, wa_id)
        assert contact is not None
    if user_id and contact.user_id is None and _free(session, Contact.user_id, user_id):
        contact.user_id = user_id
    if wa_id and contact.wa_id != wa_id and _free(session, Contact.wa_id, wa_id):
        contact.wa_id = wa_id
    return contact


def _locked(session: Session, user_id: str | None, wa_id: str | None) -> Contact | None:
    for column, value in ((Contact.user_id, user_id), (Contact.wa_id, wa_id)):
        if value:
            query = select(Contact).where(column == value).with_for_update()
            contact = session.scalars(query).one_or_none()
            if contact is not None:
                return contact
    return None


def _free(session: Session, column: Any, value: str) -> bool:
    return session.scalar(select(Contact.id).where(column == value)) is None


def store_message(
    session: Session, event: events.Message, now: datetime, settings: BusinessSettings | None
) -> int | None:
    """Store one customer message and queue its auto-reply under `settings`; returns the new
    message's id, or None when it was stored before (a redelivery)."""
    contact = find_or_create_contact(
        session, event.from_wa_id, event.from_user_id, event.profile_name
    )
    inserted = session.execute(
        insert_ignore(session, Message, ["wamid"])
        .values(
            contact_id=contact.id,
            direction="in",
            wamid=event.id,
            type=event.type_name[:32],
            text=event.text,
            raw=event.raw,
            created_at=now,
            timestamp=event.timestamp,
            status="received",
            attempts=0,
        )
        .returning(Message.id)
    ).scalar_one_or_none()
    if inserted is None:
        log.info("message %s delivered again: already stored", event.id)
        return None
    history = History(last_inbound_at=contact.last_inbound_at, last_away_at=contact.last_away_at)
    if event.profile_name:
        contact.name = event.profile_name
    if contact.last_inbound_at is None or event.timestamp > contact.last_inbound_at:
        contact.last_inbound_at = event.timestamp
    if contact.last_message_at is None or event.timestamp > contact.last_message_at:
        contact.last_message_at = event.timestamp
    contact.unread = (contact.unread or 0) + 1
    log.info("stored %s message %s from contact %s", event.type_name, event.id, contact.id)
    if settings is not None:
        inbound = Inbound(event.text, event.type_name, event.timestamp)
        auto_reply(session, settings, contact, inserted, inbound, history, now)
    return int(inserted)


def auto_reply(
    session: Session,
    settings: BusinessSettings,
    contact: Contact,
    message_id: int,
    inbound: Inbound,
    history: History,
    now: datetime,
) -> Message | None:
    """Queue the rules' reply to a new message, in the transaction that stores it."""
    decision = choose(inbound, history, settings, now)
    if decision is None:
        return None
    if decision.opt_in is not None:
        set_opt_in(session, contact, decision.opt_in, "keyword", now)
    context = build_context(
        settings,
        now=now,
        contact_name=contact.name,
        wa_id=contact.wa_id,
        message_text=inbound.text,
    )
    text = render(settings, decision.template, context)
    recipient = contact.wa_id or contact.user_id or ""
    try:
        payload = text_payload(recipient, text)
    except ValueError as exc:
        # Meta would refuse it too (a sender id that is no number, a text over the limit).
        log.warning("no %s reply to contact %s: %s", decision.rule, contact.id, exc)
        return None
    if decision.rule == "away":
        contact.last_away_at = now
    reply = outbox.enqueue(
        session,
        contact,
        payload,
        now=now,
        text=text,
        rule=decision.rule,
        in_reply_to=message_id,
    )
    log.info("queued %s reply %s to contact %s", decision.rule, reply.id, contact.id)
    return reply


def apply_status(session: Session, event: events.Status) -> None:
    """Move an outbound message along sent → delivered → read, or to failed; never back."""
    query = (
        select(Message)
        .where(Message.wamid == event.message_id, Message.direction == "out")
        .with_for_update(of=Message)
    )
    message = session.scalars(query).one_or_none()
    error = event.errors[0] if event.errors else None
    code = error.code if error else None
    reason = _reason(error) if error else None
    if message is None and event.status.value in outbox.HELD_KINDS:
        # Not recorded yet (the status overtook the send's answer) or not ours (sent from
        # the phone app): held until the dispatcher records this wamid, pruned if it never does.
        outbox.hold_status(
            session,
            event.message_id,
            event.status.value,
            event.timestamp,
            error_code=code,
            error_reason=reason,
            now=utcnow(),
        )
        return
    if message is None:
        return
    outbox.advance(
        message, event.status.value, event.timestamp, error_code=code, error_reason=reason
    )


def apply_preference(session: Session, event: events.UserPreference) -> None:
    """A customer stopped or resumed marketing messages inside WhatsApp itself."""
    if event.category != "marketing_messages" or event.value not in ("stop", "resume"):
        return
    if not (event.wa_id or event.user_id):
        return
    contact = find_or_create_contact(session, event.wa_id, event.user_id)
    set_opt_in(session, contact, event.value == "resume", "whatsapp", event.timestamp)


def _reason(error: events.ErrorInfo) -> str:
    parts = [str(error.code)] if error.code is not None else []
    text = " — ".join(p for p in (error.title, error.details) if p)
    return ": ".join([*parts, text]) if text else (parts[0] if parts else "failed")
